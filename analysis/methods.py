"""Does the training method change the answer? The method questions, tested over seeds.

With several training methods stored for one task x metric (fine-tuning and prompt
tuning run on the same orders and seeds), three questions per language family:

``method`` (:data:`METHOD_CONTRAST`)
    Does the method change the family's mean score? For each seed, the difference of
    the two methods' family means, averaged over the orders (each order counts once,
    whatever its effect); a paired t over seeds (S - 1 df).
``spread`` (:data:`METHOD_VARIANCE`)
    Does the method change the across-seed spread? The seed-to-seed SD of each method's
    order-averaged family score; a permutation test of the method labels within seeds
    (the order tests' variance test, :mod:`seqrob.analysis.variance`), estimate the
    SD ratio with the inverted test's interval.
``order x method`` (:data:`ORDER_METHOD_CONTRAST`)
    Does order's effect depend on the method? For each pair of orders ``a vs b`` and
    each seed, ``(a - b)`` under one method minus ``(a - b)`` under the other; a paired
    t over seeds.

Every test is over seeds, the unit of replication: a seed fixes what all its pipelines
share (data order, initialisations), so the per-seed differences are independent
however the seed's luck carries across orders and methods, and each family is tested
on its own noise. Only seeds run with every order under every method are used. The
tests are those of the order questions (:func:`seqrob.analysis.permutation.seed_t_test`,
:func:`seqrob.analysis.variance.variance_tests`) applied to derived scores whose
``order`` column is the method; :func:`method_tests` renames their rows so that each
question is its own family of corrected tests (:mod:`seqrob.analysis.multiplicity`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from seqrob.analysis import permutation, variance
from seqrob.analysis.design import order_list
from seqrob.analysis.procedures import quiet
from seqrob.analysis.results import result_frame

__all__ = [
    "BASELINE_METHOD",
    "METHOD_CONTRAST",
    "METHOD_VARIANCE",
    "ORDER_METHOD_CONTRAST",
    "complete_seeds",
    "method_list",
    "method_scores",
    "interaction_scores",
    "method_tests",
]

#: The reference method: listed first, so contrasts read ``other vs finetune`` (other minus it).
BASELINE_METHOD = "finetune"
METHOD_CONTRAST, METHOD_VARIANCE, ORDER_METHOD_CONTRAST = "method_contrast", "method_variance", "order_method_contrast"
_KEYS = ["task", "metric", "language", "family"]


def method_list(data: pd.DataFrame) -> list[str]:
    """The methods as every table lists them: ``finetune`` first when stored, then by name."""
    return order_list(data.assign(order=data["method"]), BASELINE_METHOD)


def complete_seeds(data: pd.DataFrame) -> list:
    """The seeds run with every order under every method (the only ones the method tests use)."""
    cells = data.groupby("seed")[["method", "order"]].apply(lambda g: len(set(zip(g["method"], g["order"]))))
    full = data["method"].nunique() * data["order"].nunique()
    return sorted(cells.index[cells == full])


def method_scores(data: pd.DataFrame) -> pd.DataFrame:
    """Each method's score averaged over the orders, per seed x language, with ``order`` = the method.

    The frame the ``method`` and ``spread`` questions are tested on: the order tests'
    machinery then compares methods where it compared orders.
    """
    data = data[data["seed"].isin(complete_seeds(data))]
    per_order = data.groupby(["method", "order", "seed", *_KEYS], as_index=False, dropna=False)["score"].mean()
    averaged = per_order.groupby(["method", "seed", *_KEYS], as_index=False, dropna=False)["score"].mean()
    return _as_orders(averaged)


def interaction_scores(data: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Order ``a`` minus order ``b`` per method x seed x language, with ``order`` = the method."""
    data = data[data["seed"].isin(complete_seeds(data))]
    cells = data.groupby(["method", "order", "seed", *_KEYS], as_index=False, dropna=False)["score"].mean()
    wide = cells.pivot_table(index=["method", "seed", *_KEYS], columns="order", values="score", dropna=False)
    difference = (wide[a] - wide[b]).rename("score").reset_index()
    return _as_orders(difference.dropna(subset=["score"]))


