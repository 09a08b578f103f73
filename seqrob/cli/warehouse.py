"""``seqrob warehouse info|export|languages``: what is stored, and getting it out again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.table import Table
from rich.text import Text

from seqrob.cli._common import DbOption, WaitOption, console, console_warning

group = typer.Typer(help="Inspect and export the warehouse (DuckDB file).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="warehouse")


def frame_table(frame: pd.DataFrame, title: str, *, limit: int | None = None) -> Table:
    """A DataFrame as a rich table for people (numbers are rounded only here)."""
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


@group.command("info")
def info(
    db: DbOption = None,
    experiment: Annotated[Optional[str], typer.Option(help="Only this experiment.")] = None,
    missing: Annotated[int, typer.Option(help="How many missing cells to list.")] = 20,
    wait: WaitOption = 10.0,
) -> None:
    """Show the stored design: experiments, tasks, orders and seeds, languages per family, missing cells."""
    from seqrob.warehouse import Warehouse

    with Warehouse(db, read_only=True, wait=wait) as wh:
        design = wh.info(experiment=experiment)
        path = wh.path
    console.print(f"warehouse: {path}", markup=False, highlight=False)
    if design.experiments.empty:
        console.print("no runs stored yet - `seqrob ingest FILE`, `seqrob simulate --db` or `seqrob train`")
        return
    console.print(frame_table(design.experiments, "experiments"))
    console.print(frame_table(design.tasks, "tasks and metrics (outcome: per-example outcomes stored)"))
    console.print(frame_table(design.orders, "orders and seeds"))
    console.print(frame_table(design.families, "languages per family"))
    if len(design.missing):
        console.print(frame_table(design.missing, f"missing cells ({len(design.missing)})", limit=missing))
    else:
        console.print("missing cells: none (every order x seed x language is stored)")
    if len(design.failed):
        console.print(frame_table(design.failed, "failed runs"))
    for warning in design.warnings:
        console_warning(warning)


@group.command("export")
def export(
    out: Annotated[Path, typer.Argument(help="Folder to write the tables into.")],
    db: DbOption = None,
    table: Annotated[
        Optional[list[str]], typer.Option("--table", help="Export only this table (repeatable).")
    ] = None,
    format_: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    wait: WaitOption = 10.0,
) -> None:
    """Write warehouse tables (runs, scores, predictions, languages, ...) to Parquet or CSV files."""
    from seqrob.warehouse import Warehouse

    with Warehouse(db, read_only=True, wait=wait) as wh:
        written = wh.export(out, tables=table, fmt=format_)
    console.print(frame_table(written, f"exported to {out}"))


@group.command("languages")
def languages(
    codes: Annotated[list[str], typer.Argument(help="Language codes (ISO 639-1/639-3 or BCP-47).")],
) -> None:
    """Show the family, genus and script seqrob gives each language code."""
    from seqrob.warehouse.languages import resolve

    rows = []
    for code in codes:
        entry = resolve(code)
        rows.append(
            {"code": code, "iso639_3": entry.iso639_3 if entry else None, "name": entry.name if entry else None,
             "family": entry.family if entry else "(unknown)", "genus": entry.genus if entry else None,
             "script": entry.script if entry else None}
        )
    console.print(frame_table(pd.DataFrame(rows), "languages"))
