"""How many seeds does an order comparison need?

:func:`family_power` sizes the verdicts' tests from each family's own seed-to-seed noise
(the t over seeds of the contrasts, and the test of spread). The rest is the power of the
mixed model's order contrast:

From variance components (a :class:`~seqrob.analysis.mixed.MixedFit`'s, or planned
ones), the power of the within-family contrast of two orders that
:func:`seqrob.analysis.mixed.order_tests` reports, as a function of the number of seeds
per order, and the smallest number of seeds that reaches a target power.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from seqrob.warehouse.errors import DesignError, InputError

__all__ = ["contrast_power", "family_power", "power_curve", "seeds_for_power", "seeds_for_sd_ratio", "seeds_for_t"]


def contrast_power(
    variance_components: Mapping[str, float] | object,
    effect: float,
    *,
    n_seeds: int,
    n_languages: int,
    n_orders: int = 2,
    n_languages_total: int | None = None,
    n_families: int | None = None,
    alpha: float = 0.05,
) -> float:
    """Power of the two-sided t test of one order contrast within a family.

    Parameters
    ----------
    variance_components
        ``{"run": ..., "residual": ...}`` in the metric's units squared, or a
        :class:`~seqrob.analysis.mixed.MixedFit` (its ``variance_components``). With
        one run variance per order (keys ``run:ORDER``) their mean is used. Seed and
        language variances cancel in a paired, balanced design and are ignored.
    effect
        The order difference to detect, in the metric's units (0.02 = 2 points of
        accuracy).
    n_seeds
        Seeds per order (every order trained with the same seeds).
    n_languages
        Languages of the family the contrast is in.
    n_orders
        Orders in the design (they set the run stratum's degrees of freedom).
    n_languages_total, n_families
        Languages and families in the whole design (default: this family only).
    alpha
        Two-sided level of the test.

    Returns
    -------
    float
        The power.

    Notes
    -----
    In a balanced design (every order with the same ``S`` seeds, every run scored on
    every language) the contrast of orders ``a`` and ``b`` in family ``f`` with
    ``L_f`` languages is a difference of cell means whose variance is::

        V = 2 (sigma_run^2 + sigma_res^2 / L_f) / S

    (seed and language effects cancel). Its REML estimate is a combination of two
    mean squares, ``V_hat = (2 / S) (MS_run / L + MS_res (1 / L_f - 1 / L))`` with
    ``E[MS_run] = sigma_res^2 + L sigma_run^2`` on ``(S - 1)(O - 1)`` df and
    ``E[MS_res] = sigma_res^2`` on ``(O S - 1)(L - 1) - (O - 1)(F - 1)`` df
    (``L`` languages and ``F`` families in all, ``O`` orders). Satterthwaite's df
    for ``V_hat`` are those the fitted model reports; the power is that of a t test
    with those df and noncentrality ``effect / sqrt(V)``::

        power = P(|T| > t_{1 - alpha/2, df}),   T ~ noncentral t(df, effect / sqrt(V))

    With one family (``L_f = L``) the df are exactly ``(S - 1)(O - 1)``.

    References
    ----------
    Satterthwaite, F. E. (1946). An approximate distribution of estimates of variance
    components. Biometrics Bulletin, 2(6), 110-114.

    Examples
    --------
    A 2-point difference, run SD 1 point, residual SD 2 points, 4 languages, 3 orders:

    >>> round(contrast_power({"run": 1e-4, "residual": 4e-4}, 0.02, n_seeds=6, n_languages=4, n_orders=3), 3)
    0.599
    """
    run, residual = _components(variance_components)
    S = _integer(n_seeds, "n_seeds", low=2)
    se, df = _contrast_se_df(run, residual, S, n_languages, n_orders, n_languages_total, n_families)
    return _power(_effect(effect), se, df, _alpha(alpha))


def power_curve(
    variance_components: Mapping[str, float] | object,
    effect: float,
    *,
    n_languages: int,
    seeds: Iterable[int] = range(2, 21),
    n_orders: int = 2,
    n_languages_total: int | None = None,
    n_families: int | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Power of the order contrast for each number of seeds (see :func:`contrast_power`).

    Returns
    -------
    pandas.DataFrame
        One row per number of seeds: ``n_seeds, se`` (SD of the contrast estimate,
        metric units), ``df`` (Satterthwaite), ``power``.
    """
    run, residual = _components(variance_components)
    effect = _effect(effect)
    alpha = _alpha(alpha)
    rows = []
    for n in seeds:
        S = _integer(n, "seeds", low=2)
        se, df = _contrast_se_df(run, residual, S, n_languages, n_orders, n_languages_total, n_families)
        rows.append({"n_seeds": S, "se": se, "df": df, "power": _power(effect, se, df, alpha)})
    return pd.DataFrame(rows, columns=["n_seeds", "se", "df", "power"])


def seeds_for_power(
    variance_components: Mapping[str, float] | object,
    effect: float,
    *,
    n_languages: int,
    alpha: float = 0.05,
    power: float = 0.80,
    n_orders: int = 2,
    n_languages_total: int | None = None,
    n_families: int | None = None,
    max_seeds: int = 1000,
) -> int:
    """Smallest number of seeds per order at which the order contrast reaches ``power``.

    Parameters
    ----------
    variance_components, effect, n_languages, n_orders, n_languages_total, n_families, alpha
        See :func:`contrast_power`.
    power
        Target power.
    max_seeds
        Give up above this many seeds.

    Returns
    -------
    int
        Seeds per order (at least 2: one seed cannot separate order from seed noise).

    Raises
    ------
    DesignError
        If even ``max_seeds`` seeds do not reach the power.

    Examples
    --------
    >>> seeds_for_power({"run": 1e-4, "residual": 4e-4}, 0.02, n_languages=4, n_orders=3)
    9
    """
    run, residual = _components(variance_components)
    effect = _effect(effect)
    alpha = _alpha(alpha)
    if isinstance(power, bool) or not isinstance(power, numbers.Real) or not alpha < float(power) < 1.0:
        raise InputError(f"power must be in (alpha, 1), not {power!r}", fix="pass power=0.8")
    limit = _integer(max_seeds, "max_seeds", low=2)

    def reached(S: int) -> bool:
        se, df = _contrast_se_df(run, residual, S, n_languages, n_orders, n_languages_total, n_families)
        return _power(effect, se, df, alpha) >= power

    # Power grows with S (the SE shrinks and the df grow): double, then bisect.
    high = 2
    while not reached(high):
        if high >= limit:
            raise DesignError(
                f"{limit} seeds do not reach power {power} for an effect of {effect} - "
                "plan for a larger effect, more languages, or raise max_seeds"
            )
        high = min(2 * high, limit)
    low = high // 2
    if low < 2 or reached(low):
        low = 1
    while high - low > 1:  # reached(high), not reached(low)
        middle = (low + high) // 2
        if reached(middle):
            high = middle
        else:
            low = middle
    return high


# --- helpers ----------------------------------------------------------------------


def _components(variance_components) -> tuple[float, float]:
    values = getattr(variance_components, "variance_components", variance_components)
    if not isinstance(values, Mapping):
        raise InputError(
            f"variance_components must be a dict or a MixedFit, not {type(values).__name__}",
            fix="pass {'run': ..., 'residual': ...} or fit_mixed(...)",
        )
    if "run" in values:
        run = values["run"]
    else:
        per_order = [value for key, value in values.items() if str(key).startswith("run:")]
        if not per_order:
            raise DesignError("variance_components has no 'run' variance - fit the model with the run term")
        run = float(np.mean(per_order))
    if "residual" not in values:
        raise DesignError("variance_components has no 'residual' variance - pass {'run': ..., 'residual': ...}")
    residual = values["residual"]
    for name, value in (("run", run), ("residual", residual)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
            raise DesignError(
                f"the {name} variance is {value!r} - it must be a finite number >= 0 "
                "(a NaN means the fitted design could not estimate it: plan from another fit)"
            )
    return float(run), float(residual)


def _integer(value, what: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InputError(f"{what} must be an integer >= {low}, not {value!r}", fix=f"pass {what}={max(low, 2)} or more")
    return int(value)


def _effect(effect) -> float:
    if isinstance(effect, bool) or not isinstance(effect, numbers.Real) or not math.isfinite(effect) or effect == 0:
        raise InputError(f"effect must be a non-zero number, not {effect!r}", fix="pass effect=0.02 (metric units)")
    return abs(float(effect))


def _alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 < float(alpha) < 1.0:
        raise InputError(f"alpha must be in (0, 1), not {alpha!r}", fix="pass alpha=0.05")
    return float(alpha)


def _contrast_se_df(
    run: float,
    residual: float,
    S: int,
    n_languages: int,
    n_orders: int,
    n_languages_total: int | None,
    n_families: int | None,
) -> tuple[float, float]:
    """SD of the contrast estimate and Satterthwaite's df (see :func:`contrast_power`)."""
    Lf = _integer(n_languages, "n_languages", low=1)
    O = _integer(n_orders, "n_orders", low=2)
    L = Lf if n_languages_total is None else _integer(n_languages_total, "n_languages_total", low=Lf)
    F = max(1, round(L / Lf)) if n_families is None else _integer(n_families, "n_families", low=1)
    variance = 2.0 * (run + residual / Lf) / S
    df_run = (S - 1) * (O - 1)
    df_res = (O * S - 1) * (L - 1) - (O - 1) * (F - 1)
    a = (residual + L * run) / L  # coefficient x expected mean square, run stratum
    b = residual * (1.0 / Lf - 1.0 / L)  # residual stratum
    if a + b == 0:
        return 0.0, float(df_run)
    denominator = a * a / df_run + (b * b / df_res if b > 0 and df_res > 0 else 0.0)
    return math.sqrt(variance), (a + b) ** 2 / denominator


def _power(effect: float, se: float, df: float, alpha: float) -> float:
    if se == 0:
        return 1.0
    critical = stats.t.ppf(1 - alpha / 2, df)
    ncp = effect / se
    return float(stats.nct.sf(critical, df, ncp) + stats.nct.cdf(-critical, df, ncp))


# --- power of the verdict tests, from each family's own noise ------------------------------

MAX_SEEDS = 100_000


def seeds_for_t(sd: float, effect: float, *, alpha: float = 0.05, power: float = 0.80, paired: bool = True) -> int | None:
    """Seeds per order for the contrast's t over seeds to reach ``power`` against ``effect``.

    ``sd`` is the SD of the per-seed differences (paired) or of one order's seed-level
    scores (unpaired, Welch with equal SDs and seeds); two-sided at ``alpha``; noncentral t
    (statsmodels' ``TTestPower`` / ``TTestIndPower``). None when ``sd`` is not positive and
    finite or more than 100,000 seeds would be needed.

    Examples
    --------
    >>> seeds_for_t(0.02, 0.02, alpha=0.05)
    10
    """
    from statsmodels.stats.power import TTestIndPower, TTestPower

    if not (np.isfinite(sd) and sd > 0) or effect == 0:
        return None
    size = abs(effect) / sd
    solver = TTestPower() if paired else TTestIndPower()
    for n in range(3, MAX_SEEDS):
        reached = solver.power(effect_size=size, nobs=n, alpha=alpha) if paired else solver.power(
            effect_size=size, nobs1=n, ratio=1.0, alpha=alpha)  # fmt: skip
        if reached >= power:
            return n
        if n > 50:  # past 50, step by the normal approximation, then check
            z = stats.norm.isf(alpha / 2) + stats.norm.ppf(power)
            guess = int(math.ceil((z / size) ** 2 * (1 if paired else 2))) + 2
            if guess > MAX_SEEDS:
                return None
            return max(guess, n + 1)
    return None


def seeds_for_sd_ratio(ratio: float, *, alpha: float = 0.05, power: float = 0.80) -> int | None:
    """Seeds per order for a test of equal spread to detect an SD ratio of ``ratio`` (approximate).

    The two-sided F test of two independent normal variances on n - 1 and n - 1 df: a
    scale-free guide to the permutation test's power (it is a little less powerful with
    outlier-robust deviations, more with seeds that pair the orders).

    Examples
    --------
    >>> seeds_for_sd_ratio(2.0)
    19
    """
    if not (np.isfinite(ratio) and ratio > 0) or ratio == 1:
        return None
    lam = max(ratio, 1 / ratio) ** 2
    for n in range(3, 2000):
        df = n - 1
        upper, lower = stats.f.isf(alpha / 2, df, df), stats.f.ppf(alpha / 2, df, df)
        reached = stats.f.sf(upper / lam, df, df) + stats.f.cdf(lower / lam, df, df)
        if reached >= power:
            return n
    return None


def family_power(
    scores: pd.DataFrame,
    *,
    orders: list[str],
    effect: float,
    alpha: float = 0.05,
    power: float = 0.80,
    sd_ratio: float = 2.0,
    tests_corrected: int = 1,
    variance_tests_corrected: int = 1,
    paired: bool = True,
) -> pd.DataFrame:
    """Seeds per order each family needs, from that family's own seed-to-seed noise.

    Parameters
    ----------
    scores
        Long scores of one task x metric (``order, seed, language, family, score``).
    orders
        The orders compared.
    effect
        The order difference (scores' units) to detect.
    alpha, power
        Level and target power. The level used is ``alpha / tests_corrected``: the
        smallest p under Holm must pass it.
    sd_ratio
        The SD ratio the variance test should detect.
    tests_corrected, variance_tests_corrected
        Sizes of the contrast and variance Holm families.
    paired
        The orders share seeds (the contrasts are paired t's), as
        :func:`seqrob.analysis.significance.analyze` decides; else Welch's t.

    Returns
    -------
    pandas.DataFrame
        Per family: ``family, languages, effect, power, level, sd_difference`` (the RMS
        over order pairs of the SD of per-seed differences of family means; unpaired: of
        the seed-level scores), ``seeds_needed``, ``sd_ratio``, ``variance_level``,
        ``seeds_needed_variance``, ``seeds_now``.
    """
    level = alpha / max(1, tests_corrected)
    variance_level = alpha / max(1, variance_tests_corrected)
    runs = scores.groupby(["family", "order", "seed"], as_index=False)["score"].mean()
    seeds_now = int(scores.groupby("order")["seed"].nunique().min())
    rows = []
    for family, part in runs.groupby("family", sort=True):
        table = part.pivot(index="seed", columns="order", values="score")
        variances = []
        for i, a in enumerate(orders):
            for b in orders[i + 1 :]:
                if a not in table or b not in table:
                    continue
                if paired:
                    d = (table[a] - table[b]).dropna()
                    if len(d) >= 2:
                        variances.append(float(d.var(ddof=1)))
                else:
                    x, y = table[a].dropna(), table[b].dropna()
                    if len(x) >= 2 and len(y) >= 2:
                        variances.append((float(x.var(ddof=1)) + float(y.var(ddof=1))) / 2)
        sd = math.sqrt(float(np.mean(variances))) if variances else math.nan
        rows.append({"family": family, "languages": int(scores.loc[scores["family"] == family, "language"].nunique()),
                     "effect": effect, "power": power, "level": level, "sd_difference": sd,
                     "seeds_needed": seeds_for_t(sd, effect, alpha=level, power=power, paired=paired),
                     "sd_ratio": sd_ratio, "variance_level": variance_level,
                     "seeds_needed_variance": seeds_for_sd_ratio(sd_ratio, alpha=variance_level, power=power),
                     "seeds_now": seeds_now})  # fmt: skip
    return pd.DataFrame(rows)
