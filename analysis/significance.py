"""``seqrob analyze significance``: what the stored runs say about task order, told honestly.

For each task x metric (and method, when several are stored) this runs

* the tests the verdicts read, all over seeds, each family tested on its own noise
  (nothing assumes that families share one run variance or that a run's luck is the same
  in every family: real runs break both):

  - ``contrast``: per family and pair of orders, the paired t on the per-seed
    differences of the family means (Welch's t when the orders were run with different
    seeds) (:func:`seqrob.analysis.permutation.seed_t_test`);
  - ``order_anova`` / ``order_family_anova``: does order matter over all languages, and
    does its effect differ between families -- the Greenhouse-Geisser corrected
    repeated-measures ANOVA over seeds, or the heteroscedastic ANOVA-type test for
    unpaired runs (:mod:`seqrob.analysis.anova`);
  - ``variance``: does order change the across-seed spread -- a permutation test of the
    order labels within seeds, valid with outlier runs and skew near a ceiling
    (:func:`seqrob.analysis.variance.permutation_variance_test`);

* for reference: the crossed mixed model ``score ~ order * family + (1|seed) +
  (1|seed:order) + (1|language)`` (:mod:`seqrob.analysis.mixed`; lme4's numbers; its F
  tests ``lrt_order`` / ``lrt_order_family``, its contrasts ``mixed_contrast`` without
  p-value and its run-variance LRT), the paired hierarchical bootstrap over seeds and
  examples (:mod:`seqrob.analysis.bootstrap`; expanded intervals, descriptive at 5 seeds
  or fewer), exact sign-flip tests at 5 seeds or fewer, the Pitman-Morgan and
  Brown-Forsythe/Levene variance tests, and ASO (:mod:`seqrob.analysis.aso`);

adjusts the p-values of each family of tests (Holm by default, over all contrasts of
one task x metric), writes plain-language verdicts, and stores parameters and result
rows in the warehouse's ``analyses`` tables. ``seqrob analyze calibrate --db`` measures
the verdict tests' type-I error on the warehouse's own runs, relabelled within seeds.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from seqrob.analysis import aso as aso_module
from seqrob.analysis import anova, bootstrap, mixed, permutation, power, variance
from seqrob.analysis.results import COLUMNS, records, result_frame
from seqrob.warehouse.errors import DesignError, InputError

__all__ = ["Significance", "analyze", "significance", "expanded_confidence", "CORRECTIONS", "FEW_SEEDS"]

CORRECTIONS = {"holm": "holm", "bh": "fdr_bh"}
FEW_SEEDS = 5  # at or below this, intervals over seeds come from sign-flip / t, not the bootstrap
#: The procedures of one analysis: the verdicts' tests over seeds (contrasts, order and
#: order x family), the mixed model (its F tests, contrasts and run-variance LRT, for
#: reference), the paired bootstrap, the few-seed sign-flip tests, the variance tests
#: (permutation tests for verdicts; Pitman-Morgan, Brown-Forsythe and Levene for
#: reference; SDs and SD ratios) and ASO.
PROCEDURES = ("verdicts", "mixed", "bootstrap", "few_seeds", "variance", "aso")
KIND = "significance"


@dataclass
class Significance:
    """An analysis: tidy result rows plus what a reader needs to trust them.

    Attributes
    ----------
    results
        One row per test or estimate, :data:`seqrob.analysis.results.COLUMNS`.
    design
        Per analysed group: orders, seeds per order, languages per family, outcome level.
    models
        Per group: the mixed model's fixed effects, variance components, log-likelihood.
    verdicts
        Plain-language sentences, most important first.
    warnings
        What the design cannot support.
    cautions
        Why a verdict may not hold: a test off target in the calibration on these runs
        (``seqrob analyze calibrate --db``) or in simulations of a design like this one, a
        mixed model that did not converge. The terminal and page 1 of the report show them.
    parameters
        The analysis parameters (stored with it).
    analysis_id
        Its id in the warehouse, when stored.
    """

    results: pd.DataFrame
    design: dict
    models: list[dict]
    verdicts: list[str]
    warnings: list[str]
    parameters: dict
    analysis_id: int | None = None
    power: pd.DataFrame = field(default_factory=pd.DataFrame)
    cautions: list[str] = field(default_factory=list)

    def to_json(self, path: str | Path) -> Path:
        """Write ``{"design", "results", "model", "models", "verdicts", "warnings", "parameters"}``."""
        path = Path(path)
        payload = {
            "design": self.design,
            "results": records(self.results),
            "model": self.models[0] if self.models else {},
            "models": self.models,
            "verdicts": self.verdicts,
            "cautions": self.cautions,
            "warnings": self.warnings,
            "power": records(self.power),
            "parameters": self.parameters,
            "analysis_id": self.analysis_id,
        }
        path.write_text(json.dumps(payload, indent=2, default=_json_default), encoding="utf-8")
        return path


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if not np.isfinite(value) else float(value)
    return str(value)


def significance(warehouse, **options) -> pd.DataFrame:
    """The tidy result table of :func:`analyze` (its other parts are in ``.attrs``)."""
    outcome = analyze(warehouse, **options)
    table = outcome.results.copy()
    table.attrs = {
        "design": outcome.design,
        "verdicts": outcome.verdicts,
        "warnings": outcome.warnings,
        "analysis_id": outcome.analysis_id,
    }
    return table


def analyze(
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
    store: bool = True,
) -> Significance:
    """Does task order change accuracy or across-seed variance? All tests, corrected and explained.

    Parameters
    ----------
    warehouse
        A :class:`seqrob.warehouse.Warehouse`.
    task, metric, experiment, method
        Restrict to these (default: every task and metric; the one experiment stored).
    baseline
        The reference order of the contrasts (``none`` = target task alone).
    alpha
        Level of the tests and 1 - confidence of the intervals.
    correction
        ``"holm"`` (family-wise error) or ``"bh"`` (false discovery rate), applied
        within each family of tests of one task x metric (all its contrasts; all its
        variance tests).
    n_boot
        Bootstrap replicates.
    seed
        Seed of every resampling RNG (the analysis is reproducible from it).
    effect
        The order difference (metric units) the power analysis sizes seeds for.
    store
        Store the analysis in the warehouse.

    Returns
    -------
    Significance
    """
    if correction not in CORRECTIONS:
        raise InputError(f"unknown correction '{correction}'", fix="use --correction holm or --correction bh")
    if not 0 < alpha < 0.5:
        raise InputError(f"alpha {alpha} is outside (0, 0.5)", fix="use e.g. --alpha 0.05")
    if n_boot < 100:
        raise InputError(f"--n-boot {n_boot} is too few replicates", fix="use at least 1000 (10000 recommended)")
    parameters = dict(task=task, metric=metric, experiment=experiment, method=method, baseline=baseline,
                      alpha=alpha, correction=correction, n_boot=n_boot, seed=seed, effect=effect)  # fmt: skip
    scores, predictions = _load(warehouse, task=task, metric=metric, experiment=experiment, method=method)
    frames, models, verdicts, notes, designs, powers = [], [], [], [], {}, []
    for key, group in scores.groupby(["method", "task", "metric"], sort=True):
        label = _label(key, scores)
        preds = None
        if predictions is not None:
            preds = predictions[(predictions["task"] == key[1]) & predictions["run_id"].isin(group["run_id"])]
            preds = preds if len(preds) else None
        part = _analyze_group(group, preds, label=label, baseline=baseline, alpha=alpha, correction=correction,
                              n_boot=n_boot, seed=seed, effect=effect)  # fmt: skip
        frames.append(part["results"])
        models.append(part["model"])
        verdicts.extend(part["verdicts"])
        notes.extend(part["warnings"])
        designs[label] = part["design"]
        powers.append(part["power"])
    results = result_frame(pd.concat(frames, ignore_index=True)) if frames else result_frame()
    outcome = Significance(
        results=results,
        design=designs,
        models=models,
        verdicts=verdicts,
        warnings=notes,
        parameters=parameters,
        power=pd.concat(powers, ignore_index=True) if powers else pd.DataFrame(),
    )
    outcome.cautions = _cautions(warehouse, scores, models, alpha=alpha)
    if store:
        outcome.analysis_id = _store(warehouse, outcome)
    return outcome


def _cautions(warehouse, scores: pd.DataFrame, models: list[dict], *, alpha: float) -> list[str]:
    """Why a verdict may not hold, in sentences (see :attr:`Significance.cautions`)."""
    from seqrob.analysis.calibrate import DATA_KIND, design_cautions, off_target, shipped_table
    from seqrob.warehouse.analyses import latest_analysis, load_analysis

    out = [f"{m['label']}: the mixed model did not converge; its rows are for reference and no verdict reads them"
           for m in models if m.get("converged") is False]  # fmt: skip
    shipped = shipped_table()
    for (method, task, metric), data in scores.groupby(["method", "task", "metric"], sort=True):
        label = _label((method, task, metric), scores)
        seeds = int(data.groupby("order")["seed"].nunique().min())
        rows = design_cautions(shipped, seeds=seeds, orders=data["order"].nunique(), families=data["family"].nunique())
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
    found = latest_analysis(warehouse.con, kind=DATA_KIND)
    if found is None:
        out.insert(0, "not yet checked on these runs: seqrob analyze calibrate --db PATH measures each verdict test's "
                      "type-I error here, with the orders relabelled within seeds")  # fmt: skip
        return out
    table = pd.DataFrame((load_analysis(warehouse.con, found)["model"] or {}).get("calibration", []))
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


def _load(warehouse, *, task, metric, experiment, method):
    scores = warehouse.scores()
    if scores.empty:
        raise DesignError("the warehouse holds no finished runs - ingest, simulate or train first")
    experiments = sorted(scores["experiment"].unique())
    if experiment is None and len(experiments) > 1:
        raise DesignError(
            f"the warehouse holds several experiments ({', '.join(experiments)})"
            " - pass --experiment NAME to choose one"
        )
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
    missing_family = scores["family"].isna()
    if missing_family.any():
        raise DesignError(
            f"language '{scores.loc[missing_family, 'language'].iloc[0]}' has no family in the warehouse"
            " - ingest again with a family column or --families"
        )
    # Analyses run on proportions for bounded metrics and the metric's own units otherwise.
    tasks = sorted(scores["task"].unique())
    predictions = warehouse.con.execute(
        """SELECT p.run_id, p.task, p.language, p.example_id, p.correct, p.value, p.tp, p.fp, p.fn
           FROM predictions p JOIN runs r USING (run_id)
           WHERE r.status = 'finished' AND p.task IN (SELECT unnest(?::VARCHAR[]))""",
        [tasks],
    ).df()
    if predictions.empty:
        predictions = None
    else:
        predictions = predictions.dropna(axis=1, how="all")
    return scores.reset_index(drop=True), predictions


def _label(key: tuple, scores: pd.DataFrame) -> str:
    method, task, metric = key
    several_methods = scores["method"].nunique() > 1
    return f"{task} {metric}" + (f" ({method})" if several_methods else "")


# --- one task x metric -------------------------------------------------------------------


def _design(data: pd.DataFrame, predictions: pd.DataFrame | None) -> dict:
    seeds = data.groupby("order")["seed"].nunique().to_dict()
    languages = data.groupby("family")["language"].nunique().to_dict()
    seed_sets = data.groupby("order")["seed"].apply(frozenset)
    return {
        "orders": list(seeds),
        "seeds_per_order": {k: int(v) for k, v in seeds.items()},
        "paired_seeds": len(set(seed_sets)) == 1,
        "languages_per_family": {k: int(v) for k, v in languages.items()},
        "languages": int(data["language"].nunique()),
        "runs": int(data["run_id"].nunique()),
        "scores": int(len(data)),
        "per_example_outcomes": predictions is not None,
    }


def _order_list(data: pd.DataFrame, baseline: str) -> list[str]:
    orders = list(dict.fromkeys(data["order"]))
    return ([baseline] if baseline in orders else []) + sorted(o for o in orders if o != baseline)


def _quiet(function, *args, **kwargs):
    """Run a statistics function, collecting its warnings as sentences instead of printing them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = function(*args, **kwargs)
    messages = [str(w.message) for w in caught if not issubclass(w.category, (DeprecationWarning, FutureWarning))]
    return frame, messages


