"""``seqrob analyze significance``: what the stored runs say about task order, told honestly.

:func:`analyze` runs, per method x task x metric, every procedure of
:mod:`seqrob.analysis.procedures` once (the verdicts' tests over seeds -- each family
tested on its own noise -- and the reference procedures), corrects each family of tests
(:mod:`seqrob.analysis.multiplicity`), sizes seeds per family
(:mod:`seqrob.analysis.power`), and turns the rows into findings
(:mod:`seqrob.analysis.findings`): per family and order comparison, whether order
changes the score or the across-seed spread -- found, no evidence, or cannot tell, and
why. Results, findings, power, design and warnings are stored together in the
warehouse; every renderer (terminal, PDF, HTML, notebook) only formats them.
``seqrob analyze calibrate --db`` measures the verdict tests' type-I error on the
warehouse's own runs, relabelled within seeds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from seqrob.analysis import findings as findings_module
from seqrob.analysis.design import FEW_SEEDS, describe, order_list, paired
from seqrob.analysis.multiplicity import CORRECTION_NAMES, CORRECTIONS, adjust
from seqrob.analysis.options import Options
from seqrob.analysis.power import family_power
from seqrob.analysis.procedures import PROCEDURES, run_tests
from seqrob.analysis.results import records, result_frame
from seqrob.warehouse.errors import DesignError, InputError

__all__ = ["Significance", "analyze", "load", "power_table", "CORRECTIONS", "FEW_SEEDS", "KIND", "PROCEDURES"]

KIND = "significance"


@dataclass
class Significance:
    """An analysis: findings, tidy result rows, power, and what a reader needs to trust them.

    Attributes
    ----------
    findings
        What was found, one row per task x metric x family x comparison x question
        (:data:`seqrob.analysis.findings.COLUMNS`): the one source of every verdict shown.
    results
        One row per test or estimate, :data:`seqrob.analysis.results.COLUMNS`.
    power
        Per task x metric x family: seeds per order needed
        (:func:`seqrob.analysis.power.family_power`'s columns, plus ``label``).
    design
        Per analysed group (by label): orders, seeds per order, pairing, languages per
        family, and the group's ``warnings``.
    models
        Per group: the mixed model's fixed effects, variance components, log-likelihood.
    warnings
        What the design cannot support, as sentences (each group's also in ``design``).
    cautions
        Why a verdict may not hold: a test off target in the calibration on these runs
        (``seqrob analyze calibrate --db``) or in simulations of a design like this one, a
        mixed model that did not converge.
    options
        The analysis options (:class:`seqrob.analysis.options.Options`; stored with it).
    analysis_id
        Its id in the warehouse, when stored.
    """

    findings: pd.DataFrame
    results: pd.DataFrame
    power: pd.DataFrame
    design: dict
    models: list[dict]
    warnings: list[str]
    options: Options
    cautions: list[str] = field(default_factory=list)
    analysis_id: int | None = None

    @property
    def parameters(self) -> dict:
        """The options as stored (:meth:`Options.parameters`)."""
        return self.options.parameters()

    def payload(self) -> dict:
        """Everything, JSON-ready at full precision."""
        return {
            "parameters": self.parameters,
            "analysis_id": self.analysis_id,
            "findings": records(self.findings),
            "results": records(self.results),
            "power": records(self.power),
            "design": self.design,
            "models": self.models,
            "warnings": self.warnings,
            "cautions": self.cautions,
        }

    def to_json(self, path: str | Path | None = None) -> str | Path:
        """The analysis as JSON (:meth:`payload`): returned as text, or written to ``path``."""
        text = json.dumps(self.payload(), indent=2, default=_json_default)
        if path is None:
            return text
        path = Path(path)
        path.write_text(text, encoding="utf-8")
        return path

    @classmethod
    def from_stored(cls, stored: dict) -> Significance:
        """An analysis as :meth:`seqrob.warehouse.Warehouse.load_analysis` returns it (nothing is recomputed)."""
        model = stored["model"] or {}
        known = set(Options.__dataclass_fields__)
        options = Options(**{k: v for k, v in (stored["parameters"] or {}).items() if k in known})
        return cls(
            findings=findings_module.finding_frame(stored["findings"]),
            results=result_frame(stored["results"]),
            power=pd.DataFrame(model.get("power", [])),
            design=stored["design"] or {},
            models=model.get("models", []),
            warnings=stored["warnings"] or [],
            options=options,
            cautions=model.get("cautions", []),
            analysis_id=int(stored["analysis_id"]),
        )


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if not np.isfinite(value) else float(value)
    return str(value)


def analyze(
    warehouse,
    options: Options | None = None,
    *,
    store: bool = True,
    progress: Callable[[str], None] | None = None,
    **overrides,
) -> Significance:
    """Does task order change accuracy or across-seed variance? All tests, corrected, as findings.

    Parameters
    ----------
    warehouse
        A :class:`seqrob.warehouse.Warehouse` (``seqrob.analyze`` also takes a DataFrame).
    options
        :class:`~seqrob.analysis.options.Options`; keyword ``overrides`` (``alpha=0.1``,
        ``task="xnli"``, ...) replace single fields.
    store
        Store the analysis (results, findings, power, design) in the warehouse.
    progress
        Called with a line as each task x metric starts (the CLI shows it).

    Returns
    -------
    Significance
    """
    options = Options.of(options, **overrides)
    scores, predictions, several_methods = load(warehouse, task=options.task, metric=options.metric,
                                                experiment=options.experiment, method=options.method)  # fmt: skip
    parts = []
    keys = list(scores.groupby(["method", "task", "metric"], sort=True).groups)
    for number, (key, group) in enumerate(scores.groupby(["method", "task", "metric"], sort=True), start=1):
        if progress is not None:
            progress(f"analysing {_label(key, several_methods)} ({number} of {len(keys)})")
        preds = None
        if predictions is not None:
            preds = predictions[(predictions["task"] == key[1]) & predictions["run_id"].isin(group["run_id"])]
            preds = preds if len(preds) else None
        parts.append(_analyze_group(group, preds, key=key, label=_label(key, several_methods), options=options))
    if options.method is None:
        for (task, metric), group in scores.groupby(["task", "metric"], sort=True):
            if group["method"].nunique() >= 2:
                if progress is not None:
                    progress(f"comparing methods on {task} {metric}")
                parts.append(_analyze_methods(group, task=task, metric=metric, options=options))
    outcome = Significance(
        findings=findings_module.finding_frame(pd.concat([p["findings"] for p in parts], ignore_index=True)),
        results=result_frame(pd.concat([p["results"] for p in parts], ignore_index=True)),
        power=pd.concat([p["power"] for p in parts], ignore_index=True),
        design={p["label"]: p["design"] for p in parts},
        models=[p["model"] for p in parts],
        warnings=[w for p in parts for w in p["design"]["warnings"]],
        options=options,
    )
    outcome.cautions = _cautions(warehouse, scores, outcome.models, alpha=options.alpha, several_methods=several_methods)
    if store and warehouse.writable:
        outcome.analysis_id = _store(warehouse, outcome)
    return outcome


def _cautions(warehouse, scores: pd.DataFrame, models: list[dict], *, alpha: float, several_methods: bool) -> list[str]:
    """Why a verdict may not hold, in sentences (see :attr:`Significance.cautions`)."""
    from seqrob.analysis.calibrate import DATA_KIND, design_cautions, off_target, shipped_table

    out = [f"{m['label']}: the mixed model did not converge; its rows are for reference and no verdict reads them"
           for m in models if m.get("converged") is False]  # fmt: skip
    shipped = shipped_table()
    groups = [((method, task, metric), data, False) for (method, task, metric), data
              in scores.groupby(["method", "task", "metric"], sort=True)]  # fmt: skip
    groups += [((None, task, metric), data, True) for (task, metric), data in scores.groupby(["task", "metric"], sort=True)
               if data["method"].nunique() >= 2]  # fmt: skip
    for (method, task, metric), data, methods in groups:
        label = f"{task} {metric}: methods" if methods else _label((method, task, metric), several_methods)
        seeds = int(data.groupby("order")["seed"].nunique().min())
        if methods:
            from seqrob.analysis.methods import complete_seeds

            seeds = len(complete_seeds(data))
        rows = design_cautions(shipped, seeds=seeds, orders=data["order"].nunique(), families=data["family"].nunique(),
                               methods=methods)  # fmt: skip
        if len(rows):
            parts = []
            for (test, status), part in rows.groupby(["test", "status"], sort=False):
                if status == "refuses":
                    parts.append(f"{test} cannot reach p < {alpha:g} with so few seeds")
                else:
                    worst = part.loc[part["estimate"].sub(0.05).abs().idxmax()]
                    parts.append(f"{test} {worst['measure']} down to {worst['estimate']:.3f} ({status}, "
                                 f"{worst['noise']} noise)")  # fmt: skip
            first = rows.iloc[0]
            out.append(f"{label}: in simulations of a design like this ({first['seeds']} seeds, {first['orders']} "
                       f"orders): " + "; ".join(parts))  # fmt: skip
    found = warehouse.latest_analysis(DATA_KIND)
    if found is None:
        out.insert(0, "not yet checked on these runs: seqrob analyze calibrate --db PATH measures each verdict test's "
                      "type-I error here, with the orders relabelled within seeds")  # fmt: skip
        return out
    table = pd.DataFrame((warehouse.load_analysis(found)["model"] or {}).get("calibration", []))
    if table.empty:
        return out
    for r in off_target(table).itertuples():
        out.append(f"{r.task} {r.metric}: on these runs with the orders relabelled within seeds (analysis {found}), "
                   f"{r.test} {r.measure} is {r.estimate:.3f} (MC SE {r.mc_se:.3f}; target {r.target_low:g}-"
                   f"{r.target_high:g}): its verdicts may not hold here")  # fmt: skip
    for r in table[table["status"] == "too few relabellings"].itertuples():
        out.append(f"{r.task} {r.metric}: {r.note}")
    return out


# --- loading -----------------------------------------------------------------------------


def load(warehouse, *, task=None, metric=None, experiment=None, method=None):
    """The finished runs' scores to analyse (one experiment, filtered), their per-example
    outcomes, and whether the experiment stores several training methods."""
    scores = warehouse.scores()
    if scores.empty:
        raise DesignError("the warehouse holds no finished runs - ingest, simulate or train first")
    experiments = sorted(scores["experiment"].unique())
    if experiment is None and len(experiments) > 1:
        raise DesignError(
            f"the warehouse holds several experiments ({', '.join(experiments)})"
            " - pass --experiment NAME to choose one"
        )
    stored = scores
    filters = {"experiment": experiment, "task": task, "metric": metric, "method": method}
    for column, value in filters.items():
        if value is None:
            continue
        if value not in set(scores[column]):
            raise InputError(
                f"no {column} '{value}' in the warehouse",
                fix=f"{column}s stored: " + ", ".join(sorted(map(str, scores[column].unique()))),
            )
        scores = scores[scores[column] == value]
    in_experiment = stored if experiment is None else stored[stored["experiment"] == experiment]
    several_methods = bool(in_experiment["method"].nunique() > 1)
    missing_family = scores["family"].isna()
    if missing_family.any():
        raise DesignError(
            f"language '{scores.loc[missing_family, 'language'].iloc[0]}' has no family in the warehouse"
            " - ingest again with a family column or --families"
        )
    return scores.reset_index(drop=True), warehouse.predictions(sorted(scores["task"].unique())), several_methods


def _label(key: tuple, several_methods: bool) -> str:
    """How a group is named: ``task metric``, and ``(method)`` when the experiment stores several."""
    method, task, metric = key
    return f"{task} {metric}" + (f" ({method})" if several_methods else "")


# --- one task x metric -------------------------------------------------------------------


def _analyze_group(data: pd.DataFrame, predictions, *, key: tuple, label: str, options: Options) -> dict:
    """Run, adjust and read every test of one method x task x metric."""
    design = describe(data, baseline=options.baseline, per_example=predictions is not None)
    orders = design["orders"]
    min_seeds = min(design["seeds_per_order"].values())
    testable = len(orders) >= 2 and min_seeds >= 2
    notes = _design_notes(data, design, label=label, options=options)
    model: dict = {"label": label}
    if testable:
        tests = run_tests(data, predictions, orders=orders, alpha=options.alpha, n_boot=options.n_boot,
                          seed=options.seed, min_seeds=min_seeds)  # fmt: skip
        frames = tests.frames
        notes.extend(f"{label}: {m}" for m in tests.notes)
        if tests.fit is not None:
            model = _model_summary(tests.fit, label)
    else:
        frames = [_descriptive_means(data)]
    results = adjust(result_frame(pd.concat(frames, ignore_index=True)), correction=options.correction)
    results["label"] = label
    power = pd.DataFrame()
    if testable:
        family_size = results.groupby("test")["n_corrected"].max().fillna(1)  # the Holm family each test is corrected in
        power = family_power(data, orders=orders, effect=options.effect, alpha=options.alpha,
                             tests_corrected=int(family_size.get("contrast", 1)),
                             variance_tests_corrected=int(family_size.get("variance", 1)),
                             paired=design["paired_seeds"]).assign(label=label)  # fmt: skip
    counts = data.groupby("family")["language"].nunique()
    families = sorted(counts.index, key=lambda f: (-counts[f], f))
    found = findings_module.build(results, design, power, label=label, method=key[0], task=key[1], metric=key[2],
                                  families=families, alpha=options.alpha, effect=options.effect)  # fmt: skip
    design.update(method=key[0], task=key[1], metric=key[2], families=families)
    design["warnings"] = list(dict.fromkeys(notes))
    return {"label": label, "results": results, "model": model, "design": design, "power": power, "findings": found}


def _analyze_methods(data: pd.DataFrame, *, task: str, metric: str, options: Options) -> dict:
    """Run, adjust and read the method questions of one task x metric (:mod:`seqrob.analysis.methods`)."""
    from seqrob.analysis import methods as methods_module

    label = f"{task} {metric}: methods"
    methods = methods_module.method_list(data)
    orders = order_list(data, options.baseline)
    seeds = methods_module.complete_seeds(data)
    counts = data.groupby("family")["language"].nunique()
    families = sorted(counts.index, key=lambda f: (-counts[f], f))
    design = {"kind": "methods", "methods": methods, "orders": orders, "seeds": len(seeds), "paired_seeds": True,
              "seeds_per_method": {m: int(data.loc[data["method"] == m, "seed"].nunique()) for m in methods},
              "languages_per_family": {k: int(v) for k, v in counts.items()},
              "method": None, "task": task, "metric": metric, "families": families}  # fmt: skip
    notes = []
    frames, messages = methods_module.method_tests(data, orders=orders, confidence=1 - options.alpha, seed=options.seed)
    notes.extend(f"{label}: {m}" for m in messages)
    stored = data["seed"].nunique()
    if len(seeds) < stored:
        notes.append(f"{label}: {stored - len(seeds)} of {stored} seeds lack some order under some method; the "
                     f"methods are compared on the {len(seeds)} seeds run with every order under every method")  # fmt: skip
    if len(seeds) < 2:
        notes.append(f"{label}: fewer than 2 seeds run with every order under every method: the methods cannot "
                     "be compared (run the same seeds for every method)")  # fmt: skip
    results = adjust(result_frame(pd.concat(frames, ignore_index=True)) if frames else result_frame(),
                     correction=options.correction).assign(label=label)  # fmt: skip
    power = pd.DataFrame()
    if len(seeds) >= 2:
        averaged = methods_module.method_scores(data)
        family_size = results.groupby("test")["n_corrected"].max().fillna(1)
        power = family_power(averaged, orders=methods, effect=options.effect, alpha=options.alpha,
                             tests_corrected=int(family_size.get(methods_module.METHOD_CONTRAST, 1)),
                             variance_tests_corrected=int(family_size.get(methods_module.METHOD_VARIANCE, 1)),
                             paired=True).assign(label=label)  # fmt: skip
    found = findings_module.build_methods(results, design, power, label=label, task=task, metric=metric,
                                          families=families, alpha=options.alpha, effect=options.effect)  # fmt: skip
    design["warnings"] = list(dict.fromkeys(notes))
    return {"label": label, "results": results, "model": {"label": label}, "design": design, "power": power,
            "findings": found}


def _design_notes(data: pd.DataFrame, design: dict, *, label: str, options: Options) -> list[str]:
    """What this group's design cannot support, in sentences."""
    orders, notes = design["orders"], []
    min_seeds = min(design["seeds_per_order"].values())
    if len(orders) >= 2 and options.baseline not in orders:
        pairs = len(orders) * (len(orders) - 1) // 2
        notes.append(f"{label}: no order '{options.baseline}' is stored, so every pair of orders is compared "
                     f"({pairs} pair{'s' if pairs > 1 else ''} per family, {CORRECTION_NAMES[options.correction]} over all of "
                     "them; "
                     "--baseline ORDER lists one order first)")  # fmt: skip
    single = [f"{f} ({', '.join(sorted(data.loc[data['family'] == f, 'language'].unique()))})"
              for f, n in design["languages_per_family"].items() if n == 1]  # fmt: skip
    if single:
        notes.append(f"{label}: one language in " + "; ".join(single)
                     + ": a family effect there cannot be told from that language's own")  # fmt: skip
    if len(orders) < 2:
        notes.append(f"{label}: one order only ('{orders[0]}'): there is nothing to compare")
    if min_seeds < 2:
        notes.append(f"{label}: {min_seeds} seed for some order: order effects cannot be told from seed noise; "
                     "only mean scores are given (run 3 or more seeds per order)")  # fmt: skip
    elif min_seeds == 2:
        notes.append(f"{label}: 2 seeds per order: every test runs, but the t over seeds has 1 df and the variance "
                     "test cannot reach significance; run 3 or more seeds per order (5+ to judge spread)")  # fmt: skip
    elif min_seeds <= FEW_SEEDS:
        notes.append(f"{label}: {min_seeds} seeds per order: the t over seeds has {min_seeds - 1} df, bootstrap "
                     "intervals over so few seeds are descriptive, and the variance test can hardly reach "
                     "significance")  # fmt: skip
    return notes


def _descriptive_means(data: pd.DataFrame) -> pd.DataFrame:
    runs = data.groupby(["task", "metric", "family", "order", "seed"], as_index=False)["score"].mean()
    rows = []
    for (task, metric, family, order), group in runs.groupby(["task", "metric", "family", "order"]):
        rows.append(dict(test="mean", term=order, task=task, metric=metric, family=family,
                         estimate=group["score"].mean(), n=group["seed"].nunique(),
                         method="mean over seeds of the family's mean score (descriptive: no test possible)"))  # fmt: skip
    return result_frame(rows)


def _model_summary(fit, label: str) -> dict:
    fixed = fit.fixed_effects
    return {
        "label": label,
        "formula": getattr(fit, "formula", None),
        "criterion": getattr(fit, "criterion", None),
        "fixed_effects": records(fixed) if isinstance(fixed, pd.DataFrame) else fixed,
        "variance_components": {k: (None if v is None or not np.isfinite(v) else float(v))
                                for k, v in fit.variance_components.items()},  # fmt: skip
        "log_likelihood": None if not np.isfinite(fit.log_likelihood) else float(fit.log_likelihood),
        "converged": bool(fit.converged),
        "warnings": list(fit.warnings),
    }


def _store(warehouse, outcome: Significance) -> int:
    from seqrob import __version__

    return warehouse.store_analysis(
        kind=KIND,
        parameters=outcome.parameters,
        results=outcome.results,
        findings=outcome.findings,
        design=outcome.design,
        model={"models": outcome.models, "cautions": outcome.cautions, "power": records(outcome.power)},
        warnings=outcome.warnings,
        seqrob_version=__version__,
    )


def power_table(
    warehouse,
    *,
    effect: float,
    task: str | None = None,
    metric: str | None = None,
    experiment: str | None = None,
    method: str | None = None,
    baseline: str = "none",
    alpha: float = 0.05,
    power: float = 0.80,
    sd_ratio: float = 2.0,
) -> pd.DataFrame:
    """Seeds per order each family needs for ``power`` against an order difference of ``effect``.

    From each family's own seed-to-seed SD of the differences (the verdicts' t over seeds),
    at the level Holm asks of the smallest p over the task x metric's contrasts; and for
    the variance test, to detect an SD ratio of ``sd_ratio``
    (:func:`seqrob.analysis.power.family_power`).

    Returns
    -------
    pandas.DataFrame
        ``method, task, metric`` and :func:`~seqrob.analysis.power.family_power`'s columns.
    """
    scores, _, _ = load(warehouse, task=task, metric=metric, experiment=experiment, method=method)
    frames = []
    for (method_name, task_name, metric_name), data in scores.groupby(["method", "task", "metric"]):
        min_seeds = int(data.groupby("order")["seed"].nunique().min())
        orders = order_list(data, baseline)
        if len(orders) < 2 or min_seeds < 2:
            raise DesignError(
                f"{task_name} {metric_name}: needs 2+ orders with 2+ seeds each to estimate the seed-to-seed noise"
            )
        k, n_families = len(orders), data["family"].nunique()
        pairs = k * (k - 1) // 2
        table = family_power(data, orders=orders, effect=effect, alpha=alpha, power=power,
                                          sd_ratio=sd_ratio, tests_corrected=pairs * n_families,
                                          variance_tests_corrected=(pairs + (k > 2)) * n_families,
                                          paired=paired(data, orders))  # fmt: skip
        frames.append(table.assign(method=method_name, task=task_name, metric=metric_name))
    out = pd.concat(frames, ignore_index=True)
    keys = ["method", "task", "metric"]
    return out[keys + [c for c in out.columns if c not in keys]]
