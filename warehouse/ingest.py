"""Ingest one source (a file or a DataFrame) into the warehouse, all or nothing.

The caller (:meth:`Warehouse.ingest`) wraps each call in one transaction. Here a
source is streamed batch by batch into a temporary staging table, every cell is
checked on the way (numbers, integers, 0/1 outcomes, empty cells), then the
checks that need the whole file run in SQL over the staging table (duplicates,
one order and seed per run, the scale of accuracy-like metrics, runs that
predictions refer to) before anything reaches the warehouse's own tables.
Values reach DuckDB only through Arrow or as parameters, never pasted into SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seqrob.warehouse import convert
from seqrob.warehouse.convert import Cells
from seqrob.warehouse.errors import InputError
from seqrob.warehouse.layout import Layout, Plan, wide_is_blank
from seqrob.warehouse.readers import Source

__all__ = ["IngestResult", "ingest_source", "is_bounded_metric"]

_BOUNDED_TOKENS = {"acc", "accuracy", "f1", "em", "exact", "precision", "recall", "las", "uas", "exactmatch"}


def is_bounded_metric(metric: str) -> bool:
    """Accuracy-like metrics live in [0, 1] (or [0, 100] on a percent scale)."""
    tokens = set(re.split(r"[^a-z0-9]+", metric.lower()))
    return bool(tokens & _BOUNDED_TOKENS)


@dataclass
class IngestResult:
    """What one ingest did."""

    file: str
    kind: str
    rows_read: int = 0
    rows_stored: int = 0
    rows_skipped: int = 0
    runs_added: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class _FirstSeen:
    """Per language code: the first row it appears on, and a family the file gives."""

    row: int
    column: str
    family: str | None = None
    family_row: int | None = None


def ingest_source(
    con: duckdb.DuckDBPyConnection,
    reader: Callable[[], Source],
    layout: Layout,
    *,
    replace: bool,
    overrides: Mapping[str, object],
) -> IngestResult:
    """Stage, check and store one source. The caller owns the transaction.

    ``reader`` opens the source afresh: predictions take a fast path (straight into
    the table, checked afterwards) and are read a second time, through the exact
    staging path, only when that check finds duplicates to skip or report.
    """
    source = reader()
    plan = layout.resolve(source.columns, source.name)
    result = IngestResult(file=source.name, kind=plan.kind)
    if plan.ignored:
        result.notes.append("ignored columns: " + ", ".join(plan.ignored))
    if plan.kind == "scores":
        seen = _stage_scores(con, source, plan, result)
        _store_scores(con, source.name, seen, result, replace=replace, overrides=overrides)
        return result
    if not replace:
        try:
            seen = _predictions_fast(con, source, plan, result)
            _resolve_languages(con, source.name, seen, overrides, result)
            return result
        except _NeedsExactPath as retry:
            if retry.touched:
                con.register("_seqrob_touched", pa.table({"run_id": sorted(retry.touched)}))
                con.execute("DELETE FROM predictions WHERE run_id IN (SELECT run_id FROM _seqrob_touched)")
                con.unregister("_seqrob_touched")
            con.execute("DROP TABLE IF EXISTS stage_new_predictions")
            source = reader()
            result.rows_read = result.rows_skipped = 0
    seen = _stage_predictions(con, source, plan, result)
    _store_predictions(con, source.name, seen, result, replace=replace, overrides=overrides)
    return result


class _NeedsExactPath(Exception):
    """The fast predictions path met duplicates or stored outcomes of the same runs."""

    def __init__(self, touched: set[str]):
        self.touched = touched


# --- staging ---------------------------------------------------------------------------

_SCORE_STAGE = """CREATE OR REPLACE TEMP TABLE stage_scores (
    run_id VARCHAR, experiment VARCHAR, "order" VARCHAR, seed BIGINT, data_seed BIGINT,
    method VARCHAR, model VARCHAR, task VARCHAR, language VARCHAR, metric VARCHAR,
    score DOUBLE, n_examples BIGINT, _row BIGINT, _column VARCHAR)"""

_PREDICTION_STAGE = """CREATE OR REPLACE TEMP TABLE stage_predictions (
    run_id VARCHAR, task VARCHAR, language VARCHAR, example_id VARCHAR, correct TINYINT,
    value DOUBLE, tp BIGINT, fp BIGINT, fn BIGINT, _row BIGINT)"""


def _append(con: duckdb.DuckDBPyConnection, table: str, batch: pa.Table) -> None:
    con.register("_seqrob_batch", batch)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _seqrob_batch")
    finally:
        try:
            con.unregister("_seqrob_batch")
        except duckdb.Error:  # an aborted transaction (disk full, Ctrl-C): keep the insert's own error
            pass


def _order(cells: Cells) -> pa.Array:
    values = convert.text(cells)
    values = pc.utf8_trim_whitespace(pc.replace_substring_regex(values, r"\s*>\s*", ">"))
    empty_part = pc.match_substring_regex(values, r"(^>)|(>$)|(>>)|(^$)")
    index = cells.first(empty_part)
    if index is not None:
        raise cells.fail(
            index,
            f"order {cells.values[index].as_py()!r} has an empty task",
            "join the intermediate tasks with '>' (nli>qa), or write 'none' for the target task alone",
        )
    return values


def _stage_scores(
    con: duckdb.DuckDBPyConnection, source: Source, plan: Plan, result: IngestResult
) -> dict[str, _FirstSeen]:
    con.execute(_SCORE_STAGE)
    languages: dict[str, _FirstSeen] = {}
    blank_cells = 0
    for batch in source.batches():
        table, rows, columns = plan.apply(batch.table, batch.first_row, batch.nested)
        result.rows_read += batch.table.num_rows
        if plan.wide:
            keep = pc.invert(wide_is_blank(table.column("score")))
            blank_cells += table.num_rows - pc.sum(keep).as_py() if table.num_rows else 0
            table, rows, columns = table.filter(keep), rows.filter(keep), columns.filter(keep)
        if table.num_rows == 0:
            continue

        def cells(name: str) -> Cells:
            col = columns if (plan.wide and name == "score") or (plan.wide == "language" and name == "language") else None
            if plan.wide == "metric" and name == "metric":
                col = columns
            return Cells(table.column(name), name, source.name, rows, col)

        def optional(name: str, convert_fn, **kw):
            if name not in table.column_names:
                return None
            return convert_fn(cells(name), required=False, **kw)

        staged = {
            "run_id": convert.text(cells("run_id")),
            "order": _order(cells("order")),
            "seed": convert.integer(cells("seed")),
            "task": convert.text(cells("task")),
            "language": convert.text(cells("language")),
            "metric": convert.text(cells("metric")),
            "score": convert.number(cells("score")),
            "experiment": optional("experiment", convert.text),
            "method": optional("method", convert.text),
            "model": optional("model", convert.text),
            "data_seed": optional("data_seed", convert.integer),
            "n_examples": optional("n_examples", convert.integer),
            "_row": rows,
            "_column": columns if plan.wide else pa.nulls(table.num_rows, pa.string()),
        }
        _check_non_negative(cells("n_examples") if "n_examples" in table.column_names else None, staged["n_examples"])
        family = optional("family", convert.text)
        # In a wide-language file each language is a column: point at that column.
        where = None if plan.wide == "language" else "language"
        _note_languages(languages, staged["language"], family, rows, where, source.name)
        arrays = {name: values for name, values in staged.items() if values is not None}
        _append(con, "stage_scores", pa.table(arrays))
    if result.rows_read == 0:
        raise InputError("the file has a header but no data rows", file=source.name, fix="export the results again")
    if blank_cells:
        result.notes.append(f"{blank_cells} empty cells of the wide layout skipped (not evaluated)")
    return languages


def _check_non_negative(cells: Cells | None, values: pa.Array | None) -> None:
    if cells is None or values is None:
        return
    negative = pc.fill_null(pc.less(values, 0), False)
    index = cells.first(negative)
    if index is not None:
        raise cells.fail(index, f"'{cells.name}' is negative", "counts are 0 or more")


def _note_languages(
    seen: dict[str, _FirstSeen],
    codes: pa.Array,
    family: pa.Array | None,
    rows: pa.Array,
    column: str | None,
    file: str,
) -> None:
    """Record each language code's first row and the family the file gives it (if any).

    ``column`` is where the codes are; None when each code is its own column (wide layout)."""
    pairs = pa.table({"code": codes, "family": family if family is not None else pa.nulls(len(codes), pa.string()), "row": rows})
    grouped = pairs.group_by(["code", "family"], use_threads=False).aggregate([("row", "min")])
    for code, fam, row in zip(*(grouped.column(n).to_pylist() for n in ("code", "family", "row_min"))):
        entry = seen.get(code)
        if entry is None:
            entry = seen[code] = _FirstSeen(row=row, column=column if column is not None else code)
        entry.row = min(entry.row, row)
        if fam is None:
            continue
        if entry.family is None:
            entry.family, entry.family_row = fam, row
        elif entry.family != fam:
            raise InputError(
                f"language '{code}' is given family '{entry.family}' (row {entry.family_row}) and '{fam}'",
                file=file,
                row=max(row, entry.family_row or row),
                column="family",
                fix="give each language one family",
            )


def _prediction_batches(source: Source, plan: Plan, result: IngestResult, languages: dict[str, _FirstSeen]):
    """Yield each batch of a predictions source converted and checked cell by cell."""
    for batch in source.batches():
        table, rows, _ = plan.apply(batch.table, batch.first_row, batch.nested)
        result.rows_read += table.num_rows
        if table.num_rows == 0:
            continue

        def cells(name: str) -> Cells:
            return Cells(table.column(name), name, source.name, rows)

        staged: dict[str, pa.Array] = {
            "run_id": convert.text(cells("run_id")),
            "task": convert.text(cells("task")),
            "language": convert.text(cells("language")),
            "example_id": convert.text(cells("example_id")),
        }
        if "correct" in table.column_names:
            staged["correct"] = convert.binary(cells("correct"))
        if "value" in table.column_names:
            staged["value"] = convert.number(cells("value"))
        for name in ("tp", "fp", "fn"):
            if name in table.column_names:
                staged[name] = convert.integer(cells(name))
                _check_non_negative(cells(name), staged[name])
        _note_languages(languages, staged["language"], None, rows, "language", source.name)
        yield staged, rows
    if result.rows_read == 0:
        raise InputError("the file has a header but no data rows", file=source.name, fix="export the results again")


_OUTCOMES = ("correct", "value", "tp", "fp", "fn")


def _predictions_fast(
    con: duckdb.DuckDBPyConnection, source: Source, plan: Plan, result: IngestResult
) -> dict[str, _FirstSeen]:
    """Append straight to ``predictions``; valid when the file repeats no example and agrees
    with every stored outcome. Checked per batch (runs, stored outcomes) and at the end (duplicates).

    From the first batch that names a run with stored outcomes on, each batch is compared
    with the stored rows: identical rows are skipped, new ones kept in a temp table (stored
    at the end), and any difference sends the file down the exact path. A re-ingest of a
    stored file so holds one batch at a time, not the whole file (issue 14)."""
    known = {row[0] for row in con.execute("SELECT run_id FROM runs").fetchall()}
    with_outcomes = {row[0] for row in con.execute("SELECT DISTINCT run_id FROM predictions").fetchall()}
    touched: set[str] = set()
    comparing = False
    languages: dict[str, _FirstSeen] = {}
    for staged, rows in _prediction_batches(source, plan, result, languages):
        run_ids = set(pc.unique(staged["run_id"]).to_pylist())
        unknown = run_ids - known
        if unknown:
            first = pc.index_in(staged["run_id"], value_set=pa.array(sorted(unknown)))
            index = int(np.flatnonzero(pc.is_valid(first).to_numpy(zero_copy_only=False))[0])
            raise InputError(
                f"predictions for run '{staged['run_id'][index].as_py()}', which the warehouse does not have",
                file=source.name,
                row=rows[index].as_py(),
                column="run_id",
                fix="ingest the run's scores first (list the scores file before the predictions file)",
            )
        if comparing or run_ids & with_outcomes:
            if not comparing:
                con.execute(_PREDICTION_STAGE.replace("stage_predictions", "stage_new_predictions"))
                comparing = True
            result.rows_skipped += _compare_batch(con, pa.table(staged), touched)
            continue
        touched |= run_ids
        _append(con, "predictions", pa.table(staged))
    con.register("_seqrob_touched", pa.table({"run_id": sorted(touched)}))
    try:
        # Hashes make this cheap; a collision only sends the file down the exact path.
        total, distinct = _one(
            con,
            """SELECT count(*), count(DISTINCT hash(run_id, task, language, example_id)) FROM predictions
               WHERE run_id IN (SELECT run_id FROM _seqrob_touched)""",
        )
    finally:
        con.unregister("_seqrob_touched")
    if total != distinct:
        raise _NeedsExactPath(touched)
    if comparing:
        new, new_distinct = _one(
            con, "SELECT count(*), count(DISTINCT hash(run_id, task, language, example_id)) FROM stage_new_predictions"
        )
        if new != new_distinct:
            raise _NeedsExactPath(touched)
        con.execute(
            """INSERT INTO predictions BY NAME
               SELECT run_id, task, language, example_id, correct, value, tp, fp, fn FROM stage_new_predictions"""
        )
        con.execute("DROP TABLE stage_new_predictions")
        total += new
    result.rows_stored = total
    return languages


def _compare_batch(con: duckdb.DuckDBPyConnection, batch: pa.Table, touched: set[str]) -> int:
    """Compare one batch with the stored outcomes of its runs; keep its new rows in
    ``stage_new_predictions``; return how many rows were identical to stored ones."""
    present = set(batch.column_names)
    differs = " OR ".join(f"s.{c} IS DISTINCT FROM w.{c}" if c in present else f"w.{c} IS NOT NULL" for c in _OUTCOMES)
    stored = """(SELECT * FROM predictions WHERE run_id IN (SELECT DISTINCT run_id FROM _seqrob_batch)) w"""
    con.register("_seqrob_batch", batch)
    try:
        conflicts, same = _one(
            con,
            f"""SELECT count(*) FILTER ({differs}), count(*) FROM _seqrob_batch s
                JOIN {stored} USING (run_id, task, language, example_id)""",
        )
        if conflicts:  # the exact path finds the first problem (a repeat in the file comes first)
            raise _NeedsExactPath(touched)
        if same < batch.num_rows:
            con.execute(
                f"""INSERT INTO stage_new_predictions BY NAME SELECT s.* FROM _seqrob_batch s
                    ANTI JOIN {stored} USING (run_id, task, language, example_id)"""
            )
    finally:
        con.unregister("_seqrob_batch")
    return same


def _stage_predictions(
    con: duckdb.DuckDBPyConnection, source: Source, plan: Plan, result: IngestResult
) -> dict[str, _FirstSeen]:
    con.execute(_PREDICTION_STAGE)
    languages: dict[str, _FirstSeen] = {}
    for staged, rows in _prediction_batches(source, plan, result, languages):
        staged["_row"] = rows
        _append(con, "stage_predictions", pa.table(staged))
    return languages


# --- whole-file checks and storing ---------------------------------------------------------


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """The first row of a query, or None (fetching all, so the connection is free again)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def _check_scale(con: duckdb.DuckDBPyConnection, file: str, result: IngestResult) -> None:
    """Accuracy-like metrics: all in [0, 1], or consistently on a 0-100 scale (then stored / 100)."""
    metrics = [row[0] for row in con.execute("SELECT DISTINCT metric FROM stage_scores").fetchall()]
    for metric in (m for m in metrics if is_bounded_metric(m)):
        negative = _one(
            con,
            "SELECT _row, _column, score FROM stage_scores WHERE metric = ? AND score < 0 ORDER BY _row LIMIT 1",
            [metric],
        )
        if negative:
            raise InputError(
                f"{metric} {negative[2]} is negative",
                file=file,
                row=negative[0],
                column=negative[1] or "score",
                fix="accuracy-like metrics lie in [0, 1] (or 0-100)",
            )
        n_unit, n_above, n_over = _one(
            con,
            "SELECT count(*) FILTER (score <= 1), count(*) FILTER (score > 1), count(*) FILTER (score > 100)"
            " FROM stage_scores WHERE metric = ?",
            [metric],
        )
        if n_above == 0:
            continue
        # As many values in [0, 1] as above it is no evidence of a percent scale: refuse.
        if n_over or n_unit >= n_above:
            bound = 100 if n_over else 1
            row = _one(
                con,
                "SELECT _row, _column, score FROM stage_scores WHERE metric = ? AND score > ? ORDER BY _row LIMIT 1",
                [metric, bound],
            )
            scale = "0-100" if n_over else "[0, 1] like the file's other values"
            raise InputError(
                f"{metric} {row[2]} is outside {scale}",
                file=file,
                row=row[0],
                column=row[1] or "score",
                fix="write every value of this metric on one scale (proportions or percent)",
            )
        con.execute("UPDATE stage_scores SET score = score / 100 WHERE metric = ?", [metric])
        result.notes.append(f"{metric} is on a 0-100 scale in this file: stored as proportions (divided by 100)")