def _rename(frame: pd.DataFrame, old: str, new: str) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame["test"] == old, "test"] = new
    return frame


def _analyze_group(data, predictions, *, label, baseline, alpha, correction, n_boot, seed, effect) -> dict:
    design = _design(data, predictions)
    orders = _order_list(data, baseline)
    min_seeds = min(design["seeds_per_order"].values())
    notes: list[str] = []
    frames: list[pd.DataFrame] = []
    confidence = 1 - alpha
    if baseline not in orders:
        notes.append(f"{label}: baseline order '{baseline}' is not stored; contrasts use the orders' own pairs")
    small = [f"{f} ({', '.join(sorted(data.loc[data['family'] == f, 'language'].unique()))})"
             for f, n in design["languages_per_family"].items() if n == 1]  # fmt: skip
    if small:
        notes.append(f"{label}: one language in " + "; ".join(small)
                     + ": a family effect there cannot be told from that language's own")  # fmt: skip
    if len(orders) < 2:
        notes.append(f"{label}: one order only ('{orders[0]}'): there is nothing to compare")
    if min_seeds < 3:
        notes.append(f"{label}: {min_seeds} seed(s) for some order: order effects cannot be told from seed noise"
                     " with fewer than 3 seeds per order; only descriptive results are given")  # fmt: skip

    model_summary: dict = {"label": label}
    fit = None
    if len(orders) >= 2 and min_seeds >= 2:
        tests, messages = _tests(data, predictions, orders=orders, baseline=baseline, alpha=alpha, n_boot=n_boot,
                                 seed=seed, min_seeds=min_seeds)  # fmt: skip
        frames.extend(tests)
        notes.extend(f"{label}: {m}" for m in messages)
        try:
            fit, messages = _quiet(mixed.fit_mixed, data, baseline=baseline, alpha=alpha)
            model_summary = _model_summary(fit, label)
        except DesignError as error:
            notes.append(f"{label}: mixed model not fitted: {error}")
    else:
        frames.append(_descriptive_means(data, orders, label))

    results = result_frame(pd.concat(frames, ignore_index=True))
    results = _adjust(results, correction=correction, label=label)
    power_table = pd.DataFrame()
    if len(orders) >= 2 and min_seeds >= 2:
        m = int(((results["test"] == "contrast") & results["p_value"].notna()).sum())
        m_var = int(((results["test"] == "variance") & results["p_value"].notna()).sum())
        power_table = power.family_power(data, orders=orders, effect=effect, alpha=alpha, tests_corrected=m,
                                         variance_tests_corrected=m_var, paired=_paired(data, orders))
        power_table = power_table.assign(label=label)
    verdicts = _verdicts(results, design, label=label, alpha=alpha, correction=correction, power_table=power_table,
                         effect=effect)  # fmt: skip
    return {
        "results": results,
        "model": model_summary,
        "verdicts": verdicts,
        "warnings": list(dict.fromkeys(notes)),
        "design": design,
        "power": power_table,
    }


