"""The warehouse file: schema version, foreign files, export, and surviving kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pandas as pd
import pytest

from seqrob.warehouse import SchemaError, SeqrobError, Warehouse
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


def test_read_only_needs_an_existing_warehouse(tmp_path):
    with pytest.raises(SeqrobError, match="no warehouse at"):
        Warehouse(tmp_path / "missing.duckdb", read_only=True)
    assert not (tmp_path / "missing.duckdb").exists()


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
