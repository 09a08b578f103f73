"""The warehouse handle: one DuckDB file, opened once, with seqrob's verbs as methods.

``Warehouse.ingest``, ``Warehouse.info`` and ``Warehouse.export`` are what the
``seqrob ingest``, ``seqrob warehouse info`` and ``seqrob warehouse export``
commands call; they return DataFrames. DuckDB lets one process write a file at a
time: a second writer waits up to ``wait`` seconds, then gets
:class:`WarehouseInUse`, never a corrupted file.
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from seqrob.warehouse.analyses import data_fingerprint, find_analysis, latest_analysis, load_analysis, store_analysis
from seqrob.warehouse.errors import InputError, SchemaError, SeqrobError, WarehouseInUse
from seqrob.warehouse.layout import Layout
from seqrob.warehouse.schema import TABLES, ensure_schema

if TYPE_CHECKING:  # ingest and its file readers (pyarrow's) load when something is stored
    from seqrob.warehouse.ingest import IngestResult
    from seqrob.warehouse.readers import Source
    from seqrob.warehouse.runs import RunRecord

__all__ = ["Warehouse", "default_path"]

DEFAULT_FILE = "seqrob.duckdb"


def default_path() -> Path:
    """``$SEQROB_DB`` if set, else ``./seqrob.duckdb``."""
    return Path(os.environ.get("SEQROB_DB") or DEFAULT_FILE)


def _duckdb_config() -> dict[str, str]:
    """Bound DuckDB's memory (``$SEQROB_MEMORY_LIMIT``, default 2GB): large ingests
    stream through it and spill to disk instead of growing with the file."""
    return {"memory_limit": os.environ.get("SEQROB_MEMORY_LIMIT", "2GB")}


def _connect(path: str, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait
    while True:
        try:
            return duckdb.connect(path, read_only=read_only, config=_duckdb_config())
        except duckdb.IOException as error:
            text = str(error)
            if "lock" not in text.lower():
                raise SeqrobError(f"cannot open the warehouse {path}: {text.splitlines()[0]}") from None
            if time.monotonic() >= deadline:
                pid = re.search(r"PID (\d+)", text)
                holder = f" (process {pid.group(1)})" if pid else ""
                raise WarehouseInUse(
                    f"warehouse {path} is in use by another seqrob process{holder}"
                    " - wait for it to finish (or pass --wait SECONDS), or use another --db"
                ) from None
            time.sleep(0.2)
        except duckdb.Error as error:
            first = str(error).splitlines()[0]
            raise SeqrobError(
                f"cannot open the warehouse {path}: {first} - is it a DuckDB file written by this DuckDB version?"
            ) from None


_HEADER_BYTES = 3 * 4096  # DuckDB's file header: blocks start after it


def _damaged(path: str, error: BaseException | str) -> str:
    reason = error if isinstance(error, str) else str(error).splitlines()[0]
    return f"the warehouse {path} is damaged or truncated ({reason}) - restore it from a copy, or ingest into a new --db"


def _check_complete(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Refuse a file shorter than the blocks its header lists (a copy cut short): DuckDB
    would only fail later, on whichever query first reads a missing block."""
    _, _, block_size, _, used_blocks, *_ = con.execute("PRAGMA database_size").fetchall()[0]
    # Used blocks only: free ones at the end need not be on disk (a failed write leaves them out).
    expected = _HEADER_BYTES + int(block_size) * int(used_blocks)
    size = Path(path).stat().st_size
    if size < expected:
        raise SchemaError(_damaged(path, f"{size:,} bytes of at least {expected:,} its header lists"))


def _disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError):
        return error.errno == errno.ENOSPC
    # DuckDB reports it as an IOException, or as a FatalException when the rollback also
    # failed to write; either may be the context of the error that reached us.
    while error is not None:
        if isinstance(error, duckdb.Error) and "no space left" in str(error).lower():
            return True
        error = error.__context__
    return False


