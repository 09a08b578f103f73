"""``seqrob demo``: the embedded default end to end - train, analyse, report.

Trains the embedded synthetic sweep (:func:`seqrob.training.load_config` with no
file: twelve made-up languages in four families, the shipped ``synthetic-pretrained``
encoder, 3 orders x fine-tuning and prompt tuning x 5 seeds), runs
:func:`seqrob.analysis.analyze` on it (order within each method, and the methods
compared; stored in the warehouse) and renders the report from that stored analysis. Rerunning it skips the runs and the
analysis already stored, so a second demo only re-renders.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from seqrob.report.render import DEFAULT_OUT, build_report

__all__ = ["DemoResult", "demo"]


@dataclass(frozen=True)
class DemoResult:
    """What the demo did: the sweep's result, the analysis, the report, and seconds per step."""

    sweep: object  # seqrob.training.sweep.SweepResult
    analysis: object  # seqrob.analysis.Significance (stored, or found stored and reused)
    analysis_id: int | None
    pdf: Path
    html: Path | None
    seconds: dict[str, float]
    warehouse: str


def demo(
    db: str | Path | None = None,
    *,
    out: str | Path = DEFAULT_OUT,
    workers: int | None = None,
    html: bool = True,
    wait: float = 30.0,
    events: Callable[[dict], None] | None = None,
) -> DemoResult:
    """Train the embedded default sweep into ``db``, analyse it and render the report to ``out``.

    Parameters
    ----------
    db
        Warehouse file (default ``$SEQROB_DB`` or ``./seqrob.duckdb``).
    out
        The report PDF (default ``reports/robustness.pdf``); HTML beside it unless ``html=False``.
    workers
        Training processes (default: one per core).
    wait
        Seconds to wait for another process holding the warehouse.
    events
        Progress callback, as :func:`seqrob.training.sweep.sweep`'s, plus
        ``{"event": "step", "step": "analyze" | "report"}``.
    """
    from seqrob.analysis import Options, Significance, analyze
    from seqrob.analysis.significance import KIND
    from seqrob.training import load_config, sweep
    from seqrob.warehouse import Warehouse

    emit = events or (lambda event: None)
    seconds: dict[str, float] = {}
    config = load_config()
    began = time.perf_counter()
    trained = sweep(config, db=db, workers=workers, wait=wait, events=events)
    seconds["train"] = time.perf_counter() - began
    with Warehouse(db, wait=wait) as wh:
        # The default analysis options, naming the experiment only when the warehouse holds others,
        # so that a plain `seqrob report` afterwards finds this analysis stored.
        options = Options(experiment=None if wh.experiments() == [config.experiment] else config.experiment)
        emit({"event": "step", "step": "analyze"})
        began = time.perf_counter()
        found = wh.find_analysis(KIND, options.parameters())
        outcome = Significance.from_stored(wh.load_analysis(found)) if found is not None else analyze(wh, options)
        analysis_id = outcome.analysis_id
        seconds["analyze"] = time.perf_counter() - began
        emit({"event": "step", "step": "report"})
        began = time.perf_counter()
        report = build_report(wh, analysis=outcome)
        pdf = report.write(out, html=html)
        seconds["report"] = time.perf_counter() - began
        path = wh.path
    return DemoResult(sweep=trained, analysis=outcome, analysis_id=analysis_id, pdf=pdf,
                      html=pdf.with_suffix(".html") if html else None, seconds=seconds, warehouse=path)  # fmt: skip
