"""Few-seed inference over seeds: exact sign-flip and permutation tests, and the t interval.

With 3-5 seeds a percentile bootstrap over seeds undercovers (the MultiBERTs procedure
rejects a true null about twice as often as it should at 3 seeds). Here the seed is the
unit: for a pair of orders and a family, each seed gives one difference

    d_s = mean over the family's languages of (score[o1, s, l] - score[o2, s, l]),

which carries that seed's run deviations, and every test below works on the d_s (or on
the seed-level scores of each order when seeds are not shared).

- :func:`sign_flip_test`: paired. Under H0 the d_s are symmetric about 0, so their signs
  are exchangeable; all 2^S sign vectors are enumerated for S <= 16 (Monte Carlo beyond).
  The CI inverts the test (Hartigan's subset means). The design's limits are stated: with
  3 seeds the smallest two-sided p is 0.25, and the function says it cannot reach alpha.
- :func:`seed_t_test`: the paired t interval on the d_s (S - 1 df), exact when the d_s are
  normal -- nearly so, as each averages many languages; Welch's t when unpaired.
- :func:`permutation_test`: unpaired, for designs whose orders were run with different
  seeds: the seed-level scores of the two orders are permuted between them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from functools import lru_cache
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

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
from seqrob.analysis.results import result_frame

__all__ = ["MAX_EXACT_SEEDS", "MAX_EXACT_SPLITS", "permutation_test", "seed_t_test", "sign_flip_test"]

#: Sign vectors are enumerated exactly up to this many seeds (2^16 = 65,536).
MAX_EXACT_SEEDS = 16
#: Two-sample splits are enumerated exactly up to this many (10 vs 10 seeds: 184,756).
MAX_EXACT_SPLITS = 200_000


# --- the exact and Monte Carlo cores (arrays in, arrays out) ------------------------


@lru_cache(maxsize=8)
def _subsets(n: int) -> np.ndarray:
    """Every non-empty subset of n items as rows of a boolean matrix (2^n - 1, n)."""
    codes = np.arange(1, 2**n, dtype=np.int64)
    return ((codes[:, None] >> np.arange(n)) & 1).astype(bool)


def _invert(critical: np.ndarray, total: int, alternative: str, confidence: float):
    """p-values and CI from the critical shifts of a randomisation test.

    ``critical`` (M, K): for each non-identity rearrangement, the shift delta at which
    its statistic ties the observed one, NaN where it always ties (the identity drawn
    again). The one-sided p of H0 "shift = delta" against "shift > delta" is
    ``(1 + #{critical <= delta}) / total``; against "< delta" ``(1 + #{critical >=
    delta}) / total``. The CI is the set of deltas a level-(1 - confidence) test does
    not reject: between the k-th smallest and k-th largest critical value with
    ``k = floor(alpha/2 * total)`` (two-sided), unbounded where k = 0.
    """
    K = critical.shape[1]
    alpha = 1.0 - confidence
    ties = np.isnan(critical)
    scale = np.nanmax(np.abs(critical), axis=0, initial=0.0)
    tolerance = 1e-10 * np.where(scale > 0, scale, 1.0)
    n_ties = ties.sum(axis=0)
    # Shifts within rounding of 0 are 0, so that the CI and the p-value of delta = 0 agree.
    critical = np.where(np.abs(critical) <= tolerance, 0.0, critical)
    with np.errstate(invalid="ignore"):
        below = (critical <= tolerance).sum(axis=0) + n_ties
        above = (critical >= -tolerance).sum(axis=0) + n_ties
    p_greater = (1.0 + below) / total
    p_less = (1.0 + above) / total
    if alternative == "greater":
        p = p_greater
    elif alternative == "less":
        p = p_less
    else:
        p = np.minimum(1.0, 2.0 * np.minimum(p_greater, p_less))
    tail = alpha / 2.0 if alternative == "two-sided" else alpha
    k = int(math.floor(tail * total + 1e-9))
    low = np.full(K, -np.inf)
    high = np.full(K, np.inf)
    if k >= 1:
        if alternative in ("two-sided", "greater"):
            ascending = np.sort(np.where(ties, -np.inf, critical), axis=0)
            low = ascending[k - 1]
        if alternative in ("two-sided", "less"):
            descending = -np.sort(-np.where(ties, np.inf, critical), axis=0)
            high = descending[k - 1]
    return p, low, high


def _smallest_p(total: int, alternative: str) -> float:
    return min(1.0, (2.0 if alternative == "two-sided" else 1.0) / total)


def _sign_flip(d: np.ndarray, alternative: str, confidence: float, n_resamples: int, rng) -> dict:
    """Paired sign-flip test of mean(d) = 0 for each column of d (S, K).

    Flipping the signs of the seeds in subset A moves the statistic ``sum(d - delta)``
    below the observed one exactly when ``mean_A(d) > delta``: the subset means are the
    critical shifts (Hartigan 1969), which gives p and the inverted CI at once.
    """
    S = d.shape[0]
    exact = S <= MAX_EXACT_SEEDS
    if exact:
        flipped = _subsets(S)
        total = 2**S
    else:
        flipped = rng.integers(0, 2, (n_resamples, S)).astype(bool)
        total = n_resamples + 1
    sizes = flipped.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        critical = (flipped.astype(float) @ d) / sizes[:, None]  # NaN where nothing is flipped
    p, low, high = _invert(critical, total, alternative, confidence)
    return {"p": p, "low": low, "high": high, "total": total, "exact": exact}


def _two_sample(x: np.ndarray, y: np.ndarray, alternative: str, confidence: float, n_resamples: int, rng) -> dict:
    """Permutation test of mean(x) - mean(y) = 0 for each column of x (n1, K), y (n2, K).

    Moving the x's in A to the second group and the y's in B (|A| = |B| = k) to the
    first moves the statistic below the observed one exactly when
    ``mean_A(x) - mean_B(y) > delta``: those are the critical shifts.
    """
    n1, n2 = x.shape[0], y.shape[0]
    n = n1 + n2
    splits = math.comb(n, n1)
    exact = splits <= MAX_EXACT_SPLITS
    if exact:
        chosen = np.fromiter(
            (i for combo in combinations(range(n), n1) for i in combo), dtype=np.int64, count=splits * n1
        ).reshape(splits, n1)[1:]  # the first combination is the observed split (counted as the 1 in 1 + ...)
        total = splits
    else:
        chosen = np.argsort(rng.random((n_resamples, n)), axis=1)[:, :n1]
        total = n_resamples + 1
    first = np.zeros((chosen.shape[0], n), dtype=bool)
    np.put_along_axis(first, chosen, True, axis=1)
    moved_in = first[:, n1:]  # y's now in the first group
    moved_out = ~first[:, :n1]  # x's now in the second group
    k = moved_in.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        critical = (moved_out.astype(float) @ x - moved_in.astype(float) @ y) / k[:, None]
    p, low, high = _invert(critical, total, alternative, confidence)
    return {"p": p, "low": low, "high": high, "total": total, "exact": exact}


# --- shared plumbing ----------------------------------------------------------------


def _read(scores, dv, order, unit, language, family, task, metric, orders, overall, groups) -> list[Group]:
    return _read_groups(
        scores, groups, dv=dv, order=order, unit=unit, language=language, family=family,
        task=task, metric=metric, run=None, orders=orders, overall=overall,
    )  # fmt: skip


def _paired_differences(group: Group, pair: tuple[int, int]) -> tuple[np.ndarray, list]:
    """Per-seed differences (S, F) of the pair over the seeds both orders have."""
    seeds = group.common_seeds(pair)
    dropped = len(group.runs_of(pair[0])) + len(group.runs_of(pair[1])) - 2 * len(seeds)
    if dropped:
        warnings.warn(
            f"{_term(group.orders, pair)}{_where(group)}: {dropped} runs whose seed the other order lacks are left out",
            stacklevel=3,
        )
    if not seeds:
        return np.empty((0, len(group.families))), seeds
    runs = group.aligned(pair, seeds)
    level = group.seed_level()
    return level[runs[0]] - level[runs[1]], seeds


def _row(group: Group, term: str, family, **values) -> dict:
    return {"test": "contrast", "term": term, "task": group.task, "metric": group.metric, "family": family, **values}


def _few_seeds_note(n_seeds: int, smallest: float, alpha: float, where: str, what: str) -> str:
    if smallest > alpha:
        text = (
            f"smallest attainable p is {smallest:.3g} > alpha {alpha:.3g}: with {n_seeds} seeds "
            f"this design cannot reject at this level, and the {(1 - alpha) * 100:g}% CI is unbounded"
        )
        warnings.warn(FewSeedsWarning(f"{what}{where}: {text}"), stacklevel=3)
        return "; " + text
    return ""


# --- public functions ---------------------------------------------------------------


def sign_flip_test(
    scores: pd.DataFrame,
    *,
    dv: str = "score",
    order: str = "order",
    unit: str = "seed",
    language: str = "language",
    family: str = "family",
    task: str | None = "task",
    metric: str | None = "metric",
    orders: Sequence[str] | None = None,
    overall: bool = True,
    alternative: str = "two-sided",
    confidence: float = 0.95,
    n_resamples: int = 100_000,
    seed: int | np.random.Generator | None = None,
    groups: Sequence[Group] | None = None,
) -> pd.DataFrame:
    """Exact paired sign-flip test over seeds for every order pair, with its inverted CI.

    Parameters
    ----------
    scores
        Long scores (see :func:`~seqrob.analysis.bootstrap.paired_bootstrap`).
    dv, order, unit, language, family, task, metric
        Column names; ``unit`` is the seed column (the unit that pairs the orders).
    orders
        Orders to compare, in the order contrasts are formed (each later order minus each
        earlier one; ``["none", "nli>qa"]`` gives the one contrast "nli>qa vs none").
        Default: all, ``none`` first.
    overall
        Also test the mean over all languages (rows with ``family`` None).
    alternative
        ``"two-sided"``, ``"greater"`` (first order of the term better) or ``"less"``.
    confidence
        Confidence level of the CI; alpha = 1 - confidence is the level the design is
        checked against.
    n_resamples
        Random sign vectors when there are more than 16 seeds.
    seed
        Seed of the RNG (used only beyond 16 seeds).
    groups
        The scores as :func:`~seqrob.analysis.layout.build_groups` read them, to share
        one reading between procedures: ``scores`` is then not read again, and the column
        names and ``orders`` are those the groups were built with.

    Returns
    -------
    pandas.DataFrame
        :data:`~seqrob.analysis.results.COLUMNS`, one row per task x metric x pair x
        family: ``test`` "contrast"; ``term`` "a vs b"; ``estimate`` the mean of
        ``d_s`` (a - b, scores' units); ``ci_low, ci_high`` the inverted CI (infinite
        where the design cannot exclude anything); ``statistic`` the mean difference
        (the statistic whose signs are flipped); ``df`` NaN; ``p_value``; ``n`` the
        seeds; ``method`` the test, the number of sign vectors and, where it applies,
        that alpha cannot be reached.

    Warns
    -----
    FewSeedsWarning
        When the smallest attainable p exceeds alpha (at most 5 seeds, two-sided 0.05).

    Notes
    -----
    ``d_s`` is the mean over the family's languages of the seed's score difference.
    Under H0 (no order effect) ``d_s`` is symmetric about 0 -- its run deviations and
    residuals are, whatever their variances -- and independent across seeds, so each of
    the 2^S sign vectors is equally likely. With ``T = sum d_s`` the one-sided p is
    ``#{signs: T* >= T} / 2^S``; the two-sided p is twice the smaller one-sided p, capped
    at 1, which makes the CI and the test agree exactly: a shift delta is in the CI if and
    only if the test of ``d_s - delta`` does not reject. The CI's ends are order
    statistics of the 2^S - 1 subset means of ``d_s`` (Hartigan 1969), so at S seeds its
    coverage is at least ``1 - 2 floor(alpha/2 * 2^S) / 2^S``. The smallest two-sided p is
    ``2 / 2^S``: 0.25 at 3 seeds, 0.0625 at 5, 0.03125 at 6.

    References
    ----------
    Fisher, R. A. (1935). The Design of Experiments. Hartigan, J. A. (1969). Using
    subsample values as typical values. JASA 64, 1303-1317.

    Examples
    --------
    >>> from seqrob.warehouse.simulate import simulate
    >>> sim = simulate(seeds=6, languages=("fi", "et"), families={"fi": "Uralic", "et": "Uralic"})
    >>> table = sign_flip_test(sim.scores, orders=["none", "nli>qa"], overall=False)
    >>> table[["term", "family", "n"]].to_dict("records")
    [{'term': 'nli>qa vs none', 'family': 'Uralic', 'n': 6.0}]
    """
    _check_options(confidence, alternative)
    n_resamples = _positive_int(n_resamples, "n_resamples")
    rng = np.random.default_rng(seed)
    rows = []
    for group in _read(scores, dv, order, unit, language, family, task, metric, orders, overall, groups):
        for pair in _pairs(len(group.orders)):
            term = _term(group.orders, pair)
            d, seeds = _paired_differences(group, pair)
            S = len(seeds)
            if S < 1:
                warnings.warn(f"{term}{_where(group)}: no seed has both orders - use permutation_test", stacklevel=2)
                continue
            result = _sign_flip(d, alternative, confidence, n_resamples, rng)
            smallest = _smallest_p(result["total"], alternative)
            what = f"sign-flip test of {term}"
            note = _few_seeds_note(S, smallest, 1.0 - confidence, _where(group), what)
            if result["exact"]:
                scheme = f"exact paired sign-flip test over {S} seeds ({result['total']} sign vectors)"
            else:
                scheme = f"Monte Carlo paired sign-flip test over {S} seeds ({n_resamples} random sign vectors)"
            side = "" if alternative == "two-sided" else f", {alternative}"
            text = f"{scheme}{side}; CI by inverting the test (Hartigan subset means){note}"
            estimate = d.mean(axis=0)
            for f, fam in enumerate(group.families):
                rows.append(
                    _row(
                        group,
                        term,
                        fam,
                        estimate=estimate[f],
                        ci_low=result["low"][f],
                        ci_high=result["high"][f],
                        statistic=estimate[f],
                        p_value=result["p"][f],
                        n=S,
                        method=text,
                    )  # fmt: skip
                )
    return result_frame(rows)


def seed_t_test(
    scores: pd.DataFrame,
    *,
    dv: str = "score",
    order: str = "order",
    unit: str = "seed",
    language: str = "language",
    family: str = "family",
    task: str | None = "task",
    metric: str | None = "metric",
    orders: Sequence[str] | None = None,
    overall: bool = True,
    paired: bool = True,
    alternative: str = "two-sided",
    confidence: float = 0.95,
    groups: Sequence[Group] | None = None,
) -> pd.DataFrame:
    """t test and interval over seeds for every order pair: paired (S - 1 df) or Welch.

    Parameters
    ----------
    scores, dv, order, unit, language, family, task, metric, orders, overall
        As in :func:`sign_flip_test`.
    paired
        True (default): the paired t on the per-seed differences ``d_s`` over the seeds
        both orders have. False: Welch's t on the two orders' seed-level scores (for
        designs whose orders were run with different seeds).
    alternative, confidence
        As in scipy.stats.ttest_rel.
    groups
        As in :func:`sign_flip_test`.

    Returns
    -------
    pandas.DataFrame
        :data:`~seqrob.analysis.results.COLUMNS`, one row per task x metric x pair x
        family: ``test`` "contrast"; ``estimate`` mean difference (a - b); ``ci_low,
        ci_high`` the t interval; ``statistic`` t; ``df``; ``p_value``; ``n`` seeds.

    Notes
    -----
    Paired: ``t = mean(d) / (sd(d) / sqrt(S))`` on S - 1 df, CI ``mean(d) +- t_{S-1,
    1-alpha/2} sd(d) / sqrt(S)``; exact when the ``d_s`` are iid normal. Each ``d_s``
    averages the family's languages and thousands of examples, and its run deviations
    are normal in the usual models, so this is the small-sample interval of choice: at
    5 seeds it covers 95% (``tests/test_permutation.py`` measures it on simulations with
    run-level noise), where the sign-flip CI is unbounded. The same numbers as
    scipy.stats.ttest_rel / ttest_ind(equal_var=False) and pingouin.ttest (tested),
    computed directly for every family at once.

    Examples
    --------
    >>> from seqrob.warehouse.simulate import simulate
    >>> sim = simulate(seeds=4, languages=("fi", "et"), families={"fi": "Uralic", "et": "Uralic"})
    >>> table = seed_t_test(sim.scores, orders=["none", "qa>nli"], overall=False)
    >>> float(table["df"].iloc[0])
    3.0
    """
    _check_options(confidence, alternative)
    rows = []
    for group in _read(scores, dv, order, unit, language, family, task, metric, orders, overall, groups):
        level = group.seed_level()
        for pair in _pairs(len(group.orders)):
            term = _term(group.orders, pair)
            if paired:
                d, seeds = _paired_differences(group, pair)
                n = len(seeds)
                if n < 2:
                    warnings.warn(f"{term}{_where(group)}: fewer than 2 paired seeds - no t test", stacklevel=2)
                    continue
                estimate = d.mean(axis=0)
                spread = d.std(axis=0, ddof=1)
                se = spread / np.sqrt(n)
                df = np.full(estimate.shape, n - 1.0)
                scheme = f"paired t over {n} seeds (per-seed differences), {n - 1} df"
            else:
                x, y = level[group.runs_of(pair[0])], level[group.runs_of(pair[1])]
                if min(len(x), len(y)) < 2:
                    warnings.warn(f"{term}{_where(group)}: an order has fewer than 2 seeds - no t test", stacklevel=2)
                    continue
                n = len(set(group.run_seed[group.runs_of(pair[0])]) | set(group.run_seed[group.runs_of(pair[1])]))
                estimate = x.mean(axis=0) - y.mean(axis=0)
                vx, vy = x.var(axis=0, ddof=1) / len(x), y.var(axis=0, ddof=1) / len(y)
                se = np.sqrt(vx + vy)
                spread = se
                with np.errstate(invalid="ignore", divide="ignore"):
                    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
                scheme = f"Welch t on seed-level scores ({len(x)} and {len(y)} seeds, unpaired)"
            statistic, p, low, high = _t(estimate, se, df, alternative, confidence)
            side = "" if alternative == "two-sided" else f", {alternative}"
            # Spread at rounding level (e.g. 0.6 - 0.5 vs 0.7 - 0.6) is no spread: t would be ~1e15.
            degenerate = ~(spread > 1e-9 * max(float(np.abs(level).max(initial=0.0)), 1e-300))
            if degenerate.any():
                warnings.warn(
                    f"{term}{_where(group)}: the differences have zero variance in {int(degenerate.sum())} "
                    "families - no t test there",
                    stacklevel=2,
                )
            few = f"; {n} seeds" if n <= FEW_SEEDS else ""
            for f, fam in enumerate(group.families):
                bad = bool(degenerate[f])
                rows.append(
                    _row(
                        group,
                        term,
                        fam,
                        estimate=estimate[f],
                        ci_low=np.nan if bad else low[f],
                        ci_high=np.nan if bad else high[f],
                        statistic=np.nan if bad else statistic[f],
                        df=df[f],
                        p_value=np.nan if bad else p[f],
                        n=n,
                        method=f"{scheme}{side}{few}" + ("; the differences have no spread (all equal up to "
                                                         "rounding): no noise to test against, no test" if bad else ""),
                    )  # fmt: skip
                )
    return result_frame(rows)


def _t(estimate, se, df, alternative, confidence):
    """t statistic, p-value and CI (as scipy.stats.ttest_1samp / ttest_ind computes them)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        statistic = estimate / se
        if alternative == "two-sided":
            p = 2.0 * stats.t.sf(np.abs(statistic), df)
            margin = stats.t.ppf(0.5 + confidence / 2.0, df) * se
            return statistic, p, estimate - margin, estimate + margin
        margin = stats.t.ppf(confidence, df) * se
        if alternative == "greater":
            return statistic, stats.t.sf(statistic, df), estimate - margin, np.full(estimate.shape, np.inf)
        return statistic, stats.t.cdf(statistic, df), np.full(estimate.shape, -np.inf), estimate + margin


