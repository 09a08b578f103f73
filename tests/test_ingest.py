"""Ingest through the library (``Warehouse.ingest``): the bad-input contract and exact storage.

The refusals are the :data:`conftest.BAD_CASES` table (shared with the CLI tests):
each must raise one :class:`InputError` naming the file, row and column and saying
how to fix it, and leave every warehouse table exactly as it was.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import zipfile

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import (
    EXAMPLES,
    LANGUAGES,
    RUNS,
    SCORE_HEADER,
    BadCase,
    _lines,
    assert_same_tables,
    predictions_frame,
    read_all,
    scores_frame,
    write_table,
)
from seqrob.warehouse import InputError, Warehouse
from seqrob.warehouse.schema import TABLES

H = SCORE_HEADER

# --- refusals ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def populated_before(populated_wh):
    return read_all(populated_wh)


def _nested_parquet(path, **columns) -> None:
    table = pa.Table.from_pandas(scores_frame().head(2).assign(run_id=["n1", "n2"]), preserve_index=False)
    for name, values in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name, values)
    pq.write_table(table, path)


def _zipped(path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("scores.csv", scores_frame().to_csv(index=False))


def _gzipped_parquet(path) -> None:
    write_table(scores_frame(), path)
    path.write_bytes(gzip.compress(path.read_bytes()))


def _truncated_gzip(path) -> None:
    text = scores_frame().assign(run_id="n1", seed=range(len(scores_frame()))).to_csv(index=False)
    path.write_bytes(gzip.compress((text * 200).encode())[:-300])


_ROW = '"order": "none", "seed": 1, "task": "xnli", "language": "de", "metric": "accuracy", "score": 0.5}'
_CELL_FIX = "one number or text per cell"

#: Issue 14: input types pyarrow cannot turn into text, compressed and mis-delimited files
#: (refused like conftest's BAD_CASES, with where and how).
TYPE_CASES = [
    BadCase("jsonl-nested-run-id", "scores.jsonl", '{"run_id": {"a": 1}, ' + _ROW + "\n",
            "holds a record (struct)", _CELL_FIX, row=1, column="run_id"),
    BadCase("jsonl-nested-among-text", "scores.jsonl", '{"run_id": "n1", ' + _ROW + '\n{"run_id": [1, 2], ' + _ROW + "\n",
            "holds a JSON object or array", _CELL_FIX, row=2, column="run_id"),
    BadCase("parquet-struct-run-id", "scores.parquet",
            lambda p: _nested_parquet(p, run_id=pa.array([{"a": 1}, {"a": 2}])),
            "holds a record (struct)", _CELL_FIX, row=1, column="run_id"),
    BadCase("parquet-list-language", "scores.parquet",
            lambda p: _nested_parquet(p, language=pa.array([None, ["de", "fr"]])),
            "holds a list", _CELL_FIX, row=2, column="language"),
    BadCase("parquet-binary-not-utf8", "scores.parquet",
            lambda p: _nested_parquet(p, run_id=pa.array([b"n1", b"n\xe9"], pa.binary())),
            "b'n\\xe9' are not UTF-8 text", "UTF-8", row=2, column="run_id"),
    BadCase("csv-semicolons", "scores.csv", _lines(H.replace(",", ";"), "n1;none;1;xnli;de;accuracy;0,5"),
            "only one column found in the header; is the file delimited by ';'?", "',' between fields"),
    BadCase("csv-tabs", "scores.csv", _lines(H.replace(",", "\t"), "n1\tnone\t1\txnli\tde\taccuracy\t0.5"),
            "is the file delimited by tabs?", "name it .tsv"),
    BadCase("csv-zip", "scores.csv", _zipped, "compressed with zip", "unzip"),
    BadCase("parquet-gzip", "scores.parquet", _gzipped_parquet, "compressed with gzip", "gunzip"),
    BadCase("csv-gzip-truncated", "scores.csv.gz", _truncated_gzip, "cannot read the file", "truncated"),
]


def test_bad_input_is_refused_with_where_and_how(bad_case, tmp_path, populated_wh, populated_before):
    _assert_refused(bad_case, tmp_path, populated_wh, populated_before)


@pytest.mark.parametrize("case", TYPE_CASES, ids=[case.id for case in TYPE_CASES])
def test_input_types_and_compression_are_refused_with_where_and_how(case, tmp_path, populated_wh, populated_before):
    _assert_refused(case, tmp_path, populated_wh, populated_before)


def _assert_refused(bad_case: BadCase, tmp_path, populated_wh, populated_before) -> None:
    path = bad_case.write(tmp_path)
    with pytest.raises(InputError) as caught:
        populated_wh.ingest([path], **bad_case.options)
    error = caught.value
    message = str(error)
    assert "\n" not in message
    assert error.file == str(path) and message.startswith(str(path))
    assert error.row == bad_case.row, message
    assert error.column == bad_case.column, message
    if bad_case.row is not None:
        assert f"row {bad_case.row}" in message
    if bad_case.column is not None:
        assert f"column '{bad_case.column}'" in message
    assert bad_case.problem in error.problem, message
    assert error.fix and bad_case.fix in error.fix, message
    assert message.endswith(" - " + error.fix)
    assert_same_tables(populated_before, read_all(populated_wh))


def test_refused_file_leaves_an_empty_warehouse_empty(tmp_path, mem_wh, snapshot, assert_unchanged, write):
    # The last row fails after the first rows were staged: nothing may be left behind.
    path = write("scores.csv", scores_frame().astype({"score": object}).assign(
        score=lambda f: f.score.where(f.index < 11, "oops")))
    before = snapshot(mem_wh)
    with pytest.raises(InputError, match="row 12, column 'score'"):
        mem_wh.ingest([path])
    assert_unchanged(before, mem_wh)
    assert all(not rows for _, rows in before.values())


def test_refused_predictions_leave_stored_predictions_alone(tmp_path, mem_wh, populated, snapshot, assert_unchanged, write):
    populated(mem_wh)
    before = snapshot(mem_wh)
    # New examples for a run that already has outcomes, then an unknown run on the last row.
    frame = pd.DataFrame({"run_id": ["r1"] * 3 + ["ghost"], "task": "xnli", "language": "de",
                          "example_id": ["n1", "n2", "n3", "n4"], "correct": [1, 0, 1, 1]})
    with pytest.raises(InputError, match="row 4, column 'run_id'"):
        mem_wh.ingest([write("preds.parquet", frame)])
    assert_unchanged(before, mem_wh)


def test_error_after_an_earlier_file_names_what_was_stored(tmp_path, mem_wh, dataset, write):
    scores, _ = dataset("csv")
    bad = write("bad.csv", SCORE_HEADER + "\nn1,none,1,xnli,de,accuracy,abc\n")
    with pytest.raises(InputError) as caught:
        mem_wh.ingest([scores, bad])
    assert str(caught.value).startswith(f"{bad}, row 1, column 'score'")
    assert f"already stored, each whole: {scores}" in str(caught.value)
    assert len(mem_wh.table("scores")) == len(scores_frame())


# --- formats, and storing exactly ------------------------------------------------------------


def _stored_scores(wh: Warehouse) -> pd.DataFrame:
    frame = wh.scores()[["run_id", "order", "seed", "task", "language", "metric", "score"]]
    return frame.sort_values(["run_id", "language"]).reset_index(drop=True)


def _stored_predictions(wh: Warehouse) -> pd.DataFrame:
    frame = wh.table("predictions")[["run_id", "task", "language", "example_id", "correct"]]
    return frame.sort_values(["run_id", "language", "example_id"]).reset_index(drop=True)


def _expected_scores() -> pd.DataFrame:
    return scores_frame().sort_values(["run_id", "language"]).reset_index(drop=True)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_each_format_stores_the_data_exactly(fmt, mem_wh, dataset):
    scores, predictions = dataset(fmt)
    result = mem_wh.ingest([scores, predictions])
    assert list(result["kind"]) == ["scores", "predictions"]
    assert list(result["rows_read"]) == [12, 48]
    assert list(result["rows_stored"]) == [12, 48]
    assert list(result["rows_skipped"]) == [0, 0]
    assert list(result["runs_added"]) == [4, 0]
    pd.testing.assert_frame_equal(_stored_scores(mem_wh), _expected_scores(), check_dtype=False)
    expected = predictions_frame().sort_values(["run_id", "language", "example_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(_stored_predictions(mem_wh), expected, check_dtype=False)
    runs = mem_wh.table("runs").sort_values("run_id")
    assert list(runs["order"]) == [order for _, order, _ in RUNS]
    assert list(runs["seed"]) == [seed for _, _, seed in RUNS]
    assert set(runs["status"]) == {"finished"} and set(runs["method"]) == {"finetune"}
    assert set(runs["experiment"]) == {"default"}
    assert set(runs["source"]) == {f"ingest:{scores}"}


def test_predictions_listed_first_are_ingested_after_scores(mem_wh, dataset):
    scores, predictions = dataset("parquet")
    result = mem_wh.ingest([predictions, scores])
    assert list(result["file"]) == [str(scores), str(predictions)]
    assert list(result["kind"]) == ["scores", "predictions"]
    assert len(mem_wh.table("predictions")) == len(RUNS) * len(LANGUAGES) * EXAMPLES


def test_ingests_table_logs_each_file(mem_wh, dataset):
    scores, predictions = dataset("csv")
    mem_wh.ingest([predictions, scores])
    mem_wh.ingest([scores])
    log = mem_wh.table("ingests").sort_values("ingest_id")
    assert list(log["ingest_id"]) == [1, 2, 3]
    assert list(log["file"]) == [str(scores), str(predictions), str(scores)]
    assert list(log["kind"]) == ["scores", "predictions", "scores"]
    assert list(log["rows_read"]) == [12, 48, 12]
    assert list(log["rows_stored"]) == [12, 48, 0]
    assert list(log["rows_skipped"]) == [0, 0, 12]
    assert log["ingested_at"].notna().all()


def test_bom_and_trailing_blank_lines_are_fine(mem_wh, write):
    text = "\ufeff" + SCORE_HEADER + "\r\nn1,none,1,xnli,de,accuracy,0.5\r\nn1,none,1,xnli,fr,accuracy,0.25\r\n\r\n\n\n"
    result = mem_wh.ingest([write("bom.csv", text)])
    assert list(result["rows_read"]) == [2] and list(result["rows_stored"]) == [2]
    assert result["notes"].iloc[0] == []  # the BOM did not turn 'run_id' into an ignored column
    stored = _stored_scores(mem_wh)
    assert list(stored["run_id"]) == ["n1", "n1"]
    assert list(stored["score"]) == [0.5, 0.25]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_csv_line_endings(newline, mem_wh, write):
    rows = [SCORE_HEADER, "n1,none,1,xnli,de,accuracy,0.5", '"n1",none,1,"x\ny",fr,accuracy,0.25']
    mem_wh.ingest([write("le.csv", newline.join(rows) + newline * 3)])
    assert sorted(mem_wh.table("scores")["task"]) == ["x\ny", "xnli"]
    with pytest.raises(InputError, match="row 2: the row has 8 fields"):
        mem_wh.ingest([write("bad.csv", newline.join([*rows[:2], "n2,none,1,xnli,fr,accuracy,0.5,9"]) + newline)])


def test_trailing_blank_lines_in_jsonl_are_fine(mem_wh, write):
    record = {"run_id": "n1", "order": "none", "seed": 1, "task": "xnli", "language": "de", "metric": "accuracy", "score": 0.5}
    result = mem_wh.ingest([write("s.jsonl", "\ufeff" + json.dumps(record) + "\n\n  \n")])
    assert list(result["rows_stored"]) == [1]


NASTY = {
    "run_id": 'run "a", seed=1',
    "task": "x'); DROP TABLE runs; --",
    "metric": 'acc"; DELETE FROM scores; --',
    "experiment": "exp's \"quoted\", with, commas",
    "model": "xlm-r\\base\ttab",
    "order": "nli'>qa\"",
    "language": "x'); --",
    "family": "Fam'ily \"A\"",
}


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_quotes_and_sql_in_names_are_stored_byte_for_byte(fmt, mem_wh, write, tmp_path):
    row = dict(NASTY, seed=3, score=0.625)
    frame = pd.DataFrame([row, dict(row, language="de", family="Indo-European")])
    path = write(f"nasty.{fmt}", frame)
    mem_wh.ingest([path])
    assert len(mem_wh.table("runs")) == 1  # the table survived the 'DROP TABLE'
    run = mem_wh.table("runs").iloc[0]
    for name in ("run_id", "experiment", "model", "order"):
        assert run[name] == NASTY[name]
    scores = mem_wh.scores().sort_values("language").reset_index(drop=True)
    assert list(scores["language"]) == ["de", NASTY["language"]]
    assert set(scores["task"]) == {NASTY["task"]} and set(scores["metric"]) == {NASTY["metric"]}
    assert list(scores["family"]) == ["Indo-European", NASTY["family"]]
    predictions = pd.DataFrame({"run_id": [NASTY["run_id"]], "task": [NASTY["task"]], "language": [NASTY["language"]],
                                "example_id": ["e'1\"; --"], "correct": [1]})
    mem_wh.ingest([write(f"nasty_preds.{fmt}", predictions)])
    stored = mem_wh.table("predictions").iloc[0]
    assert (stored["run_id"], stored["task"], stored["example_id"]) == (NASTY["run_id"], NASTY["task"], "e'1\"; --")
    # The same file again: identical, so skipped, not a conflict.
    again = mem_wh.ingest([path])
    assert list(again["rows_skipped"]) == [2]


def test_hand_quoted_csv_is_read_as_written(mem_wh, write):
    text = SCORE_HEADER + '\n"run ""a"", seed=1",none,1,"x\'); DROP TABLE runs; --",de,accuracy,0.5\n'
    mem_wh.ingest([write("q.csv", text)])
    scores = mem_wh.scores()
    assert scores["run_id"].iloc[0] == 'run "a", seed=1'
    assert scores["task"].iloc[0] == "x'); DROP TABLE runs; --"


def test_text_cells_keep_inner_whitespace_and_unicode(mem_wh, write):
    text = SCORE_HEADER + "\nrun é 日本,none,1,tâche,ja,accuracy,0.5\n"
    mem_wh.ingest([write("u.csv", text)])
    scores = mem_wh.scores()
    assert scores["run_id"].iloc[0] == "run é 日本" and scores["task"].iloc[0] == "tâche"


# --- scales, duplicates, replace -------------------------------------------------------------


def test_percent_scale_is_stored_as_proportions_with_a_note(mem_wh, write):
    text = SCORE_HEADER + "\nn1,none,1,xnli,de,accuracy,50\nn1,none,1,xnli,fr,accuracy,65\nn1,none,1,xnli,sw,accuracy,70.5\n"
    result = mem_wh.ingest([write("pct.csv", text)])
    [note] = result["notes"].iloc[0]
    assert "accuracy is on a 0-100 scale" in note and "divided by 100" in note
    assert sorted(mem_wh.table("scores")["score"]) == [0.5, 0.65, 0.705]
    # Ingesting the same file again finds identical scores (skipped, not a conflict).
    again = mem_wh.ingest([write("pct.csv", text)])
    assert list(again["rows_skipped"]) == [3] and list(again["rows_stored"]) == [0]


def test_percent_scale_is_judged_per_metric(mem_wh, write):
    text = (SCORE_HEADER + "\nn1,none,1,xnli,de,accuracy,0.5\nn1,none,1,xnli,de,f1,62.5\n"
            "n1,none,1,xnli,de,loss,3.5\n")
    result = mem_wh.ingest([write("mixed.csv", text)])
    stored = mem_wh.table("scores").set_index("metric")["score"]
    assert stored.to_dict() == {"accuracy": 0.5, "f1": 0.625, "loss": 3.5}
    [note] = result["notes"].iloc[0]
    assert "f1 is on a 0-100 scale" in note and "accuracy" not in note


def test_identical_duplicate_in_file_is_skipped(mem_wh, write):
    text = SCORE_HEADER + "\nn1,none,1,xnli,de,accuracy,0.5\nn1,none,1,xnli,fr,accuracy,0.6\nn1,none,1,xnli,de,accuracy,0.5\n"
    result = mem_wh.ingest([write("dup.csv", text)])
    assert (result["rows_read"].iloc[0], result["rows_stored"].iloc[0], result["rows_skipped"].iloc[0]) == (3, 2, 1)
    assert len(mem_wh.table("scores")) == 2


def test_identical_rows_already_stored_are_skipped(mem_wh, populated, dataset, snapshot):
    populated(mem_wh)
    before = snapshot(mem_wh)
    scores, predictions = dataset("parquet")
    result = mem_wh.ingest([scores, predictions])
    assert list(result["rows_stored"]) == [0, 0]
    assert list(result["rows_skipped"]) == [12, 48]
    assert list(result["runs_added"]) == [0, 0]
    after = snapshot(mem_wh)
    for name in TABLES:
        if name != "ingests":
            assert before[name] == after[name], name
    assert len(after["ingests"][1]) == len(before["ingests"][1]) + 2


def test_partly_new_file_stores_the_new_rows_only(mem_wh, populated, write):
    populated(mem_wh)
    frame = pd.concat([scores_frame().head(2), pd.DataFrame([{"run_id": "r1", "order": "nli>qa", "seed": 1, "task": "xnli",
                                                             "language": "de", "metric": "f1", "score": 0.4}])])
    result = mem_wh.ingest([write("more.csv", frame)])
    assert (result["rows_stored"].iloc[0], result["rows_skipped"].iloc[0]) == (1, 2)
    assert len(mem_wh.table("scores")) == 14


def test_replace_overwrites_a_conflicting_score(mem_wh, populated, write):
    populated(mem_wh)
    path = write("fix.csv", SCORE_HEADER + "\nr1,nli>qa,1,xnli,de,accuracy,0.99\nr1,nli>qa,1,xnli,fr,accuracy,0.51\n")
    result = mem_wh.ingest([path], replace=True)
    assert result["rows_stored"].iloc[0] == 2
    scores = mem_wh.table("scores").set_index(["run_id", "language"])["score"]
    assert scores[("r1", "de")] == 0.99 and scores[("r1", "fr")] == 0.51
    assert scores[("r2", "de")] == pytest.approx(0.53)
    assert len(scores) == 13


def test_replace_overwrites_a_run(mem_wh, populated, write):
    populated(mem_wh)
    mem_wh.ingest([write("fix.csv", SCORE_HEADER + "\nr1,qa>nli,7,xnli,de,accuracy,0.5\n")], replace=True)
    run = mem_wh.table("runs").set_index("run_id").loc["r1"]
    assert (run["order"], run["seed"]) == ("qa>nli", 7)
    assert len(mem_wh.table("runs")) == 5


def test_replace_overwrites_an_outcome(mem_wh, populated, write):
    populated(mem_wh)
    old = predictions_frame().query("run_id == 'r1' and language == 'de' and example_id == 'ex0'")["correct"].item()
    mem_wh.ingest([write("fix.csv", f"run_id,task,language,example_id,correct\nr1,xnli,de,ex0,{1 - old}\n")], replace=True)
    stored = mem_wh.table("predictions")
    assert len(stored) == len(predictions_frame())
    hit = stored.query("run_id == 'r1' and language == 'de' and example_id == 'ex0'")["correct"]
    assert list(hit) == [1 - old]


def test_identical_prediction_duplicate_in_file_is_skipped(mem_wh, populated, write):
    populated(mem_wh)
    text = "run_id,task,language,example_id,correct\nr1,xnli,de,new,1\nr1,xnli,de,new,1\n"
    result = mem_wh.ingest([write("p.csv", text)])
    assert (result["rows_stored"].iloc[0], result["rows_skipped"].iloc[0]) == (1, 1)
    assert len(mem_wh.table("predictions")) == len(predictions_frame()) + 1


def test_other_outcomes_value_and_counts(mem_wh, populated, write):
    populated(mem_wh)
    value = "run_id,task,language,example_id,value\nr1,xquad,de,q1,0.75\nr1,xquad,de,q2,0\n"
    counts = "run_id,task,language,example_id,tp,fp,fn\nr1,panx,de,s1,3,1,0\nr1,panx,de,s2,0,0,2\n"
    mem_wh.ingest([write("v.csv", value), write("c.jsonl", pd.read_csv(io.StringIO(counts)))])
    stored = mem_wh.table("predictions").set_index("example_id")
    assert stored.loc["q1", "value"] == 0.75 and pd.isna(stored.loc["q1", "correct"])
    assert (stored.loc["s1", "tp"], stored.loc["s1", "fp"], stored.loc["s1", "fn"]) == (3, 1, 0)
    with pytest.raises(InputError, match="row 1, column 'fp'.*negative"):
        mem_wh.ingest([write("neg.csv", "run_id,task,language,example_id,tp,fp,fn\nr1,panx,de,s3,1,-1,0\n")])


def test_correct_accepts_0_1_and_booleans(mem_wh, populated, write):
    populated(mem_wh)
    cells = {"a": "1", "b": "0", "c": "true", "d": "False", "e": "1.0", "f": "0.0", "g": " 1 "}
    text = "run_id,task,language,example_id,correct\n" + "".join(f"r1,xnli,de,{k},{v}\n" for k, v in cells.items())
    mem_wh.ingest([write("p.csv", text)])
    stored = mem_wh.table("predictions").set_index("example_id")["correct"]
    assert {k: stored[k] for k in cells} == {"a": 1, "b": 0, "c": 1, "d": 0, "e": 1, "f": 0, "g": 1}


# --- files read in several batches (the readers' batch sizes made tiny) -------------------------


@pytest.fixture
def tiny_batches(monkeypatch):
    from seqrob.warehouse import readers

    monkeypatch.setattr(readers, "_PARQUET_BATCH", 2)
    monkeypatch.setattr(readers, "_JSONL_CHUNK", 2)
    monkeypatch.setattr(readers, "_CSV_BLOCK", 256)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_rows_are_numbered_across_batches(fmt, tiny_batches, mem_wh, write, snapshot, assert_unchanged):
    frame = pd.DataFrame({"run_id": [f"n{i}" for i in range(40)], "order": "none", "seed": range(40), "task": "xnli",
                          "language": "de", "metric": "accuracy", "score": ["0.5"] * 33 + ["bad"] + ["0.5"] * 6})
    before = snapshot(mem_wh)
    with pytest.raises(InputError, match="row 34, column 'score': 'score' 'bad' is not a number"):
        mem_wh.ingest([write(f"s.{fmt}", frame)])
    assert_unchanged(before, mem_wh)
    result = mem_wh.ingest([write(f"ok.{fmt}", frame.assign(score="0.5"))])
    assert result["rows_stored"].iloc[0] == 40


def test_jsonl_bad_bytes_after_the_first_chunk(tiny_batches, mem_wh, write):
    good = '{"run_id": "n%d", "order": "none", "seed": 1, "task": "xnli", "language": "de", "metric": "accuracy", "score": 0.5}\n'
    content = "".join(good % i for i in range(5)).encode() + b'{"run_id": "\xff"}\n'
    with pytest.raises(InputError, match="row 6: line 6 is not UTF-8 text"):
        mem_wh.ingest([write("s.jsonl", content)])
    assert len(mem_wh.table("scores")) == 0


def test_predictions_in_batches_are_counted_once(tiny_batches, mem_wh, populated, write):
    # r5 has no stored outcomes, r1 has: the second batch sends the file down the exact path.
    populated(mem_wh)
    frame = pd.DataFrame({"run_id": ["r5", "r5", "r1", "r5"], "task": "xnli", "language": "de",
                          "example_id": ["e1", "e2", "new1", "e3"], "correct": [1, 0, 1, 1]})
    result = mem_wh.ingest([write("p.parquet", frame)])
    assert (result["rows_read"].iloc[0], result["rows_stored"].iloc[0], result["rows_skipped"].iloc[0]) == (4, 4, 0)
    stored = mem_wh.table("predictions")
    assert len(stored) == len(predictions_frame()) + 4
    assert sorted(stored.query("run_id == 'r5'")["example_id"]) == ["e1", "e2", "e3"]


def test_prediction_conflict_across_batches(tiny_batches, mem_wh, populated, write, snapshot, assert_unchanged):
    populated(mem_wh)
    before = snapshot(mem_wh)
    frame = pd.DataFrame({"run_id": "r5", "task": "xnli", "language": "de",
                          "example_id": ["e1", "e2", "e3", "e1"], "correct": [1, 0, 1, 0]})
    with pytest.raises(InputError, match="row 4: this row repeats row 1"):
        mem_wh.ingest([write("p.jsonl", frame)])
    assert_unchanged(before, mem_wh)
    frame = frame.assign(correct=[1, 0, 1, 1])
    result = mem_wh.ingest([write("p.jsonl", frame)])
    assert (result["rows_stored"].iloc[0], result["rows_skipped"].iloc[0]) == (3, 1)


# --- languages and families ------------------------------------------------------------------


def test_family_column_makes_an_unknown_code_fine(mem_wh, write):
    text = "run_id,order,seed,task,language,metric,score,family\nn1,none,1,xnli,qqq,accuracy,0.5,Klingonic\n"
    path = write("fam.csv", text)
    mem_wh.ingest([path])
    language = mem_wh.table("languages").set_index("code").loc["qqq"]
    assert (language["family"], language["source"]) == ("Klingonic", f"file:{path}")
    assert mem_wh.scores()["family"].item() == "Klingonic"


def test_a_family_stored_from_a_file_serves_later_files(mem_wh, write):
    mem_wh.ingest([write("a.csv", "run_id,order,seed,task,language,metric,score,family\nn1,none,1,xnli,qqq,accuracy,0.5,K\n")])
    mem_wh.ingest([write("b.csv", SCORE_HEADER + "\nn2,none,2,xnli,qqq,accuracy,0.5\n")])
    assert mem_wh.scores()["family"].tolist() == ["K", "K"]


def test_family_column_with_two_families_for_one_code_is_refused(mem_wh, write, snapshot, assert_unchanged):
    text = ("run_id,order,seed,task,language,metric,score,family\n"
            "n1,none,1,xnli,qqq,accuracy,0.5,A\nn2,none,2,xnli,qqq,accuracy,0.5,B\n")
    before = snapshot(mem_wh)
    with pytest.raises(InputError, match=r"row 2, column 'family': language 'qqq' is given family 'A' \(row 1\) and 'B'"):
        mem_wh.ingest([write("fam.csv", text)])
    assert_unchanged(before, mem_wh)


def test_families_file_overrides(mem_wh, write):
    overrides = write("families.csv", "code,family,name\nqqq,Elvish,Sindarin\nde,Germanic (override),\n")
    path = write("s.csv", SCORE_HEADER + "\nn1,none,1,xnli,qqq,accuracy,0.5\nn1,none,1,xnli,de,accuracy,0.5\n"
                 "n1,none,1,xnli,fr,accuracy,0.5\n")
    mem_wh.ingest([path], families=overrides)
    languages = mem_wh.table("languages").set_index("code")
    assert (languages.loc["qqq", "family"], languages.loc["qqq", "name"]) == ("Elvish", "Sindarin")
    assert languages.loc["qqq", "source"] == f"override:{overrides}"
    assert languages.loc["de", "family"] == "Germanic (override)"
    assert languages.loc["fr", "family"] == "Indo-European"


def test_families_file_changes_a_stored_family_with_a_note(mem_wh, populated, write):
    populated(mem_wh)
    overrides = write("families.csv", "code,family\nsw,Bantu (override)\n")
    result = mem_wh.ingest([write("s.csv", SCORE_HEADER + "\nn1,none,1,xnli,sw,accuracy,0.5\n")], families=overrides)
    assert any("family changed from 'Atlantic-Congo' to 'Bantu (override)'" in n for n in result["notes"].iloc[0])
    assert mem_wh.table("languages").set_index("code").loc["sw", "family"] == "Bantu (override)"


def test_families_file_problem_names_that_file(mem_wh, write, dataset):
    scores, _ = dataset("csv")
    overrides = write("families.csv", "code\nde\n")
    with pytest.raises(InputError) as caught:
        mem_wh.ingest([scores], families=overrides)
    assert str(caught.value).startswith(str(overrides)) and "'family'" in str(caught.value)
    assert len(mem_wh.table("scores")) == 0


# --- layouts ---------------------------------------------------------------------------------


def test_column_mapping_and_set(mem_wh, write):
    text = "id,Order,Run,lang,metric,acc\nn1,none,4,de,accuracy,0.5\nn1,none,4,fr,accuracy,0.25\n"
    path = write("m.csv", text)
    result = mem_wh.ingest([path], columns={"run_id": "id", "order": "Order", "seed": "Run", "language": "lang", "score": "acc"},
                           constants={"task": "xnli"}, experiment="mine")
    assert result["rows_stored"].iloc[0] == 2
    scores = mem_wh.scores()
    assert set(scores["seed"]) == {4} and set(scores["task"]) == {"xnli"} and set(scores["experiment"]) == {"mine"}
    assert sorted(scores["language"]) == ["de", "fr"]


def test_set_refuses_a_column_the_file_has(mem_wh, dataset):
    scores, _ = dataset("csv")
    with pytest.raises(InputError, match="--set task gives 'task' but the file has a column 'task'"):
        mem_wh.ingest([scores], constants={"task": "xnli"})


def test_mapping_onto_an_unknown_canonical_name_is_refused(mem_wh, dataset):
    scores, _ = dataset("csv")
    with pytest.raises(InputError, match="'sed' is not a column of seqrob's data contract"):
        mem_wh.ingest([scores], columns={"sed": "seed"})


def test_unknown_columns_are_noted_not_stored(mem_wh, write):
    path = write("x.csv", scores_frame().assign(comment="hi"))
    result = mem_wh.ingest([path])
    assert result["notes"].iloc[0] == ["ignored columns: comment"]


def test_wide_language(mem_wh, write):
    text = ("run_id,order,seed,task,metric,de,fr,sw\n"
            "n1,none,1,xnli,accuracy,0.5,0.25,\n"
            "n2,nli,1,xnli,accuracy,0.75,0.125,0.0625\n")
    result = mem_wh.ingest([write("wide.csv", text)], wide="language")
    assert result["rows_stored"].iloc[0] == 5
    assert any("1 empty cells of the wide layout skipped" in n for n in result["notes"].iloc[0])
    stored = mem_wh.table("scores").set_index(["run_id", "language"])["score"].to_dict()
    assert stored == {("n1", "de"): 0.5, ("n1", "fr"): 0.25, ("n2", "de"): 0.75, ("n2", "fr"): 0.125, ("n2", "sw"): 0.0625}


def test_wide_language_error_names_the_language_column(mem_wh, write, snapshot, assert_unchanged):
    text = "run_id,order,seed,task,metric,de,fr\nn1,none,1,xnli,accuracy,0.5,0.25\nn2,nli,1,xnli,accuracy,0.75,x\n"
    before = snapshot(mem_wh)
    with pytest.raises(InputError, match=r"row 2, column 'fr': 'score' 'x' is not a number"):
        mem_wh.ingest([write("wide.csv", text)], wide="language")
    assert_unchanged(before, mem_wh)


def test_wide_language_unknown_code_names_its_column(mem_wh, write):
    text = "run_id,order,seed,task,metric,de,qqq\nn1,none,1,xnli,accuracy,0.5,0.25\n"
    with pytest.raises(InputError) as caught:
        mem_wh.ingest([write("wide.csv", text)], wide="language")
    assert (caught.value.row, caught.value.column) == (1, "qqq")


def test_wide_metric(mem_wh, write):
    frame = pd.DataFrame({"run_id": ["n1", "n1"], "order": "none", "seed": 1, "task": "xquad", "language": ["de", "fr"],
                          "f1": [71.5, 60.0], "exact_match": [55.0, 41.25]})
    result = mem_wh.ingest([write("wide.parquet", frame)], wide="metric")
    assert result["rows_stored"].iloc[0] == 4
    stored = mem_wh.table("scores").set_index(["language", "metric"])["score"].to_dict()
    assert stored == {("de", "f1"): 0.715, ("fr", "f1"): 0.6, ("de", "exact_match"): 0.55, ("fr", "exact_match"): 0.4125}


def test_wide_refuses_a_long_file(mem_wh, dataset):
    scores, _ = dataset("csv")
    with pytest.raises(InputError, match="--wide language but the file has a column 'language'"):
        mem_wh.ingest([scores], wide="language")


def test_kind_is_recognised_and_can_be_forced(mem_wh, populated, write):
    populated(mem_wh)
    path = write("both.csv", SCORE_HEADER + ",example_id\nn1,none,1,xnli,de,accuracy,0.5,e1\n")
    with pytest.raises(InputError, match="--kind"):
        mem_wh.ingest([path])
    result = mem_wh.ingest([path], kind="scores")
    assert result["kind"].iloc[0] == "scores" and result["notes"].iloc[0] == ["ignored columns: example_id"]
    with pytest.raises(InputError, match="unknown kind 'score'"):
        mem_wh.ingest([path], kind="score")


def test_kind_predictions_forced_on_a_scores_file_says_what_is_missing(mem_wh, dataset):
    scores, _ = dataset("csv")
    with pytest.raises(InputError, match="required column 'example_id' is missing"):
        mem_wh.ingest([scores], kind="predictions")


def test_format_option_for_an_unusual_suffix(mem_wh, tmp_path):
    path = write_table(scores_frame(), tmp_path / "scores.csv").rename(tmp_path / "scores.txt")
    with pytest.raises(InputError, match="cannot tell the format from the suffix '.txt'"):
        mem_wh.ingest([path])
    assert mem_wh.ingest([path], fmt="csv")["rows_stored"].iloc[0] == 12


def test_missing_file_is_named(mem_wh, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        mem_wh.ingest([tmp_path / "nope.csv"])


def test_ingest_frames_uses_the_same_checks(mem_wh, snapshot, assert_unchanged):
    before = snapshot(mem_wh)
    bad = scores_frame().astype({"seed": float})
    bad.loc[3, "seed"] = 1.5
    with pytest.raises(InputError, match=r"frame \(scores\), row 4, column 'seed'"):
        mem_wh.ingest_frames(scores=bad)
    assert_unchanged(before, mem_wh)


# --- a realistic design: 3 orders x 6 seeds x 30 languages with per-example outcomes ----------

# XTREME languages and their top-level Glottolog families (from Glottolog, not seqrob's table).
XTREME_FAMILIES = {
    "en": "Indo-European", "de": "Indo-European", "fr": "Indo-European", "es": "Indo-European",
    "ru": "Indo-European", "hi": "Indo-European", "bn": "Indo-European", "ur": "Indo-European",
    "fa": "Indo-European", "bg": "Indo-European",
    "fi": "Uralic", "et": "Uralic", "hu": "Uralic",
    "ta": "Dravidian", "te": "Dravidian", "ml": "Dravidian",
    "ar": "Afro-Asiatic", "he": "Afro-Asiatic",
    "zh": "Sino-Tibetan", "my": "Sino-Tibetan",
    "tr": "Turkic", "kk": "Turkic",
    "ja": "Japonic", "ko": "Koreanic",
    "id": "Austronesian", "ms": "Austronesian", "tl": "Austronesian",
    "sw": "Atlantic-Congo", "yo": "Atlantic-Congo",
    "th": "Tai-Kadai",
}
ORDERS = ["none", "nli>qa", "qa>nli"]
SEEDS = range(1, 7)
N_EXAMPLES = 100


def _design() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    languages = list(XTREME_FAMILIES)
    runs = [(f"{order}/s{seed}", order, seed) for order in ORDERS for seed in SEEDS]
    n_cells = len(runs) * len(languages)
    correct = (rng.random((n_cells, N_EXAMPLES)) < rng.uniform(0.4, 0.9, (n_cells, 1))).astype(np.int8)
    run_ids = np.repeat([r for r, _, _ in runs], len(languages))
    cell_languages = np.tile(languages, len(runs))
    predictions = pd.DataFrame({
        "run_id": np.repeat(run_ids, N_EXAMPLES),
        "task": "xnli",
        "language": np.repeat(cell_languages, N_EXAMPLES),
        "example_id": np.tile([f"xnli-{k:04d}" for k in range(N_EXAMPLES)], n_cells),
        "correct": correct.ravel(),
    })
    scores = pd.DataFrame({
        "run_id": run_ids,
        "order": np.repeat([o for _, o, _ in runs], len(languages)),
        "seed": np.repeat([s for _, _, s in runs], len(languages)),
        "task": "xnli",
        "language": cell_languages,
        "metric": "accuracy",
        "score": correct.mean(axis=1),
        "n_examples": N_EXAMPLES,
    })
    return scores, predictions


@pytest.fixture(scope="module")
def design():
    return _design()


def test_full_design_ingests_exactly(design, mem_wh, tmp_path):
    scores, predictions = design
    assert len(XTREME_FAMILIES) == 30
    scores_path = write_table(scores, tmp_path / "scores.csv")
    predictions_path = write_table(predictions, tmp_path / "predictions.parquet")
    result = mem_wh.ingest([predictions_path, scores_path])
    assert list(result["rows_stored"]) == [540, 54_000]
    assert len(mem_wh.table("runs")) == 18
    assert len(mem_wh.table("scores")) == 540
    assert len(mem_wh.table("predictions")) == 54_000

    stored = mem_wh.scores()
    merged = stored.merge(scores, on=["run_id", "language"], suffixes=("", "_file"))
    assert len(merged) == 540
    assert (merged["score"] == merged["score_file"]).all()
    assert (merged["order"] == merged["order_file"]).all() and (merged["seed"] == merged["seed_file"]).all()
    accuracy = mem_wh.table("predictions").groupby(["run_id", "language"])["correct"].mean()
    assert np.array_equal(accuracy.loc[list(zip(scores.run_id, scores.language))].to_numpy(), scores["score"].to_numpy())

    families = mem_wh.table("languages").set_index("code")["family"].to_dict()
    assert families == XTREME_FAMILIES

    info = mem_wh.info()
    assert info.missing.empty
    assert list(info.orders["order"]) == ORDERS and set(info.orders["seeds"]) == {6}
    assert info.tasks[["task", "metric", "runs", "languages", "scores", "outcome", "examples"]].to_dict("records") == [
        {"task": "xnli", "metric": "accuracy", "runs": 18, "languages": 30, "scores": 540, "outcome": "correct",
         "examples": 54_000}
    ]
    by_family = info.families.set_index("family")["languages"].to_dict()
    assert by_family == pd.Series(XTREME_FAMILIES).value_counts().to_dict()


def test_missing_cells_are_listed_exactly(design, mem_wh):
    scores, _ = design
    dropped = scores.iloc[[5, 100, 101, 539]]
    mem_wh.ingest_frames(scores=scores.drop(dropped.index))
    missing = mem_wh.info().missing
    assert list(missing.columns) == ["experiment", "method", "task", "metric", "order", "seed", "language"]
    got = set(missing[["order", "seed", "language"]].itertuples(index=False, name=None))
    assert got == set(dropped[["order", "seed", "language"]].itertuples(index=False, name=None))
    assert set(missing["experiment"]) == {"default"} and set(missing["task"]) == {"xnli"}


# --- compressed files, notes, a full disk (issue 14) -------------------------------------------


@pytest.mark.parametrize("name", ["scores.csv.gz", "scores.jsonl.gz", "scores.tsv.gz"])
def test_gzipped_csv_and_jsonl_are_read_as_the_plain_file(name, mem_wh, tmp_path):
    plain = tmp_path / name.removesuffix(".gz").replace(".tsv", ".csv")
    write_table(scores_frame(), plain)
    data = plain.read_bytes().replace(b",", b"\t") if ".tsv" in name else plain.read_bytes()
    (tmp_path / name).write_bytes(gzip.compress(data))
    result = mem_wh.ingest([tmp_path / name])
    assert list(result["rows_stored"]) == [len(scores_frame())]
    stored = mem_wh.table("scores").sort_values(["run_id", "language"], ignore_index=True)
    assert stored["score"].tolist() == scores_frame().sort_values(["run_id", "language"])["score"].tolist()


def test_notes_are_a_list_and_keep_semicolons_inside_values(mem_wh, write):
    mem_wh.ingest([write("s.csv", scores_frame())])
    overrides = write("families.csv", "code,family\nsw,Bantu; Narrow\n")
    result = mem_wh.ingest([write("t.csv", scores_frame().assign(run_id=lambda f: f.run_id + "-2", **{"a; b": "x"}))],
                           families=overrides)  # fmt: skip
    notes = result["notes"].iloc[0]
    assert len(notes) == 2, notes
    assert notes[0] == "ignored columns: a; b"
    assert notes[1].startswith("language 'sw': family changed from 'Atlantic-Congo' to 'Bantu; Narrow' (")


@pytest.mark.parametrize(
    "failure",
    [OSError(errno.ENOSPC, "No space left on device"),
     duckdb.IOException('IO Error: Could not write file "w.duckdb": No space left on device')],  # fmt: skip
    ids=["oserror", "duckdb"],
)
def test_a_full_disk_is_one_line_and_the_warehouse_stays_usable(failure, tmp_path, populated, monkeypatch):
    from seqrob.warehouse import SeqrobError
    from seqrob.warehouse import ingest as ingest_module

    path = tmp_path / "w.duckdb"
    with Warehouse(path) as wh:
        before = read_all(populated(wh))
    new = write_table(scores_frame().assign(run_id=lambda f: f.run_id + "-new"), tmp_path / "new.csv")
    real_append = ingest_module._append
    calls = []

    def append_then_fill_the_disk(con, table, batch):
        calls.append(table)
        real_append(con, table, batch)  # something was written before the disk filled up
        raise failure

    monkeypatch.setattr(ingest_module, "_append", append_then_fill_the_disk)
    with Warehouse(path) as wh, pytest.raises(SeqrobError) as caught:
        wh.ingest([new])
    message = str(caught.value)
    assert calls and "\n" not in message
    assert message.startswith(f"the disk of {path} is full: nothing of {new} was stored")
    assert "free space" in message
    monkeypatch.undo()
    with Warehouse(path) as wh:  # opens, holds what it held, and takes the file once there is room
        assert_same_tables(before, read_all(wh))
        assert list(wh.ingest([new])["rows_stored"]) == [len(scores_frame())]


# --- re-ingests and refusals stay small (issue 14) -------------------------------------------


def test_reingest_of_a_stored_file_compares_batch_by_batch(tiny_batches, mem_wh, populated, write, monkeypatch):
    from seqrob.warehouse import ingest

    populated(mem_wh)
    stored = mem_wh.table("predictions")
    path = write("again.parquet", predictions_frame())

    def whole_file(*args, **kwargs):  # the exact path stages every row of the file
        raise AssertionError("the re-ingest staged the whole file")

    monkeypatch.setattr(ingest, "_stage_predictions", whole_file)
    result = mem_wh.ingest([path])
    n = len(predictions_frame())
    assert (result["rows_read"].iloc[0], result["rows_stored"].iloc[0], result["rows_skipped"].iloc[0]) == (n, 0, n)
    pd.testing.assert_frame_equal(mem_wh.table("predictions"), stored)


def test_reingest_with_new_rows_stores_them_and_a_difference_is_still_refused(tiny_batches, mem_wh, populated, write):
    populated(mem_wh)
    frame = predictions_frame()
    extra = pd.DataFrame({"run_id": [frame["run_id"].iloc[0]], "task": "xnli", "language": [frame["language"].iloc[0]],
                          "example_id": ["new"], "correct": [1]})
    result = mem_wh.ingest([write("more.parquet", pd.concat([frame, extra], ignore_index=True))])
    assert (result["rows_stored"].iloc[0], result["rows_skipped"].iloc[0]) == (1, len(frame))
    changed = frame.copy()
    changed.loc[len(frame) - 1, "correct"] = 1 - changed.loc[len(frame) - 1, "correct"]
    with pytest.raises(InputError, match=f"row {len(frame)}: this example's outcome differs from the one stored"):
        mem_wh.ingest([write("changed.parquet", changed)])
    assert len(mem_wh.table("predictions")) == len(frame) + 1


def test_refused_ingests_do_not_grow_the_warehouse_file(tmp_path, write):
    # 300,000 rows: enough for DuckDB to write the insert to the file before the commit.
    n = 300_000
    scores = pd.DataFrame({"run_id": ["big"], "order": "none", "seed": 1, "task": "xnli", "language": "de",
                           "metric": "accuracy", "score": 0.5})
    bad = pd.DataFrame({"run_id": "big", "task": "xnli", "language": "de",
                        "example_id": [f"e{i}" for i in range(n)], "correct": np.arange(n) % 2})
    bad.loc[n - 1, "correct"] = 7
    path = write("bad.parquet", bad)
    db = tmp_path / "w.duckdb"
    with Warehouse(db) as wh:
        wh.ingest_frames(scores=scores)
        wh.con.execute("CHECKPOINT")
        empty = db.stat().st_size
        for _ in range(3):
            with pytest.raises(InputError, match=f"row {n}, column 'correct'"):
                wh.ingest([path])
            assert db.stat().st_size <= empty
        assert len(wh.table("predictions")) == 0
    assert db.stat().st_size <= empty
