"""The shipped real per-seed sets load as seqrob long scores and ingest into a warehouse."""

from __future__ import annotations

import pandas as pd
import pytest

from seqrob.warehouse import InputError
from seqrob.warehouse.datasets import (
    INSTABILITY_FAMILIES,
    REAL_SETS,
    REVISIT_FAMILIES,
    REVISIT_VARIANTS,
    load_real,
)

COLUMNS = ["run_id", "order", "seed", "task", "language", "family", "metric", "score"]
KEY = ["run_id", "task", "language", "metric"]


def _check_long(frame: pd.DataFrame) -> None:
    assert list(frame.columns[: len(COLUMNS)]) == COLUMNS
    assert frame["score"].notna().all()
    assert frame["family"].notna().all()
    assert not frame.duplicated(KEY).any()
    assert pd.api.types.is_integer_dtype(frame["seed"])
    # one run is one (order, seed): run ids and (order, seed) pairs match one to one
    runs = frame[["run_id", "order", "seed"]].drop_duplicates()
    assert runs["run_id"].is_unique and not runs.duplicated(["order", "seed"]).any()


def test_instability_nli():
    frame = load_real("instability_nli")
    _check_long(frame)
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 120  # 10 seeds x 12 evaluation sets (README: the source's own numbers)
    assert sorted(frame["seed"].unique()) == list(range(1, 11))
    assert frame.groupby("seed")["language"].nunique().eq(12).all()
    assert set(frame["order"]) == {"bert-base"} and set(frame["task"]) == {"nli"}
    assert set(frame["metric"]) == {"accuracy"} and frame["score"].between(0, 1).all()
    assert dict(zip(frame["language"], frame["family"])) == dict(INSTABILITY_FAMILIES)
    assert frame["run_id"].iloc[0] == "instability_nli-bert-base-s1"


@pytest.mark.parametrize(
    "variant, rows",
    # 50 seeds x 4 GLUE tasks; not_debiased has 6 failed STS-B evaluations (NaN) in the source
    [("not_debiased", 194), ("standard_debiased", 200), ("reinit_debiased", 200)],
)
def test_revisit_glue_variant(variant, rows):
    frame = load_real("revisit_glue", variant=variant)
    _check_long(frame)
    assert list(frame.columns) == [*COLUMNS, "method"]
    assert len(frame) == rows
    assert sorted(frame["seed"].unique()) == list(range(50))
    assert set(frame["order"]) == set(frame["method"]) == {variant}
    assert set(frame["task"]) == {"glue"} and set(frame["metric"]) == {"score"}
    assert dict(zip(frame["language"], frame["family"])) == dict(REVISIT_FAMILIES)
    assert frame["run_id"].str.fullmatch(rf"revisit_glue-{variant}-s\d+").all()


def test_revisit_glue_all_variants_pair_by_seed():
    frame = load_real("revisit_glue")
    _check_long(frame)
    assert len(frame) == 194 + 200 + 200
    assert set(frame["order"]) == set(REVISIT_VARIANTS)
    assert (frame["order"] == frame["method"]).all()
    # the failed CoLA runs of not_debiased (MCC 0.0) are real scores and stay
    cola = frame[(frame["order"] == "not_debiased") & (frame["language"] == "CoLA")]
    assert len(cola) == 50 and (cola["score"] == 0.0).any()


def test_seqrob_one_order():
    frame = load_real("seqrob_one_order")
    _check_long(frame)
    assert frame["seed"].nunique() >= 20
    assert frame["order"].nunique() == 1 and frame["order"].iloc[0] != "none"
    assert frame["score"].gt(0.25).all()  # topic has 4 classes: chance is 0.25
    spread = frame.groupby("language")["score"].std()
    assert (spread > 0).all()  # real training noise in every language
    assert frame.groupby("language")["seed"].nunique().eq(frame["seed"].nunique()).all()


@pytest.mark.parametrize(
    "name, variant",
    [("nope", None), ("revisit_glue", "nope"), ("instability_nli", "not_debiased"), ("seqrob_one_order", "x")],
)
def test_bad_name_or_variant(name, variant):
    with pytest.raises(InputError) as caught:
        load_real(name, variant=variant)
    assert caught.value.fix


@pytest.mark.parametrize("name", REAL_SETS)
def test_ingests_with_its_families(mem_wh, name):
    frame = load_real(name)
    result = mem_wh.ingest_frames(scores=frame, source=name)
    assert result["rows_stored"].sum() == len(frame)
    stored = mem_wh.scores()
    assert len(stored) == len(frame)
    assert dict(zip(stored["language"], stored["family"])) == dict(zip(frame["language"], frame["family"]))
