"""Which p-values are corrected together, and how: the families of tests of one analysis.

Within one task x metric, every test that answers the same question is one family
(:data:`FAMILIES`): all pairwise contrasts; the order and order x family tests; the
variance tests; and each reference procedure on its own. :func:`adjust` corrects each
family (Holm or Benjamini-Hochberg, via statsmodels) and records how on every row:
``correction`` (the method), ``correction_family`` (the family's tests) and
``n_corrected`` (how many p-values it held) -- pingouin's ``p-corr`` / ``p-adjust``.
"""

from __future__ import annotations

import pandas as pd
from statsmodels.stats.multitest import multipletests

__all__ = ["CORRECTIONS", "CORRECTION_NAMES", "FAMILIES", "adjust"]

#: seqrob's name of a correction -> statsmodels' ``multipletests`` method.
CORRECTIONS = {"holm": "holm", "bh": "fdr_bh"}
#: seqrob's name of a correction -> its name for readers.
CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}

#: Each tuple is one family of tests corrected together, within one task x metric.
FAMILIES = (
    ("contrast",),
    ("order_anova", "order_family_anova"),
    ("lrt_order", "lrt_order_family"),
    ("variance",),
    ("pitman_morgan",),
    ("levene",),
    ("run_variance_lrt",),
    ("signflip_contrast",),
    ("bootstrap_contrast",),
    ("method_contrast",),
    ("method_variance",),
    ("order_method_contrast",),
)

# Rows that are one test reported twice: with two orders the variance test over all
# orders is the pair's test (same statistic and p), so the family counts it once.
_TWIN_KEYS = ["test", "variant", "task", "metric", "family", "statistic", "p_value"]
_TWIN_TESTS = ("variance", "pitman_morgan", "levene")


def adjust(results: pd.DataFrame, *, correction: str) -> pd.DataFrame:
    """``results`` with ``p_adjusted``, ``correction``, ``correction_family`` and ``n_corrected`` filled.

    Parameters
    ----------
    results
        Result rows (:data:`seqrob.analysis.results.COLUMNS`) of one or more task x metric.
    correction
        ``"holm"`` (family-wise error) or ``"bh"`` (false discovery rate).

    Notes
    -----
    A bootstrap contrast is reported with two interval types; its p-value is counted once
    per term and family (the first row). A twin (see ``_TWIN_KEYS``) gets its first
    copy's adjusted p-value and is not counted again.
    """
    results = results.copy()
    twins = results.duplicated(_TWIN_KEYS) & results["test"].isin(_TWIN_TESTS)
    repeats = results.duplicated(["test", "term", "task", "metric", "family"]) & (results["test"] == "bootstrap_contrast")
    for tests in FAMILIES:
        for (task, metric), _ in results.groupby(["task", "metric"], dropna=False):
            member = results["test"].isin(tests) & results["p_value"].notna()
            member &= (results["task"] == task) & (results["metric"] == metric)
            counted = member & ~twins & ~repeats
            n = int(counted.sum())
            if n == 0:
                continue
            results.loc[counted, "p_adjusted"] = multipletests(
                results.loc[counted, "p_value"].to_numpy(), method=CORRECTIONS[correction]
            )[1]
            copies = member & (twins | repeats)
            if copies.any():
                keys = _TWIN_KEYS if twins[copies].any() else ["test", "term", "task", "metric", "family"]
                first = results.where(counted).groupby([results[k] for k in keys], dropna=False)["p_adjusted"]
                results.loc[copies, "p_adjusted"] = first.transform("first")[copies]
            results.loc[member, "correction"] = correction
            results.loc[member, "correction_family"] = " + ".join(tests)
            results.loc[member, "n_corrected"] = n
    return results
