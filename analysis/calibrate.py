"""Are seqrob's tests honest? Type-I error and CI coverage measured on simulated runs.

:func:`calibrate` simulates stored runs from a known truth
(:func:`seqrob.warehouse.simulate.simulate`, always with run-level noise: a run's
deviation is shared by all its languages) over a grid of designs -- seeds per order,
number of orders, few or many language families -- and passes every data set through
the function that ``seqrob analyze significance`` uses for one task x metric
(``seqrob.analysis.procedures.run_tests``: the mixed model's tests and contrasts, the
paired bootstrap, the few-seed sign-flip and t procedures, the variance tests and
ASO). Per design and test it reports

- the type-I error at ``alpha`` on data with no order effect and equal run variances
  (every row of that test with a p-value counts; unadjusted p-values, the error rate
  of one test);
- the coverage of the 95% intervals of the *true* difference on data with planted
  order effects (``Truth.expected_contrasts``' ``difference``; for rows over all
  languages, its language-weighted mean), and of the true SD ratio (1) on null data;

with Monte Carlo standard errors and whether the targets are met: type-I error in
``[0.04, 0.06]`` and coverage in ``[0.93, 0.97]`` (DESIGN.md, issue 4).

A data set gives many rows of some tests (every family x pair of orders), and those
rows are correlated, so the Monte Carlo SE is computed from the per-data-set rates
(``sd / sqrt(n_sim)``), not as if every row were independent.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqrob.warehouse.errors import InputError

__all__ = ["FAMILY_SETS", "NOISE", "TARGETS", "calibrate", "markdown", "pooled_status", "summary_markdown"]

#: The two sets of languages of the grid. "few": 10 languages in 3 families
#: (4 + 3 + 3); "many": the 30 XTREME languages in 12 families, four of them with one
#: language (seqrob.warehouse.simulate.DEFAULT_FAMILIES).
FAMILY_SETS: Mapping[str, Mapping[str, str]] = {
    "few": {
        "en": "Indo-European", "de": "Indo-European", "fr": "Indo-European", "es": "Indo-European",
        "fi": "Uralic", "et": "Uralic", "hu": "Uralic",
        "ta": "Dravidian", "te": "Dravidian", "ml": "Dravidian",
    },
}  # fmt: skip

#: The noise of every simulated design (accuracy units): the run SD (seed x order) is
#: twice the seed SD and comparable to the per-language residual of a run (residual SD
#: plus the binomial noise of 200 examples, about 0.03), so run-level noise matters.
NOISE: Mapping[str, float] = {
    "language_sd": 0.05,
    "seed_sd": 0.01,
    "run_sd": 0.02,
    "residual_sd": 0.01,
    "n_examples": 200,
}

#: Target bands (DESIGN.md, issue 4).
TARGETS: Mapping[str, tuple[float, float]] = {"type_I": (0.04, 0.06), "coverage": (0.93, 0.97), "family_wise": (0.0, 0.05)}

_ORDERS = ("none", "nli>qa", "qa>nli", "ner>nli>qa")
# Planted effects for the coverage data sets (order index, family index) -> delta.
_PLANTED = {(1, 0): 0.04, (1, 1): -0.03, (2, 1): 0.02, (3, 0): 0.05}
_Z99 = 2.5758293035489004


def _family_set(name: str) -> Mapping[str, str]:
    if name == "many":
        from seqrob.warehouse.simulate import DEFAULT_FAMILIES

        return DEFAULT_FAMILIES
    if name not in FAMILY_SETS:
        raise InputError(f"unknown family set '{name}'", fix="use families=('few', 'many')")
    return FAMILY_SETS[name]


#: The noise structures of the grid. ``model`` is the noise the mixed model assumes (one
#: run effect shared by every language, one residual variance); the others are truths it
#: does not assume, as real runs show them: ``run_x_family`` (a run's luck differs between
#: families, and families' run SDs are spread 4x apart), ``outliers`` (heavy-tailed run
#: effects, t with 3 df, and 5% of runs failing by 15 points), ``ceiling`` (the model on the
#: logit scale at a base accuracy of 0.95: skewed scores near 1, with run x family noise and
#: spread family SDs) and ``unbalanced`` (run x family noise, spread SDs, and the last order
#: run with two seeds fewer).
NOISES: tuple[str, ...] = ("model", "run_x_family", "outliers", "ceiling", "unbalanced")
#: The tests the verdicts read (the rest are reported for reference).
#: The method questions' verdict tests (:mod:`seqrob.analysis.methods`), as the table names them.
METHOD_VERDICT_TESTS = ("method_contrast", "order_method_contrast", "method_variance (permutation)")
VERDICT_TESTS = ("contrast", "order_anova", "order_family_anova", "variance (permutation)", *METHOD_VERDICT_TESTS)


@dataclass(frozen=True)
class _Design:
    seeds: int
    orders: int
    families: str
    noise: str = "model"
    paired: bool = True  # every order run with the same seeds

    @property
    def label(self) -> str:
        return f"{self.seeds} seeds, {self.orders} orders, {self.families} families, {self.noise} noise"


def noise_options(noise: str, family_names: Sequence[str], orders: Sequence[str], seeds: int) -> dict:
    """The :func:`~seqrob.warehouse.simulate.simulate` options of one noise structure (:data:`NOISES`)."""
    spread = {}
    if len(family_names) > 1:  # family SDs 0.5x to 2x: the noisiest family 4x the quietest
        spread = {f: float(x) for f, x in zip(family_names, np.geomspace(0.5, 2.0, len(family_names)))}
    base = dict(NOISE)
    if noise == "model":
        return base
    if noise == "run_x_family":
        return {**base, "run_family_sd": 0.02, "family_sd_scale": spread}
    if noise == "outliers":
        return {**base, "run_family_sd": 0.01, "run_tail_df": 3.0, "outlier_rate": 0.05, "outlier_shift": 0.15}
    if noise == "ceiling":
        return {"scale": "logit", "base": 0.95, "language_sd": 0.5, "seed_sd": 0.1, "run_sd": 0.2,
                "run_family_sd": 0.15, "residual_sd": 0.1, "n_examples": 200, "family_sd_scale": spread}  # fmt: skip
    if noise == "unbalanced":
        return {**base, "run_family_sd": 0.02, "family_sd_scale": spread,
                "seeds_per_order": {orders[-1]: max(3, seeds - 2)}}  # fmt: skip
    raise InputError(f"unknown noise '{noise}'", fix=f"use some of {', '.join(NOISES)}")


# --- what each test row is, for the table --------------------------------------------------


def _kind(test: str, term: str, variant: str | None) -> str | None:
    """The calibration table's name for a result row (None: not calibrated here)."""
    if test in ("lrt_order", "lrt_order_family", "contrast", "order_anova", "order_family_anova", "mixed_contrast",
                "signflip_contrast", "aso"):
        return test
    if test == "bootstrap_contrast":
        return f"bootstrap_contrast ({variant})"
    if test == "variance":
        return "variance (permutation)"
    if test in ("method_contrast", "order_method_contrast"):
        return test
    if test == "method_variance":
        return "method_variance (permutation)"
    if test == "pitman_morgan":
        return "pitman_morgan"
    if test == "levene" and variant in ("Brown-Forsythe", "Levene"):
        return f"levene ({variant})"
    if test == "run_variance_lrt":
        return "run_variance_lrt (REML)"
    return None


