"""Does the order of intermediate tasks change the across-seed variance?

A seed-level score is a run's mean over the family's languages; each order has one per
seed, and the orders share seeds. :func:`variance_tests` compares their spread across
orders with

- the paired test of equal variances (Pitman 1939, Morgan 1939) for every pair of orders,
  and its extension to k orders for the test over all orders (:func:`paired_variance_test`):
  exact under normality whatever the shared seed effect, so calibrated with 3 seeds;
  these are the ``variance`` rows, the ones verdicts read;
- Brown-Forsythe (Levene's test centred on the median) and Levene's original
  mean-centred test (scipy.stats.levene), reported as ``levene`` rows for readers who
  know them: they treat the orders' seed-level scores as independent samples, which
  they are not when orders share seeds (Brown-Forsythe rejects 0-1% of true nulls with
  3-5 seeds, Levene up to 8%: ``seqrob analyze calibrate``);
- the across-seed SD of every order and the SD ratio of every pair, with bootstrap CIs
  from :func:`~seqrob.analysis.bootstrap.paired_bootstrap` (seeds, and examples within
  language when predictions are given).

The likelihood-ratio test of order-specific against common run variance in the mixed
model is in :mod:`seqrob.analysis.mixed`.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import linalg, stats

from seqrob.analysis.bootstrap import paired_bootstrap
from seqrob.analysis.layout import FEW_SEEDS, FewSeedsWarning, Group, _pairs, _read_groups, _term, _where
from seqrob.analysis.results import result_frame
from seqrob.warehouse.errors import InputError

__all__ = ["paired_variance_test", "sd_ratio_interval", "variance_tests"]

_CENTERS = {"median": "Brown-Forsythe (Levene, median-centred)", "mean": "Levene (mean-centred)"}
_VARIANTS = {"median": "Brown-Forsythe", "mean": "Levene"}  # the rows' ``variant``
_PAIRED = "paired test of equal variances (Pitman-Morgan"


def paired_variance_test(matrix: np.ndarray) -> dict | None:
    """Test that k paired samples have equal variances: Pitman-Morgan for k = 2, its F for k > 2.

    Parameters
    ----------
    matrix
        (k, n): row o holds order o's seed-level scores, column s seed s (every order
        run with every seed).

    Returns
    -------
    dict or None
        ``statistic`` (t on ``df2`` df for k = 2, signed: positive when the first row
        varies more; F on ``df1``, ``df2`` df for k > 2), ``df1``, ``df2``, ``p_value``
        (two-sided), ``r`` (k = 2: the correlation of sums and differences), or None
        when n < k + 1 (no residual df) or the data are degenerate (a constant sum or
        contrast).

    Notes
    -----
    Write seed s's scores as ``y_s = mu + b_s 1 + e_s`` (a seed effect shared by all
    orders, run effects ``e_s`` independent with variances ``d``). Take orthonormal
    contrasts ``z_s = C y_s`` (C: k - 1 Helmert rows, ``C 1 = 0``) and the sum
    ``u_s = 1'y_s / sqrt(k)``. Then ``cov(z, u) = C d / sqrt(k)``, zero exactly when all
    variances are equal, whatever the seed variance. Under normality z and u are then
    independent, so the F test of the slopes in the regression of u on z (with
    intercept) has an exact ``F(k - 1, n - k)`` distribution. For k = 2 it is
    Pitman-Morgan's t = ``r sqrt(n - 2) / sqrt(1 - r^2)`` with r = corr(a + b, a - b),
    and ``cov(a + b, a - b) = var a - var b``.

    References
    ----------
    Pitman, E. J. G. (1939). A note on normal correlation. Biometrika 31, 9-12.
    Morgan, W. A. (1939). A test for the significance of the difference between the two
    variances in a sample from a normal bivariate population. Biometrika 31, 13-19.

    Examples
    --------
    Three orders on 10 shared seeds, the third with ten times the run SD:

    >>> rng = np.random.default_rng(0)
    >>> seed = rng.normal(scale=0.1, size=10)
    >>> scores = np.vstack([seed + rng.normal(scale=s, size=10) for s in (0.1, 0.1, 1.0)])
    >>> result = paired_variance_test(scores)
    >>> result["df1"], result["df2"], result["p_value"] < 0.01
    (2, 7, True)
    """
    matrix = np.asarray(matrix, dtype=float)
    k, n = matrix.shape
    if k < 2 or n < k + 1 or not np.isfinite(matrix).all():
        return None
    contrasts = linalg.helmert(k) @ matrix  # (k - 1, n)
    sums = matrix.sum(axis=0) / math.sqrt(k)
    design = np.column_stack([np.ones(n), contrasts.T])
    u = sums - sums.mean()
    total = float(u @ u)
    coef, *_ = np.linalg.lstsq(design, sums, rcond=None)
    residual = float(np.sum((sums - design @ coef) ** 2))
    scale = max(total, float(np.sum((contrasts - contrasts.mean(axis=1, keepdims=True)) ** 2)))
    if scale <= 0 or total <= 1e-24 * scale or np.linalg.matrix_rank(design) < k:
        return None
    df1, df2 = k - 1, n - k
    if residual <= 1e-12 * total:
        # The seed sums are an exact function of the order contrasts (ties, or as many
        # distinct seeds as parameters): no residual noise to test against, so no test.
        return None
    f_value = (max(total - residual, 0.0) / df1) / (residual / df2)
    p_value = float(stats.f.sf(f_value, df1, df2))
    out = {"statistic": float(f_value), "df1": df1, "df2": df2, "p_value": p_value, "r": math.nan}
    if k == 2:
        r = float(np.corrcoef(matrix[0] + matrix[1], matrix[0] - matrix[1])[0, 1])
        out["r"] = r
        out["statistic"] = math.copysign(math.sqrt(f_value), r) if math.isfinite(f_value) else math.copysign(math.inf, r)
    return out


def sd_ratio_interval(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Exact CI of ``sd(a) / sd(b)`` for paired samples: the ratios Pitman-Morgan does not reject.

    Parameters
    ----------
    a, b
        Paired samples (seed-level scores of two orders on the same seeds), n >= 3.
    confidence
        Confidence level.

    Returns
    -------
    (low, high)
        NaN when undefined (n < 3, a constant sample).

    Notes
    -----
    ``var a = lambda var b`` exactly when ``a`` and ``sqrt(lambda) b`` have equal
    variances, which Pitman-Morgan tests with ``r_lambda = corr(a + sqrt(lambda) b,
    a - sqrt(lambda) b)``. With F = s_a^2 / s_b^2, r = corr(a, b) and t the
    ``(1 + confidence) / 2`` quantile of t on n - 2 df, the test accepts ``lambda``
    exactly when ``(F - lambda)^2 <= q ((F + lambda)^2 - 4 lambda F r^2)``,
    ``q = t^2 / (n - 2 + t^2)``: a quadratic whose roots are
    ``lambda = F (K -+ sqrt(K^2 - 1))`` with ``K = 1 + 2 t^2 (1 - r^2) / (n - 2)``.
    The SD-ratio interval is their square root; it is symmetric about ``sqrt(F)`` on a
    log scale, and excludes 1 exactly when the two-sided test rejects at
    ``1 - confidence``.

    Examples
    --------
    >>> a = np.array([0.61, 0.66, 0.58, 0.70, 0.64])
    >>> b = np.array([0.60, 0.62, 0.59, 0.63, 0.61])
    >>> [round(x, 2) for x in sd_ratio_interval(a, b)]
    [2.47, 3.44]
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = len(a)
    if n < 3 or len(b) != n:
        return math.nan, math.nan
    var_a, var_b = float(np.var(a, ddof=1)), float(np.var(b, ddof=1))
    if not (var_a > 0 and var_b > 0):
        return math.nan, math.nan
    F = var_a / var_b
    r = float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))
    if 1.0 - r * r <= 1e-12:  # a and b exactly collinear (ties): the interval would be a point
        return math.nan, math.nan
    t = float(stats.t.ppf((1 + confidence) / 2, n - 2))
    K = 1.0 + 2.0 * t * t * (1.0 - r * r) / (n - 2)
    root = math.sqrt(max(K * K - 1.0, 0.0))
    # K - root = 1 / (K + root): the lower bound without cancellation.
    return math.sqrt(F / (K + root)), math.sqrt(F * (K + root))


MAX_EXACT_PERMUTATIONS = 8192


def permutation_variance_test(
    samples, *, paired: bool, n_resamples: int = 4999, seed: int | np.random.Generator | None = None
) -> dict | None:
    """Do k orders differ in across-seed variance? A permutation test of order labels.

    Parameters
    ----------
    samples
        Paired: a (k, n) matrix, row o order o's seed-level scores, column s seed s.
        Unpaired: a sequence of k 1-d arrays (orders run with different seeds).
    paired
        Permute the k labels within each seed (paired) or among all runs (unpaired).
    n_resamples
        Random permutations when there are more than :data:`MAX_EXACT_PERMUTATIONS`
        (paired designs are enumerated exactly below that).
    seed
        Seed of the RNG.

    Returns
    -------
    dict or None
        ``statistic`` (log of the largest over the smallest mean absolute deviation),
        ``p_value``, ``permutations`` (their number), ``exact``, ``smallest_p`` (the
        smallest p the design can give), ``scale_ratio`` (the estimate the test centres
        on: with k = 2 the ratio of order 0's mean absolute deviation to order 1's, else
        the largest over the smallest), and, with k = 2, ``interval``: a function of
        ``confidence`` giving the CI of the scale ratio ``sigma_0 / sigma_1`` by inverting
        the test; it always holds ``scale_ratio``. None with fewer than 3
        values in an order.

    Notes
    -----
    Each order's values are centred at their mean, so a mean difference between orders
    does not pass for a variance difference. Under H0 (the orders' runs are exchangeable
    within a seed: equal variances, whatever their shape, skew or outlier runs, and
    whatever the seed effect) every relabelling is equally likely, so the p-value
    ``#{T* >= T} / #permutations`` (exact) or ``(1 + #{T* >= T}) / (B + 1)`` (Monte Carlo)
    is valid in finite samples; centring costs exactness only in the unpaired case, where
    it is the usual approximation (Good 2000). The CI of ``sd_0 / sd_1`` holds the ratios
    rho for which the test of ``(x_0, rho x_1)`` does not reject (exact for normal pairs).

    References
    ----------
    Good, P. (2000). Permutation Tests, 2nd ed., Section 3.7.2. Boik, R. J. (1987). The
    Fisher-Pitman permutation test: a non-robust alternative to the normal theory F test
    when variances are heterogeneous. Br. J. Math. Stat. Psychol. 40.

    Examples
    --------
    Two orders on 12 shared seeds, one with three times the run SD and a seed effect:

    >>> rng = np.random.default_rng(0)
    >>> seed = rng.normal(scale=1.0, size=12)
    >>> scores = np.vstack([seed + rng.normal(scale=s, size=12) for s in (3.0, 1.0)])
    >>> result = permutation_variance_test(scores, paired=True, seed=0)
    >>> result["exact"], bool(result["p_value"] < 0.05)
    (True, True)
    """
    rng = np.random.default_rng(seed)
    if paired:
        matrix = np.asarray(samples, dtype=float)
        k, n = matrix.shape
        if k < 2 or n < 3 or not np.isfinite(matrix).all():
            return None
        centred = np.abs(matrix - np.median(matrix, axis=1, keepdims=True))
        labels, exact = _within_seed_labels(k, n, n_resamples, rng)  # (P, k, n): which row each slot takes
        draw = lambda values: np.take_along_axis(values[None, :, :].repeat(len(labels), 0), labels, axis=1)  # noqa: E731
        parts = [centred[o] for o in range(k)]
    else:
        parts = [np.asarray(s, dtype=float) for s in samples]
        k = len(parts)
        if k < 2 or min(len(p) for p in parts) < 3 or not all(np.isfinite(p).all() for p in parts):
            return None
        parts = [np.abs(p - np.median(p)) for p in parts]
        sizes = [len(p) for p in parts]
        edges = np.cumsum([0] + sizes)
        order = np.vstack([np.arange(edges[-1])] + [rng.permutation(edges[-1]) for _ in range(n_resamples)])
        exact = False

        def draw(values):
            pooled = np.concatenate(values)[order]  # (P, N)
            return [pooled[:, edges[o] : edges[o + 1]] for o in range(k)]

    def statistic_of(values) -> np.ndarray:
        """Log largest / smallest mean absolute deviation of every relabelling (row 0: the data's)."""
        if paired:
            spreads = draw(np.vstack(values)).mean(axis=2)  # (P, k)
        else:
            spreads = np.column_stack([v.mean(axis=1) for v in draw(values)])
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(spreads)
        return logs.max(axis=1) - logs.min(axis=1)

    def p_of(values) -> float:
        t = statistic_of(values)
        if not np.isfinite(t[0]):
            return math.nan
        hits = int(np.sum(t >= t[0] - 1e-12 * max(1.0, abs(t[0]))))
        return hits / len(t)  # row 0 is the data's own labelling: (1 + #) / (B + 1) when random

    observed = statistic_of(parts)[0]
    if not np.isfinite(observed):
        return None
    total = len(labels) if paired else n_resamples + 1
    out = {"statistic": float(observed), "p_value": p_of(parts), "permutations": int(total), "exact": bool(exact),
           "smallest_p": (2.0 if paired and k == 2 else 1.0) / total if exact else 1.0 / total,
           "scale_ratio": float(np.exp(observed))}
    if k == 2:
        out["scale_ratio"] = float(np.mean(parts[0]) / np.mean(parts[1]))
        out["interval"] = lambda confidence: _invert_ratio(parts, p_of, 1.0 - confidence)
    return out


def _within_seed_labels(k: int, n: int, n_resamples: int, rng) -> tuple[np.ndarray, bool]:
    """Relabellings (P, k, n): every one when (k!)^n <= MAX_EXACT_PERMUTATIONS (the identity
    first), else the identity and ``n_resamples`` random ones."""
    if math.factorial(k) ** n <= MAX_EXACT_PERMUTATIONS:  # checked before listing k! permutations
        perms = np.array(list(itertools.permutations(range(k))))  # (k!, k)
        choice = np.array(list(itertools.product(range(len(perms)), repeat=n)))  # (k!^n, n), identity first
        return np.transpose(perms[choice], (0, 2, 1)), True  # (P, k, n)
    # Random relabellings: an independent permutation of the k labels in every seed.
    identity = np.broadcast_to(np.arange(k)[:, None], (k, n))
    random = rng.permuted(np.broadcast_to(np.arange(k)[None, :, None], (n_resamples, k, n)), axis=1)
    return np.concatenate([identity[None], random]), False  # (P, k, n)


def _invert_ratio(parts: list[np.ndarray], p_of, alpha: float) -> tuple[float, float]:
    """The SD ratios rho (order 0 over order 1) the test of ``(x_0, rho x_1)`` does not reject."""
    if not (np.mean(parts[0]) > 0 and np.mean(parts[1]) > 0):
        return math.nan, math.nan
    # At rho = mean |x_0| / mean |x_1| the statistic is 0: every relabelling reaches it, p = 1.
    centre = math.log(float(np.mean(parts[0])) / float(np.mean(parts[1])))
    accepts = lambda shift: p_of([parts[0], parts[1] * math.exp(centre + shift)]) > alpha  # noqa: E731

    def edge(direction: float) -> float:
        inside, outside = 0.0, direction * 0.5
        while accepts(outside):  # widen until rejected, up to a ratio of e^12 either way
            inside, outside = outside, outside * 2
            if abs(outside) > 12:
                return math.inf if direction > 0 else 0.0
        for _ in range(20):
            middle = (inside + outside) / 2
            inside, outside = (middle, outside) if accepts(middle) else (inside, middle)
        return math.exp(centre + inside)

    return edge(-1.0), edge(1.0)


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
    bootstrap_confidence: float | None = None,
    n_permutations: int = 1999,
    permutation_intervals: bool = True,
    bootstrap: pd.DataFrame | None = None,
    groups: Sequence[Group] | None = None,
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
        The ``levene`` rows: ``"median"`` (Brown-Forsythe), ``"mean"`` (Levene), both,
        or ``()`` for none.
    n_boot
        Bootstrap replicates for the CIs of the per-order SDs; 0 for none.
    confidence
        Confidence level of the SD-ratio CIs (exact: :func:`sd_ratio_interval`).
    interval
        ``"bca"`` or ``"percentile"``: the SDs' bootstrap interval.
    seed
        Seed of the bootstrap's and the permutation tests' RNGs.
    n_permutations
        Random relabellings of the ``variance`` rows' permutation tests (paired designs
        are enumerated exactly when there are at most 8,192 relabellings).
    permutation_intervals
        Invert the permutation tests into SD-ratio CIs (about 50 tests per pair; off in
        calibration, where the CI's coverage of a true ratio of 1 is the test's own rate).
    bootstrap_confidence
        Level of the SDs' bootstrap quantiles (default ``confidence``; seqrob's
        analysis passes the expanded level of :func:`~seqrob.analysis.significance.expanded_confidence`).
    bootstrap
        A :func:`~seqrob.analysis.bootstrap.paired_bootstrap` table of the same scores
        whose statistics include ``"sd"``, when one has been run: the SDs' intervals are
        read from its ``sd`` rows of type ``interval`` (its ``variant`` column) instead
        of resampling again, and ``n_boot`` and ``bootstrap_confidence`` are not used.
        The SD replicates come from the same resamples as the means', so one bootstrap
        serves both (its other rows are ignored here).
    groups
        The scores (and predictions) as :func:`~seqrob.analysis.layout.build_groups`
        read them, to share one reading between procedures: ``scores`` and
        ``predictions`` are then not read again, and the column names and ``orders`` are
        those the groups were built with; the bootstrap of the SDs resamples them too.

    Returns
    -------
    pandas.DataFrame
        :data:`~seqrob.analysis.results.COLUMNS`, per task x metric x family:

        - ``test`` "sd", ``term`` an order: ``estimate`` the across-seed SD of its
          seed-level scores (ddof 1) with its bootstrap CI; ``n`` its seeds.
        - ``test`` "variance", ``term`` "order": the paired test over all orders
          (:func:`paired_variance_test`) on the seeds run with every order:
          ``estimate`` the largest over the smallest SD, ``statistic`` F, ``df`` its
          denominator df (n - k; the numerator, k - 1, is in ``method``), ``n`` seeds.
        - ``test`` "variance", ``term`` "a vs b": Pitman-Morgan on the seeds run with
          both: ``estimate`` ``sd_a / sd_b`` with its exact CI (the inverted test:
          :func:`sd_ratio_interval`), ``statistic`` t (positive: a varies more),
          ``df`` n - 2, ``n`` seeds.
        - ``test`` "levene", the same terms: Brown-Forsythe and/or Levene (one row per
          ``center``), ``statistic`` W, ``df`` k - 1 (denominator N - k in
          ``method``), ``n`` runs; independent-samples tests, for reference.

    Notes
    -----
    When orders share seeds, a seed effect makes their scores positively correlated;
    the paired test removes it exactly (:func:`paired_variance_test`), while Levene's
    and Brown-Forsythe's tests, built for independent samples, lose their level: with
    3-5 seeds Brown-Forsythe hardly ever rejects (the median-centred deviations of
    3-5 values include zeros). pingouin.homoscedasticity(method="levene") is the
    median-centred test.

    References
    ----------
    Pitman, E. J. G. (1939); Morgan, W. A. (1939) (see :func:`paired_variance_test`).
    Levene, H. (1960). Robust tests for equality of variances. Brown, M. B. & Forsythe,
    A. B. (1974). Robust tests for the equality of variances. JASA 69, 364-367.

    Examples
    --------
    >>> from seqrob.warehouse.simulate import simulate
    >>> sim = simulate(seeds=8, languages=("fi", "et"), families={"fi": "Uralic", "et": "Uralic"},
    ...                run_sd={"none": 0.01, "nli>qa": 0.03, "qa>nli": 0.01})
    >>> table = variance_tests(sim.scores, n_boot=200, seed=0, overall=False)
    >>> table.query("test == 'variance'")["term"].tolist()
    ['order', 'nli>qa vs none', 'qa>nli vs none', 'qa>nli vs nli>qa']
    """
    centers = (center,) if isinstance(center, str) else tuple(center)
    if any(c not in _CENTERS for c in centers):
        raise InputError(f"center must be 'median', 'mean', both or none, not {center!r}", fix="pass center='median'")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise InputError(f"n_boot must be an integer >= 0, not {n_boot!r}", fix="pass n_boot=2000")
    if interval not in ("bca", "percentile"):
        raise InputError(f"interval must be 'bca' or 'percentile', not {interval!r}", fix="pass interval='bca'")
    for name, value in (("confidence", confidence), ("bootstrap_confidence", bootstrap_confidence)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1):
            raise InputError(f"{name} must be in (0, 1), not {value!r}", fix=f"pass {name}=0.95")
    resample = bootstrap is None and n_boot > 0
    # One reading for the tests and the bootstrap (the predictions only feed the latter).
    groups = _read_groups(
        scores, groups, predictions if resample else None, dv=dv, order=order, unit=unit, language=language,
        family=family, task=task, metric=metric, run=run, example=example, orders=orders, overall=overall,
    )  # fmt: skip
    if resample:
        with warnings.catch_warnings():
            # paired_bootstrap repeats the few-seeds and pairing warnings given below.
            warnings.simplefilter("ignore")
            bootstrap = paired_bootstrap(
                scores, predictions, statistics=("sd",), overall=overall, n_boot=int(n_boot),
                confidence=confidence if bootstrap_confidence is None else bootstrap_confidence,
                interval=interval, seed=seed, groups=groups,
            )  # fmt: skip
    intervals = {} if bootstrap is None else _sd_intervals(bootstrap, interval)
    rng = np.random.default_rng(seed)
    rows = []
    for group in groups:
        rows.extend(_group_rows(group, centers, intervals, confidence, n_permutations, rng, permutation_intervals))
    return result_frame(rows)


def _sd_intervals(table: pd.DataFrame, interval: str) -> dict[tuple, dict]:
    """The SD intervals of a paired_bootstrap table: (task, metric, family, order) -> the
    ``sd`` row's fields an ``sd`` row of :func:`variance_tests` takes."""
    if not isinstance(table, pd.DataFrame) or not {"test", "term", "ci_low", "ci_high"} <= set(table.columns):
        raise InputError(
            "bootstrap must be a paired_bootstrap table", fix="pass bootstrap=paired_bootstrap(scores, ...)"
        )
    rows = table[table["test"] == "sd"]
    if "variant" in rows.columns and rows["variant"].notna().any():
        rows = rows[rows["variant"] == {"bca": "BCa", "percentile": "percentile"}[interval]]
    if rows.empty:
        raise InputError(
            f"bootstrap has no '{interval}' interval of an SD",
            fix=f"run paired_bootstrap with 'sd' among its statistics and interval='{interval}' among its intervals",
        )
    out: dict[tuple, dict] = {}
    for row in rows.to_dict(orient="records"):
        key = (row["task"], row["metric"], row["family"], row["term"])
        if key in out:
            raise InputError("bootstrap has two SD intervals of one order and family", fix="pass one bootstrap's rows")
        fields = {"ci_low": row["ci_low"], "ci_high": row["ci_high"], "method": row.get("method") or ""}
        out[key] = fields | {name: row[name] for name in ("interval", "variant", "confidence") if name in row}
    return out


