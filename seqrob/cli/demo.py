"""``seqrob demo``: train the embedded default, analyse it, render the report (:func:`seqrob.report.demo.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from seqrob.cli._common import DbOption, WaitOption, console, console_warning

DEFAULT_OUT = Path("reports") / "robustness.pdf"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    db: DbOption = None,
    out: Annotated[Path, typer.Option(help="The report PDF to write.")] = DEFAULT_OUT,
    workers: Annotated[Optional[int], typer.Option(help="Training processes (default: one per CPU core).", min=1)] = None,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Also write the report as HTML beside the PDF.")] = True,
    wait: WaitOption = 30.0,
) -> None:
    """Train the embedded default, analyse it and render the report, end to end (synthetic data; a few minutes)."""
    from seqrob.cli.analyze import show_findings
    from seqrob.report.demo import demo as run_demo

    progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True)  # fmt: skip
    state: dict = {}

    def events(event: dict) -> None:
        kind = event["event"]
        if kind == "plan":
            note = f", {event['skipped']} already stored" if event["skipped"] else ""
            console.print(f"1/3 train: {event['todo']} runs of {event['experiment']} (synthetic){note}", markup=False)
            state["runs"] = progress.add_task("  runs", total=max(event["todo"], 1))
            if not event["todo"]:
                progress.update(state["runs"], completed=1)
        elif kind == "stored" and "runs" in state:
            progress.advance(state["runs"])
            if event["status"] == "failed":
                progress.console.print(f"run failed: {event['run_id']}: {event['failure']}", markup=False)
        elif kind == "step":
            progress.stop()
            console.print("2/3 analyze significance" if event["step"] == "analyze" else "3/3 report", markup=False)

    with progress:
        result = run_demo(db, out=out, workers=workers, html=html, wait=wait, events=events)
    show_findings(result.analysis)
    if result.sweep.failed:
        console_warning(f"{result.sweep.failed} runs failed; the report lists them")
    times = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in result.seconds.items())
    console.print(f"report: {result.pdf}" + (f" (and {result.html})" if result.html else ""), markup=False, highlight=False)
    console.print(f"warehouse: {result.warehouse} (analysis {result.analysis_id}); {times}", markup=False, highlight=False)
