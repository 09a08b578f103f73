"""Does the order of intermediate tasks change the across-seed variance?

A seed-level score is a run's mean over the family's languages; each order has one per
seed. :func:`variance_tests` compares their spread across orders with

- Brown-Forsythe (Levene's test centred on the median, robust to non-normal scores) and
  Levene's original mean-centred test, over all orders and for every pair
  (scipy.stats.levene with ``center="median"`` / ``"mean"``);
- the across-seed SD of every order and the SD ratio of every pair, with bootstrap CIs
  from :func:`~seqrob.analysis.bootstrap.paired_bootstrap` (seeds, and examples within
  language when predictions are given).

The likelihood-ratio test of order-specific against common run variance belongs to the
mixed model (:mod:`seqrob.analysis.mixed`), not here.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from seqrob.analysis.bootstrap import FEW_SEEDS, _groups, _pairs, _term, _where, paired_bootstrap
from seqrob.analysis.results import result_frame
from seqrob.warehouse.errors import InputError

__all__ = ["variance_tests"]

_CENTERS = {"median": "Brown-Forsythe (Levene, median-centred)", "mean": "Levene (mean-centred)"}


def variance_tests(
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
    orders: Sequence[str] | None = None,
    overall: bool = True,
    center: str | Sequence[str] = ("median", "mean"),
    n_boot: int = 2_000,
    confidence: float = 0.95,
    interval: str = "bca",
    seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Tests of equal across-seed variance between orders, SDs and SD ratios with CIs.

    Parameters
    ----------
    scores, predictions
        Long scores and optional per-example outcomes, as in
        :func:`~seqrob.analysis.bootstrap.paired_bootstrap` (predictions only feed the
        bootstrap CIs).
    dv, order, unit, language, family, task, metric, run, example, orders, overall
        Column names and the orders to compare, as in ``paired_bootstrap``.
    center
        ``"median"`` (Brown-Forsythe), ``"mean"`` (Levene) or both.
    n_boot
        Bootstrap replicates for the SD and SD-ratio CIs; 0 for no CIs.
    confidence
        Confidence level of the CIs.
    interval
        ``"bca"`` or ``"percentile"``.
    seed
        Seed of the bootstrap RNG.

    Returns
    -------
    pandas.DataFrame
        :data:`~seqrob.analysis.results.COLUMNS`, per task x metric x family:

        - ``test`` "sd", ``term`` an order: ``estimate`` the across-seed SD of its
          seed-level scores (ddof 1) with its bootstrap CI; ``n`` its seeds.
        - ``test`` "variance", ``term`` "order": the test over all orders (one row per
          ``center``): ``estimate`` the largest over the smallest SD, ``statistic`` W
          (an F statistic), ``df`` k - 1 (the denominator df, N - k, is in ``method``),
          ``p_value``, ``n`` the runs.
        - ``test`` "variance", ``term`` "a vs b": the same test on two orders (one row
          per ``center``): ``estimate`` ``sd_a / sd_b`` with the bootstrap CI of the
          ratio, ``statistic`` W, ``df`` 1, ``p_value`` of the test.

    Notes
    -----
    Levene's W is the one-way ANOVA F of the absolute deviations ``|y_os - c_o|`` from
    each order's centre ``c_o`` (median: Brown & Forsythe 1974; mean: Levene 1960), on
    ``(k - 1, N - k)`` df. Both treat the orders' seed-level scores as independent
    samples. When the orders share seeds, seed effects make the samples positively
    correlated and the tests conservative; the bootstrap SD ratio keeps the pairing (same
    seeds drawn in every order). pingouin.homoscedasticity(method="levene") is the
    median-centred test.

    References
    ----------
    Levene, H. (1960). Robust tests for equality of variances. Brown, M. B. & Forsythe,
    A. B. (1974). Robust tests for the equality of variances. JASA 69, 364-367.

    Examples
    --------
    >>> from seqrob.warehouse.simulate import simulate
    >>> sim = simulate(seeds=8, languages=("fi", "et"), families={"fi": "Uralic", "et": "Uralic"},
    ...                run_sd={"none": 0.01, "nli>qa": 0.03, "qa>nli": 0.01})
    >>> table = variance_tests(sim.scores, n_boot=200, seed=0, overall=False)
    >>> table.query("test == 'variance'")["term"].unique().tolist()
    ['order', 'nli>qa vs none', 'qa>nli vs none', 'qa>nli vs nli>qa']
    """
    centers = (center,) if isinstance(center, str) else tuple(center)
    if not centers or any(c not in _CENTERS for c in centers):
        raise InputError(f"center must be 'median', 'mean' or both, not {center!r}", fix="pass center='median'")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise InputError(f"n_boot must be an integer >= 0, not {n_boot!r}", fix="pass n_boot=2000")
    if interval not in ("bca", "percentile"):
        raise InputError(f"interval must be 'bca' or 'percentile', not {interval!r}", fix="pass interval='bca'")
    groups = _groups(
        scores, dv=dv, order=order, unit=unit, language=language, family=family,
        task=task, metric=metric, run=None, orders=orders, overall=overall,
    )  # fmt: skip
    intervals = {}
    if n_boot > 0:
        with warnings.catch_warnings():
            # paired_bootstrap repeats the few-seeds and pairing warnings given below.
            warnings.simplefilter("ignore")
            boot = paired_bootstrap(
                scores, predictions, dv=dv, order=order, unit=unit, language=language, family=family,
                task=task, metric=metric, run=run, example=example, orders=orders,
                statistics=("sd", "sd_ratio"), overall=overall, n_boot=int(n_boot), confidence=confidence,
                interval=interval, seed=seed,
            )  # fmt: skip
        for row in boot.itertuples(index=False):
            intervals[(row.task, row.metric, row.family, row.test, row.term)] = (row.ci_low, row.ci_high, row.method)
    rows = []
    for group in groups:
        rows.extend(_group_rows(group, centers, intervals, n_boot))
    return result_frame(rows)


