"""Tests of seqrob.analysis.mixed: against lme4 and statsmodels, the pseudo-replication
trap, planted effects, degenerate designs and the coverage of the contrast intervals.

Reference numbers: tests/reference/lme4_*.json, written by tests/reference/lme4_reference.R
(R 4.2.2, lme4 1.1-31, lmerTest 3.1-3) from tests/reference/lme4_data_*.csv (see the README
there); the order F tests against tests/reference/lmertest_*.json, written by
tests/reference/lmertest_reference.R (lmerTest 3.1-3, pbkrtest 0.5.2 for the Kenward-Roger
values kept beside them). R is not needed to run these tests.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqrob.analysis.mixed import fit_mixed, order_tests
from seqrob.analysis.mixed_tests import _f_test, _order_coefficients, _run_means_f, _type2_rows
from seqrob.analysis.results import COLUMNS
from seqrob.warehouse.errors import DesignError, InputError
from seqrob.warehouse.simulate import DEFAULT_FAMILIES, simulate

REFERENCE = Path(__file__).parent / "reference"
DATASETS = ("null", "planted", "unbalanced")
TEN = ["en", "de", "fr", "es", "fi", "et", "hu", "ta", "te", "ml"]  # 3 families: 4 + 3 + 3


def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / f"lme4_data_{name}.csv")


def _reference(name: str) -> dict:
    return json.loads((REFERENCE / f"lme4_{name}.json").read_text())


def _lmertest(name: str) -> dict:
    return json.loads((REFERENCE / f"lmertest_{name}.json").read_text())


def _components(varcorr: list[dict]) -> dict[str, float]:
    """lme4's VarCorr (as.data.frame) in seqrob's names."""
    out = {}
    for row in varcorr:
        match = re.match(r'dummy\(order, "(.*)"\)', row["var1"])
        if match:
            out[f"run:{match.group(1)}"] = row["vcov"]
        else:
            out[{"seed": "seed", "seed:order": "run", "language": "language", "Residual": "residual"}.get(
                row["grp"], "seed")] = row["vcov"]  # fmt: skip
    return out


def _assert_components(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs)
    for name, value in theirs.items():
        # lme4 stops a boundary estimate at ~1e-17 instead of 0; else 1e-5 relative.
        assert ours[name] == pytest.approx(value, rel=1e-5, abs=1e-12), name


# --- lme4 ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=DATASETS)
def case(request):
    name = request.param
    data = _data(name)
    return {
        "name": name,
        "ref": _reference(name),
        "ml": fit_mixed(data, method="ML"),
        "reml": fit_mixed(data),
        "tests": order_tests(data),
        "data": data,
    }


@pytest.mark.parametrize("criterion", ["ml", "reml"])
def test_fit_equals_lme4(case, criterion):
    # lme4: logLik(), fixef(), sqrt(diag(vcov())), as.data.frame(VarCorr()), REML=FALSE / TRUE.
    ref, fit = case["ref"][criterion], case[criterion]
    assert fit.converged
    assert fit.log_likelihood == pytest.approx(ref["logLik"], abs=1e-6)
    fixed = fit.fixed_effects.set_index("term")
    assert list(fixed.index) == list(ref["fixef"])  # same coding, same dropped columns
    np.testing.assert_allclose(fixed["estimate"], list(ref["fixef"].values()), rtol=0, atol=1e-8)
    np.testing.assert_allclose(fixed["se"], list(ref["se"].values()), rtol=1e-5)
    _assert_components(fit.variance_components, _components(ref["varcorr"]))


def test_satterthwaite_df_equal_lmertest(case):
    # lmerTest: summary(lmer(..., REML = TRUE))$coefficients[, "df"].
    df = case["reml"].fixed_effects.set_index("term")["df"]
    np.testing.assert_allclose(df, list(case["ref"]["reml"]["satterthwaite_df"].values()), rtol=1e-4)


def test_order_tests_equal_lmertest(case):
    # tests/reference/lmertest_reference.R, REML fit:
    # lrt_order_family = lmerTest anova(fit, type = 2, ddf = "Satterthwaite")["order:family", ]: F, DenDF, p.
    # lrt_order = Lancaster's combination of an order F test and that order:family F test,
    # qchisq(p_order, q1, lower = FALSE) + qchisq(p_int, q2, lower = FALSE) on q1 + q2 df, where the
    # order F test is the exact one on run means, anova(lm(m ~ seed + order)), in complete designs
    # (null, planted) and lmerTest's type II Satterthwaite F otherwise (unbalanced).
    table = case["tests"].set_index("test")
    ref = _lmertest(case["name"])
    interaction = ref["satterthwaite"]["type2"]["order:family"]
    row = table.loc["lrt_order_family"]
    assert row["statistic"] == pytest.approx(interaction["F"], rel=1e-6)
    assert row["df"] == pytest.approx(interaction["ddf"], rel=1e-5)
    assert row["p_value"] == pytest.approx(interaction["p"], rel=1e-5)
    assert f"F on {interaction['ndf']} and" in row["method"]
    complete = "run_means" in ref
    assert complete == (case["name"] != "unbalanced")
    combined = ref["run_means"]["lancaster"] if complete else ref["satterthwaite"]["lancaster"]
    order = ref["run_means"]["order"] if complete else ref["satterthwaite"]["type2"]["order"]
    row = table.loc["lrt_order"]
    assert row["statistic"] == pytest.approx(combined["statistic"], rel=1e-6)
    assert row["df"] == combined["df"]
    assert row["p_value"] == pytest.approx(combined["p"], rel=1e-5)
    assert f"F = {order['F']:.4g} on {order['ndf']} and {order['ddf']:.4g} df" in row["method"]
    assert ("exact F on run means" in row["method"]) == complete


@pytest.mark.parametrize("name", ["null", "planted"])
def test_order_f_tests_equal_lmertest_and_the_run_means_anova(name):
    # seqrob's two F tests of the order main effect on the complete designs: the exact F on run
    # means (reference: anova(lm(m ~ seed + order)) in lmertest_reference.R) and lmerTest's type II
    # Satterthwaite F (anova(fit, type = 2)["order", ]). planted: no variance estimated at 0, so
    # the two agree (F and df). null: the seed variance is estimated at 0, REML pools the seed
    # stratum into the run stratum, and the Satterthwaite F and df grow (1.72 on 2 and 12 df
    # against the exact 1.40 on 2 and 8, which are Kenward-Roger's df) -- why order_tests uses
    # the exact F where the design is complete.
    state = fit_mixed(_data(name))._state
    main, interaction = _order_coefficients(state)
    exact, satterthwaite = _run_means_f(state.prep), _f_test(state, _type2_rows(state, main, interaction))
    ref = _lmertest(name)
    for ours, theirs in ((exact, ref["run_means"]["order"]), (satterthwaite, ref["satterthwaite"]["type2"]["order"])):
        assert ours["F"] == pytest.approx(theirs["F"], rel=1e-6)
        assert ours["ndf"] == theirs["ndf"]
        assert ours["ddf"] == pytest.approx(theirs["ddf"], rel=1e-5)
        assert ours["p"] == pytest.approx(theirs["p"], rel=1e-5)
    if name == "planted":
        assert exact["F"] == pytest.approx(satterthwaite["F"], rel=1e-6)
        assert exact["ddf"] == pytest.approx(satterthwaite["ddf"], rel=1e-5)
    else:
        assert exact["ddf"] == 8 == pytest.approx(ref["kenward_roger"]["type2"]["order"]["ddf"])
        assert satterthwaite["ddf"] == pytest.approx(12, rel=1e-5)


def test_run_variance_lrt_equals_lme4(case):
    # lme4: anova(REML common, REML by-order, refit = FALSE).
    table = case["tests"].set_index("test")
    ref = case["ref"]["lrt"]["run_variance"]
    assert table.loc["run_variance_lrt", "statistic"] == pytest.approx(ref["chisq"], rel=1e-6, abs=1e-6)
    assert table.loc["run_variance_lrt", "df"] == ref["df"]
    assert table.loc["run_variance_lrt", "p_value"] == pytest.approx(ref["p"], rel=1e-5)


def test_few_seeds_f_tests_equal_lmertest():
    # 3 seeds x 4 orders x 30 languages in 12 families (lmertest_data_few_seeds.csv): the
    # order test's hypothesis spans the run stratum (order main effect, exact F on 3 and 6 df)
    # and the residual stratum (order x family, 33 and 286 df).
    data = pd.read_csv(REFERENCE / "lmertest_data_few_seeds.csv")
    ref = _lmertest("few_seeds")
    table = order_tests(data).set_index("test")
    assert ref["run_means"]["order"]["ddf"] == 6
    assert table.loc["lrt_order", "p_value"] == pytest.approx(ref["run_means"]["lancaster"]["p"], rel=1e-5)
    interaction = ref["satterthwaite"]["type2"]["order:family"]
    assert table.loc["lrt_order_family", "p_value"] == pytest.approx(interaction["p"], rel=1e-5)


def test_run_variance_by_order_equals_lme4(case):
    # lme4: (1|seed) + (0 + dummy(order, 'o') | seed) for every order o + (1|language), REML.
    fit = fit_mixed(case["data"], run_variance="by_order")
    ref = case["ref"]["reml_by_order"]
    assert fit.log_likelihood == pytest.approx(ref["logLik"], abs=1e-6)
    _assert_components(fit.variance_components, _components(ref["varcorr"]))


def test_emmeans_and_contrasts_equal_lme4(case):
    # R: model.matrix(~ order * family, cells) %*% fixef(), sqrt(L V L'), and
    # lmerTest::contest1D(fit, L, ddf = "Satterthwaite")$df, on the REML fit.
    emmeans = case["reml"].emmeans.set_index(["term", "family"])
    ref = pd.DataFrame(case["ref"]["emmeans"]).set_index(["order", "family"])
    assert len(emmeans) == len(ref)
    joined = emmeans.merge(ref.rename_axis(["term", "family"]), left_index=True, right_index=True, suffixes=("", "_r"))
    np.testing.assert_allclose(joined["estimate"], joined["estimate_r"], atol=1e-8)
    np.testing.assert_allclose(joined["df"], joined["df_r"], rtol=1e-4)
    se = (joined["ci_high"] - joined["estimate"]) / _t(joined["df"])
    np.testing.assert_allclose(se, joined["se"], rtol=1e-5)

    contrasts = case["tests"].query("test == 'contrast'").set_index(["family", "term"])
    ref = pd.DataFrame(case["ref"]["contrasts"]).set_index(["family", "term"])
    assert sorted(contrasts.index) == sorted(ref.index)
    joined = contrasts.merge(ref, left_index=True, right_index=True, suffixes=("", "_r"))
    np.testing.assert_allclose(joined["estimate"], joined["estimate_r"], atol=1e-8)
    np.testing.assert_allclose(joined["df"], joined["df_r"], rtol=1e-4)
    np.testing.assert_allclose(joined["estimate"] / joined["statistic"], joined["se"], rtol=1e-5)


def _t(df):
    from scipy import stats

    return stats.t.ppf(0.975, df)


def test_result_rows_use_the_vocabulary(case):
    table = case["tests"]
    assert tuple(table.columns) == COLUMNS
    assert list(table["test"].unique()) == ["lrt_order", "lrt_order_family", "contrast", "run_variance_lrt"]
    assert table["p_adjusted"].isna().all()
    contrasts = table.query("test == 'contrast'")
    assert contrasts[["estimate", "ci_low", "ci_high", "statistic", "df", "p_value", "n"]].notna().all().all()
    assert set(contrasts["term"]) >= {"nli>qa vs none", "qa>nli vs none", "qa>nli vs nli>qa"}


# --- the trap -------------------------------------------------------------------------


def test_without_the_run_term_seed_noise_looks_like_an_order_effect():
    # Data without any order effect, run SD 0.02. lmerTest on the same data
    # (lmertest_null.json): without (1|seed:order) the order test gives p = 1e-7; with it 0.25.
    data = _data("null")
    ref = _lmertest("null")
    trap = order_tests(data, random=("seed", "language")).set_index("test")
    ours = order_tests(data).set_index("test")
    assert trap.loc["lrt_order", "p_value"] == pytest.approx(ref["trap"]["lancaster"]["p"], rel=1e-5)
    assert trap.loc["lrt_order", "p_value"] < 1e-4
    assert ours.loc["lrt_order", "p_value"] > 0.05


# --- statsmodels ----------------------------------------------------------------------


@pytest.mark.parametrize("reml", [False, True])
def test_equals_statsmodels_mixedlm(reml):
    # statsmodels MixedLM with one group and three variance components, in points
    # (on proportions it warns about the boundary); converged on this data set.
    import statsmodels.formula.api as smf

    data = _data("planted")
    points = data.assign(y=data["score"] * 100, run=data["order"] + "-" + data["seed"].astype(str), g=1)
    model = smf.mixedlm(
        "y ~ C(order) * C(family)", points, groups="g", re_formula="0",
        vc_formula={"seed": "0 + C(seed)", "run": "0 + C(run)", "language": "0 + C(language)"},
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit(reml=reml, method=["lbfgs"])
    assert result.converged
    fit = fit_mixed(data, method="REML" if reml else "ML")
    # Their log-likelihood is of the data in points: add the Jacobian n log 100 (n - p for REML).
    n_eff = len(data) - (len(fit.fixed_effects) if reml else 0)
    assert fit.log_likelihood == pytest.approx(result.llf + n_eff * math.log(100), abs=1e-5)
    names = dict(zip(model.exog_vc.names, result.vcomp / 1e4))
    ours = fit.variance_components
    for name in ("seed", "run", "language"):
        assert ours[name] == pytest.approx(names[name], rel=1e-3)
    assert ours["residual"] == pytest.approx(result.scale / 1e4, rel=1e-4)
    # Cell means do not depend on the coding of the fixed effects.
    fe = model.exog @ result.fe_params.to_numpy() / 100
    cells = points.assign(fe=fe).groupby(["order", "family"])["fe"].first()
    emmeans = fit.emmeans.set_index(["term", "family"])["estimate"]
    for (order, family), value in cells.items():
        assert emmeans[(order, family)] == pytest.approx(value, abs=1e-6)


# --- planted effects ------------------------------------------------------------------


def test_planted_effect_is_recovered():
    # A 5-point effect of nli>qa in Uralic only. Checked: the contrasts of nli>qa (the
    # planted order) in every family. The qa>nli vs none contrasts and the other families'
    # qa>nli vs nli>qa are nulls tested at 5% each, so demanding that all of them are
    # non-significant would fail by design for about a quarter of the simulation seeds.
    sim = simulate(seeds=6, languages=TEN, families=DEFAULT_FAMILIES, effects={("nli>qa", "Uralic"): 0.05},
                   outcomes=False, seed=9)  # fmt: skip
    table = order_tests(sim.scores)
    truth = sim.truth.expected_contrasts(pairwise=True).set_index(["family", "order", "baseline"])["difference"]
    contrasts = table.query("test == 'contrast'").set_index(["family", "term"])
    for family in ("Indo-European", "Uralic", "Dravidian"):
        row = contrasts.loc[(family, "nli>qa vs none")]
        true = truth[(family, "nli>qa", "none")]
        assert row["ci_low"] <= true <= row["ci_high"], family
        assert (row["p_value"] < 0.05) == (family == "Uralic"), (family, row["p_value"])
    other = contrasts.loc[("Uralic", "qa>nli vs nli>qa")]
    assert other["ci_low"] <= truth[("Uralic", "qa>nli", "nli>qa")] <= other["ci_high"]
    assert other["p_value"] < 0.05
    assert contrasts.loc[("Uralic", "nli>qa vs none"), "estimate"] == pytest.approx(0.05, abs=0.01)
    assert table.set_index("test").loc["lrt_order_family", "p_value"] < 0.05


def test_proportions_and_points_give_the_same_fit():
    data = _data("planted")
    fit = fit_mixed(data)
    points = fit_mixed(data.assign(score=data["score"] * 100))
    assert fit.scale == 100 and points.scale == 1
    np.testing.assert_allclose(points.fixed_effects["estimate"], fit.fixed_effects["estimate"] * 100, rtol=1e-6)
    for name, value in fit.variance_components.items():
        assert points.variance_components[name] == pytest.approx(value * 1e4, rel=1e-5)
    n_eff = fit.n_obs - len(fit.fixed_effects)
    assert points.log_likelihood == pytest.approx(fit.log_likelihood - n_eff * math.log(100), abs=1e-6)


def test_order_tests_groups_by_task_and_metric():
    sim = simulate(seeds=3, languages=TEN[:7], families=DEFAULT_FAMILIES, tasks=("xnli", "pawsx"),
                   outcomes=False, seed=2)  # fmt: skip
    table = order_tests(sim.scores)
    assert set(table["task"]) == {"xnli", "pawsx"}
    assert set(table["metric"]) == {"accuracy"}
    with pytest.raises(DesignError, match="one task and metric"):
        fit_mixed(sim.scores)


def test_order_tests_of_a_given_fit_are_those_of_their_own_fit(case):
    given = order_tests(case["data"], fit=case["reml"])
    pd.testing.assert_frame_equal(given, case["tests"], check_exact=True)
    assert given.attrs["warnings"] == case["tests"].attrs["warnings"]


def test_order_tests_refuse_a_fit_of_other_scores_or_another_model():
    data = _data("planted")
    with pytest.raises(InputError, match="MixedFit"):
        order_tests(data, fit="a fit")
    with pytest.raises(InputError, match="ML fit"):
        order_tests(data, fit=fit_mixed(data, method="ML"))
    with pytest.raises(InputError, match="REML fit of .*dummy"):
        order_tests(data, fit=fit_mixed(data, run_variance="by_order"))
    with pytest.raises(InputError, match="not a fit of these scores"):
        order_tests(_data("null"), fit=fit_mixed(data))
    with pytest.raises(InputError, match="not a fit of these scores"):
        order_tests(data, fit=fit_mixed(data, baseline="nli>qa"))
    sim = simulate(seeds=3, languages=TEN[:7], families=DEFAULT_FAMILIES, tasks=("xnli", "pawsx"),
                   outcomes=False, seed=2)  # fmt: skip
    with pytest.raises(InputError, match="2 task x metric groups"):
        order_tests(sim.scores, fit=fit_mixed(sim.scores[sim.scores["task"] == "xnli"]))


# --- degenerate designs ---------------------------------------------------------------


def _clean(table: pd.DataFrame, columns=("estimate", "ci_low", "ci_high", "df")) -> None:
    assert len(table)
    assert table[list(columns)].notna().all().all()


def test_one_seed_drops_seed_and_run_terms():
    sim = simulate(seeds=1, languages=TEN, families=DEFAULT_FAMILIES, outcomes=False, seed=3)
    fit = fit_mixed(sim.scores)
    assert math.isnan(fit.variance_components["seed"]) and math.isnan(fit.variance_components["run"])
    assert any("'run' dropped" in w for w in fit.warnings)
    assert any("one seed" in w for w in fit.warnings)
    _clean(fit.emmeans)
    table = order_tests(sim.scores)
    _clean(table.query("test == 'contrast'"))
    assert "run_variance_lrt" not in set(table["test"])  # no run term, no run-variance test


def test_one_order_has_no_order_test():
    sim = simulate(orders=("none",), seeds=4, languages=TEN, families=DEFAULT_FAMILIES, outcomes=False, seed=3)
    fit = fit_mixed(sim.scores)
    assert math.isnan(fit.variance_components["run"])
    _clean(fit.emmeans)
    table = order_tests(sim.scores)
    assert len(table) == 0 and tuple(table.columns) == COLUMNS
    assert any("one order" in message for *_, message in table.attrs["warnings"])


def test_single_language_families_and_missing_cells():
    # ja, ko: one language each; drop every qa>nli score in Uralic and 15% of the rest.
    sim = simulate(seeds=4, languages=[*TEN, "ja", "ko"], families=DEFAULT_FAMILIES, outcomes=False, seed=4)
    data = sim.scores
    rng = np.random.default_rng(0)
    data = data[(rng.random(len(data)) > 0.15) & ~((data["order"] == "qa>nli") & (data["family"] == "Uralic"))]
    fit = fit_mixed(data)
    assert fit.converged
    assert any("fixed-effect columns dropped" in w for w in fit.warnings)
    assert ("qa>nli", "Uralic") not in set(zip(fit.emmeans["term"], fit.emmeans["family"]))
    table = order_tests(data)
    contrasts = table.query("test == 'contrast'")
    _clean(contrasts)
    assert set(contrasts.query("family == 'Uralic'")["term"]) == {"nli>qa vs none"}
    assert {"Japonic", "Koreanic"} <= set(contrasts["family"])


def test_all_scores_equal():
    data = simulate(seeds=3, languages=TEN, families=DEFAULT_FAMILIES, outcomes=False).scores.assign(score=0.5)
    fit = fit_mixed(data)
    assert all(value == 0 for value in fit.variance_components.values())
    assert any("fit the scores exactly" in w for w in fit.warnings)
    table = order_tests(data)
    _clean(table.query("test == 'contrast'"), columns=("estimate", "ci_low", "ci_high", "statistic", "p_value"))
    assert (table.query("test == 'contrast'")["estimate"] == 0).all()
    f_tests = table["test"].isin(["lrt_order", "lrt_order_family"])
    assert (table.loc[~f_tests, "p_value"] == 1).all()
    # No residual variation: an F test would divide by zero, so none is given (never p = 0 or 1 by fiat).
    assert table.loc[f_tests, "p_value"].isna().all() and table.loc[f_tests, "method"].str.contains("no test").all()


def test_one_family_and_exact_order_effects():
    sim = simulate(seeds=3, languages=TEN[:4], families=DEFAULT_FAMILIES, outcomes=False, seed=5)
    table = order_tests(sim.scores)  # one family: no order x family test
    assert "lrt_order_family" not in set(table["test"])
    assert any("order:family" in message for *_, message in table.attrs["warnings"])
    # No noise at all: nli>qa is exactly 10 points up. The fixed effects fit exactly.
    exact = sim.scores.assign(score=0.5 + 0.1 * (sim.scores["order"] == "nli>qa"))
    table = order_tests(exact).set_index(["test", "term"])
    assert np.isnan(table.loc[("lrt_order", "order"), "p_value"])  # exact fit: no noise to test against
    assert table.loc[("contrast", "nli>qa vs none"), "estimate"] == pytest.approx(0.1)
    assert table.loc[("contrast", "qa>nli vs none"), ["estimate", "p_value"]].tolist() == [0.0, 1.0]
    # An exact sum of seed, order and language effects leaves the residual variance at 0.
    additive = exact.assign(score=exact["score"] + 0.01 * exact["seed"])
    with pytest.raises(DesignError, match="no residual"):
        fit_mixed(additive)


def test_boundary_estimate_is_a_warning_not_an_error():
    sim = simulate(seeds=4, languages=TEN, families=DEFAULT_FAMILIES, seed_sd=0.0, run_sd=0.0, outcomes=False)
    fit = fit_mixed(sim.scores)
    assert fit.converged
    assert any("boundary estimate" in w for w in fit.warnings)


def test_user_errors_are_named():
    data = _data("planted")
    with pytest.raises(DesignError, match="no column"):
        fit_mixed(data, dv="accuracy")
    with pytest.raises(DesignError, match="baseline order 'base'"):
        fit_mixed(data, baseline="base")
    with pytest.raises(DesignError, match="share an order, seed and language"):
        fit_mixed(pd.concat([data, data.head(1)]))
    with pytest.raises(DesignError, match="more than one family"):
        fit_mixed(data.assign(family=np.where(data.index == 0, "Other", data["family"])))
    with pytest.raises(InputError, match="method"):
        fit_mixed(data, method="OLS")
    with pytest.raises(InputError, match="random"):
        fit_mixed(data, random=("seed", "example"))


# --- calibration ----------------------------------------------------------------------


def test_contrast_intervals_cover_at_five_seeds():
    # 200 null data sets, 5 seeds x 3 orders x 10 languages in 3 families, run SD 0.03
    # (run noise dominates, so the df are small: median about 16): 1800 intervals.
    # Measured: Satterthwaite t intervals cover 94.3%, z intervals 92.4% (at 3 seeds:
    # 94.5% and 90.9%).
    covered, z_covered = [], []
    for i in range(200):
        sim = simulate(seeds=5, languages=TEN, families=DEFAULT_FAMILIES, run_sd=0.03, outcomes=False, seed=100 + i)
        contrasts = fit_mixed(sim.scores).contrasts()
        covered.append(((contrasts["ci_low"] <= 0) & (contrasts["ci_high"] >= 0)).to_numpy())
        z_covered.append((contrasts["statistic"].abs() <= 1.959964).to_numpy())
    coverage = float(np.mean(covered))
    assert 0.92 <= coverage <= 0.98, coverage
    assert float(np.mean(z_covered)) < coverage
