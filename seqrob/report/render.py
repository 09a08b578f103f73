"""``render_report``: find or run the analysis, build the report, write the PDF (and HTML)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from seqrob.analysis import Options, Significance
from seqrob.report.document import Block, Figure, write_html, write_pdf
from seqrob.report.sources import Inputs, gather

__all__ = ["Report", "build_report", "render_report", "DEFAULT_OUT"]

DEFAULT_OUT = Path("reports") / "robustness.pdf"


@dataclass
class Report:
    """A built report: its blocks and the inputs they came from; write it with :meth:`write`."""

    blocks: list[Block]
    inputs: Inputs
    seconds_analysis: float = 0.0

    @property
    def title(self) -> str:
        return f"seqrob robustness report: {self.inputs.experiment or 'all experiments'}"

    @property
    def reused(self) -> bool:
        """Whether every analysis behind the report was found stored (none had to run)."""
        return all(record.reused for record in self.inputs.analyses)

    def write(self, out: str | Path = DEFAULT_OUT, *, html: bool = True) -> Path:
        """Write the PDF to ``out`` (and the same report as HTML beside it); return the PDF's path."""
        from seqrob import __version__

        out = Path(out)
        footer = f"seqrob {__version__} \u00b7 {self.inputs.experiment or 'all experiments'} \u00b7 {Path(self.inputs.path).name}"
        write_pdf(self.blocks, out, title=self.title, footer=footer,
                  metadata={"subject": "Does the order of intermediate tasks matter?"})  # fmt: skip
        if html:
            write_html(self.blocks, out.with_suffix(".html"), title=self.title)
        return out

    @property
    def figures(self) -> list[Figure]:
        """The report's figures in order (``.figure`` is the matplotlib figure, ``.caption`` its caption)."""
        return [block for block in self.blocks if isinstance(block, Figure)]

    def text(self) -> str:
        """The report's words, blocks in order (for tests and quick looks)."""
        from seqrob.report.document import Heading, Table, Text

        lines = []
        for block in self.blocks:
            if isinstance(block, (Heading, Text)):
                lines.append(block.text)
            elif isinstance(block, Table):
                lines.append(" | ".join(block.header))
                lines.extend(" | ".join(map(str, row)) for row in block.rows)
            elif isinstance(block, Figure):
                lines.append(block.caption)
        return "\n".join(lines)


def build_report(
    warehouse,
    options: Options | None = None,
    *,
    reanalyze: bool = False,
    calibration=None,
    analysis: Significance | None = None,
    **overrides,
) -> Report:
    """Build the report's blocks (figures drawn, nothing written).

    ``options`` (:class:`seqrob.analysis.Options`, or keyword ``overrides`` such as
    ``alpha=0.1``): a stored analysis with exactly these options over the current data
    is reused, else one is run (and stored, when the warehouse is writable).
    ``reanalyze`` runs it even when one is stored; ``analysis`` reports that analysis
    (of this warehouse) as it is. ``calibration``: see :func:`render_report`.
    """
    from seqrob.report.sections import build

    began = time.perf_counter()
    options = Options.of(options, **overrides) if analysis is None else analysis.options
    inputs = gather(warehouse, options, reanalyze=reanalyze, calibration=calibration, analysis=analysis)
    analysed = time.perf_counter() - began
    return Report(blocks=build(inputs), inputs=inputs, seconds_analysis=analysed)


def render_report(
    warehouse,
    out: str | Path = DEFAULT_OUT,
    options: Options | None = None,
    *,
    html: bool = True,
    reanalyze: bool = False,
    calibration=None,
    analysis: Significance | None = None,
    **overrides,
) -> Path:
    """Render the robustness report of the warehouse's runs as a PDF; return its path.

    Parameters
    ----------
    warehouse
        A :class:`seqrob.warehouse.Warehouse` (read-only is fine when a matching analysis
        is stored; otherwise the fresh analysis is used without being stored).
    out
        The PDF to write (default ``reports/robustness.pdf``); its folder is created.
    options, **overrides
        The analysis options (:class:`seqrob.analysis.Options`; keywords ``task``,
        ``metric``, ``experiment``, ``method``, ``baseline``, ``alpha``, ``correction``,
        ``n_boot``, ``seed``, ``effect`` override single fields). With several methods
        stored and no ``method``, each method gets its own analysis and sections.
    html
        Also write the same report as ``<out>.html`` (self-contained, SVG figures).
    reanalyze
        Run the analysis even if a matching one is stored.
    calibration
        The calibration table shown in the Methods section: a DataFrame from
        :func:`seqrob.analysis.calibrate.calibrate` or the CSV that ``seqrob analyze
        calibrate --out`` writes; default: the table shipped with seqrob, if any.
    analysis
        Report this analysis of ``warehouse`` (``seqrob.analyze(...).report()`` does).

    Returns
    -------
    pathlib.Path
        The PDF.

    Raises
    ------
    seqrob.warehouse.errors.DesignError
        The warehouse holds no finished runs, or several experiments and none was chosen.
    seqrob.warehouse.errors.InputError
        A filter names nothing stored, or an analysis option is out of range.
    """
    report = build_report(warehouse, options, reanalyze=reanalyze, calibration=calibration, analysis=analysis,
                          **overrides)  # fmt: skip
    return report.write(out, html=html)