def _tests(
    data: pd.DataFrame,
    predictions: pd.DataFrame | None,
    *,
    orders: list[str],
    baseline: str,
    alpha: float,
    n_boot: int,
    seed: int,
    min_seeds: int,
    aso_boot: int = 1_000,
    include: Sequence[str] = PROCEDURES,
    n_permutations: int = 1999,
    permutation_intervals: bool = True,
    variance_boot: bool = True,
) -> tuple[list[pd.DataFrame], list[str]]:
    """Every test of one task x metric, unadjusted: the rows :func:`analyze` reports.

    Needs 2+ orders with 2+ seeds each. :func:`seqrob.analysis.calibrate.calibrate` runs
    exactly this on simulated data, so the calibration table is about these rows.
    ``include`` picks procedures from :data:`PROCEDURES` (all for :func:`analyze`).
    Returns the result frames and the warnings (as sentences).
    """
    frames: list[pd.DataFrame] = []
    notes: list[str] = []
    confidence = 1 - alpha
    paired = _paired(data, orders)
    if "verdicts" in include:
        # The verdicts' tests: per-family contrasts and the order / order x family tests over
        # seeds, which assume nothing about how run noise varies between families.
        ts, messages = _quiet(permutation.seed_t_test, data, orders=orders, confidence=confidence, paired=paired,
                              overall=False)  # fmt: skip
        notes.extend(messages)
        frames.append(_primary_contrasts(ts, paired))
        anovas, messages = _quiet(anova.order_anova, data, orders=orders)
        notes.extend(messages)
        frames.append(anovas)
    if "mixed" in include:
        try:
            tests, messages = _quiet(mixed.order_tests, data, baseline=baseline, alpha=alpha)
        except DesignError as error:  # e.g. every run scores the same: no residual variation
            notes.append(f"mixed model not fitted: {error}")
            tests = None
        if tests is not None:
            notes.extend(messages)
            notes.extend(m[-1] if isinstance(m, tuple) else m for m in tests.attrs.get("warnings", []))
            frames.append(_mixed_for_reference(tests))
    if "bootstrap" in include:
        boot, messages = _bootstrap_rows(data, predictions, orders=orders, alpha=alpha, n_boot=n_boot, seed=seed,
                                         n_seeds=min_seeds)  # fmt: skip
        notes.extend(messages)
        frames.append(boot)
    if "few_seeds" in include and min_seeds <= FEW_SEEDS and paired:
        flips, messages = _quiet(permutation.sign_flip_test, data, orders=orders, confidence=confidence, seed=seed)
        notes.extend(messages)
        frames.append(_rename(flips, "contrast", "signflip_contrast"))
    if "variance" in include:
        # The SD-ratio CIs are exact (inverted Pitman-Morgan). The per-order SD CIs are
        # bootstrap: expanded like the contrasts' (the plain BCa interval of an SD covers
        # too little at 10 seeds), descriptive with 5 seeds or fewer.
        few = min_seeds <= FEW_SEEDS
        level = confidence if few else expanded_confidence(confidence, min_seeds)
        spread, messages = _quiet(variance.variance_tests, data, predictions, orders=orders, confidence=confidence,
                                  bootstrap_confidence=level, n_boot=min(n_boot, 2000) if variance_boot else 0, seed=seed,
                                  n_permutations=n_permutations, permutation_intervals=permutation_intervals,
                                  center=("median", "mean") if variance_boot else ())  # fmt: skip
        notes.extend(messages)
        sd_ci = (spread["test"] == "sd") & spread["ci_low"].notna()
        if few:
            spread.loc[sd_ci, "method"] = spread.loc[sd_ci, "method"] + (
                f"; the CI is descriptive: a bootstrap over {min_seeds} seeds undercovers"
            )
        else:
            spread.loc[sd_ci, "method"] = spread.loc[sd_ci, "method"].str.replace(
                f"{level * 100:g}% CI", f"{confidence * 100:g}% CI", regex=False
            ) + f"; expanded for {min_seeds} seeds (the bootstrap's {level * 100:.4g}% quantiles)"
        frames.append(spread)
    if "aso" in include:
        asos, messages = _quiet(aso_module.aso_table, data, orders=orders, confidence=confidence, n_boot=aso_boot,
                                seed=seed)  # fmt: skip
        notes.extend(messages)
        asos["method"] = asos["method"] + "; descriptive: eps_min is not a calibrated test (seqrob analyze calibrate)"
        frames.append(asos)
    return frames, notes


