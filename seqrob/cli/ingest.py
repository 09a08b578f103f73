"""``seqrob ingest``: import stored run results (a thin wrapper of ``Warehouse.ingest``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from seqrob.cli._common import DbOption, WaitOption, console, console_warning


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)


def ingest(
    files: Annotated[list[Path], typer.Argument(help="CSV, Parquet or JSON Lines files (scores or predictions).", show_default=False)],
    db: DbOption = None,
    experiment: Annotated[Optional[str], typer.Option(help="Experiment of every run in the files.")] = None,
    kind: Annotated[
        Optional[str], typer.Option(help="scores or predictions (default: recognised from the columns).")
    ] = None,
    column: Annotated[
        Optional[list[str]],
        typer.Option("--column", help="Map a contract column onto yours: --column seed=Run (repeatable)."),
    ] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="One value for a column the file lacks: --set task=xnli (repeatable)."),
    ] = None,
    wide: Annotated[
        Optional[str], typer.Option(help="The file has one column per 'language' or per 'metric'.")
    ] = None,
    families: Annotated[
        Optional[Path], typer.Option(help="CSV of code,family that overrides seqrob's language families.")
    ] = None,
    replace: Annotated[bool, typer.Option(help="Overwrite stored values that differ from the file's.")] = False,
    format_: Annotated[
        Optional[str], typer.Option("--format", help="csv, parquet or jsonl when the suffix does not say.")
    ] = None,
    wait: WaitOption = 10.0,
) -> None:
    """Import stored run results into the warehouse; each file is stored whole or not at all.

    Scores: run_id, order, seed, task, language, metric, score (+ experiment, method,
    model, data_seed, n_examples, family). Predictions: run_id, task, language,
    example_id and correct (0/1), value, or tp, fp, fn.
    """
    from rich.table import Table
    from rich.text import Text

    from seqrob.warehouse import Warehouse
    from seqrob.warehouse.layout import parse_assignments

    columns = parse_assignments(column, "--column")
    constants = parse_assignments(set_, "--set")
    with Warehouse(db, wait=wait) as wh:
        results = wh.ingest(
            files,
            kind=kind,
            experiment=experiment,
            columns=columns,
            constants=constants,
            wide=wide,
            families=families,
            replace=replace,
            fmt=format_,
        )
        path = wh.path
    # Text(), not str: a path like "runs[/x].csv" is a name, not rich markup.
    table = Table(title=Text(f"ingested into {path}"), title_justify="left")
    for name in ("file", "kind", "rows read", "stored", "skipped (identical)", "new runs"):
        table.add_column(name, justify="left" if name in ("file", "kind") else "right")
    for row in results.itertuples(index=False):
        table.add_row(
            Text(row.file), row.kind, f"{row.rows_read:,}", f"{row.rows_stored:,}", f"{row.rows_skipped:,}", f"{row.runs_added:,}"
        )
    console.print(table)
    for row in results.itertuples(index=False):
        for note in row.notes:
            console_warning(f"{row.file}: {note}")
