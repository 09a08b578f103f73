"""What an analysis found: one row per task x metric x family x factor x comparison x question.

The findings are computed once, from the adjusted result rows, the design and the
power table, and stored with the analysis (``analysis_findings``). The terminal, the
PDF, the HTML report and the notebook only format them
(:mod:`seqrob.report.findings`), so they cannot disagree.

Columns (:data:`COLUMNS`)
-------------------------
``label, method, task, metric``
    The analysed group (``label`` is how it is named to a reader).
    ``method`` is the training method the order findings are about; empty for the
    findings that compare methods.
``family``
    The language family; empty for a finding over all languages.
``factor``
    What changes: ``"order"`` (the order of intermediate tasks, within one method),
    ``"method"`` (the training method, averaged over the orders) or ``"order x method"``
    (whether an order difference depends on the method); see
    :mod:`seqrob.analysis.methods`.
``question``
    ``"score"``: does the factor change the family's mean score? ``"spread"``: does it
    change the across-seed spread (SD)?
``comparison``
    What is compared: a pair ``"a vs b"`` of orders or methods (estimate: ``a`` minus
    ``b``, or the SD of ``a`` over the SD of ``b``), ``"all orders"`` (the test over every
    order), ``"order x family"`` (does order's effect differ between families), or for
    ``order x method`` ``"a vs b: m vs n"`` (the order difference ``a - b`` under method
    ``m`` minus under ``n``).
``estimate, ci_low, ci_high, confidence, interval``
    The estimate in the metric's own units (a difference of proportions for accuracy),
    its interval, the interval's level and what produced it.
``test, p_value, p_adjusted, correction, n_corrected``
    The result row behind the finding and how its p-value was corrected.
``status``
    ``"found"`` (adjusted p < alpha), ``"no evidence"`` (a valid test did not reject) or
    ``"cannot tell"`` (the design cannot support a test: too few seeds or orders, or a
    permutation test whose smallest attainable p is above its Holm threshold).
``reason``
    Why, in words, for a reader.
``seeds``
    The fewest seeds any order has.
``alpha``
    The level a ``found`` was judged at.
``seeds_needed, effect``
    When nothing was found: seeds per order for 80% power to detect ``effect`` (a
    difference in metric units for ``score``; an SD ratio for ``spread``), from the
    family's own seed-to-seed noise (:func:`seqrob.analysis.power.family_power`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from seqrob.analysis.multiplicity import CORRECTION_NAMES
from seqrob.analysis.results import typed_frame
from seqrob.warehouse.schema import FINDING_COLUMNS

__all__ = ["COLUMNS", "FOUND", "NO_EVIDENCE", "CANNOT_TELL", "STATUSES", "FACTORS", "build", "build_methods",
           "finding_frame"]

COLUMNS = FINDING_COLUMNS
FOUND, NO_EVIDENCE, CANNOT_TELL = "found", "no evidence", "cannot tell"
STATUSES = (FOUND, NO_EVIDENCE, CANNOT_TELL)
ALL_ORDERS, ORDER_X_FAMILY, ALL_METHODS = "all orders", "order x family", "all methods"
ORDER, METHOD, ORDER_X_METHOD = "order", "method", "order x method"
FACTORS = (ORDER, METHOD, ORDER_X_METHOD)
_TEXT = ("label", "method", "task", "metric", "family", "factor", "question", "comparison", "interval", "test",
         "correction", "status", "reason")  # fmt: skip


def finding_frame(rows=()) -> pd.DataFrame:
    """Rows (dicts) as a findings DataFrame with exactly :data:`COLUMNS`, typed."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    return typed_frame(frame, COLUMNS, text=_TEXT)


