"""The warehouse file: schema version, foreign files, export, reading it back through the
library and ``seqrob warehouse info``, and surviving kill -9."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pandas as pd
import pytest

from seqrob.cli import main
from seqrob.warehouse import InputError, SchemaError, SeqrobError, Warehouse
from seqrob.warehouse.analyses import RESULT_COLUMNS
from seqrob.warehouse.schema import SCHEMA_VERSION, TABLES
from seqrob.warehouse.simulate import simulate

FAMILIES = {"en": "Indo-European", "de": "Indo-European", "fi": "Uralic", "et": "Uralic"}


def _small():
    return simulate(seeds=2, languages=tuple(FAMILIES), families=FAMILIES, n_examples=20)


def test_new_warehouse_has_every_table_and_the_version(tmp_path):
    with Warehouse(tmp_path / "w.duckdb") as wh:
        names = {r[0] for r in wh.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        version = wh.con.execute("SELECT value FROM seqrob_meta WHERE key = 'schema_version'").fetchall()[0][0]
    assert set(TABLES) <= names
    assert int(version) == SCHEMA_VERSION


def test_a_version_2_warehouse_is_migrated_and_its_stored_findings_are_order_findings(tmp_path):
    from seqrob.warehouse.schema import _V1, _V2

    path = tmp_path / "v2.duckdb"
    con = duckdb.connect(str(path))
    for statement in _V1 + _V2:
        con.execute(statement)
    con.execute("INSERT INTO seqrob_meta VALUES ('schema_version', '2')")
    con.execute("INSERT INTO analyses (analysis_id, kind) VALUES (1, 'significance')")
    con.execute("INSERT INTO analysis_results (analysis_id, test) VALUES (1, 'contrast')")
    con.execute("INSERT INTO analysis_findings (analysis_id, label, task, metric, question, comparison, status) "
                "VALUES (1, 't accuracy', 't', 'accuracy', 'score', 'a vs b', 'found')")  # fmt: skip
    con.close()
    with Warehouse(path) as wh:
        assert wh.schema_version == SCHEMA_VERSION == 3
        stored = wh.load_analysis(1)
    assert list(pd.DataFrame(stored["findings"])["factor"]) == ["order"]
    assert pd.DataFrame(stored["results"])["label"].isna().all()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "w.duckdb"
    Warehouse(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE seqrob_meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    with pytest.raises(SchemaError, match="newer than this seqrob"):
        Warehouse(path)


def test_a_foreign_duckdb_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE mine (x INTEGER)")
    con.close()
    with pytest.raises(SchemaError, match="not a seqrob warehouse"):
        Warehouse(path)
    con = duckdb.connect(str(path))
    assert [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()] == ["mine"]
    con.close()


def _stored_warehouse(path):
    with Warehouse(path) as wh:
        wh.ingest_frames(scores=_small().scores)
    return path.read_bytes()


@pytest.mark.parametrize("command", [["warehouse", "info"], ["ingest", "SCORES"]], ids=" ".join)
def test_a_truncated_warehouse_is_one_line_and_left_as_it_is(command, tmp_path, capsys):
    # seqrob's own `head -c 2097152 w.duckdb > t.duckdb`: the file ends before its last blocks.
    whole = _stored_warehouse(tmp_path / "w.duckdb")
    cut = len(whole) // 2
    truncated = tmp_path / "t.duckdb"
    truncated.write_bytes(whole[:cut])
    scores = tmp_path / "scores.csv"
    _small().scores.head(3).assign(run_id="new").to_csv(scores, index=False)
    args = [scores if part == "SCORES" else part for part in command]
    code, out, err = run_main(capsys, *args, "--db", truncated)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"error: the warehouse {truncated} is damaged or truncated ({cut:,} bytes of at least {len(whole):,} its header"
        " lists) - restore it from a copy, or ingest into a new --db"
    ]
    assert truncated.read_bytes() == whole[:cut]


@pytest.mark.parametrize("value", ["two", "2.5", ""])
def test_a_schema_version_that_is_not_a_whole_number_is_refused(value, tmp_path, capsys):
    path = tmp_path / "w.duckdb"
    _stored_warehouse(path)
    con = duckdb.connect(str(path))
    con.execute("UPDATE seqrob_meta SET value = ? WHERE key = 'schema_version'", [value])
    con.close()
    before = path.read_bytes()
    with pytest.raises(SchemaError, match=f"seqrob_meta holds schema_version '{value}', not a whole number"):
        Warehouse(path)
    code, _, err = run_main(capsys, "warehouse", "info", "--db", path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not a whole number" in err
    assert path.read_bytes() == before


def test_read_only_needs_an_existing_warehouse(tmp_path):
    with pytest.raises(SeqrobError, match="no warehouse at"):
        Warehouse(tmp_path / "missing.duckdb", read_only=True)
    assert not (tmp_path / "missing.duckdb").exists()


def test_create_false_refuses_a_missing_file_and_creates_nothing(tmp_path):
    missing = tmp_path / "mistyped.duckdb"
    with pytest.raises(InputError, match="no warehouse at .*mistyped.duckdb - ingest, simulate or train"):
        Warehouse(missing, create=False)
    assert list(tmp_path.iterdir()) == []
    Warehouse(tmp_path / "w.duckdb").close()
    with Warehouse(tmp_path / "w.duckdb", create=False) as wh:
        assert wh.writable
    with Warehouse(tmp_path / "w.duckdb", read_only=True) as wh:
        assert not wh.writable


def run_main(capsys, *args) -> tuple[int, str, str]:
    """Run ``seqrob ARGS`` in this process; return exit code, stdout, stderr."""
    try:
        main([str(arg) for arg in args])
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "command",
    [["warehouse", "info"], ["warehouse", "export", "OUT"], ["report"], ["analyze", "power", "--effect", "0.01"]],
    ids=" ".join,
)
def test_a_read_command_with_a_mistyped_db_fails_in_one_line_and_creates_nothing(command, tmp_path, capsys):
    args = [str(tmp_path / "out") if part == "OUT" else part for part in command]
    code, out, err = run_main(capsys, *args, "--db", tmp_path / "nope.duckdb")
    assert code != 0
    assert err.strip().splitlines() == [f"error: no warehouse at {tmp_path / 'nope.duckdb'}"
                                        " - ingest, simulate or train into it first, or pass --db"]  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_starts_without_the_warehouse_stack():
    # `seqrob --help` must answer in under 0.3 s: DuckDB, pandas and the statistics load
    # only when a command runs (benchmarks/startup.py measures it).
    heavy = ("duckdb", "pandas", "numpy", "seqrob.warehouse", "seqrob.analysis")
    code = f"import sys, seqrob, seqrob.cli; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def small_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "w.duckdb"
    with Warehouse(path) as wh:
        wh.ingest_frames(scores=_small().scores, predictions=_small().predictions)
    return path


def test_info_as_json_holds_every_table_and_the_warnings(small_db, capsys):
    code, out, err = run_main(capsys, "warehouse", "info", "--db", small_db, "--format", "json")
    assert code == 0
    document = json.loads(out)
    with Warehouse(small_db, read_only=True) as wh:
        design = wh.info()
    assert document["warehouse"] == str(small_db)
    assert document["warnings"] == design.warnings
    for name in ("experiments", "tasks", "orders", "families", "missing", "failed"):
        assert document[name] == getattr(design, name).to_dict(orient="records"), name
    assert err.count("warning: ") == len(design.warnings)


def test_info_as_csv_and_markdown_is_plain_text_per_table(small_db, capsys):
    code, out, _ = run_main(capsys, "warehouse", "info", "--db", small_db, "--format", "csv")
    assert code == 0
    blocks = out.split("\n\n")
    assert [block.splitlines()[0] for block in blocks] == [
        "# experiments", "# tasks", "# orders", "# families", "# missing", "# failed"
    ]  # fmt: skip
    orders = pd.read_csv(io.StringIO(blocks[2]), comment="#")
    assert list(orders["order"]) == ["none", "nli>qa", "qa>nli"] and set(orders["seeds"]) == {2}
    code, out, _ = run_main(capsys, "warehouse", "info", "--db", small_db, "--format", "markdown")
    assert code == 0
    assert "## orders\n\n| experiment" in out and "\x1b[" not in out and "\u2502" not in out


def test_info_refuses_an_unknown_format_in_one_line(small_db, capsys):
    code, out, err = run_main(capsys, "warehouse", "info", "--db", small_db, "--format", "xml")
    assert code == 2 and out == ""
    assert err.strip() == "error: unknown --format 'xml' - use one of table, json, csv, markdown"


def test_predictions_are_the_outcomes_of_finished_runs(tmp_path):
    sim = _small()
    with Warehouse(":memory:") as wh:
        assert wh.predictions() is None
        wh.ingest_frames(scores=sim.scores, predictions=sim.predictions)
        outcomes = wh.predictions()
        assert wh.predictions(["no such task"]) is None
        assert len(wh.predictions(["target"])) == len(sim.predictions)
    # 0/1 outcomes: the all-empty value, tp, fp and fn columns are dropped
    assert list(outcomes.columns) == ["run_id", "task", "language", "example_id", "correct"]
    assert len(outcomes) == len(sim.predictions)


def test_analyses_are_stored_found_and_loaded_through_the_warehouse():
    sim = _small()
    results = pd.DataFrame([{name: None for name in RESULT_COLUMNS}]).assign(
        test="contrast", term="nli>qa - none", task="target", metric="accuracy", estimate=0.05, n=2.0
    )
    with Warehouse(":memory:") as wh:
        wh.ingest_frames(scores=sim.scores)
        assert wh.experiments() == ["simulated"]
        before = wh.fingerprint()
        parameters = {"alpha": 0.05, "seed": 0}
        assert wh.find_analysis("kind", parameters) is None and wh.latest_analysis("kind") is None
        analysis_id = wh.store_analysis(kind="kind", parameters=parameters, results=results, seqrob_version="x")
        assert wh.find_analysis("kind", parameters) == analysis_id == wh.latest_analysis("kind")
        assert wh.find_analysis("kind", {"alpha": 0.01, "seed": 0}) is None
        stored = wh.load_analysis(analysis_id)
        assert stored["parameters"] == parameters and stored["data_hash"] == before
        assert stored["results"][["test", "estimate"]].values.tolist() == [["contrast", 0.05]]
        # new data: the stored analysis no longer describes it
        wh.ingest_frames(predictions=sim.predictions)
        assert wh.fingerprint() != before
        assert wh.find_analysis("kind", parameters) is None


def test_export_writes_every_table_readably(tmp_path):
    sim = _small()
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.ingest_frames(scores=sim.scores, predictions=sim.predictions)
        parquet = wh.export(tmp_path / "pq")
        csv = wh.export(tmp_path / "csv", tables=["scores", "runs"], fmt="csv")
        with pytest.raises(SeqrobError, match="no table 'nope'"):
            wh.export(tmp_path / "x", tables=["nope"])
    assert set(parquet["table"]) == set(TABLES)
    scores = pd.read_parquet(tmp_path / "pq" / "scores.parquet")
    assert len(scores) == len(sim.scores)
    assert len(pd.read_parquet(tmp_path / "pq" / "predictions.parquet")) == len(sim.predictions)
    assert list(csv["rows"]) == [len(sim.scores), 3 * 2]
    runs = pd.read_csv(tmp_path / "csv" / "runs.csv")
    assert sorted(runs["order"].unique()) == ["nli>qa", "none", "qa>nli"]


def test_scores_view_joins_runs_and_families(tmp_path):
    sim = _small()
    with Warehouse(":memory:") as wh:
        wh.ingest_frames(scores=sim.scores)
        joined = wh.scores()
    assert len(joined) == len(sim.scores)
    assert dict(zip(joined["language"], joined["family"])) == FAMILIES


_KILLED_INGEST = textwrap.dedent(
    """
    import sys
    import numpy as np, pandas as pd
    from seqrob.warehouse import Warehouse
    db = sys.argv[1]
    n = 3_000_000
    runs = pd.DataFrame({"run_id": ["r1"], "order": ["none"], "seed": [1], "task": ["t"], "language": ["en"],
                         "metric": ["accuracy"], "score": [0.5]})
    preds = pd.DataFrame({"run_id": "r1", "task": "t", "language": "en",
                          "example_id": np.arange(n).astype(str), "correct": np.ones(n, dtype=np.int8)})
    with Warehouse(db) as wh:
        wh.ingest_frames(scores=runs)
        print("scores stored", flush=True)
        wh.ingest_frames(predictions=preds)
        print("predictions stored", flush=True)
    """
)


def test_kill_9_during_an_ingest_leaves_all_or_nothing(tmp_path):
    db = tmp_path / "w.duckdb"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_INGEST, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = child.stdout.readline()
    assert line.strip() == "scores stored", child.stderr.read()
    time.sleep(0.5)  # inside the predictions transaction
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    with Warehouse(db) as wh:
        assert wh.con.execute("SELECT count(*) FROM scores").fetchall()[0][0] == 1
        stored = wh.con.execute("SELECT count(*) FROM predictions").fetchall()[0][0]
        assert stored in (0, 3_000_000)
        # and the warehouse still takes the same file, whole
        frame = pd.DataFrame({"run_id": "r1", "task": "t", "language": "en", "example_id": ["a", "b"], "correct": [1, 0]})
        wh.ingest_frames(predictions=frame)
        assert wh.con.execute("SELECT count(*) FROM predictions").fetchall()[0][0] == stored + 2