def _paired(data: pd.DataFrame, orders: Sequence[str]) -> bool:
    """Orders share seeds (2+ seeds run with every order): the seed pairs them."""
    seed_sets = [set(data.loc[data["order"] == o, "seed"]) for o in orders]
    return len(set.intersection(*seed_sets)) >= 2 if seed_sets else False


def _primary_contrasts(ts: pd.DataFrame, paired: bool) -> pd.DataFrame:
    """The per-family contrasts verdicts read: the t over seeds of each family's own differences.

    Each family is tested with its own seed-to-seed spread, so a family whose runs are far
    noisier than the others', or a run whose luck differs between families (run x family
    effects), cannot make another family's difference look significant -- the failure of
    the mixed model's contrast, which pools one run variance over all families (on real
    runs relabelled so that order cannot matter, it called false effects in 65% of
    relabellings). Paired t on the per-seed differences when the orders share seeds,
    Welch's t otherwise.
    """
    ts = ts.copy()
    what = ("per-seed differences of the family means" if paired
            else "the runs' family means (orders run with different seeds)")  # fmt: skip
    ts["method"] = ts["method"] + (f"; primary: each family tested on its own {what}, so unequal run noise between "
                                   "families and run x family luck are allowed for")  # fmt: skip
    return ts


def _mixed_for_reference(tests: pd.DataFrame) -> pd.DataFrame:
    """The mixed model's rows, kept for comparison with lme4/lmerTest, never for verdicts.

    Its contrasts (``mixed_contrast``) borrow one run variance from every family and its
    F tests (``lrt_order``, ``lrt_order_family``) assume it too; real runs break that
    (run x family luck, families 30x noisier than others), so their p-values are for
    reference: the contrast rows' p-value is dropped, the F tests keep theirs in a Holm
    family of their own.
    """
    tests = tests.copy()
    contrast = tests["test"] == "contrast"
    tests.loc[contrast, "test"] = "mixed_contrast"
    tests.loc[contrast, "p_value"] = np.nan
    tests.loc[contrast, "method"] = tests.loc[contrast, "method"] + (
        "; for reference (estimates only): the model pools one run variance over families, which real runs break; "
        "the contrast rows are the verdicts' tests"
    )
    f_tests = tests["test"].isin(("lrt_order", "lrt_order_family"))
    tests.loc[f_tests, "method"] = tests.loc[f_tests, "method"] + (
        "; for reference, not used for verdicts (assumes one run variance for all families and no run x family "
        "effect): the verdicts read order_anova / order_family_anova"
    )
    return tests


