"""Statistics over stored runs: does task order change accuracy and across-seed variance?

``analyze(warehouse, ...)`` (the ``seqrob analyze significance`` command) runs every
test and returns a :class:`Significance`: findings, tidy result rows, power. One module
per topic: :mod:`~seqrob.analysis.procedures` (which tests run),
:mod:`~seqrob.analysis.multiplicity` (which p-values are corrected together),
:mod:`~seqrob.analysis.findings` (what was found), :mod:`~seqrob.analysis.mixed`
(crossed mixed model), :mod:`~seqrob.analysis.bootstrap` (paired hierarchical
bootstrap), :mod:`~seqrob.analysis.permutation` (seed-level t, sign-flip),
:mod:`~seqrob.analysis.anova`, :mod:`~seqrob.analysis.variance`,
:mod:`~seqrob.analysis.aso`, :mod:`~seqrob.analysis.power`,
:mod:`~seqrob.analysis.calibrate`.
"""

from seqrob.analysis.options import Options
from seqrob.analysis.results import COLUMNS, result_frame
from seqrob.analysis.significance import Significance, analyze, power_table

__all__ = ["COLUMNS", "Options", "result_frame", "Significance", "analyze", "power_table"]
