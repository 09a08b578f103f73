"""Tests of seqrob.warehouse.simulate: checks with known answers, not the code's own output.

Where a check is statistical, its tolerance is derived analytically from the
parameters (standard errors, chi-square quantiles, the bivariate normal CDF) and
set at about 4 standard errors; the seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import hashlib
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import typer
from scipy import integrate, stats
from scipy.special import expit, logit, ndtri
from typer.testing import CliRunner

from seqrob.warehouse.errors import DesignError, InputError
from seqrob.warehouse.simulate import (
    DEFAULT_FAMILIES,
    Simulation,
    Truth,
    parse_effect,
    simulate,
    write,
)

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


def _run_means(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean score over languages per order x seed."""
    return scores.groupby(["order", "seed"])["score"].mean().unstack("order")


# --- shapes, determinism, consistency -------------------------------------------------


def test_shapes_and_columns():
    sim = simulate(**SMALL)
    O, S, T, L, N = 3, 4, 2, 5, 50
    assert isinstance(sim, Simulation)
    assert list(sim.scores.columns) == [
        "run_id", "order", "seed", "task", "language", "metric", "score",
        "experiment", "method", "n_examples", "family",
    ]  # fmt: skip
    assert len(sim.scores) == O * S * T * L
    assert list(sim.predictions.columns) == ["run_id", "task", "language", "example_id", "correct"]
    assert len(sim.predictions) == O * S * T * L * N
    assert sim.scores["run_id"].nunique() == O * S
    assert not sim.scores.duplicated(["run_id", "task", "language", "metric"]).any()
    assert not sim.predictions.duplicated(["run_id", "task", "language", "example_id"]).any()
    assert set(sim.predictions["correct"].unique()) <= {0, 1}
    assert set(sim.scores["seed"]) == {1, 2, 3, 4}
    assert (sim.scores["n_examples"] == N).all()
    assert (sim.scores["family"] == sim.scores["language"].map(FAMILIES)).all()
    assert set(sim.scores["run_id"]) == {f"simulated-{o}-s{s}" for o in SMALL["orders"] for s in range(1, 5)}
    assert (sim.scores[["metric", "experiment", "method"]].drop_duplicates().values.tolist()) == [
        ["accuracy", "simulated", "finetune"]
    ]
    # Every run has every example of every task x language (examples are shared).
    per_cell = sim.predictions.groupby(["task", "language"])["example_id"].nunique()
    assert (per_cell == N).all()
    assert len(sim.truth.cells) == len(sim.scores)


def test_deterministic_for_equal_seeds_and_different_otherwise():
    one, two = simulate(**SMALL, seed=7), simulate(**SMALL, seed=7)
    pd.testing.assert_frame_equal(one.scores, two.scores)
    pd.testing.assert_frame_equal(one.predictions, two.predictions)
    assert one.truth == two.truth
    other = simulate(**SMALL, seed=8)
    assert not np.array_equal(one.scores["score"].to_numpy(), other.scores["score"].to_numpy())


def test_scores_are_the_mean_of_the_predictions():
    sim = simulate(**SMALL, seed=3)
    means = sim.predictions.groupby(["run_id", "task", "language"], as_index=False)["correct"].mean()
    joined = sim.scores.merge(means, on=["run_id", "task", "language"], validate="one_to_one")
    assert len(joined) == len(sim.scores)
    np.testing.assert_array_equal(joined["score"].to_numpy(), joined["correct"].to_numpy())


def test_scores_without_outcomes_are_identical():
    kept, dropped = simulate(**SMALL, seed=4), simulate(**{**SMALL, "outcomes": False}, seed=4)
    assert dropped.predictions is None
    pd.testing.assert_frame_equal(kept.scores, dropped.scores)
    pd.testing.assert_frame_equal(kept.truth.cells, dropped.truth.cells)


