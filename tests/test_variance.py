"""Variance tests against scipy.stats.levene and pingouin.homoscedasticity, SDs against
numpy, SD-ratio CIs against the paired bootstrap, and calibration on simulations with
run-level noise (equal run SDs: type-I error; unequal: power)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats

from seqrob.analysis.bootstrap import paired_bootstrap
from seqrob.analysis.results import COLUMNS
from seqrob.analysis.variance import variance_tests
from seqrob.warehouse.errors import InputError
from seqrob.warehouse.simulate import simulate

FAMILIES = {"fi": "Uralic", "et": "Uralic", "de": "Indo-European"}


def quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


@pytest.fixture(scope="module")
def sim():
    return simulate(seeds=8, languages=tuple(FAMILIES), families=FAMILIES, n_examples=50,
                    run_sd={"none": 0.01, "nli>qa": 0.03, "qa>nli": 0.015}, seed=4)  # fmt: skip


@pytest.fixture(scope="module")
def table(sim):
    return quiet(variance_tests, sim.scores, n_boot=300, seed=0)


def seed_level(scores: pd.DataFrame, family: str | None) -> pd.DataFrame:
    part = scores if family is None else scores[scores["family"] == family]
    return part.groupby(["order", "seed"], as_index=False)["score"].mean()


def test_levene_and_brown_forsythe_equal_scipy_and_pingouin(sim, table):
    assert tuple(table.columns) == COLUMNS
    for family in ("Uralic", "Indo-European", None):
        level = seed_level(sim.scores, family)
        groups = [level.loc[level["order"] == o, "score"].to_numpy() for o in ("none", "nli>qa", "qa>nli")]
        rows = table[(table["test"] == "variance") & (table["term"] == "order")]
        rows = rows[rows["family"].isna()] if family is None else rows[rows["family"] == family]
        median, mean = rows.iloc[0], rows.iloc[1]
        assert "Brown-Forsythe" in median["method"] and "mean-centred" in mean["method"]
        for row, center in ((median, "median"), (mean, "mean")):
            reference = stats.levene(*groups, center=center)
            assert row["statistic"] == pytest.approx(reference.statistic, rel=1e-12)
            assert row["p_value"] == pytest.approx(reference.pvalue, rel=1e-12)
            assert row["df"] == 2 and row["n"] == 24
        # pingouin's "levene" is the median-centred test; center="mean" goes through to scipy.
        pin = pg.homoscedasticity(level, dv="score", group="order", method="levene")
        assert median["statistic"] == pytest.approx(pin["W"].iloc[0], rel=1e-12)
        assert median["p_value"] == pytest.approx(pin["pval"].iloc[0], rel=1e-12)
        pin = pg.homoscedasticity(level, dv="score", group="order", method="levene", center="mean")
        assert mean["statistic"] == pytest.approx(pin["W"].iloc[0], rel=1e-12)


def test_pairwise_rows_give_sd_ratio_with_bootstrap_ci_and_a_two_group_test(sim, table):
    level = seed_level(sim.scores, "Uralic")
    a = level.loc[level["order"] == "nli>qa", "score"].to_numpy()
    b = level.loc[level["order"] == "none", "score"].to_numpy()
    rows = table[(table["test"] == "variance") & (table["term"] == "nli>qa vs none") & (table["family"] == "Uralic")]
    assert len(rows) == 2
    row = rows.iloc[0]
    assert row["estimate"] == pytest.approx(np.std(a, ddof=1) / np.std(b, ddof=1), rel=1e-12)
    assert row["p_value"] == pytest.approx(stats.levene(a, b, center="median").pvalue, rel=1e-12)
    boot = quiet(paired_bootstrap, sim.scores, n_boot=300, seed=0, statistics=("sd", "sd_ratio"), interval="bca")
    reference = boot[(boot["test"] == "sd_ratio") & (boot["term"] == "nli>qa vs none") & (boot["family"] == "Uralic")]
    assert [row["ci_low"], row["ci_high"]] == [reference["ci_low"].iloc[0], reference["ci_high"].iloc[0]]
    sd = table[(table["test"] == "sd") & (table["family"] == "Uralic")].set_index("term")
    assert sd.loc["nli>qa", "estimate"] == pytest.approx(np.std(a, ddof=1), rel=1e-12)
    assert (sd["ci_low"] < sd["estimate"]).all() and (sd["n"] == 8).all()


def test_no_bootstrap_and_bad_options():
    sim = simulate(seeds=4, languages=("fi",), families={"fi": "Uralic"}, outcomes=False)
    table = quiet(variance_tests, sim.scores, n_boot=0, center="median")
    assert table.loc[table["test"] == "variance", "ci_low"].isna().all()
    assert table["method"].str.contains("few seeds").any()
    with pytest.raises(InputError, match="center"):
        variance_tests(sim.scores, center="trimmed")


def _rejections(run_sd, seeds: int, tasks: int) -> float:
    sim = simulate(
        orders=("none", "nli>qa"), seeds=seeds, languages=("fi", "et"), outcomes=False,
        families={"fi": "Uralic", "et": "Uralic"}, tasks=[f"t{i}" for i in range(tasks)],
        run_sd=run_sd, seed_sd=0.0, residual_sd=0.002, base=0.5, n_examples=400, seed=seeds,
    )  # fmt: skip
    table = quiet(variance_tests, sim.scores, n_boot=0, center="median", overall=False)
    p = table.loc[(table["test"] == "variance") & (table["term"] == "order"), "p_value"]
    return float((p <= 0.05).mean())


def test_brown_forsythe_calibration_with_run_level_noise():
    # Equal run SDs (the run effect dominates; no shared seed effect, so the orders'
    # seed-level scores are independent as the test assumes): rejections near 5%.
    rate = _rejections(0.03, 10, 400)
    assert abs(rate - 0.05) < 3 * np.sqrt(0.05 * 0.95 / 400)
    # Run SD four times larger under one order (seed-level SDs about 0.027 and 0.082 once
    # the examples' binomial noise is added): the test sees it most of the time.
    assert _rejections({"none": 0.02, "nli>qa": 0.08}, 10, 120) > 0.6