def expanded_confidence(confidence: float, n_seeds: int) -> float:
    """The bootstrap level whose percentile interval is the expanded ``confidence`` interval.

    A bootstrap over S seeds spreads a mean as ``sqrt((S - 1) / S) s / sqrt(S)`` with
    normal tails, where the t interval uses ``s / sqrt(S)`` and t tails on S - 1 df.
    Hesterberg's expanded percentile interval takes the bootstrap quantiles at
    ``alpha' / 2 = Phi(-sqrt(S / (S - 1)) t_{S-1, 1 - alpha/2})`` instead of ``alpha / 2``.
    """
    alpha = 1.0 - confidence
    z = math.sqrt(n_seeds / (n_seeds - 1)) * stats.t.isf(alpha / 2, n_seeds - 1)
    return float(1.0 - 2.0 * stats.norm.sf(z))


def _expanded_p(p: np.ndarray, n_seeds: int) -> np.ndarray:
    """Map a bootstrap two-sided p-value onto the expanded scale (the inverse of
    :func:`expanded_confidence`: ``p < expanded alpha`` iff the mapped p < alpha)."""
    z = stats.norm.isf(np.clip(np.asarray(p, dtype=float), 1e-300, 1.0) / 2)
    return 2.0 * stats.t.sf(z * math.sqrt((n_seeds - 1) / n_seeds), n_seeds - 1)