def _check_runs_consistent(con: duckdb.DuckDBPyConnection, file: str) -> None:
    """One run_id means one run: the same order, seed, data seed, method, experiment on every row."""
    for column in ("order", "seed", "data_seed", "method", "experiment", "model"):
        if column not in _stage_columns(con, "stage_scores"):
            continue
        clash = _one(
            con,
            f"""WITH first AS (
                    SELECT run_id, arg_min("{column}", _row) AS v, min(_row) AS first_row
                    FROM stage_scores GROUP BY run_id)
                SELECT s._row, s.run_id, CAST(s."{column}" AS VARCHAR), CAST(f.v AS VARCHAR), f.first_row
                FROM stage_scores s JOIN first f USING (run_id)
                WHERE s."{column}" IS DISTINCT FROM f.v ORDER BY s._row LIMIT 1""",
        )
        if clash:
            row, run_id, value, first_value, first_row = clash
            raise InputError(
                f"run '{run_id}' has {column} {value!r} here but {first_value!r} on row {first_row}",
                file=file,
                row=row,
                column=column,
                fix="give each run (order x seed) its own run_id",
            )


def _stage_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}


def _dedupe(con: duckdb.DuckDBPyConnection, table: str, key: list[str], values: list[str], file: str) -> int:
    """Refuse conflicting duplicates inside the file; drop identical ones. Return how many were dropped."""
    keys = ", ".join(f'"{k}"' for k in key)
    total, distinct = _one(con, f"SELECT count(*), count(DISTINCT ({keys})) FROM {table}")
    if total == distinct:
        return 0
    differs = " OR ".join(f's."{v}" IS DISTINCT FROM f."{v}"' for v in values)
    firsts = ", ".join(f'arg_min("{v}", _row) AS "{v}"' for v in values)
    clash = _one(
        con,
        f"""WITH f AS (SELECT {keys}, {firsts}, min(_row) AS first_row FROM {table} GROUP BY {keys})
            SELECT s._row, f.first_row FROM {table} s JOIN f USING ({keys})
            WHERE {differs} ORDER BY s._row LIMIT 1""",
    )
    if clash:
        what = ", ".join(key)
        raise InputError(
            f"this row repeats row {clash[1]} ({what}) with a different value",
            file=file,
            row=clash[0],
            fix="keep one of the two rows",
        )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT * FROM {table} QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY _row) = 1"""
    )
    return total - distinct


def _resolve_languages(
    con: duckdb.DuckDBPyConnection,
    file: str,
    pending: dict[str, _FirstSeen],
    overrides: Mapping[str, object],
    result: IngestResult,
) -> None:
    """Give every language code a family: the file's column, then overrides, the warehouse, Glottolog."""
    from seqrob.warehouse import languages as catalog

    stored = {
        code: (family, source)
        for code, family, source in con.execute("SELECT code, family, source FROM languages").fetchall()
    }
    rows = []
    for code, seen in pending.items():
        if seen.family is not None:
            entry = catalog.resolve(code)
            rows.append(
                (
                    code,
                    entry.iso639_3 if entry else None,
                    entry.name if entry else None,
                    seen.family,
                    entry.genus if entry and entry.family == seen.family else None,
                    entry.script if entry else None,
                    f"file:{file}",
                )
            )
            continue
        override = overrides.get(code)
        if override is not None:
            rows.append(
                (code, override.iso639_3, override.name, override.family, override.genus, override.script, override.source)
            )
            continue
        if code in stored:
            continue
        entry = catalog.resolve(code)
        if entry is None:
            raise InputError(
                f"unknown language code '{code}' and no family given",
                file=file,
                row=seen.row,
                column=seen.column,
                fix="use an ISO 639 / BCP-47 code, add a 'family' column, or pass --families FILE (code,family)",
            )
        rows.append((code, entry.iso639_3, entry.name, entry.family, entry.genus, entry.script, entry.source))
    for row in rows:
        before = stored.get(row[0])
        if before is not None and before[0] != row[3]:
            result.notes.append(f"language '{row[0]}': family changed from '{before[0]}' to '{row[3]}' ({row[6]})")
        if before is not None and before[0] == row[3]:
            continue
        con.execute("INSERT OR REPLACE INTO languages VALUES (?, ?, ?, ?, ?, ?, ?)", list(row))


