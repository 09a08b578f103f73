"""Read result files (CSV, Parquet, JSON Lines) as a stream of Arrow record batches.

Files are never loaded whole: each reader yields batches together with the
number of the first data row in the batch (rows count from 1; a header is not a
row), so that a problem found later can be reported by file, row and column.
CSV cells are read as text and converted by the validator, which is what lets it
say *which* row holds "abc" in a numeric column.
"""

from __future__ import annotations

import csv
import io
import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from seqrob.warehouse.errors import InputError

__all__ = ["Batch", "Source", "open_source", "frame_source", "FORMATS"]

FORMATS = ("csv", "parquet", "jsonl")
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_CSV_BLOCK = 8 << 20  # bytes per CSV block: large enough to keep both cores busy
_PARQUET_BATCH = 1 << 18  # rows per Parquet batch
_JSONL_CHUNK = 50_000  # lines per JSON Lines batch


@dataclass(frozen=True)
class Batch:
    """A block of a file: the table and the row number of its first row."""

    table: pa.Table
    first_row: int


@dataclass
class Source:
    """A readable table: its name for messages, its columns, and its batches."""

    name: str
    columns: list[str]
    _batches: Iterator[Batch]
    _close: Callable[[], None] = lambda: None

    def close(self) -> None:
        """Release the file (reading all batches does this too)."""
        self._close()

    def batches(self) -> Iterator[Batch]:
        """The batches in order, read one ahead in a thread so that parsing the
        file overlaps with checking and storing the previous batch."""
        return _read_ahead(self._batches)


_DONE = object()


def _closing(batches: Iterator[Batch], close: Callable[[], None]) -> Iterator[Batch]:
    try:
        yield from batches
    finally:
        close()


def _read_ahead(batches: Iterator[Batch], depth: int = 2) -> Iterator[Batch]:
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not offer(batch):
                    return
            offer(_DONE)
        except BaseException as error:  # handed to the consumer, raised there
            offer(error)

    worker = threading.Thread(target=produce, name="seqrob-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown format '{fmt}'", file=str(path), fix=f"use one of {', '.join(FORMATS)}")
        return fmt
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise InputError(
            f"cannot tell the format from the suffix '{path.suffix}'",
            file=str(path),
            fix="name the file .csv, .parquet or .jsonl, or pass --format",
        )
    return found