def _bootstrap_rows(data, predictions, *, orders, alpha, n_boot, seed, n_seeds) -> tuple[pd.DataFrame, list[str]]:
    """Paired bootstrap means and contrasts, made honest for the number of seeds.

    With more than :data:`FEW_SEEDS` seeds, intervals are expanded percentile / BCa
    intervals (see :func:`expanded_confidence`) and p-values mapped to match: the plain
    percentile interval covers about 90% at 10 seeds (``seqrob analyze calibrate``).
    With :data:`FEW_SEEDS` or fewer, no expansion rescues a bootstrap over a handful of
    seeds (3 seeds give 10 distinct resamples): the rows stay as descriptions, without
    p-values; the ``contrast`` rows (t over seeds) carry the inference.
    """
    confidence = 1 - alpha
    statistics = ("bootstrap_mean", "contrast")
    few = n_seeds <= FEW_SEEDS
    level = confidence if few else expanded_confidence(confidence, n_seeds)
    boot, messages = _quiet(bootstrap.paired_bootstrap, data, predictions, orders=orders, statistics=statistics,
                            n_boot=n_boot, confidence=level, seed=seed)  # fmt: skip
    boot = _rename(boot, "contrast", "bootstrap_contrast")
    tested = boot["test"] == "bootstrap_contrast"
    if few:
        boot.loc[tested, "p_value"] = np.nan
        boot["method"] = boot["method"] + (
            f"; descriptive: with {n_seeds} seeds a bootstrap over seeds undercovers, so no p-value "
            "(inference: the contrast rows, a t over seeds)"
        )
    else:
        boot.loc[tested, "p_value"] = _expanded_p(boot.loc[tested, "p_value"].to_numpy(), n_seeds)
        boot["method"] = boot["method"].str.replace(f"{level * 100:g}% CI", f"{confidence * 100:g}% CI", regex=False)
        boot["method"] = boot["method"] + (
            f"; expanded for {n_seeds} seeds (Hesterberg 2015): the bootstrap's {level * 100:.4g}% quantiles, "
            f"p-values mapped to match"
        )
    return boot, messages


