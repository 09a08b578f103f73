"""Tests of seqrob.warehouse.simulate with several training methods (issue 13).

Checks with known answers: the one-method output is the output from before
methods existed, planted method effects, order x method effects and per-method
run SDs are recovered from the data within about 4 standard errors derived from
the parameters, and the truth's expected method contrasts match brute force.
The seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import typer
from scipy import stats
from typer.testing import CliRunner

from seqrob.warehouse.errors import DesignError, InputError
from seqrob.warehouse.simulate import Truth, parse_effect, parse_method_effect, simulate

FAMILIES = {"a1": "F1", "a2": "F1", "a3": "F1", "a4": "F1", "b1": "F2", "b2": "F2", "b3": "F2", "c1": "F3", "c2": "F3"}
SMALL = dict(
    orders=("none", "nli>qa", "qa>nli"),
    seeds=4,
    languages=("a1", "a2", "b1", "b2", "c1"),
    families=FAMILIES,
    n_examples=50,
    tasks=("xnli", "pawsx"),
    effects={("nli>qa", "F1"): 0.05},
)
TWO = ("finetune", "prompt")


def _frames_equal(one, other) -> None:
    pd.testing.assert_frame_equal(one.scores, other.scores, check_exact=True)
    pd.testing.assert_frame_equal(one.predictions, other.predictions, check_exact=True)
    assert one.truth == other.truth


# --- one method: nothing changes ----------------------------------------------------------


def test_one_method_output_is_unchanged():
    noisy = dict(run_family_sd=0.01, outlier_rate=0.3, outlier_shift=0.05, seeds_per_order={"qa>nli": 3}, missing_cells=0.1)
    for extra in (noisy, {}):
        plain = simulate(**SMALL, **extra, seed=3)
        _frames_equal(plain, simulate(**SMALL, **extra, seed=3, methods=["finetune"]))
        _frames_equal(plain, simulate(**SMALL, **extra, seed=3, methods=None, method_effects={}))
    # methods=[name] is method=name: same draws, same run ids, same label.
    prompt = simulate(**SMALL, seed=3, methods=["prompt"])
    _frames_equal(prompt, simulate(**SMALL, seed=3, method="prompt"))
    assert set(prompt.scores["method"]) == {"prompt"} and set(prompt.scores["run_id"]) == set(plain.scores["run_id"])
    pd.testing.assert_series_equal(prompt.scores["score"], plain.scores["score"])
    # The derived tables keep their columns (no method column with one method).
    truth = plain.truth
    assert truth.methods == ("finetune",) and truth.method == "finetune" and truth.method_effects == ()
    assert truth.method_run_sd == {"finetune": dict(truth.run_sd)}
    assert list(truth.deltas.columns) == ["task", "order", "family", "delta"]
    assert list(truth.run_effects.columns) == ["task", "order", "seed", "run_id", "sd", "effect", "outlier"]
    assert "method" not in truth.expected_contrasts().columns
    assert truth.expected_method_contrasts().empty
    assert (truth.cells["method"] == "finetune").all()


# --- the design ----------------------------------------------------------------------------


def test_every_method_runs_every_order_with_the_same_seeds():
    sim = simulate(**SMALL, methods=TWO, seeds_per_order={"qa>nli": 3}, seed=1)
    S, T, L, N = 4, 2, 5, 50
    runs = sim.scores.drop_duplicates("run_id")
    assert len(runs) == 2 * (2 * S + 3)
    grid = runs.groupby(["method", "order"])["seed"].apply(lambda s: sorted(s)).to_dict()
    for method in TWO:
        assert grid[(method, "none")] == grid[(method, "nli>qa")] == [1, 2, 3, 4]
        assert grid[(method, "qa>nli")] == [1, 2, 3]  # seeds_per_order holds for every method
    expected = {f"simulated-{m}-{o}-s{s}" for m in TWO for o in SMALL["orders"] for s in range(1, 5)}
    assert set(runs["run_id"]) == expected - {f"simulated-{m}-qa>nli-s4" for m in TWO}
    assert (runs["run_id"] == "simulated-" + runs["method"] + "-" + runs["order"] + "-s" + runs["seed"].astype(str)).all()
    assert len(sim.scores) == len(runs) * T * L
    assert len(sim.predictions) == len(sim.scores) * N
    assert not sim.scores.duplicated(["run_id", "task", "language"]).any()
    # Scores are the mean of the predictions, run by run, for both methods.
    means = sim.predictions.groupby(["run_id", "task", "language"], as_index=False)["correct"].mean()
    joined = sim.scores.merge(means, on=["run_id", "task", "language"], validate="one_to_one")
    np.testing.assert_array_equal(joined["score"].to_numpy(), joined["correct"].to_numpy())
    # The truth's cells are the rows of scores, with the method of each.
    cells = sim.truth.cells
    assert (cells[["run_id", "method", "order", "seed", "task", "language"]].to_numpy()
            == sim.scores[["run_id", "method", "order", "seed", "task", "language"]].to_numpy()).all()  # fmt: skip
    assert sim.truth.methods == TWO and sim.truth.method == "finetune"


def test_reference_method_rule():
    # method left at its default: "finetune" if listed, else the first method.
    assert simulate(**SMALL, methods=("prompt", "finetune")).truth.method == "finetune"
    assert simulate(**SMALL, methods=("lora", "prompt")).truth.method == "lora"
    truth = simulate(**SMALL, methods=("lora", "prompt"), method="prompt", method_effects={"lora": 0.02}).truth
    assert truth.method == "prompt"
    table = truth.expected_method_contrasts()
    assert set(zip(table["method"], table["reference"])) == {("lora", "prompt")}
    assert np.allclose(table["delta"], 0.02, rtol=0, atol=1e-15)
    with pytest.raises(DesignError, match="not one of the methods"):
        simulate(**SMALL, methods=("lora", "prompt"), method="adapter")


def test_seed_effects_are_shared_by_every_method_and_order():
    # No run and no run x language noise: a seed moves every method and order alike.
    S, N = 30, 1000
    sim = simulate(orders=("none", "A"), seeds=S, languages=tuple(FAMILIES), families=FAMILIES, methods=TWO,
                   method_effects={"prompt": -0.03}, seed_sd=0.05, run_sd=0.0, residual_sd=0.0, n_examples=N,
                   outcomes=False, seed=2)  # fmt: skip
    cells = sim.truth.cells
    assert cells.groupby(["task", "seed"])["seed_effect"].nunique().eq(1).all()
    assert cells.groupby(["task", "language"])["language_effect"].nunique().eq(1).all()
    wide = cells.pivot_table(index=["order", "seed", "language"], columns="method", values="p")
    np.testing.assert_allclose(wide["prompt"] - wide["finetune"], -0.03, rtol=0, atol=1e-15)
    # The data: per-seed means of the two methods move together (seed variance 0.05^2
    # against example noise of about p(1-p)/(N L) = 2.3e-5: correlation ~0.99).
    means = sim.scores.groupby(["method", "seed"])["score"].mean().unstack("method")
    assert np.corrcoef(means["finetune"], means["prompt"])[0, 1] > 0.95
    # Run effects are drawn per run: with run noise, methods of a seed differ by more than the planted shift.
    noisy = simulate(orders=("none",), seeds=5, languages=("a1",), families=FAMILIES, methods=TWO, outcomes=False)
    v = noisy.truth.run_effects.pivot_table(index="seed", columns="method", values="effect")
    assert (v["finetune"] != v["prompt"]).all()


# --- planted effects recovered from the data ---------------------------------------------


def test_method_main_effect_is_recovered():
    # rho = 0: examples independent, so the SE is exact. Per family, the mean over
    # orders, seeds and languages of score[prompt] - score[finetune] (paired: the
    # seed effects cancel) has variance
    # (run_sd_p^2 + run_sd_f^2) / (S O) + 2 res^2 / (S O L_f) + sum p(1-p)/N over cells / (S O L_f)^2.
    S, O, N, res = 60, 2, 2000, 0.005
    run_sd = {"finetune": 0.01, "prompt": 0.02}
    method_effects = {"prompt": -0.03, ("prompt", "F2"): 0.02}
    sim = simulate(orders=("none", "A"), seeds=S, languages=tuple(FAMILIES), families=FAMILIES, methods=TWO,
                   method_effects=method_effects, effects={("A", "F1"): 0.02}, run_sd=run_sd, seed_sd=0.02,
                   residual_sd=res, n_examples=N, example_correlation=0.0, outcomes=False, seed=11)  # fmt: skip
    wide = sim.scores.pivot_table(index=["family", "order", "seed", "language"], columns="method", values="score")
    observed = (wide["prompt"] - wide["finetune"]).groupby("family").mean()
    table = sim.truth.expected_method_contrasts()
    assert list(table.columns) == ["task", "family", "method", "reference", "order", "delta", "difference",
                                   "realised_difference", "n_seeds", "n_languages"]  # fmt: skip
    assert set(table["order"]) == {"none", "A", "*"} and set(table["reference"]) == {"finetune"}
    main = table[table["order"] == "*"].set_index("family")
    cells = sim.truth.cells.assign(pq=lambda c: c["p"] * (1 - c["p"]) / N)
    for family, delta in {"F1": -0.03, "F2": 0.02, "F3": -0.03}.items():
        n_lang = sum(f == family for f in FAMILIES.values())
        example_var = cells.loc[cells["family"] == family, "pq"].sum() / (S * O * n_lang) ** 2
        se = math.sqrt((run_sd["finetune"] ** 2 + run_sd["prompt"] ** 2) / (S * O) + 2 * res**2 / (S * O * n_lang) + example_var)
        assert main.loc[family, "delta"] == pytest.approx(delta, abs=1e-15)
        assert abs(main.loc[family, "difference"] - delta) < 1e-6  # clipping: P ~ 1e-7
        assert abs(observed[family] - delta) < 4 * se, (family, observed[family], delta, se)
        assert abs(observed[family] - main.loc[family, "realised_difference"]) < 4 * math.sqrt(example_var)
        assert main.loc[family, "n_seeds"] == S and main.loc[family, "n_languages"] == n_lang
        # The method effect holds in every order, the baseline included: the order effect cancels.
        for order in ("none", "A"):
            row = table[(table["family"] == family) & (table["order"] == order)].iloc[0]
            assert row["delta"] == pytest.approx(delta, abs=1e-15)
    # The order contrasts per method are untouched by the method effect.
    contrasts = sim.truth.expected_contrasts()
    assert list(contrasts.columns[:3]) == ["task", "method", "family"]
    f1 = contrasts[contrasts["family"] == "F1"].set_index("method")["delta"]
    assert f1.to_dict() == {"finetune": 0.02, "prompt": pytest.approx(0.02, abs=1e-15)}


def test_order_by_method_interaction_shows_only_under_its_method():
    S, N, res = 40, 2000, 0.005
    run_sd = 0.01
    sim = simulate(orders=("none", "A"), seeds=S, languages=tuple(FAMILIES), families=FAMILIES, methods=TWO,
                   effects={("prompt", "A", "F1"): 0.06}, run_sd=run_sd, residual_sd=res, n_examples=N,
                   example_correlation=0.0, outcomes=False, seed=5)  # fmt: skip
    contrasts = sim.truth.expected_contrasts().set_index(["method", "family"])
    cells = sim.truth.cells.assign(pq=lambda c: c["p"] * (1 - c["p"]) / N)
    for method in TWO:
        scores = sim.scores[sim.scores["method"] == method]
        wide = scores.pivot_table(index=["family", "seed", "language"], columns="order", values="score")
        observed = (wide["A"] - wide["none"]).groupby("family").mean()
        for family in ("F1", "F2", "F3"):
            delta = 0.06 if (method, family) == ("prompt", "F1") else 0.0
            n_lang = sum(f == family for f in FAMILIES.values())
            mine = cells[(cells["family"] == family) & (cells["method"] == method)]
            example_var = mine["pq"].sum() / (S * n_lang) ** 2
            se = math.sqrt(2 * run_sd**2 / S + 2 * res**2 / (S * n_lang) + example_var)
            assert contrasts.loc[(method, family), "delta"] == delta
            assert abs(observed[family] - delta) < 4 * se, (method, family, observed[family], se)
    # As a method contrast: no difference in the baseline order, 0.06 in A, 0.03 averaged.
    table = sim.truth.expected_method_contrasts()
    f1 = table[table["family"] == "F1"].set_index("order")["delta"]
    assert f1.to_dict() == {"none": 0.0, "A": 0.06, "*": 0.03}
    assert (table.loc[table["family"] != "F1", "delta"] == 0.0).all()


def test_effect_and_method_effect_precedence():
    effects = {
        ("nli>qa", "*"): 0.01,
        ("xnli", "nli>qa", "F2"): 0.03,
        ("prompt", "nli>qa", "F1"): 0.0,  # switches the every-method effect off under prompt
        ("prompt", "xnli", "nli>qa", "*"): 0.05,  # beats the task key (xnli, nli>qa, F2)
        ("prompt", "xnli", "nli>qa", "F3"): 0.06,
    }
    method_effects = {"prompt": -0.01, ("prompt", "F1"): -0.02, ("xnli", "prompt", "*"): -0.03, ("xnli", "prompt", "F1"): -0.04}
    truth = simulate(**{**SMALL, "effects": effects}, methods=TWO, method_effects=method_effects).truth
    assert list(truth.deltas.columns) == ["task", "method", "order", "family", "delta"]
    deltas = truth.deltas.set_index(["task", "method", "order", "family"])["delta"]
    order_effect = {
        ("xnli", "finetune", "nli>qa", "F1"): 0.01, ("xnli", "finetune", "nli>qa", "F2"): 0.03,
        ("pawsx", "finetune", "nli>qa", "F2"): 0.01, ("pawsx", "prompt", "nli>qa", "F1"): 0.0,
        ("pawsx", "prompt", "nli>qa", "F2"): 0.01, ("xnli", "prompt", "nli>qa", "F1"): 0.05,
        ("xnli", "prompt", "nli>qa", "F2"): 0.05, ("xnli", "prompt", "nli>qa", "F3"): 0.06,
        ("xnli", "prompt", "qa>nli", "F3"): 0.0,
    }  # fmt: skip
    method_effect = {
        ("xnli", "F1"): -0.04, ("xnli", "F2"): -0.03, ("xnli", "F3"): -0.03,
        ("pawsx", "F1"): -0.02, ("pawsx", "F2"): -0.01, ("pawsx", "F3"): -0.01,
    }  # fmt: skip
    for (task, method, order, family), value in order_effect.items():
        shift = method_effect[(task, family)] if method == "prompt" else 0.0
        assert deltas[(task, method, order, family)] == pytest.approx(value + shift, abs=1e-15), (task, method, order, family)
        assert deltas[(task, method, "none", family)] == shift
    assert ({"method": "prompt", "task": None, "order": "nli>qa", "family": "F1", "delta": 0.0}) in truth.effects
    assert {"task": None, "method": "prompt", "family": "*", "delta": -0.01} in truth.method_effects


def test_per_method_run_sd_is_a_larger_across_seed_sd():
    S, L, N = 300, 10, 500
    run_sd = {"finetune": 0.01, "prompt": 0.04}
    seed_sd, res = 0.02, 0.005
    langs = {f"l{i}": "F" for i in range(L)}
    sim = simulate(orders=("none", "A"), seeds=S, languages=tuple(langs), families=langs, methods=TWO, run_sd=run_sd,
                   seed_sd=seed_sd, residual_sd=res, n_examples=N, example_correlation=0.0, outcomes=False, seed=5)  # fmt: skip
    assert sim.truth.method_run_sd == {m: {"none": sd, "A": sd} for m, sd in run_sd.items()}
    # The drawn run effects (known mean 0): sum v^2 / sd^2 ~ chi2(S) per method x order.
    effects = sim.truth.run_effects
    low, high = stats.chi2.ppf([1e-4, 1 - 1e-4], S)
    for (method, order), v in effects.groupby(["method", "order"])["effect"]:
        assert (effects.loc[v.index, "sd"] == run_sd[method]).all()
        assert low < (v.to_numpy() ** 2).sum() / run_sd[method] ** 2 < high, (method, order)
    # The data: across seeds, a run's mean over languages has variance
    # seed_sd^2 + run_sd[m]^2 + residual_sd^2 / L + E[p(1-p)] / (N L).
    means = sim.scores.groupby(["method", "order", "seed"])["score"].mean()
    low, high = stats.chi2.ppf([1e-4, 1 - 1e-4], S - 1)
    cells = sim.truth.cells
    sds = {}
    for (method, order), values in means.groupby(["method", "order"]):
        p = cells.loc[(cells["method"] == method) & (cells["order"] == order), "p"]
        expected = seed_sd**2 + run_sd[method] ** 2 + res**2 / L + (p * (1 - p)).mean() / (N * L)
        statistic = (S - 1) * values.var(ddof=1) / expected
        assert low < statistic < high, (method, order, statistic)
        sds[(method, order)] = values.std(ddof=1)
    for order in ("none", "A"):
        assert sds[("prompt", order)] > 1.5 * sds[("finetune", order)]


def test_run_sd_keys_by_order_method_and_pair():
    run_sd = {"none": 0.01, "nli>qa": 0.02, "qa>nli": 0.03, "prompt": 0.05, ("prompt", "qa>nli"): 0.07}
    truth = simulate(**SMALL, methods=TWO, run_sd=run_sd).truth
    assert truth.method_run_sd == {
        "finetune": {"none": 0.01, "nli>qa": 0.02, "qa>nli": 0.03},
        "prompt": {"none": 0.05, "nli>qa": 0.05, "qa>nli": 0.07},
    }
    assert truth.run_sd == truth.method_run_sd["finetune"]  # the reference method's
    sd = truth.run_effects.drop_duplicates(["method", "order"]).set_index(["method", "order"])["sd"]
    assert sd[("prompt", "qa>nli")] == 0.07 and sd[("finetune", "qa>nli")] == 0.03
    by_method = simulate(**SMALL, methods=TWO, run_sd={"finetune": 0.0, "prompt": 0.02}).truth
    assert (by_method.cells.loc[by_method.cells["method"] == "finetune", "run_effect"] == 0.0).all()


# --- the truth's method contrasts --------------------------------------------------------


def _method_brute_force(sim, S: int) -> pd.DataFrame:
    """expected_method_contrasts ('*' rows, by family) against the mean over S simulated seeds of
    the drawn cell means p[prompt] - p[finetune] (families F and G, within 4 Monte Carlo SEs)."""
    table = sim.truth.expected_method_contrasts()
    table = table[table["order"] == "*"].set_index("family")
    cells = sim.truth.cells
    for family in ("F", "G"):
        per_seed = cells[cells["family"] == family].groupby(["method", "seed"])["p"].mean().unstack("method")
        d = per_seed["prompt"] - per_seed["finetune"]
        se = d.std(ddof=1) / math.sqrt(S)
        assert abs(d.mean() - table.loc[family, "difference"]) < 4 * se, (family, d.mean(), se)
    return table


def test_method_contrasts_with_clipping_match_brute_force():
    # Near the clip bound, prompt noisier than finetune: clipping and the larger SD
    # both move the expected difference away from the planted one.
    S = 10_000
    langs = {"x1": "F", "x2": "F", "x3": "F", "y1": "G"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clipping, as intended
        sim = simulate(orders=("none", "A"), seeds=S, languages=tuple(langs), families=langs, base=0.93, language_sd=0.0,
                       seed_sd=0.01, run_sd={"finetune": 0.02, "prompt": 0.05}, run_family_sd=0.02, residual_sd=0.01,
                       family_sd_scale={"F": 1.5}, methods=TWO, method_effects={("prompt", "F"): 0.03}, run_tail_df=3.0,
                       outlier_rate=0.2, outlier_shift=0.1, n_examples=1, outcomes=False, seed=4)  # fmt: skip
    assert sim.truth.n_clipped > 0
    table = _method_brute_force(sim, S)
    assert table.loc["F", "delta"] == 0.03 and table.loc["F", "difference"] < 0.02
    assert table.loc["G", "delta"] == 0.0 and table.loc["G", "difference"] < -0.002  # the larger SD alone


def test_method_contrasts_on_the_logit_scale_match_brute_force():
    S = 10_000
    langs = {"x1": "F", "x2": "F", "x3": "F", "y1": "G"}
    sim = simulate(orders=("none", "A"), seeds=S, languages=tuple(langs), families=langs, scale="logit", base=0.95,
                   language_sd=0.5, seed_sd=0.5, run_sd={"finetune": 0.5, "prompt": 1.2}, residual_sd=0.3,
                   methods=TWO, method_effects={("prompt", "F"): 0.4}, effects={("prompt", "A", "G"): -0.5},
                   outlier_rate=0.2, outlier_shift=2.0, n_examples=1, outcomes=False, seed=4)  # fmt: skip
    table = _method_brute_force(sim, S)
    assert table.loc["F", "delta"] == 0.4
    assert table.loc["G", "delta"] == -0.25  # -0.5 in A, 0 in the baseline order, averaged
    # The per-order rows average to the '*' row.
    rows = sim.truth.expected_method_contrasts().set_index(["family", "order"])["difference"]
    assert rows[("G", "*")] == pytest.approx((rows[("G", "none")] + rows[("G", "A")]) / 2, abs=1e-15)


@pytest.mark.parametrize("scale", ["probability", "logit"])
def test_no_method_effect_and_equal_run_sds_give_an_exact_zero(scale):
    noisy = dict(run_sd=0.3 if scale == "logit" else 0.03, run_family_sd=0.02, family_sd_scale={"F2": 2.0},
                 language_sd_scale={"b1": 3.0}, run_tail_df=3.5, outlier_rate=0.1, outlier_shift=0.5,
                 seeds_per_order={"qa>nli": 2}, missing_cells=0.1)  # fmt: skip
    base = 0.95 if scale == "logit" else 0.96
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clipping near 0.98
        truth = simulate(**SMALL, scale=scale, base=base, methods=("finetune", "prompt", "lora"), **noisy).truth
    table = truth.expected_method_contrasts(pairwise=True)
    assert len(table) == 2 * 3 * 3 * 4  # tasks x families x method pairs x (3 orders and '*')
    assert set(zip(table["method"], table["reference"])) == {("prompt", "finetune"), ("lora", "finetune"), ("lora", "prompt")}
    assert (table["difference"] == 0.0).all() and (table["delta"] == 0.0).all()
    assert set(table.loc[table["order"] == "qa>nli", "n_seeds"]) == {2} and set(table.loc[table["order"] == "*", "n_seeds"]) == {2}


def test_noise_options_act_per_run_with_methods():
    sim = simulate(**SMALL, methods=TWO, run_family_sd=0.02, outlier_rate=0.5, outlier_shift=0.1, missing_cells=0.2, seed=7)
    cells = sim.truth.cells
    # Outliers and missing cells are drawn per run (method x order x seed): both methods get some.
    assert cells.groupby("run_id")["outlier"].nunique().eq(1).all()
    assert set(cells.drop_duplicates("run_id").groupby("method")["outlier"].sum()) != {0}
    assert cells.groupby("method")["missing"].sum().gt(0).all()
    assert len(sim.scores) == int((~cells["missing"]).sum())
    assert cells.groupby(["task", "run_id", "family"])["run_family_effect"].nunique().eq(1).all()
    outliers = cells[cells["outlier"]]
    np.testing.assert_allclose(
        outliers["p_raw"],
        0.70 + outliers[["language_effect", "delta", "seed_effect", "run_effect", "run_family_effect", "residual_effect"]].sum(axis=1) - 0.1,
        rtol=0, atol=1e-15,
    )  # fmt: skip


def test_truth_json_round_trip_with_methods(tmp_path):
    options = dict(scale="logit", base=0.9, run_family_sd=0.2, family_sd_scale={"F2": 2.5}, run_tail_df=4.5,
                   outlier_rate=0.3, outlier_shift=1.0, seeds_per_order={"qa>nli": 3}, missing_cells=0.2)  # fmt: skip
    truth = simulate(**{**SMALL, "effects": {("prompt", "nli>qa", "F2"): 0.4}}, **options, methods=TWO,
                     method_effects={"prompt": -0.2, ("xnli", "prompt", "F1"): 0.3}, run_sd={"finetune": 0.1, ("prompt", "none"): 0.3, "prompt": 0.2},
                     seed=12).truth  # fmt: skip
    back = Truth.from_json(truth.to_json(tmp_path / "truth.json"))
    assert back == truth
    assert back.to_dict()["version"] == 3
    pd.testing.assert_frame_equal(back.cells, truth.cells)
    pd.testing.assert_frame_equal(back.expected_method_contrasts(pairwise=True), truth.expected_method_contrasts(pairwise=True))
    pd.testing.assert_frame_equal(back.expected_contrasts(), truth.expected_contrasts())
    assert back.methods == TWO and back.method == "finetune"
    assert back.method_effects == ({"task": None, "method": "prompt", "family": "*", "delta": -0.2},
                                   {"task": "xnli", "method": "prompt", "family": "F1", "delta": 0.3})  # fmt: skip
    assert back.effects == ({"method": "prompt", "task": None, "order": "nli>qa", "family": "F2", "delta": 0.4},)
    assert back.method_run_sd == {"finetune": {o: 0.1 for o in SMALL["orders"]},
                                  "prompt": {"none": 0.3, "nli>qa": 0.2, "qa>nli": 0.2}}  # fmt: skip
    assert truth != simulate(**SMALL, **options, methods=TWO, seed=12).truth
    # A version 2 truth (one method, written before methods) reads as a one-method truth.
    plain = simulate(**SMALL, seed=12).truth
    data = plain.to_dict()
    for name in ("methods", "method_effects", "method_run_sd"):
        del data["parameters"][name]
    del data["cells"]["method"]
    old = Truth.from_dict({**data, "version": 2})
    assert old == plain and old.methods == ("finetune",) and old.method_run_sd == {"finetune": plain.run_sd}
    pd.testing.assert_frame_equal(old.expected_contrasts(), plain.expected_contrasts())


# --- errors ------------------------------------------------------------------------------------

BAD = [
    (dict(methods="finetune"), InputError),
    (dict(methods=()), DesignError),
    (dict(methods=("prompt", "prompt")), DesignError),
    (dict(methods=("prompt", " lora")), InputError),
    (dict(methods=("lora", "prompt"), method="adapter"), DesignError),
    (dict(method_effects={"prompt": 0.1}), DesignError),  # one method: no other method to shift
    (dict(methods=TWO, method_effects={"finetune": 0.1}), DesignError),  # the reference method
    (dict(methods=TWO, method_effects={"zz": 0.1}), DesignError),
    (dict(methods=TWO, method_effects={("prompt", "Nope"): 0.1}), DesignError),
    (dict(methods=TWO, method_effects={("nope", "prompt", "F1"): 0.1}), DesignError),
    (dict(methods=TWO, method_effects={("prompt",): 0.1}), InputError),
    (dict(methods=TWO, method_effects={3: 0.1}), InputError),
    (dict(methods=TWO, method_effects={"prompt": "big"}), InputError),
    (dict(methods=TWO, method_effects={"prompt": 0.1, ("prompt", "*"): 0.2}), DesignError),
    (dict(methods=TWO, method_effects=[("prompt", 0.1)]), InputError),
    (dict(methods=TWO, effects={("prompt", "none", "F1"): 0.1}), DesignError),  # the baseline order
    (dict(methods=TWO, effects={("zz", "xnli", "nli>qa", "F1"): 0.1}), DesignError),
    (dict(methods=TWO, effects={("prompt", "zz", "nli>qa", "F1"): 0.1}), DesignError),
    (dict(methods=TWO, effects={("zz", "nli>qa", "F1"): 0.1}), DesignError),  # neither task nor method
    (dict(methods=TWO, effects={("prompt", "nli>qa", "Nope"): 0.1}), DesignError),
    (dict(methods=TWO, effects={("a", "b", "c", "d", "e"): 0.1}), InputError),
    (dict(methods=("xnli", "prompt"), effects={("xnli", "nli>qa", "F1"): 0.1}), DesignError),  # task and method
    (dict(methods=TWO, run_sd={"finetune": 0.01}), DesignError),  # no SD for prompt
    (dict(methods=TWO, run_sd={"finetune": 0.01, "prompt": 0.01, ("prompt", "zz"): 0.1}), DesignError),
    (dict(methods=TWO, run_sd={"finetune": 0.01, "prompt": 0.01, "zz": 0.1}), DesignError),
    (dict(methods=TWO, run_sd={"finetune": 0.01, "prompt": -0.01}), InputError),
    (dict(methods=TWO, run_sd={("prompt", "none"): float("nan"), "none": 0.01, "nli>qa": 0.01, "qa>nli": 0.01}), InputError),
    (dict(methods=("none", "prompt"), run_sd={"none": 0.01, "prompt": 0.01}), DesignError),  # order and method
]


@pytest.mark.parametrize(("change", "error"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_method_parameters_raise_one_line_errors(change, error):
    with pytest.raises(error) as raised:
        simulate(**{**SMALL, "n_examples": 5, **change})
    assert "\n" not in str(raised.value) and str(raised.value)


def test_parse_method_effect_and_method_effects_in_parse_effect():
    assert parse_method_effect("prompt=-0.02") == ("prompt", -0.02)
    assert parse_method_effect("prompt:Uralic=0.03") == (("prompt", "Uralic"), 0.03)
    assert parse_method_effect("prompt:*=1e-2") == (("prompt", "*"), 0.01)
    for bad in ["prompt", "=0.1", "prompt:=0.1", "prompt=abc", "prompt=inf", ":Uralic=0.1"]:
        with pytest.raises(InputError):
            parse_method_effect(bad)
    assert parse_effect("prompt:nli>qa:Uralic=0.05", methods=TWO) == (("prompt", "nli>qa", "Uralic"), 0.05)
    assert parse_effect("nli>qa:Uralic=0.05", methods=TWO) == (("nli>qa", "Uralic"), 0.05)
    # Without the method among the methods, the text before the last ':' is the order (as before).
    assert parse_effect("lora:nli>qa:Uralic=0.05", methods=TWO) == (("lora:nli>qa", "Uralic"), 0.05)
    with pytest.raises(InputError):
        parse_effect("prompt::Uralic=0.05", methods=TWO)


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def app() -> typer.Typer:
    from seqrob.cli import simulate as cli_simulate

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test app."""

    cli_simulate.register(app)
    return app