def build(
    results: pd.DataFrame,
    design: dict,
    power: pd.DataFrame,
    *,
    label: str,
    method: str,
    task: str,
    metric: str,
    families: list[str],
    alpha: float,
    effect: float,
    sd_ratio: float = 2.0,
) -> pd.DataFrame:
    """The findings of one analysed group (see the module docstring for the columns).

    Parameters
    ----------
    results
        The group's adjusted result rows (:func:`seqrob.analysis.multiplicity.adjust`).
    design
        The group's design (orders, ``seeds_per_order``, ``paired_seeds``).
    power
        :func:`seqrob.analysis.power.family_power`'s table (may be empty).
    families
        The group's families, in the order findings are listed.
    """
    seeds = int(min(design["seeds_per_order"].values()))
    base = dict(label=label, method=method, task=task, metric=metric, factor=ORDER, seeds=seeds, alpha=alpha)
    rows: list[dict] = []
    contrasts = results[(results["test"] == "contrast") & results["family"].notna()]
    if contrasts.empty:
        why = _why_untested(design, seeds)
        for family in families:
            rows.append({**base, "family": family, "question": "score", "comparison": ALL_ORDERS,
                         "status": CANNOT_TELL, "reason": why})  # fmt: skip
        return finding_frame(rows)
    need = power.set_index("family") if len(power) else pd.DataFrame()
    for test, comparison in (("order_anova", ALL_ORDERS), ("order_family_anova", ORDER_X_FAMILY)):
        for r in results[results["test"] == test].itertuples():
            # An omnibus test has a statistic, not an order difference: no estimate.
            rows.append({**base, **_tested(r, alpha), "family": None, "question": "score", "comparison": comparison,
                         "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan})  # fmt: skip
    floor = _permutation_floor(design)
    orders = design["orders"]
    for family in [None] + list(families):
        for r in _family_rows(contrasts, family).itertuples():
            rows.append(_score(base, r, alpha, family, need, effect))
        spread = _family_rows(results[results["test"] == "variance"], family)
        if len(orders) == 2:  # the test over all orders is the pair's test: one finding
            spread = spread[spread["term"] != "order"]
        for r in spread.itertuples():
            rows.append(_spread(base, r, alpha, family, ALL_ORDERS, floor, need, sd_ratio))
    return finding_frame(rows)


def _score(base: dict, r, alpha: float, family, need: pd.DataFrame, effect: float) -> dict:
    """A contrast's score finding, with the seeds power needs where nothing was found."""
    row = {**base, **_tested(r, alpha), "family": family, "question": "score", "comparison": r.term}
    if row["status"] != FOUND and family in need.index:
        row.update(seeds_needed=_count(need.loc[family, "seeds_needed"]), effect=effect)
    return row


def _spread(base: dict, r, alpha: float, family, over_all: str, floor: float, need: pd.DataFrame,
            sd_ratio: float) -> dict:  # fmt: skip
    """A permutation variance test's spread finding: ``cannot tell`` when its smallest
    possible p (``floor``) is above its Holm threshold; seeds power needs where nothing was found."""
    row = {**base, **_tested(r, alpha), "family": family, "question": "spread",
           "comparison": over_all if r.term == "order" else r.term}  # fmt: skip
    threshold = alpha / max(1.0, r.n_corrected) if np.isfinite(r.n_corrected) else alpha
    if row["status"] != FOUND and floor > threshold:
        row.update(status=CANNOT_TELL, reason=(
            f"with {base['seeds']} seeds the permutation test of spread cannot reach p < {threshold:.3g} (its "
            f"smallest possible p is {floor:.3g})"))  # fmt: skip
    if row["status"] != FOUND and family in need.index and "seeds_needed_variance" in need.columns:
        row.update(seeds_needed=_count(need.loc[family, "seeds_needed_variance"]), effect=sd_ratio)
    return row


def build_methods(
    results: pd.DataFrame,
    design: dict,
    power: pd.DataFrame,
    *,
    label: str,
    task: str,
    metric: str,
    families: list[str],
    alpha: float,
    effect: float,
    sd_ratio: float = 2.0,
) -> pd.DataFrame:
    """The findings of one task x metric's comparison of methods (:mod:`seqrob.analysis.methods`).

    Per family: ``method`` x ``score`` (the method contrast), ``method`` x ``spread``
    (the SD ratio between methods) and ``order x method`` x ``score`` (one row per pair
    of orders). ``design`` holds ``methods``, ``orders``, ``seeds`` (the seeds run with
    every order under every method) and ``paired_seeds``; ``power`` is
    :func:`~seqrob.analysis.power.family_power`'s table on the order-averaged scores.
    """
    from seqrob.analysis.methods import METHOD_CONTRAST, METHOD_VARIANCE, ORDER_METHOD_CONTRAST

    seeds = int(design["seeds"])
    base = dict(label=label, method=None, task=task, metric=metric, seeds=seeds, alpha=alpha)
    contrasts = results[results["test"] == METHOD_CONTRAST]
    if contrasts.empty:
        why = (f"{seeds} seed(s) run with every order under every method: the methods cannot be told apart from "
               "seed noise with fewer than 2 (3 or more to test usefully)")  # fmt: skip
        comparison = " vs ".join(design["methods"][::-1])
        return finding_frame([{**base, "family": family, "factor": METHOD, "question": "score",
                               "comparison": comparison, "status": CANNOT_TELL, "reason": why}
                              for family in families])  # fmt: skip
    need = power.set_index("family") if len(power) else pd.DataFrame()
    floor = _permutation_floor({"seeds_per_order": {m: seeds for m in design["methods"]}, "paired_seeds": True})
    rows: list[dict] = []
    for family in [None] + list(families):
        method = {**base, "factor": METHOD}
        for r in _family_rows(contrasts, family).itertuples():
            rows.append(_score(method, r, alpha, family, need, effect))
        for r in _family_rows(results[results["test"] == METHOD_VARIANCE], family).itertuples():
            rows.append(_spread(method, r, alpha, family, ALL_METHODS, floor, need, sd_ratio))
        for r in _family_rows(results[results["test"] == ORDER_METHOD_CONTRAST], family).itertuples():
            rows.append({**base, **_tested(r, alpha), "family": family, "factor": ORDER_X_METHOD, "question": "score",
                         "comparison": r.term})  # fmt: skip
    return finding_frame(rows)


def _family_rows(rows: pd.DataFrame, family: str | None) -> pd.DataFrame:
    return rows[rows["family"].isna()] if family is None else rows[rows["family"] == family]


def _tested(r, alpha: float) -> dict:
    """The columns a finding copies from its result row, and its status."""
    row = dict(estimate=r.estimate, ci_low=r.ci_low, ci_high=r.ci_high, confidence=r.confidence, interval=r.interval,
               test=r.test, p_value=r.p_value, p_adjusted=r.p_adjusted, correction=r.correction,
               n_corrected=r.n_corrected)  # fmt: skip
    if not np.isfinite(r.p_adjusted):
        return {**row, "status": CANNOT_TELL, "reason": "no p-value: the test could not be computed on these runs"}
    corrected = f"{CORRECTION_NAMES.get(r.correction, r.correction)}-adjusted over {int(r.n_corrected)} test{'s' if r.n_corrected != 1 else ''}"
    if r.p_adjusted < alpha:
        return {**row, "status": FOUND, "reason": f"p = {r.p_adjusted:.2g} < {alpha:g} ({corrected})"}
    return {**row, "status": NO_EVIDENCE, "reason": f"p = {r.p_adjusted:.2g} >= {alpha:g} ({corrected})"}


def _why_untested(design: dict, seeds: int) -> str:
    if len(design["orders"]) < 2:
        return f"one order only ({design['orders'][0]}): there is nothing to compare"
    return (f"{seeds} seed(s) for some order: order cannot be told from seed noise with fewer than 2 seeds per order "
            "(3 or more to test usefully)")  # fmt: skip


def _permutation_floor(design: dict) -> float:
    """The smallest p-value the permutation test of spread can reach on this design.

    Its statistic does not change when the orders' names are permuted, so with ``k``
    orders paired over ``S`` seeds there are ``(k!)^(S - 1)`` distinct relabellings
    (``1 / that`` is the smallest p); unpaired, ``N! / (k! prod n_i!)``.
    """
    counts = list(design["seeds_per_order"].values())
    k = len(counts)
    if design.get("paired_seeds", False):
        return float(math.factorial(k) ** -(min(counts) - 1))
    log_count = math.lgamma(sum(counts) + 1) - math.lgamma(k + 1) - sum(math.lgamma(n + 1) for n in counts)
    return float(math.exp(-log_count))


def _count(value) -> float:
    return float(value) if value is not None and np.isfinite(value) else np.nan