def test_more_seeds_extend_the_same_draws():
    few, many = simulate(**{**SMALL, "seeds": 2}), simulate(**{**SMALL, "seeds": 4})
    first = many.scores[many.scores["seed"] <= 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(few.scores.sort_values(list(few.scores.columns[:5])).reset_index(drop=True),
                                  first.sort_values(list(first.columns[:5])).reset_index(drop=True))


def test_truth_cells_add_up():
    sim = simulate(**SMALL, seed=5)
    cells = sim.truth.cells
    total = 0.70 + cells["language_effect"] + cells["delta"] + cells["seed_effect"] + cells["run_effect"] + cells["residual_effect"]
    np.testing.assert_allclose(cells["p_raw"], total, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(cells["p"], cells["p_raw"].clip(0.02, 0.98))
    # The seed effect is shared by every order of a seed (paired design); the run effect is not.
    per_seed = cells.groupby(["task", "seed"])["seed_effect"].nunique()
    assert (per_seed == 1).all()
    assert cells.groupby(["task", "order", "seed"])["run_effect"].nunique().eq(1).all()
    # The planted delta sits exactly on nli>qa x F1 cells of every task.
    planted = cells[(cells["order"] == "nli>qa") & (cells["family"] == "F1")]
    assert (planted["delta"] == 0.05).all()
    assert (cells.drop(planted.index)["delta"] == 0.0).all()


def test_effect_precedence_and_tasks():
    effects = {
        ("nli>qa", "*"): 0.01,
        ("nli>qa", "F2"): 0.02,
        ("xnli", "nli>qa", "*"): 0.03,
        ("xnli", "nli>qa", "F1"): 0.04,
        ("qa>nli", "F3"): -0.02,
    }
    deltas = simulate(**{**SMALL, "effects": effects}).truth.deltas.set_index(["task", "order", "family"])["delta"]
    expected = {
        ("xnli", "nli>qa", "F1"): 0.04, ("xnli", "nli>qa", "F2"): 0.03, ("xnli", "nli>qa", "F3"): 0.03,
        ("pawsx", "nli>qa", "F1"): 0.01, ("pawsx", "nli>qa", "F2"): 0.02, ("pawsx", "nli>qa", "F3"): 0.01,
        ("xnli", "qa>nli", "F3"): -0.02, ("pawsx", "qa>nli", "F3"): -0.02,
        ("xnli", "qa>nli", "F1"): 0.0, ("pawsx", "none", "F2"): 0.0,
    }  # fmt: skip
    for key, value in expected.items():
        assert deltas[key] == value, key


# --- the statistics: data drawn from the truth it records --------------------------


def test_family_mean_difference_recovers_delta():
    # rho = 0 makes examples independent across runs, so the SE is exact:
    # Var(D_f) = (run_sd_A^2 + run_sd_0^2)/S + 2 residual_sd^2/(S L_f) + sum p(1-p)/N over cells / (S L_f)^2
    S, N, res = 40, 2000, 0.005
    run_sd = {"none": 0.01, "A": 0.02}
    effects = {("A", "F1"): 0.04, ("A", "F2"): -0.03}
    sim = simulate(orders=("none", "A"), seeds=S, languages=tuple(FAMILIES), families=FAMILIES, effects=effects,
                   run_sd=run_sd, residual_sd=res, n_examples=N, example_correlation=0.0, outcomes=False, seed=11)
    wide = sim.scores.pivot_table(index=["family", "seed", "language"], columns="order", values="score")
    observed = (wide["A"] - wide["none"]).groupby("family").mean()
    contrasts = sim.truth.expected_contrasts().set_index("family")
    cells = sim.truth.cells.assign(pq=lambda c: c["p"] * (1 - c["p"]) / N)
    for family, delta in {"F1": 0.04, "F2": -0.03, "F3": 0.0}.items():
        n_lang = sum(f == family for f in FAMILIES.values())
        example_var = cells.loc[cells["family"] == family, "pq"].sum() / (S * n_lang) ** 2
        se = math.sqrt((run_sd["none"] ** 2 + run_sd["A"] ** 2) / S + 2 * res**2 / (S * n_lang) + example_var)
        assert contrasts.loc[family, "delta"] == delta
        assert abs(contrasts.loc[family, "difference"] - delta) < 1e-6  # clipping: P ~ 1e-6
        assert abs(observed[family] - delta) < 4 * se, (family, observed[family], delta, se)
        # Given the drawn effects only example noise is left.
        realised = contrasts.loc[family, "realised_difference"]
        assert abs(observed[family] - realised) < 4 * math.sqrt(example_var)


def test_run_sd_per_order_is_recovered():
    S, L, N = 300, 10, 500
    run_sd = {"none": 0.01, "A": 0.04}
    seed_sd, res = 0.02, 0.005
    langs = {f"l{i}": "F" for i in range(L)}
    sim = simulate(orders=("none", "A"), seeds=S, languages=tuple(langs), families=langs, run_sd=run_sd,
                   seed_sd=seed_sd, residual_sd=res, n_examples=N, example_correlation=0.0, outcomes=False, seed=5)
    low, high = stats.chi2.ppf([1e-4, 1 - 1e-4], S)
    # The drawn run effects (known mean 0): sum v^2 / sd^2 ~ chi2(S).
    effects = sim.truth.run_effects
    for order, sd in run_sd.items():
        v = effects.loc[effects["order"] == order, "effect"].to_numpy()
        assert low < (v**2).sum() / sd**2 < high, order
    # The data: across seeds, a run's mean over languages has variance
    # seed_sd^2 + run_sd[o]^2 + residual_sd^2 / L + E[p(1-p)] / (N L).
    means = _run_means(sim.scores)
    low, high = stats.chi2.ppf([1e-4, 1 - 1e-4], S - 1)
    cells = sim.truth.cells
    for order, sd in run_sd.items():
        pq = (cells.loc[cells["order"] == order, "p"] * (1 - cells.loc[cells["order"] == order, "p"])).mean()
        expected = seed_sd**2 + sd**2 + res**2 / L + pq / (N * L)
        statistic = (S - 1) * means[order].var(ddof=1) / expected
        assert low < statistic < high, (order, statistic)


def test_marginal_probability_of_correct_is_p():
    # One run's outcomes are independent across examples (g_i iid), so a cell's
    # count is Binomial(N, p) exactly; rho = 0.9 makes a wrong mixing of g and h visible.
    L, N = 40, 4000
    langs = {f"l{i}": f"F{i % 4}" for i in range(L)}
    sim = simulate(orders=("none", "A"), seeds=2, languages=tuple(langs), families=langs, base=0.5,
                   language_sd=0.15, n_examples=N, example_correlation=0.9, seed=2)
    counts = sim.predictions.groupby(["run_id", "language"])["correct"].sum().rename("count").reset_index()
    cells = sim.truth.cells.merge(counts, on=["run_id", "language"], validate="one_to_one")
    z = (cells["count"] - N * cells["p"]) / np.sqrt(N * cells["p"] * (1 - cells["p"]))
    low, high = stats.chi2.ppf([1e-4, 1 - 1e-4], L)
    for run_id, run_z in z.groupby(cells["run_id"]):
        assert abs(run_z.sum() / math.sqrt(L)) < 4, run_id  # mean: P(correct) = p
        assert low < (run_z**2).sum() < high, run_id  # dispersion: binomial, not over-dispersed


@pytest.mark.parametrize("rho", [0.5, 0.0])
def test_example_correlation_across_runs(rho):
    # Two runs' latents rho g + sqrt(1 - rho^2) h are bivariate normal with correlation
    # rho^2, so P(both correct) = Phi2(Phi^-1(p1), Phi^-1(p2); rho^2).
    L, N = 20, 5000
    langs = {f"l{i}": "F" for i in range(L)}
    sim = simulate(orders=("none", "A"), seeds=2, languages=tuple(langs), families=langs, base=0.6,
                   language_sd=0.1, n_examples=N, example_correlation=rho, seed=9)
    outcome = sim.predictions.set_index(["run_id", "language", "example_id"])["correct"].sort_index()
    p = sim.truth.cells.set_index(["run_id", "language"])["p"]
    pairs = [("simulated-none-s1", "simulated-A-s1"), ("simulated-none-s1", "simulated-A-s2")]
    for first, second in pairs:
        z_sum, phis = 0.0, []
        for language in langs:
            c1 = outcome.loc[(first, language)].to_numpy()
            c2 = outcome.loc[(second, language)].to_numpy()
            p1, p2 = p[(first, language)], p[(second, language)]
            both = stats.multivariate_normal(mean=[0, 0], cov=[[1, rho**2], [rho**2, 1]]).cdf([ndtri(p1), ndtri(p2)])
            z_sum += ((c1 & c2).mean() - both) / math.sqrt(both * (1 - both) / N)
            phis.append(np.corrcoef(c1, c2)[0, 1])
        assert abs(z_sum / math.sqrt(L)) < 4, (first, second)
        if rho > 0:
            assert np.mean(phis) > 0.1
        else:
            assert abs(np.mean(phis)) < 0.02


def test_clipping_is_counted_and_the_population_difference_accounts_for_it():
    with pytest.warns(UserWarning, match="clipped"):
        sim = simulate(orders=("none", "A"), seeds=20, languages=tuple(FAMILIES), families=FAMILIES, base=0.93,
                       language_sd=0.06, effects={("A", "F1"): 0.04}, n_examples=10, outcomes=False, seed=1)
    truth = sim.truth
    cells = truth.cells
    assert truth.n_clipped == int((cells["p_raw"] > 0.98).sum() + (cells["p_raw"] < 0.02).sum()) > 0
    assert cells["clipped"].sum() == truth.n_clipped
    # Monte Carlo of E[clip(X_A)] - E[clip(X_none)], X ~ N(base + delta, total variance).
    rng = np.random.default_rng(0)
    sd = math.sqrt(0.06**2 + 0.01**2 + 0.01**2 + 0.005**2)
    draws = rng.standard_normal(2_000_000) * sd
    effect = np.clip(0.97 + draws, 0.02, 0.98).mean() - np.clip(0.93 + draws, 0.02, 0.98).mean()
    row = truth.expected_contrasts().set_index("family").loc["F1"]
    assert row["delta"] == 0.04
    assert abs(row["difference"] - effect) < 2e-4  # common random numbers: MC error well below this
    assert row["difference"] < 0.035  # clipping shrinks the planted 0.04 visibly


# --- the truth ----------------------------------------------------------------------


def test_expected_contrasts_shape():
    truth = simulate(**SMALL).truth
    table = truth.expected_contrasts()
    assert list(table.columns) == [
        "task", "family", "order", "baseline", "delta", "difference", "realised_difference", "n_seeds", "n_languages",
    ]  # fmt: skip
    assert len(table) == 2 * 3 * 2  # tasks x families x non-baseline orders
    assert set(table["baseline"]) == {"none"}
    uralic = table[(table["family"] == "F1") & (table["order"] == "nli>qa")]
    assert (uralic["delta"] == 0.05).all() and (uralic["n_languages"] == 2).all()
    assert len(truth.expected_contrasts(pairwise=True)) == 2 * 3 * 3
    # The realised difference is the mean over seeds and languages of p[order] - p[baseline].
    cells = truth.cells
    sel = (cells["task"] == "xnli") & (cells["family"] == "F2")
    by_order = cells[sel].groupby("order")["p"].mean()
    row = table[(table["task"] == "xnli") & (table["family"] == "F2") & (table["order"] == "qa>nli")].iloc[0]
    assert row["realised_difference"] == pytest.approx(by_order["qa>nli"] - by_order["none"], abs=1e-15)


def test_truth_json_round_trip(tmp_path):
    truth = simulate(**{**SMALL, "run_sd": {"none": 0.01, "nli>qa": 0.03, "qa>nli": 0.0}}, seed=12).truth
    path = truth.to_json(tmp_path / "truth.json")
    back = Truth.from_json(path)
    assert back == truth
    pd.testing.assert_frame_equal(back.cells, truth.cells)
    pd.testing.assert_frame_equal(back.expected_contrasts(), truth.expected_contrasts())
    assert back.run_sd == {"none": 0.01, "nli>qa": 0.03, "qa>nli": 0.0}
    assert back.effects == ({"task": None, "order": "nli>qa", "family": "F1", "delta": 0.05},)
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(InputError):
        Truth.from_json(tmp_path / "bad.json")


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_written_files_round_trip(tmp_path, fmt):
    sim = simulate(**{**SMALL, "n_examples": 3}, seed=6)  # n = 3: scores like 1/3 need every digit
    paths = write(sim, tmp_path / "out", format=fmt)
    assert set(paths) == {"scores", "predictions", "truth"}
    assert paths["scores"].name == f"scores.{fmt}"
    for name in ("scores", "predictions"):
        original = getattr(sim, name)
        path = paths[name]
        if fmt == "parquet":
            back = pd.read_parquet(path)
        elif fmt == "csv":
            back = pd.read_csv(path, dtype={"example_id": str}, keep_default_na=False)
        else:
            back = pd.read_json(path, lines=True, dtype={"example_id": str})
        assert list(back.columns) == list(original.columns)
        pd.testing.assert_frame_equal(back, original, check_dtype=False)
    assert Truth.from_json(paths["truth"]) == sim.truth
    no_predictions = write(simulate(**{**SMALL, "outcomes": False}), tmp_path / "scores-only", format=fmt)
    assert set(no_predictions) == {"scores", "truth"}


def test_defaults():
    sim = simulate(families=DEFAULT_FAMILIES)
    truth = sim.truth
    assert truth.orders == ("none", "nli>qa", "qa>nli") and truth.baseline == "none"
    assert truth.seeds == (1, 2, 3, 4, 5, 6)
    assert len(truth.languages) == 30
    family_sizes = pd.Series(truth.families).value_counts()
    assert (family_sizes >= 2).sum() >= 5
    assert (truth.base, truth.language_sd, truth.seed_sd, truth.residual_sd) == (0.70, 0.05, 0.01, 0.005)
    assert truth.run_sd == {"none": 0.01, "nli>qa": 0.01, "qa>nli": 0.01}
    assert (truth.n_examples, truth.example_correlation, truth.seed) == (200, 0.5, 0)
    assert truth.n_clipped == 0
    assert len(sim.scores) == 3 * 6 * 30 and len(sim.predictions) == 3 * 6 * 30 * 200


def test_parse_effect():
    assert parse_effect("nli>qa:Uralic=0.05") == (("nli>qa", "Uralic"), 0.05)
    assert parse_effect("qa>nli:Afro-Asiatic=-0.02") == (("qa>nli", "Afro-Asiatic"), -0.02)
    assert parse_effect("nli>qa:*=1e-2") == (("nli>qa", "*"), 0.01)
    for bad in ["nli>qa=0.05", "nli>qa:Uralic", ":Uralic=0.1", "nli>qa:=0.1", "nli>qa:Uralic=abc", "a:b=nan"]:
        with pytest.raises(InputError):
            parse_effect(bad)


BAD = [
    (dict(orders=()), DesignError),
    (dict(orders="none"), InputError),
    (dict(orders=("none", "none")), DesignError),
    (dict(seeds=0), DesignError),
    (dict(seeds=2.5), InputError),
    (dict(seeds=[1, 1]), DesignError),
    (dict(seeds=[-1, 2]), InputError),
    (dict(languages=("a1", "a1")), DesignError),
    (dict(languages=()), DesignError),
    (dict(language_sd=-0.1), InputError),
    (dict(seed_sd=float("nan")), InputError),
    (dict(residual_sd=-1e-9), InputError),
    (dict(run_sd=-0.01), InputError),
    (dict(run_sd={"none": 0.01}), DesignError),
    (dict(run_sd={"none": 0.01, "nli>qa": 0.01, "qa>nli": 0.01, "zz": 0.1}), DesignError),
    (dict(run_sd={"none": 0.01, "nli>qa": -0.01, "qa>nli": 0.01}), InputError),
    (dict(example_correlation=1.0), InputError),
    (dict(example_correlation=-0.1), InputError),
    (dict(n_examples=0), InputError),
    (dict(base=1.5), InputError),
    (dict(clip_low=0.5, clip_high=0.4), InputError),
    (dict(seed=-1), InputError),
    (dict(tasks=()), DesignError),
    (dict(baseline="zz"), DesignError),
    (dict(effects={("zz", "F1"): 0.1}), DesignError),
    (dict(effects={("nli>qa", "Nope"): 0.1}), DesignError),
    (dict(effects={("none", "F1"): 0.1}), DesignError),
    (dict(effects={("nope", "nli>qa", "F1"): 0.1}), DesignError),
    (dict(effects={("nli>qa",): 0.1}), InputError),
    (dict(effects={("nli>qa", "F1"): "big"}), InputError),
    (dict(languages=("a1", "qqq")), InputError),  # no family given and none known
    (dict(scale="log"), InputError),
    (dict(scale="logit", base=1.0), InputError),
    (dict(run_family_sd=-0.1), InputError),
    (dict(family_sd_scale={"Nope": 2.0}), DesignError),
    (dict(family_sd_scale={"F1": -1.0}), InputError),
    (dict(family_sd_scale=[("F1", 2.0)]), InputError),
    (dict(language_sd_scale={"zz": 2.0}), DesignError),
    (dict(language_sd_scale={"a1": float("inf")}), InputError),
    (dict(run_tail_df=2.0), InputError),
    (dict(run_tail_df=float("inf")), InputError),
    (dict(outlier_rate=1.5), InputError),
    (dict(outlier_rate=-0.1), InputError),
    (dict(outlier_shift=float("nan")), InputError),
    (dict(seeds_per_order={"zz": 2}), DesignError),
    (dict(seeds_per_order={"nli>qa": 5}), DesignError),
    (dict(seeds_per_order={"nli>qa": 0}), DesignError),
    (dict(seeds_per_order={"nli>qa": 2.5}), InputError),
    (dict(seeds_per_order=3), InputError),
    (dict(missing_cells=1.0), InputError),
    (dict(missing_cells=-0.1), InputError),
]


@pytest.mark.parametrize(("change", "error"), BAD, ids=[str(sorted(c)) + str(i) for i, (c, _) in enumerate(BAD)])
def test_bad_parameters_raise_named_errors(change, error):
    params = {**SMALL, "n_examples": 5, **change}
    with pytest.raises(error) as raised:
        simulate(**params)
    assert "\n" not in str(raised.value) and str(raised.value)


def test_write_rejects_unknown_format(tmp_path):
    with pytest.raises(InputError):
        write(simulate(**SMALL), tmp_path, format="xlsx")


# --- noise the analyses do not assume -------------------------------------------------


def _digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:24]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (dict(seed=3), "bf7d25dd9fee3da0f497d49e"),
        (dict(run_sd={"none": 0.01, "nli>qa": 0.03, "qa>nli": 0.0}, seed=12), "248ab33518b28a03c1dfeff2"),
    ],
)
def test_noise_options_at_their_defaults_change_no_draw(change, expected):
    # Digests and values computed with simulate() before the noise options existed
    # (commit 3cc9155): the new options must not move a single bit of the old draws.
    off = dict(scale="probability", run_family_sd=0.0, family_sd_scale=None, language_sd_scale=None, run_tail_df=None,
               outlier_rate=0.0, outlier_shift=0.0, seeds_per_order=None, missing_cells=0.0)  # fmt: skip
    for sim in (simulate(**SMALL, **change), simulate(**SMALL, **change, **off)):
        cells = sim.truth.cells
        got = _digest(sim.scores["score"].to_numpy(np.float64), cells["p_raw"].to_numpy(np.float64),
                      cells["run_effect"].to_numpy(np.float64), cells["residual_effect"].to_numpy(np.float64),
                      sim.predictions["correct"].to_numpy(np.int8))  # fmt: skip
        assert got == expected
        assert not cells["outlier"].any() and not cells["missing"].any()
        assert (cells["run_family_effect"] == 0.0).all() and (cells["family_scale"] == 1.0).all()
        np.testing.assert_array_equal(cells["linear_predictor"], cells["p_raw"])
    first = simulate(**SMALL, seed=3)
    assert first.scores["score"].head(3).tolist() == [0.72, 0.76, 0.76]
    assert first.truth.cells["p"].head(3).tolist() == [0.7047444351069251, 0.6870924832675344, 0.7413349294234755]
    assert int(first.predictions["correct"].sum()) == 4253
    assert first.truth.expected_contrasts()["difference"].iloc[0] == 0.049999943199397684