def _invoke(app, args):
    return CliRunner().invoke(app, ["simulate", *args])


CLI_DESIGN = ["--seeds", "2", "--orders", "none,nli>qa", "--languages", "en,fi,et", "--family", "en=Indo-European",
              "--family", "fi=Uralic", "--family", "et=Uralic", "--n-examples", "10"]  # fmt: skip


def test_cli_methods_store_both_methods_in_a_warehouse(app, tmp_path):
    from seqrob.warehouse import Warehouse

    db = tmp_path / "runs.duckdb"
    args = [*CLI_DESIGN, "--db", str(db), "--methods", "finetune,prompt", "--method-effect", "prompt=-0.03",
            "--method-effect", "prompt:Uralic=0.01", "--effect", "prompt:nli>qa:Uralic=0.05", "--effect", "nli>qa:*=0.02",
            "--run-sd", "0.02", "--run-sd", "prompt=0.04", "--run-sd", "finetune:none=0.01"]  # fmt: skip
    result = _invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "simulated 8 runs (2 methods x 2 orders x 2 seeds)" in result.output
    with Warehouse(db, read_only=True) as wh:
        scores = wh.scores()
    runs = scores.drop_duplicates("run_id")
    assert sorted(zip(runs["method"], runs["order"], runs["seed"])) == sorted(
        (m, o, s) for m in TWO for o in ("none", "nli>qa") for s in (1, 2)
    )
    assert "simulated-prompt-nli>qa-s2" in set(runs["run_id"])
    truth = Truth.from_json(tmp_path / "runs.simulated.truth.json")
    assert truth.methods == TWO
    assert truth.method_run_sd == {"finetune": {"none": 0.01, "nli>qa": 0.02}, "prompt": {"none": 0.04, "nli>qa": 0.04}}
    same = simulate(orders=("none", "nli>qa"), seeds=2, languages=("en", "fi", "et"), families=truth.families,
                    n_examples=10, methods=TWO, method_effects={"prompt": -0.03, ("prompt", "Uralic"): 0.01},
                    effects={("prompt", "nli>qa", "Uralic"): 0.05, ("nli>qa", "*"): 0.02},
                    run_sd={"none": 0.02, "nli>qa": 0.02, "prompt": 0.04, ("finetune", "none"): 0.01})  # fmt: skip
    assert same.truth == truth
    merged = scores.merge(same.scores, on=["run_id", "task", "language"], suffixes=("", "_sim"), validate="one_to_one")
    assert len(merged) == len(same.scores) == 2 * 2 * 2 * 3
    np.testing.assert_allclose(merged["score"], merged["score_sim"], rtol=0, atol=1e-12)
    assert (merged["method"] == merged["method_sim"]).all()


