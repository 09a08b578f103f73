"""Runs produced by seqrob's own training: stored whole (run, stages, scores, outcomes) or not at all.

Training builds a :class:`RunRecord` in a worker process; one writer process stores it
with :meth:`Warehouse.store_run`, in one transaction, through the same checks as ingest.
A sweep that is killed and rerun asks :meth:`Warehouse.stored_config_hashes` which runs
exist, and redoes only the others.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pandas as pd

from seqrob.warehouse.errors import InputError
from seqrob.warehouse.ingest import IngestResult, ingest_source
from seqrob.warehouse.layout import Layout
from seqrob.warehouse.readers import frame_source

__all__ = ["StageRecord", "RunRecord", "store_run", "STATUSES"]

STATUSES = ("finished", "failed")


@dataclass(frozen=True)
class StageRecord:
    """One stage of a run: its position (1 = first), task, steps trained and final loss."""

    position: int
    task: str
    steps: int
    final_loss: float | None


@dataclass(frozen=True)
class RunRecord:
    """Everything stored about one trained run.

    ``scores`` has columns ``task, language, metric, score, n_examples``;
    ``predictions`` has ``task, language, example_id`` and ``correct`` / ``value`` /
    ``tp, fp, fn``. A failed run (``status="failed"``, ``failure`` says why) may have
    neither. ``families`` gives the family of each evaluation language that seqrob's
    language table does not know (synthetic languages).
    """

    run_id: str
    experiment: str
    order: str
    seed: int
    method: str
    config: Mapping[str, object]
    config_hash: str
    status: str = "finished"
    failure: str | None = None
    data_seed: int | None = None
    model: str | None = None
    packages: Mapping[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    host: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    stages: Sequence[StageRecord] = ()
    scores: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    families: Mapping[str, str] = field(default_factory=dict)


def store_run(con: duckdb.DuckDBPyConnection, record: RunRecord, *, source: str = "train") -> list[IngestResult]:
    """Insert one run with its stages, scores and outcomes. The caller owns the transaction."""
    if record.status not in STATUSES:
        raise InputError(f"run status '{record.status}' is not one of {STATUSES}", fix="use finished or failed")
    if record.status == "finished" and (record.scores is None or record.scores.empty):
        raise InputError(f"run '{record.run_id}' is finished but has no scores", fix="store it as failed, with the reason")
    exists = con.execute("SELECT config_hash FROM runs WHERE run_id = ?", [record.run_id]).fetchall()
    if exists:
        raise InputError(
            f"run '{record.run_id}' is already stored (config hash {exists[0][0]})",
            fix="give the run a new run_id, or skip stored runs (the sweep does this when resuming)",
        )
    con.execute(
        "INSERT INTO experiments (experiment) SELECT ? WHERE ? NOT IN (SELECT experiment FROM experiments)",
        [record.experiment, record.experiment],
    )
    con.execute(
        """INSERT INTO runs (run_id, experiment, "order", seed, data_seed, method, model, config, config_hash,
                             packages, git_commit, host, started_at, ended_at, status, failure, source)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            record.run_id, record.experiment, record.order, record.seed, record.data_seed, record.method,
            record.model, json.dumps(record.config, sort_keys=True, default=str), record.config_hash,
            json.dumps(dict(record.packages), sort_keys=True), record.git_commit, record.host,
            record.started_at, record.ended_at, record.status, record.failure, source,
        ],
    )  # fmt: skip
    for stage in record.stages:
        con.execute(
            "INSERT INTO stages VALUES (?, ?, ?, ?, ?)",
            [record.run_id, stage.position, stage.task, stage.steps, stage.final_loss],
        )
    overrides = _family_overrides(record.families)
    results = []
    if record.scores is not None and not record.scores.empty:
        scores = record.scores.assign(
            run_id=record.run_id, order=record.order, seed=record.seed, method=record.method,
            experiment=record.experiment, data_seed=record.data_seed, model=record.model,
        )  # fmt: skip
        reader = _frame_reader(scores, f"run {record.run_id} (scores)")
        results.append(ingest_source(con, reader, Layout(kind="scores"), replace=False, overrides=overrides))
    if record.predictions is not None and not record.predictions.empty:
        predictions = record.predictions.assign(run_id=record.run_id)
        reader = _frame_reader(predictions, f"run {record.run_id} (predictions)")
        results.append(ingest_source(con, reader, Layout(kind="predictions"), replace=False, overrides=overrides))
    return results


def _frame_reader(frame: pd.DataFrame, name: str):
    return lambda: frame_source(frame, name)


def _family_overrides(families: Mapping[str, str]) -> dict:
    if not families:
        return {}
    from seqrob.warehouse.languages import Language, resolve

    overrides = {}
    for code, family in families.items():
        known = resolve(code)
        overrides[code] = Language(
            code=code,
            iso639_3=known.iso639_3 if known else None,
            name=known.name if known else code,
            family=family,
            genus=None,
            script=known.script if known else None,
            source="run config",
        )
    return overrides
