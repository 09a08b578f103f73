"""What every command shares: the console, the --db option, opening the warehouse once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console()
_stderr = Console(stderr=True)

DbOption = Annotated[
    Optional[Path],
    typer.Option(
        "--db",
        help="Warehouse file (default: $SEQROB_DB, else ./seqrob.duckdb).",
        show_default=False,
    ),
]
WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        help="Seconds to wait for another seqrob process that holds the warehouse.",
        min=0.0,
    ),
]


def console_error(message: str) -> None:
    """Print one error line for a person (no markup interpretation of user text)."""
    _stderr.print("error: " + message, markup=False, highlight=False, soft_wrap=True, style="red")


def console_warning(message: str) -> None:
    """Print one warning line for a person."""
    _stderr.print("warning: " + message, markup=False, highlight=False, soft_wrap=True, style="yellow")