def test_cli_rejects_bad_method_options(app, tmp_path):
    out = [*CLI_DESIGN, "--out", str(tmp_path / "x")]
    for extra in (["--methods", "finetune,,prompt"], ["--methods", "a,b", "--method", "c"],
                  ["--methods", "finetune,prompt", "--method-effect", "finetune=0.1"],
                  ["--methods", "finetune,prompt", "--method-effect", "zz=0.1"],
                  ["--methods", "finetune,prompt", "--method-effect", "prompt:=0.1"],
                  ["--methods", "finetune,prompt", "--method-effect", "prompt=x"],
                  ["--methods", "finetune,prompt", "--method-effect", "prompt=0.1", "--method-effect", "prompt:*=0.2"],
                  ["--method-effect", "prompt=0.1"],
                  ["--methods", "finetune,prompt", "--effect", "prompt:none:Uralic=0.1"],
                  ["--methods", "finetune,prompt", "--effect", "prompt:zz:Uralic=0.1"],
                  ["--methods", "finetune,prompt", "--run-sd", "zz=0.1"],
                  ["--methods", "finetune,prompt", "--run-sd", "prompt=0.1", "--run-sd", "prompt=0.2"],
                  ["--methods", "finetune,prompt", "--run-sd", "prompt:none=x"]):  # fmt: skip
        result = _invoke(app, [*out, *extra])
        assert result.exit_code != 0 and isinstance(result.exception, (InputError, DesignError)), (extra, result.exception)
        assert "\n" not in str(result.exception), extra


def test_cli_method_error_is_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "seqrob", "simulate", *CLI_DESIGN, "--out", str(tmp_path / "x"),
         "--methods", "finetune,prompt", "--method-effect", "zz=0.1"],  # fmt: skip
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    assert len(lines) == 1 and "zz" in lines[0], lines