def _store_scores(
    con: duckdb.DuckDBPyConnection,
    file: str,
    seen: dict[str, _FirstSeen],
    result: IngestResult,
    *,
    replace: bool,
    overrides: Mapping[str, object],
) -> None:
    """Check the staged scores as a whole, then store their languages, runs and rows."""
    con.execute("UPDATE stage_scores SET experiment = 'default' WHERE experiment IS NULL")
    con.execute("UPDATE stage_scores SET method = 'finetune' WHERE method IS NULL")
    _check_scale(con, file, result)
    _check_runs_consistent(con, file)
    result.rows_skipped += _dedupe(con, "stage_scores", ["run_id", "task", "language", "metric"], ["score", "n_examples"], file)
    _resolve_languages(con, file, seen, overrides, result)
    _store_runs(con, file, result, replace=replace)
    _store_score_rows(con, file, result, replace=replace)
    con.execute("DROP TABLE stage_scores")
    con.execute("DROP TABLE stage_runs")


def _store_runs(con: duckdb.DuckDBPyConnection, file: str, result: IngestResult, *, replace: bool) -> None:
    """Store the file's runs (staged as ``stage_runs``): new ones are added; a stored one must agree unless --replace."""
    con.execute(
        """CREATE OR REPLACE TEMP TABLE stage_runs AS
           SELECT run_id, arg_min(experiment, _row) AS experiment, arg_min("order", _row) AS "order",
                  arg_min(seed, _row) AS seed, arg_min(data_seed, _row) AS data_seed,
                  arg_min(method, _row) AS method, arg_min(model, _row) AS model, min(_row) AS _row
           FROM stage_scores GROUP BY run_id"""
    )
    clash = _one(
        con,
        """SELECT s._row, s.run_id, s."order", s.seed, r."order", r.seed, s.method, r.method, s.experiment, r.experiment
           FROM stage_runs s JOIN runs r USING (run_id)
           WHERE s."order" <> r."order" OR s.seed <> r.seed OR s.method <> r.method OR s.experiment <> r.experiment
           ORDER BY s._row LIMIT 1""",
    )
    if clash and not replace:
        row, run_id, order, seed, old_order, old_seed, method, old_method, exp, old_exp = clash
        raise InputError(
            f"run '{run_id}' is stored as experiment {old_exp!r}, order {old_order!r}, seed {old_seed}, method {old_method!r};"
            f" this file says {exp!r}, {order!r}, {seed}, {method!r}",
            file=file,
            row=row,
            fix="use a new run_id, or --replace to overwrite the stored run",
        )
    if replace:
        con.execute(
            """UPDATE runs SET experiment = s.experiment, "order" = s."order", seed = s.seed,
                   data_seed = s.data_seed, method = s.method, model = s.model
               FROM stage_runs s WHERE runs.run_id = s.run_id"""
        )
    con.execute(
        """INSERT INTO experiments (experiment)
           SELECT DISTINCT experiment FROM stage_runs WHERE experiment NOT IN (SELECT experiment FROM experiments)"""
    )
    before = _one(con, "SELECT count(*) FROM runs")[0]
    con.execute(
        """INSERT INTO runs (run_id, experiment, "order", seed, data_seed, method, model, status, source, started_at)
           SELECT run_id, experiment, "order", seed, data_seed, method, model, 'finished', ?, NULL
           FROM stage_runs WHERE run_id NOT IN (SELECT run_id FROM runs)""",
        [f"ingest:{file}"],
    )
    result.runs_added = _one(con, "SELECT count(*) FROM runs")[0] - before


