"""run_tests reads one task x metric's scores once, and sharing that reading changes no row.

Every procedure but the mixed model starts from the same arrays
(:func:`seqrob.analysis.layout.build_groups`); run_tests builds them once and passes them
as ``groups=``. The references here are the same functions reading the scores themselves:
their rows must be identical, every column, to the last bit.
"""

from __future__ import annotations

import warnings
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from seqrob.analysis import anova, aso, bootstrap, layout, outcomes, permutation, procedures, variance
from seqrob.analysis.design import describe, paired
from seqrob.analysis.layout import build_groups
from seqrob.analysis.procedures import run_tests
from seqrob.warehouse.errors import InputError
from seqrob.warehouse.simulate import simulate

FAMILIES = {"fi": "Uralic", "et": "Uralic", "de": "Indo-European"}


def _design(name: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Paired with per-example outcomes (4 seeds: the sign-flip tests run too), scores only,
    and two orders run with different seeds (unpaired)."""
    common = dict(seeds=4, languages=tuple(FAMILIES), families=FAMILIES, n_examples=60, seed=3)
    if name == "paired":
        sim = simulate(**common)
    elif name == "scores only":
        sim = simulate(**common, outcomes=False)
    else:
        sim = simulate(**common, orders=("none", "nli>qa"))
        scores = sim.scores.copy()
        scores.loc[scores["order"] == "nli>qa", "seed"] += 100
        return scores, sim.predictions
    return sim.scores, sim.predictions


DESIGNS = ("paired", "scores only", "unshared seeds")


@pytest.fixture(scope="module", params=DESIGNS)
def design(request):
    scores, predictions = _design(request.param)
    return scores, predictions, describe(scores)["orders"]


@pytest.fixture(scope="module")
def shared(design):
    """One reading per design, shared by every test of the module, as run_tests shares it."""
    scores, predictions, orders = design
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_groups(scores, predictions, orders=orders)


# Each procedure with the options run_tests gives it (small resample counts).
PROCEDURES = {
    "seed_t_test": (permutation.seed_t_test, dict(overall=False)),
    "sign_flip_test": (permutation.sign_flip_test, dict(seed=0)),
    "permutation_test": (permutation.permutation_test, dict(n_resamples=999, seed=0)),
    "order_anova": (anova.order_anova, {}),
    "paired_bootstrap": (bootstrap.paired_bootstrap, dict(n_boot=300, seed=0)),
    "variance_tests": (variance.variance_tests, dict(n_boot=200, n_permutations=199, seed=0)),
    "aso_table": (aso.aso_table, dict(n_boot=200, seed=0)),
}
WITH_PREDICTIONS = {"paired_bootstrap", "variance_tests"}


def _call(name, scores, predictions, orders, **options) -> pd.DataFrame:
    function, defaults = PROCEDURES[name]
    arguments = (scores, predictions) if name in WITH_PREDICTIONS else (scores,)
    if name == "seed_t_test":  # paired t, or Welch's when the orders do not share seeds (as run_tests)
        options["paired"] = paired(scores, orders)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*arguments, orders=orders, **defaults, **options)


@pytest.mark.parametrize("name", PROCEDURES)
def test_shared_groups_give_the_rows_the_function_gives_alone(name, design, shared):
    scores, predictions, orders = design
    alone = _call(name, scores, predictions, orders)
    assert len(alone) > 0 or (name == "sign_flip_test" and not paired(scores, orders))
    pd.testing.assert_frame_equal(_call(name, scores, predictions, orders, groups=shared), alone, check_exact=True)


def _run(scores, predictions, orders) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_tests(scores, predictions, orders=orders, alpha=0.05, n_boot=400, seed=0,
                         min_seeds=int(scores.groupby("order")["seed"].nunique().min()), aso_boot=200,
                         n_permutations=199)  # fmt: skip


def _counting(counts: Counter, name: str, function):
    def counted(*args, **kwargs):
        counts[name] += 1
        return function(*args, **kwargs)

    return counted


def test_run_tests_reads_the_scores_and_predictions_once(monkeypatch):
    scores, predictions = _design("paired")
    counts: Counter = Counter()
    # _group builds one group's arrays, whichever module asks build_groups for them.
    monkeypatch.setattr(layout, "_group", _counting(counts, "groups built", layout._group))
    monkeypatch.setattr(outcomes, "_read_predictions", _counting(counts, "predictions read", outcomes._read_predictions))
    monkeypatch.setattr(outcomes, "_outcomes", _counting(counts, "outcomes joined", outcomes._outcomes))
    tests = _run(scores, predictions, describe(scores)["orders"])
    ran = set(pd.concat(tests.frames)["test"])
    # Every procedure that reads the arrays ran: t, ANOVA, bootstrap, sign-flip, variance, ASO.
    assert {"contrast", "order_anova", "bootstrap_contrast", "signflip_contrast", "variance", "aso"} <= ran
    assert counts == {"groups built": 1, "predictions read": 1, "outcomes joined": 1}


@pytest.mark.parametrize("name", DESIGNS)
def test_run_tests_rows_equal_those_of_each_function_reading_its_own(name, monkeypatch):
    scores, predictions = _design(name)
    orders = describe(scores)["orders"]
    together = _run(scores, predictions, orders)
    calls: Counter = Counter()

    def no_groups(*args, **kwargs):
        calls["build_groups"] += 1  # run_tests then passes groups=None: each function reads the scores itself

    monkeypatch.setattr(procedures, "layout", SimpleNamespace(build_groups=no_groups))
    alone = _run(scores, predictions, orders)
    assert calls["build_groups"] == 1
    assert len(together.frames) == len(alone.frames)
    for mine, theirs in zip(together.frames, alone.frames):
        pd.testing.assert_frame_equal(mine, theirs, check_exact=True)
    assert list(dict.fromkeys(together.notes)) == list(dict.fromkeys(alone.notes))


def test_groups_built_once_serve_overall_false_with_the_same_bits():
    scores, predictions = _design("paired")
    group = build_groups(scores, predictions)[0]
    narrow = build_groups(scores, overall=False)[0]
    view = group.with_overall(False)
    assert group.with_overall(False) is view and group.with_overall(True) is group
    assert view.families == narrow.families and None not in view.families
    np.testing.assert_array_equal(view.family_sizes, narrow.family_sizes)
    assert view.family_matrix.tobytes() == narrow.family_matrix.tobytes()
    assert view.seed_level().tobytes() == narrow.seed_level().tobytes()
    assert group.seed_level() is group.seed_level() and not group.seed_level().flags.writeable
    assert group.outcomes() is group.outcomes() and group.outcomes()[0] is not None


def test_groups_must_hold_what_the_call_asks_for():
    scores, predictions = _design("paired")
    narrow = build_groups(scores, overall=False)
    with pytest.raises(InputError, match="without the all-languages column"):
        aso.aso_table(scores, groups=narrow)  # overall=True asks for the column
    with pytest.raises(InputError, match="without the predictions"):
        bootstrap.paired_bootstrap(scores, predictions, n_boot=50, groups=build_groups(scores))
    with pytest.raises(InputError, match="the list build_groups returns"):
        anova.order_anova(scores, groups=narrow[0])
