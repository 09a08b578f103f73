"""What every command shares: the console, the --db and --format options, and printing tables.

Only typer, rich and the standard library are imported here: every ``seqrob`` command
(``--help`` too) loads this module, so pandas and DuckDB wait for the commands that use them.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

console = Console()
stderr_console = Console(stderr=True)  # progress and messages for people when stdout is for programs

DbOption = Annotated[
    Optional[Path],
    typer.Option(
        "--db",
        help="Warehouse file (default: $SEQROB_DB, else ./seqrob.duckdb).",
        show_default=False,
    ),
]


def _not_negative(value: float) -> float:
    # Checked here, not with min=0: typer would print "<float range> [x>=0.0]" as the type, and
    # that wide column squeezes every command's help text at 80 columns until words are cut.
    if value < 0:
        raise typer.BadParameter("must be 0 or more (0: do not wait)")
    return value


WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        help="Seconds to wait for another seqrob process that holds the warehouse.",
        callback=_not_negative,
    ),
]

#: What ``--format`` takes: a rich table for people, or text for programs.
FORMATS = ("table", "json", "csv", "markdown")
FormatOption = Annotated[
    str,
    typer.Option(
        "--format",
        help="table (for people), or json, csv or markdown (for programs; stdout, not wrapped).",
    ),
]


def console_error(message: str) -> None:
    """Print one error line for a person (no markup interpretation of user text)."""
    stderr_console.print("error: " + message, markup=False, highlight=False, soft_wrap=True, style="red")


def console_warning(message: str) -> None:
    """Print one warning line for a person."""
    stderr_console.print("warning: " + message, markup=False, highlight=False, soft_wrap=True, style="yellow")


def check_format(fmt: str) -> str:
    """``fmt`` if it is one of :data:`FORMATS`; else an InputError (before any work is done)."""
    if fmt not in FORMATS:
        from seqrob.warehouse.errors import InputError

        raise InputError(f"unknown --format '{fmt}'", fix="use one of " + ", ".join(FORMATS))
    return fmt


def frame_table(frame: pd.DataFrame, title: str, *, limit: int | None = None) -> Table:
    """A DataFrame as a rich table for people (numbers are rounded only here)."""
    import pandas as pd
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left")
    for name in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[name])
        table.add_column(str(name), justify="right" if numeric else "left", overflow="fold")
    shown = frame if limit is None else frame.head(limit)
    for row in shown.itertuples(index=False):
        table.add_row(*(Text("" if pd.isna(v) else (f"{v:.4g}" if isinstance(v, float) else str(v))) for v in row))
    if limit is not None and len(frame) > limit:
        table.caption = f"... {len(frame) - limit} more rows"
    return table


def print_frame(frame: pd.DataFrame, fmt: str, title: str, *, limit: int | None = None) -> None:
    """Print one table: ``table`` a rich table titled ``title`` (at most ``limit`` rows);
    ``json`` an array of row objects, ``csv`` the rows with a header, ``markdown`` a pipe
    table, each on stdout whole (no title, no limit, numbers unrounded except markdown's)."""
    if check_format(fmt) == "table":
        console.print(frame_table(frame, title, limit=limit))
    elif fmt == "json":
        _write(json.dumps(_records(frame), indent=2))
    else:
        _write(_text(frame, fmt))


def print_frames(frames: Mapping[str, pd.DataFrame], fmt: str, *, about: Mapping[str, object] | None = None) -> None:
    """Print several named tables for programs (``fmt`` json, csv or markdown).

    ``json`` is one object: ``about``'s keys (the warehouse path, warnings...) and one
    array of row objects per name. ``csv`` is one block per table after a ``# name``
    line, blocks separated by a blank line; ``markdown`` a ``## name`` heading per table.
    """
    if check_format(fmt) == "table":
        raise ValueError("print_frames writes json, csv or markdown; print tables for people with print_frame")
    if fmt == "json":
        document = {**(about or {}), **{name: _records(frame) for name, frame in frames.items()}}
        _write(json.dumps(document, indent=2))
        return
    heading = "# {}" if fmt == "csv" else "## {}\n"
    _write("\n".join(heading.format(name) + "\n" + _text(frame, fmt) for name, frame in frames.items()))


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts at full precision (``to_json`` would round to 10 digits)."""
    plain = frame.astype(object).where(frame.notna(), None)
    return [{name: _plain(value) for name, value in row.items()} for row in plain.to_dict(orient="records")]


def _plain(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no infinities
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value  # numpy scalars


def _text(frame: pd.DataFrame, fmt: str) -> str:
    if fmt == "csv":
        return frame.to_csv(index=False, lineterminator="\n")
    # Missing values as empty cells, as in the table for people.
    shown = frame.astype(object).where(frame.notna(), "")
    return shown.to_markdown(index=False) + "\n"


def _write(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
