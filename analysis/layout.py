"""Long scores as arrays: one order x seed x language array per task x metric.

Every resampling and test module reads the scores the same way through
:func:`build_groups`: a :class:`Group` holds one task x metric, its runs (one order x one
seed each, the unit of replication) as rows and its languages as columns, and the matrix
that averages the languages of each family. The bootstrap
(:mod:`~seqrob.analysis.bootstrap`), the tests over seeds
(:mod:`~seqrob.analysis.permutation`, :mod:`~seqrob.analysis.anova`), the variance tests
(:mod:`~seqrob.analysis.variance`) and almost stochastic order
(:mod:`~seqrob.analysis.aso`) all start here, together with the checks of the options
they share. Each takes ``groups=``: groups built once serve every one of them (what
:func:`seqrob.analysis.procedures.run_tests` does), and what only some need (the
seed-level scores, the per-example outcomes, the groups without the all-languages
column) is computed on first use and kept on the group.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from seqrob.analysis.design import FEW_SEEDS
from seqrob.warehouse.errors import DesignError, InputError

if TYPE_CHECKING:
    from seqrob.analysis.outcomes import _Outcomes, _Predictions

__all__ = ["FEW_SEEDS", "FewSeedsWarning", "Group", "build_groups"]

# At or below FEW_SEEDS seeds a percentile bootstrap over seeds undercovers; the
# functions say so and point to :mod:`seqrob.analysis.permutation`.

_ALTERNATIVES = ("two-sided", "greater", "less")


class FewSeedsWarning(UserWarning):
    """The design has too few seeds for the requested inference to be trusted as is."""


@dataclass(frozen=True)
class Group:
    """One task x metric, as arrays (built by :func:`build_groups`).

    Runs are order-major (all runs of ``orders[0]``, then ``orders[1]``...), seeds in
    order of first appearance within each order. Frozen, so that what is derived from
    the arrays (:meth:`seed_level`, :meth:`outcomes`, :meth:`with_overall`) can be kept.
    """

    task: str | None
    metric: str | None
    orders: tuple[str, ...]
    run_order: np.ndarray  # (R,) index into orders
    run_seed: np.ndarray  # (R,) seed values (object)
    run_id: np.ndarray | None  # (R,) run ids, when the scores name them
    languages: tuple[str, ...]
    families: tuple[str | None, ...]  # columns of family_matrix; None = all languages
    family_matrix: np.ndarray  # (L, F): column f averages the languages of families[f]
    family_sizes: np.ndarray  # (F,) languages per column
    values: np.ndarray  # (R, L) scores
    notes: list[str] = field(default_factory=list)
    predictions: _Predictions | None = None  # the per-example outcomes of every group, read once
    _outcome_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def order_sizes(self) -> np.ndarray:
        return np.bincount(self.run_order, minlength=len(self.orders))

    def runs_of(self, index: int) -> np.ndarray:
        return np.flatnonzero(self.run_order == index)

    def seed_level(self) -> np.ndarray:
        """Seed-level scores (R, F): each run's mean over the languages of each family (read-only)."""
        return self._seed_level

    @cached_property
    def _seed_level(self) -> np.ndarray:
        level = self.values @ self.family_matrix
        level.flags.writeable = False  # shared by every caller
        return level

    def common_seeds(self, orders: Sequence[int]) -> list:
        """Seed values present in every one of ``orders``, in the first order's sequence."""
        sets = [list(self.run_seed[self.runs_of(o)]) for o in orders]
        shared = set(sets[0]).intersection(*map(set, sets[1:]))
        return [s for s in sets[0] if s in shared]

    def aligned(self, orders: Sequence[int], seeds: Sequence) -> np.ndarray:
        """Run indices (len(orders), len(seeds)) of the given seeds in each order."""
        out = np.empty((len(orders), len(seeds)), dtype=np.int64)
        for i, o in enumerate(orders):
            runs = self.runs_of(o)
            position = {s: r for s, r in zip(self.run_seed[runs], runs)}
            out[i] = [position[s] for s in seeds]
        return out

    def with_overall(self, overall: bool) -> Group:
        """This group with (``True``) or without (``False``) the all-languages column ``None``.

        Groups are built with it (``build_groups(..., overall=True)``, the default) to
        serve both; the group without it is made once and kept.
        """
        has = None in self.families
        if overall == has:
            return self
        if overall:
            raise InputError(
                f"the groups were built without the all-languages column{_where(self)}",
                fix="build them with build_groups(..., overall=True)",
            )
        return self._without_overall

    @cached_property
    def _without_overall(self) -> Group:
        keep = np.array([f is not None for f in self.families])
        # Contiguous, as build_groups(overall=False) makes it: the products give the same bits.
        matrix = np.ascontiguousarray(self.family_matrix[:, keep])
        return replace(self, families=tuple(f for f in self.families if f is not None), family_matrix=matrix,
                       family_sizes=self.family_sizes[keep])  # fmt: skip

    def outcomes(self, outcome: str | None = None) -> tuple[_Outcomes | None, str]:
        """The per-example outcomes of ``outcome`` (None: the first kind that reproduces the
        scores), or None and why not; read once per kind from :attr:`predictions`."""
        if outcome not in self._outcome_cache:
            if self.predictions is None:
                return None, "no predictions given"
            from seqrob.analysis.outcomes import _outcomes  # noqa: PLC0415 (outcomes imports this module)

            self._outcome_cache[outcome] = _outcomes(self, self.predictions, outcome)
        return self._outcome_cache[outcome]


