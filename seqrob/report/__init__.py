"""The robustness report: what a warehouse's runs say about task order, as a PDF (and HTML).

>>> import seqrob as sr
>>> with sr.Warehouse("results.duckdb") as wh:              # doctest: +SKIP
...     sr.analyze(wh).report("reports/robustness.pdf")

``seqrob report`` is :func:`render_report` from the command line; ``seqrob demo`` trains
the embedded default, analyses it and renders the report (:func:`seqrob.report.demo.demo`).
The report reuses a stored analysis whose parameters and data match, and runs
:func:`seqrob.analysis.analyze` only when there is none. Its page 1 and the terminal
word the same stored findings (:mod:`seqrob.report.findings`).
"""

__all__ = ["Report", "build_report", "render_report"]


def __getattr__(name: str):
    # Lazy: the report stack (reportlab, matplotlib) loads only when a report is built.
    if name in __all__:
        from seqrob.report import render

        return getattr(render, name)
    raise AttributeError(f"module 'seqrob.report' has no attribute {name!r}")
