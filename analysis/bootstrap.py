"""Paired hierarchical bootstrap over seeds and examples (the MultiBERTs multi-bootstrap).

The unit of replication is the run (one order x one seed): every language and every
example of a run shares that run's deviation. So the bootstrap resamples *seeds*, never
languages within a run, and -- when per-example outcomes are stored -- examples within
each language. Both are drawn once per replicate and applied to every order (the same
seeds and the same examples in every arm): that is what "paired" means here.

:func:`paired_bootstrap` computes, for every task x metric x family at once, the mean
per order, every pairwise order difference, the across-seed SD per order and every SD
ratio, with percentile and BCa intervals. It is vectorised: seed weights are multinomial
count matrices (B x S), example weights are B x N_l count matrices per language applied
to the run x example outcome matrices as matrix products, B processed in blocks.

The helpers that turn long scores into an order x seed x language array (``_groups``)
are shared with :mod:`~seqrob.analysis.permutation`, :mod:`~seqrob.analysis.variance`
and :mod:`~seqrob.analysis.aso`, so that every module reads the data the same way.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from seqrob.analysis.results import result_frame
from seqrob.warehouse.errors import DesignError, InputError

__all__ = ["FEW_SEEDS", "FewSeedsWarning", "paired_bootstrap"]

#: At or below this many seeds a percentile bootstrap over seeds undercovers; the
#: functions say so and point to :mod:`seqrob.analysis.permutation`.
FEW_SEEDS = 5

_STATISTICS = ("bootstrap_mean", "contrast", "sd", "sd_ratio")
_INTERVALS = ("percentile", "bca")
_ALTERNATIVES = ("two-sided", "greater", "less")
# Scores are accepted as reproduced by the per-example outcomes when they agree to this
# (a score rounded to three decimals still matches).
_MATCH_TOLERANCE = 5e-4
# Bound on the example-weight block (replicates x examples) held at once.
_BLOCK_CELLS = 2_000_000
# Threads for the per-language example resampling (the draws, counts and products release the GIL).
_WORKERS = min(2, os.cpu_count() or 1)


class FewSeedsWarning(UserWarning):
    """The design has too few seeds for the requested inference to be trusted as is."""


# --- reading the scores ------------------------------------------------------------


@dataclass
class _Group:
    """One task x metric, as arrays.

    Runs are order-major (all runs of ``orders[0]``, then ``orders[1]``...), seeds in
    order of first appearance within each order.
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

    @property
    def order_sizes(self) -> np.ndarray:
        return np.bincount(self.run_order, minlength=len(self.orders))

    def runs_of(self, index: int) -> np.ndarray:
        return np.flatnonzero(self.run_order == index)

    def seed_level(self) -> np.ndarray:
        """Seed-level scores (R, F): each run's mean over the languages of each family."""
        return self.values @ self.family_matrix

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


def _groups(
    scores: pd.DataFrame,
    *,
    dv: str,
    order: str,
    unit: str,
    language: str,
    family: str,
    task: str | None,
    metric: str | None,
    run: str | None,
    orders: Sequence[str] | None,
    overall: bool,
) -> list[_Group]:
    """Long scores -> one :class:`_Group` per task x metric (complete languages only).

    The columns are turned into integer codes once; each group is then a few numpy
    operations, so that thousands of tasks (simulations) stay cheap.
    """
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
    return out


