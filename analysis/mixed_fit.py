"""Fitting the mixed model of order effects: :func:`fit_mixed` and its :class:`MixedFit`.

One model per task and metric::

    score ~ order * family + (1|seed) + (1|seed:order) + (1|language)

fitted by REML (or ML) with lme4's profiled deviance (:mod:`~seqrob.analysis.mixed_deviance`).
This module prepares the data (codes, treatment-coded fixed effects, the random terms
the design can identify), runs the optimiser, and turns the fit into tables: fixed
effects with Satterthwaite t tests, variance components, estimated marginal means and
pairwise order contrasts. The tests of order effects on a fit are in
:mod:`~seqrob.analysis.mixed_tests`; :mod:`~seqrob.analysis.mixed` gathers both.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, stats

from seqrob.analysis.layout import _pairs
from seqrob.analysis.mixed_deviance import _crosstab, _keep_columns, _Model, _optimise, _rank, _same_partition
from seqrob.analysis.results import result_frame
from seqrob.warehouse.errors import DesignError, InputError

__all__ = ["MixedFit", "fit_mixed"]

RANDOM_TERMS = ("seed", "run", "language")
_CRITERIA = ("REML", "ML")
# A variance parameter below this (relative SD theta) is reported as a boundary estimate.
_BOUNDARY = 1e-5


# --- result -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MixedFit:
    """A fitted mixed model for one task and metric.

    Attributes
    ----------
    fixed_effects
        One row per fixed-effect coefficient (treatment coding, R's names such as
        ``ordernli>qa:familyUralic``; columns aliased by missing cells are dropped as
        lme4 drops them): ``term, estimate, se, df, statistic, p_value``. ``df`` is
        Satterthwaite's, ``statistic`` is ``t``. Metric units.
    variance_components
        Variances in the metric's units squared: ``seed``, ``run`` (or ``run:ORDER``
        per order with ``run_variance="by_order"``), ``language``, ``residual``. A
        term that the design cannot identify is NaN (and said in :attr:`warnings`);
        a term left out with ``random`` is absent.
    log_likelihood
        At the optimum of :attr:`criterion` (the REML criterion's log-likelihood for
        REML, as lme4's ``logLik``), in the metric's units.
    criterion
        ``"REML"`` or ``"ML"``.
    emmeans
        Estimated marginal means per order x family (fixed-effect cell means) as
        seqrob result rows, ``test == "emmean"``, with Satterthwaite t intervals.
    n_obs, n_seeds, n_runs, n_languages
        Scores used, and the units behind them.
    converged
        The optimiser stopped at a point where the projected gradient vanishes.
    warnings
        Boundary estimates, dropped random terms, dropped rows, degenerate data.
    formula
        The model as fitted, in lme4 syntax.
    scale
        Internal scale factor: proportions are fitted as points (``100``), other
        metrics as they are (``1``). Every reported number is back in metric units.
    theta
        Relative standard deviations (random-effect SD / residual SD), one per
        random term, in the order of :attr:`variance_components`.
    """

    fixed_effects: pd.DataFrame
    variance_components: dict[str, float]
    log_likelihood: float
    criterion: str
    n_obs: int
    n_seeds: int
    n_runs: int
    n_languages: int
    converged: bool
    warnings: list[str]
    formula: str
    scale: float
    theta: np.ndarray = field(repr=False)
    task: str | None = None
    metric: str | None = None
    alpha: float = 0.05
    _state: _State | None = field(default=None, repr=False)

    @property
    def emmeans(self) -> pd.DataFrame:
        """Estimated marginal means per order x family (computed when first asked for)."""
        if self._state is None:
            return result_frame()
        if self._state.emmeans is None:
            with _one_blas_thread():
                self._state.emmeans = _emmean_rows(self._state, self.alpha)
        return self._state.emmeans.copy()

    def contrasts(self, *, alpha: float = 0.05) -> pd.DataFrame:
        """Pairwise order contrasts within each family (see :func:`~seqrob.analysis.mixed_tests.order_tests`)."""
        if self._state is None:
            return result_frame()
        alpha = _alpha(alpha)
        with _one_blas_thread():
            return _contrast_rows(self._state, alpha=alpha)


# --- public functions ---------------------------------------------------------------


def fit_mixed(
    data: pd.DataFrame,
    *,
    dv: str = "score",
    order: str = "order",
    family: str = "family",
    seed: str = "seed",
    language: str = "language",
    baseline: str = "none",
    run_variance: str = "common",
    random: Sequence[str] = RANDOM_TERMS,
    fixed: str = "order*family",
    method: str = "REML",
    alpha: float = 0.05,
) -> MixedFit:
    """Fit ``dv ~ order * family + (1|seed) + (1|seed:order) + (1|language)``.

    Parameters
    ----------
    data
        Long scores of one task and one metric: one row per run (order x seed) and
        language. Columns ``task``/``metric``, when present, must hold one value each.
    dv, order, family, seed, language
        Column names. A run is one ``(seed, order)`` pair.
    baseline
        Reference order of the treatment coding (the level the contrasts are taken
        against). It must be one of the orders in ``data``.
    run_variance
        ``"common"``: one run variance. ``"by_order"``: one run variance per order
        (lme4: ``(0 + dummy(order, "o") | seed)`` for every order ``o``).
    random
        Random terms, any of ``("seed", "run", "language")``. Leaving out ``"run"``
        reproduces the pseudo-replication trap (see :mod:`seqrob.analysis.mixed`); keep the default.
    fixed
        ``"order*family"`` (default), ``"order+family"`` or ``"family"`` (the
        reduced models of the likelihood-ratio tests).
    method
        ``"REML"`` (default; unbiased variance components, used for the intervals)
        or ``"ML"`` (for likelihood-ratio tests of fixed effects).
    alpha
        1 - confidence of the intervals in :attr:`MixedFit.emmeans`.

    Returns
    -------
    MixedFit

    Raises
    ------
    DesignError
        Missing columns, several tasks or metrics, repeated (order, seed, language)
        rows, a language in two families, an unknown baseline, or no residual degrees
        of freedom.

    Notes
    -----
    With ``y = X beta + Z b + e``, ``b = Lambda_theta u``, ``u ~ N(0, sigma^2 I)``,
    ``e ~ N(0, sigma^2 I)`` and ``Lambda_theta`` diagonal (one relative SD
    ``theta_k`` per random term), let ``A = Lambda' Z'Z Lambda + I``. For fixed theta
    the generalised least-squares estimate, the penalised residual sum of squares
    ``r^2 = (y - X beta)' V^-1 (y - X beta)`` (``V = I + Z Lambda Lambda' Z'``) and
    ``M = X' V^-1 X`` follow from the cross-products ``Z'Z, Z'X, X'X, Z'y, X'y, y'y``
    (computed once) by a Cholesky factor of ``A`` (Woodbury). The profiled deviances
    are (Bates et al. 2015, eqs. 34 and 41)::

        ML:   log|A| + n (1 + log(2 pi r^2 / n))
        REML: log|A| + log|M| + (n - p)(1 + log(2 pi r^2 / (n - p)))

    minimised by L-BFGS-B over the variance ratios ``tau_k = theta_k^2 >= 0`` with
    their analytic gradients::

        d log|A| / d tau_k = tr(Z_k' V^-1 Z_k) = tr(G_kk) - <A^-1, Lambda G_.k G_k. Lambda>
        d log|M| / d tau_k = -tr(M^-1 W_k' W_k),   W = Z' V^-1 X
        d r^2    / d tau_k = -|| Z_k' V^-1 (y - X beta) ||^2

    (``G = Z'Z``; ``G_.k G_k.`` is precomputed), then ``sigma^2 = r^2 / n`` (ML) or
    ``r^2 / (n - p)`` (REML) and ``cov(beta) = sigma^2 M^-1``. The deviance is even
    in each ``theta_k``, so in ``theta`` a variance of 0 is always a stationary
    point; in ``tau`` the derivative at 0 is informative and a boundary estimate is
    a Karush-Kuhn-Tucker point (the optimiser is restarted should it stop at 0 with
    a negative derivative). A variance of 0 is a valid estimate, reported in
    ``warnings``. ``A`` is factored by a Schur complement on the largest term, whose
    block of ``Z'Z`` is diagonal (one level per score), so an evaluation costs
    ``O(q_big c^2 + c^3)`` for ``c`` columns of the other terms, independent of ``n``;
    every cross-product is a count (bincount), computed once.

    Proportions (all scores in [0, 1]) are fitted in points (x 100) and reported back
    in proportions; log-likelihoods are those of the data as given (the Jacobian
    ``n log 100`` -- ``(n - p) log 100`` for REML -- is added back), so they equal
    lme4's on the same data.

    Random terms the design cannot identify are dropped before fitting: one seed
    (seed effect = intercept; run = order), one order (run = seed), a term whose
    levels are all in the span of the fixed effects (each family one language) or
    that has one score per level (runs with one language). Columns of ``X`` aliased
    by empty order x family cells are dropped in R's order (R's ``qr`` pivoting), so
    the coefficients are lme4's.

    Degrees of freedom of the t statistics and intervals are Satterthwaite's
    (1946), computed as lmerTest does (Kuznetsova et al. 2017): for a linear
    combination ``c' beta`` with variance ``v(phi) = c' sigma^2 M(theta)^-1 c`` and
    ``phi = (theta, sigma)``, ``df = 2 v^2 / (g' C g)`` where ``g = dv/dphi``
    (analytic: ``dv/dtheta_k = 2 sigma^2 theta_k ||W_k M^-1 c||^2``) and
    ``C = 2 H^-1`` is the asymptotic covariance of ``phi``, ``H`` the Hessian of the
    (REML or ML) deviance in ``phi`` by central differences of its analytic
    gradient. Parameters on the boundary drop out (their ``g`` is 0, and the
    deviance is even in ``theta_k``, so they do not interact with the others).

    References
    ----------
    Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear
    mixed-effects models using lme4. Journal of Statistical Software, 67(1), 1-48.

    Satterthwaite, F. E. (1946). An approximate distribution of estimates of variance
    components. Biometrics Bulletin, 2(6), 110-114.

    Kuznetsova, A., Brockhoff, P. B., & Christensen, R. H. B. (2017). lmerTest
    package: tests in linear mixed effects models. Journal of Statistical Software,
    82(13), 1-26.

    Examples
    --------
    >>> from seqrob.warehouse.simulate import DEFAULT_FAMILIES, simulate
    >>> sim = simulate(seeds=5, families=DEFAULT_FAMILIES, outcomes=False)
    >>> fit = fit_mixed(sim.scores)
    >>> sorted(fit.variance_components)
    ['language', 'residual', 'run', 'seed']
    """
    if method not in _CRITERIA:
        raise InputError(f"method '{method}' is not REML or ML", fix="pass method='REML' or method='ML'")
    if run_variance not in ("common", "by_order"):
        raise InputError(
            f"run_variance '{run_variance}' is not common or by_order", fix="pass run_variance='common' or 'by_order'"
        )
    if fixed not in _FIXED:
        raise InputError(f"fixed '{fixed}' is not one of {list(_FIXED)}", fix="pass fixed='order*family'")
    terms = _random_terms(random)
    alpha = _alpha(alpha)
    prepared = _prepare(data, dv=dv, order=order, family=family, seed=seed, language=language, baseline=baseline)
    with _one_blas_thread():
        state = _fit_state(prepared, fixed=fixed, terms=terms, run_variance=run_variance, reml=method == "REML")
        return _make_fit(state, alpha=alpha)


_CONTROLLER: list = []


def _one_blas_thread():
    """Run BLAS on one thread: the matrices are small (q x q), and threads on a busy
    machine cost more than they give (6x slower measured on 2 shared cores)."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415 (optional; scikit-learn's dependency)

            _CONTROLLER.append(ThreadpoolController())
        except ImportError:  # pragma: no cover
            _CONTROLLER.append(None)
    if _CONTROLLER[0] is None:  # pragma: no cover
        return contextlib.nullcontext()
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


# --- preparation ------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    y: np.ndarray  # scores in metric units
    order: np.ndarray  # codes into orders
    family: np.ndarray
    seed: np.ndarray
    language: np.ndarray
    orders: list[str]
    families: list[str]
    seeds: list
    languages: list
    names: dict[str, str]  # column names (for terms and formulas)
    task: str | None
    metric: str | None
    warnings: list[str]


def _alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 < float(alpha) < 1.0:
        raise InputError(f"alpha must be a number in (0, 1), not {alpha!r}", fix="pass alpha=0.05")
    return float(alpha)


def _random_terms(random: Sequence[str]) -> tuple[str, ...]:
    if isinstance(random, str) or not isinstance(random, Sequence):
        raise InputError(f"random must be a list of terms, not {random!r}", fix=f"pass random={RANDOM_TERMS}")
    unknown = [term for term in random if term not in RANDOM_TERMS]
    if unknown:
        raise InputError(f"unknown random terms {unknown}", fix=f"use terms from {RANDOM_TERMS}")
    return tuple(term for term in RANDOM_TERMS if term in random)


def _one_task_and_metric(data: pd.DataFrame) -> dict[str, str | None]:
    """The data's task and metric (where the columns exist); DesignError when it holds several."""
    where: dict[str, str | None] = {}
    for label in ("task", "metric"):
        if label in data.columns:
            values = data[label].dropna().unique()
            if len(values) > 1:
                raise DesignError(
                    f"data holds {len(values)} values of '{label}' - fit one task and metric at a time "
                    "(filter the data, or use order_tests)"
                )
            where[label] = str(values[0]) if len(values) else None
    return where


def _prepare(
    data: pd.DataFrame, *, dv: str, order: str, family: str, seed: str, language: str, baseline: str
) -> _Prepared:
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, not {type(data).__name__}", fix="pass a long DataFrame")
    columns = {"dv": dv, "order": order, "family": family, "seed": seed, "language": language}
    missing = [name for name in columns.values() if name not in data.columns]
    if missing:
        raise DesignError(
            f"data has no column {missing} - name the columns with dv=, order=, family=, seed=, language="
        )
    notes: list[str] = []
    where = _one_task_and_metric(data)
    # Plain arrays, one column at a time (selecting a sub-frame copies and is slow).
    keys = {label: data[columns[label]].to_numpy() for label in ("order", "family", "seed", "language")}
    for label, values in keys.items():
        if pd.isna(values).any():
            raise InputError(f"column '{columns[label]}' has empty values", fix="fill or drop those rows")
    try:
        y = pd.to_numeric(data[dv], errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"column '{dv}' is not numeric", fix="pass scores as numbers") from None
    if np.isinf(y).any():
        raise InputError(f"column '{dv}' has infinite values", fix="drop or correct them")
    keep = ~np.isnan(y)
    if not keep.all():
        notes.append(f"dropped {int((~keep).sum())} rows with a missing {dv}")
        keys = {label: values[keep] for label, values in keys.items()}
        y = y[keep]
    if len(y) == 0:
        raise DesignError(f"no scores to fit (column '{dv}' is empty) - check the filter on task and metric")

    def codes(label: str) -> tuple[np.ndarray, list]:
        values, levels = pd.factorize(keys[label])
        return values.astype(np.int64), list(levels)

    order_codes, order_levels = codes("order")
    order_levels = [str(level) for level in order_levels]
    if baseline not in order_levels:
        raise DesignError(
            f"baseline order '{baseline}' is not in the data (orders: {', '.join(order_levels)}) - pass baseline=ORDER"
        )
    # Levels: baseline first, then the others as they first appear (R: relevel()).
    levels = [baseline] + [level for level in order_levels if level != baseline]
    order_codes = np.asarray([levels.index(level) for level in order_levels])[order_codes]
    family_codes, family_levels = codes("family")
    seed_codes, seed_levels = codes("seed")
    language_codes, language_levels = codes("language")
    pairs = np.unique(language_codes * len(family_levels) + family_codes)
    if len(pairs) > len(language_levels):
        bad = language_levels[int(np.flatnonzero(np.bincount(pairs // len(family_levels)) > 1)[0])]
        raise DesignError(f"language '{bad}' is in more than one family - give each language one family")
    cell = (order_codes * len(seed_levels) + seed_codes) * len(language_levels) + language_codes
    if len(np.unique(cell)) < len(cell):
        raise DesignError(
            f"several rows share an order, seed and language - keep one {dv} per run and language "
            "(filter by task and metric)"
        )
    return _Prepared(
        y=y,
        order=order_codes.astype(np.int64),
        family=family_codes.astype(np.int64),
        seed=seed_codes.astype(np.int64),
        language=language_codes.astype(np.int64),
        orders=levels,
        families=[str(f) for f in family_levels],
        seeds=list(seed_levels),
        languages=[str(x) for x in language_levels],
        names=columns,
        task=where.get("task"),
        metric=where.get("metric"),
        warnings=notes,
    )


# --- design matrices --------------------------------------------------------------

_FIXED = ("order*family", "order+family", "family")


def _fixed_design(prep: _Prepared, fixed: str) -> tuple[np.ndarray, list[str]]:
    """Treatment-coded cell matrix T (one row per order x family cell) and R's column names.

    Cell ``o + O * f``. Columns as R's ``model.matrix(~ order * family)``: intercept,
    order, family, then interactions with order varying fastest.
    """
    O, F = len(prep.orders), len(prep.families)
    on, fn = prep.names["order"], prep.names["family"]
    o, f = np.meshgrid(np.arange(O), np.arange(F), indexing="ij")
    o, f = o.ravel(order="F"), f.ravel(order="F")  # cell c = o + O f
    cols = [np.ones(O * F)]
    names = ["(Intercept)"]
    if fixed != "family":
        for a in range(1, O):
            cols.append((o == a).astype(float))
            names.append(f"{on}{prep.orders[a]}")
    for b in range(1, F):
        cols.append((f == b).astype(float))
        names.append(f"{fn}{prep.families[b]}")
    if fixed == "order*family":
        for b in range(1, F):
            for a in range(1, O):
                cols.append(((o == a) & (f == b)).astype(float))
                names.append(f"{on}{prep.orders[a]}:{fn}{prep.families[b]}")
    return np.column_stack(cols), names


# --- fitting ----------------------------------------------------------------------


@dataclass
class _State:
    """A fitted model with what the tests and tables need (internal scale)."""

    prep: _Prepared
    model: _Model
    T: np.ndarray  # (cells, p) kept columns of the cell matrix
    names: list[str]
    term_names: list[str]  # random terms, one per theta
    reml: bool
    theta: np.ndarray
    sigma2: float
    beta: np.ndarray
    M: np.ndarray
    W: np.ndarray | None
    deviance: float
    converged: bool
    exact: bool  # scores fitted exactly by the fixed effects (no variance at all)
    scale: float
    centre: float
    cell_n_seeds: np.ndarray  # seeds per order x family cell
    cell_seeds: list  # sets of seed codes per cell
    warnings: list[str]
    formula: str
    dropped_terms: list[str]
    fixed: str  # what was fitted: fixed part, run variance and random terms asked for
    run_variance: str
    terms: tuple[str, ...]
    hessian_cov: np.ndarray | None = None
    active: np.ndarray | None = None
    emmeans: pd.DataFrame | None = None

    @property
    def log_likelihood(self) -> float:
        nn = self.model.n - self.model.p if self.reml else self.model.n
        return -0.5 * self.deviance + nn * math.log(self.scale)


def _fit_state(prep: _Prepared, *, fixed: str, terms: tuple[str, ...], run_variance: str, reml: bool) -> _State:
    notes = list(prep.warnings)
    n = len(prep.y)
    scale = 100.0 if (prep.y.min() >= 0.0 and prep.y.max() <= 1.0) else 1.0
    centre = float(prep.y.mean())
    y = (prep.y - centre) * scale

    # Fixed effects: cell matrix, columns aliased by empty cells dropped as R does.
    T_all, _ = _fixed_design(prep, fixed)
    X, (T, names, cell) = _kept_fixed(prep, fixed)
    if len(names) < T_all.shape[1]:
        notes.append(
            f"{T_all.shape[1] - len(names)} fixed-effect columns dropped (order x family cells without scores)"
        )
    p = X.shape[1]
    if n <= p:
        raise DesignError(
            f"{n} scores for {p} fixed effects leave no residual degrees of freedom - add seeds or languages"
        )
    XtX = X.T @ X
    candidates = _random_candidates(prep, terms, run_variance)
    kept_codes, kept_terms, formulas, dropped = _identifiable_terms(prep, candidates, XtX, T, cell, notes)
    model = _Model(XtX, X.T @ y, float(y @ y), n, kept_codes, cell, T, y)
    formula = " + ".join([f"{prep.names['dv']} ~ {_fixed_text(prep, fixed)}", *formulas])
    n_seeds, seeds = _cell_seeds(prep)
    common = dict(
        prep=prep, model=model, T=T, names=names, term_names=kept_terms, reml=reml, scale=scale, centre=centre,
        cell_n_seeds=n_seeds, cell_seeds=seeds, warnings=notes, formula=formula, dropped_terms=dropped,
        fixed=fixed, run_variance=run_variance, terms=terms,
    )  # fmt: skip
    if _exact_fit(model):
        notes.append("the fixed effects fit the scores exactly (no variation left): every variance is 0")
        theta = np.zeros(model.m)
        o = model.solve(theta)
        return _State(**common, theta=theta, sigma2=0.0, beta=o["beta"], M=o["M"], W=None, deviance=-math.inf,
                      converged=True, exact=True)  # fmt: skip
    theta, dev, converged = _optimise(model, reml)
    o = model.solve(theta, extra=True)
    nn = model.n - model.p if reml else model.n
    for k, name in enumerate(kept_terms):
        if theta[k] < _BOUNDARY:
            notes.append(f"variance of '{name}' estimated as 0 (boundary estimate, not an error)")
    if not converged:
        notes.append("the optimiser did not converge: estimates may be inaccurate")
    state = _State(**common, theta=theta, sigma2=o["r2"] / nn, beta=o["beta"], M=o["M"], W=o.get("W"), deviance=dev,
                   converged=converged, exact=False)  # fmt: skip
    _variance_of_variances(state)
    return state


def _random_candidates(prep: _Prepared, terms: tuple[str, ...], run_variance: str) -> list[tuple[str, np.ndarray, str]]:
    """The random terms asked for: (name, each row's level or -1, lme4 syntax)."""
    S = len(prep.seeds)
    run_codes = prep.order * S + prep.seed
    on, sn = prep.names["order"], prep.names["seed"]
    candidates: list[tuple[str, np.ndarray, str]] = []
    if "seed" in terms:
        candidates.append(("seed", prep.seed, f"(1|{sn})"))
    if "run" in terms:
        if run_variance == "by_order":
            for a, level in enumerate(prep.orders):
                codes = np.where(prep.order == a, run_codes, -1)
                candidates.append((f"run:{level}", codes, f"(0 + dummy({on}, '{level}')|{sn})"))
        else:
            candidates.append(("run", run_codes, f"(1|{sn}:{on})"))
    if "language" in terms:
        candidates.append(("language", prep.language, f"(1|{prep.names['language']})"))
    return candidates


def _identifiable_terms(
    prep: _Prepared, candidates: list, XtX: np.ndarray, T: np.ndarray, cell: np.ndarray, notes: list[str]
) -> tuple[list[np.ndarray], list[str], list[str], list[str]]:
    """Keep the candidate terms the design can identify; say in ``notes`` why the others go.

    Returns each kept term's compressed level codes (-1 = row not in the term), the kept
    names and their lme4 syntax, and the dropped names.
    """
    O, S, n = len(prep.orders), len(prep.seeds), len(prep.y)
    kept_codes: list[np.ndarray] = []
    kept_terms: list[str] = []
    formulas: list[str] = []
    dropped: list[str] = []
    rank_x = _rank(XtX)
    for name, codes, text in candidates:
        used = codes >= 0
        levels, inverse = np.unique(codes[used], return_inverse=True)
        compact = np.full(n, -1, dtype=np.int64)
        compact[used] = inverse
        reason = None
        if len(levels) < 2:
            reason = "it has one level"
        elif len(levels) == used.sum():
            reason = "each level has one score (it cannot be told from the residual)"
        elif any(_same_partition(compact, other) for other in kept_codes):
            reason = "its levels are those of another random term"
        else:
            ZtX = _crosstab(compact, cell, len(levels), T.shape[0]) @ T  # Z_k' X
            counts = np.bincount(inverse, minlength=len(levels)).astype(float)
            gram = np.block([[XtX, ZtX.T], [ZtX, np.diag(counts)]])
            if _rank(gram) == rank_x:
                reason = "it is confounded with the fixed effects"
        if reason is not None:
            dropped.append(name)
            why = {
                "seed": "one seed" if S < 2 else reason,
                "run": "one seed or one order: runs are then seeds or orders" if (S < 2 or O < 2) else reason,
            }.get(name.split(":")[0], reason)
            notes.append(f"random term '{name}' dropped: {why}; its variance is not identifiable")
            continue
        kept_codes.append(compact)
        kept_terms.append(name)
        formulas.append(text)
    if S < 2 and ("run" in dropped or any(name.startswith("run:") for name in dropped)):
        notes.append("one seed: order effects cannot be told from run-to-run noise; contrasts hold for this seed only")
    return kept_codes, kept_terms, formulas, dropped


def _exact_fit(model: _Model) -> bool:
    """Do the fixed effects fit the scores exactly (e.g. all equal)? DesignError when the
    random effects would (no residual variation: nothing to fit)."""
    total = max(model.yty, 1e-300)
    if model.yty == 0.0 or _ols_rss(model.XtX, model.Xty, model.yty) <= 1e-12 * total:
        return True
    if model.q:
        gram = np.block([[model.XtX, model.ZtX.T], [model.ZtX, model.G]])
        rhs = np.concatenate([model.Xty, model.Zty])
        coef, *_ = linalg.lstsq(gram, rhs, check_finite=False)
        if model.yty - rhs @ coef <= 1e-12 * total:
            raise DesignError(
                "the scores are an exact sum of order, family, seed, run and language effects (no residual "
                "variation) - a mixed model cannot be fitted; check that scores were not copied between runs"
            )
    return False


def _kept_fixed(prep: _Prepared, fixed: str) -> tuple[np.ndarray, tuple[np.ndarray, list[str], np.ndarray]]:
    """X with the columns R keeps, and (cell matrix T, column names, cell of each row)."""
    T_all, names_all = _fixed_design(prep, fixed)
    cell = prep.order + len(prep.orders) * prep.family
    counts = np.bincount(cell, minlength=T_all.shape[0]).astype(float)
    keep = _keep_columns(T_all.T @ (counts[:, None] * T_all))
    T = T_all[:, keep]
    return T[cell], (T, [names_all[i] for i in keep], cell)


def _ols_rss(XtX: np.ndarray, Xty: np.ndarray, yty: float) -> float:
    return float(yty - Xty @ linalg.solve(XtX, Xty, assume_a="pos"))


def _cell_seeds(prep: _Prepared) -> tuple[np.ndarray, list]:
    O, F = len(prep.orders), len(prep.families)
    cell = prep.order + O * prep.family
    seeds: list = [set() for _ in range(O * F)]
    for c, s in set(zip(cell.tolist(), prep.seed.tolist())):
        seeds[c].add(s)
    return np.array([len(x) for x in seeds]), seeds


def _variance_of_variances(state: _State) -> None:
    """Asymptotic covariance of (theta_active, sigma): 2 H^-1 of the deviance (for Satterthwaite)."""
    model = state.model
    active = np.flatnonzero(state.theta >= _BOUNDARY)
    phi = np.concatenate([state.theta[active], [math.sqrt(state.sigma2)]])
    k = len(phi)
    H = np.empty((k, k))
    for i in range(k):
        h = 1e-4 * max(abs(phi[i]), 1e-3)
        up, down = phi.copy(), phi.copy()
        up[i] += h
        down[i] -= h
        H[i] = (model.full_gradient(up, state.reml, active) - model.full_gradient(down, state.reml, active)) / (2 * h)
    H = 0.5 * (H + H.T)
    try:
        cov = 2.0 * linalg.inv(H)
        if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) < 0):
            raise linalg.LinAlgError
    except linalg.LinAlgError:
        cov = 2.0 * linalg.pinvh(H)
        state.warnings.append("the deviance's Hessian is singular: Satterthwaite df are approximate")
    state.hessian_cov = cov
    state.active = active


def _satterthwaite(state: _State, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Variance (internal scale) and Satterthwaite df of each row of ``C`` (k, p) applied to beta."""
    Minv_c = linalg.cho_solve((linalg.cholesky(state.M, lower=True), True), C.T)  # (p, k)
    var = state.sigma2 * np.einsum("ij,ij->j", C.T, Minv_c)
    residual_df = float(state.model.n - state.model.p)
    if state.exact or state.hessian_cov is None:
        return var, np.full(len(var), residual_df)
    sigma = math.sqrt(state.sigma2)
    grads = [2.0 * sigma * np.einsum("ij,ij->j", C.T, Minv_c)]
    if state.model.q and len(state.active):
        WMc = state.W @ Minv_c  # (q, k)
        per_term = np.stack([np.bincount(state.model.block_of, weights=WMc[:, j] ** 2, minlength=state.model.m)
                             for j in range(C.shape[0])], axis=1)  # fmt: skip  (m, k)
        g_theta = 2.0 * state.sigma2 * state.theta[:, None] * per_term
        grads = [g_theta[state.active], grads[0][None, :]]
        g = np.vstack(grads)
    else:
        g = grads[0][None, :]
    denom = np.einsum("ik,ij,jk->k", g, state.hessian_cov, g)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = 2.0 * var**2 / denom
    df = np.where(np.isfinite(df) & (df > 0), df, residual_df)
    return var, df


# --- tables -----------------------------------------------------------------------


def _t_table(
    estimate: np.ndarray, var: np.ndarray, df: np.ndarray, alpha: float, zero: float = 0.0
) -> dict[str, np.ndarray]:
    """t statistics, two-sided p-values and intervals; an SE of 0 means an exact estimate
    (then ``|estimate| <= zero`` is rounding noise of an exact 0)."""
    estimate = np.asarray(estimate, dtype=float)
    se = np.sqrt(np.maximum(var, 0.0))
    positive = se > 0
    estimate = np.where(~positive & (np.abs(estimate) <= zero), 0.0, estimate)
    safe = np.where(positive, se, 1.0)
    t = np.where(positive, estimate / safe, np.where(estimate == 0, 0.0, np.copysign(np.inf, estimate)))
    half = np.where(positive, stats.t.ppf(1 - alpha / 2, df) * se, 0.0)
    p = np.where(positive, 2 * stats.t.sf(np.abs(t), df), np.where(estimate == 0, 1.0, 0.0))
    return {"estimate": estimate, "se": se, "ci_low": estimate - half, "ci_high": estimate + half,
            "statistic": t, "df": np.asarray(df, dtype=float), "p_value": p}  # fmt: skip


def _method(state: _State, what: str) -> str:
    return f"{what}; {'REML' if state.reml else 'ML'} fit of {state.formula}"


def _make_fit(state: _State, *, alpha: float) -> MixedFit:
    prep, s = state.prep, state.scale
    p = len(state.names)
    var, df = _satterthwaite(state, np.eye(p))
    shift = np.array([state.centre if name == "(Intercept)" else 0.0 for name in state.names])
    table = _t_table(state.beta / s + shift, var / s**2, df, alpha, zero=1e-9 * (1.0 + np.abs(prep.y).max()))
    fixed = pd.DataFrame({"term": state.names, "estimate": table["estimate"], "se": table["se"], "df": table["df"],
                          "statistic": table["statistic"], "p_value": table["p_value"]})  # fmt: skip
    components: dict[str, float] = {}
    for name in _component_order([*state.term_names, *state.dropped_terms]):
        if name in state.term_names:
            k = state.term_names.index(name)
            components[name] = float(state.sigma2 * state.theta[k] ** 2 / s**2)
        else:
            components[name] = math.nan
    components["residual"] = float(state.sigma2 / s**2)
    return MixedFit(
        fixed_effects=fixed,
        variance_components=components,
        log_likelihood=state.log_likelihood,
        criterion="REML" if state.reml else "ML",
        n_obs=state.model.n,
        n_seeds=len(prep.seeds),
        n_runs=len(np.unique(prep.order * len(prep.seeds) + prep.seed)),
        n_languages=len(prep.languages),
        converged=state.converged,
        warnings=list(state.warnings),
        formula=state.formula,
        scale=s,
        theta=state.theta.copy(),
        task=prep.task,
        metric=prep.metric,
        alpha=alpha,
        _state=state,
    )


def _component_order(names: list[str]) -> list[str]:
    rank = {"seed": 0, "run": 1, "language": 2}
    return sorted(names, key=lambda name: rank[name.split(":")[0]])


def _emmean_rows(state: _State, alpha: float) -> pd.DataFrame:
    prep = state.prep
    O = len(prep.orders)
    cells = np.flatnonzero(state.cell_n_seeds > 0)
    if not len(cells):
        return result_frame()
    var, df = _satterthwaite(state, state.T[cells])
    s = state.scale
    table = _t_table(state.T[cells] @ state.beta / s + state.centre, var / s**2, df, alpha)
    return result_frame(pd.DataFrame({
        "test": "emmean", "term": [prep.orders[c % O] for c in cells], "task": prep.task, "metric": prep.metric,
        "family": [prep.families[c // O] for c in cells], "estimate": table["estimate"],
        "ci_low": table["ci_low"], "ci_high": table["ci_high"], "df": table["df"], "n": state.cell_n_seeds[cells],
        "method": _method(state, f"cell mean, Satterthwaite t interval ({1 - alpha:.0%})"),
    }))  # fmt: skip


def _contrast_rows(state: _State, *, alpha: float) -> pd.DataFrame:
    return result_frame(_contrast_table(state, alpha=alpha))


def _contrast_table(state: _State, *, alpha: float) -> pd.DataFrame:
    """Contrast rows as a plain DataFrame (result_frame types them once, at the end)."""
    prep = state.prep
    O = len(prep.orders)
    vectors, families, terms, both = [], [], [], []
    for f, name in enumerate(prep.families):
        for j, i in _pairs(O):
            cj, ci = j + O * f, i + O * f
            if state.cell_n_seeds[cj] == 0 or state.cell_n_seeds[ci] == 0:
                continue
            vectors.append(state.T[cj] - state.T[ci])
            families.append(name)
            terms.append(f"{prep.orders[j]} vs {prep.orders[i]}")
            both.append(len(state.cell_seeds[cj] & state.cell_seeds[ci]))
    if not vectors:
        return pd.DataFrame()
    C = np.vstack(vectors)
    var, df = _satterthwaite(state, C)
    s = state.scale
    table = _t_table(C @ state.beta / s, var / s**2, df, alpha, zero=1e-9 * (1.0 + np.abs(state.prep.y).max()))
    return pd.DataFrame({
        "test": "contrast", "term": terms, "task": prep.task, "metric": prep.metric, "family": families,
        "estimate": table["estimate"], "ci_low": table["ci_low"], "ci_high": table["ci_high"],
        "statistic": table["statistic"], "df": table["df"], "p_value": table["p_value"], "n": both,
        "method": _method(state, f"difference of cell means, Satterthwaite t ({1 - alpha:.0%} CI)"),
    })  # fmt: skip


def _fixed_text(prep: _Prepared, fixed: str) -> str:
    on, fn = prep.names["order"], prep.names["family"]
    return {"order*family": f"{on} * {fn}", "order+family": f"{on} + {fn}", "family": fn}[fixed]