def _store_score_rows(con: duckdb.DuckDBPyConnection, file: str, result: IngestResult, *, replace: bool) -> None:
    """Store the staged scores: identical rows already stored are skipped; different ones need --replace."""
    conflict = _one(
        con,
        """SELECT s._row, s._column, s.score, w.score FROM stage_scores s
           JOIN scores w USING (run_id, task, language, metric)
           WHERE s.score <> w.score ORDER BY s._row LIMIT 1""",
    )
    if conflict and not replace:
        raise InputError(
            f"score {conflict[2]!r} differs from the stored {conflict[3]!r} for the same run, task, language and metric",
            file=file,
            row=conflict[0],
            column=conflict[1] or "score",
            fix="pass --replace to overwrite, or fix the file",
        )
    if replace:
        con.execute(
            """DELETE FROM scores WHERE (run_id, task, language, metric) IN
               (SELECT (run_id, task, language, metric) FROM stage_scores)"""
        )
    stored = _one(
        con,
        """SELECT count(*) FROM stage_scores s
           WHERE EXISTS (SELECT 1 FROM scores w WHERE w.run_id = s.run_id AND w.task = s.task
                          AND w.language = s.language AND w.metric = s.metric)""",
    )[0]
    con.execute(
        """INSERT INTO scores
           SELECT run_id, task, language, metric, score, n_examples FROM stage_scores s
           WHERE NOT EXISTS (SELECT 1 FROM scores w WHERE w.run_id = s.run_id AND w.task = s.task
                             AND w.language = s.language AND w.metric = s.metric)"""
    )
    total = _one(con, "SELECT count(*) FROM stage_scores")[0]
    result.rows_skipped += stored
    result.rows_stored = total - stored


