"""Column converters for ingest: text or typed Arrow columns in, checked arrays out.

Each converter raises :class:`InputError` naming the first offending row, using the
row numbers the reader attached to the batch. They are vectorised; the slow path
(finding *which* cell failed) only runs once something has failed.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seqrob.warehouse.errors import InputError

__all__ = ["Cells", "text", "number", "integer", "binary"]


class Cells:
    """One column of a batch, with what is needed to say where a bad cell is."""

    def __init__(self, values: pa.ChunkedArray | pa.Array, name: str, source: str, rows: pa.Array, columns: pa.Array | None = None):
        self.values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        self.name = name
        self.source = source
        self.rows = rows
        self.columns = columns

    def fail(self, index: int, problem: str, fix: str) -> InputError:
        column = self.name if self.columns is None else self.columns[index].as_py()
        return InputError(problem, file=self.source, row=self.rows[index].as_py(), column=column, fix=fix)

    def first(self, mask: pa.Array | np.ndarray) -> int | None:
        flags = mask.to_numpy(zero_copy_only=False) if isinstance(mask, pa.Array) else mask
        hits = np.flatnonzero(flags)
        return int(hits[0]) if hits.size else None

    @property
    def is_text(self) -> bool:
        return pa.types.is_string(self.values.type) or pa.types.is_large_string(self.values.type)


def _blank(cells: Cells) -> pa.Array:
    if cells.is_text:
        values = cells.values
        return pc.fill_null(pc.or_(pc.equal(pc.utf8_length(values), 0), pc.utf8_is_space(values)), True)
    return pc.is_null(cells.values)


def text(cells: Cells, *, required: bool = True) -> pa.Array:
    """A text column; empty cells are an error when ``required`` (else null)."""
    values = cells.values
    if not cells.is_text:
        if pa.types.is_floating(values.type):
            # 3.0 from a float column means the label 3, not "3.0".
            floats = values.to_numpy(zero_copy_only=False)
            integral = np.isfinite(floats) & (np.floor(floats) == floats)
            if integral[~np.isnan(floats)].all():
                values = pc.cast(pc.cast(values, pa.int64(), safe=False), pa.string())
            else:
                values = pc.cast(values, pa.string())
        elif pa.types.is_null(values.type):
            values = pa.nulls(len(values), pa.string())
        else:
            values = pc.cast(values, pa.string())
    blank = _blank(Cells(values, cells.name, cells.source, cells.rows, cells.columns))
    if required:
        index = cells.first(blank)
        if index is not None:
            raise cells.fail(index, f"'{cells.name}' is empty", "fill it in for every row")
        return values
    return pc.if_else(blank, pa.scalar(None, pa.string()), values)


def number(cells: Cells, *, required: bool = True, example: str = "0.734") -> pa.Array:
    """A float column: text is parsed; empty, NaN and non-numbers are errors."""
    values = cells.values
    if pa.types.is_null(values.type):
        values = pa.nulls(len(values), pa.float64())
    blank = _blank(cells) if cells.is_text else pc.is_null(values)
    if required:
        index = cells.first(blank)
        if index is not None:
            raise cells.fail(index, f"'{cells.name}' is empty", "every row needs a number here")
    if cells.is_text:
        trimmed = pc.utf8_trim_whitespace(values)
        trimmed = pc.if_else(blank, pa.scalar(None, pa.string()), trimmed)
        try:
            parsed = pc.cast(trimmed, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            texts = trimmed.to_pylist()
            for index, value in enumerate(texts):
                if value is None:
                    continue
                try:
                    float(value)
                except ValueError:
                    raise cells.fail(index, f"'{cells.name}' {value!r} is not a number", f"write a plain number like {example}") from None
            # Python reads some text Arrow does not ('1_000', non-ASCII digits): ask Arrow cell by cell.
            for index, value in enumerate(texts):
                try:
                    pc.cast(pa.array([value], pa.string()), pa.float64())
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise cells.fail(index, f"'{cells.name}' {value!r} is not a number", f"write a plain number like {example}") from None
            raise  # pragma: no cover - Arrow fails on the column but on no single cell
    elif pa.types.is_boolean(values.type):
        raise cells.fail(0, f"'{cells.name}' holds true/false, not numbers", "write numbers")
    else:
        try:
            parsed = pc.cast(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise cells.fail(0, f"'{cells.name}' is of type {values.type}, not a number", "write numbers") from None
    data = parsed.to_numpy(zero_copy_only=False)
    bad = ~np.isfinite(data) & ~pc.is_null(parsed).to_numpy(zero_copy_only=False)
    index = cells.first(bad)
    if index is not None:
        raise cells.fail(index, f"'{cells.name}' is {data[index]} (not a finite number)", "drop the row or write the number")
    return parsed


def integer(cells: Cells, *, required: bool = True) -> pa.Array:
    """An integer column: 3 and 3.0 are fine, 3.5 and 'three' are errors."""
    parsed = number(cells, required=required, example="3 (an integer)")
    data = parsed.to_numpy(zero_copy_only=False)
    present = ~np.isnan(data)
    fractional = present & (np.floor(np.where(present, data, 0.0)) != np.where(present, data, 0.0))
    index = cells.first(fractional)
    if index is not None:
        # The cell as written ('1.5'), not numpy's repr of it (np.float64(1.5)).
        raise cells.fail(index, f"'{cells.name}' {cells.values[index].as_py()!r} is not a whole number", "write an integer")
    big = present & (np.abs(np.where(present, data, 0.0)) >= 2.0**63)
    index = cells.first(big)
    if index is not None:
        raise cells.fail(index, f"'{cells.name}' {cells.values[index].as_py()!r} is too large", "write an integer below 2**63")
    if cells.is_text or pa.types.is_floating(cells.values.type):
        return pc.cast(parsed, pa.int64(), safe=False)
    return pc.cast(cells.values, pa.int64())


_TRUE = {"1", "true", "True", "TRUE", "1.0"}
_FALSE = {"0", "false", "False", "FALSE", "0.0"}


def binary(cells: Cells) -> pa.Array:
    """A 0/1 outcome column; true/false is accepted, anything else is an error."""
    values = cells.values
    if pa.types.is_boolean(values.type):
        index = cells.first(pc.is_null(values))
        if index is not None:
            raise cells.fail(index, f"'{cells.name}' is empty", "write 0 or 1")
        return pc.cast(values, pa.int8())
    if cells.is_text:
        allowed = pa.array(sorted(_TRUE | _FALSE))
        ok = pc.fill_null(pc.is_in(pc.utf8_trim_whitespace(values), value_set=allowed), False)
        index = cells.first(pc.invert(ok))
        if index is not None:
            value = values[index].as_py()
            raise cells.fail(index, f"'{cells.name}' is {value!r}, not 0 or 1", "write 0 or 1 (1 = correct)")
        truthy = pc.is_in(pc.utf8_trim_whitespace(values), value_set=pa.array(sorted(_TRUE)))
        return pc.cast(truthy, pa.int8())
    parsed = number(cells)
    data = parsed.to_numpy(zero_copy_only=False)
    bad = (data != 0.0) & (data != 1.0)
    index = cells.first(bad)
    if index is not None:
        value = data[index]
        shown = int(value) if math.isfinite(value) and value == int(value) else value
        raise cells.fail(index, f"'{cells.name}' is {shown!r}, not 0 or 1", "write 0 or 1 (1 = correct)")
    return pc.cast(parsed, pa.int8())
