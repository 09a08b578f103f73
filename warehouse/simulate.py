"""Stored runs simulated from a known truth.

:func:`simulate` draws multi-seed, multi-order, multilingual results (scores and
per-example outcomes, in seqrob's long formats) from a generative model whose
every parameter and every drawn random effect is kept in a :class:`Truth`. Tests
use it, the calibration suite measures type-I error and CI coverage against it,
and users plan experiments with it ("how many seeds to see a 2-point order effect
in Uralic?"). :func:`write` stores a simulation as files that ``seqrob ingest``
reads; ``seqrob simulate`` does both from the command line.

The model is on the probability scale, so the planted effects are in the units
the analyses report (accuracy). See :func:`simulate` for the model and
:meth:`Truth.expected_contrasts` for what "the true difference" means.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.special import ndtr, ndtri

from seqrob.warehouse.errors import DesignError, InputError

__all__ = [
    "DEFAULT_FAMILIES",
    "DEFAULT_LANGUAGES",
    "DEFAULT_ORDERS",
    "FORMATS",
    "Simulation",
    "Truth",
    "parse_effect",
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
_TRUTH_FORMAT = "seqrob-simulation-truth"
_TRUTH_VERSION = 1
# Names the layout of the random streams; bump it if a change alters the draws
# that a given ``seed`` produces.
GENERATOR = "seqrob.simulate/1"

# Stream numbers (second word of every SeedSequence spawn key).
_STREAM_LANGUAGE, _STREAM_EXAMPLE, _STREAM_SEED = 0, 1, 2

_CELL_COLUMNS = (
    "task", "order", "seed", "run_id", "language", "family", "delta",
    "language_effect", "seed_effect", "run_effect", "residual_effect",
    "p_raw", "p", "clipped",
)  # fmt: skip
_CELL_FLOATS = ("delta", "language_effect", "seed_effect", "run_effect", "residual_effect", "p_raw", "p")
_CELL_STRINGS = ("task", "order", "run_id", "language", "family")


# --- the truth --------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Truth:
    """Everything a simulation was drawn from: parameters, drawn effects, cell means.

    Attributes
    ----------
    orders, baseline, seeds, languages, families, tasks
        The design. ``families`` maps every language to its family.
    effects
        The effects as given, one dict per key: ``task`` (None = every task),
        ``order``, ``family`` (``"*"`` = every family) and ``delta``. The resolved
        value for every cell is the ``delta`` column of :attr:`cells`.
    base, language_sd, seed_sd, run_sd, residual_sd, n_examples,
    example_correlation, clip_low, clip_high, outcomes, metric, experiment,
    method, seed
        The parameters of :func:`simulate`; ``run_sd`` is resolved to one SD per order.
    cells
        One row per task x order x seed x language (the rows of ``scores``, in
        the same order): ``task, order, seed, run_id, language, family, delta,
        language_effect, seed_effect, run_effect, residual_effect, p_raw, p,
        clipped``. ``p_raw`` is the sum of the terms, ``p`` the clipped value and
        the expected score of the cell given the drawn effects (the mean over
        examples and outcome draws); ``clipped`` says whether clipping changed it.
    n_clipped
        Number of cells whose ``p_raw`` fell outside ``[clip_low, clip_high]``.
    generator
        Version of the random-stream layout that produced the draws.
    """

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
        """Drawn run effects ``v``: ``task, order, seed, run_id, sd, effect``."""
        table = self.cells.drop_duplicates(["task", "order", "seed"])
        table = table[["task", "order", "seed", "run_id", "run_effect"]].rename(columns={"run_effect": "effect"})
        table.insert(4, "sd", table["order"].map(dict(self.run_sd)).astype(float))
        return table.reset_index(drop=True)

    @property
    def deltas(self) -> pd.DataFrame:
        """Resolved planted effects: ``task, order, family, delta`` (0 where none was given)."""
        table = self.cells.drop_duplicates(["task", "order", "family"])
        return table[["task", "order", "family", "delta"]].reset_index(drop=True)

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
            - ``delta``: the planted difference ``delta[order, family] - delta[baseline, family]``.
            - ``difference``: the population-level expected difference of scores,
              ``E[score | order, family] - E[score | baseline, family]`` over every
              random effect, examples and outcomes. It equals ``delta`` unless
              clipping has non-negligible probability, in which case it is the
              exact expectation of the clipped normal (see Notes). This is the
              value that estimators of an order effect target, and the one
              coverage and type-I error are measured against.
            - ``realised_difference``: the expected difference *given the drawn
              effects* (language, seed, run and residual), i.e. the mean over the
              family's languages and the seeds of ``p[order] - p[baseline]``. The
              seed effects cancel (paired design); run and residual effects do
              not, so it differs from ``difference`` by sampling noise of the
              design, not of the examples.
            - ``n_seeds, n_languages``: cells averaged in ``realised_difference``.

        Notes
        -----
        For a random language of the family and a random seed, the unclipped
        probability of order ``o`` is normal with mean ``base + delta[o, f]`` and
        variance ``language_sd^2 + seed_sd^2 + run_sd[o]^2 + residual_sd^2``. The
        expected clipped value of ``X ~ N(m, s^2)`` on ``[a, b]`` is
        ``m + (a - m) Phi(alpha) + (b - m) Phi(-beta) + s (phi(alpha) - phi(beta))``
        with ``alpha = (a - m) / s`` and ``beta = (b - m) / s``; ``difference`` is
        ``delta`` plus the difference of those corrections. Under the default
        parameters a baseline cell is clipped with probability about 5e-8 (0.98
        is 5.3 SDs above 0.70; 6e-6 with a 0.05 effect), and
        ``|difference - delta|`` stays below 1e-6 for effects up to 0.05.
        """
        orders = list(self.orders)
        if pairwise:
            pairs = [(orders[j], orders[i]) for i in range(len(orders)) for j in range(i + 1, len(orders))]
        else:
            pairs = [(order, self.baseline) for order in orders if order != self.baseline]
        family_order = list(dict.fromkeys(self.families[code] for code in self.languages))
        delta = self.deltas.set_index(["task", "order", "family"])["delta"]
        mean_p = self.cells.groupby(["task", "family", "order"], sort=False)["p"].mean()
        n_languages = pd.Series(self.families).loc[list(self.languages)].value_counts()
        rows = []
        for task in self.tasks:
            for family in family_order:
                for order, reference in pairs:
                    d_order = float(delta[(task, order, family)])
                    d_reference = float(delta[(task, reference, family)])
                    planted = d_order - d_reference
                    bias = self._clip_bias(order, d_order) - self._clip_bias(reference, d_reference)
                    rows.append(
                        {
                            "task": task,
                            "family": family,
                            "order": order,
                            "baseline": reference,
                            "delta": planted,
                            "difference": planted + bias,
                            "realised_difference": float(
                                mean_p[(task, family, order)] - mean_p[(task, family, reference)]
                            ),
                            "n_seeds": len(self.seeds),
                            "n_languages": int(n_languages[family]),
                        }
                    )
        columns = ["task", "family", "order", "baseline", "delta", "difference", "realised_difference"]
        return pd.DataFrame(rows, columns=[*columns, "n_seeds", "n_languages"])

    def _clip_bias(self, order: str, delta: float) -> float:
        """``E[clip(X)] - E[X]`` for the unclipped probability X of a random cell of ``order``."""
        mean = self.base + delta
        sd = math.sqrt(self.language_sd**2 + self.seed_sd**2 + self.run_sd[order] ** 2 + self.residual_sd**2)
        low, high = self.clip_low, self.clip_high
        if sd == 0.0:
            return min(max(mean, low), high) - mean
        alpha, beta = (low - mean) / sd, (high - mean) / sd
        density = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)  # noqa: E731
        return float(
            (low - mean) * ndtr(alpha) + (high - mean) * ndtr(-beta) + sd * (density(alpha) - density(beta))
        )

    # -- serialisation -------------------------------------------------------------

    def to_dict(self) -> dict:
        """A JSON-ready dict; :meth:`from_dict` rebuilds an equal :class:`Truth`."""
        cells = {}
        for column in _CELL_COLUMNS:
            values = self.cells[column].to_numpy()
            if column == "seed":
                cells[column] = [int(x) for x in values]
            elif column == "clipped":
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
            },
            "n_clipped": self.n_clipped,
            "cells": cells,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> Truth:
        """Rebuild a :class:`Truth` from :meth:`to_dict` output."""
        if not isinstance(data, Mapping) or data.get("format") != _TRUTH_FORMAT:
            raise InputError(
                "not a seqrob simulation truth", file=source, fix="pass the truth.json written by seqrob simulate"
            )
        if data.get("version") != _TRUTH_VERSION:
            raise InputError(
                f"truth version {data.get('version')!r} is not {_TRUTH_VERSION}",
                file=source,
                fix="read it with the seqrob version that wrote it",
            )
        try:
            p = data["parameters"]
            raw = data["cells"]
            cells = pd.DataFrame({column: raw[column] for column in _CELL_COLUMNS})
            cells = cells.astype(
                {"seed": "int64", "clipped": "bool", **{column: "float64" for column in _CELL_FLOATS}}
            )
            for column in _CELL_STRINGS:
                cells[column] = cells[column].astype(str)
            return cls(
                orders=tuple(p["orders"]),
                baseline=p["baseline"],
                seeds=tuple(int(s) for s in p["seeds"]),
                languages=tuple(p["languages"]),
                families=dict(p["families"]),
                tasks=tuple(p["tasks"]),
                effects=tuple(dict(effect) for effect in p["effects"]),
                base=float(p["base"]),
                language_sd=float(p["language_sd"]),
                seed_sd=float(p["seed_sd"]),
                run_sd={str(k): float(v) for k, v in p["run_sd"].items()},
                residual_sd=float(p["residual_sd"]),
                n_examples=int(p["n_examples"]),
                example_correlation=float(p["example_correlation"]),
                clip_low=float(p["clip_low"]),
                clip_high=float(p["clip_high"]),
                outcomes=bool(p["outcomes"]),
                metric=p["metric"],
                experiment=p["experiment"],
                method=p["method"],
                seed=int(p["seed"]),
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


@dataclass(frozen=True, eq=False)
class Simulation:
    """Simulated results in seqrob's long formats, and the truth they came from.

    Attributes
    ----------
    scores
        One row per run x task x language: ``run_id, order, seed, task,
        language, metric, score, experiment, method, n_examples, family``.
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
        Planted order effects on the probability scale. Keys ``(order, family)``
        apply to every task; ``(task, order, family)`` to one task and take
        precedence. ``family`` may be ``"*"`` (every family); a named family takes
        precedence over ``"*"``. The most specific key wins:
        ``(task, order, family) > (task, order, "*") > (order, family) > (order, "*")``.
        The baseline order takes no effect (it is the reference, delta = 0).
    base
        Mean probability of a correct answer under the baseline.
    language_sd, seed_sd, residual_sd
        SDs of the language, seed and run x language effects.
    run_sd
        SD of the run (seed x order) effect: one value, or one per order (every
        order named). Different values per order plant a variance effect.
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
    metric, experiment, method
        Labels written into ``scores``.
    seed
        Seed of the random streams (a non-negative integer).
    baseline
        The reference order; default ``"none"`` if it is an order, else the first order.
    clip_low, clip_high
        Bounds that ``p`` is clipped to.

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
        seeds, languages or tasks; an effect naming an order, family or task not
        in the design, or the baseline).

    Warns
    -----
    UserWarning
        When more than 1% of cells are clipped (the count is always in
        ``truth.n_clipped``, the cells in ``truth.cells.clipped``).

    Notes
    -----
    For task t, order o, seed s, language l in family f(l) and example i::

        p_raw[t,o,s,l] = base + a[t,l] + delta[t,o,f(l)] + u[t,s] + v[t,s,o] + e[t,o,s,l]
        p[t,o,s,l]     = clip(p_raw, clip_low, clip_high)
        a ~ N(0, language_sd^2)     language effect, drawn once per task
        u ~ N(0, seed_sd^2)         seed effect, shared by every order of seed s (paired)
        v ~ N(0, run_sd[o]^2)       run effect
        e ~ N(0, residual_sd^2)     run x language effect
        correct[t,o,s,l,i] = 1  if  Phi(rho g[t,l,i] + sqrt(1 - rho^2) h[t,o,s,l,i]) < p[t,o,s,l]
        g, h ~ N(0, 1)              g: example difficulty, shared by every run

    ``rho g + sqrt(1 - rho^2) h`` is standard normal, so ``Phi(.)`` is uniform and
    ``P(correct) = p`` exactly; two runs share ``g``, so their outcomes on the
    same example are positively correlated when ``rho > 0`` (independent when
    ``rho = 0``). The comparison is computed as ``rho g + sqrt(1 - rho^2) h <
    Phi^-1(p)``, the same event. ``score`` is the mean of the cell's outcomes, so
    scores and predictions agree exactly, and ``E[score | drawn effects] = p``.
    All effects are independent across tasks; a run (one order and seed) carries
    one ``run_id`` for all its tasks.

    Random streams: ``SeedSequence(seed, spawn_key=(task index, stream, ...))``
    with one stream for language effects, one for examples ``g``, and one per
    seed value for ``u, v, e, h``. Changing the SDs rescales the same standard
    normal draws, and a seed's draws do not depend on which other seeds are
    simulated (10 seeds extend the same design's 6).

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
    """
    orders_t = _names(orders, "orders", "order")
    tasks_t = _names(tasks, "tasks", "task")
    languages_t = _names(languages, "languages", "language")
    seeds_t = _seed_values(seeds)
    if baseline is None:
        baseline = "none" if "none" in orders_t else orders_t[0]
    elif baseline not in orders_t:
        raise DesignError(f"baseline '{baseline}' is not one of the orders {list(orders_t)} - add it to orders")
    base = _real(base, "base", low=0.0, high=1.0)
    clip_low = _real(clip_low, "clip_low", low=0.0, high=1.0)
    clip_high = _real(clip_high, "clip_high", low=0.0, high=1.0)
    if not clip_low < clip_high:
        raise InputError(f"clip_low {clip_low} is not below clip_high {clip_high}", fix="use 0 <= clip_low < clip_high <= 1")
    language_sd = _real(language_sd, "language_sd", low=0.0)
    seed_sd = _real(seed_sd, "seed_sd", low=0.0)
    residual_sd = _real(residual_sd, "residual_sd", low=0.0)
    run_sds = _run_sds(run_sd, orders_t)
    rho = _real(example_correlation, "example_correlation", low=0.0)
    if not rho < 1.0:
        raise InputError(f"example_correlation is {rho}", fix="use a value in [0, 1)")
    n = _count(n_examples, "n_examples")
    if not isinstance(outcomes, (bool, np.bool_)):
        raise InputError(f"outcomes must be True or False, not {outcomes!r}", fix="pass outcomes=True or False")
    metric = _label(metric, "metric")
    experiment = _label(experiment, "experiment")
    method = _label(method, "method")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, not {seed!r}", fix="pass seed=0 or another integer >= 0")
    seed = int(seed)

    family_of = _families(languages_t, families)
    family_names = list(dict.fromkeys(family_of[code] for code in languages_t))
    given, resolved = _effects(effects, orders_t, tasks_t, family_names, baseline)

    run_ids = [f"{experiment}-{order}-s{value}" for order in orders_t for value in seeds_t]
    if len(set(run_ids)) != len(run_ids):
        raise DesignError("two runs would share a run_id - use order names and seeds that differ")

    T, O, S, L = len(tasks_t), len(orders_t), len(seeds_t), len(languages_t)
    # delta per task x order x language, from the resolved (task, order, family) table.
    delta = np.array(
        [[[resolved[(task, order, family_of[code])] for code in languages_t] for order in orders_t] for task in tasks_t],
        dtype=float,
    ).reshape(T, O, L)
    sd_run = np.array([run_sds[order] for order in orders_t], dtype=float)  # (O,)
    spread = math.sqrt(1.0 - rho * rho)

    a = np.empty((T, L))
    u = np.empty((T, S))
    v = np.empty((T, O, S))
    e = np.empty((T, O, S, L))
    p_raw = np.empty((T, O, S, L))
    hits = np.empty((T, O, S, L), dtype=np.int64)
    correct = np.empty((O, S, T, L, n), dtype=np.int8) if outcomes else None  # row order of predictions

    for t in range(T):
        a[t] = _stream(seed, t, _STREAM_LANGUAGE).standard_normal(L) * language_sd
        g = _stream(seed, t, _STREAM_EXAMPLE).standard_normal((L, n))  # (L, n), shared by all runs
        shared = rho * g
        for j, value in enumerate(seeds_t):
            rng = _stream(seed, t, _STREAM_SEED, value)
            u[t, j] = rng.standard_normal() * seed_sd
            v[t, :, j] = rng.standard_normal(O) * sd_run
            e[t, :, j, :] = rng.standard_normal((O, L)) * residual_sd
            cell = base + a[t][None, :] + delta[t] + u[t, j] + v[t, :, j][:, None] + e[t, :, j, :]  # (O, L)
            p_raw[t, :, j, :] = cell
            threshold = ndtri(np.clip(cell, clip_low, clip_high))  # (O, L): Phi^-1(p)
            latent = rng.standard_normal((O, L, n))
            latent *= spread
            latent += shared[None, :, :]  # (O, L, n) ~ N(0, 1)
            right = latent < threshold[:, :, None]  # (O, L, n)
            hits[t, :, j, :] = right.sum(axis=2)
            if correct is not None:
                correct[:, j, t, :, :] = right

    p = np.clip(p_raw, clip_low, clip_high)
    clipped = p != p_raw
    n_clipped = int(clipped.sum())
    if n_clipped > 0.01 * clipped.size:
        warnings.warn(
            f"{n_clipped} of {clipped.size} cells were clipped to [{clip_low}, {clip_high}]; "
            "expected_contrasts() accounts for it, but effects are no longer additive there",
            stacklevel=2,
        )

    # Cells and scores: one row per order x seed x task x language (run-major).
    shape = (O, S, T, L)
    idx_o, idx_s, idx_t, idx_l = (axis.ravel() for axis in np.indices(shape))
    to_run = lambda x: np.transpose(x, (1, 2, 0, 3)).ravel()  # (T, O, S, L) -> (O, S, T, L)  # noqa: E731
    orders_a = np.array(orders_t, dtype=object)
    tasks_a = np.array(tasks_t, dtype=object)
    languages_a = np.array(languages_t, dtype=object)
    families_a = np.array([family_of[code] for code in languages_t], dtype=object)
    seeds_a = np.array(seeds_t, dtype=np.int64)
    run_ids_a = np.array(run_ids, dtype=object)  # (O * S,), order-major
    run_index = idx_o * S + idx_s
    cells = pd.DataFrame(
        {
            "task": tasks_a[idx_t],
            "order": orders_a[idx_o],
            "seed": seeds_a[idx_s],
            "run_id": run_ids_a[run_index],
            "language": languages_a[idx_l],
            "family": families_a[idx_l],
            "delta": delta[idx_t, idx_o, idx_l],
            "language_effect": a[idx_t, idx_l],
            "seed_effect": u[idx_t, idx_s],
            "run_effect": v[idx_t, idx_o, idx_s],
            "residual_effect": to_run(e),
            "p_raw": to_run(p_raw),
            "p": to_run(p),
            "clipped": to_run(clipped),
        }
    )
    scores = pd.DataFrame(
        {
            "run_id": cells["run_id"],
            "order": cells["order"],
            "seed": cells["seed"],
            "task": cells["task"],
            "language": cells["language"],
            "metric": metric,
            "score": to_run(hits) / n,
            "experiment": experiment,
            "method": method,
            "n_examples": np.full(len(cells), n, dtype=np.int64),
            "family": cells["family"],
        }
    )
    predictions = None if correct is None else _predictions(correct, run_ids_a, tasks_a, languages_a, n)

    truth = Truth(
        orders=orders_t,
        baseline=baseline,
        seeds=seeds_t,
        languages=languages_t,
        families={code: family_of[code] for code in languages_t},
        tasks=tasks_t,
        effects=given,
        base=base,
        language_sd=language_sd,
        seed_sd=seed_sd,
        run_sd=run_sds,
        residual_sd=residual_sd,
        n_examples=n,
        example_correlation=rho,
        clip_low=clip_low,
        clip_high=clip_high,
        outcomes=bool(outcomes),
        metric=metric,
        experiment=experiment,
        method=method,
        seed=seed,
        cells=cells,
        n_clipped=n_clipped,
    )
    return Simulation(scores=scores, predictions=predictions, truth=truth)


def _stream(seed: int, *key: int) -> np.random.Generator:
    """An independent random stream for one (task, stream[, seed value]) key."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _predictions(
    correct: np.ndarray, run_ids: np.ndarray, tasks: np.ndarray, languages: np.ndarray, n: int
) -> pd.DataFrame:
    """Long predictions from ``correct`` (runs, T, L, n), built as Arrow dictionary columns (fast)."""
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
    return table.to_pandas()


# --- validation -------------------------------------------------------------------


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


def _run_sds(run_sd: Any, orders: tuple[str, ...]) -> dict[str, float]:
    if not isinstance(run_sd, Mapping):
        value = _real(run_sd, "run_sd", low=0.0)
        return {order: value for order in orders}
    unknown = [key for key in run_sd if key not in orders]
    if unknown:
        raise DesignError(f"run_sd names orders {unknown} that are not in orders {list(orders)} - check the spelling")
    missing = [order for order in orders if order not in run_sd]
    if missing:
        raise DesignError(f"run_sd gives no SD for orders {missing} - give one SD per order, or one number for all")
    return {order: _real(run_sd[order], f"run_sd['{order}']", low=0.0) for order in orders}


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
) -> tuple[tuple[dict, ...], dict[tuple[str, str, str], float]]:
    """Check the effects; return them as records and resolved per (task, order, family)."""
    if effects is None:
        effects = {}
    if not isinstance(effects, Mapping):
        raise InputError(
            f"effects must map (order, family) to a difference, not {effects!r}",
            fix="pass effects={('nli>qa', 'Uralic'): 0.05}",
        )
    given: list[dict] = []
    table: dict[tuple, float] = {}
    for key, value in effects.items():
        if not isinstance(key, tuple) or len(key) not in (2, 3) or not all(isinstance(k, str) for k in key):
            raise InputError(
                f"effect key {key!r} is not (order, family) or (task, order, family)",
                fix="key effects like ('nli>qa', 'Uralic')",
            )
        task, order, family = key if len(key) == 3 else (None, *key)
        if task is not None and task not in tasks:
            raise DesignError(f"effect {key!r} names task '{task}', which is not in tasks {list(tasks)} - check the spelling")
        if order not in orders:
            raise DesignError(f"effect {key!r} names order '{order}', which is not in orders {list(orders)} - check the spelling")
        if order == baseline:
            raise DesignError(
                f"effect {key!r} is on the baseline order '{baseline}' - effects are differences from it; "
                "plant the opposite effect on the other orders"
            )
        if family != ANY_FAMILY and family not in families:
            raise DesignError(
                f"effect {key!r} names family '{family}', which none of the languages is in "
                f"({', '.join(families)}) - check the spelling or add a language of that family"
            )
        delta = _real(value, f"effect {key!r}")
        table[(task, order, family)] = delta
        given.append({"task": task, "order": order, "family": family, "delta": delta})
    resolved: dict[tuple[str, str, str], float] = {}
    for task in tasks:
        for order in orders:
            for family in families:
                for candidate in ((task, order, family), (task, order, ANY_FAMILY), (None, order, family), (None, order, ANY_FAMILY)):
                    if candidate in table:
                        resolved[(task, order, family)] = table[candidate]
                        break
                else:
                    resolved[(task, order, family)] = 0.0
    return tuple(given), resolved


def parse_effect(text: str) -> tuple[tuple[str, str], float]:
    """Parse the CLI form ``ORDER:FAMILY=DELTA`` (``"nli>qa:Uralic=0.05"``; FAMILY may be ``*``).

    Returns ``((order, family), delta)``, ready to go into ``effects``.
    """
    fix = "write it as ORDER:FAMILY=DELTA, e.g. nli>qa:Uralic=0.05"
    key, eq, number = str(text).rpartition("=")
    order, colon, family = key.rpartition(":")
    order, family, number = order.strip(), family.strip(), number.strip()
    if not eq or not colon or not order or not family or not number:
        raise InputError(f"effect '{text}' is not ORDER:FAMILY=DELTA", fix=fix)
    try:
        delta = float(number)
    except ValueError:
        raise InputError(f"effect '{text}': '{number}' is not a number", fix=fix) from None
    if not math.isfinite(delta):
        raise InputError(f"effect '{text}': '{number}' is not a finite number", fix=fix)
    return (order, family), delta


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
