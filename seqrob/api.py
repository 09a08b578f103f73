"""seqrob's Python API in one call: ``sr.analyze(data)`` on a warehouse or a DataFrame.

>>> import seqrob as sr
>>> runs = sr.simulate(seeds=4, n_examples=20, languages=["de", "fr", "fi", "et"], seed=1)
>>> result = sr.analyze(runs.scores, n_boot=1000)
>>> sorted(result.findings["status"].unique())
['cannot tell', 'no evidence']
>>> result.findings.columns[:7].tolist()
['label', 'method', 'task', 'metric', 'family', 'factor', 'question']

``seqrob analyze significance`` is :func:`analyze` on a warehouse file; ``seqrob report``
is :meth:`Result.report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from seqrob.analysis import Options, Significance
from seqrob.analysis import analyze as analyze_warehouse
from seqrob.warehouse import Warehouse

__all__ = ["Result", "analyze"]


@dataclass(repr=False)
class Result(Significance):
    """An analysis (:class:`seqrob.analysis.Significance`) that can also render itself.

    ``findings``, ``results``, ``power``, ``to_json()`` as :class:`Significance`;
    :meth:`verdicts` and :meth:`table` word the findings as the terminal and page 1 of
    the report do; :meth:`report` writes the PDF.
    """

    warehouse: Warehouse | None = None

    def verdicts(self) -> list[str]:
        """The findings as sentences, as the terminal and page 1 of the report say them."""
        from seqrob.report.findings import statements

        return statements(self.findings)

    def table(self, label: str | None = None) -> pd.DataFrame:
        """The verdict table of one analysed group (default: the first), as strings."""
        from seqrob.report.findings import verdict_table

        labels = list(dict.fromkeys(self.findings["label"]))
        return verdict_table(self.findings[self.findings["label"] == (label or labels[0])])

    def build_report(self):
        """This analysis's robustness report, built but not written (:class:`seqrob.report.Report`:
        ``.figures``, ``.text()``, ``.write(path)``)."""
        from seqrob.report import build_report

        return build_report(self.warehouse, analysis=self)

    def report(self, out: str | Path = Path("reports") / "robustness.pdf", *, html: bool = True) -> Path:
        """Write this analysis's robustness report (PDF, and HTML beside it); return the PDF's path."""
        return self.build_report().write(out, html=html)

    def __repr__(self) -> str:
        counts = self.findings["status"].value_counts()
        said = ", ".join(f"{counts[s]} {s}" for s in ("found", "no evidence", "cannot tell") if s in counts)
        labels = ", ".join(dict.fromkeys(self.findings["label"]))
        return f"<seqrob analysis {self.analysis_id} of {labels}: {len(self.findings)} findings ({said})>"

    def _repr_html_(self) -> str:  # the notebook shows the verdict tables
        from seqrob.report.findings import table_title, verdict_table

        parts = []
        for _, found in self.findings.groupby("label", sort=False):
            parts.append(f"<p><b>{table_title(found)}</b></p>" + verdict_table(found).to_html(index=False))
        return "".join(parts)


def analyze(
    data: Warehouse | pd.DataFrame,
    options: Options | None = None,
    *,
    predictions: pd.DataFrame | None = None,
    families: str | Path | None = None,
    store: bool = True,
    **overrides,
) -> Result:
    """Does task order change accuracy or across-seed variance? Findings, results and power.

    Parameters
    ----------
    data
        A :class:`~seqrob.warehouse.Warehouse`, or a tidy DataFrame of scores in seqrob's
        long format (``experiment, order, seed, task, language, metric, score``; see the
        README's data contract), checked as ``seqrob ingest`` checks a file.
    options
        :class:`~seqrob.analysis.Options`; keyword ``overrides`` (``alpha=0.1``,
        ``baseline="none"``, ``n_boot=2000``, ...) replace single fields.
    predictions
        With a DataFrame: per-example outcomes of the same runs (optional).
    families
        With a DataFrame: a CSV of ``language,family`` overriding seqrob's language metadata.
    store
        Store the analysis in the warehouse (a DataFrame's lives in memory).

    Returns
    -------
    Result
    """
    if isinstance(data, pd.DataFrame):
        warehouse = Warehouse(":memory:")
        warehouse.ingest_frames(scores=data, predictions=predictions, source="DataFrame", families=families)
    elif isinstance(data, Warehouse):
        warehouse = data
    else:
        from seqrob.warehouse.errors import InputError

        raise InputError(f"cannot analyse a {type(data).__name__}", fix="pass a seqrob.Warehouse or a DataFrame of scores")
    outcome = analyze_warehouse(warehouse, options, store=store, **overrides)
    return Result(**vars(outcome), warehouse=warehouse)
