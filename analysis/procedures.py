"""The procedures of one analysis: every test of one task x metric, unadjusted.

:func:`run_tests` runs the procedures of :data:`PROCEDURES` on one group's scores and
returns result rows (:data:`seqrob.analysis.results.COLUMNS`) with their structured
columns filled: the interval's kind and level (``interval``, ``confidence``) and the test
variant (``variant``). :func:`seqrob.analysis.significance.analyze` adjusts and reports
them; :func:`seqrob.analysis.calibrate.calibrate` runs exactly this on simulated data, so
the calibration table is about these rows.

* The verdicts' tests, all over seeds, each family tested on its own noise: ``contrast``
  (paired t, or Welch), ``order_anova`` / ``order_family_anova`` (Greenhouse-Geisser
  corrected repeated-measures ANOVA over seeds, or the heteroscedastic ANOVA-type test),
  ``variance`` (a permutation test of the order labels within seeds).
* For reference: the crossed mixed model's tests and contrasts, the paired bootstrap,
  exact sign-flip tests at :data:`~seqrob.analysis.design.FEW_SEEDS` seeds or fewer,
  Pitman-Morgan, Brown-Forsythe/Levene, ASO.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from seqrob.analysis import anova, bootstrap, layout, mixed, permutation, variance
from seqrob.analysis import aso as aso_module
from seqrob.analysis.design import FEW_SEEDS, paired as is_paired
from seqrob.warehouse.errors import DesignError

__all__ = ["PROCEDURES", "Tests", "run_tests", "expanded_confidence", "quiet"]

#: The procedures of one analysis: the verdicts' tests over seeds (contrasts, order and
#: order x family), the mixed model (its F tests, contrasts and run-variance LRT, for
#: reference), the paired bootstrap, the few-seed sign-flip tests, the variance tests
#: (permutation tests for verdicts; Pitman-Morgan, Brown-Forsythe and Levene for
#: reference; SDs and SD ratios) and ASO.
PROCEDURES = ("verdicts", "mixed", "bootstrap", "few_seeds", "variance", "aso")


def quiet(function, *args, **kwargs):
    """Run a statistics function, collecting its warnings as sentences instead of printing them.

    Few-seed warnings (:class:`~seqrob.analysis.bootstrap.FewSeedsWarning`) are left out:
    the analysis states the design's limits once, for the whole group.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = function(*args, **kwargs)
    skip = (DeprecationWarning, FutureWarning, bootstrap.FewSeedsWarning)
    messages = [str(w.message) for w in caught if not issubclass(w.category, skip)]
    return frame, messages


def _rename(frame: pd.DataFrame, old: str, new: str) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame["test"] == old, "test"] = new
    return frame


@dataclass
class Tests:
    """What :func:`run_tests` ran on one task x metric."""

    frames: list[pd.DataFrame]  #: result rows, unadjusted, one frame per procedure
    notes: list[str]  #: warnings, as sentences
    fit: object | None = None  #: the mixed model (:class:`~seqrob.analysis.mixed.MixedFit`), when fitted