def _group_rows(group, centers, intervals, confidence, n_permutations, rng, invert=True) -> list[dict]:
    level = group.seed_level()  # (R, F)
    O = len(group.orders)
    sizes = group.order_sizes
    few = int(sizes.min()) <= FEW_SEEDS
    if few:
        warnings.warn(
            FewSeedsWarning(f"{int(sizes.min())} seeds{_where(group)}: variance tests have little power with so few seeds"),
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
            ci = dict(intervals.get((group.task, group.metric, fam, group.orders[o]), {}))
            how = ci.pop("method", "")
            rows.append({**base, "test": "sd", "term": group.orders[o], "family": fam, "estimate": sd[o],
                         "ci_low": np.nan, "ci_high": np.nan, **ci, "n": int(sizes[o]),
                         "method": "across-seed SD of seed-level scores (ddof 1)" + (f"; CI: {how}" if how else "")})  # fmt: skip
        if len(usable) < 2:
            continue
        spread = [sd[o] for o in usable]
        ratio = _ratio(max(spread), min(spread))
        # With two orders, orient the test over all orders as the pair's (later order first).
        together = usable[::-1] if len(usable) == 2 else usable
        what = f"over {len(usable)} orders"
        # With two orders the test over all orders is the pair's test (same relabellings).
        shared = int(rng.integers(2**63)) if len(usable) == 2 else None
        overall = _permutation_row(group, usable if shared is not None else together, level[:, f], what=what,
                                   confidence=None, n_permutations=n_permutations,
                                   rng=rng if shared is None else np.random.default_rng(shared))  # fmt: skip
        rows.append({**base, "family": fam, "term": "order", "estimate": ratio, **overall})
        rows.append({**base, "family": fam, "term": "order", "estimate": ratio,
                     **_paired_row(group, together, level[:, f], what=what)[0]})  # fmt: skip
        for pair in _pairs(O):
            if pair[0] not in sd or pair[1] not in sd:
                continue
            term = _term(group.orders, pair)
            estimate = _ratio(sd[pair[0]], sd[pair[1]])
            # With two orders, replay the test over all orders' relabellings: one test, one p.
            pair_rng = rng if shared is None else np.random.default_rng(shared)
            rows.append({**base, "family": fam, "term": term, "estimate": estimate,
                         **_permutation_row(group, list(pair), level[:, f], what="of the pair",
                                            confidence=confidence if invert else None,
                                            n_permutations=n_permutations, rng=pair_rng)})  # fmt: skip
            row, matrix = _paired_row(group, list(pair), level[:, f], what="of the pair")
            low, high = sd_ratio_interval(*matrix, confidence) if matrix.shape[1] >= 3 else (np.nan, np.nan)
            row["method"] += (f"; estimate: SD ratio (all seeds of each order); {confidence * 100:g}% CI: exact under "
                              "normality, the ratios the Pitman-Morgan test does not reject")  # fmt: skip
            rows.append({**base, "family": fam, "term": term, "estimate": estimate, "ci_low": low, "ci_high": high,
                         **row})  # fmt: skip
        rows.extend(_levene_rows(group, base, fam, usable, samples, ratio, centers, few))
    return rows


def _permutation_row(group, orders: list[int], values: np.ndarray, *, what: str, confidence, n_permutations,
                     rng) -> dict:  # fmt: skip
    """The ``variance`` row's test fields: :func:`permutation_variance_test`, within seed on the
    seeds run with every one of ``orders`` (3+), else among the orders' runs."""
    seeds = group.common_seeds(orders)
    k = len(orders)
    names = ", ".join(group.orders[o] for o in orders) if k > 2 else " and ".join(group.orders[o] for o in orders)
    if len(seeds) >= 3:
        samples, paired, n = values[group.aligned(orders, seeds)], True, len(seeds)
        scheme = f"within-seed permutation of the order labels on the {n} seeds run with every one of {names}"
    else:
        samples, paired = [values[group.runs_of(o)] for o in orders], False
        n = int(sum(len(s) for s in samples))
        scheme = f"permutation of the order labels among the {n} runs of {names} (seeds not shared)"
    result = permutation_variance_test(samples, paired=paired, n_resamples=n_permutations, seed=rng)
    row = {"test": "variance", "n": n}
    if result is None:
        row["method"] = f"permutation test of equal spread {what}: not computed (needs 3+ seeds per order)"
        return row
    count = f"all {result['permutations']}" if result["exact"] else f"{result['permutations'] - 1} random"
    text = (f"permutation test of equal spread {what} ({scheme}, {count} relabellings): statistic log of the largest "
            "over the smallest mean absolute deviation from the order's median; valid for any shape of the scores, "
            "skew, outlier runs and seed effects when the orders' runs are exchangeable within a seed")  # fmt: skip
    if result["smallest_p"] > (1 - (confidence or 0.95)):
        text += f"; the smallest p this design can give is {result['smallest_p']:.3g}"
    # The pair's oriented ratio; over all orders, largest over smallest (with two orders too).
    estimate = result["scale_ratio"] if what == "of the pair" else float(np.exp(result["statistic"]))
    row.update(statistic=result["statistic"], p_value=result["p_value"], estimate=estimate)
    text += ("; estimate: the ratio of the orders' mean absolute deviations from their medians (the scale ratio the "
             "test centres on: the SD ratio when the orders differ in scale only)")  # fmt: skip
    if confidence is not None and "interval" in result:
        low, high = result["interval"](confidence)
        row.update(ci_low=low, ci_high=high)
        text += "; CI: the scale ratios the permutation test does not reject (inverted)"
    row["method"] = text
    return row


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else (np.inf if a > 0 else np.nan)


def _paired_row(group, orders: list[int], values: np.ndarray, *, what: str) -> tuple[dict, np.ndarray]:
    """The ``variance`` row's test fields: the paired test on the seeds run with every order,
    and the (orders, shared seeds) scores it was computed from."""
    seeds = group.common_seeds(orders)
    matrix = values[group.aligned(orders, seeds)]
    k = len(orders)
    names = ", ".join(group.orders[o] for o in orders) if k > 2 else " and ".join(group.orders[o] for o in orders)
    row = {"test": "pitman_morgan", "n": len(seeds)}
    result = paired_variance_test(matrix) if len(seeds) > k else None
    if result is None:
        why = (f"needs {k + 1}+ seeds run with every one of {names}, has {len(seeds)}" if len(seeds) <= k
               else "degenerate: a seed-level sum or contrast is constant, or the sums are an exact function of "
                    "the contrasts (tied seeds), so there is no noise to test against")  # fmt: skip
        row["method"] = f"{_PAIRED}) {what}: not computed ({why})"
        return row, matrix
    shared = f"on the {len(seeds)} seeds run with {'both' if k == 2 else 'every order'}"
    if k == 2:
        how = (f"{_PAIRED} 1939) {what} {shared}: t = r sqrt(n - 2) / sqrt(1 - r^2) with r = corr(a + b, a - b) = "
               f"{result['r']:.3g}, on {result['df2']} df (positive t: the first order varies more)")  # fmt: skip
    else:
        how = (f"{_PAIRED}, extended to {k} orders) {what} {shared}: F test of regressing the seed sums on the "
               f"within-seed order contrasts, F({result['df1']}, {result['df2']}); estimate: largest / smallest SD")  # fmt: skip
    row.update(statistic=result["statistic"], df=result["df2"], p_value=result["p_value"],
               method=how + "; exact under normality whatever the seed effect shared by the orders; for reference, not "
               "used for verdicts (an outlier run or skew near a ceiling breaks it)")
    return row, matrix


def _levene_rows(group, base, fam, usable, samples, ratio, centers, few) -> list[dict]:
    """Brown-Forsythe / Levene rows (independent samples; for reference)."""
    rows = []
    values = [samples[o] for o in usable]
    N, k = sum(len(v) for v in values), len(values)
    caveat = "; treats the orders' scores as independent samples (they share seeds): for reference, not used for verdicts"
    untested = ("; not computed: needs 3+ seeds per order and some spread in each order's deviations (with 2 "
                "seeds or tied values F divides by zero)")  # fmt: skip
    if few:
        caveat += "; with 5 seeds or fewer its level is off (seqrob analyze calibrate)"
    overall = {}
    for c in centers:
        statistic, p = overall[c] = _levene(values, c)
        rows.append({**base, "test": "levene", "term": "order", "family": fam, "estimate": ratio,
                     "statistic": statistic, "df": k - 1, "p_value": p, "n": N, "variant": _VARIANTS[c],
                     "method": f"{_CENTERS[c]} over {k} orders, F({k - 1}, {N - k}); estimate: largest / smallest SD"
                     + caveat + ("" if math.isfinite(p) else untested)})  # fmt: skip
    for pair in _pairs(len(group.orders)):
        if pair[0] not in samples or pair[1] not in samples:
            continue
        a, b = samples[pair[0]], samples[pair[1]]
        for c in centers:
            # With two orders the pair's test is the test over all orders.
            statistic, p = overall[c] if len(usable) == 2 else _levene([a, b], c)
            rows.append({**base, "test": "levene", "term": _term(group.orders, pair), "family": fam,
                         "estimate": _ratio(float(np.std(a, ddof=1)), float(np.std(b, ddof=1))),
                         "statistic": statistic, "df": 1, "p_value": p, "n": len(a) + len(b),
                         "variant": _VARIANTS[c], "method": f"{_CENTERS[c]}, F(1, {len(a) + len(b) - 2}); estimate: "
                         "SD ratio" + caveat + ("" if math.isfinite(p) else untested)})  # fmt: skip
    return rows


def _levene(samples: list[np.ndarray], center: str) -> tuple[float, float]:
    """scipy.stats.levene, NaN (not an exception, a warning storm or p = 0) when degenerate.

    With 2 values an order's two deviations from its median (or mean) are equal, so the
    within-order spread of the deviations is 0 and F divides by it; the same happens when
    ties leave every order's deviations constant. Such designs get no test.
    """
    if min(len(s) for s in samples) < 3:
        return math.nan, math.nan
    middle = np.median if center == "median" else np.mean
    deviations = [np.abs(s - middle(s)) for s in samples]
    within = sum(float(np.sum((d - d.mean()) ** 2)) for d in deviations)
    if within <= 1e-12 * max(float(np.sum(np.concatenate(deviations) ** 2)), 1e-300):
        return math.nan, math.nan
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.levene(*samples, center=center)
    return float(result.statistic), float(result.pvalue)