# --- one data set ------------------------------------------------------------------------


def _simulate(design: _Design, *, planted: bool, seed: int, methods: bool = False):
    """One simulated data set of ``design``; ``methods``: fine-tuning and prompt tuning, every
    order under each (planted: a method effect in the first family and an order x method
    effect in the second, besides the order effects)."""
    from seqrob.warehouse.simulate import simulate

    families = _family_set(design.families)
    orders = _ORDERS[: design.orders]
    names = list(dict.fromkeys(families.values()))
    options = noise_options(design.noise, names, orders, design.seeds)
    effects, extra = None, {}
    size = 10.0 if options.get("scale") == "logit" else 1.0  # log-odds x 10: about the same points near 0.95
    if planted:
        effects = {(orders[o], names[f]): size * delta for (o, f), delta in _PLANTED.items() if o < len(orders)}
    if methods:
        extra = {"methods": ("finetune", "prompt")}
        if planted:
            extra["method_effects"] = {("prompt", names[0]): size * 0.03}
            effects[("prompt", orders[1], names[-1])] = effects.get((orders[1], names[-1]), 0.0) + size * 0.02
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate(orders=orders, seeds=design.seeds, languages=tuple(families), families=families,
                        effects=effects, outcomes=False, seed=seed, **options, **extra)  # fmt: skip


def _rows(data: pd.DataFrame, *, alpha: float, n_boot: int, aso_boot: int, seed: int, include: Sequence[str],
          baseline: str = "none") -> pd.DataFrame:  # fmt: skip
    """The rows ``seqrob analyze significance`` reports for these scores, with its adjusted p-values.

    Calibration inverts no permutation test into an interval (the SD-ratio CI holds 1
    exactly when its test does not reject, so its coverage of 1 is read from the p-value)
    and draws 999 relabellings per variance test.
    """
    from seqrob.analysis.design import order_list
    from seqrob.analysis.multiplicity import adjust
    from seqrob.analysis.procedures import run_tests

    orders = order_list(data, baseline)
    frames = run_tests(data, None, orders=orders, alpha=alpha, n_boot=n_boot, seed=seed,
                       min_seeds=int(data.groupby("order")["seed"].nunique().min()), aso_boot=aso_boot,
                       include=include, n_permutations=999, permutation_intervals=False,
                       variance_boot="bootstrap" in include).frames  # fmt: skip
    rows = pd.concat([f for f in frames if len(f)], ignore_index=True)
    return adjust(rows, correction="holm")


def _truth_lookup(sim) -> dict:
    """(family or None, 'A vs B') -> the true difference A - B."""
    table = sim.truth.expected_contrasts(pairwise=True)
    out: dict = {}
    for (order, reference), rows in table.groupby(["order", "baseline"], sort=False):
        for row in rows.itertuples():
            out[(row.family, f"{order} vs {reference}")] = row.difference
            out[(row.family, f"{reference} vs {order}")] = -row.difference
        weights = rows["n_languages"].to_numpy(dtype=float)
        overall = float(np.sum(weights * rows["difference"].to_numpy()) / weights.sum())
        out[(None, f"{order} vs {reference}")] = overall
        out[(None, f"{reference} vs {order}")] = -overall
    return out


#: The Holm families whose family-wise error under a global null is measured.
_HOLM_FAMILIES = {
    "contrast": ("contrast",),
    "order_anova + order_family_anova": ("order_anova", "order_family_anova"),
    "variance (permutation)": ("variance",),
    "method_contrast": ("method_contrast",),
    "order_method_contrast": ("order_method_contrast",),
    "method_variance (permutation)": ("method_variance",),
}


def _null_measures(rows: pd.DataFrame, alpha: float) -> dict[tuple[str, str], float]:
    """Per (test, measure): the share of this data set's rows that reject / cover, and per
    Holm family whether any of its adjusted p-values rejects (``family_wise``)."""
    out: dict[tuple[str, str], list] = {}
    for row in rows.itertuples():
        kind = _kind(row.test, row.term, row.variant)
        if kind is None:
            continue
        if kind == "aso":
            # ASO claims "a is better than b" when eps_min < 0.5 (Dror et al. 2019).
            # (Its p-value, of eps_min >= 0.5, gives the same claims: one measure is enough.)
            out.setdefault((kind, "false_claim"), []).append(row.statistic < 0.5)
            continue
        if not np.isnan(row.p_value):
            out.setdefault((kind, "type_I"), []).append(row.p_value < alpha)
        if kind.startswith(("variance (permutation)", "method_variance")) and " vs " in str(row.term) \
                and not np.isnan(row.p_value):  # fmt: skip
            # The SD-ratio CI inverts this test: it holds the true ratio 1 exactly when p > alpha.
            out.setdefault(("sd_ratio (permutation CI)", "coverage"), []).append(row.p_value > alpha)
        if kind == "pitman_morgan" and " vs " in str(row.term) and not np.isnan(row.ci_low):
            out.setdefault(("sd_ratio (Pitman-Morgan CI)", "coverage"), []).append(row.ci_low <= 1.0 <= row.ci_high)
    measures = {key: float(np.mean(values)) for key, values in out.items()}
    for name, tests in _HOLM_FAMILIES.items():
        member = rows["test"].isin(tests) & rows["p_adjusted"].notna()
        if member.any():
            measures[(f"{name} (Holm family)", "family_wise")] = float((rows.loc[member, "p_adjusted"] < alpha).any())
    return measures


