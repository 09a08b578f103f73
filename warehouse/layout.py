"""How a user's file maps onto seqrob's data contract.

The contract (DESIGN.md) has two long formats:

* **scores**: one row per run x task x language x metric,
  ``run_id, order, seed, task, language, metric, score`` required and
  ``experiment, method, model, data_seed, n_examples, family`` optional;
* **predictions**: one row per run x task x language x example,
  ``run_id, task, language, example_id`` and an outcome: ``correct`` (0/1),
  ``value`` (a per-example metric) or ``tp, fp, fn``.

A :class:`Layout` says how a file differs from that: renamed columns
(``--column seed=Run``), constant columns the file lacks (``--set task=xnli``),
and a wide layout (one column per language or per metric).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seqrob.warehouse.errors import InputError

__all__ = [
    "KINDS",
    "SCORE_REQUIRED",
    "SCORE_OPTIONAL",
    "PREDICTION_REQUIRED",
    "OUTCOMES",
    "Layout",
    "parse_assignments",
]

KINDS = ("scores", "predictions")
SCORE_REQUIRED = ("run_id", "order", "seed", "task", "language", "metric", "score")
SCORE_OPTIONAL = ("experiment", "method", "model", "data_seed", "n_examples", "family")
PREDICTION_REQUIRED = ("run_id", "task", "language", "example_id")
OUTCOMES = ("correct", "value", "tp", "fp", "fn")
WIDE = ("language", "metric")
_CANONICAL = set(SCORE_REQUIRED) | set(SCORE_OPTIONAL) | set(PREDICTION_REQUIRED) | set(OUTCOMES)


def parse_assignments(items: Sequence[str] | None, option: str) -> dict[str, str]:
    """Parse repeatable ``KEY=VALUE`` options into a dict."""
    parsed: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"{option} {item!r} is not of the form KEY=VALUE", fix=f"write e.g. {option} seed=Run")
        if key in parsed:
            raise InputError(f"{option} names '{key}' twice", fix="give each column once")
        parsed[key] = value
    return parsed


@dataclass(frozen=True)
class Layout:
    """How to read a file as scores or predictions.

    Parameters
    ----------
    columns
        Canonical column name -> the file's column name (``{"seed": "Run"}``).
    constants
        Canonical column name -> a value for every row (``{"task": "xnli"}``).
    wide
        ``"language"`` when each other column holds the scores of one language,
        ``"metric"`` when each other column holds one metric; ``None`` for long files.
    kind
        ``"scores"`` or ``"predictions"``; ``None`` to recognise it from the columns.
    """

    columns: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, str] = field(default_factory=dict)
    wide: str | None = None
    kind: str | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise InputError(f"unknown kind '{self.kind}'", fix="use --kind scores or --kind predictions")
        if self.wide is not None and self.wide not in WIDE:
            raise InputError(f"unknown wide layout '{self.wide}'", fix="use --wide language or --wide metric")
        for name in [*self.columns, *self.constants]:
            if name not in _CANONICAL:
                raise InputError(
                    f"'{name}' is not a column of seqrob's data contract",
                    fix="map onto one of: " + ", ".join(sorted(_CANONICAL)),
                )
        both = set(self.columns) & set(self.constants)
        if both:
            raise InputError(f"'{sorted(both)[0]}' is given both by --column and --set", fix="keep one of them")

    def resolve(self, file_columns: Sequence[str], source: str) -> Plan:
        """Check the file's header against the layout; return how to read each batch."""
        present = list(file_columns)
        rename: dict[str, str] = {}
        for canonical, original in self.columns.items():
            if original not in present:
                raise InputError(
                    f"--column {canonical}={original}: the file has no column '{original}'",
                    file=source,
                    fix="columns are: " + ", ".join(present),
                )
            if canonical in present and canonical != original:
                raise InputError(
                    f"the file has a column '{canonical}' and --column {canonical}={original} maps another onto it",
                    file=source,
                    fix="drop the mapping or rename the file's column",
                )
            rename[original] = canonical
        names = [rename.get(name, name) for name in present]
        for canonical in self.constants:
            if canonical in names:
                option = "--experiment (or --set experiment)" if canonical == "experiment" else f"--set {canonical}"
                raise InputError(
                    f"{option} gives '{canonical}' but the file has a column '{canonical}'",
                    file=source,
                    fix="drop the option or the column",
                )
        available = set(names) | set(self.constants)
        wide_columns: list[str] = []
        if self.wide is not None:
            if self.wide in available:
                raise InputError(
                    f"--wide {self.wide} but the file has a column '{self.wide}'",
                    file=source,
                    fix="drop --wide for a long file",
                )
            if "score" in available:
                raise InputError(
                    f"--wide {self.wide} but the file has a 'score' column",
                    file=source,
                    fix="in a wide file each value column is one " + self.wide,
                )
            wide_columns = [name for name in names if name not in _CANONICAL]
            if not wide_columns:
                raise InputError(
                    f"--wide {self.wide}: the file has no columns besides the contract's",
                    file=source,
                    fix=f"each {self.wide} needs its own column",
                )
            available |= {self.wide, "score"}
        kind = self.kind or _recognise(available, source)
        required = SCORE_REQUIRED if kind == "scores" else PREDICTION_REQUIRED
        missing = [name for name in required if name not in available]
        if missing:
            fix = "rename it with --column " + f"{missing[0]}=YOUR_COLUMN"
            if missing[0] in ("task", "metric", "experiment"):
                fix += f", or give one value with --set {missing[0]}=VALUE"
            raise InputError(f"required column '{missing[0]}' is missing", file=source, column=missing[0], fix=fix)
        if kind == "predictions":
            if self.wide is not None:
                raise InputError("a predictions file cannot be wide", file=source, fix="drop --wide")
            if not ({"correct", "value"} & available or {"tp", "fp", "fn"} <= available):
                raise InputError(
                    "a predictions file needs an outcome column",
                    file=source,
                    fix="add 'correct' (0/1), 'value', or all of 'tp', 'fp', 'fn'",
                )
        known = set(SCORE_REQUIRED) | set(SCORE_OPTIONAL) if kind == "scores" else set(PREDICTION_REQUIRED) | set(OUTCOMES)
        ignored = [original for original, name in zip(present, names) if name not in known and original not in wide_columns]
        return Plan(kind, rename, dict(self.constants), self.wide, wide_columns, ignored, source)