def run_tests(
    data: pd.DataFrame,
    predictions: pd.DataFrame | None,
    *,
    orders: list[str],
    alpha: float,
    n_boot: int,
    seed: int,
    min_seeds: int,
    aso_boot: int = 1_000,
    include: Sequence[str] = PROCEDURES,
    n_permutations: int = 1999,
    permutation_intervals: bool = True,
    variance_boot: bool = True,
) -> Tests:
    """Every test of one task x metric, unadjusted: the rows :func:`analyze` reports.

    Needs 2+ orders with 2+ seeds each. :func:`seqrob.analysis.calibrate.calibrate` runs
    exactly this on simulated data, so the calibration table is about these rows.
    ``include`` picks procedures from :data:`PROCEDURES` (all for :func:`analyze`).
    The scores are read into arrays once for every procedure but the mixed model, each
    model is fitted once and the bootstrap resamples once: its replicates give the means,
    contrasts and the per-order SDs of the variance rows alike.
    """
    tests = Tests([], [])
    confidence = 1 - alpha
    paired = is_paired(data, orders)
    groups = None
    if set(include) - {"mixed"}:
        # The predictions are read only where examples are resampled.
        resampled = "bootstrap" in include or ("variance" in include and variance_boot)
        groups, messages = quiet(layout.build_groups, data, predictions if resampled else None, orders=orders)
        tests.notes.extend(messages)
    if "verdicts" in include:
        _verdict_tests(tests, data, orders=orders, confidence=confidence, paired=paired, groups=groups)
    if "mixed" in include:
        _mixed_tests(tests, data, orders=orders, alpha=alpha)
    boot = None
    if "bootstrap" in include:
        boot = _bootstrap_rows(tests, data, predictions, orders=orders, alpha=alpha, n_boot=n_boot, seed=seed,
                               n_seeds=min_seeds, sds="variance" in include and variance_boot,
                               groups=groups)  # fmt: skip
    if "few_seeds" in include and min_seeds <= FEW_SEEDS and paired:
        flips, messages = quiet(permutation.sign_flip_test, data, orders=orders, confidence=confidence, seed=seed,
                                groups=groups)  # fmt: skip
        tests.notes.extend(messages)
        tests.frames.append(_with(_rename(flips, "contrast", "signflip_contrast"), confidence,
                                  interval="exact sign-flip test inversion", variant="exact sign-flip"))  # fmt: skip
    if "variance" in include:
        _variance_rows(tests, data, predictions, orders=orders, confidence=confidence, boot=boot, n_boot=n_boot,
                       seed=seed, min_seeds=min_seeds, n_permutations=n_permutations,
                       permutation_intervals=permutation_intervals, variance_boot=variance_boot,
                       groups=groups)  # fmt: skip
    if "aso" in include:
        asos, messages = quiet(aso_module.aso_table, data, orders=orders, confidence=confidence, n_boot=aso_boot,
                               seed=seed, groups=groups)  # fmt: skip
        tests.notes.extend(messages)
        asos["method"] = asos["method"] + "; descriptive: eps_min is not a calibrated test (seqrob analyze calibrate)"
        tests.frames.append(_with(asos, confidence, interval="bootstrap of eps_min"))
    return tests


def _verdict_tests(tests: Tests, data, *, orders, confidence, paired, groups) -> None:
    """The verdicts' tests: per-family contrasts and the order / order x family tests over
    seeds, which assume nothing about how run noise varies between families."""
    ts, messages = quiet(permutation.seed_t_test, data, orders=orders, confidence=confidence, paired=paired,
                         overall=False, groups=groups)  # fmt: skip
    tests.notes.extend(messages)
    variant = "paired" if paired else "Welch"
    tests.frames.append(_with(_primary_contrasts(ts, paired), confidence, interval=f"{variant} t over seeds",
                              variant=variant))  # fmt: skip
    anovas, messages = quiet(anova.order_anova, data, orders=orders, groups=groups)
    tests.notes.extend(messages)
    tests.frames.append(_with(anovas, None, variant="Greenhouse-Geisser repeated measures" if paired
                              else "heteroscedastic ANOVA-type statistic"))  # fmt: skip


def _mixed_tests(tests: Tests, data, *, orders, alpha) -> None:
    """The mixed model, fitted once: its summary and its tests (for reference)."""
    try:
        # The model's treatment coding needs a reference level: the first order listed.
        tests.fit, messages = quiet(mixed.fit_mixed, data, baseline=orders[0], alpha=alpha)
        rows, more = quiet(mixed.order_tests, data, baseline=orders[0], alpha=alpha, fit=tests.fit)
    except DesignError as error:  # e.g. every run scores the same: no residual variation
        tests.notes.append(f"mixed model not fitted: {error}")
        return
    tests.notes.extend(messages + more)
    tests.notes.extend(m[-1] if isinstance(m, tuple) else m for m in rows.attrs.get("warnings", []))
    tests.frames.append(_with(_mixed_for_reference(rows), 1 - alpha, interval="mixed model, Satterthwaite t"))


def _variance_rows(tests: Tests, data, predictions, *, orders, confidence, boot, n_boot, seed, min_seeds,
                   n_permutations, permutation_intervals, variance_boot, groups) -> None:  # fmt: skip
    """The variance tests: permutation tests (verdicts), Pitman-Morgan, Brown-Forsythe and
    Levene (reference), SDs with the shared bootstrap's intervals, SD ratios."""
    shared = boot is not None and (boot["test"] == "sd").any()
    spread, messages = quiet(variance.variance_tests, data, predictions, orders=orders, confidence=confidence,
                             bootstrap_confidence=_bootstrap_level(confidence, min_seeds),
                             bootstrap=boot if shared else None,
                             n_boot=min(n_boot, 2000) if variance_boot and not shared else 0, seed=seed,
                             n_permutations=n_permutations, permutation_intervals=permutation_intervals,
                             center=("median", "mean") if variance_boot else (), groups=groups)  # fmt: skip
    tests.notes.extend(messages)
    sds = (spread["test"] == "sd") & spread["ci_low"].notna()
    spread.loc[sds, "interval"] = _bootstrap_interval(spread.loc[sds, "variant"], min_seeds)
    spread = _with(spread, confidence)
    spread.loc[spread["test"] == "variance", "interval"] = "permutation test inversion"
    spread.loc[spread["test"] == "pitman_morgan", "interval"] = "exact Pitman-Morgan inversion"
    tests.frames.append(spread)


