"""seqrob's one vocabulary of result columns, used by every test, the console, the JSON
file, the warehouse's ``analysis_results`` table and the report.

Every statistics function returns a DataFrame with exactly :data:`COLUMNS`:

``test``
    What was tested: ``lrt_order`` (order main effect), ``lrt_order_family`` (order x
    family), ``contrast`` (pairwise order difference within a family), ``variance``
    (order's effect on across-seed spread), ``aso`` (almost stochastic order), and
    descriptive rows such as ``emmean``, ``bootstrap_mean``, ``sd``, ``sd_ratio``.
``term``
    The thing estimated: an order pair ``"nli>qa vs none"``, an order, a model term.
``task``, ``metric``, ``family``
    Where. ``family`` is empty for tests over all families.
``estimate``, ``ci_low``, ``ci_high``
    In the metric's own units (a difference of proportions for accuracy), never rounded.
``statistic``, ``df``
    The test statistic (chi-square, z, t, F, W, epsilon_min, ...) and its degrees of freedom.
``p_value``, ``p_adjusted``
    Unadjusted and adjusted (Holm or Benjamini-Hochberg over the family of tests named in
    ``method``) p-values.
``n``
    The number of independent units behind the row (seeds, runs), not of scores.
``method``
    How, for a reader: the model or resampling scheme and what it assumes. No code reads
    it back: every fact code needs is one of the columns below.
``interval``
    What produced ``ci_low, ci_high`` (:data:`INTERVALS`), e.g. ``"paired t over seeds"``,
    ``"BCa bootstrap"``, ``"permutation test inversion"``; empty when there is no interval.
``confidence``
    The interval's level (``0.95`` for a 95% interval).
``variant``
    Which version of the test, where there are several (``"paired"``, ``"Welch"``,
    ``"Brown-Forsythe"``, ``"Levene"``, ``"percentile"``, ``"BCa"``, ...).
``correction``, ``correction_family``, ``n_corrected``
    How ``p_adjusted`` was made: the method (``"holm"`` or ``"bh"``), the family of tests
    corrected together (its tests' names, e.g. ``"contrast"``) and how many p-values it
    holds (pingouin's ``p-corr`` / ``p-adjust`` style).
``label``
    The analysed group the row belongs to (as :mod:`seqrob.analysis.findings` names it:
    ``"topic accuracy (prompt)"``, or ``"topic accuracy: methods"`` for the comparison of
    methods); filled by :func:`seqrob.analysis.significance.analyze`.

The method questions (:mod:`seqrob.analysis.methods`) add the tests ``method_contrast``,
``method_variance`` (with descriptive ``method_sd`` rows) and ``order_method_contrast``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from seqrob.warehouse.schema import RESULT_COLUMNS

__all__ = ["COLUMNS", "records", "result_frame", "typed_frame"]

COLUMNS = RESULT_COLUMNS
_TEXT = ("test", "term", "task", "metric", "family", "method", "interval", "variant", "correction", "correction_family",
         "label")  # fmt: skip


def result_frame(rows: Iterable[Mapping[str, object]] | pd.DataFrame = ()) -> pd.DataFrame:
    """Rows (dicts) as a DataFrame with exactly :data:`COLUMNS`, in order, typed.

    Missing keys become empty (None for text, NaN for numbers); unknown keys are an error,
    so that no function drifts from the vocabulary.
    """
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    extra = [c for c in frame.columns if c not in COLUMNS]
    if extra:
        raise ValueError(f"result columns outside seqrob's vocabulary: {extra}")
    return typed_frame(frame, COLUMNS, text=_TEXT)


def typed_frame(frame: pd.DataFrame, columns: Sequence[str], *, text: Sequence[str]) -> pd.DataFrame:
    """``frame`` with exactly ``columns`` in order: ``text`` ones as objects (None when
    empty), the others as floats (NaN when empty); missing columns are added empty."""
    frame = frame.copy()
    for name in columns:
        if name not in frame.columns:
            frame[name] = None if name in text else np.nan
    frame = frame[list(columns)]
    for name in columns:
        if name in text:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
        else:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return frame.reset_index(drop=True)


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts at full double precision (NaN and infinities become None).

    ``DataFrame.to_json`` rounds to 10 significant digits by default (15 at most), so a
    p-value of 1e-12 would be written as 0.0; Python's ``json`` writes ``repr(float)``,
    which round-trips exactly.
    """
    out = []
    for row in frame.to_dict(orient="records"):
        clean = {}
        for key, value in row.items():
            if isinstance(value, (np.integer,)):
                value = int(value)
            elif isinstance(value, (float, np.floating)):
                value = float(value) if np.isfinite(value) else None
            elif isinstance(value, (np.bool_,)):
                value = bool(value)
            elif value is pd.NaT or (not isinstance(value, (list, dict, str)) and pd.isna(value)):
                value = None
            clean[str(key)] = value
        out.append(clean)
    return out
