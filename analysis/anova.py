"""Does order matter at all, and does its effect differ between families? Tests over seeds.

The unit of replication is the seed (paired designs: every order run with the seed) or
the run (orders run with different seeds). Each run is summarised by its family means
(the mean over a family's languages), so one run gives a vector of family scores, and
one seed of a paired design a vector of order x family scores.
Nothing is assumed about that vector's covariance: a run's luck may differ between
families (run x family effects), families may be far noisier than others, and a seed
effect may be shared by the orders. The tests are the ANOVA-type statistic (ATS) of
Brunner, Dette & Munk (1997) with Box's F approximation:

- paired (one sample of seed vectors): the repeated-measures ANOVA F with the
  Greenhouse-Geisser correction (the same numbers as ``pingouin.rm_anova``);
- unpaired (independent runs per order, each with its own covariance): the
  heteroscedastic ATS, a Welch-type ANOVA for vectors.

Two hypotheses are tested per task x metric: ``order_anova`` (the orders' means over
all languages are equal; families weighted by their number of languages, as the
contrasts over all languages are) and ``order_family_anova`` (the order differences are
the same in every family). These are the rows the verdicts read; the mixed model's F
tests (``lrt_order``, ``lrt_order_family``) assume one run variance shared by all
families and are reported for reference.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import linalg, stats

from seqrob.analysis.layout import Group, _read_groups, _where
from seqrob.analysis.results import result_frame

__all__ = ["anova_type_test", "order_anova", "seed_design"]


def anova_type_test(
    means: Sequence[np.ndarray], covariances: Sequence[np.ndarray], sizes: Sequence[int], hypothesis: np.ndarray
) -> dict:
    """Brunner-Dette-Munk ANOVA-type test of ``H mu = 0`` for independent samples of vectors.

    Parameters
    ----------
    means, covariances, sizes
        Per independent sample i: its mean vector (p_i,), its sample covariance (p_i, p_i,
        ddof 1) and its size n_i. The stacked mean ``mu`` is their concatenation.
    hypothesis
        ``H``, (r, sum p_i): the hypothesis ``H mu = 0``.

    Returns
    -------
    dict
        ``statistic`` (F_N), ``df1``, ``df2`` (Box's approximation), ``p_value``;
        NaN values when the estimated covariance of the contrasts is zero.

    Notes
    -----
    With ``T = H'(HH')^+ H``, ``V = blockdiag(S_i / n_i)`` and ``V_i`` the block of
    sample i: ``F_N = mu'T mu / tr(TV)``, approximately F on ``df1 = tr(TV)^2 / tr(TVTV)``
    and ``df2 = tr(TV)^2 / sum_i tr((T V_i)^2) / (n_i - 1)`` df. For one sample it is the
    repeated-measures F with the Greenhouse-Geisser epsilon (``df1 = eps r``,
    ``df2 = eps r (n - 1)``).

    References
    ----------
    Brunner, E., Dette, H. & Munk, A. (1997). Box-type approximations in nonparametric
    factorial designs. JASA 92, 1494-1502. Box, G. E. P. (1954). Some theorems on quadratic
    forms applied in the study of analysis of variance problems. Ann. Math. Statist. 25.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> y = rng.normal(size=(12, 3)) + np.array([0.0, 0.0, 1.5])
    >>> H = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]])
    >>> result = anova_type_test([y.mean(axis=0)], [np.cov(y, rowvar=False)], [12], H)
    >>> bool(result["p_value"] < 0.01)
    True
    """
    H = np.atleast_2d(np.asarray(hypothesis, dtype=float))
    T = H.T @ np.linalg.pinv(H @ H.T) @ H
    mu = np.concatenate([np.asarray(m, dtype=float) for m in means])
    edges = np.cumsum([0] + [len(m) for m in means])
    V = np.zeros((mu.size, mu.size))
    blocks = []
    for i, (S, n) in enumerate(zip(covariances, sizes)):
        Vi = np.zeros_like(V)
        Vi[edges[i] : edges[i + 1], edges[i] : edges[i + 1]] = np.asarray(S, dtype=float) / n
        V += Vi
        blocks.append((Vi, n))
    TV = T @ V
    trace = float(np.trace(TV))
    nan = {"statistic": np.nan, "df1": np.nan, "df2": np.nan, "p_value": np.nan}
    # Noise at rounding level (every seed gives the same means) is no noise: F would be ~1e32.
    scale = max(float(mu @ mu) / max(mu.size, 1), 1e-300)
    if not trace > 1e-18 * scale:
        return nan
    statistic = float(mu @ T @ mu) / trace
    df1 = trace**2 / float(np.trace(TV @ TV))
    denominator = sum(float(np.trace((T @ Vi) @ (T @ Vi))) / (n - 1) for Vi, n in blocks)
    df2 = trace**2 / denominator if denominator > 0 else np.inf
    return {"statistic": statistic, "df1": df1, "df2": df2, "p_value": float(stats.f.sf(statistic, df1, df2))}


def seed_design(group: Group, orders: Sequence[int]) -> tuple[str, list]:
    """``("paired", seeds)`` when 2+ seeds were run with every one of ``orders``, else
    ``("unpaired", [])``: the orders' runs are then independent samples."""
    seeds = group.common_seeds(list(orders))
    return ("paired", seeds) if len(seeds) >= 2 else ("unpaired", [])


