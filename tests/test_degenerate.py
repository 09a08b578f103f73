"""Degenerate designs never produce a false verdict: every p-value is valid or absent.

Ties, constants, perfectly correlated seeds and 2 seeds per order make naive statistics
divide by zero (a Pitman-Morgan correlation of exactly 1, a Brown-Forsythe F of 1e29, a
paired t on identical differences). For order labels that are exchangeable -- every order
drawn from the same distribution, often from a handful of values so that ties are common
-- no test may return p < 1e-12, and every p lies in [0, 1] or is missing (with the reason
in ``method``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqrob.analysis.design import order_list
from seqrob.analysis.multiplicity import adjust
from seqrob.analysis.procedures import run_tests
from seqrob.analysis.results import result_frame

FAMILIES = {"de": "Indo-European", "fr": "Indo-European", "fi": "Uralic", "et": "Uralic"}


def _scores(values: np.ndarray, languages: list[str]) -> pd.DataFrame:
    """values: (orders, seeds, languages) scores -> seqrob's long format."""
    orders = ["none", "a", "b"][: values.shape[0]]
    rows = []
    for o, order in enumerate(orders):
        for s in range(values.shape[1]):
            for l, language in enumerate(languages):
                rows.append({"run_id": f"{order}-{s}", "order": order, "seed": s, "task": "t", "language": language,
                             "family": FAMILIES[language], "metric": "accuracy", "score": float(values[o, s, l])})  # fmt: skip
    return pd.DataFrame(rows)


def _rows(scores: pd.DataFrame) -> pd.DataFrame:
    seeds = int(scores.groupby("order")["seed"].nunique().min())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tests = run_tests(scores, None, orders=order_list(scores), alpha=0.05, n_boot=100, seed=0, min_seeds=seeds,
                          aso_boot=50, n_permutations=199, permutation_intervals=False)  # fmt: skip
    return adjust(result_frame(pd.concat(tests.frames, ignore_index=True)), correction="holm")


def _assert_valid(rows: pd.DataFrame) -> None:
    for column in ("p_value", "p_adjusted"):
        p = rows[column].dropna()
        assert ((p >= 0) & (p <= 1)).all(), rows.loc[p.index[(p < 0) | (p > 1)], ["test", "term", column]]
        tiny = rows.loc[p.index[p < 1e-12]]
        assert tiny.empty, tiny[["test", "term", "family", "statistic", column, "method"]].to_string()


@st.composite
def exchangeable_designs(draw):
    k = draw(st.integers(2, 3))
    seeds = draw(st.integers(2, 5))
    languages = draw(st.sampled_from([["de"], ["de", "fi"], ["de", "fr", "fi"], ["de", "fr", "fi", "et"]]))
    levels = draw(st.sampled_from([1, 2, 3, 50]))  # 1: constant scores; 2-3: ties everywhere; 50: few ties
    pool = np.round(np.linspace(0.4, 0.9, levels), 4)
    # The same draw for every order: the order labels are exchangeable.
    idx = draw(st.lists(st.integers(0, levels - 1), min_size=k * seeds * len(languages),
                        max_size=k * seeds * len(languages)))  # fmt: skip
    return _scores(pool[np.array(idx)].reshape(k, seeds, len(languages)), languages)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exchangeable_designs())
def test_no_test_returns_a_zero_p_value_on_exchangeable_degenerate_designs(scores):
    _assert_valid(_rows(scores))


def test_perfectly_correlated_seeds_give_no_pitman_morgan_p():
    # Two of three seeds give the same family means: corr(a + b, a - b) is exactly 1 and the
    # Pitman-Morgan t is infinite. Today's answer was p = 0 and an SD-ratio CI [2.4999995, 2.5000005].
    values = np.array([[[0.5], [0.5], [0.6]], [[0.5], [0.5], [0.75]]])
    rows = _rows(_scores(values, ["de"]))
    pm = rows[rows["test"] == "pitman_morgan"]
    assert len(pm) and pm["p_value"].isna().all() and pm["ci_low"].isna().all()
    assert pm["method"].str.contains("degenerate").all()
    _assert_valid(rows)


def test_two_seeds_give_no_levene_p():
    # With 2 seeds both values of an order lie equally far from its median (or mean): the
    # within-order spread of the deviations is 0 and the F was 2e29 (p 5e-30).
    values = np.array([[[0.5], [0.6]], [[0.55], [0.58]]])
    rows = _rows(_scores(values, ["de", "fi"][:1]))
    levene = rows[rows["test"] == "levene"]
    assert len(levene) and levene["p_value"].isna().all()
    assert levene["method"].str.contains("3\\+ seeds").all()


def test_identical_differences_give_no_t_p():
    # Every seed shows exactly the same difference: the t over seeds has no noise to test against.
    values = np.array([[[0.5], [0.6], [0.7]], [[0.6], [0.7], [0.8]]])
    rows = _rows(_scores(values, ["de"]))
    contrast = rows[rows["test"] == "contrast"]
    assert contrast["p_value"].isna().all() and contrast["method"].str.contains("no spread").all()
    _assert_valid(rows)


def test_sixty_orders_without_an_effect_find_no_spread_difference():
    from seqrob.warehouse.simulate import simulate

    orders = ["none"] + [f"o{i:02d}" for i in range(59)]
    sim = simulate(orders=orders, seeds=3, languages=("de", "fi"), families=FAMILIES, n_examples=30, outcomes=False,
                   seed=4)  # fmt: skip
    scores = sim.scores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tests = run_tests(scores, None, orders=order_list(scores), alpha=0.05, n_boot=100, seed=0, min_seeds=3,
                          include=("verdicts", "variance"), n_permutations=199, permutation_intervals=False,
                          variance_boot=False)  # fmt: skip
    rows = adjust(result_frame(pd.concat(tests.frames, ignore_index=True)), correction="holm")
    _assert_valid(rows)
    found = rows[rows["test"].isin(["variance", "contrast"]) & (rows["p_adjusted"] < 0.05)]
    assert found.empty, found[["test", "term", "family", "p_adjusted"]]
