"""`seqrob analyze significance` end to end on simulated warehouses with a known truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqrob.analysis.results import COLUMNS
from seqrob.analysis.significance import analyze, significance
from seqrob.cli import main
from seqrob.warehouse import DesignError, Warehouse
from seqrob.warehouse.simulate import simulate

FAMILIES = {
    "en": "Indo-European", "de": "Indo-European", "fr": "Indo-European", "hi": "Indo-European",
    "fi": "Uralic", "et": "Uralic", "hu": "Uralic",
    "ta": "Dravidian", "te": "Dravidian", "ml": "Dravidian",
    "tr": "Turkic", "kk": "Turkic",
}  # fmt: skip


def _warehouse(*, seeds=6, effects=None, outcomes=True, seed=0, orders=("none", "nli>qa", "qa>nli"), **kw):
    sim = simulate(orders=orders, seeds=seeds, languages=tuple(FAMILIES), families=FAMILIES, effects=effects,
                   n_examples=300, outcomes=outcomes, seed=seed, **kw)  # fmt: skip
    wh = Warehouse(":memory:")
    wh.ingest_frames(scores=sim.scores, predictions=sim.predictions)
    return wh, sim


def test_planted_effect_in_two_families_is_found_there_and_only_there():
    effects = {("nli>qa", "Uralic"): 0.05, ("nli>qa", "Dravidian"): -0.05}
    wh, sim = _warehouse(effects=effects, run_sd=0.01, seed=3)
    outcome = analyze(wh, n_boot=1000, seed=1)
    contrasts = outcome.results[(outcome.results["test"] == "contrast") & (outcome.results["term"] == "nli>qa vs none")]
    found = set(contrasts.loc[contrasts["p_adjusted"] < 0.05, "family"])
    assert found == {"Uralic", "Dravidian"}
    truth = sim.truth.expected_contrasts()
    for family in ("Uralic", "Dravidian"):
        row = contrasts[contrasts["family"] == family].iloc[0]
        realised = truth[(truth["family"] == family) & (truth["order"] == "nli>qa")]["realised_difference"].iloc[0]
        assert row["ci_low"] <= realised <= row["ci_high"]
        assert np.sign(row["estimate"]) == np.sign(effects[("nli>qa", family)])
    verdict = " ".join(outcome.verdicts)
    assert "order changes the score in" in verdict and "Uralic" in verdict and "Dravidian" in verdict
    assert "p_holm" in verdict


def test_null_with_run_level_noise_reports_no_order_effect():
    wh, _ = _warehouse(effects=None, run_sd=0.02, seed_sd=0.01, seed=11)
    table = significance(wh, n_boot=1000, seed=2)
    contrasts = table[table["test"] == "contrast"]
    assert (contrasts["p_adjusted"] >= 0.05).all()
    assert "no evidence that order changes the score" in " ".join(table.attrs["verdicts"])


def test_result_vocabulary_multiplicity_and_storage(tmp_path):
    wh, _ = _warehouse(seeds=4)
    outcome = analyze(wh, n_boot=500, correction="bh")
    results = outcome.results
    assert list(results.columns) == list(COLUMNS)
    assert {"order_anova", "order_family_anova", "lrt_order", "lrt_order_family", "contrast", "variance",
            "pitman_morgan", "aso"} <= set(results["test"])
    contrasts = results[results["test"] == "contrast"]
    # every contrast is adjusted, and the method says over which family of tests
    assert contrasts["p_adjusted"].notna().all()
    assert contrasts["method"].str.contains("p_adjusted: bh over 12 contrast tests of target accuracy").all()
    assert (contrasts["p_adjusted"] >= contrasts["p_value"] - 1e-12).all()
    # 4 seeds: the exact sign-flip test is shown beside the t, and the verdict says the design is small
    assert "signflip_contrast" in set(results["test"])
    assert any("4 seeds per order" in v for v in outcome.verdicts)
    stored = wh.con.execute("SELECT count(*) FROM analysis_results WHERE analysis_id = ?", [outcome.analysis_id])
    assert stored.fetchall()[0][0] == len(results)
    path = outcome.to_json(tmp_path / "a.json")
    payload = json.loads(path.read_text())
    assert set(payload) >= {"design", "results", "model"}
    assert set(payload["model"]) >= {"fixed_effects", "variance_components", "log_likelihood"}
    assert set(payload["model"]["variance_components"]) >= {"seed", "run", "language", "residual"}
    assert len(payload["results"]) == len(results)


def test_scores_only_runs_and_says_examples_were_not_resampled():
    wh, _ = _warehouse(outcomes=False, seeds=6)
    outcome = analyze(wh, n_boot=500)
    boot = outcome.results[outcome.results["test"] == "bootstrap_contrast"]
    assert len(boot) and boot["method"].str.contains("seed").all()
    assert not outcome.design["target accuracy"]["per_example_outcomes"]


def test_one_seed_gives_warnings_and_descriptive_rows_not_a_crash():
    wh, _ = _warehouse(seeds=1)
    outcome = analyze(wh, n_boot=500)
    assert len(outcome.results) and outcome.results["estimate"].notna().all()
    assert not (outcome.results["test"] == "contrast").any()
    assert any("cannot be told from seed noise" in w for w in outcome.warnings)
    assert any("cannot tell" in v for v in outcome.verdicts)


def test_one_order_says_there_is_nothing_to_compare():
    wh, _ = _warehouse(orders=("none",))
    outcome = analyze(wh, n_boot=500)
    assert any("nothing to compare" in w for w in outcome.warnings)
    assert outcome.results["estimate"].notna().all()


def test_several_experiments_need_a_choice():
    wh, _ = _warehouse(seeds=3)
    other = simulate(seeds=3, languages=("en", "fi"), families=FAMILIES, experiment="other", n_examples=20)
    wh.ingest_frames(scores=other.scores)
    with pytest.raises(DesignError, match="pass --experiment"):
        analyze(wh, n_boot=500)
    assert analyze(wh, experiment="other", n_boot=500, store=False).results["estimate"].notna().any()


def test_cli_prints_the_verdict_first_and_writes_json(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    sim = simulate(seeds=5, languages=tuple(FAMILIES), families=FAMILIES, n_examples=100,
                   effects={("nli>qa", "Uralic"): 0.06})  # fmt: skip
    with Warehouse(db) as wh:
        wh.ingest_frames(scores=sim.scores, predictions=sim.predictions)
    main(["analyze", "significance", "--db", str(db), "--n-boot", "500", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert out.index("verdict") < out.index("tests")
    assert "Uralic" in out and (tmp_path / "r.json").exists()
    main(["analyze", "power", "--db", str(db), "--effect", "0.02"])
    assert "seeds per order for 80% power to detect 0.02" in capsys.readouterr().out


@pytest.mark.parametrize("seeds", [4, 8])
def test_the_contrast_is_the_paired_t_over_seeds_of_each_familys_means(seeds):
    # The verdicts' contrast tests each family on its own seed-to-seed noise: scipy's
    # paired t on the per-seed differences of the family means, at any number of seeds.
    # The mixed model's contrasts stay, as mixed_contrast, without p-values.
    from scipy import stats

    wh, sim = _warehouse(seeds=seeds, outcomes=False, seed=5)
    results = analyze(wh, n_boot=500, store=False).results
    contrasts = results[results["test"] == "contrast"].set_index(["family", "term"])
    assert len(contrasts) == 12 and (contrasts["df"] == seeds - 1).all()
    means = sim.scores.groupby(["family", "order", "seed"])["score"].mean()
    for (family, term), row in contrasts.iterrows():
        first, second = term.split(" vs ")
        a, b = means.loc[(family, first)], means.loc[(family, second)]
        reference = stats.ttest_rel(a, b)
        assert row["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
        assert row["estimate"] == pytest.approx(float((a - b).mean()), abs=1e-12)
        low, high = reference.confidence_interval(0.95)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=1e-9)
    mixed_rows = results[results["test"] == "mixed_contrast"]
    assert len(mixed_rows) == 12 and mixed_rows["p_value"].isna().all() and mixed_rows["ci_low"].notna().all()
    boot = results[results["test"] == "bootstrap_contrast"]
    if seeds <= 5:
        assert boot["p_value"].isna().all() and boot["method"].str.contains("descriptive").all()


def test_unshared_seeds_make_the_contrast_welchs_t():
    from scipy import stats

    sim = simulate(seeds=12, languages=("fi", "et", "ta"), families=FAMILIES, n_examples=100, outcomes=False,
                   orders=("none", "nli>qa"), seed=4)  # fmt: skip
    scores = sim.scores.copy()
    scores.loc[scores["order"] == "nli>qa", "seed"] += 100  # the orders were run with different seeds
    wh = Warehouse(":memory:")
    wh.ingest_frames(scores=scores)
    results = analyze(wh, n_boot=500, store=False).results
    row = results[(results["test"] == "contrast") & (results["family"] == "Uralic")].iloc[0]
    means = scores[scores["family"] == "Uralic"].groupby(["order", "seed"])["score"].mean()
    reference = stats.ttest_ind(means.loc["nli>qa"], means.loc["none"], equal_var=False)
    assert row["p_value"] == pytest.approx(reference.pvalue, rel=1e-9) and "Welch" in row["method"]
    anova = results[results["test"] == "order_anova"].iloc[0]
    assert "heteroscedastic" in anova["method"] and anova["n"] == 24


def test_more_seeds_expand_the_bootstrap_interval():
    from scipy import stats

    from seqrob.analysis.significance import expanded_confidence

    # Hesterberg's expanded percentile interval: quantiles at Phi(-sqrt(S/(S-1)) t_{S-1, 0.975}).
    assert expanded_confidence(0.95, 10) == pytest.approx(0.98290, abs=5e-5)
    assert expanded_confidence(0.95, 10_000) == pytest.approx(0.95, abs=1e-3)
    wh, _ = _warehouse(seeds=8, outcomes=False, seed=6)
    results = analyze(wh, n_boot=2000, seed=3, store=False).results
    boot = results[(results["test"] == "bootstrap_contrast") & results["method"].str.contains("percentile")]
    assert len(boot) and boot["method"].str.contains("95% CI").all()
    assert boot["method"].str.contains("expanded for 8 seeds").all()
    # The mapped p-value and the interval agree: p < 0.05 exactly when the CI excludes 0.
    excludes = (boot["ci_low"] > 0) | (boot["ci_high"] < 0)
    assert ((boot["p_value"] < 0.05) == excludes).mean() >= 0.95
    # and the mapping is monotone and the identity's counterpart at S -> infinity
    p = np.array([0.001, 0.01, 0.05, 0.2, 1.0])
    mapped = 2 * stats.t.sf(stats.norm.isf(p / 2) * np.sqrt(7 / 8), 7)
    assert np.all(np.diff(mapped) > 0) and np.all(mapped >= p)


def test_identical_scores_everywhere_give_warnings_not_a_crash():
    sim = simulate(seeds=3, languages=("en", "de", "fi", "et"), families=FAMILIES, n_examples=20, outcomes=False)
    flat = sim.scores.assign(score=0.5)
    wh = Warehouse(":memory:")
    wh.ingest_frames(scores=flat)
    outcome = analyze(wh, n_boot=200, store=False)
    assert any("no variation left" in w or "not fitted" in w for w in outcome.warnings)
    assert "no evidence that order changes the score" in " ".join(outcome.verdicts)


def test_json_keeps_tiny_p_values_at_full_precision(tmp_path):
    # pandas' to_json writes 10 significant digits by default: 3e-14 became 0.0.
    wh, _ = _warehouse(seeds=12, effects={("nli>qa", "Uralic"): 0.2}, run_sd=0.002, seed_sd=0.001, outcomes=False)
    outcome = analyze(wh, n_boot=200, store=False)
    payload = json.loads(outcome.to_json(tmp_path / "a.json").read_text())
    written = [r["p_value"] for r in payload["results"]]
    tiny = [p for p in outcome.results["p_value"] if 0 < p < 1e-10]
    assert tiny and all(p in written for p in tiny)  # exactly, not rounded to 0.0
    assert all(p is None or p > 0 or p == 0 for p in written)


def test_cautions_say_when_the_runs_were_not_calibrated_and_when_a_test_is_off_target(tmp_path, capsys):
    from seqrob.analysis.calibrate import calibrate_warehouse

    db = tmp_path / "w.duckdb"
    sim = simulate(seeds=4, languages=tuple(FAMILIES), families=FAMILIES, n_examples=100, outcomes=False)
    with Warehouse(db) as wh:
        wh.ingest_frames(scores=sim.scores)
    main(["analyze", "significance", "--db", str(db), "--n-boot", "200"])
    out = capsys.readouterr().out
    assert "can these verdicts be trusted?" in out and "seqrob analyze calibrate --db" in out
    with Warehouse(db) as wh:
        table, _ = calibrate_warehouse(wh, n=12)
        # An off-target row in the stored calibration reaches the cautions.
        outcome = analyze(wh, n_boot=200, store=False)
    assert not any("not yet checked" in c for c in outcome.cautions)
    assert all("may not hold" not in c or "on these runs" in c for c in outcome.cautions)