def _descriptive_means(data: pd.DataFrame, orders: list[str], label: str) -> pd.DataFrame:
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


# --- multiplicity, power, verdicts ---------------------------------------------------------

# Each tuple is one family of tests corrected together, within one task x metric.
_FAMILIES = (
    ("contrast",),
    ("order_anova", "order_family_anova"),
    ("lrt_order", "lrt_order_family"),
    ("variance",),
    ("pitman_morgan",),
    ("levene",),
    ("run_variance_lrt",),
    ("signflip_contrast",),
    ("bootstrap_contrast",),
)


# Rows that are one test reported twice (same statistic and p in the same family).
_TWIN_KEYS = ["test", "task", "metric", "family", "statistic", "p_value"]


def _adjust(results: pd.DataFrame, *, correction: str, label: str) -> pd.DataFrame:
    results = results.copy()
    # With two orders the variance test over all orders is the pair's test: count it once.
    twins = results.duplicated(_TWIN_KEYS) & results["test"].isin(("variance", "pitman_morgan", "levene"))
    for tests in _FAMILIES:
        for (task, metric), _ in results.groupby(["task", "metric"], dropna=False):
            mask = results["test"].isin(tests) & results["p_value"].notna()
            mask &= (results["task"] == task) & (results["metric"] == metric)
            if "bootstrap_contrast" in tests:  # one p-value per term and family: the first interval type
                mask &= ~results.duplicated(["test", "term", "task", "metric", "family"])
            twin = mask & twins
            mask &= ~twins
            n = int(mask.sum())
            if n == 0:
                continue
            adjusted = multipletests(results.loc[mask, "p_value"].to_numpy(), method=CORRECTIONS[correction])[1]
            results.loc[mask, "p_adjusted"] = adjusted
            what = f"{correction} over {n} {' and '.join(tests)} test{'s' if n > 1 else ''} of {task} {metric}"
            results.loc[mask, "method"] = results.loc[mask, "method"].fillna("") + f"; p_adjusted: {what}"
            if twin.any():
                first = results.groupby(_TWIN_KEYS, dropna=False)["p_adjusted"].transform("first")
                results.loc[twin, "p_adjusted"] = first[twin]
                results.loc[twin, "method"] = results.loc[twin, "method"].fillna("") + (
                    f"; p_adjusted: {what} (the same test as the row over all orders, counted once)"
                )
    return results


def _points(value: float, metric: str) -> str:
    from seqrob.warehouse.ingest import is_bounded_metric

    if is_bounded_metric(metric):
        return f"{value * 100:+.1f} points"
    return f"{value:+.3g}"


