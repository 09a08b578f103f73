"""The design of one analysed group, and the rules every analysis step shares.

One home for: which orders are compared and in what order (:func:`order_list`), when
seeds pair the orders (:func:`paired`), what counts as few seeds (:data:`FEW_SEEDS`),
and the design summary stored with an analysis (:func:`describe`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["FEW_SEEDS", "describe", "order_list", "paired"]

#: At or below this many seeds per order, intervals over seeds come from the t / exact
#: sign-flip tests and the bootstrap rows are descriptive.
FEW_SEEDS = 5


def order_list(data: pd.DataFrame, baseline: str = "none") -> list[str]:
    """The orders as every table lists them: ``baseline`` first when stored, then the rest by name.

    Every pair of these orders is compared (``a vs b``: ``a`` minus ``b``, ``a`` later in
    this list), so a design without the baseline compares all its pairs.
    """
    orders = list(dict.fromkeys(data["order"]))
    return ([baseline] if baseline in orders else []) + sorted(o for o in orders if o != baseline)


def paired(data: pd.DataFrame, orders: Sequence[str]) -> bool:
    """Orders share seeds (2+ seeds run with every order): the seed pairs them."""
    seed_sets = [set(data.loc[data["order"] == o, "seed"]) for o in orders]
    return len(set.intersection(*seed_sets)) >= 2 if seed_sets else False


def describe(data: pd.DataFrame, *, baseline: str = "none", per_example: bool = False) -> dict:
    """Orders, seeds per order, pairing, languages per family, runs and scores of one group."""
    orders = order_list(data, baseline)
    seeds = data.groupby("order")["seed"].nunique()
    languages = data.groupby("family")["language"].nunique().to_dict()
    return {
        "orders": orders,
        "baseline": baseline if baseline in orders else None,
        "seeds_per_order": {o: int(seeds[o]) for o in orders},
        "paired_seeds": paired(data, orders),
        "languages_per_family": {k: int(v) for k, v in languages.items()},
        "languages": int(data["language"].nunique()),
        "runs": int(data["run_id"].nunique()),
        "scores": int(len(data)),
        "per_example_outcomes": per_example,
    }
