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
    How: the model or resampling scheme, the interval type, the correction and its family.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "records", "result_frame"]

COLUMNS = (
    "test",
    "term",
    "task",
    "metric",
    "family",
    "estimate",
    "ci_low",
    "ci_high",
    "statistic",
    "df",
    "p_value",
    "p_adjusted",
    "n",
    "method",
)
_TEXT = ("test", "term", "task", "metric", "family", "method")


def result_frame(rows: Iterable[Mapping[str, object]] | pd.DataFrame = ()) -> pd.DataFrame:
    """Rows (dicts) as a DataFrame with exactly :data:`COLUMNS`, in order, typed.

    Missing keys become empty (None for text, NaN for numbers); unknown keys are an error,
    so that no function drifts from the vocabulary.
    """
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    extra = [c for c in frame.columns if c not in COLUMNS]
    if extra:
        raise ValueError(f"result columns outside seqrob's vocabulary: {extra}")
    for name in COLUMNS:
        if name not in frame.columns:
            frame[name] = None if name in _TEXT else np.nan
    frame = frame[list(COLUMNS)]
    for name in COLUMNS:
        if name in _TEXT:
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