def _coverage_measures(rows: pd.DataFrame, truth: dict) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], list] = {}
    for row in rows.itertuples():
        kind = _kind(row.test, row.term, row.variant)
        if kind not in ("contrast", "mixed_contrast", "signflip_contrast", "method_contrast",
                        "order_method_contrast") and not str(kind).startswith(
            "bootstrap_contrast"
        ):
            continue
        key = (row.family, row.term)
        if key not in truth or np.isnan(row.ci_low):
            continue
        out.setdefault((kind, "coverage"), []).append(row.ci_low <= truth[key] <= row.ci_high)
    return {key: float(np.mean(values)) for key, values in out.items()}


def _one(design: _Design, i: int, *, alpha: float, n_boot: int, aso_boot: int, seed: int, include) -> dict:
    noise = NOISES.index(design.noise)
    base = np.random.SeedSequence([seed, design.seeds, design.orders, len(design.families), i, noise])
    null_seed, planted_seed = (int(s.generate_state(1)[0]) for s in base.spawn(2))
    options = dict(alpha=alpha, n_boot=n_boot, aso_boot=aso_boot, seed=i, include=include)
    if "methods" in include:  # the method questions (seqrob.analysis.methods), on two simulated methods
        null = _simulate(design, planted=False, seed=null_seed, methods=True)
        measures = _null_measures(_method_rows(null.scores, alpha=alpha, seed=i), alpha)
        planted = _simulate(design, planted=True, seed=planted_seed, methods=True)
        measures.update(_coverage_measures(_method_rows(planted.scores, alpha=alpha, seed=i),
                                           _method_truth(planted)))  # fmt: skip
        include = [p for p in include if p != "methods"]
        if not include:
            return measures
    else:
        measures = {}
    null = _simulate(design, planted=False, seed=null_seed)
    measures.update(_null_measures(_rows(null.scores, **options), alpha))
    if set(include) & {"verdicts", "mixed", "bootstrap", "few_seeds"}:  # procedures with intervals of a difference
        planted = _simulate(design, planted=True, seed=planted_seed)
        measures.update(_coverage_measures(_rows(planted.scores, **options), _truth_lookup(planted)))
    return measures


def _method_truth(sim) -> dict:
    """(family, term) -> the true difference of each method question's contrast
    (:meth:`Truth.expected_method_contrasts`; order x method: an order's row minus the other's)."""
    table = sim.truth.expected_method_contrasts()
    out = {}
    for (_, family, method, reference), part in table.groupby(["task", "family", "method", "reference"]):
        by_order = part.set_index("order")["difference"]
        out[(family, f"{method} vs {reference}")] = float(by_order["*"])
        orders = [o for o in _ORDERS if o in by_order.index]
        for k, a in enumerate(orders):
            for b in orders[:k]:
                out[(family, f"{a} vs {b}: {method} vs {reference}")] = float(by_order[a] - by_order[b])
    return out


def _run_design(args) -> tuple[_Design, list[dict], float]:
    design, n_sim, alpha, n_boot, aso_boot, seed, include = args
    from seqrob.analysis.mixed import _one_blas_thread

    started = time.perf_counter()
    with _one_blas_thread():
        results = [_one(design, i, alpha=alpha, n_boot=n_boot, aso_boot=aso_boot, seed=seed, include=include)
                   for i in range(n_sim)]  # fmt: skip
    return design, results, time.perf_counter() - started


# --- the table ---------------------------------------------------------------------------

_DESCRIPTIVE = {
    "aso": "descriptive: ASO's eps_min is not a calibrated test (no verdict uses it); the rate is how often "
    "eps_min < 0.5 claims one order better than another under the null",
}


def _for_reference(test: str) -> bool:
    """Tests reported beside the ones verdicts read (:data:`VERDICT_TESTS`)."""
    return str(test).startswith(("levene", "run_variance_lrt", "pitman_morgan", "sd_ratio (Pitman-Morgan", "lrt_order",
                                 "mixed_contrast", "signflip_contrast", "bootstrap_contrast"))  # fmt: skip


def _status(test: str, measure: str, estimate: float, se: float, seeds: int, alpha: float,
            orders: int = 4, paired: bool = True) -> tuple[str, str]:  # fmt: skip
    from seqrob.analysis.design import FEW_SEEDS

    low, high = TARGETS.get(measure, (math.nan, math.nan))
    if test == "aso":
        return "descriptive", _DESCRIPTIVE["aso"]
    if test.startswith(("variance (permutation)", "sd_ratio (permutation", "method_variance")) and paired \
            and 2.0 / 2**seeds > alpha:  # fmt: skip
        return "refuses", (f"exact permutation test: the smallest p of a pair of orders with {seeds} seeds is "
                           f"{2.0 / 2**seeds:.3g} > alpha, so the pairwise tests never reject (and say so); "
                           + ("only the test over all orders can" if orders > 2 else "nor can the test over both"))  # fmt: skip
    secondary = _for_reference(test) and np.isfinite(estimate) and not low <= estimate <= high
    if secondary and not (se > 0 and estimate + _Z99 * se >= low and estimate - _Z99 * se <= high):
        return "for reference", "reported for reference and not used for verdicts"
    if test.startswith("bootstrap_contrast") and seeds <= FEW_SEEDS:
        return "not trusted", (f"<= {FEW_SEEDS} seeds: reported without p-value, as a description; "
                               "the seed-level t carries the inference")  # fmt: skip
    if test == "signflip_contrast" and 2.0 / 2**seeds > alpha:
        return "refuses", (f"exact test: the smallest two-sided p with {seeds} seeds is {2.0 / 2**seeds:.3g} > alpha, "
                           "so it never rejects and its interval is unbounded")  # fmt: skip
    if not np.isfinite(estimate):
        return "no data", ""
    if low <= estimate <= high:
        return "met", ""
    if se > 0 and estimate + _Z99 * se >= low and estimate - _Z99 * se <= high:
        return "met within MC error", "outside the band, but the band is within the 99% Monte Carlo interval"
    liberal = estimate < low if measure == "coverage" else estimate > high
    return ("missed (liberal)" if liberal else "missed (conservative)"), ""