def _hypotheses(n_orders: int, weights: np.ndarray) -> dict[str, np.ndarray]:
    """H for order-major cells (o * F + f): the order main effect (families weighted) and
    order x family (Helmert contrasts of both)."""
    orders = linalg.helmert(n_orders)  # (k - 1, k)
    out = {"order_anova": np.kron(orders, weights[None, :])}
    if weights.size > 1:
        out["order_family_anova"] = np.kron(orders, linalg.helmert(weights.size))
    return out


def order_anova(
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
    groups: Sequence[Group] | None = None,
) -> pd.DataFrame:
    """ANOVA-type tests over seeds of order and order x family, per task x metric.

    Parameters
    ----------
    scores
        Long scores (see :func:`~seqrob.analysis.bootstrap.paired_bootstrap`).
    dv, order, unit, language, family, task, metric
        Column names; ``unit`` is the seed column.
    orders
        Orders to compare (default: all, ``none`` first).
    groups
        The scores as :func:`~seqrob.analysis.layout.build_groups` read them, to share
        one reading between procedures: ``scores`` is then not read again, and the column
        names and ``orders`` are those the groups were built with.

    Returns
    -------
    pandas.DataFrame
        :data:`~seqrob.analysis.results.COLUMNS`, per task x metric: ``test``
        ``order_anova`` (``term`` "order") and, with 2+ families, ``order_family_anova``
        (``term`` "order x family"); ``family`` None; ``statistic`` F_N; ``df`` the
        denominator df (the numerator df is in ``method``); ``p_value``; ``n`` the seeds
        (paired) or runs (unpaired); ``estimate`` the largest minus the smallest order
        mean over all languages (order) or the largest absolute family-centred order
        difference (order x family), in the scores' units.

    Notes
    -----
    See :func:`anova_type_test`. Paired: cells are the seeds' order x family means over
    the seeds run with every order. Unpaired: each order's runs are an independent sample
    of family-mean vectors with their own covariance. Families are weighted by their
    number of languages in the order test.

    Examples
    --------
    >>> from seqrob.warehouse.simulate import simulate
    >>> sim = simulate(seeds=8, languages=("fi", "et", "ta"),
    ...                families={"fi": "Uralic", "et": "Uralic", "ta": "Dravidian"})
    >>> order_anova(sim.scores)["test"].tolist()
    ['order_anova', 'order_family_anova']
    """
    rows = []
    groups = _read_groups(scores, groups, dv=dv, order=order, unit=unit, language=language, family=family,
                          task=task, metric=metric, run=None, orders=orders, overall=False)  # fmt: skip
    for group in groups:
        rows.extend(_group_rows(group))
    return result_frame(rows)


def _group_rows(group: Group) -> list[dict]:
    k, F = len(group.orders), len(group.families)
    if k < 2:
        return []
    level = group.seed_level()  # (R, F)
    weights = group.family_sizes / group.family_sizes.sum()
    design, seeds = seed_design(group, range(k))
    if design == "paired":
        runs = group.aligned(range(k), seeds)  # (k, S)
        dropped = level.shape[0] - runs.size
        if dropped:
            warnings.warn(f"order tests{_where(group)}: {dropped} runs whose seed lacks an order are left out",
                          stacklevel=3)  # fmt: skip
        cells = np.concatenate([level[runs[o]] for o in range(k)], axis=1)  # (S, k * F), order-major
        samples = [cells]
        n = len(seeds)
        scheme = (f"repeated-measures ANOVA over {n} seeds of the order x family means, Greenhouse-Geisser "
                  "corrected (Box's approximation; no sphericity, equal variance or shared run effect assumed)")  # fmt: skip
    else:
        samples = [level[group.runs_of(o)] for o in range(k)]
        n = int(sum(len(s) for s in samples))
        scheme = (f"heteroscedastic ANOVA-type test over {n} runs ({', '.join(str(len(s)) for s in samples)} per "
                  "order, seeds not shared) of the runs' family means, Box's approximation (each order its own "
                  "covariance)")  # fmt: skip
    sizes = [s.shape[0] for s in samples]
    base = {"task": group.task, "metric": group.metric, "family": None, "n": n}
    if min(sizes) < 2:
        warnings.warn(f"order tests{_where(group)}: fewer than 2 {'seeds' if design == 'paired' else 'runs'} "
                      "per order - no test", stacklevel=3)  # fmt: skip
        return []
    means = [s.mean(axis=0) for s in samples]
    covs = [np.atleast_2d(np.cov(s, rowvar=False, ddof=1)) for s in samples]
    table = np.concatenate(means).reshape(k, F)  # order x family means
    rows = []
    for test, H in _hypotheses(k, weights).items():
        result = anova_type_test(means, covs, sizes, H)
        if test == "order_anova":
            overall = table @ weights
            term, estimate = "order", float(overall.max() - overall.min())
            what = "equal order means over all languages (families weighted by languages)"
        else:
            interaction = table - table.mean(axis=0) - table.mean(axis=1, keepdims=True) + table.mean()
            term, estimate = "order x family", float(np.abs(interaction).max())
            what = "the same order differences in every family"
        degenerate = not np.isfinite(result["p_value"])
        rows.append({**base, "test": test, "term": term, "estimate": estimate, "statistic": result["statistic"],
                     "df": result["df2"], "p_value": result["p_value"],
                     "method": f"{scheme}; H0: {what}; F({result['df1']:.3g}, {result['df2']:.3g})"
                     + ("; zero variance: no test" if degenerate else "")})  # fmt: skip
    return rows
