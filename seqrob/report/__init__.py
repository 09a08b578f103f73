"""The robustness report: what a warehouse's runs say about task order, as a PDF (and HTML).

>>> from seqrob.report import render_report
>>> from seqrob.warehouse import Warehouse
>>> with Warehouse("results.duckdb") as wh:              # doctest: +SKIP
...     render_report(wh, out="reports/robustness.pdf")

``seqrob report`` is this from the command line; ``seqrob demo`` trains the embedded
default, analyses it and renders the report (:func:`seqrob.report.demo.demo`).
The report reuses a stored analysis whose parameters and data match, and runs
:func:`seqrob.analysis.analyze` only when there is none.
"""

from seqrob.report.render import Report, build_report, render_report

__all__ = ["Report", "build_report", "render_report"]
