"""``seqrob report``: the PDF robustness report (a thin wrapper of :func:`seqrob.report.build_report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from seqrob.cli._common import DbOption, WaitOption, console, stderr_console

DEFAULT_OUT = Path("reports") / "robustness.pdf"


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    db: DbOption = None,
    out: Annotated[Path, typer.Option(help="The PDF to write (its folder is created).")] = DEFAULT_OUT,
    task: Annotated[Optional[str], typer.Option(help="Only this task (default: every task).")] = None,
    metric: Annotated[Optional[str], typer.Option(help="Only this metric (default: every metric).")] = None,
    experiment: Annotated[
        Optional[str], typer.Option(help="The experiment to report (required when several are stored).")
    ] = None,
    method: Annotated[Optional[str], typer.Option(help="Only this training method (default: each method apart).")] = None,
    baseline: Annotated[str, typer.Option(help="Reference order of the contrasts.")] = "none",
    alpha: Annotated[float, typer.Option(help="Level of the tests; intervals are 1 - alpha.")] = 0.05,
    correction: Annotated[str, typer.Option(help="holm (family-wise) or bh (false discovery rate).")] = "holm",
    n_boot: Annotated[int, typer.Option(help="Bootstrap replicates.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of every resampling RNG.")] = 0,
    effect: Annotated[float, typer.Option(help="Order difference (metric units) the power analysis sizes for.")] = 0.01,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Also write the report as HTML beside the PDF.")] = True,
    reanalyze: Annotated[bool, typer.Option(help="Run the analysis again even if a matching one is stored.")] = False,
    calibration: Annotated[
        Optional[Path],
        typer.Option(help="Calibration table for the Methods section (CSV of seqrob analyze calibrate --out)."),
    ] = None,
    wait: WaitOption = 10.0,
) -> None:
    """Render the PDF robustness report from the warehouse (analysing it first if no stored analysis matches)."""
    from seqrob.report import build_report
    from seqrob.warehouse import Warehouse

    # Writable (a missing analysis is stored), but a mistyped --db is an error, not a new file.
    with Warehouse(db, create=False, wait=wait) as wh, stderr_console.status("building the report") as status:
        built = build_report(wh, task=task, metric=metric, experiment=experiment, method=method, baseline=baseline,
                             alpha=alpha, correction=correction, n_boot=n_boot, seed=seed, effect=effect,
                             reanalyze=reanalyze, calibration=calibration)  # fmt: skip
        ids = ", ".join(str(a.analysis_id) for a in built.inputs.analyses)
        how = "reused stored analysis" if built.reused else "ran and stored analysis"
        status.update("writing the PDF" + (" and HTML" if html else ""))
        pdf = built.write(out, html=html)
    console.print(f"{how} {ids}; report: {pdf}" + (f" (and {pdf.with_suffix('.html')})" if html else ""),
                  markup=False, highlight=False)  # fmt: skip