def _summarise(design: _Design, results: list[dict], alpha: float, seconds: float) -> list[dict]:
    keys = sorted({key for r in results for key in r})
    rows = []
    for test, measure in keys:
        values = np.array([r[(test, measure)] for r in results if (test, measure) in r], dtype=float)
        n = len(values)
        estimate = float(values.mean()) if n else math.nan
        se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        judged = se
        if se == 0 and measure in TARGETS:
            # Every data set gave 0 (or every one 1): no spread to measure, but a rate near
            # the band still gives all zeros in a few data sets. Judge with the binomial SE
            # at the nearest band edge instead of calling it missed.
            edge = min(TARGETS[measure], key=lambda bound: abs(bound - estimate))
            judged = math.sqrt(edge * (1 - edge) / n)
        status, note = _status(test, measure, estimate, judged, design.seeds, alpha, design.orders, design.paired)
        low, high = TARGETS.get(measure, (math.nan, math.nan))
        rows.append({
            "seeds": design.seeds, "orders": design.orders, "families": design.families, "noise": design.noise,
            "test": test,
            "measure": measure, "estimate": estimate, "mc_se": se, "n_sim": n, "target_low": low,
            "target_high": high, "status": status, "note": note, "seconds": seconds,
        })  # fmt: skip
    return rows


def calibrate(
    *,
    seeds: Sequence[int] = (3, 5, 10, 20),
    orders: Sequence[int] = (2, 4),
    families: Sequence[str] = ("few", "many"),
    noises: Sequence[str] = NOISES,
    n_sim: int | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    fast: bool = False,
    n_boot: int | None = None,
    procedures: Sequence[str] | None = None,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Type-I error and 95% CI coverage of every test seqrob reports, per design.

    Parameters
    ----------
    seeds, orders, families
        The grid: seeds per order (every order run with the same seeds), number of
        orders (2 to 4; ``none`` first), and the language set (``"few"``: 10 languages
        in 3 families; ``"many"``: 30 in 12, four of one language).
    noises
        Noise structures (:data:`NOISES`): ``model`` is the mixed model's own; the others
        are truths no model here assumes (run x family luck, family SDs 4x apart, outlier
        runs, heavy tails, a ceiling, unequal seeds).
    n_sim
        Data sets per design and kind (null and planted). Default 200; ``fast`` 40.
    alpha
        Level of the tests (intervals are ``1 - alpha``).
    seed
        Seed of the simulations (each design and replicate has its own stream).
    fast
        A quick run: fewer data sets and bootstrap replicates (for the test suite).
    n_boot
        Bootstrap replicates per data set (default 2000; ``fast`` 1000). The expanded
        bootstrap intervals use tail quantiles near 1%, so fewer are not recommended.
    procedures
        Which of ``seqrob.analysis.procedures.PROCEDURES`` to run: ``"verdicts"``
        (contrast, order_anova, order_family_anova), ``"mixed"`` (lrt_order,
        lrt_order_family, mixed_contrast, the run-variance LRT), ``"bootstrap"``,
        ``"few_seeds"`` (sign-flip, at 5 seeds or fewer), ``"variance"`` (permutation
        tests for verdicts; Pitman-Morgan, Brown-Forsythe and Levene for reference),
        ``"aso"``; and ``"methods"``: the method questions
        (:mod:`seqrob.analysis.methods`) on simulated fine-tuning and prompt tuning runs
        (every order under each; planted: a method effect in the first family and an
        order x method effect in the last). Default: all under ``model`` noise,
        ``("verdicts", "variance")`` under the others (the rows verdicts read, and the
        variance references).
    workers
        Processes (designs are spread over them).
    progress
        Called with a line after each design.

    Returns
    -------
    pandas.DataFrame
        One row per design x test x measure:

        - ``seeds, orders, families, noise``: the design.
        - ``test``: the result row's test (``lrt_order``, ``contrast``, ...; variance
          tests by method; bootstrap intervals by type; ``sd_ratio (Pitman-Morgan CI)``
          for the exact SD-ratio CIs of the variance rows).
        - ``measure``: ``type_I`` (share of rows with p < alpha on null data),
          ``family_wise`` (share of null data sets where any Holm-adjusted p of the
          family ``test`` names is below alpha; target at most alpha),
          ``coverage`` (share of intervals holding the true value), or, for ASO,
          ``false_claim`` (share of null pairs with eps_min < 0.5).
        - ``estimate``: the rate; ``mc_se``: its Monte Carlo SE (from per-data-set
          rates); ``n_sim``: data sets behind it.
        - ``target_low, target_high``: the band.
        - ``status``: ``met``, ``met within MC error`` (the band is inside the 99%
          Monte Carlo interval), ``missed (liberal)`` / ``missed (conservative)``,
          ``refuses`` (an exact test that cannot reject at alpha with so few seeds),
          ``not trusted`` (reported by seqrob as a description only, without p-value or
          flagged in ``method``), ``descriptive`` (ASO), ``for reference`` (a test
          reported beside the one verdicts read, outside its band).
        - ``note``: why, for the last three; ``seconds``: the design's run time (in its
          process).

    Notes
    -----
    Every data set: :data:`NOISE` (language, seed, run and residual SDs, 200 examples
    per language; scores only, so the bootstrap resamples seeds), seeds shared by all
    orders. Null data sets have no order effect and one run SD; planted ones add
    :data:`_PLANTED` (up to 5 points in two families). Coverage is measured on planted
    data against ``Truth.expected_contrasts(pairwise=True)["difference"]``; the
    variance tests' SD-ratio intervals on null data (true ratio 1).

    Examples
    --------
    >>> table = calibrate(seeds=(5,), orders=(2,), families=("few",), n_sim=5, fast=True)
    >>> sorted(set(table["measure"]))
    ['coverage', 'false_claim', 'family_wise', 'type_I']
    """
    if n_sim is None:
        n_sim = 40 if fast else 200
    if n_boot is None:
        n_boot = 1000 if fast else 2000
    aso_boot = 200 if fast else 500
    if isinstance(n_sim, bool) or not isinstance(n_sim, (int, np.integer)) or n_sim < 2:
        raise InputError(f"n_sim must be an integer >= 2, not {n_sim!r}", fix="pass n_sim=200")
    if not 0 < alpha < 0.5:
        raise InputError(f"alpha {alpha} is outside (0, 0.5)", fix="use alpha=0.05")
    for value in seeds:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 3:
            raise InputError(f"seeds must be integers >= 3, not {value!r}", fix="use seeds=(3, 5, 10, 20)")
    for value in orders:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 2 <= value <= len(_ORDERS):
            raise InputError(f"orders must be integers in 2..{len(_ORDERS)}, not {value!r}", fix="use orders=(2, 4)")
    for name in families:
        _family_set(name)
    for name in noises:
        if name not in NOISES:
            raise InputError(f"unknown noise '{name}'", fix=f"use some of {', '.join(NOISES)}")
    from seqrob.analysis.procedures import PROCEDURES

    include = None if procedures is None else tuple(procedures)
    if include is not None:
        unknown = [name for name in include if name not in (*PROCEDURES, "methods")]
        if unknown or not include:
            raise InputError(f"unknown procedures {unknown or include}",
                             fix=f"use some of {', '.join((*PROCEDURES, 'methods'))}")  # fmt: skip
    designs = [_Design(int(s), int(o), f, n) for n in noises for s in seeds for o in orders for f in families]

    def chosen(design: _Design) -> tuple[str, ...]:
        if include is not None:
            return include
        return PROCEDURES if design.noise == "model" else ("verdicts", "variance")

    jobs = [(d, int(n_sim), float(alpha), int(n_boot), aso_boot, int(seed), chosen(d)) for d in designs]
    rows: list[dict] = []

    def collect(design, results, seconds):
        rows.extend(_summarise(design, results, alpha, seconds))
        if progress is not None:
            progress(f"{design.label}: {n_sim} null + {n_sim} planted data sets in {seconds:.0f} s")

    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, len(jobs), os.cpu_count() or 1)) as pool:
            for design, results, seconds in pool.map(_run_design, jobs):
                collect(design, results, seconds)
    else:
        for job in jobs:
            collect(*_run_design(job))
    table = pd.DataFrame(rows)
    return pooled_status(table).reset_index(drop=True)


def refresh_status(table: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Every row's status recomputed from its rate, Monte Carlo SE and design (then pooled):
    for tables written by an earlier version of the rules."""
    table = table.copy()
    for i, r in table.iterrows():
        se = r["mc_se"]
        if se == 0 and r["measure"] in TARGETS:
            edge = min(TARGETS[r["measure"]], key=lambda bound: abs(bound - r["estimate"]))
            se = math.sqrt(edge * (1 - edge) / r["n_sim"])
        table.loc[i, ["status", "note"]] = _status(r["test"], r["measure"], r["estimate"], se, int(r["seeds"]), alpha,
                                                   int(r["orders"]))  # fmt: skip
    return pooled_status(table)


