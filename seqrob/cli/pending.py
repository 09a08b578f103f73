"""Commands whose issues have not landed yet: they exist, explain themselves, and say so."""

from __future__ import annotations

import typer

from seqrob.warehouse.errors import SeqrobError


class NotYetAvailable(SeqrobError):
    """A command that exists in the CLI but whose implementation has not landed."""


def _pending(what: str) -> None:
    raise NotYetAvailable(f"'seqrob {what}' is not yet available in this version of seqrob")


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report() -> None:
        """Render the PDF robustness report from the warehouse."""
        _pending("report")

    @app.command("demo")
    def demo() -> None:
        """Train the embedded default, analyse it and render the report, end to end."""
        _pending("demo")
