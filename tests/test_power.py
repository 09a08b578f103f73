"""Tests of seqrob.analysis.power: the closed form against the fitted model, and the
number of seeds against a simulation of the analysis itself."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from seqrob.analysis.mixed import fit_mixed
from seqrob.analysis.power import contrast_power, power_curve, seeds_for_power
from seqrob.warehouse.errors import DesignError, InputError

# Design point of the simulation check (metric in points): 3 orders, one family of 4
# languages, run variance 1, residual variance 4, an effect of 3 points of order "a".
COMPONENTS = {"seed": 1.0, "run": 1.0, "language": 9.0, "residual": 4.0}
EFFECT = 3.0
ORDERS = ("none", "a", "b")


def _scores(rng: np.random.Generator, n_seeds: int, n_languages: int = 4, families=None) -> pd.DataFrame:
    """Balanced Gaussian scores from the mixed model with COMPONENTS and EFFECT on order a."""
    O, S, L = len(ORDERS), n_seeds, n_languages
    o, s, lang = (axis.ravel() for axis in np.indices((O, S, L)))
    sd = {name: math.sqrt(value) for name, value in COMPONENTS.items()}
    score = (
        70.0 + EFFECT * (o == 1)
        + rng.normal(0, sd["seed"], S)[s] + rng.normal(0, sd["run"], (O, S))[o, s]
        + rng.normal(0, sd["language"], L)[lang] + rng.normal(0, sd["residual"], o.size)
    )  # fmt: skip
    family = np.asarray(families if families is not None else ["F"] * L)[lang]
    return pd.DataFrame({"order": np.asarray(ORDERS)[o], "seed": s, "language": lang.astype(str),
                         "family": family, "score": score})  # fmt: skip


def test_closed_form_equals_the_fitted_contrast():
    # Balanced design, three families (4 + 3 + 3 languages), all variances interior: the
    # closed-form SE and Satterthwaite df equal what fit_mixed reports for the contrast.
    families = ["A"] * 4 + ["B"] * 3 + ["C"] * 3
    fit = fit_mixed(_scores(np.random.default_rng(5), 6, 10, families))
    assert all(value > 0 for value in fit.variance_components.values())
    contrasts = fit.contrasts().set_index(["family", "term"])
    for family, n_languages in (("A", 4), ("B", 3)):
        row = contrasts.loc[(family, "a vs none")]
        se = (row["ci_high"] - row["estimate"]) / stats.t.ppf(0.975, row["df"])
        curve = power_curve(fit, 1.0, n_languages=n_languages, n_orders=3, n_languages_total=10, n_families=3,
                            seeds=[6])  # fmt: skip
        assert curve["se"].iloc[0] == pytest.approx(se, rel=1e-8)
        assert curve["df"].iloc[0] == pytest.approx(row["df"], rel=1e-5)


def test_one_family_is_a_noncentral_t():
    # One family: V = 2 (run + residual / L) / S on (S - 1)(O - 1) df, exactly.
    S, L = 5, 4
    se = math.sqrt(2 * (1.0 + 4.0 / L) / S)
    df = (S - 1) * (3 - 1)
    critical = stats.t.ppf(0.975, df)
    expected = stats.nct.sf(critical, df, EFFECT / se) + stats.nct.cdf(-critical, df, EFFECT / se)
    assert contrast_power(COMPONENTS, EFFECT, n_seeds=S, n_languages=L, n_orders=3) == pytest.approx(expected)


def test_seeds_for_power_holds_in_simulation():
    # Predicted: 5 seeds give power 0.835, 4 give 0.707. Simulate the analysis itself
    # (fit_mixed, REML, Satterthwaite t of the a-vs-none contrast, which with one family
    # is the fixed effect "ordera") 150 times at each; the simulation SE is about 0.035.
    n = seeds_for_power(COMPONENTS, EFFECT, n_languages=4, n_orders=3)
    assert n == 5
    predicted = power_curve(COMPONENTS, EFFECT, n_languages=4, n_orders=3, seeds=[n - 1, n])["power"].to_numpy()
    assert predicted[0] < 0.8 <= predicted[1]
    rng = np.random.default_rng(2024)
    simulated = []
    for seeds in (n - 1, n):
        rejected = [
            fit_mixed(_scores(rng, seeds)).fixed_effects.set_index("term").loc["ordera", "p_value"] < 0.05
            for _ in range(150)
        ]
        simulated.append(float(np.mean(rejected)))
    assert simulated[1] >= 0.8 - 0.05, simulated
    assert simulated[0] < 0.8, simulated
    np.testing.assert_allclose(simulated, predicted, atol=0.08)


def test_accepts_a_fit_and_by_order_components():
    power = contrast_power({"run:none": 0.5, "run:a": 1.5, "residual": 4.0}, EFFECT, n_seeds=5, n_languages=4,
                           n_orders=3)  # fmt: skip
    assert power == pytest.approx(contrast_power(COMPONENTS, EFFECT, n_seeds=5, n_languages=4, n_orders=3))
    curve = power_curve(COMPONENTS, EFFECT, n_languages=4, seeds=range(2, 12))
    assert curve["power"].is_monotonic_increasing
    assert list(curve.columns) == ["n_seeds", "se", "df", "power"]


def test_errors():
    with pytest.raises(DesignError, match="do not reach power"):
        seeds_for_power(COMPONENTS, 0.01, n_languages=4, max_seeds=50)
    with pytest.raises(DesignError, match="run variance is nan"):
        seeds_for_power({"run": math.nan, "residual": 1.0}, 1.0, n_languages=4)
    with pytest.raises(InputError, match="effect"):
        seeds_for_power(COMPONENTS, 0.0, n_languages=4)
    with pytest.raises(InputError, match="n_seeds"):
        contrast_power(COMPONENTS, 1.0, n_seeds=1, n_languages=4)
