"""``seqrob warehouse info|export|languages``: what is stored, and getting it out again."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from seqrob.cli._common import (
    DbOption,
    FormatOption,
    WaitOption,
    check_format,
    console,
    console_warning,
    frame_table,
    print_frames,
)

if TYPE_CHECKING:
    from seqrob.warehouse.design import Design

group = typer.Typer(help="Inspect and export the warehouse (DuckDB file).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="warehouse")


@group.command("info")
def info(
    db: DbOption = None,
    experiment: Annotated[Optional[str], typer.Option(help="Only this experiment.")] = None,
    missing: Annotated[
        int, typer.Option(help="How many missing cells the table lists (json, csv, markdown: all).")
    ] = 20,
    format_: FormatOption = "table",
    wait: WaitOption = 10.0,
) -> None:
    """Show the stored design: experiments, tasks, orders and seeds, languages per family, missing cells."""
    from seqrob.warehouse import Warehouse

    check_format(format_)
    with Warehouse(db, read_only=True, wait=wait) as wh:
        design = wh.info(experiment=experiment)
        path = wh.path
    if format_ != "table":
        names = ("experiments", "tasks", "orders", "families", "missing", "failed")
        frames = {name: getattr(design, name) for name in names}
        print_frames(frames, format_, about={"warehouse": path, "warnings": design.warnings})
    else:
        _print_design(design, path, missing)
    for warning in design.warnings:
        console_warning(warning)


def _print_design(design: Design, path: str, missing: int) -> None:
    """The design as rich tables for people (at most ``missing`` missing cells)."""
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
    import pandas as pd

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