class Warehouse:
    """A seqrob warehouse (a DuckDB file).

    Parameters
    ----------
    path
        The file; ``None`` for ``$SEQROB_DB`` or ``./seqrob.duckdb``; ``":memory:"``
        for a warehouse that lives only as long as the object.
    read_only
        Open without taking the write lock (several readers may share a file).
    create
        Create the file when it does not exist (``False``: an :class:`InputError`
        instead, and no file; commands that only read or analyse stored runs use it,
        so a mistyped ``--db`` is an error, not a new empty warehouse). A read-only
        warehouse is never created.
    wait
        Seconds to wait for another process that holds the file.

    Examples
    --------
    >>> from seqrob.warehouse import Warehouse
    >>> with Warehouse(":memory:") as wh:
    ...     wh.info().runs
    Empty DataFrame
    ...
    """

    def __init__(
        self, path: str | Path | None = None, *, read_only: bool = False, create: bool = True, wait: float = 0.0
    ) -> None:
        self.path = str(path) if path is not None else str(default_path())
        if (read_only or not create) and self.path != ":memory:" and not Path(self.path).exists():
            raise InputError(f"no warehouse at {self.path}", fix="ingest, simulate or train into it first, or pass --db")
        self._read_only = read_only
        self.con = _connect(self.path, read_only, wait)
        try:
            if self.path != ":memory:":
                _check_complete(self.con, self.path)
            self.schema_version = ensure_schema(self.con, path=self.path, writable=not read_only)
        except duckdb.Error as error:
            self.con.close()
            raise SchemaError(_damaged(self.path, error)) from None
        except BaseException:
            self.con.close()
            raise

    # -- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        """Release the file (and its lock)."""
        self.con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Warehouse({self.path!r})"

    @property
    def writable(self) -> bool:
        """False when opened with ``read_only=True`` (analyses are then used, not stored)."""
        return not self._read_only

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All of the block or nothing: commit at the end, roll back on any error."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            try:
                self.con.execute("ROLLBACK")
            except duckdb.Error:  # the rollback failed too (a full disk): the block's own error tells why
                pass
            raise
        self.con.execute("COMMIT")

    # -- verbs ----------------------------------------------------------------------

    def ingest(
        self,
        files: Iterable[str | Path],
        *,
        kind: str | None = None,
        experiment: str | None = None,
        columns: Mapping[str, str] | None = None,
        constants: Mapping[str, str] | None = None,
        wide: str | None = None,
        families: str | Path | None = None,
        replace: bool = False,
        fmt: str | None = None,
    ) -> pd.DataFrame:
        """Import result files; each file is stored whole or not at all.

        Parameters
        ----------
        files
            CSV, Parquet or JSON Lines files in seqrob's scores or predictions format.
            Scores files are ingested before predictions files, whatever the order given.
        kind
            ``"scores"`` or ``"predictions"``; by default recognised from the columns.
        experiment
            The experiment of every run in the files (same as ``constants={"experiment": ...}``).
        columns
            Canonical column -> the file's column (``{"seed": "Run"}``).
        constants
            Canonical column -> one value for every row (``{"task": "xnli"}``).
        wide
            ``"language"`` or ``"metric"`` for files with one column per language or metric.
        families
            A CSV of ``code,family`` (optionally ``name, genus, script``) that overrides
            seqrob's language families.
        replace
            Overwrite stored scores/outcomes that differ from the file's (else an error).
        fmt
            ``"csv"``, ``"parquet"`` or ``"jsonl"`` when the suffix does not say.

        Returns
        -------
        pandas.DataFrame
            One row per file: ``file, kind, rows_read, rows_stored, rows_skipped,
            runs_added, notes`` (``notes``: a list of sentences, one per warning).

        Raises
        ------
        InputError
            Naming the file, row and column of the first problem; nothing of that file is stored.
        """
        from seqrob.warehouse.readers import open_source

        constants = dict(constants or {})
        if experiment is not None:
            if "experiment" in constants:
                raise InputError("the experiment is given twice (--experiment and --set experiment)", fix="keep one")
            constants["experiment"] = experiment
        layout = Layout(columns=dict(columns or {}), constants=constants, wide=wide, kind=kind)
        overrides = self._overrides(families)
        paths = list(files)
        # Every file is checked for readability and columns before any is stored;
        # scores go first, so predictions in the same call find their runs.
        kinds = []
        for path in paths:
            probe = open_source(path, fmt=fmt)
            try:
                kinds.append(layout.resolve(probe.columns, str(path)).kind)
            finally:
                probe.close()
        ordered = [path for _, path in sorted(zip(kinds, paths), key=lambda item: item[0] != "scores")]
        readers = [(str(path), partial(open_source, path, fmt=fmt)) for path in ordered]
        return self._ingest_sources(readers, layout, overrides, replace)

    def ingest_frames(
        self,
        *,
        scores: pd.DataFrame | None = None,
        predictions: pd.DataFrame | None = None,
        source: str = "frame",
        replace: bool = False,
        families: str | Path | None = None,
    ) -> pd.DataFrame:
        """Import DataFrames in seqrob's long formats (as :meth:`ingest` does files)."""
        from seqrob.warehouse.readers import frame_source

        overrides = self._overrides(families)
        results = []
        if scores is not None:
            name = f"{source} (scores)"
            results.append(self._ingest_sources([(name, partial(frame_source, scores, name))], Layout(kind="scores"), overrides, replace))
        if predictions is not None:
            name = f"{source} (predictions)"
            results.append(self._ingest_sources([(name, partial(frame_source, predictions, name))], Layout(kind="predictions"), overrides, replace))
        return pd.concat(results, ignore_index=True) if results else _results_frame([])

    def _overrides(self, families: str | Path | None) -> dict:
        if families is None:
            return {}
        from seqrob.warehouse.languages import read_overrides

        return read_overrides(families)

    def _ingest_sources(
        self, readers: Sequence[tuple[str, Callable[[], Source]]], layout: Layout, overrides: Mapping, replace: bool
    ) -> pd.DataFrame:
        from seqrob.warehouse.ingest import ingest_source

        results: list[IngestResult] = []
        for name, reader in readers:
            try:
                with self.transaction() as con:
                    result = ingest_source(con, reader, layout, replace=replace, overrides=overrides)
                    con.execute(
                        """INSERT INTO ingests (ingest_id, file, kind, rows_read, rows_stored, rows_skipped)
                           SELECT coalesce(max(ingest_id), 0) + 1, ?, ?, ?, ?, ? FROM ingests""",
                        [result.file, result.kind, result.rows_read, result.rows_stored, result.rows_skipped],
                    )
            except SeqrobError as error:
                self._reclaim()
                if results:  # say what did land, so the user knows what to re-run
                    error.args = (f"{error}{_already_stored(results)}",)
                raise
            except (OSError, duckdb.Error) as error:
                if not _disk_full(error):
                    raise
                raise SeqrobError(
                    f"the disk of {self.path} is full: nothing of {name} was stored, the warehouse holds"
                    f" what it held{_already_stored(results)} - free space (or use a --db on another disk) and run again"
                ) from None
            results.append(result)
        return _results_frame(results)

    def _reclaim(self) -> None:
        """Give back the blocks a refused ingest wrote (DuckDB writes large inserts to the
        file before the commit; the rollback frees them, but the file keeps its size).

        A checkpoint truncates free blocks at the end of the file, but skips when nothing
        changed since the last one: an empty table created and dropped in one transaction
        is that change. Best effort: a failure here must not hide the ingest's own error."""
        if self.path == ":memory:" or self._read_only:
            return
        try:
            self.con.execute("BEGIN TRANSACTION; CREATE TABLE _seqrob_reclaim (x INTEGER); DROP TABLE _seqrob_reclaim; COMMIT")
            self.con.execute("CHECKPOINT")
        except duckdb.Error:
            pass

    def info(self, *, experiment: str | None = None):
        """The stored design: experiments, orders, seeds, languages per family, missing cells.

        Returns
        -------
        seqrob.warehouse.design.Design
            DataFrames; see :class:`~seqrob.warehouse.design.Design`.
        """
        from seqrob.warehouse.design import describe

        return describe(self.con, experiment=experiment)

    def export(
        self, directory: str | Path, *, tables: Sequence[str] | None = None, fmt: str = "parquet"
    ) -> pd.DataFrame:
        """Write warehouse tables to ``directory`` as Parquet or CSV; return ``table, path, rows``."""
        if fmt not in ("parquet", "csv"):
            raise InputError(f"cannot export as '{fmt}'", fix="use --format parquet or --format csv")
        chosen = list(tables) if tables else [t for t in TABLES]
        for name in chosen:
            if name not in TABLES:
                raise InputError(f"no table '{name}' in the warehouse", fix="tables are: " + ", ".join(TABLES))
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in chosen:
            path = out / f"{name}.{fmt}"
            relation = self.con.table(name)
            if fmt == "parquet":
                relation.write_parquet(str(path))
            else:
                relation.write_csv(str(path), header=True)
            written.append((name, str(path), self.con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]))
        return pd.DataFrame(written, columns=["table", "path", "rows"])

    def store_run(self, record: RunRecord) -> None:
        """Store one trained run (run, stages, scores, outcomes) in one transaction."""
        from seqrob.warehouse.runs import store_run

        with self.transaction() as con:
            store_run(con, record)

    def stored_config_hashes(self, *, experiment: str | None = None) -> dict[str, str]:
        """Config hash -> status of every stored run (optionally of one experiment).

        A resumed sweep skips the runs whose resolved-config hash is here.
        """
        rows = self.con.execute(
            "SELECT config_hash, status FROM runs WHERE config_hash IS NOT NULL"
            + (" AND experiment = ?" if experiment is not None else ""),
            [experiment] if experiment is not None else [],
        ).fetchall()
        return dict(rows)

    # -- reading ----------------------------------------------------------------------

    def table(self, name: str) -> pd.DataFrame:
        """A whole warehouse table as a DataFrame."""
        if name not in TABLES:
            raise InputError(f"no table '{name}' in the warehouse", fix="tables are: " + ", ".join(TABLES))
        return self.con.table(name).df()

    def scores(self) -> pd.DataFrame:
        """Scores joined with their run and language: one row per run x task x language x metric."""
        return self.con.execute(
            """SELECT s.run_id, r.experiment, r."order", r.seed, r.data_seed, r.method, r.model,
                      s.task, s.language, l.family, s.metric, s.score, s.n_examples
               FROM scores s JOIN runs r USING (run_id) LEFT JOIN languages l ON l.code = s.language
               WHERE r.status = 'finished'
               ORDER BY r.experiment, s.task, s.metric, r."order", r.seed, s.language"""
        ).df()

    def predictions(self, tasks: Sequence[str] | None = None) -> pd.DataFrame | None:
        """Per-example outcomes of finished runs (optionally of these tasks); None when there are none.

        Columns ``run_id, task, language, example_id, correct, value, tp, fp, fn``, less
        those that no row fills (a warehouse of 0/1 outcomes has no ``value, tp, fp, fn``).
        """
        chosen = "" if tasks is None else " AND p.task IN (SELECT unnest(?::VARCHAR[]))"
        frame = self.con.execute(
            """SELECT p.run_id, p.task, p.language, p.example_id, p.correct, p.value, p.tp, p.fp, p.fn
               FROM predictions p JOIN runs r USING (run_id)
               WHERE r.status = 'finished'""" + chosen,
            [] if tasks is None else [list(tasks)],
        ).df()
        return None if frame.empty else frame.dropna(axis=1, how="all")

    def experiments(self) -> list[str]:
        """The experiments of the stored runs (finished or not), sorted."""
        return [row[0] for row in self.con.execute("SELECT DISTINCT experiment FROM runs ORDER BY 1").fetchall()]

    # -- stored analyses (see seqrob.warehouse.analyses) ----------------------------------

    def fingerprint(self) -> str:
        """An order-independent hash of the stored runs, scores, outcomes and families:
        a stored analysis is current while the fingerprint it recorded is this one."""
        return data_fingerprint(self.con)

    def find_analysis(self, kind: str, parameters: Mapping[str, object]) -> int | None:
        """The id of the newest stored analysis of ``kind`` with these parameters over the current data, if any."""
        return find_analysis(self.con, kind=kind, parameters=parameters)

    def latest_analysis(self, kind: str) -> int | None:
        """The id of the newest stored analysis of ``kind`` over the current data (any parameters), if any."""
        return latest_analysis(self.con, kind=kind)

    def load_analysis(self, analysis_id: int) -> dict:
        """A stored analysis: its row (parameters, design, model, warnings decoded) and its
        ``results`` and ``findings`` as DataFrames; KeyError for an unknown id."""
        return load_analysis(self.con, analysis_id)

    def store_analysis(self, **analysis: Any) -> int:
        """Store an analysis, its result rows and findings, all or nothing; return its id.

        The keywords are :func:`seqrob.warehouse.analyses.store_analysis`'s (``kind,
        parameters, results``, and optionally ``design, model, warnings, seqrob_version,
        findings``); the data fingerprint is recorded with it.
        """
        with self.transaction() as con:
            return store_analysis(con, **analysis)


def _already_stored(results: Sequence[IngestResult]) -> str:
    return f" (already stored, each whole: {', '.join(r.file for r in results)})" if results else ""


def _results_frame(results: Sequence[IngestResult]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "file": r.file,
                "kind": r.kind,
                "rows_read": r.rows_read,
                "rows_stored": r.rows_stored,
                "rows_skipped": r.rows_skipped,
                "runs_added": r.runs_added,
                "notes": list(r.notes),
            }
            for r in results
        ],
        columns=["file", "kind", "rows_read", "rows_stored", "rows_skipped", "runs_added", "notes"],
    )
