"""Paired hierarchical bootstrap over seeds and examples (the MultiBERTs multi-bootstrap).

The unit of replication is the run (one order x one seed): every language and every
example of a run shares that run's deviation. So the bootstrap resamples *seeds*, never
languages within a run, and -- when per-example outcomes are stored -- examples within
each language. Both are drawn once per replicate and applied to every order (the same
seeds and the same examples in every arm): that is what "paired" means here.

:func:`paired_bootstrap` computes, for every task x metric x family at once, the mean
per order, every pairwise order difference, the across-seed SD per order and every SD
ratio, with percentile and BCa intervals. It is vectorised: seed weights are multinomial
count matrices (B x S), example weights are B x N_l count matrices per language applied
to the run x example outcome matrices as matrix products, B processed in blocks.

The scores are read into order x seed x language arrays by :mod:`~seqrob.analysis.layout`
(shared with the other resampling and test modules) and the per-example outcomes by
:mod:`~seqrob.analysis.outcomes`; this module holds the resampling and the intervals.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from seqrob.analysis.layout import (
    FEW_SEEDS,
    FewSeedsWarning,
    Group,
    _check_options,
    _pairs,
    _positive_int,
    _read_groups,
    _term,
    _where,
)
from seqrob.analysis.outcomes import _KINDS, _f1, _Outcomes
from seqrob.analysis.results import result_frame
from seqrob.warehouse.errors import DesignError, InputError

# FEW_SEEDS and FewSeedsWarning live in layout (every resampling module uses them) and
# stay importable from here, where they were first documented.
__all__ = ["FEW_SEEDS", "FewSeedsWarning", "paired_bootstrap"]

_STATISTICS = ("bootstrap_mean", "contrast", "sd", "sd_ratio")
_INTERVALS = ("percentile", "bca")
# Each interval type's ``variant`` and ``interval`` columns (seqrob.analysis.results).
_VARIANTS = {"percentile": "percentile", "bca": "BCa"}
_INTERVAL_NAMES = {"percentile": "percentile bootstrap", "bca": "BCa bootstrap"}
# Bound on the example-weight block (replicates x examples) held at once.
_BLOCK_CELLS = 2_000_000
# Threads for the per-language example resampling (the draws, counts and products release the GIL).
_WORKERS = min(2, os.cpu_count() or 1)


# --- the resampling engine ---------------------------------------------------------


def _seed_weights(group: Group, paired: bool, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Run weights (B, R): how often each run's seed is drawn in each replicate.

    Paired: one multinomial draw of S seeds per replicate, applied to every order (drawn
    as ``rng.integers(0, S, (B, S))``, the resamples of ``scipy.stats.bootstrap``).
    Unpaired: an independent draw of each order's own seeds.
    """
    R = group.values.shape[0]
    weights = np.empty((n_boot, R))
    if paired:
        runs = group.aligned(range(len(group.orders)), group.common_seeds(range(len(group.orders))))  # (O, S)
        S = runs.shape[1]
        draws = rng.integers(0, S, (n_boot, S))
        counts = _row_counts(draws, S).astype(float)  # (B, S)
        for o in range(runs.shape[0]):
            weights[:, runs[o]] = counts
    else:
        for o in range(len(group.orders)):
            runs = group.runs_of(o)
            draws = rng.integers(0, runs.size, (n_boot, runs.size))
            weights[:, runs] = _row_counts(draws, runs.size)
    return weights


def _row_counts(draws: np.ndarray, n: int) -> np.ndarray:
    """Counts (rows, n) of each index in each row of ``draws``."""
    rows = draws.shape[0]
    flat = draws.astype(np.int64, copy=False) + (np.arange(rows, dtype=np.int64) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=rows * n).reshape(rows, n)


