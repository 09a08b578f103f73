"""Few-seed tests against independent references.

References: p-values enumerated by hand for a 3-seed case; scipy.stats.permutation_test
(exact, paired "samples" and "independent"); the CI checked against scipy's p at its
ends (test inversion); pingouin.ttest and scipy.stats.ttest_rel / Welch; and simulations
with run-level noise from seqrob.warehouse.simulate for type-I error and coverage.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats

from seqrob.analysis.bootstrap import FewSeedsWarning
from seqrob.analysis.permutation import _sign_flip, permutation_test, seed_t_test, sign_flip_test
from seqrob.analysis.results import COLUMNS
from seqrob.warehouse.simulate import simulate


def paired_scores(a: np.ndarray, b: np.ndarray, orders=("none", "nli>qa")) -> pd.DataFrame:
    """Seed-level scores of two orders (one language), seeds 1..S."""
    rows = []
    for order, values in zip(orders, (a, b)):
        for s, v in enumerate(values, start=1):
            rows.append({"order": order, "seed": s, "task": "t", "metric": "accuracy", "language": "fi",
                         "family": "Uralic", "score": float(v)})  # fmt: skip
    return pd.DataFrame(rows)


def quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def scipy_sign_flip(d: np.ndarray, alternative: str) -> float:
    result = stats.permutation_test(
        (d, np.zeros_like(d)), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
        n_resamples=np.inf, alternative=alternative, vectorized=True,
    )  # fmt: skip
    return float(result.pvalue)


# --- exact values -------------------------------------------------------------------


def test_three_seed_case_by_hand():
    # d = (0.01, 0.03, -0.02); the 8 sign vectors give sums (x 0.01)
    # 2, 0, -4, 6, -6, 4, 0, -2. Observed 2: P(T* >= 2) = 3/8, P(T* <= 2) = 6/8,
    # two-sided 2 * 3/8 = 0.75.
    none = np.array([0.70, 0.70, 0.70])
    d = np.array([0.01, 0.03, -0.02])
    scores = paired_scores(none, none + d)
    for alternative, expected in (("two-sided", 0.75), ("greater", 3 / 8), ("less", 6 / 8)):
        table = quiet(sign_flip_test, scores, alternative=alternative, overall=False)
        assert table["p_value"].iloc[0] == pytest.approx(expected, abs=1e-12)
        assert table["estimate"].iloc[0] == pytest.approx(0.02 / 3)


def test_three_seeds_cannot_reach_alpha_and_say_so():
    scores = paired_scores(np.array([0.70, 0.71, 0.72]), np.array([0.75, 0.77, 0.79]))  # all d > 0
    with pytest.warns(FewSeedsWarning, match="smallest attainable p is 0.25"):
        table = sign_flip_test(scores, overall=False)
    row = table.iloc[0]
    assert row["p_value"] == 0.25
    assert row["ci_low"] == -np.inf and row["ci_high"] == np.inf
    assert "cannot reject" in row["method"] and "8 sign vectors" in row["method"]
    assert tuple(table.columns) == COLUMNS and row["test"] == "contrast" and row["n"] == 3


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_sign_flip_p_equals_scipy_exact_permutation_test(alternative):
    rng = np.random.default_rng(1)
    for S in (6, 9, 12):
        d = rng.normal(0.01, 0.02, S)
        ours = _sign_flip(d[:, None], alternative, 0.95, 1000, None)["p"][0]
        assert ours == pytest.approx(scipy_sign_flip(d, alternative), abs=1e-12)


def test_sign_flip_ci_is_the_set_of_shifts_scipy_does_not_reject():
    rng = np.random.default_rng(2)
    d = rng.normal(0.02, 0.02, 8)
    result = _sign_flip(d[:, None], "two-sided", 0.95, 1000, None)
    low, high = result["low"][0], result["high"][0]
    assert low < d.mean() < high
    step = 1e-9
    assert scipy_sign_flip(d - low, "two-sided") > 0.05  # the ends are inside
    assert scipy_sign_flip(d - high, "two-sided") > 0.05
    assert scipy_sign_flip(d - (low - step), "two-sided") <= 0.05  # just outside is rejected
    assert scipy_sign_flip(d - (high + step), "two-sided") <= 0.05
    # Hartigan: the ends are the k-th smallest / largest subset means, k = floor(0.025 * 256) = 6.
    means = sorted(np.mean(c) for r in range(1, 9) for c in itertools.combinations(d, r))
    assert low == pytest.approx(means[5]) and high == pytest.approx(means[-6])


def test_monte_carlo_beyond_sixteen_seeds_agrees_with_full_enumeration():
    rng = np.random.default_rng(3)
    S = 18
    d = rng.normal(0.004, 0.02, S)
    signs = 1 - 2 * ((np.arange(2**S)[:, None] >> np.arange(S)) & 1)  # all 2^18 sign vectors
    totals = signs @ d
    observed = d.sum()
    exact = min(1.0, 2 * min(np.mean(totals >= observed - 1e-12), np.mean(totals <= observed + 1e-12)))
    mc = _sign_flip(d[:, None], "two-sided", 0.95, 40_000, np.random.default_rng(0))
    assert not mc["exact"] and mc["total"] == 40_001
    assert mc["p"][0] == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 40_000) * 2 + 1e-3)


# --- the t interval -----------------------------------------------------------------


def test_paired_t_equals_pingouin_and_scipy():
    rng = np.random.default_rng(4)
    a = 0.70 + rng.normal(0, 0.01, 6)
    b = a + rng.normal(0.01, 0.01, 6)
    table = quiet(seed_t_test, paired_scores(a, b), overall=False)
    row = table.iloc[0]
    reference = pg.ttest(b, a, paired=True)
    assert row["statistic"] == pytest.approx(reference["T"].iloc[0], rel=1e-10)
    assert row["df"] == reference["dof"].iloc[0] == 5
    assert row["p_value"] == pytest.approx(reference["p_val"].iloc[0], rel=1e-10)
    # pingouin rounds its CI to 2 decimals; scipy gives it in full.
    assert [row["ci_low"], row["ci_high"]] == pytest.approx(list(reference["CI95"].iloc[0]), abs=0.005)
    scipy_result = stats.ttest_rel(b, a)
    interval = scipy_result.confidence_interval(0.95)
    assert [row["ci_low"], row["ci_high"]] == pytest.approx([interval.low, interval.high], rel=1e-12)
    assert row["p_value"] == pytest.approx(scipy_result.pvalue, rel=1e-12)


def test_welch_t_for_unpaired_designs_equals_pingouin():
    rng = np.random.default_rng(5)
    a, b = 0.70 + rng.normal(0, 0.01, 5), 0.72 + rng.normal(0, 0.02, 7)
    scores = pd.concat([paired_scores(a, a).query("order == 'none'"), paired_scores(b, b).query("order == 'nli>qa'")])
    scores.loc[scores["order"] == "nli>qa", "seed"] += 100  # different seeds
    table = quiet(seed_t_test, scores, paired=False, overall=False)
    reference = pg.ttest(b, a, correction=True)
    assert table["statistic"].iloc[0] == pytest.approx(reference["T"].iloc[0], rel=1e-10)
    assert table["df"].iloc[0] == pytest.approx(reference["dof"].iloc[0], rel=1e-10)
    assert table["p_value"].iloc[0] == pytest.approx(reference["p_val"].iloc[0], rel=1e-10)
    assert table["n"].iloc[0] == 12


# --- the unpaired permutation test ---------------------------------------------------


def test_unpaired_permutation_test_equals_scipy_and_inverts():
    rng = np.random.default_rng(6)
    a, b = 0.70 + rng.normal(0, 0.01, 4), 0.715 + rng.normal(0, 0.01, 5)
    scores = pd.concat([paired_scores(a, a).query("order == 'none'"), paired_scores(b, b).query("order == 'nli>qa'")])
    scores.loc[scores["order"] == "nli>qa", "seed"] += 100

    def scipy_p(shift):
        return stats.permutation_test(
            (b - shift, a), lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis), permutation_type="independent",
            n_resamples=np.inf, vectorized=True,
        ).pvalue  # fmt: skip

    table = quiet(permutation_test, scores, overall=False, confidence=0.9)
    row = table.iloc[0]
    assert row["p_value"] == pytest.approx(scipy_p(0.0), abs=1e-12)
    assert "126 splits" in row["method"]
    assert scipy_p(row["ci_low"]) > 0.1 and scipy_p(row["ci_high"]) > 0.1
    assert scipy_p(row["ci_low"] - 1e-9) <= 0.1 and scipy_p(row["ci_high"] + 1e-9) <= 0.1


# --- calibration on simulations with run-level noise -------------------------------


def _null_tables(seeds: int, tasks: int = 500, t_test: bool = True):
    # No order effect; the run effect (order x seed) has a different SD in each order,
    # so the per-seed differences are symmetric but not identically spread per order.
    sim = simulate(
        orders=("none", "nli>qa"), seeds=seeds, languages=("fi", "et", "hu"), outcomes=False,
        families={"fi": "Uralic", "et": "Uralic", "hu": "Uralic"}, tasks=[f"t{i}" for i in range(tasks)],
        run_sd={"none": 0.01, "nli>qa": 0.02}, seed_sd=0.01, residual_sd=0.005, n_examples=500, seed=seeds,
    )  # fmt: skip
    truth = sim.truth.expected_contrasts().set_index("task")["difference"]
    flips = quiet(sign_flip_test, sim.scores, overall=False)
    t = quiet(seed_t_test, sim.scores, overall=False) if t_test else None
    return flips, t, truth


def test_type_one_error_and_coverage_at_five_seeds():
    flips, t, truth = _null_tables(5)
    n = len(t)
    se = np.sqrt(0.05 * 0.95 / n)  # 0.0097 at 500 tasks
    # t: exact under normal d_s. Type-I error and coverage within 3 MC SEs of nominal.
    assert abs((t["p_value"] <= 0.05).mean() - 0.05) < 3 * se
    covered = (t["ci_low"] <= truth.loc[t["task"]].to_numpy()) & (truth.loc[t["task"]].to_numpy() <= t["ci_high"])
    assert abs(covered.mean() - 0.95) < 3 * se
    # Sign-flip with 5 seeds: p takes values k/16; none is <= 0.05, and P(p <= 0.125) = 0.125.
    assert (flips["p_value"] <= 0.05).mean() == 0.0
    se_125 = np.sqrt(0.125 * 0.875 / n)
    assert abs((flips["p_value"] <= 0.125 + 1e-12).mean() - 0.125) < 3 * se_125


def test_sign_flip_type_one_error_at_eight_seeds():
    flips, _, _ = _null_tables(8, t_test=False)
    # Attainable two-sided levels are multiples of 2/256; the largest <= 0.05 is 12/256.
    level = 12 / 256
    rate = (flips["p_value"] <= 0.05).mean()
    assert abs(rate - level) < 3 * np.sqrt(level * (1 - level) / len(flips))
    assert np.isfinite(flips["ci_low"]).all()  # 8 seeds: the 95% CI is bounded
