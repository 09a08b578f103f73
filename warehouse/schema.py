"""The warehouse's tables, their version, and the migrations between versions.

Table and column names are part of seqrob's contract (outside tools query them):
``experiments, runs, stages, languages, scores, predictions, analyses,
analysis_results``. ``order`` is an SQL keyword, so it is always quoted.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from seqrob.warehouse.errors import SchemaError

__all__ = ["SCHEMA_VERSION", "TABLES", "RESULT_COLUMNS", "FINDING_COLUMNS", "ensure_schema"]

SCHEMA_VERSION = 3

_V1 = [
    """CREATE TABLE IF NOT EXISTS seqrob_meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS experiments (
        experiment VARCHAR PRIMARY KEY,
        description VARCHAR,
        created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    )""",
    # One row per run (one order x one seed x one method of an experiment).
    # Provenance: where the run came from (a training config or an ingested file),
    # package versions, git commit, host, start/end and status.
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY,
        experiment VARCHAR NOT NULL,
        "order" VARCHAR NOT NULL,
        seed BIGINT NOT NULL,
        data_seed BIGINT,
        method VARCHAR NOT NULL,
        model VARCHAR,
        config JSON,
        config_hash VARCHAR,
        packages JSON,
        git_commit VARCHAR,
        host VARCHAR,
        started_at TIMESTAMPTZ,
        ended_at TIMESTAMPTZ,
        status VARCHAR NOT NULL,
        failure VARCHAR,
        source VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS stages (
        run_id VARCHAR NOT NULL,
        position INTEGER NOT NULL,
        task VARCHAR NOT NULL,
        steps BIGINT,
        final_loss DOUBLE,
        PRIMARY KEY (run_id, position)
    )""",
    # Languages as they are written in scores/predictions (the user's code), with
    # the family and where the family came from (Glottolog, the file, an override).
    """CREATE TABLE IF NOT EXISTS languages (
        code VARCHAR PRIMARY KEY,
        iso639_3 VARCHAR,
        name VARCHAR,
        family VARCHAR NOT NULL,
        genus VARCHAR,
        script VARCHAR,
        source VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS scores (
        run_id VARCHAR NOT NULL,
        task VARCHAR NOT NULL,
        language VARCHAR NOT NULL,
        metric VARCHAR NOT NULL,
        score DOUBLE NOT NULL,
        n_examples BIGINT,
        PRIMARY KEY (run_id, task, language, metric)
    )""",
    # Per-example outcomes: `correct` (0/1), or `value` (a per-example metric),
    # or tp/fp/fn (span F1 is computed from sums, never averaged per example).
    # No primary key: an index over tens of millions of rows would cost more than
    # the duplicate check that ingest runs instead.
    """CREATE TABLE IF NOT EXISTS predictions (
        run_id VARCHAR NOT NULL,
        task VARCHAR NOT NULL,
        language VARCHAR NOT NULL,
        example_id VARCHAR NOT NULL,
        correct TINYINT,
        value DOUBLE,
        tp BIGINT,
        fp BIGINT,
        fn BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS ingests (
        ingest_id BIGINT PRIMARY KEY,
        file VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        rows_read BIGINT NOT NULL,
        rows_stored BIGINT NOT NULL,
        rows_skipped BIGINT NOT NULL,
        ingested_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    )""",
    # An analysis: its parameters and a fingerprint of the data it saw; its result
    # rows use seqrob's one vocabulary of result columns.
    """CREATE TABLE IF NOT EXISTS analyses (
        analysis_id BIGINT PRIMARY KEY,
        kind VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        seqrob_version VARCHAR,
        parameters JSON,
        data_hash VARCHAR,
        design JSON,
        model JSON,
        warnings JSON
    )""",
    """CREATE TABLE IF NOT EXISTS analysis_results (
        analysis_id BIGINT NOT NULL,
        test VARCHAR NOT NULL,
        term VARCHAR,
        task VARCHAR,
        metric VARCHAR,
        family VARCHAR,
        estimate DOUBLE,
        ci_low DOUBLE,
        ci_high DOUBLE,
        statistic DOUBLE,
        df DOUBLE,
        p_value DOUBLE,
        p_adjusted DOUBLE,
        n BIGINT,
        method VARCHAR
    )""",
]

#: The result rows' columns after ``analysis_id``: seqrob's one vocabulary of result
#: columns (documented in :mod:`seqrob.analysis.results`).
RESULT_COLUMNS = (
    "test", "term", "task", "metric", "family", "estimate", "ci_low", "ci_high", "statistic", "df", "p_value",
    "p_adjusted", "n", "method", "interval", "confidence", "variant", "correction", "correction_family", "n_corrected",
    "label",
)  # fmt: skip

#: An analysis's findings after ``analysis_id`` (documented in :mod:`seqrob.analysis.findings`).
FINDING_COLUMNS = (
    "label", "method", "task", "metric", "family", "factor", "question", "comparison", "estimate", "ci_low", "ci_high",
    "confidence", "interval", "test", "p_value", "p_adjusted", "correction", "n_corrected", "status", "reason",
    "seeds", "seeds_needed", "effect", "alpha",
)  # fmt: skip