def permutation_test(
    scores: pd.DataFrame,
    *,
    dv: str = "score",
    order: str = "order",
    unit: str = "seed",
    language: str = "language",
    family: str = "family",
    task: str | None = "task",
    metric: str | None = "metric",
    orders: Sequence[str] | None = None,
    overall: bool = True,
    alternative: str = "two-sided",
    confidence: float = 0.95,
    n_resamples: int = 100_000,
    seed: int | np.random.Generator | None = None,
    groups: Sequence[Group] | None = None,
) -> pd.DataFrame:
    """Unpaired permutation test of every order pair on seed-level scores, with its CI.

    For designs whose orders were run with different seeds (or to ignore the pairing):
    the seed-level scores (each run's mean over the family's languages) of the two orders
    are permuted between them. Splits are enumerated exactly up to 200,000 (10 vs 10
    seeds), else ``n_resamples`` random permutations.

    Parameters
    ----------
    scores, dv, order, unit, language, family, task, metric, orders, overall, alternative, confidence, seed, groups
        As in :func:`sign_flip_test`.
    n_resamples
        Random permutations when the splits are too many to enumerate.

    Returns
    -------
    pandas.DataFrame
        As :func:`sign_flip_test`: ``estimate`` and ``statistic`` the difference of the
        two orders' mean seed-level scores; ``n`` the distinct seeds of both orders.

    Notes
    -----
    Under H0 "order b's scores shifted by delta have the distribution of order a's" the
    pooled ``x - delta, y`` are exchangeable. Moving the x's in A and the y's in B
    (``|A| = |B| = k``) across changes ``mean(x) - mean(y)`` by ``(sum_B y - sum_A (x -
    delta)) (1/n1 + 1/n2)``, so it ties the observed statistic at ``delta = mean_A(x) -
    mean_B(y)``; the CI collects the deltas not rejected (two one-sided tests at alpha/2).
    When the orders share seeds this test ignores the pairing and is conservative: use
    :func:`sign_flip_test`.
    """
    _check_options(confidence, alternative)
    n_resamples = _positive_int(n_resamples, "n_resamples")
    rng = np.random.default_rng(seed)
    rows = []
    for group in _read(scores, dv, order, unit, language, family, task, metric, orders, overall, groups):
        level = group.seed_level()
        for pair in _pairs(len(group.orders)):
            term = _term(group.orders, pair)
            x, y = level[group.runs_of(pair[0])], level[group.runs_of(pair[1])]
            seeds_a = set(group.run_seed[group.runs_of(pair[0])])
            seeds_b = set(group.run_seed[group.runs_of(pair[1])])
            if seeds_a & seeds_b:
                warnings.warn(
                    f"{term}{_where(group)}: the orders share {len(seeds_a & seeds_b)} seeds; "
                    "the unpaired test ignores that pairing - sign_flip_test uses it",
                    stacklevel=2,
                )
            result = _two_sample(x, y, alternative, confidence, n_resamples, rng)
            n = len(seeds_a | seeds_b)
            smallest = _smallest_p(result["total"], alternative)
            note = _few_seeds_note(n, smallest, 1.0 - confidence, _where(group), f"permutation test of {term}")
            if result["exact"]:
                scheme = f"exact permutation test, unpaired ({len(x)} vs {len(y)} seeds, {result['total']} splits)"
            else:
                scheme = (
                    f"Monte Carlo permutation test, unpaired ({len(x)} vs {len(y)} seeds, {n_resamples} permutations)"
                )
            side = "" if alternative == "two-sided" else f", {alternative}"
            text = f"{scheme}{side}; CI by inverting the test{note}"
            estimate = x.mean(axis=0) - y.mean(axis=0)
            for f, fam in enumerate(group.families):
                rows.append(
                    _row(
                        group,
                        term,
                        fam,
                        estimate=estimate[f],
                        ci_low=result["low"][f],
                        ci_high=result["high"][f],
                        statistic=estimate[f],
                        p_value=result["p"][f],
                        n=n,
                        method=text,
                    )  # fmt: skip
                )
    return result_frame(rows)