def _store_predictions(
    con: duckdb.DuckDBPyConnection,
    file: str,
    seen: dict[str, _FirstSeen],
    result: IngestResult,
    *,
    replace: bool,
    overrides: Mapping[str, object],
) -> None:
    unknown = _one(
        con,
        """SELECT run_id, min(_row) FROM stage_predictions
           WHERE run_id NOT IN (SELECT run_id FROM runs) GROUP BY run_id ORDER BY 2 LIMIT 1""",
    )
    if unknown:
        raise InputError(
            f"predictions for run '{unknown[0]}', which the warehouse does not have",
            file=file,
            row=unknown[1],
            column="run_id",
            fix="ingest the run's scores first (list the scores file before the predictions file)",
        )
    outcome_columns = ["correct", "value", "tp", "fp", "fn"]
    result.rows_skipped += _dedupe(
        con, "stage_predictions", ["run_id", "task", "language", "example_id"], outcome_columns, file
    )
    _resolve_languages(con, file, seen, overrides, result)
    overlap = _one(
        con,
        """SELECT 1 FROM predictions WHERE run_id IN (SELECT DISTINCT run_id FROM stage_predictions) LIMIT 1""",
    )
    skipped = 0
    if overlap:
        differs = " OR ".join(f"s.{c} IS DISTINCT FROM w.{c}" for c in outcome_columns)
        conflict = _one(
            con,
            f"""SELECT s._row FROM stage_predictions s JOIN predictions w USING (run_id, task, language, example_id)
                WHERE {differs} ORDER BY s._row LIMIT 1""",
        )
        if conflict and not replace:
            raise InputError(
                "this example's outcome differs from the one stored for the same run, task and language",
                file=file,
                row=conflict[0],
                fix="pass --replace to overwrite, or fix the file",
            )
        if replace:
            con.execute(
                """DELETE FROM predictions WHERE (run_id, task, language, example_id) IN
                   (SELECT (run_id, task, language, example_id) FROM stage_predictions)"""
            )
        else:
            skipped = _one(
                con,
                """SELECT count(*) FROM stage_predictions s SEMI JOIN predictions w
                   USING (run_id, task, language, example_id)""",
            )[0]
            con.execute(
                """DELETE FROM stage_predictions s WHERE EXISTS (
                       SELECT 1 FROM predictions w WHERE w.run_id = s.run_id AND w.task = s.task
                       AND w.language = s.language AND w.example_id = s.example_id)"""
            )
    con.execute(
        """INSERT INTO predictions BY NAME
           SELECT run_id, task, language, example_id, correct, value, tp, fp, fn FROM stage_predictions"""
    )
    result.rows_stored = _one(con, "SELECT count(*) FROM stage_predictions")[0]
    result.rows_skipped += skipped
    con.execute("DROP TABLE stage_predictions")
