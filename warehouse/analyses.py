"""Stored analyses: their parameters, a fingerprint of the data they saw, and tidy result rows.

The result rows use seqrob's one vocabulary of columns (``analysis_results``); the
report finds a stored analysis whose parameters and data fingerprint match, and runs
the analysis again only when none does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import duckdb
import pandas as pd

from seqrob.warehouse.schema import FINDING_COLUMNS, RESULT_COLUMNS

__all__ = ["RESULT_COLUMNS", "data_fingerprint", "store_analysis", "load_analysis", "find_analysis", "latest_analysis"]


def data_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """An order-independent hash of the finished runs, their scores, outcomes and families."""
    parts = con.execute(
        """SELECT
             (SELECT count(*) || ':' || coalesce(bit_xor(hash(run_id, experiment, "order", seed, method, status)), 0)
                FROM runs),
             (SELECT count(*) || ':' || coalesce(bit_xor(hash(run_id, task, language, metric, score)), 0)
                FROM scores),
             (SELECT count(*) || ':' || coalesce(bit_xor(hash(run_id, task, language, example_id, correct,
                                                              value, tp, fp, fn)), 0) FROM predictions),
             (SELECT count(*) || ':' || coalesce(bit_xor(hash(code, family)), 0) FROM languages)"""
    ).fetchall()[0]
    return "/".join(str(p) for p in parts)


def store_analysis(
    con: duckdb.DuckDBPyConnection,
    *,
    kind: str,
    parameters: Mapping[str, object],
    results: pd.DataFrame,
    design: Mapping[str, object] | None = None,
    model: Mapping[str, object] | None = None,
    warnings: Sequence[str] = (),
    seqrob_version: str | None = None,
    findings: pd.DataFrame | None = None,
) -> int:
    """Insert an analysis, its result rows and its findings; return its id. The caller owns the transaction."""
    analysis_id = con.execute("SELECT coalesce(max(analysis_id), 0) + 1 FROM analyses").fetchall()[0][0]
    con.execute(
        """INSERT INTO analyses (analysis_id, kind, seqrob_version, parameters, data_hash, design, model, warnings)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            analysis_id,
            kind,
            seqrob_version,
            json.dumps(parameters, sort_keys=True, default=str),
            data_fingerprint(con),
            json.dumps(design or {}, sort_keys=True, default=str),
            json.dumps(model or {}, sort_keys=True, default=str),
            json.dumps(list(warnings)),
        ],
    )
    _insert(con, "analysis_results", results, RESULT_COLUMNS, analysis_id)
    if findings is not None:
        _insert(con, "analysis_findings", findings, FINDING_COLUMNS, analysis_id)
    return int(analysis_id)


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, columns, analysis_id: int) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{table} rows lack columns {missing}")
    rows = frame[list(columns)].copy()
    rows.insert(0, "analysis_id", analysis_id)
    con.register("_seqrob_rows", rows)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _seqrob_rows")
    finally:
        con.unregister("_seqrob_rows")


def load_analysis(con: duckdb.DuckDBPyConnection, analysis_id: int) -> dict:
    """An analysis as a dict: its row (parameters etc. decoded), ``results`` and ``findings`` as DataFrames."""
    frame = con.execute("SELECT * FROM analyses WHERE analysis_id = ?", [analysis_id]).df()
    if frame.empty:
        raise KeyError(analysis_id)
    row = frame.iloc[0].to_dict()
    for name in ("parameters", "design", "model", "warnings"):
        row[name] = json.loads(row[name]) if row[name] else None
    for name in ("results", "findings"):
        row[name] = con.execute(
            f"SELECT * EXCLUDE (analysis_id) FROM analysis_{name} WHERE analysis_id = ? ORDER BY rowid", [analysis_id]
        ).df()
    return row


def find_analysis(con: duckdb.DuckDBPyConnection, *, kind: str, parameters: Mapping[str, object]) -> int | None:
    """The newest stored analysis of ``kind`` with these parameters over the current data, if any."""
    rows = con.execute(
        """SELECT analysis_id FROM analyses WHERE kind = ? AND parameters = CAST(? AS JSON) AND data_hash = ?
           ORDER BY analysis_id DESC LIMIT 1""",
        [kind, json.dumps(parameters, sort_keys=True, default=str), data_fingerprint(con)],
    ).fetchall()
    return int(rows[0][0]) if rows else None


def latest_analysis(con: duckdb.DuckDBPyConnection, *, kind: str) -> int | None:
    """The newest stored analysis of ``kind`` over the current data (any parameters), if any."""
    rows = con.execute(
        "SELECT analysis_id FROM analyses WHERE kind = ? AND data_hash = ? ORDER BY analysis_id DESC LIMIT 1",
        [kind, data_fingerprint(con)],
    ).fetchall()
    return int(rows[0][0]) if rows else None
