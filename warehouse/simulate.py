"""Stored runs simulated from a known truth.

:func:`simulate` draws multi-seed, multi-order, multilingual results (scores and
per-example outcomes, in seqrob's long formats) from a generative model whose
every parameter and every drawn random effect is kept in a :class:`Truth`. Tests
use it, the calibration suite measures type-I error and CI coverage against it,
and users plan experiments with it ("how many seeds to see a 2-point order effect
in Uralic?"). :func:`write` stores a simulation as files that ``seqrob ingest``
reads; ``seqrob simulate`` does both from the command line.

By default the model is on the probability scale, so the planted effects are in
the units the analyses report (accuracy); ``scale="logit"`` builds the same sum
on the logit scale (near-ceiling, skewed scores; effects are log-odds shifts).
Options add noise that analyses typically do not assume: run x family effects,
per-family and per-language SDs, heavy-tailed run effects, outlier runs, unequal
seeds per order and missing cells. Several training methods (``methods=["finetune",
"prompt"]``) run every order with the same seeds; method effects, order x method
effects and per-method run SDs can be planted. See :func:`simulate` for the model,
:meth:`Truth.expected_contrasts` for what "the true difference" means and
:meth:`Truth.expected_method_contrasts` for the differences between methods.
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.special import expit, logit, ndtr, ndtri
from scipy.stats import chi2

from seqrob.warehouse.errors import DesignError, InputError

__all__ = [
    "DEFAULT_FAMILIES",
    "DEFAULT_LANGUAGES",
    "DEFAULT_ORDERS",
    "FORMATS",
    "SCALES",
    "Simulation",
    "Truth",
    "parse_effect",
    "parse_method_effect",
    "simulate",
    "write",
]

DEFAULT_ORDERS: tuple[str, ...] = ("none", "nli>qa", "qa>nli")

# Thirty XTREME languages: a large family, several families of two or three, and
# four single-language families (a degenerate case every analysis must survive).
# Families are Glottolog's top-level families; pass ``families=DEFAULT_FAMILIES``
# to simulate without seqrob's language metadata.
DEFAULT_FAMILIES: Mapping[str, str] = {
    "en": "Indo-European", "de": "Indo-European", "fr": "Indo-European",
    "es": "Indo-European", "ru": "Indo-European", "bg": "Indo-European",
    "hi": "Indo-European", "bn": "Indo-European", "ur": "Indo-European",
    "mr": "Indo-European",
    "fi": "Uralic", "et": "Uralic", "hu": "Uralic",
    "ta": "Dravidian", "te": "Dravidian", "ml": "Dravidian",
    "tr": "Turkic", "kk": "Turkic",
    "ar": "Afro-Asiatic", "he": "Afro-Asiatic",
    "zh": "Sino-Tibetan", "my": "Sino-Tibetan",
    "id": "Austronesian", "ms": "Austronesian",
    "sw": "Atlantic-Congo", "yo": "Atlantic-Congo",
    "ja": "Japonic", "ko": "Koreanic", "th": "Tai-Kadai", "vi": "Austroasiatic",
}  # fmt: skip
DEFAULT_LANGUAGES: tuple[str, ...] = tuple(DEFAULT_FAMILIES)

FORMATS = ("parquet", "csv", "jsonl")

ANY_FAMILY = "*"
_DEFAULT_METHOD = "finetune"  # simulate()'s default method
ALL_ORDERS = "*"  # the ``order`` of Truth.expected_method_contrasts rows averaged over every order
_TRUTH_FORMAT = "seqrob-simulation-truth"
# 2: scale, run x family effects, SD multipliers, t tails, outliers, unequal seeds, missing cells
# 3: several methods (methods, method_effects, method_run_sd, a method column in cells)
_TRUTH_VERSION = 3
_TRUTH_VERSIONS = (1, 2, 3)  # versions from_dict reads (1: none of version 2's options; 2: one method)
# Names the layout of the random streams; bump it if a change alters the draws
# that a given ``seed`` produces.
GENERATOR = "seqrob.simulate/1"

# Stream numbers (second word of every SeedSequence spawn key). New draws take new
# numbers, so adding an option never changes the draws of the existing ones.
_STREAM_LANGUAGE, _STREAM_EXAMPLE, _STREAM_SEED = 0, 1, 2
_STREAM_RUN_FAMILY, _STREAM_TAIL, _STREAM_OUTLIER, _STREAM_MISSING = 3, 4, 5, 6
# Run-level draws (outliers, missing cells) hold for every task of a run: their key
# has this value in the task position.
_RUN_LEVEL = 0

SCALES = ("probability", "logit")

_CELL_COLUMNS = (
    "task", "order", "seed", "run_id", "language", "family", "delta",
    "language_effect", "seed_effect", "run_effect", "residual_effect",
    "p_raw", "p", "clipped",
    "family_scale", "run_family_effect", "outlier", "linear_predictor", "missing", "method",
)  # fmt: skip
_CELL_FLOATS = (
    "delta", "language_effect", "seed_effect", "run_effect", "residual_effect", "p_raw", "p",
    "family_scale", "run_family_effect", "linear_predictor",
)  # fmt: skip
_CELL_BOOLS = ("clipped", "outlier", "missing")
_CELL_STRINGS = ("task", "order", "run_id", "language", "family", "method")


# --- the truth --------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Parameters:
    """The resolved parameters of :func:`simulate`: the fields that :class:`Truth` records of them (see there)."""

    orders: tuple[str, ...]
    baseline: str
    seeds: tuple[int, ...]
    languages: tuple[str, ...]
    families: Mapping[str, str]
    tasks: tuple[str, ...]
    effects: tuple[Mapping[str, Any], ...]
    base: float
    language_sd: float
    seed_sd: float
    run_sd: Mapping[str, float]
    residual_sd: float
    n_examples: int
    example_correlation: float
    clip_low: float
    clip_high: float
    outcomes: bool
    metric: str
    experiment: str
    method: str
    seed: int
    scale: str
    run_family_sd: float
    family_sd_scale: Mapping[str, float]
    language_sd_scale: Mapping[str, float]
    run_tail_df: float | None
    outlier_rate: float
    outlier_shift: float
    seeds_per_order: Mapping[str, int]
    missing_cells: float
    methods: tuple[str, ...]
    method_effects: tuple[Mapping[str, Any], ...]
    method_run_sd: Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class _ContrastContext:
    """Lookups shared by the rows of one table of :class:`Truth`'s expected contrasts."""

    families: list[str]  # in the order of their first language
    members: dict[str, list[str]]  # family -> its languages
    delta: pd.Series  # (task, method, order, family) -> planted delta
    mean_p: pd.Series  # (task, method, family, order) -> mean p of the kept cells
    language_effect: pd.Series | None  # (task, language) -> drawn effect; logit scale only
    cache: dict  # expectations already computed


