"""Where the report's numbers come from: a stored analysis that matches the data, or a fresh one.

:func:`gather` looks for a stored ``significance`` analysis with exactly the report's
parameters over the warehouse's current data (same fingerprint); only when there is
none does it run :func:`seqrob.analysis.analyze` (and stores it, unless the warehouse
is open read-only). It returns everything the report shows as :class:`Inputs`: one
:class:`Group` per method x task x metric with its scores and result rows, the stored
design, runs and languages, and the analysis records behind them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from seqrob.warehouse.errors import DesignError, InputError

__all__ = ["AnalysisRecord", "Group", "Inputs", "analysis_parameters", "gather", "load_calibration"]

KIND = "significance"


@dataclass
class AnalysisRecord:
    """A stored analysis the report uses, and whether it was found or run for the report."""

    analysis_id: int | None
    created_at: object
    seqrob_version: str | None
    parameters: dict
    data_hash: str
    reused: bool


@dataclass
class Group:
    """One analysed method x task x metric: its scores and everything the analysis said about it."""

    label: str
    method: str
    task: str
    metric: str
    scores: pd.DataFrame
    results: pd.DataFrame
    model: dict
    design: dict
    power: pd.DataFrame
    verdicts: list[str]
    warnings: list[str]
    analysis_id: int | None
    baseline: str = "none"

    @property
    def orders(self) -> list[str]:
        """The baseline first, then the other orders by name (as the analysis orders them)."""
        orders = list(dict.fromkeys(self.scores["order"]))
        return ([self.baseline] if self.baseline in orders else []) + sorted(o for o in orders if o != self.baseline)

    @property
    def min_seeds(self) -> int:
        return int(self.scores.groupby("order")["seed"].nunique().min())

    @property
    def families(self) -> list[str]:
        """Families, most languages first (then by name)."""
        counts = self.scores.groupby("family")["language"].nunique()
        return sorted(counts.index, key=lambda f: (-counts[f], f))


@dataclass
class Inputs:
    """All the report shows."""

    path: str
    groups: list[Group]
    analyses: list[AnalysisRecord]
    design: object  # seqrob.warehouse.design.Design
    runs: pd.DataFrame
    languages: pd.DataFrame
    fingerprint: str
    parameters: dict
    experiment: str | None
    calibration: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    cautions: list[str] = field(default_factory=list)
    data_calibration: pd.DataFrame | None = None


def analysis_parameters(*, task, metric, experiment, method, baseline, alpha, correction, n_boot, seed, effect) -> dict:
    """The parameters exactly as :func:`seqrob.analysis.analyze` stores them (so a stored one is found)."""
    return dict(task=task, metric=metric, experiment=experiment, method=method, baseline=baseline,
                alpha=alpha, correction=correction, n_boot=n_boot, seed=seed, effect=effect)  # fmt: skip


def _writable(con) -> bool:
    return con.execute("SELECT current_setting('access_mode')").fetchall()[0][0] != "read_only"


def gather(
    warehouse,
    *,
    task: str | None = None,
    metric: str | None = None,
    experiment: str | None = None,
    method: str | None = None,
    baseline: str = "none",
    alpha: float = 0.05,
    correction: str = "holm",
    n_boot: int = 10_000,
    seed: int = 0,
    effect: float = 0.01,
    reanalyze: bool = False,
    calibration=None,
) -> Inputs:
    """Find (or run) the analyses behind a report and collect what it shows."""
    from seqrob.warehouse.analyses import data_fingerprint, find_analysis, load_analysis

    scores = warehouse.scores()
    if scores.empty:
        raise DesignError("the warehouse holds no finished runs - ingest, simulate or train first (or run seqrob demo)")
    chosen = scores
    for column, value in (("experiment", experiment), ("task", task), ("metric", metric), ("method", method)):
        if value is not None:
            chosen = chosen[chosen[column] == value]
    # Several methods: one analysis per method, so every result row belongs to one method.
    methods = [method] if method is not None else sorted(chosen["method"].dropna().unique())
    per_method = [None] if method is None and len(methods) <= 1 else methods
    writable = _writable(warehouse.con)
    groups: list[Group] = []
    records: list[AnalysisRecord] = []
    cautions: list[str] = []
    for each in per_method:
        parameters = analysis_parameters(task=task, metric=metric, experiment=experiment, method=each, baseline=baseline,
                                         alpha=alpha, correction=correction, n_boot=n_boot, seed=seed, effect=effect)  # fmt: skip
        found = None if reanalyze else find_analysis(warehouse.con, kind=KIND, parameters=parameters)
        fresh = None
        if found is None:
            from seqrob.analysis import analyze  # imported only when needed: it costs seconds of imports

            fresh = analyze(warehouse, **parameters, store=writable)
            found = fresh.analysis_id
        if found is not None:
            stored = load_analysis(warehouse.con, found)
            record = AnalysisRecord(found, stored["created_at"], stored["seqrob_version"], stored["parameters"],
                                    stored["data_hash"], reused=fresh is None)  # fmt: skip
            results, design = stored["results"], stored["design"] or {}
            models = (stored["model"] or {}).get("models", [])
            verdicts = (stored["model"] or {}).get("verdicts", [])
            warnings = stored["warnings"] or []
            power = pd.DataFrame((stored["model"] or {}).get("power", []))
            cautions.extend((stored["model"] or {}).get("cautions", []))
        else:  # a read-only warehouse: the analysis is used without being stored
            record = AnalysisRecord(None, pd.Timestamp.now(tz="UTC"), None, fresh.parameters,
                                    data_fingerprint(warehouse.con), reused=False)  # fmt: skip
            results, design, models = fresh.results, fresh.design, fresh.models
            verdicts, warnings, power = fresh.verdicts, fresh.warnings, fresh.power
            cautions.extend(fresh.cautions)
        if fresh is not None and power.empty:
            power = fresh.power
        records.append(record)
        groups.extend(_groups(chosen if each is None else chosen[chosen["method"] == each], results, design, models,
                              verdicts, warnings, power, record, baseline=baseline, alpha=alpha, effect=effect,
                              several_methods=len(per_method) > 1 or (chosen["method"].nunique() > 1)))  # fmt: skip
    experiments = sorted(chosen["experiment"].unique())
    return Inputs(
        path=warehouse.path,
        groups=groups,
        analyses=records,
        design=warehouse.info(experiment=experiment),
        runs=warehouse.table("runs") if experiment is None else warehouse.table("runs").query("experiment == @experiment"),
        languages=warehouse.table("languages"),
        fingerprint=data_fingerprint(warehouse.con),
        parameters=analysis_parameters(task=task, metric=metric, experiment=experiment, method=method, baseline=baseline,
                                       alpha=alpha, correction=correction, n_boot=n_boot, seed=seed, effect=effect),
        experiment=experiment or (experiments[0] if len(experiments) == 1 else None),
        calibration=load_calibration(calibration),
        cautions=list(dict.fromkeys(cautions)),
        data_calibration=_data_calibration(warehouse),
    )


def _data_calibration(warehouse) -> pd.DataFrame | None:
    """The newest calibration on this warehouse's own runs (seqrob analyze calibrate --db), if any."""
    from seqrob.analysis.calibrate import DATA_KIND
    from seqrob.warehouse.analyses import latest_analysis, load_analysis

    found = latest_analysis(warehouse.con, kind=DATA_KIND)
    if found is None:
        return None
    table = pd.DataFrame((load_analysis(warehouse.con, found)["model"] or {}).get("calibration", []))
    return table.assign(analysis_id=found) if len(table) else None