def _as_orders(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.rename(columns={"method": "order"})
    frame["run_id"] = frame["order"].astype(str) + "/" + frame["seed"].astype(str)
    return frame


def method_tests(
    data: pd.DataFrame,
    *,
    orders: list[str],
    confidence: float,
    seed: int,
    n_permutations: int = 1999,
    permutation_intervals: bool = True,
) -> tuple[list[pd.DataFrame], list[str]]:
    """The method questions of one task x metric, unadjusted (see the module docstring).

    Parameters
    ----------
    data
        Long scores of one task x metric with a ``method`` column holding 2+ methods.
    orders
        The orders, as the order tests list them (:func:`seqrob.analysis.design.order_list`);
        ``order x method`` compares every pair of them.
    confidence, seed, n_permutations, permutation_intervals
        As in :func:`seqrob.analysis.procedures.run_tests`.

    Returns
    -------
    (frames, notes)
        Result rows (:data:`seqrob.analysis.results.COLUMNS`), tests
        :data:`METHOD_CONTRAST`, :data:`METHOD_VARIANCE` (with the per-method ``sd`` rows
        as ``method_sd``) and :data:`ORDER_METHOD_CONTRAST`; and warnings as sentences.
    """
    methods = method_list(data)
    frames, notes = [], []
    averaged = method_scores(data)
    if averaged["seed"].nunique() < 2:
        return frames, notes
    what = "the per-seed differences of the methods' family means, each averaged over the orders"
    ts, messages = quiet(permutation.seed_t_test, averaged, orders=methods, confidence=confidence, paired=True,
                         overall=False)  # fmt: skip
    notes.extend(messages)
    frames.append(_renamed(ts, {"contrast": METHOD_CONTRAST}, f"; {what}", interval="paired t over seeds",
                           confidence=confidence, variant="paired"))  # fmt: skip
    spread, messages = quiet(variance.variance_tests, averaged, None, orders=methods, confidence=confidence,
                             n_boot=0, seed=seed, n_permutations=n_permutations,
                             permutation_intervals=permutation_intervals, center=(), overall=False)  # fmt: skip
    notes.extend(messages)
    spread = spread[spread["test"].isin(("variance", "sd"))]
    if len(methods) == 2:  # the test over all methods is the pair's test: keep the pair's row
        spread = spread[spread["term"] != "order"]
    frames.append(_renamed(spread, {"variance": METHOD_VARIANCE, "sd": "method_sd"},
                           "; the across-seed SD of each method's family score averaged over the orders",
                           interval="permutation test inversion", confidence=confidence))  # fmt: skip
    for i, a in enumerate(orders):
        for b in orders[:i]:
            differences = interaction_scores(data, a, b)
            if differences["seed"].nunique() < 2:
                continue
            ts, messages = quiet(permutation.seed_t_test, differences, orders=methods, confidence=confidence,
                                 paired=True, overall=False)  # fmt: skip
            notes.extend(messages)
            ts["term"] = f"{a} vs {b}: " + ts["term"]
            frames.append(_renamed(ts, {"contrast": ORDER_METHOD_CONTRAST},
                                   f"; per seed, ({a} - {b}) under one method minus under the other",
                                   interval="paired t over seeds", confidence=confidence,
                                   variant="paired"))  # fmt: skip
    return frames, list(dict.fromkeys(notes))


def _renamed(frame: pd.DataFrame, names: dict[str, str], method: str, *, interval: str, confidence: float,
             variant: str | None = None) -> pd.DataFrame:  # fmt: skip
    """``frame``'s rows of ``names`` renamed, described, with their interval kind and level."""
    frame = result_frame(frame[frame["test"].isin(names)].copy())
    frame["test"] = frame["test"].map(names)
    frame["method"] = frame["method"].fillna("") + method
    with_interval = frame["ci_low"].notna() | frame["ci_high"].notna()
    with_interval &= frame["test"] != "method_sd"
    frame.loc[with_interval, "interval"] = interval
    frame.loc[with_interval, "confidence"] = confidence
    if variant is not None:
        frame["variant"] = variant
    frame.loc[frame["test"] == "method_sd", ["ci_low", "ci_high"]] = np.nan
    return frame