def _group(
    task_name, metric_name, members, value, order_code, order_names, unit_code, unit_values,
    language_code, language_names, family_of, run_values, wanted, overall,
) -> _Group:  # fmt: skip
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
    values = values.reshape(R, L)
    codes = [str(c) for c in language_names[languages]]
    notes: list[str] = []
    complete = ~np.isnan(values).any(axis=0)
    if not complete.all():
        dropped = [code for code, ok in zip(codes, complete) if not ok]
        text = f"languages {dropped} are missing for some runs{where} and are left out"
        notes.append(text)
        warnings.warn(text, stacklevel=4)
        codes = [code for code, ok in zip(codes, complete) if ok]
        values = values[:, complete]
    if not codes:
        raise DesignError(f"no language is scored in every run{where} - nothing to compare")
    family_names = list(dict.fromkeys(family_of[code] for code in codes))
    columns: list[str | None] = list(family_names)
    if overall:
        columns.append(None)
    matrix = np.zeros((len(codes), len(columns)))
    for j, name in enumerate(columns):
        member = np.array([name is None or family_of[code] == name for code in codes])
        matrix[member, j] = 1.0 / member.sum()
    run_ids = None
    if run_values is not None:
        run_ids = np.empty(R, dtype=object)
        run_ids[run_of_row] = run_values[members]
    return _Group(
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


# --- per-example outcomes ----------------------------------------------------------


@dataclass
class _Outcomes:
    """Per-language run x example outcomes of one group, ready for matrix products."""

    kind: str  # "correct", "value" or "f1"
    arrays: list[np.ndarray]  # per language (N_l, R) or (N_l, 3R) for f1 (tp | fp | fn)
    scale: float  # multiply the metric by this to reach the scores' units
    observed: np.ndarray  # (R, L) the metric on all examples, in the scores' units
    n_examples: list[int]


_KINDS = {"correct": ("correct",), "value": ("value",), "f1": ("tp", "fp", "fn")}


@dataclass
class _Predictions:
    """Predictions factorised once for all groups."""

    task: np.ndarray  # codes
    by_task: np.ndarray  # row numbers sorted by task code
    task_bounds: np.ndarray  # rows of task code t: by_task[task_bounds[t]:task_bounds[t + 1]]
    tasks: dict
    run: np.ndarray
    runs: dict
    language: np.ndarray
    languages: dict
    example: np.ndarray
    n_example_ids: int
    columns: dict  # outcome column -> float array
    has_task: bool


def _read_predictions(
    predictions: pd.DataFrame, *, run: str, task: str | None, language: str, example: str
) -> _Predictions:
    _require_columns(predictions, {"run": run, "language": language, "example": example}, "predictions")
    kinds = [k for k, cols in _KINDS.items() if all(c in predictions.columns for c in cols)]
    if not kinds:
        raise InputError(
            "predictions have none of the outcome columns 'correct', 'value' or 'tp, fp, fn'",
            fix="add one of them, or leave predictions out to resample seeds only",
        )

    def codes(column: str) -> tuple[np.ndarray, dict]:
        values, uniques = pd.factorize(predictions[column], use_na_sentinel=True)
        return values.astype(np.int32), {str(u): i for i, u in enumerate(uniques)}  # int32: half the memory

    has_task = task is not None and task in predictions.columns
    task_codes, tasks = codes(task) if has_task else (np.zeros(len(predictions), dtype=np.int32), {"": 0})
    run_codes, runs = codes(run)
    language_codes, languages = codes(language)
    example_codes, example_uniques = pd.factorize(predictions[example], use_na_sentinel=True)
    example_codes = example_codes.astype(np.int32)
    columns = {}
    for kind in kinds:
        for name in _KINDS[kind]:
            values = pd.to_numeric(predictions[name], errors="coerce").to_numpy(dtype=float)
            columns[name] = values
    # Rows grouped by task, so that each task x metric reads only its own rows.
    by_task = np.argsort(task_codes, kind="stable").astype(np.int32 if len(task_codes) < 2**31 else np.int64)
    task_bounds = np.searchsorted(task_codes[by_task], np.arange(len(tasks) + 1))
    return _Predictions(
        task=task_codes,
        by_task=by_task,
        task_bounds=task_bounds,
        tasks=tasks,
        run=run_codes,
        runs=runs,
        language=language_codes,
        languages=languages,
        example=example_codes,
        n_example_ids=len(example_uniques),
        columns=columns,
        has_task=has_task,
    )


def _outcomes(group: _Group, data: _Predictions, outcome: str | None) -> tuple[_Outcomes | None, str]:
    """The group's per-example outcomes, or None and the reason."""
    if group.run_id is None:
        return None, "the scores name no run_id to join the predictions on"
    task_code = data.tasks.get(group.task or "", None) if data.has_task else 0
    if task_code is None:
        return None, f"no predictions for task '{group.task}'"
    R, L = group.values.shape
    run_lookup = np.full(len(data.runs) + 1, -1, dtype=np.int64)
    for r, rid in enumerate(group.run_id):
        code = data.runs.get(str(rid))
        if code is not None:
            run_lookup[code] = r
    language_lookup = np.full(len(data.languages) + 1, -1, dtype=np.int64)
    for l, code in enumerate(group.languages):
        c = data.languages.get(code)
        if c is not None:
            language_lookup[c] = l
    candidates = data.by_task[data.task_bounds[task_code] : data.task_bounds[task_code + 1]]
    r_all = run_lookup[data.run[candidates]]  # code -1 (missing) maps to the last entry, -1
    l_all = language_lookup[data.language[candidates]]
    keep = (r_all >= 0) & (l_all >= 0) & (data.example[candidates] >= 0)
    rows = candidates[keep]
    if rows.size == 0:
        return None, "no predictions match these runs and languages"
    key = l_all[keep] * data.n_example_ids + data.example[rows]
    r = r_all[keep]
    del candidates, r_all, l_all, keep  # the predictions can be large: free what is done with
    cells, position = np.unique(key, return_inverse=True)  # one cell per language x example
    del key
    cell_language = cells // data.n_example_ids
    slot = position * R + r
    del position, r
    seen = np.bincount(slot, minlength=cells.size * R)
    if (seen > 1).any():
        raise InputError(
            "predictions repeat a run x language x example",
            fix="keep one row per run, task, language and example_id",
        )
    full = (seen.reshape(cells.size, R) == 1).all(axis=1)
    counts = np.bincount(cell_language[full], minlength=L)
    if (counts == 0).any():
        lacking = [group.languages[l] for l in np.flatnonzero(counts == 0)]
        return None, f"languages {lacking} have no example with an outcome for every run"
    notes = []
    if not full.all():
        notes.append(f"{int((~full).sum())} examples lack an outcome for some run and are left out")

    kinds = [outcome] if outcome is not None else [k for k in _KINDS if all(c in data.columns for c in _KINDS[k])]
    misfit = []
    for kind in kinds:
        if not all(c in data.columns for c in _KINDS[kind]):
            raise InputError(
                f"predictions have no {' / '.join(_KINDS[kind])} column for outcome='{kind}'",
                fix="name an outcome they have",
            )
        dense = []
        for name in _KINDS[kind]:
            values = np.full(cells.size * R, np.nan)
            values[slot] = data.columns[name][rows]
            dense.append(values.reshape(cells.size, R)[full])
        if any(np.isnan(d).any() for d in dense):
            misfit.append(f"{kind}: missing or non-numeric outcomes")
            continue
        language_of = cell_language[full]
        order_ = np.argsort(language_of, kind="stable")
        bounds = np.searchsorted(language_of[order_], np.arange(L + 1))
        arrays, metric = [], np.empty((R, L))
        for l in range(L):
            block = [d[order_[bounds[l] : bounds[l + 1]]] for d in dense]  # (N_l, R) each
            if kind == "f1":
                tp, fp, fn = (b.sum(axis=0) for b in block)
                metric[:, l] = _f1(tp, fp, fn)
                arrays.append(np.ascontiguousarray(np.concatenate(block, axis=1), dtype=np.float32))
            else:
                metric[:, l] = block[0].mean(axis=0)
                exact = kind == "correct" or np.array_equal(block[0], np.round(block[0]))
                arrays.append(np.ascontiguousarray(block[0], dtype=np.float32 if exact else np.float64))
        scale, gap = _scale(metric, group.values)
        if gap <= _MATCH_TOLERANCE * scale or outcome is not None:
            if gap > _MATCH_TOLERANCE * scale:
                warnings.warn(
                    f"outcome='{kind}' reproduces the scores only to {gap:.3g}; the bootstrap uses the outcomes",
                    stacklevel=4,
                )
            group.notes.extend(notes)
            for text in notes:
                warnings.warn(text, stacklevel=4)
            return _Outcomes(
                kind=kind,
                arrays=arrays,
                scale=scale,
                observed=metric * scale,
                n_examples=[int(a.shape[0]) for a in arrays],
            ), ""
        misfit.append(f"{kind} differs from the scores by up to {gap:.3g}")
    return None, "the predictions do not reproduce the scores (" + "; ".join(misfit) + ")"


def _f1(tp, fp, fn):
    denominator = 2.0 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2.0 * tp / np.where(denominator > 0, denominator, 1.0), 0.0)


