"""Read result files (CSV, Parquet, JSON Lines) as a stream of Arrow record batches.

Files are never loaded whole: each reader yields batches together with the
number of the first data row in the batch (rows count from 1; a header is not a
row), so that a problem found later can be reported by file, row and column.
CSV cells are read as text and converted by the validator, which is what lets it
say *which* row holds "abc" in a numeric column.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
# Compressed files, by their first bytes: gzip is read as it is; the others are named in the refusal.
_GZIP = b"\x1f\x8b"
_OTHER_COMPRESSION = {b"PK\x03\x04": "zip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
_CSV_BLOCK = 8 << 20  # bytes per CSV block: large enough to keep both cores busy
_PARQUET_BATCH = 1 << 18  # rows per Parquet batch
_JSONL_CHUNK = 50_000  # lines per JSON Lines batch


@dataclass(frozen=True)
class Batch:
    """A block of a file: the table and the row number of its first row.

    ``nested`` names the columns in which a JSON Lines row gave an object or an array
    among plain values (the column is text then), with the first such row.
    """

    table: pa.Table
    first_row: int
    nested: dict[str, int] = field(default_factory=dict)


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
        last = 0
        try:
            for batch in _read_ahead(self._batches):
                last = batch.first_row + batch.table.num_rows - 1
                yield batch
        except (OSError, EOFError) as error:  # a failing disk, a truncated gzip stream
            reason = _os_error(error) if isinstance(error, OSError) else _first_line(error)
            raise InputError(
                f"cannot read the file after row {last} ({reason})",
                file=self.name,
                fix="the file may be truncated: write it again",
            ) from None


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
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] == ".gz" and suffixes[-2] in _SUFFIXES:
        return _SUFFIXES[suffixes[-2]]  # runs.csv.gz: a gzip'd CSV
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
    try:
        if path.stat().st_size == 0:
            raise InputError("the file is empty", file=str(path), fix="export the results again")
        kind = _format_of(path, fmt)
        compressed = _compression(path)
        if compressed not in (None, "gzip") or (compressed == "gzip" and kind == "parquet"):
            raise InputError(
                f"the file is compressed with {compressed}; seqrob reads gzip'd CSV and JSON Lines, and Parquet as it is",
                file=str(path),
                fix=f"decompress it first ({_UNPACK.get(compressed, 'gunzip')} {path.name})",
            )
        if kind == "csv":
            return _csv_source(path, gzipped=compressed == "gzip")
        if kind == "parquet":
            return _parquet_source(path)
        return _jsonl_source(path, gzipped=compressed == "gzip")
    except OSError as error:  # unreadable (permissions, a failing disk): one line, no traceback
        raise InputError(
            f"cannot read the file ({_os_error(error)})",
            file=str(path),
            fix="the file may be truncated or unreadable: write it again, or check its permissions",
        ) from None


_UNPACK = {"zip": "unzip", "bzip2": "bunzip2", "xz": "unxz", "zstd": "unzstd", "gzip": "gunzip"}


def _compression(path: Path) -> str | None:
    """The compression the file's first bytes announce (None: not compressed)."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(_GZIP):
        return "gzip"
    return next((name for magic, name in _OTHER_COMPRESSION.items() if head.startswith(magic)), None)


def _open_bytes(path: Path, gzipped: bool) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def _os_error(error: OSError) -> str:
    return error.strerror or _first_line(error)


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


def _csv_header(path: Path, delimiter: str, gzipped: bool) -> list[str]:
    with _open_bytes(path, gzipped) as handle:
        try:
            for row in csv.reader(_text_lines(handle), delimiter=delimiter):
                if any(cell.strip() for cell in row):
                    _check_delimiter(row, delimiter, path)
                    return row
        except (csv.Error, UnicodeDecodeError) as error:
            raise InputError(f"cannot read the header: {error}", file=str(path), fix="save the file as UTF-8 CSV")
    raise InputError("the file holds no header", file=str(path), fix="export the results again")


_OTHER_DELIMITERS = {";": "';'", "\t": "tabs", "|": "'|'"}


def _check_delimiter(header: list[str], delimiter: str, path: Path) -> None:
    """A one-column header holding another delimiter: the file is not delimited by ``delimiter``."""
    if len(header) != 1:
        return
    for other, name in _OTHER_DELIMITERS.items():
        if other != delimiter and other in header[0]:
            expected = "tabs" if delimiter == "\t" else f"'{delimiter}'"
            fix = (
                "name it .tsv"
                if other == "\t"
                else "write it again with ',' between fields (pandas: read_csv(path, sep=';', decimal=',').to_csv(out, index=False))"
            )
            raise InputError(
                f"only one column found in the header; is the file delimited by {name}? seqrob reads {expected}",
                file=str(path),
                fix=fix,
            )


def _csv_locate_problem(path: Path, delimiter: str, width: int, gzipped: bool) -> InputError:
    """Find the row a CSV parse error came from (only on the error path)."""
    with _open_bytes(path, gzipped) as handle:
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


def _csv_source(path: Path, *, gzipped: bool = False) -> Source:
    delimiter = "\t" if ".tsv" in [suffix.lower() for suffix in path.suffixes[-2:]] else ","
    header = _csv_header(path, delimiter, gzipped)
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
        stream = pa.input_stream(str(path), compression="gzip" if gzipped else None)
        reader = pacsv.open_csv(
            stream, read_options=read_options, parse_options=parse_options, convert_options=convert_options
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        if "Empty CSV file" in str(error):
            raise InputError("the file holds no header", file=str(path), fix="export the results again") from None
        raise _csv_locate_problem(path, delimiter, len(header), gzipped) from None
    names = [name.lstrip("\ufeff") for name in reader.schema.names]

    def batches() -> Iterator[Batch]:
        first = 1
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid:
                raise _csv_locate_problem(path, delimiter, len(header), gzipped) from None
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


def _column_array(values: list) -> tuple[pa.Array, int | None]:
    """The column as Arrow, and the index of its first object or array when it mixes those
    with plain values (it is text then, and the layout refuses it if the column is used)."""
    try:
        return pa.array(values), None
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        # Mixed types in one column (3 here, "3" there): keep text, the validator converts.
        nested = next((i for i, value in enumerate(values) if isinstance(value, (dict, list))), None)
        return pa.array([None if value is None else str(value) for value in values], type=pa.string()), nested


def _jsonl_source(path: Path, *, gzipped: bool = False) -> Source:
    handle = _open_bytes(path, gzipped)
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
                arrays, nested = {}, {}
                for key in keys:
                    arrays[key], first = _column_array([record.get(key) for _, record in chunk])
                    if first is not None:
                        nested[key] = chunk[first][0]
                yield Batch(pa.table(arrays), chunk[0][0], nested)
                chunk = read_chunk()
        finally:
            handle.close()

    return Source(str(path), names, batches(), handle.close)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