def test_logit_scale_near_the_ceiling_is_skewed():
    langs = {f"l{i:02d}": f"F{i % 6}" for i in range(60)}
    sds = dict(language_sd=0.5, seed_sd=0.1, run_sd=0.3, residual_sd=0.2)
    sim = simulate(orders=("none", "A"), seeds=20, languages=tuple(langs), families=langs, scale="logit", base=0.95,
                   n_examples=200, outcomes=False, seed=8, **sds)  # fmt: skip
    cells = sim.truth.cells
    total = sum(sd**2 for sd in sds.values())
    # E[expit(logit(0.95) + N(0, total))] by quad, independent of the library's quadrature.
    population = integrate.quad(lambda z: expit(logit(0.95) + math.sqrt(total) * z) * stats.norm.pdf(z), -12, 12)[0]
    assert 0.93 < population < 0.945
    assert abs(cells["p"].mean() - population) < 0.01  # 60 drawn languages: SE about 0.003
    assert abs(sim.scores["score"].mean() - population) < 0.01
    assert abs(cells["p"].median() - 0.95) < 0.01  # the median of expit(normal) is expit(its mean)
    assert stats.skew(cells["p"]) < -1.0 and stats.skew(sim.scores["score"]) < -1.0  # a ceiling: long lower tail
    assert abs(stats.skew(cells["linear_predictor"])) < 0.2  # symmetric on the logit scale
    assert not cells["clipped"].any() and sim.truth.n_clipped == 0
    # The terms add up on the logit scale.
    terms = (logit(0.95) + cells["language_effect"] + cells["delta"] + cells["seed_effect"]
             + cells["family_scale"] * cells["run_effect"] + cells["run_family_effect"] + cells["residual_effect"])  # fmt: skip
    np.testing.assert_allclose(cells["linear_predictor"], terms, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cells["p"], expit(cells["linear_predictor"]), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(cells["p_raw"], cells["p"])


def _family_means(cells: pd.DataFrame) -> pd.DataFrame:
    """Mean p over each family's languages, one row per run, one column per family."""
    return cells.groupby(["run_id", "family"])["p"].mean().unstack("family")


def test_run_family_effect_decorrelates_a_runs_families():
    # A run's family means share u + v (variance seed_sd^2 + run_sd^2) and differ by
    # w + mean e: corr = shared / (shared + run_family_sd^2 + residual_sd^2 / 4).
    S, L = 400, 8
    langs = {f"l{i}": "F1" if i < 4 else "F2" for i in range(L)}
    common = dict(orders=("none",), seeds=S, languages=tuple(langs), families=langs, language_sd=0.0, seed_sd=0.01,
                  run_sd=0.01, residual_sd=0.004, n_examples=1, outcomes=False, seed=6)  # fmt: skip
    shared = 0.01**2 + 0.01**2
    z_se = 1 / math.sqrt(S - 3)  # SE of Fisher's z
    found = {}
    for run_family_sd in (0.0, 0.03):
        means = _family_means(simulate(**common, run_family_sd=run_family_sd).truth.cells)
        found[run_family_sd] = np.corrcoef(means["F1"], means["F2"])[0, 1]
        expected = shared / (shared + run_family_sd**2 + 0.004**2 / 4)
        assert abs(np.arctanh(found[run_family_sd]) - np.arctanh(expected)) < 4 * z_se, (run_family_sd, found)
    assert found[0.0] > 0.9 and found[0.03] < 0.4
    # The drawn w: one per run x family, N(0, run_family_sd^2) (sum w^2 / sd^2 ~ chi2(2 S)).
    effects = simulate(**common, run_family_sd=0.03).truth.run_family_effects
    assert len(effects) == 2 * S and (effects["sd"] == 0.03).all()
    low, high = stats.chi2.ppf([1e-4, 1 - 1e-4], 2 * S)
    assert low < (effects["effect"] ** 2).sum() / 0.03**2 < high


def test_family_and_language_sd_scales():
    # Without seed and language noise, a family mean's variance across seeds is
    # k^2 (run_sd^2 + run_family_sd^2 + residual_sd^2 / n_f): its SD scales by k exactly.
    S = 300
    langs = {"a1": "F1", "a2": "F1", "b1": "F2", "b2": "F2"}
    sim = simulate(orders=("none",), seeds=S, languages=tuple(langs), families=langs, language_sd=0.0, seed_sd=0.0,
                   run_sd=0.01, run_family_sd=0.01, residual_sd=0.01, family_sd_scale={"F2": 3.0},
                   language_sd_scale={"a1": 4.0}, n_examples=1, outcomes=False, seed=2)  # fmt: skip
    truth = sim.truth
    assert truth.family_sd_scale == {"F1": 1.0, "F2": 3.0}
    assert truth.language_sd_scale == {"a1": 4.0, "a2": 1.0, "b1": 1.0, "b2": 1.0}
    means = _family_means(truth.cells)
    ratio = means["F2"].var(ddof=1) / means["F1"].var(ddof=1)
    # F1 (k = 1; a1's residual SD x4): 0.01^2 (1 + 1 + (16 + 1) / 4); F2 (k = 3): 9 * 0.01^2 (1 + 1 + 2 / 4).
    expected = 9 * (2 + 2 / 4) / (2 + 17 / 4)
    low, high = stats.f.ppf([1e-4, 1 - 1e-4], S - 1, S - 1)
    assert low < ratio / expected < high, ratio
    # The drawn residual effects have SD residual_sd * family scale * language scale.
    cells = truth.cells
    chi_low, chi_high = stats.chi2.ppf([1e-4, 1 - 1e-4], S)
    for code, sd in {"a1": 0.04, "a2": 0.01, "b1": 0.03}.items():
        e = cells.loc[cells["language"] == code, "residual_effect"]
        assert chi_low < (e**2).sum() / sd**2 < chi_high, code
    # The run effect's draw is shared; a family's cells carry family_scale times it.
    assert (cells.groupby("run_id")["run_effect"].nunique() == 1).all()
    assert set(cells.groupby("family")["family_scale"].unique().map(tuple)) == {(1.0,), (3.0,)}
    total = (0.70 + cells["language_effect"] + cells["delta"] + cells["seed_effect"] + cells["family_scale"] * cells["run_effect"]
             + cells["run_family_effect"] + cells["residual_effect"])  # fmt: skip
    np.testing.assert_allclose(cells["p_raw"], total, rtol=0, atol=1e-15)


def test_heavy_tailed_run_effects_keep_their_sd():
    S, df = 4000, 3.0
    sim = simulate(orders=("none", "A"), seeds=S, languages=("a1", "b1"), families=FAMILIES, run_sd=0.02,
                   run_family_sd=0.01, run_tail_df=df, n_examples=1, outcomes=False, seed=3)  # fmt: skip
    v = sim.truth.run_effects["effect"].to_numpy()
    w = sim.truth.run_family_effects["effect"].to_numpy()
    # Same SD as the normal; far heavier tails (excess kurtosis is infinite at df = 3).
    assert 0.8 < v.std() / 0.02 < 1.2 and 0.8 < w.std() / 0.01 < 1.2
    assert stats.kurtosis(v) > 3 and stats.kurtosis(w) > 3
    # Probability of |t| > 4 SDs: about 0.6% for t(3) rescaled, 6e-5 for the normal.
    tail = 2 * stats.t.sf(4 / math.sqrt((df - 2) / df), df)
    assert abs((np.abs(v) > 4 * 0.02).mean() - tail) < 4 * math.sqrt(tail / v.size)
    # The normal draws are the same z as without tails, rescaled by sqrt((df - 2) / G) > 0.
    normal = simulate(orders=("none", "A"), seeds=S, languages=("a1", "b1"), families=FAMILIES, run_sd=0.02,
                      n_examples=1, outcomes=False, seed=3).truth.run_effects["effect"].to_numpy()  # fmt: skip
    assert (np.sign(v) == np.sign(normal)).all()


def test_outlier_runs_are_flagged_and_shifted():
    S = 200
    common = dict(orders=("none", "A"), seeds=S, languages=("a1", "a2", "b1"), families=FAMILIES, tasks=("x", "y"),
                  n_examples=100, seed=11)  # fmt: skip
    sim = simulate(**common, outlier_rate=0.25, outlier_shift=0.2)
    cells = sim.truth.cells
    runs = cells.groupby("run_id")["outlier"].agg(["nunique", "first"])
    assert (runs["nunique"] == 1).all()  # every task and language of a run
    share = runs["first"].mean()
    assert abs(share - 0.25) < 4 * math.sqrt(0.25 * 0.75 / (2 * S))
    total = (0.70 + cells["language_effect"] + cells["delta"] + cells["seed_effect"] + cells["run_effect"]
             + cells["residual_effect"] - 0.2 * cells["outlier"])  # fmt: skip
    np.testing.assert_allclose(cells["linear_predictor"], total, rtol=0, atol=1e-15)
    assert sim.truth.run_effects.groupby("run_id")["outlier"].first().equals(runs["first"].rename("outlier"))
    # Everything else is drawn as without outliers: the shift is the only difference.
    plain = simulate(**common).truth.cells
    np.testing.assert_allclose(plain["p_raw"] - cells["p_raw"], 0.2 * cells["outlier"], rtol=0, atol=1e-12)
    # In the scores: outlier runs are 0.2 lower on average (SE from run noise and binomial noise).
    scores = sim.scores.merge(cells[["run_id", "task", "language", "outlier"]], on=["run_id", "task", "language"])
    by_run = scores.groupby("run_id").agg(score=("score", "mean"), outlier=("outlier", "first"))
    gap = by_run.loc[~by_run["outlier"], "score"].mean() - by_run.loc[by_run["outlier"], "score"].mean()
    assert abs(gap - 0.2) < 0.02


def test_unequal_seeds_and_missing_cells_drop_rows_not_draws():
    change = dict(seeds_per_order={"nli>qa": 2, "qa>nli": 1}, missing_cells=0.3)
    full, sim = simulate(**SMALL, seed=5), simulate(**SMALL, **change, seed=5)
    truth, cells = sim.truth, sim.truth.cells
    T, L, N = 2, 5, 50
    assert truth.seeds_per_order == {"none": 4, "nli>qa": 2, "qa>nli": 1}
    assert truth.seeds == (1, 2, 3, 4)
    kept = {order: set(cells.loc[cells["order"] == order, "seed"]) for order in SMALL["orders"]}
    assert kept == {"none": {1, 2, 3, 4}, "nli>qa": {1, 2}, "qa>nli": {1}}
    assert len(cells) == (4 + 2 + 1) * T * L
    # Missing cells stay in the truth, flagged, and leave scores and predictions.
    observed = cells[~cells["missing"]]
    assert len(sim.scores) == len(observed) and len(sim.predictions) == len(observed) * N
    assert (sim.scores["run_id"].to_numpy() == observed["run_id"].to_numpy()).all()
    assert (sim.scores["language"].to_numpy() == observed["language"].to_numpy()).all()
    assert (cells.groupby(["run_id", "language"])["missing"].nunique() == 1).all()  # for every task of a run
    pairs = cells.drop_duplicates(["run_id", "language"])
    share = pairs["missing"].mean()
    assert 0 < share < 0.6  # 35 run x language pairs at 0.3
    # The kept rows are the full design's rows, unchanged.
    key = ["run_id", "task", "language"]
    joined = sim.scores.merge(full.scores, on=key, suffixes=("", "_full"), validate="one_to_one")
    assert len(joined) == len(sim.scores)
    np.testing.assert_array_equal(joined["score"], joined["score_full"])
    means = sim.predictions.groupby(key, as_index=False)["correct"].mean()
    both = sim.scores.merge(means, on=key, validate="one_to_one")
    assert len(both) == len(sim.scores)
    np.testing.assert_array_equal(both["score"], both["correct"])
    # Fewer seeds give the same draws for the seeds kept (new streams are per seed value too).
    noisy = dict(run_family_sd=0.02, outlier_rate=0.5, outlier_shift=0.1, run_tail_df=4.0, missing_cells=0.3)
    few, many = simulate(**{**SMALL, "seeds": 2}, **noisy), simulate(**SMALL, **noisy)
    head = many.truth.cells[many.truth.cells["seed"] <= 2].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(few.truth.cells.sort_values(key).reset_index(drop=True), head)
    # Contrasts count the kept seeds.
    table = truth.expected_contrasts(pairwise=True).drop_duplicates(["order", "baseline"])
    assert dict(zip(zip(table["order"], table["baseline"]), table["n_seeds"])) == {
        ("nli>qa", "none"): 2, ("qa>nli", "none"): 1, ("qa>nli", "nli>qa"): 1,
    }  # fmt: skip


LOGIT_DESIGN = dict(
    orders=("none", "A"),
    languages=("x1", "x2", "x3", "y1"),
    families={"x1": "F", "x2": "F", "x3": "F", "y1": "G"},
    scale="logit",
    base=0.95,
    language_sd=0.8,
    seed_sd=0.5,
    run_sd={"none": 0.5, "A": 1.2},
    run_family_sd=0.5,
    residual_sd=0.3,
    family_sd_scale={"F": 1.5},
    effects={("A", "F"): 0.4},
    n_examples=1,
    outcomes=False,
    seed=4,
)


@pytest.mark.parametrize(
    "extra",
    [{}, {"run_tail_df": 3.0}, {"effects": {("A", "F"): 1.5}, "run_tail_df": 5.0, "outlier_rate": 0.3, "outlier_shift": 3.0}],
    ids=["normal", "t", "t-outliers"],
)
def test_logit_expected_contrasts_match_brute_force(extra):
    # Brute force: simulate many seeds and average p[A] - p[none] (the expected score of
    # each cell) over seeds and the family's languages. The language effects are the
    # same in every seed, so this estimates the difference conditional on them. The
    # designs are sensitive: treating the t terms as normal moves the difference by
    # about 6.5 SEs ("t"), ignoring the outliers by 17 SEs ("t-outliers", family F).
    S = 10_000
    sim = simulate(**{**LOGIT_DESIGN, **extra}, seeds=S)
    table = _matches_brute_force(sim, S)
    # G has no planted effect, but A's larger run SD lowers its mean near the ceiling.
    assert table.loc["G", "delta"] == 0.0 and table.loc["G", "difference"] < -0.01
    if not extra:
        # Normal terms: E[expit(c + s Z)] by scipy's adaptive quad, to 1e-9.
        effects = sim.truth.language_effects.set_index("language")["effect"]
        variance = {order: 0.5**2 + (1.5 * sd) ** 2 + (1.5 * 0.5) ** 2 + (1.5 * 0.3) ** 2 for order, sd in LOGIT_DESIGN["run_sd"].items()}
        mean = lambda c, v: integrate.quad(lambda z: expit(c + math.sqrt(v) * z) * stats.norm.pdf(z), -15, 15,  # noqa: E731
                                           epsabs=1e-12)[0]  # fmt: skip
        languages = ("x1", "x2", "x3")
        exact = np.mean([mean(logit(0.95) + effects[x] + 0.4, variance["A"]) - mean(logit(0.95) + effects[x], variance["none"])
                         for x in languages])  # fmt: skip
        assert abs(table.loc["F", "difference"] - exact) < 1e-9


def _matches_brute_force(sim, S: int) -> pd.DataFrame:
    """expected_contrasts against the mean over S simulated seeds of the drawn cell means
    (families F and G, order A minus none, within 4 Monte Carlo SEs); the table, by family."""
    table = sim.truth.expected_contrasts().set_index("family")
    cells = sim.truth.cells
    for family in ("F", "G"):
        per_seed = cells[cells["family"] == family].groupby(["order", "seed"])["p"].mean().unstack("order")
        d = per_seed["A"] - per_seed["none"]
        se = d.std(ddof=1) / math.sqrt(S)
        assert abs(d.mean() - table.loc[family, "difference"]) < 4 * se, (family, d.mean(), se)
    return table


def test_probability_expected_contrasts_with_noise_match_brute_force():
    # Near the clip bound with t tails, outliers and scaled SDs. language_sd = 0, so the
    # language effect the probability scale integrates out is 0 in every draw too.
    S = 10_000
    langs = {"x1": "F", "x2": "F", "x3": "F", "y1": "G"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clipping, as intended
        sim = simulate(orders=("none", "A"), seeds=S, languages=tuple(langs), families=langs, base=0.93, language_sd=0.0,
                       seed_sd=0.0, run_sd={"none": 0.02, "A": 0.05}, run_family_sd=0.02, residual_sd=0.01,
                       family_sd_scale={"F": 1.5}, language_sd_scale={"x1": 3.0}, effects={("A", "F"): 0.03},
                       run_tail_df=3.0, outlier_rate=0.2, outlier_shift=0.1, n_examples=1, outcomes=False, seed=4)  # fmt: skip
    table = _matches_brute_force(sim, S)
    assert table.loc["F", "difference"] < 0.02  # clipping eats a third of the planted 0.03


@pytest.mark.parametrize("scale", ["probability", "logit"])
def test_no_planted_effect_and_equal_run_sds_give_an_exact_zero(scale):
    noisy = dict(run_sd=0.3 if scale == "logit" else 0.03, run_family_sd=0.02, family_sd_scale={"F2": 2.0},
                 language_sd_scale={"b1": 3.0}, run_tail_df=3.5, outlier_rate=0.1, outlier_shift=0.5,
                 seeds_per_order={"qa>nli": 2}, missing_cells=0.1)  # fmt: skip
    base = 0.95 if scale == "logit" else 0.96  # near the clip bound: corrections are not 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clipping near 0.98
        truth = simulate(**{**SMALL, "effects": {}}, scale=scale, base=base, **noisy).truth
    table = truth.expected_contrasts(pairwise=True)
    assert (table["difference"] == 0.0).all() and (table["delta"] == 0.0).all()


def test_truth_json_round_trip_with_the_noise_options(tmp_path):
    options = dict(scale="logit", base=0.9, run_family_sd=0.2, family_sd_scale={"F2": 2.5}, language_sd_scale={"a1": 0.5},
                   run_tail_df=4.5, outlier_rate=0.3, outlier_shift=1.0, seeds_per_order={"qa>nli": 3}, missing_cells=0.2)  # fmt: skip
    truth = simulate(**SMALL, **options, seed=12).truth
    back = Truth.from_json(truth.to_json(tmp_path / "truth.json"))
    assert back == truth
    pd.testing.assert_frame_equal(back.cells, truth.cells)
    pd.testing.assert_frame_equal(back.expected_contrasts(pairwise=True), truth.expected_contrasts(pairwise=True))
    assert (back.scale, back.run_family_sd, back.run_tail_df, back.outlier_rate, back.outlier_shift, back.missing_cells) == (
        "logit", 0.2, 4.5, 0.3, 1.0, 0.2,
    )  # fmt: skip
    assert back.family_sd_scale == {"F1": 1.0, "F2": 2.5, "F3": 1.0}
    assert back.language_sd_scale == {"a1": 0.5, "a2": 1.0, "b1": 1.0, "b2": 1.0, "c1": 1.0}
    assert back.seeds_per_order == {"none": 4, "nli>qa": 4, "qa>nli": 3}
    assert back.cells["outlier"].dtype == bool and back.cells["missing"].dtype == bool
    assert truth != simulate(**SMALL, **{**options, "outlier_shift": 0.5}, seed=12).truth
    # A version 1 truth (written before these options) reads as one with every option off.
    plain = simulate(**SMALL, seed=12).truth
    data = plain.to_dict()
    for name in ("scale", "run_family_sd", "family_sd_scale", "language_sd_scale", "run_tail_df", "outlier_rate",
                 "outlier_shift", "seeds_per_order", "missing_cells"):  # fmt: skip
        del data["parameters"][name]
    for column in ("family_scale", "run_family_effect", "outlier", "linear_predictor", "missing"):
        del data["cells"][column]
    assert Truth.from_dict({**data, "version": 1}) == plain
    with pytest.raises(InputError):
        Truth.from_dict({**plain.to_dict(), "version": 99})


# --- the command line -----------------------------------------------------------------


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


def test_cli_needs_out_or_db(app):
    result = _invoke(app, ["--seeds", "2"])
    assert isinstance(result.exception, InputError)
    assert "--out" in str(result.exception) and "--db" in str(result.exception)


def test_cli_writes_files_with_the_given_parameters(app, tmp_path):
    args = [
        "--out", str(tmp_path / "sim"), "--format", "csv", "--orders", "none,nli>qa", "--seeds", "3",
        "--languages", "a1,b1,c1", "--family", "a1=F1", "--family", "b1=F2", "--family", "c1=F3",
        "--effect", "nli>qa:F1=0.05", "--effect", "nli>qa:*=0.01", "--run-sd", "0.02", "--run-sd", "nli>qa=0.03",
        "--n-examples", "20", "--task", "xnli", "--task", "pawsx", "--experiment", "exp", "--seed", "4",
        "--example-correlation", "0.2",
    ]  # fmt: skip
    result = _invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "simulated 6 runs" in result.output
    truth = Truth.from_json(tmp_path / "sim" / "truth.json")
    assert truth.run_sd == {"none": 0.02, "nli>qa": 0.03}
    assert truth.tasks == ("xnli", "pawsx") and truth.seed == 4 and truth.example_correlation == 0.2
    deltas = truth.deltas.set_index(["task", "order", "family"])["delta"]
    assert deltas[("pawsx", "nli>qa", "F1")] == 0.05 and deltas[("pawsx", "nli>qa", "F2")] == 0.01
    scores = pd.read_csv(tmp_path / "sim" / "scores.csv")
    assert len(scores) == 2 * 3 * 2 * 3 and set(scores["experiment"]) == {"exp"}
    assert (tmp_path / "sim" / "predictions.csv").exists()


def test_cli_passes_the_noise_options(app, tmp_path):
    args = [
        "--out", str(tmp_path / "sim"), "--orders", "none,nli>qa", "--seeds", "3", "--languages", "a1,a2,b1",
        "--family", "a1=F1", "--family", "a2=F1", "--family", "b1=F2", "--n-examples", "10", "--scale", "logit",
        "--base", "0.95", "--run-family-sd", "0.2", "--family-sd-scale", "F1=4", "--language-sd-scale", "b1=0.5",
        "--run-tail-df", "3", "--outlier-rate", "0.5", "--outlier-shift", "1.5", "--seeds-per-order", "nli>qa=2",
        "--missing-cells", "0.2", "--no-outcomes",
    ]  # fmt: skip
    result = _invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "simulated 5 runs (2 orders x 2-3 seeds)" in result.output
    truth = Truth.from_json(tmp_path / "sim" / "truth.json")
    assert (truth.scale, truth.base, truth.run_family_sd, truth.run_tail_df) == ("logit", 0.95, 0.2, 3.0)
    assert (truth.outlier_rate, truth.outlier_shift, truth.missing_cells) == (0.5, 1.5, 0.2)
    assert truth.family_sd_scale == {"F1": 4.0, "F2": 1.0}
    assert truth.language_sd_scale == {"a1": 1.0, "a2": 1.0, "b1": 0.5}
    assert truth.seeds_per_order == {"none": 3, "nli>qa": 2}
    same = simulate(orders=("none", "nli>qa"), seeds=3, languages=("a1", "a2", "b1"), families=truth.families,
                    n_examples=10, outcomes=False, scale="logit", base=0.95, run_family_sd=0.2, family_sd_scale={"F1": 4.0},
                    language_sd_scale={"b1": 0.5}, run_tail_df=3, outlier_rate=0.5, outlier_shift=1.5,
                    seeds_per_order={"nli>qa": 2}, missing_cells=0.2)  # fmt: skip
    assert same.truth == truth


def test_cli_rejects_bad_options(app, tmp_path):
    out = ["--out", str(tmp_path / "x"), "--languages", "a1", "--family", "a1=F1"]
    for extra in (["--effect", "nli>qa-Uralic"], ["--run-sd", "abc"], ["--run-sd", "0.1", "--run-sd", "0.2"],
                  ["--orders", "none,,qa"], ["--family", "a1"], ["--run-sd", "zz=0.1"], ["--scale", "log"],
                  ["--family-sd-scale", "F1"], ["--family-sd-scale", "F1=big"], ["--family-sd-scale", "Nope=2"],
                  ["--family-sd-scale", "F1=2", "--family-sd-scale", "F1=3"], ["--seeds-per-order", "nli>qa=2.5"],
                  ["--seeds-per-order", "nli>qa=9"], ["--run-tail-df", "2"], ["--outlier-rate", "2"],
                  ["--missing-cells", "1"], ["--language-sd-scale", "a1=inf"]):
        result = _invoke(app, [*out, *extra])
        assert result.exit_code != 0 and isinstance(result.exception, (InputError, DesignError)), extra


def test_cli_stores_into_a_warehouse_with_the_truth_beside_it(app, tmp_path):
    from seqrob import warehouse

    db = tmp_path / "runs.duckdb"
    args = ["--db", str(db), "--seeds", "2", "--languages", "en,fi,et", "--family", "en=Indo-European",
            "--family", "fi=Uralic", "--family", "et=Uralic", "--n-examples", "10"]  # fmt: skip
    result = _invoke(app, args)
    assert result.exit_code == 0, result.output
    truth_path = tmp_path / "runs.simulated.truth.json"
    assert truth_path.exists() and str(truth_path) in result.output.replace("\n", "")
    truth = Truth.from_json(truth_path)
    with warehouse.Warehouse(db, read_only=True) as wh:
        n_scores = wh.con.execute("SELECT count(*) FROM scores").fetchone()[0]
        n_predictions = wh.con.execute("SELECT count(*) FROM predictions").fetchone()[0]
        stored = wh.con.execute("SELECT sum(score) FROM scores").fetchone()[0]
    assert n_scores == 3 * 2 * 3 and n_predictions == 3 * 2 * 3 * 10
    same = simulate(seeds=2, languages=("en", "fi", "et"), families=truth.families, n_examples=10)
    assert same.truth == truth
    assert stored == pytest.approx(same.scores["score"].sum(), abs=1e-12)
    # Storing the same runs again is a no-op; the truth is rewritten unchanged.
    again = _invoke(app, args)
    assert again.exit_code == 0, again.output
    assert Truth.from_json(truth_path) == truth
