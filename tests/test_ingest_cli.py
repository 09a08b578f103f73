"""``seqrob ingest`` from the command line: exit codes, one-line errors, and the warehouse after.

Most tests call :func:`seqrob.cli.main` in this process (it ends with ``sys.exit``);
a few run the real ``seqrob`` process, where a traceback or a second writer would show.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from conftest import BAD_CASES, SCORE_HEADER, assert_same_tables, read_all, scores_frame
from seqrob.cli import main
from test_ingest import TYPE_CASES
from seqrob.warehouse import Warehouse, WarehouseInUse


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``seqrob ARGS`` in this process; return exit code, stdout, stderr."""
    try:
        main([str(arg) for arg in args])
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def run_process(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``seqrob ARGS`` as its own process (the installed entry point)."""
    code = "import sys; from seqrob.cli import main; sys.argv[0] = 'seqrob'; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def stored(path: Path) -> dict:
    with Warehouse(path, read_only=True) as wh:
        return read_all(wh)


def assert_one_error_line(err: str, out: str = "") -> str:
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0][len("error: "):]


@pytest.fixture(scope="module")
def populated_db_before(populated_db):
    return populated_db.read_bytes(), stored(populated_db)


def assert_file_unchanged(path: Path, before: tuple[bytes, dict]) -> None:
    """A byte-identical file is unchanged; otherwise every table is compared through the library
    (DuckDB may rewrite blocks without changing what is stored)."""
    if path.read_bytes() != before[0]:
        assert_same_tables(before[1], stored(path))


# --- every refusal of the contract -------------------------------------------------------------


def test_bad_input_exits_non_zero_with_one_line(bad_case, tmp_path, populated_db, populated_db_before, capsys):
    _assert_one_line_refusal(bad_case, tmp_path, populated_db, populated_db_before, capsys)


@pytest.mark.parametrize("case", TYPE_CASES, ids=[case.id for case in TYPE_CASES])
def test_input_types_and_compression_exit_2_with_one_line(case, tmp_path, populated_db, populated_db_before, capsys):
    _assert_one_line_refusal(case, tmp_path, populated_db, populated_db_before, capsys)


def _assert_one_line_refusal(bad_case, tmp_path, populated_db, populated_db_before, capsys) -> None:
    path = bad_case.write(tmp_path)
    code, out, err = run_main(capsys, "ingest", path, "--db", populated_db, "--wait", "0", *bad_case.cli_options())
    assert code == 2
    line = assert_one_error_line(err, out)
    assert line.startswith(str(path)), line
    if bad_case.row is not None:
        assert f"row {bad_case.row}" in line
    if bad_case.column is not None:
        assert f"column '{bad_case.column}'" in line
    assert bad_case.problem in line
    where_what, _, fix = line.rpartition(" - ")
    assert bad_case.fix in fix and bad_case.problem in where_what, line
    assert out == ""
    assert_file_unchanged(populated_db, populated_db_before)


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path, db_path):
    (case,) = [c for c in BAD_CASES if c.id == "ragged-too-many"]
    before = stored(db_path)
    path = case.write(tmp_path)
    done = run_process("ingest", path, "--db", db_path, "--wait", "0")
    assert done.returncode == 2
    line = assert_one_error_line(done.stderr, done.stdout)
    assert line.startswith(str(path)) and case.problem in line
    assert_same_tables(before, stored(db_path))


def test_usage_errors_are_one_line(tmp_path, db_path, capsys):
    code, out, err = run_main(capsys, "ingest", tmp_path / "scores.csv", "--db", db_path, "--column", "seed")
    assert code == 2
    assert assert_one_error_line(err, out) == "--column 'seed' is not of the form KEY=VALUE - write e.g. --column seed=Run"
    code, out, err = run_main(capsys, "ingest", tmp_path / "scores.csv", "--db", db_path, "--wide", "lang")
    assert code == 2 and "use --wide language or --wide metric" in assert_one_error_line(err, out)
    code, out, err = run_main(capsys, "ingest", tmp_path / "nope.csv", "--db", db_path)
    assert code == 2 and assert_one_error_line(err, out) == f"{tmp_path / 'nope.csv'}: no such file - check the path"


@pytest.mark.parametrize("args", [["ingest"], ["ingest", "x.csv", "--wait", "soon"], ["ingest", "x.csv", "--bogus"]],
                         ids=["no-file", "bad-wait", "unknown-option"])
def test_click_usage_errors_are_one_line(args, db_path, capsys):
    code, out, err = run_main(capsys, *args, "--db", db_path)
    assert code == 2
    assert_one_error_line(err, out)


# --- what is accepted, through the options ------------------------------------------------------


def test_ingest_prints_a_table_and_stores(dataset, db_path, capsys):
    scores, predictions = dataset("csv")
    code, out, err = run_main(capsys, "ingest", predictions, scores, "--db", db_path)
    assert code == 0, err
    assert err == ""
    assert "scores" in out and "predictions" in out and "48" in out
    with Warehouse(db_path, read_only=True) as wh:
        log = wh.table("ingests").sort_values("ingest_id")
        assert list(log["kind"]) == ["scores", "predictions"]
        assert list(log["rows_stored"]) == [12, 48]
        assert len(wh.table("runs")) == 4


def test_identical_reingest_is_skipped_and_replace_overwrites(db_path, dataset, write, capsys):
    scores, _ = dataset("parquet")
    assert run_main(capsys, "ingest", scores, "--db", db_path)[0] == 0
    code, out, err = run_main(capsys, "ingest", scores, "--db", db_path)
    assert code == 0
    with Warehouse(db_path, read_only=True) as wh:
        assert list(wh.table("ingests").sort_values("ingest_id")["rows_skipped"]) == [0, 12]
    fix = write("fix.csv", SCORE_HEADER + "\nr1,nli>qa,1,xnli,de,accuracy,0.99\n")
    code, out, err = run_main(capsys, "ingest", fix, "--db", db_path)
    assert code == 2 and "--replace" in assert_one_error_line(err, out)
    code, out, err = run_main(capsys, "ingest", fix, "--db", db_path, "--replace")
    assert code == 0, err
    with Warehouse(db_path, read_only=True) as wh:
        score = wh.table("scores").query("run_id == 'r1' and language == 'de'")["score"]
        assert list(score) == [0.99]


def test_percent_note_is_a_warning_line(db_path, write, capsys):
    path = write("pct.csv", SCORE_HEADER + "\nn1,none,1,xnli,de,accuracy,50\nn1,none,1,xnli,fr,accuracy,75\n")
    code, out, err = run_main(capsys, "ingest", path, "--db", db_path)
    assert code == 0
    assert err.strip() == f"warning: {path}: accuracy is on a 0-100 scale in this file: stored as proportions (divided by 100)"
    with Warehouse(db_path, read_only=True) as wh:
        assert sorted(wh.table("scores")["score"]) == [0.5, 0.75]


def test_each_note_is_one_warning_line_even_with_semicolons(db_path, write, capsys):
    path = write("s.csv", scores_frame().assign(**{"a; b": "x"}))
    code, _, err = run_main(capsys, "ingest", path, "--db", db_path)
    assert code == 0
    assert err.strip().splitlines() == [f"warning: {path}: ignored columns: a; b"]


def test_column_set_experiment_and_kind_options(db_path, write, capsys):
    path = write("mine.csv", "id,Run,lang,metric,acc,example_id\nn1,4,de,accuracy,0.5,x\nn1,4,fr,accuracy,0.25,y\n")
    args = ["ingest", path, "--db", db_path, "--column", "run_id=id", "--column", "seed=Run", "--column", "language=lang",
            "--column", "score=acc", "--set", "task=xnli", "--set", "order=nli>qa", "--experiment", "e1"]
    code, out, err = run_main(capsys, *args)
    assert code == 2 and "--kind" in assert_one_error_line(err, out)
    code, out, err = run_main(capsys, *args, "--kind", "scores")
    assert code == 0, err
    assert "ignored columns: example_id" in err
    with Warehouse(db_path, read_only=True) as wh:
        scores = wh.scores()
    assert list(scores["seed"]) == [4, 4] and set(scores["task"]) == {"xnli"} and set(scores["order"]) == {"nli>qa"}
    assert set(scores["experiment"]) == {"e1"} and sorted(scores["language"]) == ["de", "fr"]


def test_mapped_column_that_does_not_exist(db_path, dataset, capsys):
    scores, _ = dataset("csv")
    code, out, err = run_main(capsys, "ingest", scores, "--db", db_path, "--column", "seed=Run")
    assert code == 2
    line = assert_one_error_line(err, out)
    assert line.startswith(f"{scores}: --column seed=Run: the file has no column 'Run' - columns are: run_id, order, seed")


def test_wide_language_and_wide_metric_options(db_path, write, capsys):
    languages = write("wide_lang.csv", "run_id,order,seed,task,metric,de,fr\nn1,none,1,xnli,accuracy,0.5,0.25\n")
    metrics = write("wide_metric.jsonl", pd.DataFrame({"run_id": ["n2"], "order": ["nli"], "seed": [2], "task": ["xquad"],
                                                       "language": ["de"], "f1": [0.75], "exact_match": [0.5]}))
    assert run_main(capsys, "ingest", languages, "--db", db_path, "--wide", "language")[0] == 0
    assert run_main(capsys, "ingest", metrics, "--db", db_path, "--wide", "metric")[0] == 0
    with Warehouse(db_path, read_only=True) as wh:
        got = wh.table("scores").set_index(["run_id", "language", "metric"])["score"].to_dict()
    assert got == {("n1", "de", "accuracy"): 0.5, ("n1", "fr", "accuracy"): 0.25,
                   ("n2", "de", "f1"): 0.75, ("n2", "de", "exact_match"): 0.5}


def test_families_option(db_path, write, capsys):
    path = write("s.csv", SCORE_HEADER + "\nn1,none,1,xnli,qqq,accuracy,0.5\n")
    code, out, err = run_main(capsys, "ingest", path, "--db", db_path)
    assert code == 2 and "--families FILE" in assert_one_error_line(err, out)
    families = write("families.csv", "code,family\nqqq,Elvish\n")
    code, out, err = run_main(capsys, "ingest", path, "--db", db_path, "--families", families)
    assert code == 0, err
    with Warehouse(db_path, read_only=True) as wh:
        assert wh.scores()["family"].tolist() == ["Elvish"]


def test_format_option(db_path, tmp_path, capsys):
    path = tmp_path / "scores.txt"
    scores_frame().to_csv(path, index=False)
    code, out, err = run_main(capsys, "ingest", path, "--db", db_path)
    assert code == 2 and "--format" in assert_one_error_line(err, out)
    assert run_main(capsys, "ingest", path, "--db", db_path, "--format", "csv")[0] == 0


def test_quotes_and_sql_through_the_cli(db_path, write, capsys):
    run_id, task = 'run "a", 1', "x'); DROP TABLE runs; --"
    frame = scores_frame().head(1).assign(run_id=run_id, task=task)
    assert run_main(capsys, "ingest", write("q.csv", frame), "--db", db_path)[0] == 0
    with Warehouse(db_path, read_only=True) as wh:
        assert wh.table("runs")["run_id"].tolist() == [run_id]
        assert wh.table("scores")["task"].tolist() == [task]


def test_names_that_look_like_markup_are_printed_as_they_are(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d[").mkdir()
    (tmp_path / "d[" / "x]").mkdir()
    scores_frame().to_csv(tmp_path / "d[/x]/f.csv", index=False)
    scores_frame().to_csv(tmp_path / "b[red]c.csv", index=False)
    code, out, err = run_main(capsys, "ingest", "d[/x]/f.csv", "b[red]c.csv", "--db", "w.duckdb")
    assert code == 0, err
    assert "Traceback" not in err and "d[/x]/f.csv" in out and "b[red]c.csv" in out
    with Warehouse(tmp_path / "w.duckdb", read_only=True) as wh:
        assert list(wh.table("ingests").sort_values("ingest_id")["file"]) == ["d[/x]/f.csv", "b[red]c.csv"]


# --- two writers ---------------------------------------------------------------------------------

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from seqrob.warehouse import Warehouse, WarehouseInUse
    wh = Warehouse(sys.argv[1])
    print("holding", flush=True)
    sys.stdin.readline()  # told to let go: hold on a little longer, then close
    time.sleep(float(sys.argv[2]))
    wh.close()
    """
)


