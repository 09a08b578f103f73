"""Statistics over stored runs: does task order change accuracy and across-seed variance?

``significance(warehouse, ...)`` (the ``seqrob analyze significance`` command) runs every
test and returns seqrob's tidy result table; the modules hold one topic each:
:mod:`~seqrob.analysis.mixed` (crossed mixed model), :mod:`~seqrob.analysis.bootstrap`
(paired hierarchical bootstrap), :mod:`~seqrob.analysis.permutation` (sign-flip and
seed-level tests for few seeds), :mod:`~seqrob.analysis.variance`,
:mod:`~seqrob.analysis.aso`, :mod:`~seqrob.analysis.power`.
"""

from seqrob.analysis.results import COLUMNS, result_frame
from seqrob.analysis.significance import Significance, analyze, power_table, significance

__all__ = ["COLUMNS", "result_frame", "Significance", "analyze", "power_table", "significance"]
