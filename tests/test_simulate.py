"""Tests of seqrob.warehouse.simulate: checks with known answers, not the code's own output.

Where a check is statistical, its tolerance is derived analytically from the
parameters (standard errors, chi-square quantiles, the bivariate normal CDF) and
set at about 4 standard errors; the seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import typer
from scipy import stats
from scipy.special import ndtri
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


def test_cli_rejects_bad_options(app, tmp_path):
    out = ["--out", str(tmp_path / "x"), "--languages", "a1", "--family", "a1=F1"]
    for extra in (["--effect", "nli>qa-Uralic"], ["--run-sd", "abc"], ["--run-sd", "0.1", "--run-sd", "0.2"],
                  ["--orders", "none,,qa"], ["--family", "a1"], ["--run-sd", "zz=0.1"]):
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