def test_second_writer_gets_exit_code_3_and_the_file_survives(populated_db, populated_db_before, dataset, tmp_path):
    # This process holds the warehouse; the CLI runs as a second process.
    db = tmp_path / "copy.duckdb"
    db.write_bytes(populated_db.read_bytes())
    scores, _ = dataset("csv")
    fresh = scores.with_name("fresh.csv")
    scores_frame().assign(run_id=lambda f: f.run_id + "-new").to_csv(fresh, index=False)
    with Warehouse(db) as holder:
        done = run_process("ingest", fresh, "--db", db, "--wait", "0")
        assert done.returncode == 3
        line = assert_one_error_line(done.stderr, done.stdout)
        assert f"warehouse {db} is in use" in line and "--wait" in line
        assert_same_tables(populated_db_before[1], read_all(holder))
    assert_same_tables(populated_db_before[1], stored(db))


def test_second_writer_is_refused_then_waits(populated_db, tmp_path, capsys):
    # Another process holds the warehouse; the CLI here is refused, then waits for it to let go.
    db = tmp_path / "copy.duckdb"
    db.write_bytes(populated_db.read_bytes())
    fresh = tmp_path / "fresh.csv"
    scores_frame().assign(run_id=lambda f: f.run_id + "-new").to_csv(fresh, index=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db), "0.5"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        code, out, err = run_main(capsys, "ingest", fresh, "--db", db, "--wait", "0")
        assert code == 3 and "is in use" in assert_one_error_line(err, out)
        with pytest.raises(WarehouseInUse, match=f"warehouse {db} is in use"):
            Warehouse(db, wait=0)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        code, out, err = run_main(capsys, "ingest", fresh, "--db", db, "--wait", "30")
        assert code == 0, err
    finally:
        if holder.poll() is None:
            holder.stdin.close()  # lets a holder still waiting for "go" finish
        holder.wait(timeout=30)
        for stream in (holder.stdin, holder.stdout):
            stream.close()
    assert holder.returncode == 0
    with Warehouse(db, read_only=True) as wh:
        assert len(wh.table("runs")) == 9