_V2 = [
    """ALTER TABLE analysis_results ADD COLUMN interval VARCHAR""",
    """ALTER TABLE analysis_results ADD COLUMN confidence DOUBLE""",
    """ALTER TABLE analysis_results ADD COLUMN variant VARCHAR""",
    """ALTER TABLE analysis_results ADD COLUMN correction VARCHAR""",
    """ALTER TABLE analysis_results ADD COLUMN correction_family VARCHAR""",
    """ALTER TABLE analysis_results ADD COLUMN n_corrected BIGINT""",
    # What an analysis found, one row per task x metric x family x comparison x question
    # (score or spread): every renderer (terminal, PDF, HTML, notebook) only formats these.
    """CREATE TABLE IF NOT EXISTS analysis_findings (
        analysis_id BIGINT NOT NULL,
        label VARCHAR NOT NULL,
        method VARCHAR,
        task VARCHAR NOT NULL,
        metric VARCHAR NOT NULL,
        family VARCHAR,
        question VARCHAR NOT NULL,
        comparison VARCHAR NOT NULL,
        estimate DOUBLE,
        ci_low DOUBLE,
        ci_high DOUBLE,
        confidence DOUBLE,
        interval VARCHAR,
        test VARCHAR,
        p_value DOUBLE,
        p_adjusted DOUBLE,
        correction VARCHAR,
        n_corrected BIGINT,
        status VARCHAR NOT NULL,
        reason VARCHAR,
        seeds BIGINT,
        seeds_needed BIGINT,
        effect DOUBLE,
        alpha DOUBLE
    )""",
]

_V3 = [
    # Which analysed group a result row belongs to (one task x metric x method, or a task x
    # metric's method comparison): with several methods, task and metric do not say.
    """ALTER TABLE analysis_results ADD COLUMN label VARCHAR""",
    # What a finding is about: "order" (order within one method), "method" (the methods
    # compared) or "order x method" (does order's effect depend on the method).
    """ALTER TABLE analysis_findings ADD COLUMN factor VARCHAR""",
    """UPDATE analysis_findings SET factor = 'order'""",
]

TABLES = (
    "experiments",
    "runs",
    "stages",
    "languages",
    "scores",
    "predictions",
    "ingests",
    "analyses",
    "analysis_results",
    "analysis_findings",
)

# MIGRATIONS[v] takes a warehouse at version v to version v + 1.
def _to_v2(con: duckdb.DuckDBPyConnection) -> None:
    """Version 2: result rows carry their interval kind, test variant and correction as
    columns; analyses store their findings (``analysis_findings``)."""
    for statement in _V2:
        con.execute(statement)


def _to_v3(con: duckdb.DuckDBPyConnection) -> None:
    """Version 3: result rows name their analysed group (``label``); findings say which
    factor they are about (``factor``: order, method, or order x method)."""
    for statement in _V3:
        con.execute(statement)


MIGRATIONS: dict[int, Callable[[duckdb.DuckDBPyConnection], None]] = {1: _to_v2, 2: _to_v3}


def _stored_version(con: duckdb.DuckDBPyConnection, path: str) -> int | None:
    tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "seqrob_meta" not in tables:
        if tables - {"seqrob_meta"}:
            return -1
        return None
    row = con.execute("SELECT value FROM seqrob_meta WHERE key = 'schema_version'").fetchall()
    row = row[0] if row else None
    if not row:
        return -1
    try:
        return int(row[0])
    except ValueError:
        raise SchemaError(
            f"{path}: seqrob_meta holds schema_version {row[0]!r}, not a whole number"
            " - the warehouse was edited by hand: restore it from a copy, or set it to the version it was written with"
        ) from None


def ensure_schema(con: duckdb.DuckDBPyConnection, *, path: str, writable: bool) -> int:
    """Create the tables in a new warehouse, or migrate an old one; return the version."""
    version = _stored_version(con, path)
    if version == -1:
        raise SchemaError(
            f"{path} is a DuckDB file but not a seqrob warehouse - point --db at a new file or a seqrob warehouse"
        )
    if version is not None and version > SCHEMA_VERSION:
        raise SchemaError(
            f"{path} has warehouse schema version {version}, newer than this seqrob's {SCHEMA_VERSION}"
            " - upgrade seqrob (pip install -U seqrob)"
        )
    if version == SCHEMA_VERSION:
        return version
    if not writable:
        if version is None:
            raise SchemaError(f"{path} is not a seqrob warehouse yet - ingest, simulate or train into it first")
        raise SchemaError(f"{path} needs a schema migration - open it once for writing (e.g. seqrob analyze significance --db PATH)")
    con.execute("BEGIN TRANSACTION")
    try:
        if version is None:
            for statement in _V1:
                con.execute(statement)
            version = 1
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](con)
            version += 1
        con.execute(
            "INSERT OR REPLACE INTO seqrob_meta VALUES ('schema_version', ?)",
            [str(version)],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return version