def pooled_status(table: pd.DataFrame) -> pd.DataFrame:
    """Check every "met within MC error" against the designs with the same seeds, pooled.

    One design's rate of a test with one row per data set has a Monte Carlo SE near
    1.4% at 250 data sets, so a rate of 9% can sit within 2.6 SEs of the band. Pooled
    over the designs with the same number of seeds (orders x family sets: 4 x the data
    sets), the rate is the mean of theirs with SE ``sqrt(sum se^2) / k``; where that
    pooled rate is outside the band beyond its own 99% Monte Carlo interval, the
    designs' "met within MC error" becomes ``missed`` (or ``for reference`` for tests
    that verdicts do not read), with the pooled rate in ``note``.
    """
    table = table.copy()
    for (test, measure, seeds, _), rows in table.groupby(["test", "measure", "seeds", "noise"]):
        low, high = TARGETS.get(measure, (math.nan, math.nan))
        values = rows["estimate"].to_numpy(dtype=float)
        ses = rows["mc_se"].to_numpy(dtype=float)
        keep = np.isfinite(values) & np.isfinite(ses)
        if not np.isfinite(low) or keep.sum() < 2:
            continue
        pooled = float(values[keep].mean())
        se = float(np.sqrt(np.sum(ses[keep] ** 2)) / keep.sum())
        outside = pooled - _Z99 * se > high or pooled + _Z99 * se < low
        lenient = rows.index[rows["status"] == "met within MC error"]
        if not outside or len(lenient) == 0:
            continue
        secondary = _for_reference(test)
        liberal = pooled < low if measure == "coverage" else pooled > high
        status = "for reference" if secondary else ("missed (liberal)" if liberal else "missed (conservative)")
        note = (f"pooled over the {keep.sum()} designs with {seeds} seeds the rate is {pooled:.3f} "
                f"(MC SE {se:.3f}), outside the band")  # fmt: skip
        if secondary:
            note += "; reported for reference and not used for verdicts"
        table.loc[lenient, "status"] = status
        table.loc[lenient, "note"] = note
    return table


