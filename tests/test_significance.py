"""`seqrob analyze significance` end to end on simulated warehouses with a known truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from seqrob.analysis.results import COLUMNS
from seqrob.analysis.significance import analyze
from seqrob.analysis.significance import Significance, power_table
from seqrob.cli import main
from seqrob.report.findings import statements
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
    findings = outcome.findings
    pair = findings[(findings["question"] == "score") & (findings["comparison"] == "nli>qa vs none")]
    assert set(pair.loc[pair["status"] == "found", "family"]) == {"Uralic", "Dravidian"}
    assert (pair.loc[pair["status"] == "found", "seeds_needed"].isna()).all()  # nothing to size where found
    verdict = " ".join(statements(findings))
    assert "in Uralic, nli>qa scores" in verdict and "in Dravidian, nli>qa scores" in verdict
    assert "Holm-adjusted p" in verdict


def test_null_with_run_level_noise_reports_no_order_effect():
    wh, _ = _warehouse(effects=None, run_sd=0.02, seed_sd=0.01, seed=11)
    outcome = analyze(wh, n_boot=1000, seed=2)
    contrasts = outcome.results[outcome.results["test"] == "contrast"]
    assert (contrasts["p_adjusted"] >= 0.05).all()
    assert "found" not in set(outcome.findings["status"])
    assert "no evidence that order changes the score in any family" in " ".join(statements(outcome.findings))


def test_result_vocabulary_multiplicity_and_storage(tmp_path):
    wh, _ = _warehouse(seeds=4)
    outcome = analyze(wh, n_boot=500, correction="bh")
    results = outcome.results
    assert list(results.columns) == list(COLUMNS)
    assert {"order_anova", "order_family_anova", "lrt_order", "lrt_order_family", "contrast", "variance",
            "pitman_morgan", "aso"} <= set(results["test"])
    contrasts = results[results["test"] == "contrast"]
    # every contrast is adjusted, and columns say how: the method, the family, its size
    assert contrasts["p_adjusted"].notna().all()
    assert (contrasts["correction"] == "bh").all() and (contrasts["correction_family"] == "contrast").all()
    assert (contrasts["n_corrected"] == 12).all()
    bh = multipletests(contrasts["p_value"], method="fdr_bh")[1]
    assert contrasts["p_adjusted"].to_numpy() == pytest.approx(bh, rel=1e-12)
    assert (contrasts["interval"] == "paired t over seeds").all() and (contrasts["confidence"] == 0.95).all()
    # 4 seeds: the exact sign-flip test is shown beside the t, and a warning says the design is small
    assert "signflip_contrast" in set(results["test"])
    assert any("4 seeds per order" in w for w in outcome.warnings)
    stored = wh.load_analysis(outcome.analysis_id)
    assert len(stored["results"]) == len(results) and len(stored["findings"]) == len(outcome.findings)
    again = Significance.from_stored(stored)
    assert again.findings.equals(outcome.findings) and again.options == outcome.options
    path = outcome.to_json(tmp_path / "a.json")
    payload = json.loads(path.read_text())
    assert set(payload) >= {"design", "results", "findings", "power", "models", "parameters"}
    model = payload["models"][0]
    assert set(model) >= {"fixed_effects", "variance_components", "log_likelihood"}
    assert set(model["variance_components"]) >= {"seed", "run", "language", "residual"}
    assert len(payload["results"]) == len(results) and len(payload["findings"]) == len(outcome.findings)


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
    assert set(outcome.findings["status"]) == {"cannot tell"}
    assert statements(outcome.findings)[0].startswith("target accuracy: cannot tell whether order matters")


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
    assert out.index("no evidence") < out.index("difference")  # the sentences, then the table
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
    assert row["p_value"] == pytest.approx(reference.pvalue, rel=1e-9) and row["variant"] == "Welch"
    assert row["interval"] == "Welch t over seeds"
    anova = results[results["test"] == "order_anova"].iloc[0]
    assert "heteroscedastic" in anova["variant"] and anova["n"] == 24


def test_more_seeds_expand_the_bootstrap_interval():

    from seqrob.analysis.procedures import expanded_confidence

    # Hesterberg's expanded percentile interval: quantiles at Phi(-sqrt(S/(S-1)) t_{S-1, 0.975}).
    assert expanded_confidence(0.95, 10) == pytest.approx(0.98290, abs=5e-5)
    assert expanded_confidence(0.95, 10_000) == pytest.approx(0.95, abs=1e-3)
    wh, _ = _warehouse(seeds=8, outcomes=False, seed=6)
    results = analyze(wh, n_boot=2000, seed=3, store=False).results
    boot = results[(results["test"] == "bootstrap_contrast") & (results["variant"] == "percentile")]
    assert len(boot) and (boot["confidence"] == 0.95).all()
    assert (boot["interval"] == "expanded percentile bootstrap").all()
    # The mapped p-value and the interval agree: p < 0.05 exactly when the CI excludes 0.
    excludes = (boot["ci_low"] > 0) | (boot["ci_high"] < 0)
    assert ((boot["p_value"] < 0.05) == excludes).mean() >= 0.95
    # seqrob's p mapping is the inverse of the expansion: the bootstrap p at the expanded
    # level's edge maps to exactly alpha, and the mapping is monotone and never shrinks p.
    from seqrob.analysis.procedures import _expanded_p

    edge = 1 - expanded_confidence(0.95, 8)
    assert _expanded_p(np.array([edge]), 8)[0] == pytest.approx(0.05, rel=1e-9)
    p = np.array([0.001, 0.01, 0.05, 0.2, 1.0])
    mapped = _expanded_p(p, 8)
    assert np.all(np.diff(mapped) > 0) and np.all(mapped >= p)


def test_identical_scores_everywhere_give_warnings_not_a_crash():
    sim = simulate(seeds=3, languages=("en", "de", "fi", "et"), families=FAMILIES, n_examples=20, outcomes=False)
    flat = sim.scores.assign(score=0.5)
    wh = Warehouse(":memory:")
    wh.ingest_frames(scores=flat)
    outcome = analyze(wh, n_boot=200, store=False)
    assert any("no variation left" in w or "not fitted" in w for w in outcome.warnings)
    verdict = " ".join(statements(outcome.findings))
    assert "no evidence that order changes the score" in verdict or "cannot tell whether order changes" in verdict


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


def test_two_seeds_run_every_test_and_say_what_they_cannot_support():
    wh, _ = _warehouse(seeds=2, outcomes=False, seed=8)
    outcome = analyze(wh, n_boot=200, store=False)
    contrasts = outcome.results[outcome.results["test"] == "contrast"]
    assert len(contrasts) == 12 and (contrasts["df"] == 1).all()
    assert any("2 seeds per order: every test runs" in w for w in outcome.warnings)
    assert not any("only descriptive" in w or "only mean scores" in w for w in outcome.warnings)
    spread = outcome.findings[outcome.findings["question"] == "spread"]
    assert len(spread) and (spread["status"] == "cannot tell").all()  # 2 seeds: no relabelling can reach alpha
    assert spread["reason"].str.contains("smallest possible p").all()


def test_two_orders_without_none_compare_their_pair_and_say_so(capsys, tmp_path):
    sim = simulate(orders=("nli>qa", "qa>nli"), seeds=6, languages=tuple(FAMILIES), families=FAMILIES,
                   n_examples=400, outcomes=False, effects={("qa>nli", "Uralic"): 0.15}, seed=2)  # fmt: skip
    db = tmp_path / "w.duckdb"
    with Warehouse(db) as wh:
        wh.ingest_frames(scores=sim.scores)
        outcome = analyze(wh, n_boot=200)
    score = outcome.findings[(outcome.findings["question"] == "score") & outcome.findings["family"].notna()]
    assert set(score["comparison"]) == {"qa>nli vs nli>qa"} and len(score) == 4  # one per family
    assert score.loc[score["family"] == "Uralic", "status"].item() == "found"
    assert any("no order 'none' is stored, so every pair of orders is compared" in w for w in outcome.warnings)
    assert not any("baseline" in w and "not in the data" in w for w in outcome.warnings)  # the model fits
    assert outcome.models[0].get("converged") is not None
    main(["analyze", "significance", "--db", str(db), "--n-boot", "200"])
    out = capsys.readouterr().out
    assert "in Uralic, qa>nli scores" in out and "found" in out


def test_power_keeps_two_stored_methods_apart():
    scores = []
    for method, run_sd in (("finetune", 0.002), ("prompt", 0.05)):
        sim = simulate(seeds=4, languages=("fi", "et", "hu", "ta", "te"), families=FAMILIES, n_examples=5000,
                       outcomes=False, run_sd=run_sd, seed=7)  # fmt: skip
        scores.append(sim.scores.assign(method=method, run_id=sim.scores["run_id"] + "-" + method))
    wh = Warehouse(":memory:")
    wh.ingest_frames(scores=pd.concat(scores, ignore_index=True))
    table = power_table(wh, effect=0.02)
    assert set(table["method"]) == {"finetune", "prompt"}
    noisy = table.set_index(["method", "family"])["sd_difference"]
    assert (noisy.loc["prompt"] > noisy.loc["finetune"]).all()  # each method sized from its own noise
    outcome = analyze(wh, n_boot=200, store=False)
    assert set(outcome.findings["label"]) == {"target accuracy (finetune)", "target accuracy (prompt)",
                                              "target accuracy: methods"}  # fmt: skip
    assert set(outcome.power["label"]) == set(outcome.findings["label"])
    assert set(outcome.results["label"]) == set(outcome.findings["label"])  # every row names its group