@dataclass(frozen=True, eq=False)
class Truth(_Parameters):
    """Everything a simulation was drawn from: parameters, drawn effects, cell means.

    Attributes
    ----------
    orders, baseline, seeds, languages, families, tasks
        The design. ``families`` maps every language to its family; ``seeds``
        lists every seed value drawn (an order may keep fewer: ``seeds_per_order``).
    effects
        The order effects as given, one dict per key: ``task`` (None = every task),
        ``order``, ``family`` (``"*"`` = every family) and ``delta``, and
        ``method`` for a key that names a method (absent: every method). The
        resolved value for every cell is the ``delta`` column of :attr:`cells`
        (with the method effect added).
    methods
        Every method simulated (``(method,)`` for one); each runs every order
        with the same seed values.
    method
        The label of the runs (one method), or the reference method of several:
        the one :meth:`expected_method_contrasts` compares the others with by
        default and that takes no method effect.
    method_effects
        The method effects as given, one dict per key: ``task`` (None = every
        task), ``method``, ``family`` (``"*"`` = every family) and ``delta``;
        empty for one method.
    method_run_sd
        Method -> order -> run SD: the resolved ``run_sd`` of every method x order.
    base, language_sd, seed_sd, run_sd, residual_sd, n_examples,
    example_correlation, clip_low, clip_high, outcomes, metric, experiment, seed
        The parameters of :func:`simulate`; ``run_sd`` is resolved to one SD per
        order (of the reference method; :attr:`method_run_sd` has every method's).
    scale, run_family_sd, family_sd_scale, language_sd_scale, run_tail_df,
    outlier_rate, outlier_shift, seeds_per_order, missing_cells
        The noise options of :func:`simulate`, resolved: ``family_sd_scale``
        names every family and ``language_sd_scale`` every language (1.0 where
        none was given), ``seeds_per_order`` every order (the number of seed
        values it kept, the first ones of ``seeds``).
    cells
        One row per task x method x order x kept seed x language, run-major
        (method, order, seed, task, language): ``task, order, seed, run_id,
        language, family, delta, language_effect, seed_effect, run_effect,
        residual_effect, p_raw, p, clipped, family_scale, run_family_effect,
        outlier, linear_predictor, missing, method``. ``delta`` is the planted
        effect of the cell: its method effect plus its order effect.
        ``linear_predictor`` is the sum of the terms on the model's scale,
        ``base`` (``logit(base)`` on the logit scale) ``+ language_effect + delta
        + seed_effect + family_scale * run_effect + run_family_effect +
        residual_effect - outlier_shift * outlier``; ``run_effect`` is the run's
        draw (the same in all its cells) and ``family_scale`` the family's
        multiplier of it. ``p_raw`` is the probability before clipping (the
        linear predictor on the probability scale, its inverse logit on the
        logit scale), ``p`` the clipped value and the expected score of the cell
        given the drawn effects (the mean over examples and outcome draws);
        ``clipped`` says whether clipping changed it (never on the logit scale).
        ``outlier`` marks every cell of an outlier run. ``missing`` marks the
        cells dropped from ``scores`` and ``predictions``; the other rows are
        the rows of ``scores``, in the same order.
    n_clipped
        Number of cells whose ``p_raw`` fell outside ``[clip_low, clip_high]``.
    generator
        Version of the random-stream layout that produced the draws.

    Notes
    -----
    With several methods the tables :attr:`deltas`, :attr:`run_effects`,
    :attr:`run_family_effects` and :meth:`expected_contrasts` have a ``method``
    column after ``task`` (with one method they have none, as before).
    """

    cells: pd.DataFrame = field(repr=False)
    n_clipped: int
    generator: str = GENERATOR

    # -- derived tables ------------------------------------------------------------

    @property
    def language_effects(self) -> pd.DataFrame:
        """Drawn language effects: ``task, language, family, effect``."""
        table = self.cells.drop_duplicates(["task", "language"])
        return table[["task", "language", "family", "language_effect"]].rename(
            columns={"language_effect": "effect"}
        ).reset_index(drop=True)

    @property
    def seed_effects(self) -> pd.DataFrame:
        """Drawn seed effects ``u`` (shared by every order of a seed): ``task, seed, effect``."""
        table = self.cells.drop_duplicates(["task", "seed"]).sort_values(["task", "seed"], kind="stable")
        return table[["task", "seed", "seed_effect"]].rename(columns={"seed_effect": "effect"}).reset_index(drop=True)

    @property
    def run_effects(self) -> pd.DataFrame:
        """Drawn run effects ``v``: ``task, order, seed, run_id, sd, effect, outlier``.

        ``sd`` is the run SD of the run's order (and method; a family's cells get
        ``family_scale * effect``); ``outlier`` says whether the run is an
        outlier run. With several methods a ``method`` column follows ``task``.
        """
        keys = self._keys("order", "seed")
        table = self.cells.drop_duplicates(keys)
        table = table[[*keys, "run_id", "run_effect", "outlier"]].rename(columns={"run_effect": "effect"})
        if self._several:
            sd = [self.method_run_sd[m][o] for m, o in zip(table["method"], table["order"])]
            table.insert(5, "sd", np.array(sd, dtype=float))
        else:
            table.insert(4, "sd", table["order"].map(dict(self.run_sd)).astype(float))
        return table.reset_index(drop=True)

    @property
    def run_family_effects(self) -> pd.DataFrame:
        """Drawn run x family effects ``w``: ``task, order, seed, run_id, family, sd, effect``.

        With several methods a ``method`` column follows ``task``.
        """
        keys = self._keys("order", "seed")
        table = self.cells.drop_duplicates([*keys, "family"])
        table = table[[*keys, "run_id", "family", "run_family_effect"]].rename(columns={"run_family_effect": "effect"})
        sd = {family: self.run_family_sd * scale for family, scale in self.family_sd_scale.items()}
        table.insert(len(keys) + 2, "sd", table["family"].map(sd).astype(float))
        return table.reset_index(drop=True)

    @property
    def deltas(self) -> pd.DataFrame:
        """Resolved planted effects: ``task, order, family, delta`` (0 where none was given).

        With several methods a ``method`` column follows ``task``, and ``delta``
        is the method effect plus the order effect (what the cells add).
        """
        keys = self._keys("order", "family")
        table = self.cells.drop_duplicates(keys)
        return table[[*keys, "delta"]].reset_index(drop=True)

    @property
    def _several(self) -> bool:
        """Whether several methods were simulated (the derived tables then have a ``method`` column)."""
        return len(self.methods) > 1

    def _keys(self, *names: str) -> list[str]:
        """``task``, ``method`` with several methods, then ``names``."""
        return ["task", "method", *names] if self._several else ["task", *names]

    def expected_contrasts(self, *, pairwise: bool = False) -> pd.DataFrame:
        """The true order differences per task and family.

        Parameters
        ----------
        pairwise
            False (default): every order against :attr:`baseline`. True: every
            pair of orders, later order (as listed in :attr:`orders`) minus earlier.

        Returns
        -------
        pandas.DataFrame
            One row per task x family x contrast:

            - ``task, family, order, baseline``: the contrast is ``order - baseline``.
            - ``delta``: the planted difference ``delta[order, family] -
              delta[baseline, family]``, on the model's scale (log-odds on the
              logit scale).
            - ``difference``: the population-level expected difference of scores
              (probability units), ``E[score | order, family] - E[score |
              baseline, family]`` over every random effect, outliers, examples
              and outcomes (see Notes for what is held fixed). On the
              probability scale it equals ``delta`` unless clipping has
              non-negligible probability, in which case it is the exact
              expectation of the clipped values; on the logit scale it is the
              planted log-odds shift seen in accuracy. This is the value that
              estimators of an order effect target, and the one coverage and
              type-I error are measured against. Missing cells and unequal seeds
              do not change it (they drop cells at random).
            - ``realised_difference``: the expected difference *given the drawn
              effects* (language, seed, run, run x family, residual, outliers),
              i.e. the mean over the family's languages and the order's kept
              seeds of ``p[order]`` minus the same for ``p[baseline]`` (missing
              cells included). With equal seeds the seed effects cancel (paired
              design); run and residual effects do not, so it differs from
              ``difference`` by sampling noise of the design, not of the examples.
            - ``n_seeds, n_languages``: seeds (the smaller count of the two
              orders) and languages averaged in ``realised_difference``.

            With several methods, one row per task x method x family x
            contrast, with a ``method`` column after ``task``: the order
            contrast under that method (its method effect cancels; its run SD
            counts). :meth:`expected_method_contrasts` compares the methods.

        Notes
        -----
        Probability scale: for a random language of the family and a random
        seed, the unclipped probability of order ``o`` in language ``l`` is
        ``base + delta[o, f] - outlier_shift * B + X`` with ``B ~
        Bernoulli(outlier_rate)`` and ``X`` of mean 0 and variance
        ``language_sd^2 + seed_sd^2 + k^2 run_sd[o]^2 + k^2 run_family_sd^2 +
        k^2 m_l^2 residual_sd^2`` (``k = family_sd_scale[f]``, ``m_l =
        language_sd_scale[l]``); ``X`` is normal, or with ``run_tail_df`` a
        normal plus the Student-t run and run x family terms. The expected
        clipped value of ``X ~ N(m, s^2)`` on ``[a, b]`` is ``m + (a - m)
        Phi(alpha) + (b - m) Phi(-beta) + s (phi(alpha) - phi(beta))`` with
        ``alpha = (a - m) / s`` and ``beta = (b - m) / s``; ``difference`` is
        ``delta`` plus the difference of those corrections, averaged over the
        family's languages, the outlier mixture and (with t tails) the t terms.
        The language effect is integrated out. Under the default parameters a
        baseline cell is clipped with probability about 5e-8 (0.98 is 5.3 SDs
        above 0.70; 6e-6 with a 0.05 effect), and ``|difference - delta|`` stays
        below 1e-6 for effects up to 0.05.

        Logit scale: ``difference`` is the mean over the family's languages of
        ``E[expit(logit(base) + a[l] + delta[o, f] - outlier_shift * B + X)]``,
        conditional on the drawn language effects ``a[l]`` (a family's own
        languages, near the ceiling or not, set how a log-odds shift shows in
        accuracy), minus the same for the baseline. ``X`` is as above without the
        language term. ``E[expit(c + s Z)]`` is computed by the trapezoid rule
        on ``Z`` (``s < 1``) or on the logistic side ``E[Phi((c - L) / s)]``
        (``s >= 1``), both accurate to about 1e-15; a Student-t term is a normal
        with variance multiplied by ``(df - 2) / G``, ``G ~ chi2(df)``,
        integrated by tanh-sinh quadrature on the quantile of ``G`` (error below
        1e-9); the outlier mixture is summed exactly. With no planted effect and
        equal run SDs both orders compute the same number, so the difference
        is exactly 0.
        """
        orders = list(self.orders)
        if pairwise:
            pairs = [(orders[j], orders[i]) for i in range(len(orders)) for j in range(i + 1, len(orders))]
        else:
            pairs = [(order, self.baseline) for order in orders if order != self.baseline]
        context = self._contrast_context()
        rows = []
        for task in self.tasks:
            for method in self.methods:
                for family in context.families:
                    for order, reference in pairs:
                        planted, difference, realised = self._difference(
                            context, task, family, (method, order), (method, reference)
                        )
                        rows.append(
                            {
                                "task": task,
                                "method": method,
                                "family": family,
                                "order": order,
                                "baseline": reference,
                                "delta": planted,
                                "difference": difference,
                                "realised_difference": realised,
                                "n_seeds": min(self.seeds_per_order[order], self.seeds_per_order[reference]),
                                "n_languages": len(context.members[family]),
                            }
                        )
        columns = ["task", "family", "order", "baseline", "delta", "difference", "realised_difference"]
        if self._several:
            columns.insert(1, "method")
        return pd.DataFrame(rows, columns=[*columns, "n_seeds", "n_languages"])

    def expected_method_contrasts(self, *, pairwise: bool = False) -> pd.DataFrame:
        """The true method differences per task and family, in every order and averaged over the orders.

        Parameters
        ----------
        pairwise
            False (default): every method against the reference method
            :attr:`method`. True: every pair of methods, later method (as listed
            in :attr:`methods`) minus earlier.

        Returns
        -------
        pandas.DataFrame
            One row per task x family x method contrast x order (each order, then
            ``"*"``); empty with one method:

            - ``task, family, method, reference``: the contrast is ``method - reference``.
            - ``order``: the order both methods are compared in, or ``"*"``: the
              difference of the family mean averaged over every order with equal
              weights (the method main effect).
            - ``delta``: the planted difference ``delta[method, order, family] -
              delta[reference, order, family]`` (method effects plus the order
              effects under each method), on the model's scale; for ``"*"`` its
              mean over the orders.
            - ``difference``: the population-level expected difference of scores
              (probability units), computed as in :meth:`expected_contrasts`
              (clipping, the logit link, outliers and t tails accounted for, with
              each method's run SD); for ``"*"`` its mean over the orders.
            - ``realised_difference``: the expected difference given the drawn
              effects: the mean over the family's languages and the order's kept
              seeds of ``p[method]`` minus ``p[reference]`` (the seeds' effects
              cancel: both methods share them); for ``"*"`` its mean over the orders.
            - ``n_seeds, n_languages``: the order's kept seeds (for ``"*"`` the
              fewest of any order) and the family's languages.

        Notes
        -----
        The order x method interaction of order ``o`` is the row of ``o`` minus
        the row of the baseline order (the order contrast under ``method`` minus
        the one under ``reference``; :meth:`expected_contrasts` has each).
        """
        methods = list(self.methods)
        if pairwise:
            pairs = [(methods[j], methods[i]) for i in range(len(methods)) for j in range(i + 1, len(methods))]
        else:
            pairs = [(method, self.method) for method in methods if method != self.method]
        context = self._contrast_context()
        rows = []
        for task in self.tasks:
            for family in context.families:
                for method, reference in pairs:
                    values = []
                    for order in self.orders:
                        values.append(self._difference(context, task, family, (method, order), (reference, order)))
                        rows.append((task, family, method, reference, order, *values[-1], self.seeds_per_order[order]))
                    means = [_mean(column) for column in zip(*values)]
                    rows.append((task, family, method, reference, ALL_ORDERS, *means, min(self.seeds_per_order.values())))
        columns = ["task", "family", "method", "reference", "order", "delta", "difference", "realised_difference", "n_seeds"]
        table = pd.DataFrame(rows, columns=columns).astype({"n_seeds": "int64"})
        table["n_languages"] = table["family"].map({f: len(m) for f, m in context.members.items()}).astype("int64")
        return table

    def _contrast_context(self) -> _ContrastContext:
        """What :meth:`_difference` looks up, computed once per table."""
        family_order = list(dict.fromkeys(self.families[code] for code in self.languages))
        members = {family: [code for code in self.languages if self.families[code] == family] for family in family_order}
        cells = self.cells
        delta = cells.drop_duplicates(["task", "method", "order", "family"]).set_index(["task", "method", "order", "family"])
        mean_p = cells.groupby(["task", "method", "family", "order"], sort=False)["p"].mean()
        language_effect = None
        if self.scale == "logit":
            language_effect = self.language_effects.set_index(["task", "language"])["effect"]
        return _ContrastContext(family_order, members, delta["delta"], mean_p, language_effect, {})

    def _difference(
        self, context: _ContrastContext, task: str, family: str, one: tuple[str, str], other: tuple[str, str]
    ) -> tuple[float, float, float]:
        """Planted, population-level and realised difference ``one - other`` of two (method, order) pipelines."""
        (method, order), (reference_method, reference) = one, other
        d_order = float(context.delta[(task, method, order, family)])
        d_reference = float(context.delta[(task, reference_method, reference, family)])
        sd_order = self.method_run_sd[method][order]
        sd_reference = self.method_run_sd[reference_method][reference]
        planted = d_order - d_reference
        cache = context.cache  # equal inputs give the identical number (an exact 0 difference)
        if self.scale == "logit":
            effects = [float(context.language_effect[(task, code)]) for code in context.members[family]]
            difference = self._mean_p(sd_order, family, d_order, effects, cache) - self._mean_p(
                sd_reference, family, d_reference, effects, cache
            )
        else:
            bias = self._clip_bias(sd_order, family, d_order, cache) - self._clip_bias(
                sd_reference, family, d_reference, cache
            )
            difference = planted + bias
        realised = float(
            context.mean_p[(task, method, family, order)] - context.mean_p[(task, reference_method, family, reference)]
        )
        return planted, difference, realised

    def _variances(self, run_sd: float, family: str, language: str) -> tuple[float, tuple[float, ...]]:
        """Variance of the normal terms of a cell with run SD ``run_sd``, and of its Student-t terms (none without tails).

        The language effect counts on the probability scale (it is integrated out
        there), not on the logit scale (held at its drawn value).
        """
        k, m = self.family_sd_scale[family], self.language_sd_scale[language]
        run = (k * run_sd) ** 2
        run_family = (k * self.run_family_sd) ** 2
        language_part = self.language_sd**2 if self.scale == "probability" else 0.0
        residual = (k * m * self.residual_sd) ** 2
        if self.run_tail_df is None:
            return language_part + self.seed_sd**2 + run + run_family + residual, ()
        return language_part + self.seed_sd**2 + residual, (run, run_family)

    def _clip_bias(self, run_sd: float, family: str, delta: float, cache: dict) -> float:
        """``E[clip(X)] - E[X]`` for the unclipped probability X of a random cell in ``family`` (run SD ``run_sd``)."""
        groups: dict[tuple, int] = {}
        for code in self.languages:
            if self.families[code] == family:
                key = self._variances(run_sd, family, code)
                groups[key] = groups.get(key, 0) + 1
        n = sum(groups.values())
        mean = self.base + delta
        total = 0.0
        for (normal, tails), count in groups.items():
            key = ("clip", mean, normal, tails)
            if key not in cache:
                cache[key] = _expected(
                    _clip_correction, mean, normal, tails, self.run_tail_df, self._outliers(), (self.clip_low, self.clip_high)
                )
            total += count / n * cache[key]
        return total

    def _mean_p(self, run_sd: float, family: str, delta: float, effects: list[float], cache: dict) -> float:
        """Logit scale: the mean over the family's languages of ``E[p]`` (language effects held at ``effects``)."""
        codes = [code for code in self.languages if self.families[code] == family]
        values = []
        for code, effect in zip(codes, effects):
            center = float(logit(self.base)) + effect + delta
            normal, tails = self._variances(run_sd, family, code)
            key = ("logit", center, normal, tails)
            if key not in cache:
                cache[key] = _expected(_expit_normal_means, center, normal, tails, self.run_tail_df, self._outliers(), ())
            values.append(cache[key])
        return math.fsum(values) / len(values)

    def _outliers(self) -> tuple[tuple[float, float], ...]:
        """The outlier mixture: ``(shift, probability)`` pairs."""
        if self.outlier_rate == 0.0 or self.outlier_shift == 0.0:
            return ((0.0, 1.0),)
        mixture = ((0.0, 1.0 - self.outlier_rate), (self.outlier_shift, self.outlier_rate))
        return tuple((shift, share) for shift, share in mixture if share > 0.0)

    # -- serialisation -------------------------------------------------------------

    def to_dict(self) -> dict:
        """A JSON-ready dict; :meth:`from_dict` rebuilds an equal :class:`Truth`."""
        cells = {}
        for column in _CELL_COLUMNS:
            values = self.cells[column].to_numpy()
            if column == "seed":
                cells[column] = [int(x) for x in values]
            elif column in _CELL_BOOLS:
                cells[column] = [bool(x) for x in values]
            elif column in _CELL_FLOATS:
                cells[column] = [float(x) for x in values]
            else:
                cells[column] = [str(x) for x in values]
        return {
            "format": _TRUTH_FORMAT,
            "version": _TRUTH_VERSION,
            "generator": self.generator,
            "parameters": {
                "orders": list(self.orders),
                "baseline": self.baseline,
                "seeds": list(self.seeds),
                "languages": list(self.languages),
                "families": dict(self.families),
                "tasks": list(self.tasks),
                "effects": [dict(effect) for effect in self.effects],
                "base": self.base,
                "language_sd": self.language_sd,
                "seed_sd": self.seed_sd,
                "run_sd": dict(self.run_sd),
                "residual_sd": self.residual_sd,
                "n_examples": self.n_examples,
                "example_correlation": self.example_correlation,
                "clip_low": self.clip_low,
                "clip_high": self.clip_high,
                "outcomes": self.outcomes,
                "metric": self.metric,
                "experiment": self.experiment,
                "method": self.method,
                "seed": self.seed,
                "scale": self.scale,
                "run_family_sd": self.run_family_sd,
                "family_sd_scale": dict(self.family_sd_scale),
                "language_sd_scale": dict(self.language_sd_scale),
                "run_tail_df": self.run_tail_df,
                "outlier_rate": self.outlier_rate,
                "outlier_shift": self.outlier_shift,
                "seeds_per_order": dict(self.seeds_per_order),
                "missing_cells": self.missing_cells,
                "methods": list(self.methods),
                "method_effects": [dict(effect) for effect in self.method_effects],
                "method_run_sd": {method: dict(sds) for method, sds in self.method_run_sd.items()},
            },
            "n_clipped": self.n_clipped,
            "cells": cells,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> Truth:
        """Rebuild a :class:`Truth` from :meth:`to_dict` output (version 1 and 2 truths too)."""
        if not isinstance(data, Mapping) or data.get("format") != _TRUTH_FORMAT:
            raise InputError(
                "not a seqrob simulation truth", file=source, fix="pass the truth.json written by seqrob simulate"
            )
        version = data.get("version")
        if version not in _TRUTH_VERSIONS:
            raise InputError(
                f"truth version {version!r} is not one of {list(_TRUTH_VERSIONS)}",
                file=source,
                fix="read it with the seqrob version that wrote it",
            )
        try:
            p = data["parameters"]
            raw = dict(data["cells"])
            if version == 1:  # written before the noise options: every one of them off
                p, raw = _upgrade_version_1(p, raw)
            if version in (1, 2):  # written before several methods: one method
                p, raw = _upgrade_version_2(p, raw)
            cells = _cells_from_columns(raw)
            return cls(
                **_parameters_from_dict(p),
                cells=cells,
                n_clipped=int(data["n_clipped"]),
                generator=data.get("generator", GENERATOR),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InputError(
                f"truth is incomplete or damaged ({type(error).__name__}: {error})",
                file=source,
                fix="write it again with seqrob simulate",
            ) from None

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON (floats written exactly); return the path."""
        path = Path(path)
        _atomic_write_text(path, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> Truth:
        """Read a truth written by :meth:`to_json`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("no such file", file=str(path), fix="check the path") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(f"cannot read JSON ({error})", file=str(path), fix="write it again") from None
        return cls.from_dict(data, source=str(path))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Truth):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _upgrade_version_1(p: Mapping[str, Any], raw: dict) -> tuple[dict, dict]:
    """A version 1 truth's parameters and cell columns, with version 2's noise options all off."""
    p = {
        **p,
        "scale": "probability",
        "run_family_sd": 0.0,
        "family_sd_scale": {family: 1.0 for family in p["families"].values()},
        "language_sd_scale": {code: 1.0 for code in p["languages"]},
        "run_tail_df": None,
        "outlier_rate": 0.0,
        "outlier_shift": 0.0,
        "seeds_per_order": {order: len(p["seeds"]) for order in p["orders"]},
        "missing_cells": 0.0,
    }
    size = len(raw["p"])
    raw.update(
        family_scale=[1.0] * size,
        run_family_effect=[0.0] * size,
        outlier=[False] * size,
        linear_predictor=raw["p_raw"],
        missing=[False] * size,
    )
    return p, raw


def _upgrade_version_2(p: Mapping[str, Any], raw: dict) -> tuple[dict, dict]:
    """A version 2 truth's parameters and cell columns, as a version 3 truth of its one method."""
    p = {
        **p,
        "methods": [p["method"]],
        "method_effects": [],
        "method_run_sd": {p["method"]: dict(p["run_sd"])},
    }
    raw["method"] = [p["method"]] * len(raw["p"])
    return p, raw


def _cells_from_columns(raw: Mapping[str, Any]) -> pd.DataFrame:
    """:attr:`Truth.cells` from the column lists of :meth:`Truth.to_dict`, with its dtypes."""
    cells = pd.DataFrame({column: raw[column] for column in _CELL_COLUMNS})
    cells = cells.astype(
        {
            "seed": "int64",
            **{column: "bool" for column in _CELL_BOOLS},
            **{column: "float64" for column in _CELL_FLOATS},
        }
    )
    for column in _CELL_STRINGS:
        cells[column] = cells[column].astype(str)
    return cells


def _parameters_from_dict(p: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`Truth` fields stored under ``parameters`` by :meth:`Truth.to_dict`, typed."""
    return {
        "orders": tuple(p["orders"]),
        "baseline": p["baseline"],
        "seeds": tuple(int(s) for s in p["seeds"]),
        "languages": tuple(p["languages"]),
        "families": dict(p["families"]),
        "tasks": tuple(p["tasks"]),
        "effects": tuple(dict(effect) for effect in p["effects"]),
        "base": float(p["base"]),
        "language_sd": float(p["language_sd"]),
        "seed_sd": float(p["seed_sd"]),
        "run_sd": {str(k): float(v) for k, v in p["run_sd"].items()},
        "residual_sd": float(p["residual_sd"]),
        "n_examples": int(p["n_examples"]),
        "example_correlation": float(p["example_correlation"]),
        "clip_low": float(p["clip_low"]),
        "clip_high": float(p["clip_high"]),
        "outcomes": bool(p["outcomes"]),
        "metric": p["metric"],
        "experiment": p["experiment"],
        "method": p["method"],
        "seed": int(p["seed"]),
        "scale": str(p["scale"]),
        "run_family_sd": float(p["run_family_sd"]),
        "family_sd_scale": {str(k): float(v) for k, v in p["family_sd_scale"].items()},
        "language_sd_scale": {str(k): float(v) for k, v in p["language_sd_scale"].items()},
        "run_tail_df": None if p["run_tail_df"] is None else float(p["run_tail_df"]),
        "outlier_rate": float(p["outlier_rate"]),
        "outlier_shift": float(p["outlier_shift"]),
        "seeds_per_order": {str(k): int(v) for k, v in p["seeds_per_order"].items()},
        "missing_cells": float(p["missing_cells"]),
        "methods": tuple(str(m) for m in p["methods"]),
        "method_effects": tuple(dict(effect) for effect in p["method_effects"]),
        "method_run_sd": {str(m): {str(k): float(v) for k, v in sds.items()} for m, sds in p["method_run_sd"].items()},
    }


@dataclass(frozen=True, eq=False)
class Simulation:
    """Simulated results in seqrob's long formats, and the truth they came from.

    Attributes
    ----------
    scores
        One row per run x task x language: ``run_id, order, seed, task,
        language, metric, score, experiment, method, n_examples, family``
        (``method``: the run's method; one value unless several ``methods``).
    predictions
        One row per run x task x language x example: ``run_id, task, language,
        example_id, correct`` (int8, 0/1); None when simulated with
        ``outcomes=False``.
    truth
        The :class:`Truth`.
    """

    scores: pd.DataFrame
    predictions: pd.DataFrame | None
    truth: Truth

    def write(self, directory: str | os.PathLike, *, format: str = "parquet") -> dict[str, Path]:  # noqa: A002
        """Write scores, predictions and ``truth.json`` into ``directory`` (:func:`write`)."""
        return write(self, directory, format=format)


# --- simulation -------------------------------------------------------------------


def simulate(
    *,
    orders: Sequence[str] = DEFAULT_ORDERS,
    seeds: int | Sequence[int] = 6,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    families: Mapping[str, str] | None = None,
    effects: Mapping[tuple, float] | None = None,
    base: float = 0.70,
    language_sd: float = 0.05,
    seed_sd: float = 0.01,
    run_sd: float | Mapping[str, float] = 0.01,
    residual_sd: float = 0.005,
    n_examples: int = 200,
    example_correlation: float = 0.5,
    outcomes: bool = True,
    tasks: Sequence[str] = ("target",),
    metric: str = "accuracy",
    experiment: str = "simulated",
    method: str = "finetune",
    seed: int = 0,
    baseline: str | None = None,
    clip_low: float = 0.02,
    clip_high: float = 0.98,
    scale: str = "probability",
    run_family_sd: float = 0.0,
    family_sd_scale: Mapping[str, float] | None = None,
    language_sd_scale: Mapping[str, float] | None = None,
    run_tail_df: float | None = None,
    outlier_rate: float = 0.0,
    outlier_shift: float = 0.0,
    seeds_per_order: Mapping[str, int] | None = None,
    missing_cells: float = 0.0,
    methods: Sequence[str] | None = None,
    method_effects: Mapping[str | tuple[str, ...], float] | None = None,
) -> Simulation:
    """Simulate stored runs from a known truth.

    Parameters
    ----------
    orders
        Orders of intermediate tasks (``"nli>qa"``); ``"none"`` is the baseline.
    seeds
        Number of seeds (seed values 1..n), or the seed values themselves
        (distinct non-negative integers).
    languages
        Language codes; each must have a family (``families`` or seqrob's
        language metadata, ``seqrob.warehouse.languages.resolve``).
    families
        Code -> family. Codes not in it are resolved from the metadata; codes not
        in ``languages`` are ignored.
    effects
        Planted order effects on the model's scale (probability, or log-odds
        with ``scale="logit"``). Keys ``(order, family)`` apply to every task;
        ``(task, order, family)`` to one task and take precedence. ``family``
        may be ``"*"`` (every family); a named family takes precedence over
        ``"*"``. The most specific key wins:
        ``(task, order, family) > (task, order, "*") > (order, family) > (order, "*")``.
        The baseline order takes no effect (it is the reference, delta = 0).
        With several methods, keys without a method apply to every method;
        ``(method, order, family)`` and ``(method, task, order, family)`` to one
        method (an order x method interaction) and take precedence over every
        key without a method: a key naming the method beats one that does not,
        then one naming the task, then a named family beats ``"*"``:
        ``(method, task, order, family) > (method, task, order, "*") >
        (method, order, family) > (method, order, "*") > (task, order, family) > ...``.
        A 3-tuple whose first name is a method is ``(method, order, family)``,
        one whose first name is a task ``(task, order, family)`` (a name that
        is both is refused: rename the task or the method). An order effect is a
        difference from the baseline order under the same method.
    base
        Mean probability of a correct answer under the baseline (on the logit
        scale the latent mean is ``logit(base)``, so ``base`` must be in (0, 1)).
    language_sd, seed_sd, residual_sd
        SDs of the language, seed and run x language effects (on the model's scale).
    run_sd
        SD of the run (seed x order, or seed x method x order) effect: one
        value, or a mapping keyed by order, by method or by ``(method, order)``
        that gives every method x order an SD (the most specific key wins:
        ``(method, order) > method > order``). Different values per order plant
        a variance effect of the order, per method one of the method.
    n_examples
        Examples per language and task (shared by every run).
    example_correlation
        ``rho`` in [0, 1): how much of an outcome is the example's difficulty,
        shared by every run.
    outcomes
        Keep the per-example outcomes as ``predictions``. Scores are identical
        either way (the outcomes are drawn and averaged, then dropped).
    tasks
        Target task names; each has its own independent draws.
    metric, experiment
        Labels written into ``scores``.
    method
        The method written into ``scores``. With ``methods``, the reference
        method (method effects are differences from it, and it takes none): one
        of ``methods``, or left at its default ``"finetune"``, which means
        ``"finetune"`` if listed, else the first of ``methods``.
    seed
        Seed of the random streams (a non-negative integer).
    baseline
        The reference order; default ``"none"`` if it is an order, else the first order.
    clip_low, clip_high
        Bounds that ``p`` is clipped to (probability scale only).
    scale
        ``"probability"`` (default): the terms add up to ``p``, clipped to
        ``[clip_low, clip_high]``. ``"logit"``: they add up to ``logit(p)``
        (no clipping): near-ceiling bases give skewed scores, and every SD and
        effect is on the logit scale.
    run_family_sd
        SD of the run x family effect (a run's luck differs between families);
        default 0 (none).
    family_sd_scale
        Family -> multiplier of the run, run x family and run x language SDs in
        that family (``{"Uralic": 4.0}``); families not named keep 1.
    language_sd_scale
        Language code -> multiplier of its run x language SD; codes not named keep 1.
    run_tail_df
        Degrees of freedom (> 2) of Student-t run and run x family effects,
        rescaled to keep their SDs; default None (normal).
    outlier_rate, outlier_shift
        Each run is independently an outlier run with probability
        ``outlier_rate`` (in [0, 1]); every cell of an outlier run (all tasks)
        gets ``-outlier_shift`` added on the model's scale. Default 0 (none).
    seeds_per_order
        Order -> number of seeds ``k`` it keeps (1 <= k <= number of seeds): the
        order's runs with seed values after its first ``k`` (in the order of
        ``seeds``) are dropped from scores, predictions and ``truth.cells``;
        orders not named keep every seed.
    missing_cells
        Share in [0, 1) of run x language cells dropped at random (for every task
        of the run) from scores and predictions; ``truth.cells`` keeps them,
        marked ``missing``. Default 0.
    methods
        Several training methods (``["finetune", "prompt"]``); default None: the
        one ``method``. Each run is one method x order x seed; every method
        runs every order with the same seed values (``seeds_per_order`` holds
        for every method), and its ``run_id`` is
        ``{experiment}-{method}-{order}-s{seed}`` (``{experiment}-{order}-s{seed}``
        with one method, even if given as ``methods=[method]``).
    method_effects
        Planted method effects: a shift of every order of a method (the
        baseline order included) relative to the reference method ``method``,
        on the model's scale. Keys: ``method`` or ``(method, "*")`` (every
        family, every task), ``(method, family)``, ``(task, method, family)``;
        the most specific key wins: ``(task, method, family) > (task, method,
        "*") > (method, family) > (method, "*")``. The reference method takes
        none. A cell's planted effect is its method effect plus its order effect.

    Returns
    -------
    Simulation
        ``scores``, ``predictions`` and ``truth``.

    Raises
    ------
    InputError
        A parameter has a wrong type or an out-of-range value, or a language has no family.
    DesignError
        The design cannot be simulated as asked (empty or duplicated orders,
        seeds, languages, tasks or methods; an effect naming an order, family,
        task or method not in the design, or the baseline; a method effect
        naming the reference method; ``method`` not among ``methods``; a
        ``run_sd`` that leaves a method x order without an SD; a scale naming a
        family or language not in the design; ``seeds_per_order`` naming an
        unknown order or keeping fewer than 1 or more than all seeds).

    Warns
    -----
    UserWarning
        When more than 1% of cells are clipped (the count is always in
        ``truth.n_clipped``, the cells in ``truth.cells.clipped``).

    Notes
    -----
    For task t, order o, seed s, language l in family f = f(l) and example i::

        eta[t,o,s,l] = b + a[t,l] + delta[t,o,f] + u[t,s] + k[f] v[t,o,s] + w[t,o,s,f]
                       + e[t,o,s,l] - outlier_shift B[o,s]
        probability scale: b = base,         p[t,o,s,l] = clip(eta, clip_low, clip_high)
        logit scale:       b = logit(base),  p[t,o,s,l] = expit(eta)
        a ~ N(0, language_sd^2)               language effect, drawn once per task
        u ~ N(0, seed_sd^2)                   seed effect, shared by every order of seed s (paired)
        v ~ N(0, run_sd[o]^2)                 run effect
        w ~ N(0, (run_family_sd k[f])^2)      run x family effect
        e ~ N(0, (residual_sd k[f] m[l])^2)   run x language effect
        B ~ Bernoulli(outlier_rate)           outlier run, one draw per run (all its tasks)
        k = family_sd_scale, m = language_sd_scale (1 where not named)
        correct[t,o,s,l,i] = 1  if  Phi(rho g[t,l,i] + sqrt(1 - rho^2) h[t,o,s,l,i]) < p[t,o,s,l]
        g, h ~ N(0, 1)                        g: example difficulty, shared by every run

    With ``run_tail_df = nu``, ``v = run_sd[o] z sqrt((nu - 2) / G)`` with ``z``
    the normal draw above and ``G ~ chi2(nu)``: Student-t with ``nu`` degrees
    of freedom and SD ``run_sd[o]``; ``w`` likewise, with its own ``G``.

    ``rho g + sqrt(1 - rho^2) h`` is standard normal, so ``Phi(.)`` is uniform and
    ``P(correct) = p`` exactly; two runs share ``g``, so their outcomes on the
    same example are positively correlated when ``rho > 0`` (independent when
    ``rho = 0``). The comparison is computed as ``rho g + sqrt(1 - rho^2) h <
    Phi^-1(p)``, the same event. ``score`` is the mean of the cell's outcomes, so
    scores and predictions agree exactly, and ``E[score | drawn effects] = p``.
    All effects except ``B`` (and missingness) are independent across tasks; a
    run (one order and seed) carries one ``run_id`` for all its tasks.

    Several methods: the order index ``o`` above runs over *pipelines*, every
    method x order, and ``delta[t,(m,o),f] = mu[t,m,f] + d[t,m,o,f]``: the
    method effect ``mu`` (``method_effects``, 0 for the reference method) plus
    the order effect ``d`` (``effects``, 0 for the baseline order). The
    language effects ``a``, seed effects ``u`` and example difficulties ``g``
    are shared by every method and order of a seed, as in training where a seed
    fixes the data order and initialisation of every pipeline; the run effects
    ``v`` (SD ``run_sd[m, o]``), ``w``, ``e``, ``B``, missing cells and the
    outcomes' ``h`` are drawn per run (method x order x seed).

    Every run and cell is drawn; ``seeds_per_order`` and ``missing_cells`` then
    drop some from the output (missing completely at random), so the draws of
    the others are those of the full design.

    Random streams: ``SeedSequence(seed, spawn_key=(task index, stream, ...))``
    with one stream for language effects (0), one for examples ``g`` (1), and
    per seed value one for ``u, v, e, h`` (2), one for the run x family normals
    (3) and one for the chi-square draws of t tails (4). Outliers (5) and
    missing cells (6) hold for every task of a run: one stream per seed value,
    keyed with task index 0. An option that is off draws nothing, and options
    never change the draws of other streams: with every new option at its
    default the output is that of the model without them. Changing the SDs
    rescales the same standard normal draws, and a seed's draws do not depend
    on which other seeds are simulated (10 seeds extend the same design's 6).
    With several methods each stream draws the per-run terms of every pipeline
    in turn (method-major), so the draws of one method depend on the list of
    methods; one method (``methods`` None or one name) draws exactly as before.

    Examples
    --------
    >>> from seqrob.warehouse.simulate import DEFAULT_FAMILIES, simulate
    >>> sim = simulate(seeds=3, families=DEFAULT_FAMILIES, effects={("nli>qa", "Uralic"): 0.05})
    >>> sim.scores.shape
    (270, 11)
    >>> truth = sim.truth.expected_contrasts().query("family == 'Uralic'")
    >>> truth[["order", "delta"]].to_dict("list")
    {'order': ['nli>qa', 'qa>nli'], 'delta': [0.05, 0.0]}
    >>> bool(abs(truth["difference"] - truth["delta"]).max() < 1e-6)
    True

    Near the ceiling on the logit scale, with a noisier Uralic and a few failed runs:

    >>> sim = simulate(seeds=3, families=DEFAULT_FAMILIES, scale="logit", base=0.95, language_sd=0.5,
    ...                run_sd=0.3, family_sd_scale={"Uralic": 3.0}, outlier_rate=0.1, outlier_shift=2.0)
    >>> bool(sim.scores["score"].median() > 0.9)
    True

    Fine-tuning against prompt tuning: prompt tuning 2 points lower everywhere,
    ``nli>qa`` helping Uralic only under prompt tuning, prompt tuning noisier:

    >>> sim = simulate(seeds=3, families=DEFAULT_FAMILIES, methods=["finetune", "prompt"],
    ...                method_effects={"prompt": -0.02}, effects={("prompt", "nli>qa", "Uralic"): 0.05},
    ...                run_sd={"finetune": 0.01, "prompt": 0.03})
    >>> sim.scores.groupby("method")["run_id"].nunique().to_dict()
    {'finetune': 9, 'prompt': 9}
    >>> m = sim.truth.expected_method_contrasts().query("family == 'Uralic'")
    >>> m[["order", "delta"]].round(6).to_dict("list")
    {'order': ['none', 'nli>qa', 'qa>nli', '*'], 'delta': [-0.02, 0.03, -0.02, -0.003333]}
    """
    options = _resolve_options(**locals())  # the first statement: locals() holds exactly the parameters
    terms = _model_terms(options)
    draws = _draw(options, terms)
    cells = _cells(options, terms, draws)
    scores = _scores(options, cells, draws.hits)
    # Unequal seeds drop whole runs (from everything); missing cells drop rows of
    # scores and predictions only. Without either, nothing is filtered.
    in_cells, observed = _kept(options, draws.missing)
    keep_predictions = None if observed.all() else observed
    if not in_cells.all():
        cells = cells[in_cells].reset_index(drop=True)
    n_clipped = int(cells["clipped"].sum())
    if n_clipped > 0.01 * len(cells):
        warnings.warn(
            f"{n_clipped} of {len(cells)} cells were clipped to [{options.clip_low}, {options.clip_high}]; "
            "expected_contrasts() accounts for it, but effects are no longer additive there",
            stacklevel=2,
        )
    if not observed.all():
        scores = scores[observed].reset_index(drop=True)
    predictions = None
    if draws.correct is not None:
        predictions = _predictions(
            draws.correct,
            np.array(options.run_ids, dtype=object),
            np.array(options.tasks, dtype=object),
            np.array(options.languages, dtype=object),
            options.n_examples,
            keep_predictions,
        )
    return Simulation(scores=scores, predictions=predictions, truth=_truth(options, cells, n_clipped))


# --- simulation: resolving the options ----------------------------------------------


@dataclass(frozen=True)
class _Options(_Parameters):
    """The parameters of :func:`simulate`, checked and resolved, and what the simulation derives from them."""

    family_names: list[str]  # the distinct families, in the order of their first language
    pipelines: list[tuple[str, str]]  # every (method, order), method-major: the "orders" of the draws
    deltas: dict[tuple[str, str, str, str], float]  # method + order effect per (task, method, order, family)
    run_ids: list[str]  # one per pipeline x seed value, pipeline-major


def _resolve_options(
    *, orders, seeds, languages, families, effects, base, language_sd, seed_sd, run_sd, residual_sd, n_examples,
    example_correlation, outcomes, tasks, metric, experiment, method, seed, baseline, clip_low, clip_high, scale,
    run_family_sd, family_sd_scale, language_sd_scale, run_tail_df, outlier_rate, outlier_shift, seeds_per_order,
    missing_cells, methods, method_effects,
) -> _Options:  # fmt: skip
    """Check :func:`simulate`'s parameters, in this order (the first problem found is raised), and resolve them."""
    orders_t = _names(orders, "orders", "order")
    tasks_t = _names(tasks, "tasks", "task")
    languages_t = _names(languages, "languages", "language")
    seeds_t = _seed_values(seeds)
    if baseline is None:
        baseline = "none" if "none" in orders_t else orders_t[0]
    elif baseline not in orders_t:
        raise DesignError(f"baseline '{baseline}' is not one of the orders {list(orders_t)} - add it to orders")
    base, clip_low, clip_high = _probability_bounds(scale, base, clip_low, clip_high)
    method = _label(method, "method")
    methods_t, method = _methods(methods, method)
    language_sd = _real(language_sd, "language_sd", low=0.0)
    seed_sd = _real(seed_sd, "seed_sd", low=0.0)
    residual_sd = _real(residual_sd, "residual_sd", low=0.0)
    method_run_sd = _run_sds(run_sd, orders_t, methods_t)
    run_family_sd = _real(run_family_sd, "run_family_sd", low=0.0)
    run_tail_df = _run_tail_df(run_tail_df)
    outlier_rate = _real(outlier_rate, "outlier_rate", low=0.0, high=1.0)
    outlier_shift = _real(outlier_shift, "outlier_shift")
    missing_cells = _real(missing_cells, "missing_cells")
    if not 0.0 <= missing_cells < 1.0:
        raise InputError(f"missing_cells is {missing_cells}; it is the share of cells dropped", fix="use a share in [0, 1)")
    rho = _real(example_correlation, "example_correlation", low=0.0)
    if not rho < 1.0:
        raise InputError(f"example_correlation is {rho}", fix="use a value in [0, 1)")
    n = _count(n_examples, "n_examples")
    if not isinstance(outcomes, (bool, np.bool_)):
        raise InputError(f"outcomes must be True or False, not {outcomes!r}", fix="pass outcomes=True or False")
    metric = _label(metric, "metric")
    experiment = _label(experiment, "experiment")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, not {seed!r}", fix="pass seed=0 or another integer >= 0")

    family_of = _families(languages_t, families)
    family_names = list(dict.fromkeys(family_of[code] for code in languages_t))
    given, resolved = _effects(effects, orders_t, tasks_t, family_names, baseline, methods_t)
    given_methods, resolved_methods = _method_effects(method_effects, methods_t, method, tasks_t, family_names)
    pipelines = [(m, order) for m in methods_t for order in orders_t]
    if len(methods_t) > 1:  # the method effect of a pipeline plus its order effect
        resolved = {
            (task, m, order, family): resolved_methods[(task, m, family)] + resolved[(task, m, order, family)]
            for (task, m, order, family) in resolved
        }
    family_scales = _multipliers(family_sd_scale, "family_sd_scale", "family", family_names)
    language_scales = _multipliers(language_sd_scale, "language_sd_scale", "language", list(languages_t))
    kept_seeds = _seeds_per_order(seeds_per_order, orders_t, len(seeds_t))
    if len(methods_t) > 1:
        run_ids = [f"{experiment}-{m}-{order}-s{value}" for m, order in pipelines for value in seeds_t]
    else:
        run_ids = [f"{experiment}-{order}-s{value}" for order in orders_t for value in seeds_t]
    if len(set(run_ids)) != len(run_ids):
        raise DesignError("two runs would share a run_id - use method names, order names and seeds that differ")
    return _Options(
        orders=orders_t, baseline=baseline, seeds=seeds_t, languages=languages_t,
        families={code: family_of[code] for code in languages_t}, family_names=family_names, tasks=tasks_t,
        effects=given, deltas=resolved, base=base, language_sd=language_sd, seed_sd=seed_sd,
        run_sd=method_run_sd[method], methods=methods_t, method_effects=given_methods, method_run_sd=method_run_sd,
        pipelines=pipelines,
        residual_sd=residual_sd, n_examples=n, example_correlation=rho, clip_low=clip_low, clip_high=clip_high,
        outcomes=bool(outcomes), metric=metric, experiment=experiment, method=method, seed=int(seed), scale=scale,
        run_family_sd=run_family_sd, family_sd_scale=family_scales, language_sd_scale=language_scales,
        run_tail_df=run_tail_df, outlier_rate=outlier_rate, outlier_shift=outlier_shift,
        seeds_per_order=kept_seeds, missing_cells=missing_cells, run_ids=run_ids,
    )  # fmt: skip


def _probability_bounds(scale: Any, base: Any, clip_low: Any, clip_high: Any) -> tuple[float, float, float]:
    """Check the scale, ``base`` and the clip bounds; return ``base, clip_low, clip_high``."""
    if scale not in SCALES:
        raise InputError(f"scale is {scale!r}", fix="use scale='probability' or scale='logit'")
    base = _real(base, "base", low=0.0, high=1.0)
    if scale == "logit" and not 0.0 < base < 1.0:
        raise InputError(f"base is {base} on the logit scale, whose logit is infinite", fix="use a base in (0, 1)")
    clip_low = _real(clip_low, "clip_low", low=0.0, high=1.0)
    clip_high = _real(clip_high, "clip_high", low=0.0, high=1.0)
    if not clip_low < clip_high:
        raise InputError(f"clip_low {clip_low} is not below clip_high {clip_high}", fix="use 0 <= clip_low < clip_high <= 1")
    return base, clip_low, clip_high


def _run_tail_df(run_tail_df: Any) -> float | None:
    """Check the degrees of freedom of t-tailed run effects (None: normal ones)."""
    if run_tail_df is None:
        return None
    run_tail_df = _real(run_tail_df, "run_tail_df")
    if not run_tail_df > 2.0:
        raise InputError(
            f"run_tail_df is {run_tail_df}; a Student-t has a finite SD only with df > 2",
            fix="use run_tail_df > 2 (e.g. 3 for heavy tails), or None for normal run effects",
        )
    return run_tail_df


# --- simulation: drawing ----------------------------------------------------------


@dataclass(frozen=True)
class _Terms:
    """The model's fixed terms as arrays over the design (T tasks, O pipelines (method x order), L languages, F families)."""

    center: float  # base, or logit(base) on the logit scale
    delta: np.ndarray  # (T, O, L): the planted effect of every cell, from the resolved (task, method, order, family) table
    sd_run: np.ndarray  # (O,)
    family_index: np.ndarray  # (L,): each language's family, as an index into family_names
    k_language: np.ndarray  # (L,): multiplier of v in each language's family
    sd_run_family: np.ndarray  # (F,)
    sd_residual: np.ndarray  # (L,)
    spread: float  # sqrt(1 - rho^2)


def _model_terms(options: _Options) -> _Terms:
    """The planted effects and SDs of every task, order, family and language, as arrays."""
    tasks, pipelines, languages, family_of = options.tasks, options.pipelines, options.languages, options.families
    delta = np.array(
        [
            [[options.deltas[(task, method, order, family_of[code])] for code in languages] for method, order in pipelines]
            for task in tasks
        ],
        dtype=float,
    ).reshape(len(tasks), len(pipelines), len(languages))
    family_index = np.array([options.family_names.index(family_of[code]) for code in languages])
    k_family = np.array([options.family_sd_scale[family] for family in options.family_names], dtype=float)
    k_language = k_family[family_index]
    rho = options.example_correlation
    return _Terms(
        center=float(logit(options.base)) if options.scale == "logit" else options.base,
        delta=delta,
        sd_run=np.array([options.method_run_sd[method][order] for method, order in pipelines], dtype=float),
        family_index=family_index,
        k_language=k_language,
        sd_run_family=options.run_family_sd * k_family,
        sd_residual=options.residual_sd * k_language * np.array([options.language_sd_scale[code] for code in languages]),
        spread=math.sqrt(1.0 - rho * rho),
    )


@dataclass(frozen=True)
class _Draws:
    """Every draw of the full design (before runs and cells are dropped), and the cell probabilities.

    ``O`` counts pipelines (method x order, method-major; the orders with one method).
    """

    a: np.ndarray  # (T, L): language effects
    u: np.ndarray  # (T, S): seed effects
    v: np.ndarray  # (T, O, S): run effects
    w: np.ndarray  # (T, O, S, F): run x family effects
    e: np.ndarray  # (T, O, S, L): run x language effects
    eta: np.ndarray  # (T, O, S, L): linear predictor
    p: np.ndarray  # (T, O, S, L): probability of a correct answer
    hits: np.ndarray  # (T, O, S, L): correct outcomes of the cell's n_examples
    correct: np.ndarray | None  # (O, S, T, L, n): the outcomes in the row order of predictions; None without outcomes
    outlier: np.ndarray  # (O, S): outlier runs
    missing: np.ndarray  # (O, S, L): missing cells


def _draw(options: _Options, terms: _Terms) -> _Draws:
    """Draw every effect and outcome of the full design, stream by stream (see :func:`simulate`'s Notes)."""
    T, O, S, L = len(options.tasks), len(options.pipelines), len(options.seeds), len(options.languages)
    F, n, seed = len(options.family_names), options.n_examples, options.seed
    outlier, missing = _draw_run_level(options)
    shift = options.outlier_shift * outlier  # (O, S)
    a = np.empty((T, L))
    u = np.empty((T, S))
    v = np.empty((T, O, S))
    w = np.zeros((T, O, S, F))
    e = np.empty((T, O, S, L))
    eta = np.empty((T, O, S, L))
    p = np.empty((T, O, S, L))
    hits = np.empty((T, O, S, L), dtype=np.int64)
    correct = np.empty((O, S, T, L, n), dtype=np.int8) if options.outcomes else None  # row order of predictions

    for t in range(T):
        a[t] = _stream(seed, t, _STREAM_LANGUAGE).standard_normal(L) * options.language_sd
        g = _stream(seed, t, _STREAM_EXAMPLE).standard_normal((L, n))  # (L, n), shared by all runs
        shared = options.example_correlation * g
        for j, value in enumerate(options.seeds):
            rng = _stream(seed, t, _STREAM_SEED, value)  # u, v, e, then the outcomes' h
            u[t, j], v[t, :, j], w[t, :, j, :], e[t, :, j, :] = _draw_run_effects(options, terms, rng, t, value)
            # (O, L); with every option off the extra terms are exact zeros and ones.
            cell = (
                terms.center + a[t][None, :] + terms.delta[t] + u[t, j] + v[t, :, j][:, None] * terms.k_language[None, :]
                + w[t, :, j][:, terms.family_index] + e[t, :, j, :] - shift[:, j][:, None]
            )  # fmt: skip
            eta[t, :, j, :] = cell
            p[t, :, j, :] = expit(cell) if options.scale == "logit" else np.clip(cell, options.clip_low, options.clip_high)
            right = _draw_outcomes(rng, p[t, :, j, :], shared, terms.spread, n)  # (O, L, n)
            hits[t, :, j, :] = right.sum(axis=2)
            if correct is not None:
                correct[:, j, t, :, :] = right
    return _Draws(a=a, u=u, v=v, w=w, e=e, eta=eta, p=p, hits=hits, correct=correct, outlier=outlier, missing=missing)


def _draw_run_level(options: _Options) -> tuple[np.ndarray, np.ndarray]:
    """Draws shared by every task of a run: outlier runs (O, S) and missing cells (O, S, L)."""
    O, S, L = len(options.pipelines), len(options.seeds), len(options.languages)
    seed, outlier_rate, missing_cells = options.seed, options.outlier_rate, options.missing_cells
    outlier = np.zeros((O, S), dtype=bool)
    missing = np.zeros((O, S, L), dtype=bool)
    for j, value in enumerate(options.seeds):
        if outlier_rate > 0.0:
            outlier[:, j] = _stream(seed, _RUN_LEVEL, _STREAM_OUTLIER, value).random(O) < outlier_rate
        if missing_cells > 0.0:
            missing[:, j, :] = _stream(seed, _RUN_LEVEL, _STREAM_MISSING, value).random((O, L)) < missing_cells
    return outlier, missing


def _draw_run_effects(
    options: _Options, terms: _Terms, rng: np.random.Generator, t: int, value: int
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Seed effect ``u``, run effects ``v`` (O,), run x family ``w`` (O, F) and run x language ``e`` (O, L) (O pipelines).

    For task index ``t`` and seed ``value``; ``rng`` is that seed's stream, which
    goes on to draw the outcomes.
    """
    O, L, F = len(options.pipelines), len(options.languages), len(options.family_names)
    u = rng.standard_normal() * options.seed_sd
    v = rng.standard_normal(O) * terms.sd_run
    e = rng.standard_normal((O, L)) * terms.sd_residual
    w = np.zeros((O, F))
    if options.run_family_sd > 0.0:
        w = _stream(options.seed, t, _STREAM_RUN_FAMILY, value).standard_normal((O, F)) * terms.sd_run_family
    if options.run_tail_df is not None:
        # z sqrt((df - 2) / G), G ~ chi2(df): Student-t with the same SD, same z.
        df = options.run_tail_df
        tail = _stream(options.seed, t, _STREAM_TAIL, value)
        v *= np.sqrt((df - 2.0) / tail.chisquare(df, O))
        w *= np.sqrt((df - 2.0) / tail.chisquare(df, (O, F)))
    return u, v, w, e


def _draw_outcomes(rng: np.random.Generator, p: np.ndarray, shared: np.ndarray, spread: float, n: int) -> np.ndarray:
    """Outcomes (O, L, n) of one task and seed: ``rho g + sqrt(1 - rho^2) h < Phi^-1(p)``.

    ``p`` is (O, L); ``shared`` is ``rho g`` (L, n), the examples' difficulty.
    """
    threshold = ndtri(p)  # (O, L): Phi^-1(p)
    latent = rng.standard_normal((*p.shape, n))
    latent *= spread
    latent += shared[None, :, :]  # (O, L, n) ~ N(0, 1)
    return latent < threshold[:, :, None]


# --- simulation: tables -----------------------------------------------------------


def _run_major(options: _Options) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pipeline, seed, task and language index of every cell, run-major (the row order of cells and scores)."""
    shape = (len(options.pipelines), len(options.seeds), len(options.tasks), len(options.languages))
    idx_o, idx_s, idx_t, idx_l = (axis.ravel() for axis in np.indices(shape))
    return idx_o, idx_s, idx_t, idx_l


def _to_run_major(x: np.ndarray) -> np.ndarray:
    """(T, O, S, L) -> (O, S, T, L), flattened."""
    return np.transpose(x, (1, 2, 0, 3)).ravel()


def _cells(options: _Options, terms: _Terms, draws: _Draws) -> pd.DataFrame:
    """:attr:`Truth.cells` of the full design: one row per method x order x seed x task x language."""
    idx_o, idx_s, idx_t, idx_l = _run_major(options)  # idx_o: the pipeline
    p_raw = draws.p if options.scale == "logit" else draws.eta  # the probability before clipping
    orders_a = np.array([order for _, order in options.pipelines], dtype=object)
    methods_a = np.array([method for method, _ in options.pipelines], dtype=object)
    tasks_a = np.array(options.tasks, dtype=object)
    languages_a = np.array(options.languages, dtype=object)
    families_a = np.array([options.families[code] for code in options.languages], dtype=object)
    seeds_a = np.array(options.seeds, dtype=np.int64)
    run_ids_a = np.array(options.run_ids, dtype=object)  # (O * S,), pipeline-major
    run_index = idx_o * len(options.seeds) + idx_s
    return pd.DataFrame(
        {
            "task": tasks_a[idx_t],
            "order": orders_a[idx_o],
            "seed": seeds_a[idx_s],
            "run_id": run_ids_a[run_index],
            "language": languages_a[idx_l],
            "family": families_a[idx_l],
            "delta": terms.delta[idx_t, idx_o, idx_l],
            "language_effect": draws.a[idx_t, idx_l],
            "seed_effect": draws.u[idx_t, idx_s],
            "run_effect": draws.v[idx_t, idx_o, idx_s],
            "residual_effect": _to_run_major(draws.e),
            "p_raw": _to_run_major(p_raw),
            "p": _to_run_major(draws.p),
            "clipped": _to_run_major(draws.p != p_raw),
            "family_scale": terms.k_language[idx_l],
            "run_family_effect": draws.w[idx_t, idx_o, idx_s, terms.family_index[idx_l]],
            "outlier": draws.outlier[idx_o, idx_s],
            "linear_predictor": _to_run_major(draws.eta),
            "missing": draws.missing[idx_o, idx_s, idx_l],
            "method": methods_a[idx_o],
        }
    )


def _scores(options: _Options, cells: pd.DataFrame, hits: np.ndarray) -> pd.DataFrame:
    """Scores of the full design, row for row with ``cells``: the mean of each cell's outcomes."""
    n = options.n_examples
    return pd.DataFrame(
        {
            "run_id": cells["run_id"],
            "order": cells["order"],
            "seed": cells["seed"],
            "task": cells["task"],
            "language": cells["language"],
            "metric": options.metric,
            "score": _to_run_major(hits) / n,
            "experiment": options.experiment,
            "method": options.method if len(options.methods) == 1 else cells["method"],
            "n_examples": np.full(len(cells), n, dtype=np.int64),
            "family": cells["family"],
        }
    )


def _kept(options: _Options, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-major masks: cells of kept runs (``seeds_per_order``), and of those the ones not missing."""
    idx_o, idx_s, _, idx_l = _run_major(options)
    S = len(options.seeds)
    kept_run = np.array([[j < options.seeds_per_order[order] for j in range(S)] for _, order in options.pipelines])  # (O, S)
    in_cells = kept_run[idx_o, idx_s]
    return in_cells, in_cells & ~missing[idx_o, idx_s, idx_l]


def _truth(options: _Options, cells: pd.DataFrame, n_clipped: int) -> Truth:
    """The :class:`Truth` of a simulation: its resolved parameters, its (kept) cells and their clipped count."""
    parameters = {parameter.name: getattr(options, parameter.name) for parameter in fields(_Parameters)}
    return Truth(**parameters, cells=cells, n_clipped=n_clipped)


def _stream(seed: int, *key: int) -> np.random.Generator:
    """An independent random stream for one (task, stream[, seed value]) key."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _predictions(
    correct: np.ndarray,
    run_ids: np.ndarray,
    tasks: np.ndarray,
    languages: np.ndarray,
    n: int,
    keep: np.ndarray | None = None,
) -> pd.DataFrame:
    """Long predictions from ``correct`` (runs, T, L, n), built as Arrow dictionary columns (fast).

    ``keep`` (runs * T * L,), run-major like ``correct``: the cells to keep (None: all).
    """
    R, T, L = run_ids.size, tasks.size, languages.size
    total = correct.size
    width = max(4, len(str(n - 1)))
    example_ids = [f"ex{i:0{width}d}" for i in range(n)]

    def column(codes: np.ndarray, values: Sequence[str]) -> pa.Array:
        # Gather from the few distinct strings in Arrow: no Python string per row.
        # large_string converts to pandas' str dtype without a copy.
        return pa.array(list(values), pa.large_string()).take(pa.array(codes))

    per_run = T * L * n
    index = lambda k: np.arange(k, dtype=np.int32)  # noqa: E731
    table = pa.table(
        {
            "run_id": column(np.repeat(index(R), per_run), list(run_ids)),
            "task": column(np.tile(np.repeat(index(T), L * n), R), list(tasks)),
            "language": column(np.tile(np.repeat(index(L), n), R * T), list(languages)),
            "example_id": column(np.tile(index(n), R * T * L), example_ids),
            "correct": pa.array(correct.reshape(total)),
        }
    )
    if keep is not None:
        table = table.filter(pa.array(np.repeat(keep, n)))
    return table.to_pandas()


# --- expectations (for Truth.expected_contrasts) ------------------------------------

# Trapezoid nodes for E[expit(c + s Z)]: on Z for s < 1, on the logistic side
# E[Phi((c - L) / s)] for s >= 1. Both integrands are analytic in a strip and decay
# fast, so the rule converges geometrically; step 0.5 is accurate to ~1e-15.
_Z = np.arange(-9.0, 9.0 + 0.25, 0.5)
_Z_WEIGHTS = np.exp(-0.5 * _Z * _Z) / np.exp(-0.5 * _Z * _Z).sum()
_L = np.arange(-38.0, 38.0 + 0.25, 0.5)
_L_WEIGHTS = expit(_L) * expit(-_L) / (expit(_L) * expit(-_L)).sum()


def _expit_normal_means(center: float, sd: np.ndarray) -> np.ndarray:
    """``E[expit(center + sd Z)]``, Z standard normal, for every ``sd`` (shape of ``sd``)."""
    sd = np.asarray(sd, dtype=float)
    flat = sd.reshape(-1)
    out = np.empty(flat.shape)
    small = flat < 1.0
    if small.any():
        out[small] = expit(center + flat[small, None] * _Z[None, :]) @ _Z_WEIGHTS
    if (~small).any():
        out[~small] = ndtr((center - _L[None, :]) / flat[~small, None]) @ _L_WEIGHTS
    return out.reshape(sd.shape)


def _clip_correction(mean: float, sd: float | np.ndarray, low: float, high: float) -> float | np.ndarray:
    """``E[clip(X, low, high)] - mean`` for ``X ~ N(mean, sd^2)`` (scalar ``sd``, or elementwise)."""
    if np.ndim(sd) == 0:
        if sd == 0.0:
            return min(max(mean, low), high) - mean
        alpha, beta = (low - mean) / sd, (high - mean) / sd
        density = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)  # noqa: E731
        return float(
            (low - mean) * ndtr(alpha) + (high - mean) * ndtr(-beta) + sd * (density(alpha) - density(beta))
        )
    sd = np.asarray(sd, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha, beta = (low - mean) / sd, (high - mean) / sd
        density = lambda z: np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)  # noqa: E731
        value = (low - mean) * ndtr(alpha) + (high - mean) * ndtr(-beta) + sd * (density(alpha) - density(beta))
    return np.where(sd == 0.0, min(max(mean, low), high) - mean, value)


@functools.lru_cache(maxsize=32)
def _t_variance_nodes(df: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``R = (df - 2) / G``, ``G ~ chi2(df)``: ``E[f(R)] ~ sum w f(R)``.

    A Student-t term rescaled to SD ``s`` is ``N(0, R s^2)`` given R. Tanh-sinh
    quadrature on the quantile ``U`` of ``G`` copes with the endpoint behaviour
    (``R -> inf`` as ``U -> 0``); 65 nodes give about 1e-10 for df in (2, 1e4].
    """
    step = 0.125
    k = np.arange(-32, 33) * step
    a = 0.5 * math.pi * np.sinh(k)
    weights = step * 0.5 * math.pi * np.cosh(k) / np.cosh(a) ** 2 / 2.0  # dU of U = (1 + tanh a) / 2
    low, high = expit(2.0 * a), expit(-2.0 * a)  # U and 1 - U, each without cancellation
    g = np.where(low < 0.5, chi2.ppf(low, df), chi2.isf(high, df))
    keep = (weights > 1e-18) & (g > 0.0) & np.isfinite(g)
    return (df - 2.0) / g[keep], weights[keep] / weights[keep].sum()


def _variance_nodes(normal: float, tails: tuple[float, ...], df: float | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Quadrature over the variance of ``N(0, normal) + sum sqrt(tail_k) T_k``; None when it is normal."""
    active = [variance for variance in tails if variance > 0.0]
    if df is None or not active:
        return None
    r, w = _t_variance_nodes(df)
    if len(active) == 1:
        return normal + r * active[0], w
    variances = normal + r[:, None] * active[0] + r[None, :] * active[1]
    weights = w[:, None] * w[None, :]
    keep = weights > 1e-16
    return variances[keep], weights[keep] / weights[keep].sum()


def _expected(
    function: Any,
    center: float,
    normal: float,
    tails: tuple[float, ...],
    df: float | None,
    outliers: tuple[tuple[float, float], ...],
    args: tuple,
) -> float:
    """``E[function(center - outlier shift, sd, *args)]`` over the outlier mixture and the t terms' variance.

    ``normal`` is the variance of the normal terms, ``tails`` those of the
    Student-t terms (``df``; with ``df=None`` they are already in ``normal``).
    """
    nodes = _variance_nodes(normal, tails, df)
    total = 0.0
    for shift, share in outliers:
        if nodes is None:
            value = float(np.asarray(function(center - shift, math.sqrt(normal), *args)).reshape(-1)[0])
        else:
            variances, weights = nodes
            value = float(np.asarray(function(center - shift, np.sqrt(variances), *args)) @ weights)
        total += share * value
    return total


# --- validation -------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float:
    """The mean, exactly the common value when all are equal (an exact 0, the exact planted delta)."""
    first = values[0]
    return first + math.fsum(value - first for value in values) / len(values)


def _names(values: Any, what: str, one: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, (Sequence, np.ndarray)):
        raise InputError(f"{what} must be a list of names, not {values!r}", fix=f"pass {what}=[...]")
    names = tuple(values)
    if not names:
        raise DesignError(f"no {what} given - name at least one {one}")
    for name in names:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise InputError(f"{one} {name!r} is not a name", fix=f"use non-empty strings without outer spaces as {what}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DesignError(f"{what} repeat {duplicates} - name each {one} once")
    return names


def _seed_values(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, (bool, np.bool_)):
        if seeds < 1:
            raise DesignError(f"seeds is {seeds} - simulate at least one seed")
        return tuple(range(1, int(seeds) + 1))
    if isinstance(seeds, str) or not isinstance(seeds, (Sequence, np.ndarray)):
        raise InputError(f"seeds must be a count or a list of seed values, not {seeds!r}", fix="pass seeds=6")
    values = tuple(seeds)
    if not values:
        raise DesignError("no seeds given - simulate at least one seed")
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
            raise InputError(f"seed value {value!r} is not a non-negative integer", fix="use seed values 0, 1, 2, ...")
    values = tuple(int(value) for value in values)
    if len(set(values)) != len(values):
        raise DesignError(f"seed values repeat in {list(values)} - list each seed once")
    return values


def _real(value: Any, what: str, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InputError(f"{what} must be a finite number, not {value!r}", fix=f"pass a number as {what}")
    value = float(value)
    if low is not None and value < low or high is not None and value > high:
        if high is None:
            span = f">= {low}"
        else:
            span = f"in [{low}, {high}]"
        raise InputError(f"{what} is {value}", fix=f"use a value {span}")
    return value


def _count(value: Any, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{what} must be a positive integer, not {value!r}", fix=f"pass {what}=200 or another integer >= 1")
    return int(value)


def _label(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty string, not {value!r}", fix=f"pass {what}='...'")
    return value


def _methods(methods: Any, method: str) -> tuple[tuple[str, ...], str]:
    """The methods simulated and the reference method (``method``, checked against ``methods``)."""
    if methods is None:
        return (method,), method
    names = _names(methods, "methods", "method")
    if method in names:
        return names, method
    if method == _DEFAULT_METHOD:  # left at its default: the first method is the reference
        return names, names[0]
    raise DesignError(
        f"method '{method}' is not one of the methods {list(names)} - with methods, method names the reference "
        "method: name one of them, or leave method out (the first method is the reference)"
    )


def _run_sds(run_sd: Any, orders: tuple[str, ...], methods: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Resolve the run SD of every method x order: method -> order -> SD."""
    if not isinstance(run_sd, Mapping):
        value = _real(run_sd, "run_sd", low=0.0)
        return {method: {order: value for order in orders} for method in methods}
    several = len(methods) > 1
    unknown, ambiguous = [], []
    for key in run_sd:
        if isinstance(key, tuple):
            if not (len(key) == 2 and key[0] in methods and key[1] in orders):
                unknown.append(key)
        elif key in orders and key in methods:
            ambiguous.append(key)
        elif key not in orders and key not in methods:
            unknown.append(key)
    if ambiguous:
        raise DesignError(
            f"run_sd names {ambiguous}, which is both an order and a method - key it by (method, order) "
            "or rename the method"
        )
    if unknown and not several:
        raise DesignError(f"run_sd names orders {unknown} that are not in orders {list(orders)} - check the spelling")
    if unknown:
        raise DesignError(
            f"run_sd names {unknown}, which are not orders {list(orders)}, methods {list(methods)} or (method, order) "
            "pairs of them - check the spelling"
        )
    found: dict[str, dict[str, float]] = {method: {} for method in methods}
    missing = []
    for method in methods:
        for order in orders:
            for key, name in (((method, order), f"run_sd[{(method, order)!r}]"), (method, f"run_sd['{method}']"),
                              (order, f"run_sd['{order}']")):  # fmt: skip
                if key in run_sd:
                    found[method][order] = _real(run_sd[key], name, low=0.0)
                    break
            else:
                missing.append(order if not several else (method, order))
    if missing and not several:
        raise DesignError(f"run_sd gives no SD for orders {missing} - give one SD per order, or one number for all")
    if missing:
        raise DesignError(
            f"run_sd gives no SD for (method, order) {missing} - give one SD per order, per method or per "
            "(method, order), or one number for all"
        )
    return found


def _multipliers(given: Any, what: str, one: str, names: list[str]) -> dict[str, float]:
    """Resolve an SD multiplier per name (1.0 where not given)."""
    if given is None:
        return {name: 1.0 for name in names}
    if not isinstance(given, Mapping):
        raise InputError(f"{what} must map a {one} to a multiplier, not {given!r}", fix=f"pass {what}={{'{names[0]}': 2.0}}")
    unknown = [key for key in given if key not in names]
    if unknown:
        raise DesignError(f"{what} names {one} {unknown} that is not in the design ({', '.join(names)}) - check the spelling")
    return {name: _real(given[name], f"{what}['{name}']", low=0.0) if name in given else 1.0 for name in names}


def _seeds_per_order(given: Any, orders: tuple[str, ...], n_seeds: int) -> dict[str, int]:
    """Resolve the number of seeds every order keeps (all where not given)."""
    if given is None:
        return {order: n_seeds for order in orders}
    if not isinstance(given, Mapping):
        raise InputError(
            f"seeds_per_order must map an order to a seed count, not {given!r}", fix="pass seeds_per_order={'nli>qa': 3}"
        )
    unknown = [key for key in given if key not in orders]
    if unknown:
        raise DesignError(f"seeds_per_order names orders {unknown} that are not in orders {list(orders)} - check the spelling")
    found = {}
    for order in orders:
        count = given.get(order, n_seeds)
        if isinstance(count, (bool, np.bool_)) or not isinstance(count, numbers.Integral):
            raise InputError(f"seeds_per_order['{order}'] must be a whole number, not {count!r}", fix="pass seed counts like 3")
        if not 1 <= count <= n_seeds:
            raise DesignError(
                f"seeds_per_order['{order}'] is {count}, but an order keeps between 1 and all {n_seeds} seeds"
                " - use a count in that range or simulate more seeds"
            )
        found[order] = int(count)
    return found


def _families(languages: tuple[str, ...], families: Mapping[str, str] | None) -> dict[str, str]:
    if families is not None and not isinstance(families, Mapping):
        raise InputError(f"families must map language codes to families, not {families!r}", fix="pass families={'fi': 'Uralic', ...}")
    given = dict(families or {})
    found: dict[str, str] = {}
    resolve = None
    unavailable = ""
    for code in languages:
        family = given.get(code)
        if family is None:
            if resolve is None and not unavailable:
                try:
                    from seqrob.warehouse.languages import resolve  # noqa: PLC0415 (optional; being written)
                except ImportError as error:
                    unavailable = f" (language metadata unavailable: {error})"
            language = resolve(code) if resolve is not None else None
            family = getattr(language, "family", None)
            if not family:
                raise InputError(
                    f"no family known for language '{code}'{unavailable}",
                    fix=f"pass families={{'{code}': FAMILY, ...}}",
                )
        if not isinstance(family, str) or not family.strip():
            raise InputError(f"family of '{code}' is {family!r}", fix="give every language a non-empty family name")
        if family == ANY_FAMILY:
            raise InputError(f"family of '{code}' is '*', which means every family", fix="use a real family name")
        found[code] = family
    return found


def _effects(
    effects: Any,
    orders: tuple[str, ...],
    tasks: tuple[str, ...],
    families: list[str],
    baseline: str,
    methods: tuple[str, ...],
) -> tuple[tuple[dict, ...], dict[tuple[str, str, str, str], float]]:
    """Check the order effects; return them as records and resolved per (task, method, order, family)."""
    if effects is None:
        effects = {}
    if not isinstance(effects, Mapping):
        raise InputError(
            f"effects must map (order, family) to a difference, not {effects!r}",
            fix="pass effects={('nli>qa', 'Uralic'): 0.05}",
        )
    shapes = "(order, family), (task, order, family), (method, order, family) or (method, task, order, family)"
    given: list[dict] = []
    table: dict[tuple, float] = {}
    for key, value in effects.items():
        if not isinstance(key, tuple) or len(key) not in (2, 3, 4) or not all(isinstance(k, str) for k in key):
            raise InputError(
                f"effect key {key!r} is not {shapes if len(methods) > 1 else '(order, family) or (task, order, family)'}",
                fix="key effects like ('nli>qa', 'Uralic')",
            )
        method, task, order, family = _effect_key(key, tasks, methods)
        if order not in orders:
            raise DesignError(f"effect {key!r} names order '{order}', which is not in orders {list(orders)} - check the spelling")
        if order == baseline:
            raise DesignError(
                f"effect {key!r} is on the baseline order '{baseline}' - effects are differences from it; "
                "plant the opposite effect on the other orders"
                + (", or a method effect (method_effects) to shift every order of a method" if len(methods) > 1 else "")
            )
        _check_family(family, families, f"effect {key!r}")
        delta = _real(value, f"effect {key!r}")
        table[(method, task, order, family)] = delta
        record = {"task": task, "order": order, "family": family, "delta": delta}
        given.append(record if method is None else {"method": method, **record})
    resolved: dict[tuple[str, str, str, str], float] = {}
    for task in tasks:
        for method in methods:
            for order in orders:
                for family in families:
                    resolved[(task, method, order, family)] = _most_specific(
                        table, [(m, t, order, f) for m in (method, None) for t in (task, None) for f in (family, ANY_FAMILY)]
                    )
    return tuple(given), resolved


def _effect_key(key: tuple[str, ...], tasks: tuple[str, ...], methods: tuple[str, ...]) -> tuple:
    """``(method, task, order, family)`` of an effect key (None where it names no method or task)."""
    if len(key) == 4:
        method, task, order, family = key
        _check_method(method, methods, f"effect {key!r}")
    elif len(key) == 3:
        first, order, family = key
        if first in tasks and first in methods:
            raise DesignError(
                f"effect {key!r}: '{first}' is both a task and a method - rename one, or key the effect "
                "(method, task, order, family)"
            )
        method, task = (first, None) if first in methods else (None, first)
    else:
        method, task, (order, family) = None, None, key
    if task is not None and task not in tasks:
        also = f" or methods {list(methods)}" if len(methods) > 1 else ""
        raise DesignError(
            f"effect {key!r} names task '{task}', which is not in tasks {list(tasks)}{also} - check the spelling"
        )
    return method, task, order, family


def _check_method(method: str, methods: tuple[str, ...], what: str) -> None:
    if method not in methods:
        hint = " (simulate several with methods=[...], or --methods)" if len(methods) == 1 else ""
        raise DesignError(
            f"{what} names method '{method}', which is not in methods {list(methods)}{hint} - check the spelling"
        )


def _check_family(family: str, families: list[str], what: str) -> None:
    if family != ANY_FAMILY and family not in families:
        raise DesignError(
            f"{what} names family '{family}', which none of the languages is in "
            f"({', '.join(families)}) - check the spelling or add a language of that family"
        )


def _most_specific(table: Mapping[tuple, float], candidates: Sequence[tuple]) -> float:
    """The value of the first candidate key in ``table`` (0.0 if none is)."""
    for candidate in candidates:
        if candidate in table:
            return table[candidate]
    return 0.0


def _method_effects(
    method_effects: Any,
    methods: tuple[str, ...],
    reference: str,
    tasks: tuple[str, ...],
    families: list[str],
) -> tuple[tuple[dict, ...], dict[tuple[str, str, str], float]]:
    """Check the method effects; return them as records and resolved per (task, method, family)."""
    if method_effects is None:
        method_effects = {}
    if not isinstance(method_effects, Mapping):
        raise InputError(
            f"method_effects must map a method or (method, family) to a difference, not {method_effects!r}",
            fix="pass method_effects={'prompt': -0.02} or {('prompt', 'Uralic'): -0.02}",
        )
    given: list[dict] = []
    table: dict[tuple, float] = {}
    for key, value in method_effects.items():
        if isinstance(key, str):
            task, method, family = None, key, ANY_FAMILY
        elif isinstance(key, tuple) and len(key) in (2, 3) and all(isinstance(k, str) for k in key):
            task, method, family = key if len(key) == 3 else (None, *key)
        else:
            raise InputError(
                f"method effect key {key!r} is not method, (method, family) or (task, method, family)",
                fix="key method effects like 'prompt' or ('prompt', 'Uralic')",
            )
        if task is not None and task not in tasks:
            raise DesignError(
                f"method effect {key!r} names task '{task}', which is not in tasks {list(tasks)} - check the spelling"
            )
        _check_method(method, methods, f"method effect {key!r}")
        if method == reference:
            raise DesignError(
                f"method effect {key!r} is on the reference method '{reference}' - method effects are differences "
                "from it; plant the opposite effect on the other methods, or name another reference with method="
            )
        _check_family(family, families, f"method effect {key!r}")
        if (task, method, family) in table:
            raise DesignError(f"method effect {key!r} repeats an effect given for every family - give it once")
        delta = _real(value, f"method effect {key!r}")
        table[(task, method, family)] = delta
        given.append({"task": task, "method": method, "family": family, "delta": delta})
    resolved = {
        (task, method, family): _most_specific(table, [(t, method, f) for t in (task, None) for f in (family, ANY_FAMILY)])
        for task in tasks
        for method in methods
        for family in families
    }
    return tuple(given), resolved


def parse_effect(text: str, *, methods: Sequence[str] = ()) -> tuple[tuple[str, ...], float]:
    """Parse the CLI form ``ORDER:FAMILY=DELTA`` (``"nli>qa:Uralic=0.05"``; FAMILY may be ``*``).

    With ``methods``, ``METHOD:ORDER:FAMILY=DELTA`` (``"prompt:nli>qa:Uralic=0.05"``)
    plants the effect under one method: text before the first ``:`` that names
    one of ``methods`` is the method.

    Returns ``((order, family), delta)`` or ``((method, order, family), delta)``,
    ready to go into ``effects``.
    """
    fix = "write it as ORDER:FAMILY=DELTA, e.g. nli>qa:Uralic=0.05" + (
        ", or METHOD:ORDER:FAMILY=DELTA for one method" if methods else ""
    )
    key, eq, number = str(text).rpartition("=")
    order, colon, family = key.rpartition(":")
    order, family, number = order.strip(), family.strip(), number.strip()
    if not eq or not colon or not order or not family or not number:
        raise InputError(f"effect '{text}' is not ORDER:FAMILY=DELTA", fix=fix)
    delta = _parse_number(number, f"effect '{text}'", fix)
    method, colon, rest = order.partition(":")
    if colon and method.strip() in methods:
        if not rest.strip():
            raise InputError(f"effect '{text}' names no order", fix=fix)
        return (method.strip(), rest.strip(), family), delta
    return (order, family), delta


def parse_method_effect(text: str) -> tuple[str | tuple[str, str], float]:
    """Parse the CLI form ``METHOD:FAMILY=DELTA`` or ``METHOD=DELTA`` (``"prompt:Uralic=-0.02"``; FAMILY may be ``*``).

    Returns ``(method, delta)`` (every family) or ``((method, family), delta)``,
    ready to go into ``method_effects``.
    """
    fix = "write it as METHOD=DELTA or METHOD:FAMILY=DELTA, e.g. prompt=-0.02 or prompt:Uralic=-0.02"
    key, eq, number = str(text).rpartition("=")
    method, colon, family = key.partition(":")
    method, family, number = method.strip(), family.strip(), number.strip()
    if not eq or not method or not number or colon and not family:
        raise InputError(f"method effect '{text}' is not METHOD=DELTA or METHOD:FAMILY=DELTA", fix=fix)
    delta = _parse_number(number, f"method effect '{text}'", fix)
    return ((method, family) if colon else method), delta


def _parse_number(number: str, what: str, fix: str) -> float:
    try:
        value = float(number)
    except ValueError:
        raise InputError(f"{what}: '{number}' is not a number", fix=fix) from None
    if not math.isfinite(value):
        raise InputError(f"{what}: '{number}' is not a finite number", fix=fix)
    return value


# --- files ------------------------------------------------------------------------


def write(simulation: Simulation, directory: str | os.PathLike, *, format: str = "parquet") -> dict[str, Path]:  # noqa: A002
    """Write ``scores.<ext>``, ``predictions.<ext>`` (when kept) and ``truth.json``.

    Parameters
    ----------
    simulation
        What :func:`simulate` returned.
    directory
        Folder to write into (created if missing; files of the same names are replaced).
    format
        ``"parquet"`` (default), ``"csv"`` or ``"jsonl"``. Every format stores
        floats exactly (CSV and JSON Lines with shortest round-trip text).

    Returns
    -------
    dict
        ``{"scores": path, "predictions": path, "truth": path}``; no
        ``"predictions"`` when the simulation kept no outcomes.
    """
    if format not in FORMATS:
        raise InputError(f"unknown format '{format}'", fix=f"use one of {', '.join(FORMATS)}")
    if not isinstance(simulation, Simulation):
        raise InputError(f"expected a Simulation, not {type(simulation).__name__}", fix="pass what simulate() returned")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError("is a file, not a folder", file=str(directory), fix="name a folder to write into")
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    frames = {"scores": simulation.scores, "predictions": simulation.predictions}
    for name, frame in frames.items():
        if frame is None:
            continue
        path = directory / f"{name}.{format}"
        _write_frame(frame, path, format)
        written[name] = path
    written["truth"] = simulation.truth.to_json(directory / "truth.json")
    return written


def _write_frame(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if fmt == "parquet":
            frame.to_parquet(temporary, index=False)
        elif fmt == "csv":
            frame.to_csv(temporary, index=False)  # floats as repr: exact round trip
        elif any(pd.api.types.is_float_dtype(dtype) for dtype in frame.dtypes):
            # pandas' JSON writer rounds floats (15 digits at most); json.dumps writes repr.
            with temporary.open("w", encoding="utf-8") as handle:
                for record in frame.to_dict("records"):
                    handle.write(json.dumps({k: _plain(v) for k, v in record.items()}) + "\n")
        else:
            frame.to_json(temporary, orient="records", lines=True)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