def open_source(path: str | Path, *, fmt: str | None = None) -> Source:
    """Open a result file for streaming; raise :class:`InputError` if it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", file=str(path), fix="check the path")
    if path.is_dir():
        raise InputError("is a folder, not a file", file=str(path), fix="name the files inside it")
    if path.stat().st_size == 0:
        raise InputError("the file is empty", file=str(path), fix="export the results again")
    kind = _format_of(path, fmt)
    if kind == "csv":
        return _csv_source(path)
    if kind == "parquet":
        return _parquet_source(path)
    return _jsonl_source(path)


def frame_source(frame: pd.DataFrame | pa.Table, name: str) -> Source:
    """A DataFrame or Arrow table as a source (one batch)."""
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    return Source(name, list(table.column_names), iter([Batch(table, 1)]))


# --- CSV -------------------------------------------------------------------------


_LONE_CR = re.compile(r"(?<=\r)(?!\n)")


def _text_lines(handle: io.BufferedReader) -> Iterator[str]:
    """Decode a file line by line (a text handle decodes whole chunks, so a bad byte
    far down the file would be blamed on the header or on an earlier row).
    Lines end in LF, CRLF or a lone CR, as in a text handle opened with newline=""."""
    for number, raw in enumerate(handle):
        text = raw.decode("utf-8-sig" if number == 0 else "utf-8")
        yield from (part for part in _LONE_CR.split(text) if part) if "\r" in text else (text,)


def _csv_header(path: Path, delimiter: str) -> list[str]:
    with path.open("rb") as handle:
        try:
            for row in csv.reader(_text_lines(handle), delimiter=delimiter):
                if any(cell.strip() for cell in row):
                    return row
        except (csv.Error, UnicodeDecodeError) as error:
            raise InputError(f"cannot read the header: {error}", file=str(path), fix="save the file as UTF-8 CSV")
    raise InputError("the file holds no header", file=str(path), fix="export the results again")


def _csv_locate_problem(path: Path, delimiter: str, width: int) -> InputError:
    """Find the row a CSV parse error came from (only on the error path)."""
    with path.open("rb") as handle:
        reader = csv.reader(_text_lines(handle), delimiter=delimiter)
        row_number = 0
        try:
            next(reader)
            for row in reader:
                if not row or not any(cell.strip() for cell in row):
                    continue
                row_number += 1
                if len(row) != width:
                    return InputError(
                        f"the row has {len(row)} fields but the header has {width}",
                        file=str(path),
                        row=row_number,
                        fix="fix the row's separators or quotes so it matches the header",
                    )
        except (csv.Error, UnicodeDecodeError) as error:
            return InputError(f"cannot parse: {error}", file=str(path), row=row_number + 1, fix="save the file as UTF-8 CSV")
    return InputError("cannot parse the file as CSV", file=str(path), fix="check quotes and separators")


def _csv_source(path: Path) -> Source:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    header = _csv_header(path, delimiter)
    if len(set(header)) != len(header):
        dupes = sorted({name for name in header if header.count(name) > 1})
        raise InputError(f"the header names column '{dupes[0]}' twice", file=str(path), fix="rename one of them")
    read_options = pacsv.ReadOptions(block_size=_CSV_BLOCK, use_threads=True)
    parse_options = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False)
    convert_options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        reader = pacsv.open_csv(
            path, read_options=read_options, parse_options=parse_options, convert_options=convert_options
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        if "Empty CSV file" in str(error):
            raise InputError("the file holds no header", file=str(path), fix="export the results again") from None
        raise _csv_locate_problem(path, delimiter, len(header)) from None
    names = [name.lstrip("\ufeff") for name in reader.schema.names]

    def batches() -> Iterator[Batch]:
        first = 1
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid:
                raise _csv_locate_problem(path, delimiter, len(header)) from None
            table = pa.Table.from_batches([batch]).rename_columns(names)
            yield Batch(table, first)
            first += batch.num_rows

    return Source(str(path), names, _closing(batches(), reader.close), reader.close)


# --- Parquet ---------------------------------------------------------------------


def _parquet_source(path: Path) -> Source:
    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(
            f"not a readable Parquet file ({_first_line(error)})",
            file=str(path),
            fix="the file may be truncated: write it again",
        ) from None
    names = list(handle.schema_arrow.names)

    def batches() -> Iterator[Batch]:
        first = 1
        try:
            for batch in handle.iter_batches(batch_size=_PARQUET_BATCH):
                yield Batch(pa.Table.from_batches([batch]), first)
                first += batch.num_rows
        except (pa.ArrowInvalid, OSError) as error:
            raise InputError(
                f"cannot read the Parquet data after row {first - 1} ({_first_line(error)})",
                file=str(path),
                row=first,
                fix="the file may be truncated: write it again",
            ) from None

    return Source(str(path), names, _closing(batches(), handle.close), handle.close)


# --- JSON Lines ------------------------------------------------------------------


def _column_array(values: list) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        # Mixed types in one column (3 here, "3" there): keep text, the validator converts.
        return pa.array([None if value is None else str(value) for value in values], type=pa.string())


def _jsonl_source(path: Path) -> Source:
    handle = path.open("rb")
    names: list[str] = []
    pending: list[tuple[int, dict]] = []
    line_number = 0
    row_number = 0

    def read_chunk() -> list[tuple[int, dict]]:
        nonlocal line_number, row_number
        chunk: list[tuple[int, dict]] = []
        for raw in handle:
            line_number += 1
            try:
                line = raw.decode("utf-8-sig" if line_number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise InputError(
                    f"line {line_number} is not UTF-8 text ({error.reason} at byte {error.start + 1})",
                    file=str(path),
                    row=row_number + 1,
                    fix="save the file as UTF-8 JSON Lines",
                ) from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(
                    f"line {line_number} is not valid JSON ({error.msg} at character {error.pos + 1})",
                    file=str(path),
                    row=row_number + 1,
                    fix="write one JSON object per line",
                ) from None
            if not isinstance(record, dict):
                raise InputError(
                    f"line {line_number} is a JSON {type(record).__name__}, not an object",
                    file=str(path),
                    row=row_number + 1,
                    fix="write one JSON object per line",
                )
            row_number += 1
            chunk.append((row_number, record))
            if len(chunk) >= _JSONL_CHUNK:
                break
        return chunk

    try:
        pending = read_chunk()
    except InputError:
        handle.close()
        raise
    if not pending:
        handle.close()
        raise InputError("the file holds no records", file=str(path), fix="export the results again")
    for _, record in pending:
        for key in record:
            if key not in names:
                names.append(key)

    def batches() -> Iterator[Batch]:
        chunk = pending
        try:
            while chunk:
                keys = list(names)
                for _, record in chunk:
                    for key in record:
                        if key not in keys:
                            keys.append(key)
                table = pa.table({key: _column_array([record.get(key) for _, record in chunk]) for key in keys})
                yield Batch(table, chunk[0][0])
                chunk = read_chunk()
        finally:
            handle.close()

    return Source(str(path), names, batches(), handle.close)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