def _verdicts(results, design, *, label, alpha, correction, power_table, effect) -> list[str]:
    sentences: list[str] = []
    contrasts = results[(results["test"] == "contrast") & results["family"].notna()]
    min_seeds = min(design["seeds_per_order"].values())
    if contrasts.empty:
        if min_seeds < 3:
            sentences.append(f"{label}: the design cannot tell whether order matters: {min_seeds} seed(s) per order")
        return sentences
    metric = contrasts["metric"].iloc[0]
    significant = contrasts[contrasts["p_adjusted"] < alpha].sort_values("p_adjusted")
    if len(significant):
        parts = []
        for family, rows in significant.groupby("family", sort=False):
            for row in rows.itertuples():
                parts.append(
                    f"{family}: {row.term} {_points(row.estimate, metric)} "
                    f"[{_points(row.ci_low, metric)}, {_points(row.ci_high, metric)}], "
                    f"p_{correction} = {row.p_adjusted:.2g}"
                )
        families = list(dict.fromkeys(significant["family"]))
        sentences.append(f"{label}: order changes the score in {_join(families)} — " + "; ".join(parts))
        others = sorted(set(contrasts["family"]) - set(families))
        if others:
            sentences.append(f"{label}: no evidence that order matters in {_join(others)}")
    else:
        sentences.append(
            f"{label}: no evidence that order changes the score in any family "
            f"(all {len(contrasts)} contrasts p_{correction} >= {alpha})"
        )
    spread = results[(results["test"] == "variance") & (results["p_adjusted"] < alpha)]
    if len(spread):
        where = [f"{r.family or 'all languages'} ({r.term}: {'SD ratio' if ' vs ' in r.term else 'largest/smallest SD'} "
                 f"{r.estimate:.2f}, permutation test of spread, p_{correction} = {r.p_adjusted:.2g})"
                 for r in spread.itertuples()]  # fmt: skip
        sentences.append(f"{label}: order changes across-seed variance: " + "; ".join(where))
    else:
        sentences.append(f"{label}: no evidence that order changes across-seed variance")
    if min_seeds <= FEW_SEEDS:
        sentences.append(
            f"{label}: {min_seeds} seeds per order: the contrasts' t over seeds has {min_seeds - 1} df, bootstrap "
            "intervals over so few seeds are descriptive, and the variance test can hardly reach significance"
        )
    if len(power_table) and power_table["seeds_needed"].notna().any():
        undecided = contrasts[contrasts["p_adjusted"] >= alpha]["family"].unique()
        needs = power_table[power_table["family"].isin(undecided) & power_table["seeds_needed"].notna()]
        needs = needs[needs["seeds_needed"] > min_seeds]
        if len(needs):
            detail = ", ".join(f"{r.family} {int(r.seeds_needed)}" for r in needs.itertuples())
            sentences.append(
                f"{label}: to detect an order difference of {_points(effect, metric)} with 80% power, seeds per "
                f"order needed: {detail}"
            )
    return sentences


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _store(warehouse, outcome: Significance) -> int:
    from seqrob import __version__
    from seqrob.warehouse.analyses import store_analysis

    with warehouse.transaction() as con:
        return store_analysis(
            con,
            kind=KIND,
            parameters=outcome.parameters,
            results=outcome.results,
            design=outcome.design,
            model={"models": outcome.models, "verdicts": outcome.verdicts, "cautions": outcome.cautions,
                   "power": records(outcome.power)},
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
        ``task, metric`` and :func:`~seqrob.analysis.power.family_power`'s columns.
    """
    from seqrob.analysis import power as power_module

    scores, _ = _load(warehouse, task=task, metric=metric, experiment=experiment, method=None)
    frames = []
    for (method, task_name, metric_name), data in scores.groupby(["method", "task", "metric"]):
        min_seeds = int(data.groupby("order")["seed"].nunique().min())
        orders = _order_list(data, baseline)
        if len(orders) < 2 or min_seeds < 2:
            raise DesignError(
                f"{task_name} {metric_name}: needs 2+ orders with 2+ seeds each to estimate the seed-to-seed noise"
            )
        k, n_families = len(orders), data["family"].nunique()
        pairs = k * (k - 1) // 2
        table = power_module.family_power(data, orders=orders, effect=effect, alpha=alpha, power=power,
                                          sd_ratio=sd_ratio, tests_corrected=pairs * n_families,
                                          variance_tests_corrected=(pairs + (k > 2)) * n_families,
                                          paired=_paired(data, orders))  # fmt: skip
        frames.append(table.assign(task=task_name, metric=metric_name))
    out = pd.concat(frames, ignore_index=True)
    return out[["task", "metric"] + [c for c in out.columns if c not in ("task", "metric")]]