def _default_orders(values: Iterable[str]) -> list[str]:
    """Orders in order of first appearance, with the baseline ``none`` first if present."""
    seen = list(dict.fromkeys(values))
    if "none" in seen:
        seen.remove("none")
        seen.insert(0, "none")
    return seen


def _require_columns(frame: pd.DataFrame, names: dict[str, str | None], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(
            f"{what} must be a pandas DataFrame, not {type(frame).__name__}", fix=f"pass {what} as a long DataFrame"
        )
    for argument, column in names.items():
        if column is None:
            continue
        if not isinstance(column, str):
            raise InputError(f"{argument} must be a column name, not {column!r}", fix=f"pass {argument}='...'")
        if column not in frame.columns:
            raise InputError(
                f"{what} has no column '{column}' (the {argument} column)",
                fix=f"rename a column to '{column}' or pass {argument}='<your column>'",
            )


def _families_of(frame: pd.DataFrame, language: str, family: str) -> pd.Series:
    """Family of every row: the ``family`` column where given, else seqrob's language metadata."""
    given = (
        frame[family].astype(object) if family in frame.columns else pd.Series(None, index=frame.index, dtype=object)
    )
    given = given.where(given.notna() & (given.astype(str).str.strip() != ""), None)
    missing = given.isna()
    if missing.any():
        from seqrob.warehouse.languages import resolve  # noqa: PLC0415 (only when needed)

        found = {}
        for code in pd.unique(frame.loc[missing, language]):
            entry = resolve(str(code))
            name = getattr(entry, "family", None)
            if not name:
                raise InputError(
                    f"no family known for language '{code}'",
                    column=family,
                    fix=f"add a '{family}' column that gives it",
                )
            found[code] = name
        given = given.copy()
        given[missing] = frame.loc[missing, language].map(found)
    clash = (
        pd.DataFrame({"l": frame[language].to_numpy(), "f": given.to_numpy()}).groupby("l", sort=False)["f"].nunique()
    )
    if (clash > 1).any():
        code = clash.index[clash > 1][0]
        raise InputError(f"language '{code}' is given two families", column=family, fix="give each language one family")
    return given


def _codes(values) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and the distinct values, in order of first appearance."""
    codes, uniques = pd.factorize(pd.Series(values), use_na_sentinel=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def build_groups(
    scores: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    *,
    dv: str = "score",
    order: str = "order",
    unit: str = "seed",
    language: str = "language",
    family: str = "family",
    task: str | None = "task",
    metric: str | None = "metric",
    run: str | None = "run_id",
    example: str = "example_id",
    orders: Sequence[str] | None = None,
    overall: bool = True,
) -> list[Group]:
    """Long scores (and predictions) -> one :class:`Group` per task x metric.

    Parameters
    ----------
    scores, predictions
        Long scores and optional per-example outcomes, as in
        :func:`~seqrob.analysis.bootstrap.paired_bootstrap`. The predictions are read
        once for all groups; each group joins its own on first use (:meth:`Group.outcomes`).
    dv, order, unit, language, family, task, metric, run, example, orders
        Column names and the orders to keep, as in ``paired_bootstrap``.
    overall
        Add the all-languages column (family None). Groups built with it serve the
        functions called with ``overall=False`` too (:meth:`Group.with_overall`).

    Returns
    -------
    list of Group
        In order of first appearance of each task x metric; runs order-major, languages
        scored in every run only (a warning names the others).

    Notes
    -----
    The columns are turned into integer codes once; each group is then a few numpy
    operations, so that thousands of tasks (simulations) stay cheap. Pass the result as
    ``groups=`` to :func:`~seqrob.analysis.permutation.seed_t_test`,
    :func:`~seqrob.analysis.permutation.sign_flip_test`,
    :func:`~seqrob.analysis.permutation.permutation_test`,
    :func:`~seqrob.analysis.anova.order_anova`,
    :func:`~seqrob.analysis.bootstrap.paired_bootstrap`,
    :func:`~seqrob.analysis.variance.variance_tests` and
    :func:`~seqrob.analysis.aso.aso_table` to read the scores once for all of them.
    """
    columns = {"run": run, "task": task, "language": language, "example": example}  # as given, for the predictions
    _require_columns(scores, {"dv": dv, "order": order, "unit": unit, "language": language}, "scores")
    task = task if task is not None and task in scores.columns else None
    metric = metric if metric is not None and metric in scores.columns else None
    run = run if run is not None and run in scores.columns else None
    if scores.empty:
        raise DesignError("scores has no rows - nothing to analyse")
    if scores[unit].isna().any():
        raise InputError(
            f"{int(scores[unit].isna().sum())} rows have no {unit}", column=unit, fix="give every run its seed"
        )
    raw = scores[dv]
    numbers = pd.to_numeric(raw, errors="coerce")
    bad = numbers.isna() & raw.notna()
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"score {raw.iloc[position]!r} is not a number", row=position + 1, column=dv, fix="give numbers"
        )
    value = numbers.to_numpy(dtype=float)
    if np.isinf(value).any():
        raise InputError("scores contain an infinite value", column=dv, fix="give finite scores")
    keep = ~np.isnan(value)
    if not keep.all():
        warnings.warn(f"{int((~keep).sum())} scores are missing; their cells are dropped", stacklevel=3)
    order_code, order_names = _codes(scores[order].astype(str))
    if orders is not None:
        if isinstance(orders, str) or len(orders) == 0:
            raise InputError(f"orders must be a list of orders, not {orders!r}", fix="pass orders=['none', 'nli>qa']")
        wanted = [str(o) for o in orders]
        absent = [o for o in wanted if o not in set(order_names)]
        if absent:
            raise DesignError(
                f"orders {absent} are not in the scores (orders there: {sorted(order_names)}) - check the spelling"
            )
        keep &= np.isin(order_names[order_code], wanted)
    else:
        wanted = None
    families = _families_of(scores, language, family).to_numpy(dtype=object)
    unit_code, unit_values = _codes(scores[unit])
    language_code, language_names = _codes(scores[language].astype(str))
    first_row = np.unique(language_code, return_index=True)[1]
    family_of = dict(zip(language_names[language_code[first_row]], families[first_row]))
    task_code, task_names = (
        _codes(scores[task].astype(str)) if task else (np.zeros(len(scores), np.int64), np.array([""], object))
    )
    metric_code, metric_names = (
        _codes(scores[metric].astype(str)) if metric else (np.zeros(len(scores), np.int64), np.array([""], object))
    )
    run_values = scores[run].astype(str).to_numpy(dtype=object) if run else None

    rows = np.flatnonzero(keep)
    key = task_code[rows] * len(metric_names) + metric_code[rows]
    group_keys, first = np.unique(key, return_index=True)
    sequence = np.argsort(first, kind="stable")  # groups in order of first appearance
    by_key = np.argsort(key, kind="stable")
    bounds = np.searchsorted(key[by_key], group_keys)
    bounds = np.append(bounds, key.size)
    out = []
    for g in sequence:
        members = rows[by_key[bounds[g] : bounds[g + 1]]]  # in file order
        k = group_keys[g]
        out.append(
            _group(
                task_names[k // len(metric_names)],
                metric_names[k % len(metric_names)],
                members,
                value,
                order_code,
                order_names,
                unit_code,
                unit_values,
                language_code,
                language_names,
                family_of,
                run_values,
                wanted,
                overall,
            )  # fmt: skip
        )
    if predictions is not None:
        if columns["run"] is None:
            raise InputError("predictions are joined to the scores on their run", fix="pass run='run_id'")
        from seqrob.analysis.outcomes import _read_predictions  # noqa: PLC0415 (outcomes imports this module)

        data = _read_predictions(predictions, **columns)  # once, for every group
        out = [replace(group, predictions=data) for group in out]
    return out


def _read_groups(
    scores: pd.DataFrame, groups: Sequence[Group] | None, predictions=None, *, overall: bool, **columns
) -> list[Group]:
    """What a function's ``groups=`` stands for: the groups as given, with or without the
    all-languages column as ``overall`` asks, else ``scores`` (and ``predictions``) read now."""
    if groups is None:
        return build_groups(scores, predictions, overall=overall, **columns)
    if isinstance(groups, Group) or not all(isinstance(group, Group) for group in groups):
        raise InputError("groups must be the list build_groups returns", fix="pass groups=build_groups(scores, ...)")
    if predictions is not None and any(group.predictions is None for group in groups):
        raise InputError(
            "the groups were built without the predictions",
            fix="build them with build_groups(scores, predictions, ...)",
        )
    return [group.with_overall(overall) for group in groups]


def _group(
    task_name, metric_name, members, value, order_code, order_names, unit_code, unit_values,
    language_code, language_names, family_of, run_values, wanted, overall,
) -> Group:  # fmt: skip
    where = " ".join(x for x in (task_name, metric_name) if x)
    where = f" ({where})" if where else ""
    o_code, u_code, l_code = order_code[members], unit_code[members], language_code[members]
    present = order_names[np.unique(o_code)]
    if wanted is not None:
        names = [o for o in wanted if o in set(present)]
    else:
        names = _default_orders(order_names[o_code[np.sort(np.unique(o_code, return_index=True)[1])]])
    position = {name: i for i, name in enumerate(order_names)}
    rank = np.full(len(order_names), -1, dtype=np.int64)
    for i, name in enumerate(names):
        rank[position[name]] = i
    o_rank = rank[o_code]

    # Runs: order-major, seeds by first appearance within the order.
    run_key = o_rank * len(unit_values) + u_code
    run_keys, run_first = np.unique(run_key, return_index=True)
    run_sequence = np.lexsort((run_first, run_keys // len(unit_values)))
    run_keys = run_keys[run_sequence]
    run_of_row = np.searchsorted(run_keys, run_key, sorter=np.argsort(run_keys))
    run_of_row = np.argsort(run_keys)[run_of_row]
    languages, language_first = np.unique(l_code, return_index=True)
    languages = languages[np.argsort(language_first, kind="stable")]
    slot = np.full(len(language_names), -1, dtype=np.int64)
    slot[languages] = np.arange(languages.size)
    column = slot[l_code]
    R, L = run_keys.size, languages.size
    cell = run_of_row * L + column
    seen = np.bincount(cell, minlength=R * L)
    if (seen > 1).any():
        twice = members[np.flatnonzero(seen[cell] > 1)[0]]
        raise DesignError(
            f"two scores for order '{order_names[order_code[twice]]}' seed {unit_values[unit_code[twice]]} "
            f"language '{language_names[language_code[twice]]}'{where} - "
            "analyse one method/experiment at a time (filter the scores first)"
        )
    values = np.full(R * L, np.nan)
    values[cell] = value[members]
    values, codes, notes = _complete_languages(values.reshape(R, L), [str(c) for c in language_names[languages]], where)
    columns, matrix = _family_matrix(codes, family_of, overall)
    run_ids = None
    if run_values is not None:
        run_ids = np.empty(R, dtype=object)
        run_ids[run_of_row] = run_values[members]
    return Group(
        task=task_name or None,
        metric=metric_name or None,
        orders=tuple(names),
        run_order=run_keys // len(unit_values),
        run_seed=unit_values[run_keys % len(unit_values)],
        run_id=run_ids,
        languages=tuple(codes),
        families=tuple(columns),
        family_matrix=matrix,
        family_sizes=(matrix > 0).sum(axis=0),
        values=values,
        notes=notes,
    )


def _complete_languages(values: np.ndarray, codes: list[str], where: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Keep the languages scored in every run: values (R, L'), their codes, and a note on the rest."""
    notes: list[str] = []
    complete = ~np.isnan(values).any(axis=0)
    if not complete.all():
        dropped = [code for code, ok in zip(codes, complete) if not ok]
        text = f"languages {dropped} are missing for some runs{where} and are left out"
        notes.append(text)
        warnings.warn(text, stacklevel=5)
        codes = [code for code, ok in zip(codes, complete) if ok]
        values = values[:, complete]
    if not codes:
        raise DesignError(f"no language is scored in every run{where} - nothing to compare")
    return values, codes, notes


def _family_matrix(codes: list[str], family_of: dict, overall: bool) -> tuple[list[str | None], np.ndarray]:
    """The family columns (None: all languages) and the (L, F) matrix that averages each one's languages."""
    columns: list[str | None] = list(dict.fromkeys(family_of[code] for code in codes))
    if overall:
        columns.append(None)
    matrix = np.zeros((len(codes), len(columns)))
    for j, name in enumerate(columns):
        member = np.array([name is None or family_of[code] == name for code in codes])
        matrix[member, j] = 1.0 / member.sum()
    return columns, matrix


def _where(group: Group) -> str:
    """`` (task metric)`` for messages, or nothing when the group is unnamed."""
    text = " ".join(x for x in (group.task, group.metric) if x)
    return f" ({text})" if text else ""


def _pairs(n_orders: int) -> list[tuple[int, int]]:
    """Every pair (later, earlier) of order indices: the contrast is later - earlier."""
    return [(j, i) for i in range(n_orders) for j in range(i + 1, n_orders)]


def _term(orders: Sequence[str], pair: tuple[int, int]) -> str:
    return f"{orders[pair[0]]} vs {orders[pair[1]]}"


def _check_options(confidence: float, alternative: str) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must be in (0, 1), not {confidence!r}", fix="pass confidence=0.95")
    if alternative not in _ALTERNATIVES:
        raise InputError(
            f"alternative must be one of {_ALTERNATIVES}, not {alternative!r}", fix="pass alternative='two-sided'"
        )


def _positive_int(value, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{what} must be an integer >= {minimum}, not {value!r}", fix=f"pass {what}=1000")
    return int(value)