def _groups(scores, results, design, models, verdicts, warnings, power, record, *, baseline, alpha, effect, several_methods):
    groups = []
    model_of = {m.get("label"): m for m in models}
    for (method, task, metric), data in scores.groupby(["method", "task", "metric"], sort=True):
        label = f"{task} {metric}" + (f" ({method})" if several_methods else "")
        # The analysis labels its groups without the method when it saw one method only.
        plain = f"{task} {metric}"
        rows = results[(results["task"] == task) & (results["metric"] == metric)].reset_index(drop=True)
        model = model_of.get(label) or model_of.get(plain) or {"label": label}
        group_design = design.get(label) or design.get(plain) or {}
        group_power = _group_power(power, label, plain, model, data, effect=effect, alpha=alpha)
        groups.append(Group(
            label=label, method=method, task=task, metric=metric, scores=data.reset_index(drop=True), results=rows,
            model=model, design=group_design, power=group_power,
            verdicts=[v for v in verdicts if v.startswith(plain)],
            warnings=[w for w in warnings if w.startswith(plain)],
            analysis_id=record.analysis_id, baseline=baseline,
        ))  # fmt: skip
    return groups


def _group_power(power: pd.DataFrame, label: str, plain: str, model: dict, data: pd.DataFrame, *, effect, alpha):
    """Seeds per order needed per family: the analysis's own table, or recomputed from the
    stored variance components (the same computation, no refit)."""
    if len(power) and "label" in power.columns:
        part = power[power["label"].isin([label, plain])]
        if len(part):
            return part.reset_index(drop=True)
    components = model.get("variance_components") or {}
    if not components or any(v is None or not np.isfinite(v) for v in components.values()):
        return pd.DataFrame(columns=["label", "family", "effect", "languages", "seeds_needed", "note"])
    from seqrob.analysis.power import seeds_for_power

    rows = []
    n_orders, n_total, n_families = data["order"].nunique(), data["language"].nunique(), data["family"].nunique()
    for family, part in data.groupby("family"):
        try:
            needed, note = seeds_for_power(components, effect, n_languages=part["language"].nunique(), alpha=alpha,
                                           n_orders=n_orders, n_languages_total=n_total, n_families=n_families), ""  # fmt: skip
        except (DesignError, ValueError, ArithmeticError) as error:  # a degenerate fit: say so, do not fail
            needed, note = None, str(error)
        rows.append({"label": label, "family": family, "effect": effect, "languages": part["language"].nunique(),
                     "seeds_needed": needed, "note": note})  # fmt: skip
    return pd.DataFrame(rows)


CALIBRATION_COLUMNS = ("seeds", "orders", "families", "test", "measure", "estimate")


def load_calibration(source=None) -> pd.DataFrame | None:
    """A calibration table (:func:`seqrob.analysis.calibrate.calibrate`'s, or its CSV from
    ``seqrob analyze calibrate --out``): ``source`` as a DataFrame or a CSV path; by default
    the table shipped with seqrob (``seqrob/analysis/data/calibration.csv``), if there is one."""
    if isinstance(source, pd.DataFrame):
        table = source
    elif source is not None:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"no calibration table at {path}", fix="write one with: seqrob analyze calibrate --out FILE")
        table = pd.read_csv(path)
    else:
        from seqrob.analysis.calibrate import shipped_table

        table = shipped_table()
        if table is None:
            return None
    missing = [c for c in CALIBRATION_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"the calibration table lacks columns {missing}", fix="use the CSV of seqrob analyze calibrate --out")
    return table