def _with(frame: pd.DataFrame, confidence: float | None, **columns: str) -> pd.DataFrame:
    """``frame`` with its structured columns set: ``confidence`` on rows with an interval,
    and ``columns`` (``interval`` on rows with one; ``variant`` on every row)."""
    frame = frame.copy()
    has_interval = frame["ci_low"].notna() if "ci_low" in frame.columns else pd.Series(False, index=frame.index)
    if confidence is not None:
        frame.loc[has_interval, "confidence"] = confidence
    for name, value in columns.items():
        if name not in frame.columns:
            frame[name] = None
        frame.loc[has_interval if name == "interval" else frame.index, name] = value
    return frame


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


def _bootstrap_level(confidence: float, n_seeds: int) -> float:
    """The level the bootstrap is run at: ``confidence``, expanded above :data:`FEW_SEEDS` seeds."""
    return confidence if n_seeds <= FEW_SEEDS else expanded_confidence(confidence, n_seeds)


def _bootstrap_interval(variant: pd.Series, n_seeds: int) -> pd.Series:
    """What produced a bootstrap row's interval, e.g. ``"expanded percentile bootstrap"``."""
    if n_seeds <= FEW_SEEDS:
        return variant + " bootstrap (descriptive)"
    return "expanded " + variant + " bootstrap"


def _bootstrap_rows(tests: Tests, data, predictions, *, orders, alpha, n_boot, seed, n_seeds, sds,
                    groups) -> pd.DataFrame:  # fmt: skip
    """The paired bootstrap, resampled once, its means and contrasts made honest for the number of seeds.

    With more than :data:`FEW_SEEDS` seeds, intervals are expanded percentile / BCa
    intervals (see :func:`expanded_confidence`) and p-values mapped to match: the plain
    percentile interval covers about 90% at 10 seeds (``seqrob analyze calibrate``).
    With :data:`FEW_SEEDS` or fewer, no expansion rescues a bootstrap over a handful of
    seeds (3 seeds give 10 distinct resamples): the rows stay as descriptions, without
    p-values; the ``contrast`` rows (t over seeds) carry the inference. ``sds``: also
    resample the per-order SDs (the variance rows' intervals); returns every replicate
    summary, SD rows included, for :func:`_variance_rows`.
    """
    confidence = 1 - alpha
    statistics = ("bootstrap_mean", "contrast") + (("sd",) if sds else ())
    few = n_seeds <= FEW_SEEDS
    boot, messages = quiet(bootstrap.paired_bootstrap, data, predictions, orders=orders, statistics=statistics,
                           n_boot=n_boot, confidence=_bootstrap_level(confidence, n_seeds), seed=seed,
                           groups=groups)  # fmt: skip
    tests.notes.extend(messages)
    rows = _rename(boot[boot["test"] != "sd"], "contrast", "bootstrap_contrast")
    tested = rows["test"] == "bootstrap_contrast"
    if few:
        rows.loc[tested, "p_value"] = np.nan
        rows["method"] = rows["method"] + (
            f"; descriptive: with {n_seeds} seeds a bootstrap over seeds undercovers, so no p-value "
            "(inference: the contrast rows, a t over seeds)"
        )
    else:
        rows.loc[tested, "p_value"] = _expanded_p(rows.loc[tested, "p_value"].to_numpy(), n_seeds)
        rows["method"] = rows["method"] + (
            f"; expanded for {n_seeds} seeds (Hesterberg 2015): wider quantiles of the bootstrap, p-values mapped "
            "to match"
        )
    with_ci = rows["ci_low"].notna()
    rows.loc[with_ci, "interval"] = _bootstrap_interval(rows.loc[with_ci, "variant"], n_seeds)
    rows.loc[with_ci, "confidence"] = confidence
    tests.frames.append(rows)
    return boot
