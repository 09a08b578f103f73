"""Per-example outcomes: the predictions of a task x metric as run x example matrices.

When the warehouse stores every example's outcome (``correct``, a per-example ``value``,
or span counts ``tp, fp, fn``), the bootstrap (:mod:`~seqrob.analysis.bootstrap`) also
resamples examples within each language. This module reads the predictions once for
every group (:func:`_read_predictions`, called by
:func:`~seqrob.analysis.layout.build_groups`), joins them to a group's runs and languages
(:func:`_outcomes`, once per group and outcome kind:
:meth:`~seqrob.analysis.layout.Group.outcomes`), checks that they reproduce the stored
scores, and computes a metric from outcomes (the mean, or F1 from summed counts:
:func:`_f1`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqrob.analysis.layout import Group, _require_columns
from seqrob.warehouse.errors import InputError

__all__: list[str] = []

# Scores are accepted as reproduced by the per-example outcomes when they agree to this
# (a score rounded to three decimals still matches).
_MATCH_TOLERANCE = 5e-4


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


def _match(group: Group, data: _Predictions) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
    """The prediction rows of the group's task, runs and languages, or why there are none.

    Returns the rows, each row's language x example key and each row's run (index into
    the group's runs).
    """
    if group.run_id is None:
        return "the scores name no run_id to join the predictions on"
    task_code = data.tasks.get(group.task or "", None) if data.has_task else 0
    if task_code is None:
        return f"no predictions for task '{group.task}'"
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
        return "no predictions match these runs and languages"
    return rows, l_all[keep] * data.n_example_ids + data.example[rows], r_all[keep]


def _outcomes(group: Group, data: _Predictions, outcome: str | None) -> tuple[_Outcomes | None, str]:
    """The group's per-example outcomes, or None and the reason."""
    match = _match(group, data)
    if isinstance(match, str):
        return None, match
    rows, key, r = match
    del match  # the predictions can be large: free what is done with
    R, L = group.values.shape
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
    language_of = cell_language[full]
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
        arrays, metric = _per_language(kind, dense, language_of, L)
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


def _per_language(kind: str, dense: list[np.ndarray], language_of: np.ndarray, L: int):
    """Outcome matrices per language and the metric on all examples.

    dense: one (examples, R) matrix per outcome column of ``kind``, examples of every
    language; language_of: each example's language. Returns the per-language arrays
    ((N_l, R), or (N_l, 3R) for f1: tp | fp | fn) and the metric (R, L).
    """
    R = dense[0].shape[1]
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
    return arrays, metric


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