def _group_rows(group, centers, intervals, n_boot) -> list[dict]:
    level = group.seed_level()  # (R, F)
    O = len(group.orders)
    sizes = group.order_sizes
    few = int(sizes.min()) <= FEW_SEEDS
    if few:
        warnings.warn(
            f"{int(sizes.min())} seeds{_where(group)}: variance tests have little power with so few seeds",
            stacklevel=3,
        )
    if (sizes < 2).any():
        warnings.warn(f"an order has one seed{_where(group)}: its SD is undefined and it is left out", stacklevel=3)
    usable = [o for o in range(O) if sizes[o] >= 2]
    base = {"task": group.task, "metric": group.metric}
    rows = []
    for f, fam in enumerate(group.families):
        samples = {o: level[group.runs_of(o), f] for o in usable}
        sd = {o: float(np.std(samples[o], ddof=1)) for o in usable}
        for o in usable:
            low, high, how = intervals.get((group.task, group.metric, fam, "sd", group.orders[o]), (np.nan, np.nan, ""))
            rows.append(
                {
                    **base,
                    "test": "sd",
                    "term": group.orders[o],
                    "family": fam,
                    "estimate": sd[o],
                    "ci_low": low,
                    "ci_high": high,
                    "n": int(sizes[o]),
                    "method": "across-seed SD of seed-level scores (ddof 1)" + (f"; CI: {how}" if how else ""),
                }  # fmt: skip
            )
        if len(usable) < 2:
            continue
        values = [samples[o] for o in usable]
        spread = [sd[o] for o in usable]
        largest, smallest = max(spread), min(spread)
        ratio = largest / smallest if smallest > 0 else np.inf
        N, k = sum(len(v) for v in values), len(values)
        overall_test = {}
        for c in centers:
            statistic, p = overall_test[c] = _levene(values, c)
            rows.append(
                {
                    **base,
                    "test": "variance",
                    "term": "order",
                    "family": fam,
                    "estimate": ratio,
                    "statistic": statistic,
                    "df": k - 1,
                    "p_value": p,
                    "n": N,
                    "method": f"{_CENTERS[c]} over {k} orders, F({k - 1}, {N - k}); estimate: largest / smallest SD"
                    + ("; few seeds" if few else ""),
                }  # fmt: skip
            )
        for pair in _pairs(O):
            if pair[0] not in sd or pair[1] not in sd:
                continue
            term = _term(group.orders, pair)
            a, b = samples[pair[0]], samples[pair[1]]
            estimate = sd[pair[0]] / sd[pair[1]] if sd[pair[1]] > 0 else np.inf
            low, high, how = intervals.get((group.task, group.metric, fam, "sd_ratio", term), (np.nan, np.nan, ""))
            for c in centers:
                # With two orders the pair's test is the test over all orders.
                statistic, p = overall_test[c] if len(usable) == 2 else _levene([a, b], c)
                rows.append(
                    {
                        **base,
                        "test": "variance",
                        "term": term,
                        "family": fam,
                        "estimate": estimate,
                        "ci_low": low,
                        "ci_high": high,
                        "statistic": statistic,
                        "df": 1,
                        "p_value": p,
                        "n": len(a) + len(b),
                        "method": f"{_CENTERS[c]}, F(1, {len(a) + len(b) - 2}); estimate: SD ratio"
                        + (f"; CI: {how}" if how else ("; no CI (n_boot=0)" if n_boot == 0 else ""))
                        + ("; few seeds" if few else ""),
                    }  # fmt: skip
                )
    return rows


def _levene(samples: list[np.ndarray], center: str) -> tuple[float, float]:
    """scipy.stats.levene, NaN (not an exception or a warning storm) when degenerate."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.levene(*samples, center=center)
    return float(result.statistic), float(result.pvalue)