def markdown(table: pd.DataFrame) -> str:
    """The calibration table as Markdown (rates in %, one line per design x test x measure)."""
    lines = [
        "| seeds | orders | families | noise | test | measure | rate | MC SE | n | target | status |",
        "| ---: | ---: | --- | --- | --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in table.itertuples():
        target = "" if np.isnan(row.target_low) else f"{row.target_low:.2f}-{row.target_high:.2f}"
        lines.append(
            f"| {row.seeds} | {row.orders} | {row.families} | {row.noise} | {row.test} | {row.measure} | {row.estimate:.3f} | "
            f"{row.mc_se:.3f} | {row.n_sim} | {target} | {row.status} |"
        )
    return "\n".join(lines)


def summary_markdown(table: pd.DataFrame) -> str:
    """The calibration table in short: per test x measure and seeds, the range over designs.

    One line per test and measure; one column per number of seeds, holding the rate
    pooled over the designs with that many seeds (orders x family sets), in brackets the
    lowest and highest design's, and the statuses seen there when not all ``met``
    (``met`` covers "met within MC error"). The README shows this.
    """
    seeds = sorted(table["seeds"].unique())
    lines = [
        "| test | measure | noise | target | " + " | ".join(f"{s} seeds" for s in seeds) + " |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in seeds) + " |",
    ]
    order = {"type_I": 0, "coverage": 1, "false_claim": 2}
    keys = table[["test", "measure", "noise"]].drop_duplicates()
    noise_rank = {name: i for i, name in enumerate(NOISES)}
    keys = keys.assign(_m=keys["measure"].map(order).fillna(3), _n=keys["noise"].map(noise_rank).fillna(9))
    keys = keys.sort_values(["_m", "test", "_n"], kind="stable")
    for row in keys.itertuples():
        part = table[(table["test"] == row.test) & (table["measure"] == row.measure) & (table["noise"] == row.noise)]
        low, high = part["target_low"].iloc[0], part["target_high"].iloc[0]
        target = "" if np.isnan(low) else f"{low:.2f}-{high:.2f}"
        cells = []
        for s in seeds:
            here = part[part["seeds"] == s]
            if here.empty or not np.isfinite(here["estimate"]).any():
                cells.append("")
                continue
            a, b = here["estimate"].min(), here["estimate"].max()
            rate = f"{a:.3f}" if a == b else f"{here['estimate'].mean():.3f} ({a:.3f}-{b:.3f})"
            statuses = here["status"].str.replace("met within MC error", "met", regex=False).unique()
            cells.append(rate + (f" ({', '.join(sorted(statuses))})" if list(statuses) != ["met"] else ""))
        lines.append(f"| {row.test} | {row.measure} | {row.noise} | {target} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- calibration on the user's own runs ------------------------------------------------

#: Below this many distinct relabellings an empirical rate says little: say so instead.
MIN_RELABELLINGS = 100
#: The procedures whose rows verdicts read (and the variance references that cost little).
_DATA_PROCEDURES = ("verdicts", "variance")


def relabel_within_seed(scores: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The scores with each seed's order labels shuffled among its runs: a draw from the null.

    Runs that share a seed keep their scores and swap their order labels (the
    exchangeability null: order cannot matter, the data's own noise, seed effects and run
    x family luck kept whole). Runs whose seed has no other run are shuffled among
    themselves (orders run with different seeds: their runs are exchangeable under the
    null). The run's rows move together.
    """
    runs = scores[["run_id", "seed", "order"]].drop_duplicates("run_id")
    sizes = runs.groupby("seed")["run_id"].transform("size")
    new = runs["order"].to_numpy(dtype=object).copy()
    for positions in runs.groupby("seed").indices.values():
        if len(positions) > 1:
            new[positions] = new[rng.permutation(positions)]
    single = np.flatnonzero(sizes.to_numpy() == 1)
    if len(single) > 1:
        new[single] = new[rng.permutation(single)]
    mapping = dict(zip(runs["run_id"], new))
    return scores.assign(order=scores["run_id"].map(mapping))


def relabel_methods_within_runs(scores: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The scores with the method labels shuffled among the runs of each seed x order: a
    draw from the null of the method questions (:mod:`seqrob.analysis.methods`).

    Method cannot matter, neither on its own nor through order (the order x method null),
    while order's effects, seed effects and run x family luck are kept whole.
    """
    runs = scores[["run_id", "seed", "order", "method"]].drop_duplicates("run_id")
    new = runs["method"].to_numpy(dtype=object).copy()
    for positions in runs.groupby(["seed", "order"]).indices.values():
        if len(positions) > 1:
            new[positions] = new[rng.permutation(positions)]
    mapping = dict(zip(runs["run_id"], new))
    return scores.assign(method=scores["run_id"].map(mapping))


def distinct_method_relabellings(scores: pd.DataFrame) -> int:
    """How many different labellings :func:`relabel_methods_within_runs` can give, up to
    renaming the methods once; capped at 10^9."""
    runs = scores[["run_id", "seed", "order", "method"]].drop_duplicates("run_id")
    total = 1
    for _, group in runs.groupby(["seed", "order"]):
        total *= math.factorial(len(group)) // math.prod(math.factorial(c) for c in group["method"].value_counts())
        if total > 10**12:
            break
    return max(1, min(total // math.factorial(runs["method"].nunique()), 10**9))


def _method_rows(data: pd.DataFrame, *, alpha: float, seed: int) -> pd.DataFrame:
    """The method questions' rows for these scores, adjusted as ``analyze`` adjusts them."""
    from seqrob.analysis.design import order_list
    from seqrob.analysis.methods import method_tests
    from seqrob.analysis.multiplicity import adjust

    frames, _ = method_tests(data, orders=order_list(data, _baseline(data)), confidence=1 - alpha, seed=seed,
                             n_permutations=999, permutation_intervals=False)  # fmt: skip
    frames = [f for f in frames if len(f)]
    return adjust(pd.concat(frames, ignore_index=True), correction="holm") if frames else pd.DataFrame()


def distinct_relabellings(scores: pd.DataFrame) -> int:
    """How many different labellings :func:`relabel_within_seed` can give, counting two that
    differ only by renaming the orders once (every pairwise test gives the same answer on
    both); capped at 10^9."""
    runs = scores[["run_id", "seed", "order"]].drop_duplicates("run_id")
    sizes = runs.groupby("seed")["run_id"].transform("size").to_numpy()
    total = 1
    for _, group in runs[sizes > 1].groupby("seed"):
        total *= math.factorial(len(group)) // math.prod(math.factorial(c) for c in group["order"].value_counts())
    single = runs[sizes == 1]
    if len(single) > 1:
        total *= math.factorial(len(single)) // math.prod(math.factorial(c) for c in single["order"].value_counts())
    return max(1, min(total // math.factorial(runs["order"].nunique()), 10**9))


def _data_chunk(args) -> list[dict]:
    data, draws, alpha, seed, methods = args
    from seqrob.analysis.mixed import _one_blas_thread

    out = []
    with _one_blas_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in draws:
            if methods:  # the method questions' null: methods relabelled within seed x order
                rows = _method_rows(relabel_methods_within_runs(data, np.random.default_rng([seed, 1, i])),
                                    alpha=alpha, seed=i)  # fmt: skip
            else:
                relabelled = relabel_within_seed(data, np.random.default_rng([seed, i]))
                rows = _rows(relabelled, alpha=alpha, n_boot=100, aso_boot=100, seed=i, include=_DATA_PROCEDURES,
                             baseline=_baseline(data))  # fmt: skip
            out.append(_null_measures(rows, alpha) if len(rows) else {})
    return out


def _baseline(data: pd.DataFrame) -> str:
    return "none" if "none" in set(data["order"]) else sorted(set(data["order"]))[0]


def calibrate_data(
    scores: pd.DataFrame,
    *,
    n: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    workers: int = 1,
    backend: str = "local",
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Type-I error of the verdicts' tests on these runs, with order relabelled within seeds.

    Parameters
    ----------
    scores
        Long scores of one experiment (``run_id, order, seed, task, language, family,
        metric, score``; ``method`` optional): a warehouse's ``scores()``.
    n
        Relabellings per task x metric (x method).
    alpha
        Level of the tests.
    seed
        Seed of the relabellings.
    workers, backend
        Processes (``"local"``) or a Ray pool (``"ray"``) to spread relabellings over.
    progress
        Called with a line after each task x metric.

    Returns
    -------
    pandas.DataFrame
        One row per task x metric (x method) x test x measure: ``method, task, metric,
        test, measure`` (``type_I``, ``family_wise``, ``coverage`` of the SD-ratio CI's
        true ratio 1), ``estimate`` and ``mc_se`` (the Monte Carlo SE over relabellings),
        ``n_sim`` (relabellings), ``relabellings`` (how many distinct ones the design
        has), ``seeds``, ``orders``, ``target_low, target_high``, ``status`` (as in
        :func:`calibrate`; ``too few relabellings`` when the design has fewer than
        :data:`MIN_RELABELLINGS`, with no rate), ``note``.

    Notes
    -----
    Relabelling the orders among the runs of each seed (:func:`relabel_within_seed`)
    makes every order claim false while keeping this warehouse's own noise: its seed
    effects, run x family luck, unequal family variances, outlier runs and ceilings. A
    test whose rate is off target here is off target on these data, whatever a
    simulation says. With 2 orders and 3 seeds there are only 2^3 = 8 relabellings, too
    few for a rate (4 up to renaming the two orders): the row says so.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 10:
        raise InputError(f"n must be an integer >= 10, not {n!r}", fix="pass --n 200")
    if not 0 < alpha < 0.5:
        raise InputError(f"alpha {alpha} is outside (0, 0.5)", fix="use alpha=0.05")
    if backend not in ("local", "ray"):
        raise InputError(f"unknown backend '{backend}'", fix="use --backend local or --backend ray")
    scores = scores if "method" in scores.columns else scores.assign(method="finetune")
    rows: list[dict] = []
    for (method, task, metric), data in scores.groupby(["method", "task", "metric"], sort=True):
        data = data.reset_index(drop=True)
        seeds = int(data.groupby("order")["seed"].nunique().min())
        orders = int(data["order"].nunique())
        base = {"method": method, "task": task, "metric": metric, "seeds": seeds, "orders": orders}
        count = distinct_relabellings(data)
        if orders < 2 or count < MIN_RELABELLINGS:
            why = (f"only {count} distinct relabellings of the orders within seeds ({orders} orders, {seeds} seeds): "
                   f"too few for an empirical rate (needs {MIN_RELABELLINGS}+)")  # fmt: skip
            rows.append({**base, "test": "all verdict tests", "measure": "type_I", "estimate": math.nan,
                         "mc_se": math.nan, "n_sim": 0, "relabellings": count, "target_low": TARGETS["type_I"][0],
                         "target_high": TARGETS["type_I"][1], "status": "too few relabellings", "note": why})  # fmt: skip
            continue
        started = time.perf_counter()
        results = _map_chunks(data, n, alpha, seed, workers, backend, methods=False)
        from seqrob.analysis.design import paired

        design = _Design(seeds, orders, "data", "model", paired(data, sorted(set(data["order"]))))
        for row in _summarise(design, results, alpha, time.perf_counter() - started):
            row = {k: v for k, v in row.items() if k not in ("seeds", "orders", "families", "noise")}
            rows.append({**base, **row, "relabellings": count})
        if progress is not None:
            progress(f"{task} {metric} ({method}): {n} relabellings in {time.perf_counter() - started:.0f} s")
    for (task, metric), data in scores.groupby(["task", "metric"], sort=True):
        if data["method"].nunique() >= 2:
            rows += _calibrate_methods(data.reset_index(drop=True), n=n, alpha=alpha, seed=seed, workers=workers,
                                       backend=backend, progress=progress)  # fmt: skip
    columns = ["method", "task", "metric", "test", "measure", "estimate", "mc_se", "n_sim", "relabellings", "seeds",
               "orders", "target_low", "target_high", "status", "note"]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=columns)


def _calibrate_methods(data: pd.DataFrame, *, n: int, alpha: float, seed: int, workers: int, backend: str,
                       progress) -> list[dict]:  # fmt: skip
    """Type-I error of the method questions' tests on one task x metric's runs, with the
    methods relabelled within each seed x order (:func:`relabel_methods_within_runs`)."""
    from seqrob.analysis.methods import complete_seeds

    task, metric = data["task"].iloc[0], data["metric"].iloc[0]
    seeds, orders = len(complete_seeds(data)), int(data["order"].nunique())
    base = {"method": "methods compared", "task": task, "metric": metric, "seeds": seeds, "orders": orders}
    count = distinct_method_relabellings(data)
    if seeds < 2 or count < MIN_RELABELLINGS:
        why = (f"only {count} distinct relabellings of the methods within seed x order ({seeds} seeds, {orders} "
               f"orders): too few for an empirical rate (needs {MIN_RELABELLINGS}+)")  # fmt: skip
        return [{**base, "test": "all method tests", "measure": "type_I", "estimate": math.nan, "mc_se": math.nan,
                 "n_sim": 0, "relabellings": count, "target_low": TARGETS["type_I"][0],
                 "target_high": TARGETS["type_I"][1], "status": "too few relabellings", "note": why}]  # fmt: skip
    started = time.perf_counter()
    results = _map_chunks(data, n, alpha, seed, workers, backend, methods=True)
    design = _Design(seeds, int(data["method"].nunique()), "data", "model", True)
    rows = []
    for row in _summarise(design, results, alpha, time.perf_counter() - started):
        row = {k: v for k, v in row.items() if k not in ("seeds", "orders", "families", "noise")}
        rows.append({**base, **row, "relabellings": count})
    if progress is not None:
        progress(f"{task} {metric} (methods compared): {n} relabellings in {time.perf_counter() - started:.0f} s")
    return rows


def _map_chunks(data: pd.DataFrame, n: int, alpha: float, seed: int, workers: int, backend: str, *,
                methods: bool) -> list[dict]:  # fmt: skip
    chunks = [list(part) for part in np.array_split(np.arange(n), max(1, min(workers, n)) * 4) if len(part)]
    jobs = [(data, chunk, alpha, seed, methods) for chunk in chunks]
    if backend == "ray":
        from ray.util.multiprocessing import Pool

        with Pool(processes=workers) as pool:
            parts = pool.map(_data_chunk, jobs)
    elif workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, os.cpu_count() or 1)) as pool:
            parts = list(pool.map(_data_chunk, jobs))
    else:
        parts = [_data_chunk(job) for job in jobs]
    return [measures for part in parts for measures in part]


def pseudo_orders(scores: pd.DataFrame, orders: int, *, paired: bool, rng: np.random.Generator) -> pd.DataFrame:
    """Runs of ONE configuration relabelled into ``orders`` pseudo-orders: a real null.

    Paired: the runs are drawn into blocks of ``orders`` at random, each block one
    pseudo-seed, and the pseudo-orders ``o1, o2, ...`` are given at random within it (runs
    left over are dropped). Unpaired: each run keeps its seed and gets a pseudo-order at
    random, in (nearly) equal numbers. Order cannot matter, so every order claim on the
    result is false.
    """
    runs = scores["run_id"].drop_duplicates().to_numpy(dtype=object)
    runs = runs[rng.permutation(len(runs))]
    names = np.array([f"o{i + 1}" for i in range(orders)], dtype=object)
    if paired:
        blocks = len(runs) // orders
        runs = runs[: blocks * orders]
        order_of = np.concatenate([names[rng.permutation(orders)] for _ in range(blocks)])
        seed_of = np.repeat(np.arange(1, blocks + 1), orders)
    else:
        order_of = names[np.arange(len(runs)) % orders]
        seed_of = None
    kept = scores[scores["run_id"].isin(set(runs))]
    out = kept.assign(order=kept["run_id"].map(dict(zip(runs, order_of))))
    if seed_of is not None:
        out = out.assign(seed=out["run_id"].map(dict(zip(runs, seed_of))))
    return out.reset_index(drop=True)


DATA_KIND = "calibration"


def calibrate_warehouse(
    warehouse,
    *,
    experiment: str | None = None,
    n: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    workers: int = 1,
    backend: str = "local",
    store: bool = True,
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, int | None]:
    """:func:`calibrate_data` on a warehouse's finished runs, stored as an analysis.

    Returns the table and the stored analysis id (None when ``store`` is False). The
    analysis (kind ``"calibration"``) keeps the table in its ``model["calibration"]``
    records and, in seqrob's result vocabulary, one row per task x metric x test x measure
    (``term`` the measure, ``estimate`` the rate, ``ci_low, ci_high`` its 95% Monte Carlo
    interval, ``n`` the relabellings).
    """
    from seqrob import __version__
    from seqrob.analysis.results import records, result_frame
    from seqrob.analysis.significance import load

    scores, _, _ = load(warehouse, task=None, metric=None, experiment=experiment, method=None)
    table = calibrate_data(scores, n=n, alpha=alpha, seed=seed, workers=workers, backend=backend, progress=progress)
    if not store:
        return table, None
    results = result_frame(
        {"test": r.test, "term": r.measure, "task": r.task, "metric": r.metric, "estimate": r.estimate,
         "ci_low": r.estimate - 1.96 * r.mc_se, "ci_high": r.estimate + 1.96 * r.mc_se, "n": r.n_sim,
         "method": (f"empirical {r.measure} over {r.n_sim} relabellings of the orders within seeds of these runs "
                    f"(no order effect; the data's own noise); target {r.target_low:g}-{r.target_high:g}")}
        for r in table.itertuples()
    )  # fmt: skip
    parameters = {"experiment": experiment, "n": n, "alpha": alpha, "seed": seed}
    rows = records(table)
    analysis_id = warehouse.store_analysis(kind=DATA_KIND, parameters=parameters, results=results, design={},
                                           model={"calibration": rows}, warnings=[], seqrob_version=__version__)  # fmt: skip
    return table, analysis_id


def off_target(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a data calibration whose rate misses its target (liberal or conservative)."""
    return table[table["status"].astype(str).str.startswith("missed")]


def shipped_table() -> pd.DataFrame | None:
    """The calibration table shipped with seqrob (``seqrob/analysis/data/calibration.csv``)."""
    from importlib import resources

    shipped = resources.files("seqrob.analysis").joinpath("data", "calibration.csv")
    if not shipped.is_file():
        return None
    with shipped.open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle)


def nearest_design(table: pd.DataFrame, *, seeds: int, orders: int, families: int) -> dict:
    """The grid design closest to a data set's: seeds per order first, then orders, then families."""
    grid = table[["seeds", "orders", "families"]].drop_duplicates()
    wanted = "many" if families > 4 else "few"
    grid = grid.assign(
        _seeds=(grid["seeds"] - seeds).abs(),
        _orders=(grid["orders"] - orders).abs(),
        _families=(grid["families"] != wanted).astype(int),
        _more=-grid["orders"],  # between two equally near, the design with more orders (more pairs to test)
    ).sort_values(["_seeds", "_orders", "_more", "_families"], kind="stable")
    best = grid.iloc[0]
    return {"seeds": int(best["seeds"]), "orders": int(best["orders"]), "families": str(best["families"])}


def design_cautions(table: pd.DataFrame | None, *, seeds: int, orders: int, families: int,
                    methods: bool = False) -> pd.DataFrame:  # fmt: skip
    """The verdict tests' rows of the nearest simulated design that are not on target:
    the order questions' tests, or with ``methods`` the method questions'."""
    if table is None or table.empty or "noise" not in table.columns:
        return pd.DataFrame()
    about_methods = table["test"].str.startswith(METHOD_VERDICT_TESTS)
    table = table[about_methods if methods else ~about_methods]
    if table.empty:
        return pd.DataFrame()
    design = nearest_design(table, seeds=seeds, orders=orders, families=families)
    rows = table
    for column, value in design.items():
        rows = rows[rows[column] == value]
    verdict = rows["test"].str.startswith(VERDICT_TESTS) | rows["test"].str.endswith("(Holm family)")
    repeated = rows["test"].str.endswith("(Holm family)") & (rows["status"] == "refuses")  # its test says it
    return rows[verdict & ~repeated & ~rows["status"].isin(["met", "met within MC error"])]