def _recognise(available: set[str], source: str) -> str:
    if "score" in available and "example_id" not in available:
        return "scores"
    if "example_id" in available and "score" not in available:
        return "predictions"
    if "score" in available:
        raise InputError(
            "the file has both 'score' and 'example_id': cannot tell scores from predictions",
            file=source,
            fix="pass --kind scores or --kind predictions",
        )
    raise InputError(
        "cannot tell what the file holds: it has neither a 'score' nor an 'example_id' column",
        file=source,
        fix="rename with --column score=YOUR_COLUMN, pass --wide language, or --kind",
    )


@dataclass(frozen=True)
class Plan:
    """A layout resolved against one file's header."""

    kind: str
    rename: dict[str, str]
    constants: dict[str, str]
    wide: str | None
    wide_columns: list[str]
    ignored: list[str]
    source: str = ""

    def apply(
        self, table: pa.Table, first_row: int, nested: Mapping[str, int] | None = None
    ) -> tuple[pa.Table, pa.Array, pa.Array | None]:
        """Return the batch in canonical long form, each row's file row, and (wide) its source column.

        Every column read must hold plain values: ``nested`` (column -> first row) names
        columns where a JSON Lines row gave an object or an array; binary columns are
        decoded as UTF-8 text.
        """
        used = [name for name in table.column_names if name not in self.ignored]
        for name in used:
            if name in (nested or {}):
                raise self._not_plain(name, "a JSON object or array", nested[name])
        table = table.rename_columns([self.rename.get(name, name) for name in table.column_names])
        for original in used:
            name = self.rename.get(original, original)
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, self._plain(table.column(index), original, first_row))
        rows = pa.array(np.arange(first_row, first_row + table.num_rows, dtype=np.int64))
        for name, value in self.constants.items():
            table = table.append_column(name, pa.repeat(pa.scalar(value, pa.string()), table.num_rows))
        if not self.wide:
            return table, rows, None
        keep = [name for name in table.column_names if name not in self.wide_columns]
        base = table.select(keep)
        n = table.num_rows
        parts, row_parts, column_parts = [], [], []
        for name in self.wide_columns:
            label = pa.repeat(pa.scalar(name, pa.string()), n)
            part = base.append_column(self.wide, label)
            part = part.append_column("score", table.column(name))
            parts.append(part)
            row_parts.append(rows)
            column_parts.append(label)
        long = pa.concat_tables(parts, promote_options="permissive")
        return long, pa.concat_arrays(row_parts), pa.concat_arrays(column_parts)


    def _plain(self, column: pa.ChunkedArray, name: str, first_row: int) -> pa.ChunkedArray:
        """The column if its values are plain (numbers, text, dates); binary decoded as UTF-8."""
        kind = column.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if pa.types.is_nested(kind):
            values = column.combine_chunks()
            index = int(np.flatnonzero(values.is_valid().to_numpy(zero_copy_only=False))[0]) if values.null_count < len(values) else 0
            raise self._not_plain(name, f"a {_type_word(kind)} ({kind})", first_row + index)
        if not (pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind)):
            return column
        values = column.combine_chunks()
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        try:
            return pa.chunked_array([pc.cast(values, pa.string())])
        except pa.ArrowInvalid:
            for index, value in enumerate(values.to_pylist()):
                if value is None:
                    continue
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise InputError(
                        f"the bytes {value[:24]!r} are not UTF-8 text ({error.reason} at byte {error.start + 1})",
                        file=self.source,
                        row=first_row + index,
                        column=name,
                        fix="write this column as UTF-8 text (a string column)",
                    ) from None
            raise

    def _not_plain(self, name: str, what: str, row: int) -> InputError:
        return InputError(
            f"the cell holds {what}, not a single value",
            file=self.source,
            row=row,
            column=name,
            fix="write one number or text per cell (flatten the column before exporting)",
        )


def _type_word(kind: pa.DataType) -> str:
    if pa.types.is_struct(kind):
        return "record (struct)"
    if pa.types.is_map(kind):
        return "map"
    if pa.types.is_union(kind):
        return "union of types"
    return "list"


def wide_is_blank(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Cells of a wide file left empty (a language not evaluated): skipped, not errors."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return pc.fill_null(pc.or_(pc.equal(pc.utf8_length(values), 0), pc.utf8_is_space(values)), True)
    return pc.is_null(values)
