"""The paired hierarchical bootstrap against independent references.

References: the closed-form bootstrap SE of a mean over S seeds; scipy.stats.bootstrap
(percentile and BCa) on the very same resamples; outcomes built by hand (pairing, F1 from
summed counts); and simulations with run-level noise from seqrob.warehouse.simulate
(coverage, including the undercoverage at 3 seeds that motivates permutation.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from seqrob.analysis.bootstrap import FewSeedsWarning, _replicates, _resampled_scores, paired_bootstrap
from seqrob.analysis.layout import build_groups
from seqrob.analysis.outcomes import _Outcomes
from seqrob.analysis.results import COLUMNS
from seqrob.warehouse.errors import DesignError, InputError
from seqrob.warehouse.simulate import simulate


def long_scores(values: np.ndarray, orders=None, languages=None, families=None) -> pd.DataFrame:
    """values (O, S, L) -> long scores, seeds 1..S, run ids 'r-<order>-<seed>'."""
    O, S, L = values.shape
    orders = orders or [f"o{i}" for i in range(O)]
    languages = languages or [f"l{i}" for i in range(L)]
    families = families or {code: "F" for code in languages}
    rows = []
    for o in range(O):
        for s in range(S):
            for l in range(L):
                rows.append(
                    {
                        "run_id": f"r-{orders[o]}-{s + 1}",
                        "order": orders[o],
                        "seed": s + 1,
                        "task": "t",
                        "language": languages[l],
                        "family": families[languages[l]],
                        "metric": "accuracy",
                        "score": values[o, s, l],
                    }  # fmt: skip
                )
    return pd.DataFrame(rows)


def quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def group_of(scores, **kwargs):
    return build_groups(scores, **{"overall": False, **kwargs})[0]


# --- closed forms -------------------------------------------------------------------


def test_seed_bootstrap_se_matches_the_closed_form():
    # Only seeds resampled: Var*(mean*) = (S - 1) / S * sd^2 / S exactly, for means and
    # for paired differences (the same seeds are drawn for every order).
    rng = np.random.default_rng(0)
    S = 8
    values = 0.7 + rng.normal(0, 0.02, (3, S, 2))
    group = group_of(long_scores(values))
    mean, _ = _replicates(group, None, True, 40_000, np.random.default_rng(1))
    level = values.mean(axis=2)  # (O, S) seed-level scores
    closed = np.sqrt((S - 1) / S) * level.std(axis=1, ddof=1) / np.sqrt(S)
    observed = mean[:, :, 0].std(axis=0)
    # SE of a bootstrap SD from B replicates ~ SD / sqrt(2B): 0.35% here; allow 2%.
    np.testing.assert_allclose(observed, closed, rtol=0.02)
    np.testing.assert_allclose(mean[:, :, 0].mean(axis=0), level.mean(axis=1), atol=4 * closed.max() / np.sqrt(40_000))
    d = level[1] - level[0]
    closed_d = np.sqrt((S - 1) / S) * d.std(ddof=1) / np.sqrt(S)
    np.testing.assert_allclose((mean[:, 1, 0] - mean[:, 0, 0]).std(), closed_d, rtol=0.02)


def test_constant_shift_between_orders_gives_a_degenerate_contrast():
    # Paired over seeds: order b = order a + 0.03 in every run, so every replicate's
    # difference is 0.03 exactly. An unpaired bootstrap would give a wide interval.
    rng = np.random.default_rng(2)
    a = 0.7 + rng.normal(0, 0.02, (1, 6, 3))
    table = quiet(paired_bootstrap, long_scores(np.concatenate([a, a + 0.03])), n_boot=500, seed=0,
                  statistics=("contrast",), overall=False)  # fmt: skip
    assert len(table) == 2  # percentile and BCa
    np.testing.assert_allclose(table[["estimate", "ci_low", "ci_high"]].to_numpy(dtype=float), 0.03, atol=1e-12)


# --- scipy.stats.bootstrap on the same resamples ----------------------------------


@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_mean_and_sd_intervals_equal_scipy_on_identical_resamples(method):
    # One order, one language, seeds only: the bootstrap is scipy's one-sample bootstrap,
    # and the seed draws are rng.integers(0, S, (B, S)) as scipy draws them.
    # Continuous, skewed scores: on a 0.01 grid two resamples can have the same SD as the
    # data up to rounding, and a 1e-17 difference would move BCa's z0 by one tie.
    x = 0.68 + np.random.default_rng(11).gamma(1.5, 0.03, 12)
    scores = long_scores(x[None, :, None])
    B = 3_000
    ours = quiet(paired_bootstrap, scores, n_boot=B, seed=123, interval=method.lower(), overall=False,
                 statistics=("bootstrap_mean", "sd"))  # fmt: skip
    for test, statistic in (("bootstrap_mean", np.mean), ("sd", lambda v, axis: np.std(v, ddof=1, axis=axis))):
        reference = stats.bootstrap(
            (x,), statistic, n_resamples=B, method=method, rng=np.random.default_rng(123), vectorized=True
        ).confidence_interval
        row = ours[ours["test"] == test].iloc[0]
        assert row["ci_low"] == pytest.approx(reference.low, abs=1e-12)
        assert row["ci_high"] == pytest.approx(reference.high, abs=1e-12)


def test_paired_contrast_bca_equals_scipy_paired_bootstrap():
    # Two orders on the same 15 seeds: scipy's paired bootstrap resamples the seed index
    # once per replicate and jackknifes the pairs, as the paired bootstrap does. (With
    # 15 seeds no replicate permutes the seeds; one that did would tie the estimate, which
    # the paired bootstrap counts as a tie and scipy as below or above by rounding.)
    rng = np.random.default_rng(7)
    x = 0.70 + rng.gamma(2.0, 0.01, 15)
    y = x + rng.normal(0.01, 0.01, 15)
    scores = long_scores(np.stack([x, y])[:, :, None])
    ours = quiet(
        paired_bootstrap, scores, n_boot=2_000, seed=5, interval="bca", statistics=("contrast",), overall=False
    )
    reference = stats.bootstrap(
        (y, x), lambda b, a, axis: b.mean(axis=axis) - a.mean(axis=axis), paired=True, n_resamples=2_000,
        method="BCa", rng=np.random.default_rng(5), vectorized=True,
    ).confidence_interval  # fmt: skip
    assert ours["ci_low"].iloc[0] == pytest.approx(reference.low, abs=1e-12)
    assert ours["ci_high"].iloc[0] == pytest.approx(reference.high, abs=1e-12)


# --- outcomes: pairing over examples, F1 from summed counts ------------------------


def _predictions_for(scores: pd.DataFrame, outcomes: dict) -> pd.DataFrame:
    rows = []
    for run_id, language, columns in outcomes.values():
        n = len(next(iter(columns.values())))
        for i in range(n):
            rows.append({"run_id": run_id, "task": "t", "language": language, "example_id": f"e{i}",
                         **{k: v[i] for k, v in columns.items()}})  # fmt: skip
    return pd.DataFrame(rows)


def test_identical_outcomes_resample_identically_in_every_order():
    # Runs of both orders answer the same examples the same way: with example weights
    # shared by every run (paired), each replicate's difference is exactly 0.
    rng = np.random.default_rng(3)
    S, n = 4, 50
    correct = {s: (rng.random(n) < 0.7).astype(int) for s in range(1, S + 1)}
    values = np.array([[[correct[s].mean()] for s in range(1, S + 1)]] * 2)
    scores = long_scores(values, orders=["a", "b"])
    outcomes = {}
    for order in ("a", "b"):
        for s in range(1, S + 1):
            outcomes[(order, s)] = (f"r-{order}-{s}", "l0", {"correct": correct[s]})
    predictions = _predictions_for(scores, outcomes)
    table = quiet(paired_bootstrap, scores, predictions, n_boot=300, seed=1, statistics=("contrast", "bootstrap_mean"),
                  overall=False, interval="percentile")  # fmt: skip
    contrast = table[table["test"] == "contrast"].iloc[0]
    assert contrast[["ci_low", "ci_high"]].tolist() == [0.0, 0.0]
    assert "examples within language (50 per language, correct)" in contrast["method"]
    mean = table[table["test"] == "bootstrap_mean"].iloc[0]
    assert mean["ci_high"] > mean["ci_low"]


def test_f1_is_computed_from_summed_counts_in_each_resample():
    rng = np.random.default_rng(4)
    n, R = 40, 2
    tp = rng.integers(0, 4, (n, R)).astype(float)
    fp = rng.integers(0, 3, (n, R)).astype(float)
    fn = rng.integers(0, 3, (n, R)).astype(float)
    outcomes = _Outcomes(
        kind="f1", arrays=[np.concatenate([tp, fp, fn], axis=1).astype(np.float32)], scale=1.0,
        observed=np.zeros((R, 1)), n_examples=[n],
    )  # fmt: skip
    rows = 25
    got = _resampled_scores(outcomes, rows, R, [np.random.default_rng(9)], None)[:, :, 0]
    draws = np.random.default_rng(9).integers(0, n, (rows, n), dtype=np.uint16)
    for b in range(rows):
        counts = np.bincount(draws[b], minlength=n)
        sums = [counts @ m for m in (tp, fp, fn)]
        expected = 2 * sums[0] / (2 * sums[0] + sums[1] + sums[2])
        np.testing.assert_allclose(got[b], expected, rtol=1e-6)
        per_example = np.nanmean(np.repeat(2 * tp / (2 * tp + fp + fn), counts, axis=0), axis=0)
        assert not np.allclose(expected, per_example)  # the mean of per-example F1 is another thing


def test_f1_predictions_reproduce_the_scores_and_drive_the_bootstrap():
    rng = np.random.default_rng(5)
    S, n = 3, 30
    outcomes, values = {}, np.zeros((2, S, 1))
    for o, order in enumerate(("a", "b")):
        for s in range(S):
            tp, fp, fn = rng.integers(0, 5, n), rng.integers(0, 3, n), rng.integers(0, 3, n)
            values[o, s, 0] = 100 * 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum())  # percent
            outcomes[(order, s)] = (f"r-{order}-{s + 1}", "l0", {"tp": tp, "fp": fp, "fn": fn})
    scores = long_scores(values, orders=["a", "b"])
    predictions = _predictions_for(scores, outcomes)
    table = quiet(paired_bootstrap, scores, predictions, n_boot=200, seed=0, statistics=("bootstrap_mean",),
                  overall=False, interval="percentile")  # fmt: skip
    np.testing.assert_allclose(table["estimate"], values.mean(axis=(1, 2)))
    assert table["method"].str.contains("f1").all()


def test_predictions_that_do_not_reproduce_the_scores_fall_back_to_seeds():
    values = np.full((2, 3, 1), 0.5)
    values[1] += 0.1
    scores = long_scores(values, orders=["a", "b"])
    outcomes = {(o, s): (f"r-{o}-{s}", "l0", {"correct": np.array([1, 1, 1, 0])}) for o in "ab" for s in (1, 2, 3)}
    predictions = _predictions_for(scores, outcomes)  # accuracy 0.75, scores say 0.5 / 0.6
    with pytest.warns(UserWarning, match="examples not resampled.*do not reproduce"):
        table = paired_bootstrap(scores, predictions, n_boot=100, seed=0, statistics=("contrast",), overall=False)
    assert table["method"].str.contains("scores only").all()


# --- shape, vocabulary, degenerate designs ----------------------------------------


def test_rows_cover_every_order_family_and_pair():
    sim = simulate(seeds=6, languages=("fi", "et", "de", "fr"), n_examples=60,
                   families={"fi": "Uralic", "et": "Uralic", "de": "Indo-European", "fr": "Indo-European"})  # fmt: skip
    table = paired_bootstrap(sim.scores, sim.predictions, n_boot=300, seed=0)
    assert tuple(table.columns) == COLUMNS
    families = [None, "Indo-European", "Uralic"]
    counts = table.groupby("test").size()
    # 3 families (two + all languages) x 2 intervals x (3 orders or 3 pairs)
    assert counts.to_dict() == {"bootstrap_mean": 18, "contrast": 18, "sd": 18, "sd_ratio": 18}
    assert set(table["family"].tolist()) == set(families)
    assert set(table.loc[table["test"] == "contrast", "term"]) == {
        "nli>qa vs none",
        "qa>nli vs none",
        "qa>nli vs nli>qa",
    }
    assert (table["n"] == 6).all()
    assert table.loc[table["test"].isin(["contrast", "sd_ratio"]), "p_value"].between(0, 1).all()
    assert table.loc[table["test"].isin(["bootstrap_mean", "sd"]), "p_value"].isna().all()
    # A resampled mean is spread about the observed one: both interval types bracket it. The
    # intervals of SDs and SD ratios need not (a bootstrap SD is biased down), but are ordered.
    location = table[table["test"].isin(["bootstrap_mean", "contrast"])]
    assert (location["ci_low"] <= location["estimate"]).all() and (location["estimate"] <= location["ci_high"]).all()
    assert (table["ci_low"] <= table["ci_high"]).all()


def test_same_seed_gives_same_table_and_seeds_are_resampled_not_languages():
    sim = simulate(seeds=4, languages=("fi", "et"), n_examples=40, families={"fi": "Uralic", "et": "Uralic"})
    one = quiet(paired_bootstrap, sim.scores, sim.predictions, n_boot=200, seed=3)
    two = quiet(paired_bootstrap, sim.scores, sim.predictions, n_boot=200, seed=3)
    pd.testing.assert_frame_equal(one, two)
    assert one["method"].str.contains("4 seeds").all()


def test_few_seeds_warn_and_one_seed_gives_estimates_without_intervals():
    sim = simulate(seeds=3, languages=("fi",), families={"fi": "Uralic"}, outcomes=False)
    with pytest.warns(FewSeedsWarning, match="3 seeds"):
        table = paired_bootstrap(sim.scores, n_boot=100, seed=0)
    assert table["method"].str.contains("few seeds").all()
    one = simulate(seeds=1, languages=("fi",), families={"fi": "Uralic"}, outcomes=False)
    with pytest.warns(UserWarning, match="one seed"):
        table = paired_bootstrap(one.scores, n_boot=100, seed=0)
    assert set(table["test"]) == {"bootstrap_mean", "contrast"}
    assert table["estimate"].notna().all() and table["ci_low"].isna().all()


def test_unshared_seeds_resample_each_order_and_paired_true_drops_them():
    values = 0.7 + np.random.default_rng(6).normal(0, 0.01, (2, 5, 2))
    scores = long_scores(values, orders=["a", "b"])
    scores = scores[~((scores["order"] == "b") & (scores["seed"] == 5))]
    with pytest.warns(UserWarning, match="do not share the same seeds"):
        table = paired_bootstrap(scores, n_boot=100, seed=0, statistics=("contrast",))
    assert table["method"].str.contains("unpaired").all()
    with pytest.warns(UserWarning, match="left out"):
        table = paired_bootstrap(scores, n_boot=100, seed=0, statistics=("contrast",), paired=True)
    assert (table["n"] == 4).all()


def test_input_errors_are_named():
    scores = long_scores(np.full((2, 3, 1), 0.5))
    with pytest.raises(InputError, match="no column 'accuracy'"):
        paired_bootstrap(scores, dv="accuracy")
    with pytest.raises(InputError, match="confidence"):
        paired_bootstrap(scores, confidence=95)
    with pytest.raises(DesignError, match="two scores"):
        paired_bootstrap(pd.concat([scores, scores]))
    with pytest.raises(DesignError, match="not in the scores"):
        paired_bootstrap(scores, orders=["o0", "nope"])


# --- calibration on simulations with run-level noise -------------------------------


def _coverage(seeds: int, tasks: int, interval: str) -> float:
    """Share of percentile/BCa intervals for 'nli>qa vs none' (all languages) covering the truth."""
    sim = simulate(
        orders=("none", "nli>qa"), seeds=seeds, languages=("fi", "et", "hu"), outcomes=False,
        families={"fi": "Uralic", "et": "Uralic", "hu": "Uralic"}, tasks=[f"t{i}" for i in range(tasks)],
        run_sd=0.02, seed_sd=0.01, seed=seeds,
    )  # fmt: skip
    table = quiet(
        paired_bootstrap, sim.scores, n_boot=400, seed=1, statistics=("contrast",), interval=interval, overall=False
    )
    truth = sim.truth.expected_contrasts().set_index("task")["difference"]
    covered = (table["ci_low"].to_numpy() <= truth.loc[table["task"]].to_numpy()) & (
        truth.loc[table["task"]].to_numpy() <= table["ci_high"].to_numpy()
    )
    return float(covered.mean())


def test_percentile_bootstrap_over_three_seeds_undercovers():
    # With 3 seeds the percentile interval is about [min, max] of the per-seed
    # differences, which covers the centre with probability 1 - 2 (1/2)^3 = 0.75.
    coverage = _coverage(3, 250, "percentile")
    assert 0.65 < coverage < 0.86  # 95% nominal; expected ~0.75, SE of the estimate ~0.027
    # With 10 seeds: about P(|t_9| < 1.96 sqrt(9/10)) = 0.90, still short of 0.95.
    coverage_10 = _coverage(10, 150, "percentile")
    assert coverage_10 > 0.83


def test_resampling_examples_too_does_not_fix_three_seeds():
    # The MultiBERTs procedure (seeds and examples) on a design where the run effect
    # dominates the examples' binomial noise: still well short of 95% at 3 seeds. (Where
    # the examples' noise dominates instead, resampling them makes the interval wide and
    # conservative: that noise is already in the seed-to-seed spread.)
    sim = simulate(
        orders=("none", "nli>qa"), seeds=3, languages=("fi", "et", "hu"), base=0.5, n_examples=200,
        families={"fi": "Uralic", "et": "Uralic", "hu": "Uralic"}, tasks=[f"t{i}" for i in range(100)],
        run_sd=0.08, seed_sd=0.01, seed=303,
    )  # fmt: skip
    table = quiet(paired_bootstrap, sim.scores, sim.predictions, n_boot=200, seed=1, statistics=("contrast",),
                  interval="percentile", overall=False)  # fmt: skip
    assert table["method"].str.contains("examples within language").all()
    truth = sim.truth.expected_contrasts().set_index("task")["difference"].loc[table["task"]].to_numpy()
    coverage = ((table["ci_low"] <= truth) & (truth <= table["ci_high"])).mean()
    assert coverage < 0.9  # ~0.8 expected; SE of the estimate ~0.04