def _order_stats(weights: np.ndarray, seed_level: np.ndarray, starts: np.ndarray, run_order: np.ndarray):
    """Weighted mean and SD over each order's runs.

    weights (K, R); seed_level (K or 1, R, F). Returns mean, sd (K, O, F). The SD is
    that of the resampled multiset of seed-level scores (ddof=1 on its size).
    """
    total = np.add.reduceat(weights, starts, axis=1)  # (K, O)
    weighted = weights[:, :, None] * seed_level
    mean = np.add.reduceat(weighted, starts, axis=1) / total[:, :, None]
    deviation = seed_level - mean[:, run_order, :]
    square = np.add.reduceat(weights[:, :, None] * deviation * deviation, starts, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(square / (total - 1.0)[:, :, None])
    sd[np.broadcast_to((total <= 1.0)[:, :, None], sd.shape)] = np.nan
    return mean, sd


def _replicates(group: Group, outcomes: _Outcomes | None, paired: bool, n_boot: int, rng: np.random.Generator):
    """Bootstrap distributions of the per-order mean and SD: (B, O, F) each."""
    weights = _seed_weights(group, paired, n_boot, rng)
    starts = np.searchsorted(group.run_order, np.arange(len(group.orders)))
    R, L = group.values.shape
    F = group.family_matrix.shape[1]
    mean = np.empty((n_boot, len(group.orders), F))
    sd = np.empty_like(mean)
    if outcomes is None:
        seed_level = group.seed_level()[None]
        block = max(1, _BLOCK_CELLS // max(1, R * F))
        for start in range(0, n_boot, block):
            stop = min(n_boot, start + block)
            mean[start:stop], sd[start:stop] = _order_stats(weights[start:stop], seed_level, starts, group.run_order)
        return mean, sd
    # One stream per language, so the draws do not depend on how the work is shared out.
    streams = rng.spawn(L)
    block = max(1, min(n_boot, _BLOCK_CELLS // max(outcomes.n_examples)))
    workers = min(_WORKERS, L)
    # The products are small (block x N_l by N_l x R): threads over languages beat
    # BLAS threads inside each product, and both at once oversubscribe the cores.
    with _single_threaded_blas(), ThreadPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        for start in range(0, n_boot, block):
            stop = min(n_boot, start + block)
            scores = _resampled_scores(outcomes, stop - start, R, streams, pool)
            seed_level = scores @ group.family_matrix  # (rows, R, F)
            mean[start:stop], sd[start:stop] = _order_stats(weights[start:stop], seed_level, starts, group.run_order)
    return mean, sd


def _single_threaded_blas():
    """Limit BLAS to one thread while the context is open (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415 (optional; comes with scikit-learn)
    except ImportError:  # pragma: no cover
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


def _resampled_scores(outcomes: _Outcomes, rows: int, R: int, streams, pool) -> np.ndarray:
    """Per-run, per-language scores (rows, R, L) with examples resampled within language.

    One example-count matrix per language, shared by every run of it (paired).
    """
    L = len(outcomes.arrays)
    scores = np.empty((rows, R, L))

    def one(l: int) -> None:
        data = outcomes.arrays[l]
        n = data.shape[0]
        draws = streams[l].integers(0, n, (rows, n), dtype=np.uint16 if n <= 65_535 else np.int64)
        counts = np.empty((rows, n), dtype=data.dtype)
        for b in range(rows):  # a bincount per row beats one over the block (cache)
            counts[b] = np.bincount(draws[b], minlength=n)
        sums = counts @ data  # (rows, R) or (rows, 3R)
        if outcomes.kind == "f1":
            scores[:, :, l] = _f1(sums[:, :R], sums[:, R : 2 * R], sums[:, 2 * R :])
        else:
            scores[:, :, l] = sums / n

    if pool is None:
        for l in range(L):
            one(l)
    else:
        list(pool.map(one, range(L)))
    scores *= outcomes.scale
    return scores


def _jackknife(group: Group, seed_level: np.ndarray, paired: bool):
    """Leave-one-out statistics and their samples: list of (mean, sd) per jackknife sample.

    Paired: one sample, leave out one seed (all its runs). Unpaired: one sample per order,
    leave out one of its runs. Each entry: (mean (n_j, O, F), sd (n_j, O, F)).
    """
    starts = np.searchsorted(group.run_order, np.arange(len(group.orders)))
    R = group.values.shape[0]
    samples = []
    if paired:
        runs = group.aligned(range(len(group.orders)), group.common_seeds(range(len(group.orders))))
        S = runs.shape[1]
        if S >= 2:
            w = np.ones((S, R))
            for s in range(S):
                w[s, runs[:, s]] = 0.0
            samples.append(_order_stats(w, seed_level[None], starts, group.run_order))
    else:
        for o in range(len(group.orders)):
            runs = group.runs_of(o)
            if runs.size >= 2:
                w = np.ones((runs.size, R))
                w[np.arange(runs.size), runs] = 0.0
                samples.append(_order_stats(w, seed_level[None], starts, group.run_order))
    return samples


def _derive(mean: np.ndarray, sd: np.ndarray, pairs: list[tuple[int, int]], wanted: Sequence[str]) -> np.ndarray:
    """Statistics as columns (K, Q), in the order of :func:`_layout`."""
    parts = []
    for name in wanted:
        if name == "bootstrap_mean":
            parts.append(mean)
        elif name == "contrast":
            parts.append(np.stack([mean[:, j] - mean[:, i] for j, i in pairs], axis=1) if pairs else mean[:, :0])
        elif name == "sd":
            parts.append(sd)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                parts.append(np.stack([sd[:, j] / sd[:, i] for j, i in pairs], axis=1) if pairs else sd[:, :0])
    return np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1)


def _layout(orders: Sequence[str], families: Sequence, pairs, wanted: Sequence[str]) -> list[tuple[str, str, object]]:
    """(test, term, family) of every column of :func:`_derive`."""
    out = []
    for name in wanted:
        terms = [_term(orders, p) for p in pairs] if name in ("contrast", "sd_ratio") else list(orders)
        out.extend((name, term, fam) for term in terms for fam in families)
    return out


# --- intervals ---------------------------------------------------------------------


def _quantiles(sorted_values: np.ndarray, valid: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantiles (numpy's default) per column, NaNs sorted last.

    sorted_values (B, Q) sorted along axis 0; valid (Q,) non-NaN counts; q (Q,) levels.
    """
    out = np.full(q.shape, np.nan)
    ok = np.isfinite(q) & (valid > 0)
    if not ok.any():
        return out
    columns = np.flatnonzero(ok)
    h = (valid[ok] - 1) * q[ok]
    low = np.floor(h).astype(np.int64)
    high = np.minimum(low + 1, valid[ok] - 1)
    fraction = h - low
    a = sorted_values[low, columns]
    b = sorted_values[high, columns]
    with np.errstate(invalid="ignore"):
        out[ok] = np.where((fraction == 0) | (a == b), a, a + fraction * (b - a))
    return out


def _levels(confidence: float, alternative: str) -> tuple[float, float]:
    alpha = 1.0 - confidence
    if alternative == "two-sided":
        return alpha / 2.0, 1.0 - alpha / 2.0
    if alternative == "greater":
        return alpha, math.nan
    return math.nan, 1.0 - alpha


def _percentile_interval(boot: np.ndarray, confidence, alternative, nulls):
    """Percentile CI, and the p-value of the null (where given) by inverting it."""
    lo_level, hi_level = _levels(confidence, alternative)
    boot_sorted = np.sort(boot, axis=0)
    valid = np.sum(~np.isnan(boot), axis=0)
    Q = boot.shape[1]
    low = _quantiles(boot_sorted, valid, np.full(Q, lo_level))
    high = _quantiles(boot_sorted, valid, np.full(Q, hi_level))
    if math.isnan(lo_level):
        low[:] = -np.inf
    if math.isnan(hi_level):
        high[:] = np.inf
    with np.errstate(invalid="ignore"):
        below = np.sum(boot <= nulls, axis=0)
        above = np.sum(boot >= nulls, axis=0)
    p_greater = (1.0 + below) / (valid + 1.0)
    p_less = (1.0 + above) / (valid + 1.0)
    p = _sided(p_greater, p_less, alternative)
    p[np.isnan(nulls)] = np.nan
    return low, high, p


def _sided(p_greater, p_less, alternative):
    if alternative == "greater":
        return np.asarray(p_greater, dtype=float).copy()
    if alternative == "less":
        return np.asarray(p_less, dtype=float).copy()
    return np.minimum(1.0, 2.0 * np.minimum(p_greater, p_less))


def _acceleration(jack: list[np.ndarray]) -> np.ndarray:
    """BCa acceleration from jackknife statistics, one array (n_j, Q) per sample.

    As scipy.stats.bootstrap (Efron & Tibshirani 1993, eq. 14.15, summed over samples).
    """
    if not jack:
        return None
    numerator = 0.0
    denominator = 0.0
    for values in jack:
        n = float(values.shape[0])
        u = (n - 1.0) * (values.mean(axis=0) - values)
        numerator = numerator + np.sum(u**3, axis=0) / n**3
        denominator = denominator + np.sum(u**2, axis=0) / n**2
    with np.errstate(invalid="ignore", divide="ignore"):
        # A statistic the jackknife cannot move (zero spread) has no skewness to correct.
        return np.where(denominator > 0, numerator / denominator**1.5 / 6.0, 0.0)


def _bca_interval(boot, estimate, acceleration, confidence, alternative, nulls):
    """BCa CI (Efron 1987; scipy.stats.bootstrap's formulas) and the p-value by inversion."""
    Q = boot.shape[1]
    valid = np.sum(~np.isnan(boot), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Replicates within rounding of the estimate are ties (a resample that permutes the
        # seeds gives the estimate up to the order of summation).
        finite = np.where(np.isfinite(boot), boot, np.nan)  # an SD ratio is infinite when an SD is 0
        tolerance = 1e-10 * (np.nan_to_num(np.nanstd(finite, axis=0)) + np.abs(estimate))
        below = np.sum(boot < estimate - tolerance, axis=0)
        share = (2.0 * below + np.sum(np.abs(boot - estimate) <= tolerance, axis=0)) / (2.0 * valid)
        z0 = ndtri(share)
        a = acceleration if acceleration is not None else np.full(Q, np.nan)
        lo_level, hi_level = _levels(confidence, alternative)

        def adjusted(level):
            if math.isnan(level):
                return np.full(Q, np.nan)
            z = ndtri(level)
            return ndtr(z0 + (z0 + z) / (1.0 - a * (z0 + z)))

        boot_sorted = np.sort(boot, axis=0)
        low = _quantiles(boot_sorted, valid, adjusted(lo_level))
        high = _quantiles(boot_sorted, valid, adjusted(hi_level))
        if math.isnan(lo_level):
            low[:] = -np.inf
        if math.isnan(hi_level):
            high[:] = np.inf
        # p: the level at which a one-sided bound reaches the null value.
        share_null = (np.sum(boot < nulls, axis=0) + np.sum(boot <= nulls, axis=0)) / (2.0 * valid)
        share_null = np.clip(share_null, 0.5 / valid, 1.0 - 0.5 / valid)
        w = ndtri(share_null) - z0
        denominator = 1.0 + a * w
        level = ndtr(np.where(denominator > 0, w / denominator, np.nan) - z0)
    p = _sided(level, 1.0 - level, alternative)
    p[np.isnan(nulls)] = np.nan
    return low, high, p


# --- the public function -----------------------------------------------------------


def paired_bootstrap(
    scores: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    *,
    dv: str = "score",
    order: str = "order",
    unit: str = "seed",
    language: str = "language",
    family: str = "family",
    task: str | None = "task",
    metric: str | None = "metric",
    run: str = "run_id",
    example: str = "example_id",
    outcome: str | None = None,
    orders: Sequence[str] | None = None,
    statistics: Sequence[str] = _STATISTICS,
    overall: bool = True,
    paired: bool | None = None,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    interval: str | Sequence[str] = ("percentile", "bca"),
    alternative: str = "two-sided",
    seed: int | np.random.Generator | None = None,
    groups: Sequence[Group] | None = None,
) -> pd.DataFrame:
    """Paired hierarchical bootstrap over seeds and examples (Sellam et al. 2021).

    Parameters
    ----------
    scores
        Long scores, one row per run x language (x task x metric): columns ``dv``,
        ``order``, ``unit``, ``language`` and, where present, ``family`` (else taken from
        seqrob's language metadata), ``task``, ``metric``, ``run``. Each task x metric is
        analysed on its own.
    predictions
        Optional per-example outcomes: ``run``, ``task``, ``language``, ``example`` and
        ``correct`` (0/1), ``value`` (a per-example metric) or ``tp, fp, fn`` (span/entity
        F1, computed from the counts *summed* over the resampled examples). Used for a
        task x metric when they reproduce its scores (to 5e-4, on the 0-1 or 0-100 scale);
        otherwise only seeds are resampled and a warning says why.
    dv, order, unit, language, family, task, metric, run, example
        Column names. ``unit`` is the seed column: the unit of replication is the run
        (order x seed), and seeds are what is resampled.
    outcome
        ``"correct"``, ``"value"`` or ``"f1"`` to choose the outcome columns (and skip the
        check that they reproduce the scores); default: the first that does.
    orders
        Orders to analyse, in the order contrasts are formed (each later order minus each
        earlier one). Default: all, ``none`` first, then by first appearance.
    statistics
        Any of ``"bootstrap_mean"`` (mean per order), ``"contrast"`` (pairwise
        differences), ``"sd"`` (across-seed SD per order), ``"sd_ratio"`` (SD ratios).
    overall
        Also report every statistic over all languages (rows with ``family`` None).
    paired
        None: pair seeds across orders when every order has the same seeds, else resample
        each order's seeds independently (with a warning). True: pair, dropping the seeds
        some order lacks. False: never pair.
    n_boot
        Number of bootstrap replicates.
    confidence
        Confidence level of the intervals.
    interval
        ``"percentile"``, ``"bca"`` or both: one row per statistic and interval type.
    alternative
        ``"two-sided"``, ``"greater"`` or ``"less"``, for the ``contrast`` (null 0) and
        ``sd_ratio`` (null 1) rows: their p-value and one-sided interval. Descriptive rows
        always get two-sided intervals.
    seed
        Seed of the resampling RNG (or a ``numpy.random.Generator``).
    groups
        The scores and predictions as :func:`~seqrob.analysis.layout.build_groups` read
        them, to share one reading between procedures: ``scores`` and ``predictions``
        are then not read again, and the column names and ``orders`` are those the
        groups were built with (build them with the predictions to resample examples).

    Returns
    -------
    pandas.DataFrame
        :data:`~seqrob.analysis.results.COLUMNS`, one row per task x metric x statistic
        x family x term x interval type:

        - ``test``: ``bootstrap_mean``, ``contrast``, ``sd`` or ``sd_ratio``.
        - ``term``: the order, or ``"a vs b"`` (``a - b``, ``sd_a / sd_b``).
        - ``task``, ``metric``, ``family`` (None: all languages).
        - ``estimate``: the statistic on the data (scores' units; SD ratio unitless).
        - ``ci_low``, ``ci_high``: the interval (``confidence``).
        - ``statistic``, ``df``: NaN (no test statistic).
        - ``p_value``: contrast and sd_ratio rows: the smallest level at which the
          interval excludes the null (0 or 1); NaN for descriptive rows.
        - ``p_adjusted``: NaN (adjusted over a stated family by the caller).
        - ``n``: seeds behind the row.
        - ``method``: what was resampled, B, the interval type and warnings.
        - ``variant``: the interval type, ``"percentile"`` or ``"BCa"``; ``interval``
          (``"percentile bootstrap"``, ``"BCa bootstrap"``) and ``confidence`` on rows
          whose interval could be computed. Other columns empty.

    Warns
    -----
    FewSeedsWarning
        With 5 seeds or fewer: a bootstrap over seeds undercovers there (use
        :func:`~seqrob.analysis.permutation.sign_flip_test` or
        :func:`~seqrob.analysis.permutation.seed_t_test`). With one seed, no
        interval is given.
    UserWarning
        Cells dropped, predictions not used, or an interval that cannot be computed.

    Notes
    -----
    Replicate b draws seed counts ``w_b`` (multinomial, S draws among S seeds) and, per
    language l, example counts ``c_bl`` (N_l draws among N_l examples). The run x
    language score is ``c_bl . x_rl / N_l`` (``x_rl`` the run's outcomes on the
    examples), or ``2 TP / (2 TP + FP + FN)`` from the resampled sums of counts. The
    seed-level score of run r for family f is the mean over the family's languages;
    the mean of order o is ``sum_s w_bs y_osf / S`` and its SD the SD of that resampled
    multiset (divisor S - 1). Pairing: ``w_b`` and ``c_bl`` are the same for every
    order, so seed effects and example difficulty cancel in differences.

    Percentile intervals take quantiles of the B replicates. BCa intervals correct
    them for bias (``z0 = Phi^-1`` of the share of replicates below the estimate,
    ties half) and acceleration (from the jackknife over seeds, leaving out one seed
    and all its runs); both as scipy.stats.bootstrap computes them. The p-value is
    that of the interval's inversion: percentile ``(1 + #{theta* <= 0}) / (B + 1)``
    one-sided; BCa the level at which a one-sided bound meets the null.

    Calibration (simulations with run-level noise, ``tests/test_bootstrap.py``): with S
    seeds the bootstrap distribution of a mean has variance ``(S - 1) / S * sd^2 / S``,
    too narrow for small S, and a resample of few seeds takes few distinct values. At 3
    seeds the percentile interval is about [min, max] of the per-seed differences and
    covers about 75% of the time (measured 0.74), not 95%; about 0.87-0.90 at 10 seeds.
    Resampling examples as well does not cure it where run deviations dominate (0.78 at
    3 seeds); where the examples' binomial noise dominates (small test sets) it makes
    the interval conservative (about 0.98), since that noise is already part of the
    seed-to-seed spread.

    References
    ----------
    Sellam, T. et al. (2022). The MultiBERTs: BERT reproductions for robustness
    analysis. ICLR. Efron, B. (1987). Better bootstrap confidence intervals. JASA 82.
    Efron, B. & Tibshirani, R. (1993). An Introduction to the Bootstrap, ch. 14.

    Examples
    --------
    >>> from seqrob.warehouse.simulate import simulate
    >>> sim = simulate(seeds=5, languages=("fi", "et", "de"), n_examples=100,
    ...                families={"fi": "Uralic", "et": "Uralic", "de": "Indo-European"})
    >>> table = paired_bootstrap(sim.scores, sim.predictions, n_boot=500, seed=1)
    >>> sorted(set(table["test"]))
    ['bootstrap_mean', 'contrast', 'sd', 'sd_ratio']
    """
    _check_options(confidence, alternative)
    n_boot = _positive_int(n_boot, "n_boot", 1)
    intervals = (interval,) if isinstance(interval, str) else tuple(interval)
    if not intervals or any(kind not in _INTERVALS for kind in intervals):
        raise InputError(f"interval must be 'percentile', 'bca' or both, not {interval!r}", fix="pass interval='bca'")
    wanted = (statistics,) if isinstance(statistics, str) else tuple(statistics)
    if not wanted or any(name not in _STATISTICS for name in wanted):
        raise InputError(
            f"statistics must be among {_STATISTICS}, not {statistics!r}", fix="pass statistics=('contrast',)"
        )
    if outcome is not None and outcome not in _KINDS:
        raise InputError(f"outcome must be one of {tuple(_KINDS)}, not {outcome!r}", fix="pass outcome='correct'")
    rng = np.random.default_rng(seed)
    groups = _read_groups(
        scores, groups, predictions, dv=dv, order=order, unit=unit, language=language, family=family,
        task=task, metric=metric, run=run, example=example, orders=orders, overall=overall,
    )  # fmt: skip
    rows = []
    for group in groups:
        rows.extend(_bootstrap_group(group, outcome, paired, n_boot, confidence, intervals, alternative, wanted, rng))
    return result_frame(rows)


def _resolve_pairing(group: Group, paired: bool | None) -> tuple[Group, bool]:
    """Decide pairing; with paired=True keep only the seeds every order has."""
    everything = range(len(group.orders))
    seeds_per_order = [set(group.run_seed[group.runs_of(o)]) for o in everything]
    same = all(s == seeds_per_order[0] for s in seeds_per_order)
    if same and paired is not False:
        return group, True
    if paired is None:
        text = (
            f"orders do not share the same seeds{_where(group)}: each order's seeds are resampled "
            "independently (unpaired); pass paired=True to keep only the seeds every order has"
        )
        if text not in group.notes:  # the group may serve several procedures
            group.notes.append(text)
        warnings.warn(text, stacklevel=4)
        return group, False
    if paired is False:
        return group, False
    common = group.common_seeds(everything)
    if not common:
        raise DesignError(f"no seed is run under every order{_where(group)} - use paired=False")
    keep = np.isin(group.run_seed, np.array(common, dtype=object))
    text = f"{int((~keep).sum())} runs whose seed lacks some order are left out{_where(group)} (paired=True)"
    warnings.warn(text, stacklevel=4)
    reduced = replace(group, run_order=group.run_order[keep], run_seed=group.run_seed[keep],
                      run_id=None if group.run_id is None else group.run_id[keep], values=group.values[keep],
                      notes=[*group.notes, text])  # fmt: skip
    return reduced, True


def _bootstrap_group(group, outcome, paired, n_boot, confidence, intervals, alternative, wanted, rng):
    group, paired = _resolve_pairing(group, paired)
    O = len(group.orders)
    pairs = _pairs(O)
    n_seeds = len(group.common_seeds(range(O))) if paired else int(group.order_sizes.min())
    outcomes, reason = group.outcomes(outcome)
    if group.predictions is not None and outcomes is None:
        warnings.warn(f"examples not resampled{_where(group)}: {reason}", stacklevel=3)
    seed_level = group.seed_level() if outcomes is None else outcomes.observed @ group.family_matrix  # (R, F)
    starts = np.searchsorted(group.run_order, np.arange(O))
    mean0, sd0 = _order_stats(np.ones((1, len(group.run_order))), seed_level[None], starts, group.run_order)
    estimate = _derive(mean0, sd0, pairs, wanted)[0]
    layout = _layout(group.orders, group.families, pairs, wanted)

    few = ""
    if n_seeds <= FEW_SEEDS:
        few = f"; few seeds ({n_seeds}): a bootstrap over seeds undercovers here, prefer sign_flip_test or seed_t_test"
        warnings.warn(
            FewSeedsWarning(
                f"{n_seeds} seeds{_where(group)}: a bootstrap over seeds undercovers with so few; "
                "prefer sign_flip_test or seed_t_test"
            ),
            stacklevel=3,
        )
    if n_seeds < 2:
        warnings.warn(f"one seed{_where(group)}: seed variation cannot be estimated; no intervals", stacklevel=3)
        keep = [k for k, (t, _, _) in enumerate(layout) if t in ("bootstrap_mean", "contrast")]
        return [
            _row(layout[k], group, estimate[k], np.nan, np.nan, np.nan, n_seeds, "one seed: no interval" + few)
            for k in keep
        ]

    mean_b, sd_b = _replicates(group, outcomes, paired, n_boot, rng)
    boot = _derive(mean_b, sd_b, pairs, wanted)
    jack = []
    if "bca" in intervals:
        jack = [_derive(m, s, pairs, wanted) for m, s in _jackknife(group, seed_level, paired)]
    sided = np.array([t in ("contrast", "sd_ratio") for t, _, _ in layout])
    nulls = np.array([0.0 if t == "contrast" else 1.0 if t == "sd_ratio" else np.nan for t, _, _ in layout])
    results = {kind: _interval(kind, boot, estimate, jack, sided, nulls, confidence, alternative) for kind in intervals}
    scheme = _scheme(outcomes, n_seeds, paired, n_boot)
    rows, failed = [], []
    for k, cell in enumerate(layout):
        if cell[0] in ("sd", "sd_ratio") and np.isnan(estimate[k]):
            continue
        for kind in intervals:
            low, high, p = (x[k] for x in results[kind])
            text = _interval_text(scheme, kind, confidence, alternative if sided[k] else None)
            if np.isnan(low) or np.isnan(high):
                failed.append(f"{cell[0]} {cell[1]}")
                text += "; interval not computable (degenerate bootstrap distribution)"
            row = _row(cell, group, estimate[k], low, high, p, n_seeds, text + few)
            row["variant"] = _VARIANTS[kind]
            if not (np.isnan(low) or np.isnan(high)):
                row.update(interval=_INTERVAL_NAMES[kind], confidence=confidence)
            rows.append(row)
    if failed:
        warnings.warn(
            f"{len(failed)} intervals could not be computed{_where(group)} (e.g. {failed[0]}): "
            "the bootstrap distribution is degenerate or an SD is zero",
            stacklevel=3,
        )
    return rows


def _interval(kind, boot, estimate, jack, sided, nulls, confidence, alternative):
    """One interval type for every column of ``boot`` (B, Q): low, high and p, each (Q,).

    Sided columns (contrasts, SD ratios) take ``alternative`` and a p-value against
    their null; the others are two-sided descriptions.
    """
    Q = boot.shape[1]
    low, high, p = np.full(Q, np.nan), np.full(Q, np.nan), np.full(Q, np.nan)
    for side, mask in (("two-sided", ~sided), (alternative, sided)):
        if not mask.any():
            continue
        columns = np.flatnonzero(mask)
        if kind == "percentile":
            out = _percentile_interval(boot[:, columns], confidence, side, nulls[columns])
        else:
            acceleration = _acceleration([values[:, columns] for values in jack])
            out = _bca_interval(boot[:, columns], estimate[columns], acceleration, confidence, side, nulls[columns])
        low[columns], high[columns], p[columns] = out
    return low, high, p


def _scheme(outcomes: _Outcomes | None, n_seeds: int, paired: bool, n_boot: int) -> str:
    """What was resampled, for the rows' ``method``."""
    if outcomes is None:
        scheme = f"paired bootstrap over {n_seeds} seeds" if paired else "bootstrap over each order's seeds (unpaired)"
        scheme += "; scores only, examples not resampled"
    else:
        sizes = sorted(set(outcomes.n_examples))
        per = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
        scheme = (
            f"paired hierarchical bootstrap: {n_seeds} seeds" + (" (paired across orders)" if paired else " (unpaired)")
            + f" x examples within language ({per} per language, {outcomes.kind})"
        )  # fmt: skip
    return scheme + f", B={n_boot}"


def _interval_text(scheme: str, kind: str, confidence: float, side: str | None) -> str:
    """The ``method`` of one row: the scheme, the interval and, for a test (``side``), how p was found."""
    label = {"percentile": "percentile", "bca": "BCa (acceleration from the jackknife over seeds)"}[kind]
    text = f"{scheme}; {label} CI"  # its level is the row's ``confidence``
    if side is None:
        return text
    return text + ("" if side == "two-sided" else f" ({side})") + "; p by inverting the interval"


def _row(cell, group: Group, estimate, low, high, p, n, method):
    test, term, fam = cell
    return {
        "test": test,
        "term": term,
        "task": group.task,
        "metric": group.metric,
        "family": fam,
        "estimate": float(estimate),
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": float(p),
        "n": n,
        "method": method,
    }
