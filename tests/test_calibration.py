"""The calibration suite, fast: the verdicts' tests hold their level on truths they do not assume.

The full table (3-20 seeds, 2 and 4 orders, few and many families, five noise
structures) is ``python benchmarks/calibration.py``; here a small number of simulations
checks the verdict tests (per-family contrasts, the order / order x family tests over
seeds, the permutation test of spread) under run x family noise with unequal family SDs
and under outlier runs, against binomial bands that allow for the Monte Carlo error, and
the table's shape, the calibration on a warehouse's own runs and the verdict logic.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from seqrob.analysis.calibrate import (
    NOISES,
    TARGETS,
    VERDICT_TESTS,
    calibrate,
    calibrate_data,
    distinct_relabellings,
    markdown,
    relabel_within_seed,
    summary_markdown,
)
from seqrob.cli import main
from seqrob.warehouse import Warehouse
from seqrob.warehouse.errors import InputError
from seqrob.warehouse.simulate import simulate

N_SIM = 60


def _band(rate: float, n: int, level: float = 0.99) -> tuple[float, float]:
    """Binomial ``level`` band of an observed share of ``n`` trials when the truth is ``rate``."""
    return stats.binom.ppf((1 - level) / 2, n, rate) / n, stats.binom.isf((1 - level) / 2, n, rate) / n


@pytest.fixture(scope="module")
def table():
    # 5 seeds x 3 orders x 10 languages in 3 families, a run's luck differing between
    # families and the families' run SDs 4x apart: the noise the mixed model does not assume.
    return calibrate(seeds=(5,), orders=(3,), families=("few",), noises=("run_x_family",), n_sim=N_SIM,
                     procedures=("verdicts",), seed=1)  # fmt: skip


def _rate(table, test: str, measure: str) -> float:
    row = table[(table["test"] == test) & (table["measure"] == measure)]
    assert len(row) == 1, (test, measure)
    return float(row["estimate"].iloc[0])


def test_order_tests_hold_their_level_under_run_x_family_noise(table):
    low, high = _band(0.05, N_SIM)
    assert low <= _rate(table, "order_anova", "type_I") <= high
    assert low <= _rate(table, "order_family_anova", "type_I") <= high
    assert _rate(table, "order_anova + order_family_anova (Holm family)", "family_wise") <= high


def test_contrasts_hold_level_coverage_and_family_wise_error(table):
    # Nine contrasts per data set (3 pairs x 3 families), correlated: the band is for N_SIM
    # trials (conservative for their mean).
    low, high = _band(0.05, N_SIM)
    assert low <= _rate(table, "contrast", "type_I") <= high
    assert _rate(table, "contrast (Holm family)", "family_wise") <= high
    low, high = _band(0.95, N_SIM)
    assert low <= _rate(table, "contrast", "coverage") <= high


def test_variance_test_holds_its_level_with_outlier_runs():
    # Heavy-tailed run effects and 5% failed runs, 10 seeds shared by 2 orders: the
    # permutation test of spread keeps its level; Pitman-Morgan (normal theory) is reported
    # for reference only.
    n_sim = 80
    small = calibrate(seeds=(10,), orders=(2,), families=("few",), noises=("outliers",), n_sim=n_sim,
                      procedures=("variance",), seed=2)  # fmt: skip
    low, high = _band(0.05, n_sim)
    assert _rate(small, "variance (permutation)", "type_I") <= high
    assert _rate(small, "variance (permutation) (Holm family)", "family_wise") <= high
    assert _rate(small, "sd_ratio (permutation CI)", "coverage") >= _band(0.95, n_sim)[0]
    assert "pitman_morgan" in set(small["test"])


def test_table_columns_and_monte_carlo_error(table):
    assert list(table.columns) == [
        "seeds", "orders", "families", "noise", "test", "measure", "estimate", "mc_se", "n_sim", "target_low",
        "target_high", "status", "note", "seconds",
    ]  # fmt: skip
    assert {"contrast", "order_anova", "order_family_anova"} <= set(table["test"])
    assert (table["n_sim"] == N_SIM).all() and (table["noise"] == "run_x_family").all()
    single = table[table["test"] == "order_anova"].iloc[0]
    # One 0/1 outcome per data set: the MC SE is the binomial one.
    p = single["estimate"]
    assert single["mc_se"] == pytest.approx(math.sqrt(p * (1 - p) / (N_SIM - 1)) if p > 0 else 0.0, rel=1e-9)
    assert TARGETS["type_I"] == (0.04, 0.06) and TARGETS["coverage"] == (0.93, 0.97)
    assert TARGETS["family_wise"] == (0.0, 0.05)
    text = markdown(table)
    assert text.startswith("| seeds | orders | families | noise | test |") and "order_anova" in text
    short = summary_markdown(table).splitlines()
    assert short[0] == "| test | measure | noise | target | 5 seeds |"


def test_few_seed_procedures_are_labelled_at_three_seeds():
    # At 3 seeds an exact permutation test over 2 orders cannot reject at 5% (smallest p =
    # 0.25), nor the sign-flip test; the bootstrap over seeds has no p-values: the table
    # says so, not "missed".
    small = calibrate(seeds=(3,), orders=(2,), families=("few",), noises=("model",), n_sim=3,
                      procedures=("bootstrap", "few_seeds", "variance"), fast=True)  # fmt: skip
    status = small.set_index(["test", "measure"])["status"]
    assert status[("signflip_contrast", "type_I")] == "refuses"
    assert status[("variance (permutation)", "type_I")] == "refuses"
    assert status[("bootstrap_contrast (percentile)", "coverage")] == "not trusted"
    assert ("bootstrap_contrast (percentile)", "type_I") not in status.index  # no p-values at 3 seeds


def test_user_errors_are_named():
    with pytest.raises(InputError, match="seeds"):
        calibrate(seeds=(2,), n_sim=2)
    with pytest.raises(InputError, match="procedures"):
        calibrate(seeds=(3,), n_sim=2, procedures=("magic",))
    with pytest.raises(InputError, match="family set"):
        calibrate(seeds=(3,), n_sim=2, families=("some",))
    with pytest.raises(InputError, match="noise"):
        calibrate(seeds=(3,), n_sim=2, noises=("loud",))
    assert NOISES[0] == "model" and "variance (permutation)" in VERDICT_TESTS


def test_cli_prints_the_table_and_writes_csv(tmp_path, capsys):
    out = tmp_path / "calibration.csv"
    main(["analyze", "calibrate", "--seeds", "3", "--orders", "2", "--families", "few", "--noises", "ceiling",
          "--n-sim", "2", "--fast", "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert "calibration at alpha = 0.05" in printed  # the table itself is folded to the terminal's width
    written = pd.read_csv(out)
    assert {"contrast", "order_anova", "variance (permutation)"} <= set(written["test"])
    assert set(written["noise"]) == {"ceiling"}


def test_the_calibrated_rows_are_the_ones_analyze_reports():
    # The calibration runs significance._tests on the simulated frames; analyze runs the same
    # function on the frames it reads back from the warehouse: the rows must be identical.
    from seqrob.analysis.calibrate import _Design, _rows, _simulate
    from seqrob.analysis.significance import analyze

    sim = _simulate(_Design(4, 2, "few", "outliers"), planted=True, seed=3)
    wh = Warehouse(":memory:")
    wh.ingest_frames(scores=sim.scores)
    reported = analyze(wh, n_boot=500, seed=0, store=False).results
    ours = _rows(sim.scores, alpha=0.05, n_boot=500, aso_boot=1000, seed=0,
                 include=("verdicts", "mixed", "bootstrap", "few_seeds"))  # fmt: skip
    for test in ("contrast", "order_anova", "order_family_anova", "lrt_order", "bootstrap_contrast"):
        a = reported[reported["test"] == test].sort_values(["family", "term", "method"], na_position="first")
        b = ours[ours["test"] == test].sort_values(["family", "term", "method"], na_position="first")
        assert len(a) == len(b) > 0, test
        np.testing.assert_allclose(a[["estimate", "ci_low", "ci_high", "p_value"]].to_numpy(dtype=float),
                                   b[["estimate", "ci_low", "ci_high", "p_value"]].to_numpy(dtype=float),
                                   rtol=1e-9, equal_nan=True)  # fmt: skip


# The tests that verdicts read, with the measures the shipped table holds for them.
PRIMARY = (
    ("contrast", "type_I"),
    ("contrast", "coverage"),
    ("order_anova", "type_I"),
    ("order_family_anova", "type_I"),
    ("variance (permutation)", "type_I"),
    ("sd_ratio (permutation CI)", "coverage"),
    ("contrast (Holm family)", "family_wise"),
    ("order_anova + order_family_anova (Holm family)", "family_wise"),
    ("variance (permutation) (Holm family)", "family_wise"),
)


def test_shipped_calibration_table_covers_the_grid_and_every_noise():
    # Every verdict test in every design is on target, or conservative (it cannot make
    # false verdicts beyond alpha; marked in the table and the report), or refuses (an
    # exact test that cannot reach alpha with so few seeds, and says so). None is liberal.
    from seqrob.report.sources import load_calibration

    shipped = load_calibration()
    assert shipped is not None, "ship the table of benchmarks/calibration.py as analysis/data/calibration.csv"
    grid = shipped[["seeds", "orders", "families", "noise"]].drop_duplicates()
    assert set(grid["noise"]) == set(NOISES) and set(grid["seeds"]) == {3, 5, 10, 20} and len(grid) == 80
    allowed = {"met", "met within MC error", "missed (conservative)", "refuses"}
    for test, measure in PRIMARY:
        rows = shipped[(shipped["test"] == test) & (shipped["measure"] == measure)]
        assert len(rows) == 80, (test, measure)
        assert set(rows["status"]) <= allowed, rows.loc[~rows["status"].isin(allowed), ["seeds", "noise", "estimate"]]
    contrasts = shipped[shipped["test"] == "contrast"]
    assert contrasts["status"].isin(["met", "met within MC error"]).mean() > 0.95
    assert not shipped["status"].str.contains("liberal").any() or shipped.loc[
        shipped["status"].str.contains("liberal"), "test"].map(lambda t: t not in dict(PRIMARY)).all()  # fmt: skip


def test_no_rejection_in_a_few_data_sets_is_not_called_a_miss():
    from seqrob.analysis.calibrate import _Design, _summarise

    design = _Design(10, 2, "few")
    # 10 data sets, none rejecting: consistent with a 5% test (0.95^10 = 0.60).
    rows = _summarise(design, [{("order_anova", "type_I"): 0.0}] * 10, 0.05, 1.0)
    assert rows[0]["status"] == "met within MC error"
    # 250 data sets, none rejecting: a conservative test.
    rows = _summarise(design, [{("order_anova", "type_I"): 0.0}] * 250, 0.05, 1.0)
    assert rows[0]["status"] == "missed (conservative)"


# --- calibration on the user's own runs ----------------------------------------------------


def _paired_scores(seeds: int, orders=("none", "nli>qa", "qa>nli")) -> pd.DataFrame:
    families = {"fi": "Uralic", "et": "Uralic", "ta": "Dravidian", "te": "Dravidian"}
    sim = simulate(orders=orders, seeds=seeds, languages=tuple(families), families=families, n_examples=50,
                   outcomes=False, seed=7, run_family_sd=0.02)  # fmt: skip
    return sim.scores


def test_relabelling_keeps_each_seeds_runs_and_each_runs_rows_together():
    scores = _paired_scores(4)
    relabelled = relabel_within_seed(scores, np.random.default_rng(0))
    assert relabelled.drop(columns="order").equals(scores.drop(columns="order"))
    runs = relabelled.groupby("run_id")["order"].nunique()
    assert (runs == 1).all()  # a run's rows move together
    per_seed = relabelled.drop_duplicates("run_id").groupby("seed")["order"].apply(sorted)
    assert all(orders == ["nli>qa", "none", "qa>nli"] for orders in per_seed)  # every seed keeps one run per order
    assert distinct_relabellings(scores) == 6**4 // 6  # up to renaming the orders
    # Orders run with different seeds: runs are exchanged among all runs.
    unpaired = scores.assign(seed=scores["seed"] + 100 * scores["order"].map({"none": 0, "nli>qa": 1, "qa>nli": 2}))
    assert distinct_relabellings(unpaired) == math.factorial(12) // (math.factorial(4) ** 3) // 6


def test_data_calibration_reports_rates_or_says_there_are_too_few_relabellings():
    table = calibrate_data(_paired_scores(4), n=20, seed=1)
    rates = table.set_index(["test", "measure"])
    assert ("contrast", "type_I") in rates.index and ("order_anova", "type_I") in rates.index
    assert (rates["n_sim"] == 20).all() and rates["estimate"].between(0, 1).all()
    few = calibrate_data(_paired_scores(3, orders=("none", "nli>qa")), n=20)
    assert few["status"].tolist() == ["too few relabellings"] and "4 distinct" in few["note"].iloc[0]


def test_cli_calibrates_a_warehouse_and_stores_the_analysis(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    with Warehouse(db) as wh:
        wh.ingest_frames(scores=_paired_scores(4))
    main(["analyze", "calibrate", "--db", str(db), "--n", "12"])
    printed = capsys.readouterr().out
    assert "orders relabelled" in printed and "stored as analysis" in printed
    with Warehouse(db, read_only=True) as wh:
        kinds = wh.con.execute("SELECT kind FROM analyses").fetchall()
    assert ("calibration",) in kinds
    with pytest.raises(SystemExit):
        main(["analyze", "calibrate", "--db", str(tmp_path / "nope.duckdb"), "--n", "12"])
    assert not (tmp_path / "nope.duckdb").exists()