def _scale(metric: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The factor (1 or 100) that maps the outcomes' metric onto the scores, and the worst gap."""
    best = (1.0, math.inf)
    for factor in (1.0, 100.0):
        gap = float(np.max(np.abs(metric * factor - scores)))
        if gap < best[1]:
            best = (factor, gap)
    return best


# --- the resampling engine ---------------------------------------------------------


def _seed_weights(group: _Group, paired: bool, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Run weights (B, R): how often each run's seed is drawn in each replicate.

    Paired: one multinomial draw of S seeds per replicate, applied to every order (drawn
    as ``rng.integers(0, S, (B, S))``, the resamples of ``scipy.stats.bootstrap``).
    Unpaired: an independent draw of each order's own seeds.
    """
    R = group.values.shape[0]
    weights = np.empty((n_boot, R))
    if paired:
        runs = group.aligned(range(len(group.orders)), group.common_seeds(range(len(group.orders))))  # (O, S)
        S = runs.shape[1]
        draws = rng.integers(0, S, (n_boot, S))
        counts = _row_counts(draws, S).astype(float)  # (B, S)
        for o in range(runs.shape[0]):
            weights[:, runs[o]] = counts
    else:
        for o in range(len(group.orders)):
            runs = group.runs_of(o)
            draws = rng.integers(0, runs.size, (n_boot, runs.size))
            weights[:, runs] = _row_counts(draws, runs.size)
    return weights


def _row_counts(draws: np.ndarray, n: int) -> np.ndarray:
    """Counts (rows, n) of each index in each row of ``draws``."""
    rows = draws.shape[0]
    flat = draws.astype(np.int64, copy=False) + (np.arange(rows, dtype=np.int64) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=rows * n).reshape(rows, n)


def _order_stats(weights: np.ndarray, seed_level: np.ndarray, starts: np.ndarray, run_order: np.ndarray):
    """Weighted mean and SD over each order's runs.

    weights (K, R); seed_level (K or 1, R, F). Returns mean, sd (K, O, F). The SD is
    that of the resampled multiset of seed-level scores (ddof=1 on its size).
    """
    total = np.add.reduceat(weights, starts, axis=1)  # (K, O)
    weighted = weights[:, :, None] * seed_level
    mean = np.add.reduceat(weighted, starts, axis=1) / total[:, :, None]
    deviation = seed_level - mean[:, run_order, :]
    square = np.add.reduceat(weights[:, :, None] * deviation * deviation, starts, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(square / (total - 1.0)[:, :, None])
    sd[np.broadcast_to((total <= 1.0)[:, :, None], sd.shape)] = np.nan
    return mean, sd


def _replicates(group: _Group, outcomes: _Outcomes | None, paired: bool, n_boot: int, rng: np.random.Generator):
    """Bootstrap distributions of the per-order mean and SD: (B, O, F) each."""
    weights = _seed_weights(group, paired, n_boot, rng)
    starts = np.searchsorted(group.run_order, np.arange(len(group.orders)))
    R, L = group.values.shape
    F = group.family_matrix.shape[1]
    mean = np.empty((n_boot, len(group.orders), F))
    sd = np.empty_like(mean)
    if outcomes is None:
        seed_level = group.seed_level()[None]
        block = max(1, _BLOCK_CELLS // max(1, R * F))
        for start in range(0, n_boot, block):
            stop = min(n_boot, start + block)
            mean[start:stop], sd[start:stop] = _order_stats(weights[start:stop], seed_level, starts, group.run_order)
        return mean, sd
    # One stream per language, so the draws do not depend on how the work is shared out.
    streams = rng.spawn(L)
    block = max(1, min(n_boot, _BLOCK_CELLS // max(outcomes.n_examples)))
    workers = min(_WORKERS, L)
    # The products are small (block x N_l by N_l x R): threads over languages beat
    # BLAS threads inside each product, and both at once oversubscribe the cores.
    with _single_threaded_blas(), ThreadPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        for start in range(0, n_boot, block):
            stop = min(n_boot, start + block)
            scores = _resampled_scores(outcomes, stop - start, R, streams, pool)
            seed_level = scores @ group.family_matrix  # (rows, R, F)
            mean[start:stop], sd[start:stop] = _order_stats(weights[start:stop], seed_level, starts, group.run_order)
    return mean, sd


def _single_threaded_blas():
    """Limit BLAS to one thread while the context is open (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415 (optional; comes with scikit-learn)
    except ImportError:  # pragma: no cover
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


def _resampled_scores(outcomes: _Outcomes, rows: int, R: int, streams, pool) -> np.ndarray:
    """Per-run, per-language scores (rows, R, L) with examples resampled within language.

    One example-count matrix per language, shared by every run of it (paired).
    """
    L = len(outcomes.arrays)
    scores = np.empty((rows, R, L))

    def one(l: int) -> None:
        data = outcomes.arrays[l]
        n = data.shape[0]
        draws = streams[l].integers(0, n, (rows, n), dtype=np.uint16 if n <= 65_535 else np.int64)
        counts = np.empty((rows, n), dtype=data.dtype)
        for b in range(rows):  # a bincount per row beats one over the block (cache)
            counts[b] = np.bincount(draws[b], minlength=n)
        sums = counts @ data  # (rows, R) or (rows, 3R)
        if outcomes.kind == "f1":
            scores[:, :, l] = _f1(sums[:, :R], sums[:, R : 2 * R], sums[:, 2 * R :])
        else:
            scores[:, :, l] = sums / n

    if pool is None:
        for l in range(L):
            one(l)
    else:
        list(pool.map(one, range(L)))
    scores *= outcomes.scale
    return scores


def _jackknife(group: _Group, seed_level: np.ndarray, paired: bool):
    """Leave-one-out statistics and their samples: list of (mean, sd) per jackknife sample.

    Paired: one sample, leave out one seed (all its runs). Unpaired: one sample per order,
    leave out one of its runs. Each entry: (mean (n_j, O, F), sd (n_j, O, F)).
    """
    starts = np.searchsorted(group.run_order, np.arange(len(group.orders)))
    R = group.values.shape[0]
    samples = []
    if paired:
        runs = group.aligned(range(len(group.orders)), group.common_seeds(range(len(group.orders))))
        S = runs.shape[1]
        if S >= 2:
            w = np.ones((S, R))
            for s in range(S):
                w[s, runs[:, s]] = 0.0
            samples.append(_order_stats(w, seed_level[None], starts, group.run_order))
    else:
        for o in range(len(group.orders)):
            runs = group.runs_of(o)
            if runs.size >= 2:
                w = np.ones((runs.size, R))
                w[np.arange(runs.size), runs] = 0.0
                samples.append(_order_stats(w, seed_level[None], starts, group.run_order))
    return samples


def _derive(mean: np.ndarray, sd: np.ndarray, pairs: list[tuple[int, int]], wanted: Sequence[str]) -> np.ndarray:
    """Statistics as columns (K, Q), in the order of :func:`_layout`."""
    parts = []
    for name in wanted:
        if name == "bootstrap_mean":
            parts.append(mean)
        elif name == "contrast":
            parts.append(np.stack([mean[:, j] - mean[:, i] for j, i in pairs], axis=1) if pairs else mean[:, :0])
        elif name == "sd":
            parts.append(sd)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                parts.append(np.stack([sd[:, j] / sd[:, i] for j, i in pairs], axis=1) if pairs else sd[:, :0])
    return np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1)


def _layout(orders: Sequence[str], families: Sequence, pairs, wanted: Sequence[str]) -> list[tuple[str, str, object]]:
    """(test, term, family) of every column of :func:`_derive`."""
    out = []
    for name in wanted:
        terms = [_term(orders, p) for p in pairs] if name in ("contrast", "sd_ratio") else list(orders)
        out.extend((name, term, fam) for term in terms for fam in families)
    return out


# --- intervals ---------------------------------------------------------------------


def _quantiles(sorted_values: np.ndarray, valid: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantiles (numpy's default) per column, NaNs sorted last.

    sorted_values (B, Q) sorted along axis 0; valid (Q,) non-NaN counts; q (Q,) levels.
    """
    out = np.full(q.shape, np.nan)
    ok = np.isfinite(q) & (valid > 0)
    if not ok.any():
        return out
    columns = np.flatnonzero(ok)
    h = (valid[ok] - 1) * q[ok]
    low = np.floor(h).astype(np.int64)
    high = np.minimum(low + 1, valid[ok] - 1)
    fraction = h - low
    a = sorted_values[low, columns]
    b = sorted_values[high, columns]
    with np.errstate(invalid="ignore"):
        out[ok] = np.where((fraction == 0) | (a == b), a, a + fraction * (b - a))
    return out


def _levels(confidence: float, alternative: str) -> tuple[float, float]:
    alpha = 1.0 - confidence
    if alternative == "two-sided":
        return alpha / 2.0, 1.0 - alpha / 2.0
    if alternative == "greater":
        return alpha, math.nan
    return math.nan, 1.0 - alpha


def _percentile_interval(boot: np.ndarray, estimate: np.ndarray, confidence, alternative, nulls):
    """Percentile CI, and the p-value of the null (where given) by inverting it."""
    lo_level, hi_level = _levels(confidence, alternative)
    boot_sorted = np.sort(boot, axis=0)
    valid = np.sum(~np.isnan(boot), axis=0)
    Q = boot.shape[1]
    low = _quantiles(boot_sorted, valid, np.full(Q, lo_level))
    high = _quantiles(boot_sorted, valid, np.full(Q, hi_level))
    if math.isnan(lo_level):
        low[:] = -np.inf
    if math.isnan(hi_level):
        high[:] = np.inf
    with np.errstate(invalid="ignore"):
        below = np.sum(boot <= nulls, axis=0)
        above = np.sum(boot >= nulls, axis=0)
    p_greater = (1.0 + below) / (valid + 1.0)
    p_less = (1.0 + above) / (valid + 1.0)
    p = _sided(p_greater, p_less, alternative)
    p[np.isnan(nulls)] = np.nan
    return low, high, p


def _sided(p_greater, p_less, alternative):
    if alternative == "greater":
        return np.asarray(p_greater, dtype=float).copy()
    if alternative == "less":
        return np.asarray(p_less, dtype=float).copy()
    return np.minimum(1.0, 2.0 * np.minimum(p_greater, p_less))


def _acceleration(jack: list[np.ndarray]) -> np.ndarray:
    """BCa acceleration from jackknife statistics, one array (n_j, Q) per sample.

    As scipy.stats.bootstrap (Efron & Tibshirani 1993, eq. 14.15, summed over samples).
    """
    if not jack:
        return None
    numerator = 0.0
    denominator = 0.0
    for values in jack:
        n = float(values.shape[0])
        u = (n - 1.0) * (values.mean(axis=0) - values)
        numerator = numerator + np.sum(u**3, axis=0) / n**3
        denominator = denominator + np.sum(u**2, axis=0) / n**2
    with np.errstate(invalid="ignore", divide="ignore"):
        # A statistic the jackknife cannot move (zero spread) has no skewness to correct.
        return np.where(denominator > 0, numerator / denominator**1.5 / 6.0, 0.0)


def _bca_interval(boot, estimate, acceleration, confidence, alternative, nulls):
    """BCa CI (Efron 1987; scipy.stats.bootstrap's formulas) and the p-value by inversion."""
    Q = boot.shape[1]
    valid = np.sum(~np.isnan(boot), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Replicates within rounding of the estimate are ties (a resample that permutes the
        # seeds gives the estimate up to the order of summation).
        finite = np.where(np.isfinite(boot), boot, np.nan)  # an SD ratio is infinite when an SD is 0
        tolerance = 1e-10 * (np.nan_to_num(np.nanstd(finite, axis=0)) + np.abs(estimate))
        below = np.sum(boot < estimate - tolerance, axis=0)
        share = (2.0 * below + np.sum(np.abs(boot - estimate) <= tolerance, axis=0)) / (2.0 * valid)
        z0 = ndtri(share)
        a = acceleration if acceleration is not None else np.full(Q, np.nan)
        lo_level, hi_level = _levels(confidence, alternative)

        def adjusted(level):
            if math.isnan(level):
                return np.full(Q, np.nan)
            z = ndtri(level)
            return ndtr(z0 + (z0 + z) / (1.0 - a * (z0 + z)))

        boot_sorted = np.sort(boot, axis=0)
        low = _quantiles(boot_sorted, valid, adjusted(lo_level))
        high = _quantiles(boot_sorted, valid, adjusted(hi_level))
        if math.isnan(lo_level):
            low[:] = -np.inf
        if math.isnan(hi_level):
            high[:] = np.inf
        # p: the level at which a one-sided bound reaches the null value.
        share_null = (np.sum(boot < nulls, axis=0) + np.sum(boot <= nulls, axis=0)) / (2.0 * valid)
        share_null = np.clip(share_null, 0.5 / valid, 1.0 - 0.5 / valid)
        w = ndtri(share_null) - z0
        denominator = 1.0 + a * w
        level = ndtr(np.where(denominator > 0, w / denominator, np.nan) - z0)
    p = _sided(level, 1.0 - level, alternative)
    p[np.isnan(nulls)] = np.nan
    return low, high, p


# --- the public function -----------------------------------------------------------


def paired_bootstrap(
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
    run: str = "run_id",
    example: str = "example_id",
    outcome: str | None = None,
    orders: Sequence[str] | None = None,
    statistics: Sequence[str] = _STATISTICS,
    overall: bool = True,
    paired: bool | None = None,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    interval: str | Sequence[str] = ("percentile", "bca"),
    alternative: str = "two-sided",
    seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Paired hierarchical bootstrap over seeds and examples (Sellam et al. 2021).

    Parameters
    ----------
    scores
        Long scores, one row per run x language (x task x metric): columns ``dv``,
        ``order``, ``unit``, ``language`` and, where present, ``family`` (else taken from
        seqrob's language metadata), ``task``, ``metric``, ``run``. Each task x metric is
        analysed on its own.
    predictions
        Optional per-example outcomes: ``run``, ``task``, ``language``, ``example`` and
        ``correct`` (0/1), ``value`` (a per-example metric) or ``tp, fp, fn`` (span/entity
        F1, computed from the counts *summed* over the resampled examples). Used for a
        task x metric when they reproduce its scores (to 5e-4, on the 0-1 or 0-100 scale);
        otherwise only seeds are resampled and a warning says why.
    dv, order, unit, language, family, task, metric, run, example
        Column names. ``unit`` is the seed column: the unit of replication is the run
        (order x seed), and seeds are what is resampled.
    outcome
        ``"correct"``, ``"value"`` or ``"f1"`` to choose the outcome columns (and skip the
        check that they reproduce the scores); default: the first that does.
    orders
        Orders to analyse, in the order contrasts are formed (each later order minus each
        earlier one). Default: all, ``none`` first, then by first appearance.
    statistics
        Any of ``"bootstrap_mean"`` (mean per order), ``"contrast"`` (pairwise
        differences), ``"sd"`` (across-seed SD per order), ``"sd_ratio"`` (SD ratios).
    overall
        Also report every statistic over all languages (rows with ``family`` None).
    paired
        None: pair seeds across orders when every order has the same seeds, else resample
        each order's seeds independently (with a warning). True: pair, dropping the seeds
        some order lacks. False: never pair.
    n_boot
        Number of bootstrap replicates.
    confidence
        Confidence level of the intervals.
    interval
        ``"percentile"``, ``"bca"`` or both: one row per statistic and interval type.
    alternative
        ``"two-sided"``, ``"greater"`` or ``"less"``, for the ``contrast`` (null 0) and
        ``sd_ratio`` (null 1) rows: their p-value and one-sided interval. Descriptive rows
        always get two-sided intervals.
    seed
        Seed of the resampling RNG (or a ``numpy.random.Generator``).

    Returns
    -------
    pandas.DataFrame
        :data:`~seqrob.analysis.results.COLUMNS`, one row per task x metric x statistic
        x family x term x interval type:

        - ``test``: ``bootstrap_mean``, ``contrast``, ``sd`` or ``sd_ratio``.
        - ``term``: the order, or ``"a vs b"`` (``a - b``, ``sd_a / sd_b``).
        - ``task``, ``metric``, ``family`` (None: all languages).
        - ``estimate``: the statistic on the data (scores' units; SD ratio unitless).
        - ``ci_low``, ``ci_high``: the interval (``confidence``).
        - ``statistic``, ``df``: NaN (no test statistic).
        - ``p_value``: contrast and sd_ratio rows: the smallest level at which the
          interval excludes the null (0 or 1); NaN for descriptive rows.
        - ``p_adjusted``: NaN (adjusted over a stated family by the caller).
        - ``n``: seeds behind the row.
        - ``method``: what was resampled, B, the interval type and warnings.

    Warns
    -----
    FewSeedsWarning
        With 5 seeds or fewer: a bootstrap over seeds undercovers there (use
        :func:`~seqrob.analysis.permutation.sign_flip_test` or
        :func:`~seqrob.analysis.permutation.seed_t_test`). With one seed, no
        interval is given.
    UserWarning
        Cells dropped, predictions not used, or an interval that cannot be computed.

    Notes
    -----
    Replicate b draws seed counts ``w_b`` (multinomial, S draws among S seeds) and, per
    language l, example counts ``c_bl`` (N_l draws among N_l examples). The run x
    language score is ``c_bl . x_rl / N_l`` (``x_rl`` the run's outcomes on the
    examples), or ``2 TP / (2 TP + FP + FN)`` from the resampled sums of counts. The
    seed-level score of run r for family f is the mean over the family's languages;
    the mean of order o is ``sum_s w_bs y_osf / S`` and its SD the SD of that resampled
    multiset (divisor S - 1). Pairing: ``w_b`` and ``c_bl`` are the same for every
    order, so seed effects and example difficulty cancel in differences.

    Percentile intervals take quantiles of the B replicates. BCa intervals correct
    them for bias (``z0 = Phi^-1`` of the share of replicates below the estimate,
    ties half) and acceleration (from the jackknife over seeds, leaving out one seed
    and all its runs); both as scipy.stats.bootstrap computes them. The p-value is
    that of the interval's inversion: percentile ``(1 + #{theta* <= 0}) / (B + 1)``
    one-sided; BCa the level at which a one-sided bound meets the null.

    Calibration (simulations with run-level noise, ``tests/test_bootstrap.py``): with S
    seeds the bootstrap distribution of a mean has variance ``(S - 1) / S * sd^2 / S``,
    too narrow for small S, and a resample of few seeds takes few distinct values. At 3
    seeds the percentile interval is about [min, max] of the per-seed differences and
    covers about 75% of the time (measured 0.74), not 95%; about 0.87-0.90 at 10 seeds.
    Resampling examples as well does not cure it where run deviations dominate (0.78 at
    3 seeds); where the examples' binomial noise dominates (small test sets) it makes
    the interval conservative (about 0.98), since that noise is already part of the
    seed-to-seed spread.

    References
    ----------
    Sellam, T. et al. (2022). The MultiBERTs: BERT reproductions for robustness
    analysis. ICLR. Efron, B. (1987). Better bootstrap confidence intervals. JASA 82.
    Efron, B. & Tibshirani, R. (1993). An Introduction to the Bootstrap, ch. 14.

    Examples
    --------
    >>> from seqrob.warehouse.simulate import simulate
    >>> sim = simulate(seeds=5, languages=("fi", "et", "de"), n_examples=100,
    ...                families={"fi": "Uralic", "et": "Uralic", "de": "Indo-European"})
    >>> table = paired_bootstrap(sim.scores, sim.predictions, n_boot=500, seed=1)
    >>> sorted(set(table["test"]))
    ['bootstrap_mean', 'contrast', 'sd', 'sd_ratio']
    """
    _check_options(confidence, alternative)
    n_boot = _positive_int(n_boot, "n_boot", 1)
    intervals = (interval,) if isinstance(interval, str) else tuple(interval)
    if not intervals or any(kind not in _INTERVALS for kind in intervals):
        raise InputError(f"interval must be 'percentile', 'bca' or both, not {interval!r}", fix="pass interval='bca'")
    wanted = (statistics,) if isinstance(statistics, str) else tuple(statistics)
    if not wanted or any(name not in _STATISTICS for name in wanted):
        raise InputError(
            f"statistics must be among {_STATISTICS}, not {statistics!r}", fix="pass statistics=('contrast',)"
        )
    if outcome is not None and outcome not in _KINDS:
        raise InputError(f"outcome must be one of {tuple(_KINDS)}, not {outcome!r}", fix="pass outcome='correct'")
    rng = np.random.default_rng(seed)
    groups = _groups(
        scores, dv=dv, order=order, unit=unit, language=language, family=family,
        task=task, metric=metric, run=run, orders=orders, overall=overall,
    )  # fmt: skip
    data = None
    if predictions is not None:
        data = _read_predictions(predictions, run=run, task=task, language=language, example=example)
    rows = []
    for group in groups:
        rows.extend(
            _bootstrap_group(group, data, outcome, paired, n_boot, confidence, intervals, alternative, wanted, rng)
        )
    return result_frame(rows)


def _resolve_pairing(group: _Group, paired: bool | None) -> tuple[_Group, bool]:
    """Decide pairing; with paired=True keep only the seeds every order has."""
    everything = range(len(group.orders))
    seeds_per_order = [set(group.run_seed[group.runs_of(o)]) for o in everything]
    same = all(s == seeds_per_order[0] for s in seeds_per_order)
    if same and paired is not False:
        return group, True
    if paired is None:
        text = (
            f"orders do not share the same seeds{_where(group)}: each order's seeds are resampled "
            "independently (unpaired); pass paired=True to keep only the seeds every order has"
        )
        group.notes.append(text)
        warnings.warn(text, stacklevel=4)
        return group, False
    if paired is False:
        return group, False
    common = group.common_seeds(everything)
    if not common:
        raise DesignError(f"no seed is run under every order{_where(group)} - use paired=False")
    keep = np.isin(group.run_seed, np.array(common, dtype=object))
    text = f"{int((~keep).sum())} runs whose seed lacks some order are left out{_where(group)} (paired=True)"
    warnings.warn(text, stacklevel=4)
    reduced = _Group(
        task=group.task, metric=group.metric, orders=group.orders, run_order=group.run_order[keep],
        run_seed=group.run_seed[keep], run_id=None if group.run_id is None else group.run_id[keep],
        languages=group.languages, families=group.families, family_matrix=group.family_matrix,
        family_sizes=group.family_sizes, values=group.values[keep], notes=[*group.notes, text],
    )  # fmt: skip
    return reduced, True


def _where(group: _Group) -> str:
    text = " ".join(x for x in (group.task, group.metric) if x)
    return f" ({text})" if text else ""


def _bootstrap_group(group, data, outcome, paired, n_boot, confidence, intervals, alternative, wanted, rng):
    group, paired = _resolve_pairing(group, paired)
    O = len(group.orders)
    pairs = _pairs(O)
    n_seeds = len(group.common_seeds(range(O))) if paired else int(group.order_sizes.min())
    outcomes, reason = (None, "no predictions given") if data is None else _outcomes(group, data, outcome)
    if data is not None and outcomes is None:
        warnings.warn(f"examples not resampled{_where(group)}: {reason}", stacklevel=3)
    observed = group.values if outcomes is None else outcomes.observed
    seed_level = observed @ group.family_matrix  # (R, F)
    starts = np.searchsorted(group.run_order, np.arange(O))
    mean0, sd0 = _order_stats(np.ones((1, len(group.run_order))), seed_level[None], starts, group.run_order)
    estimate = _derive(mean0, sd0, pairs, wanted)[0]
    layout = _layout(group.orders, group.families, pairs, wanted)
    nulls = np.array([0.0 if t == "contrast" else 1.0 if t == "sd_ratio" else np.nan for t, _, _ in layout])

    few = ""
    if n_seeds <= FEW_SEEDS:
        few = f"; few seeds ({n_seeds}): a bootstrap over seeds undercovers here, prefer sign_flip_test or seed_t_test"
        warnings.warn(
            FewSeedsWarning(
                f"{n_seeds} seeds{_where(group)}: a bootstrap over seeds undercovers with so few; "
                "prefer sign_flip_test or seed_t_test"
            ),
            stacklevel=3,
        )
    if outcomes is None:
        scheme = f"paired bootstrap over {n_seeds} seeds" if paired else "bootstrap over each order's seeds (unpaired)"
        scheme += "; scores only, examples not resampled"
    else:
        sizes = sorted(set(outcomes.n_examples))
        per = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
        scheme = (
            f"paired hierarchical bootstrap: {n_seeds} seeds" + (" (paired across orders)" if paired else " (unpaired)")
            + f" x examples within language ({per} per language, {outcomes.kind})"
        )  # fmt: skip
    scheme += f", B={n_boot}"

    if n_seeds < 2:
        warnings.warn(f"one seed{_where(group)}: seed variation cannot be estimated; no intervals", stacklevel=3)
        keep = [k for k, (t, _, _) in enumerate(layout) if t in ("bootstrap_mean", "contrast")]
        return [
            _row(layout[k], group, estimate[k], np.nan, np.nan, np.nan, n_seeds, "one seed: no interval" + few)
            for k in keep
        ]

    mean_b, sd_b = _replicates(group, outcomes, paired, n_boot, rng)
    boot = _derive(mean_b, sd_b, pairs, wanted)
    sided = np.array([t in ("contrast", "sd_ratio") for t, _, _ in layout])
    jack = []
    if "bca" in intervals:
        jack = [_derive(m, s, pairs, wanted) for m, s in _jackknife(group, seed_level, paired)]
    results = {}
    for kind in intervals:
        lows, highs, ps = [], [], []
        for side, mask in (("two-sided", ~sided), (alternative, sided)):
            if not mask.any():
                continue
            columns = np.flatnonzero(mask)
            if kind == "percentile":
                low, high, p = _percentile_interval(
                    boot[:, columns], estimate[columns], confidence, side, nulls[columns]
                )
            else:
                acceleration = _acceleration([values[:, columns] for values in jack])
                low, high, p = _bca_interval(
                    boot[:, columns], estimate[columns], acceleration, confidence, side, nulls[columns]
                )
            lows.append((columns, low))
            highs.append((columns, high))
            ps.append((columns, p))
        low = np.full(len(layout), np.nan)
        high = np.full(len(layout), np.nan)
        p = np.full(len(layout), np.nan)
        for (c, x), (_, y), (_, z) in zip(lows, highs, ps):
            low[c], high[c], p[c] = x, y, z
        results[kind] = (low, high, p)

    label = {"percentile": "percentile", "bca": "BCa (acceleration from the jackknife over seeds)"}
    rows = []
    failed = []
    for k, cell in enumerate(layout):
        if cell[0] in ("sd", "sd_ratio") and np.isnan(estimate[k]):
            continue
        for kind in intervals:
            low, high, p = (x[k] for x in results[kind])
            side = alternative if sided[k] else "two-sided"
            text = f"{scheme}; {label[kind]} {confidence * 100:g}% CI" + ("" if side == "two-sided" else f" ({side})")
            if sided[k]:
                text += "; p by inverting the interval"
            if np.isnan(low) or np.isnan(high):
                failed.append(f"{cell[0]} {cell[1]}")
                text += "; interval not computable (degenerate bootstrap distribution)"
            rows.append(_row(cell, group, estimate[k], low, high, p, n_seeds, text + few))
    if failed:
        warnings.warn(
            f"{len(failed)} intervals could not be computed{_where(group)} (e.g. {failed[0]}): "
            "the bootstrap distribution is degenerate or an SD is zero",
            stacklevel=3,
        )
    return rows


def _row(cell, group: _Group, estimate, low, high, p, n, method):
    test, term, fam = cell
    return {
        "test": test,
        "term": term,
        "task": group.task,
        "metric": group.metric,
        "family": fam,
        "estimate": float(estimate),
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": float(p),
        "n": n,
        "method": method,
    }
