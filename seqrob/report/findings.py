"""How an analysis's findings read: the verdict table and the verdict sentences.

The terminal (``seqrob analyze significance``, ``seqrob demo``), page 1 of the PDF and
HTML report, and the notebook all call these two functions on the stored findings
(:mod:`seqrob.analysis.findings`), so they state the same findings with the same
numbers. Nothing here computes a statistic: it rounds and words what was stored.
Differences of accuracy-like metrics are in points (x 100) everywhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from seqrob.report.text import CORRECTION_NAMES, join, number, p_text, plural, scale_of, split_term

__all__ = ["TABLE_COLUMNS", "ALL_LANGUAGES", "verdict_table", "table_title", "statements"]

ALL_LANGUAGES = "all languages"
TABLE_COLUMNS = ("family", "orders", "difference [CI]", "score", "SD ratio [CI]", "spread", "seeds needed")
_FOUND, _NONE, _CANNOT = "found", "no evidence", "cannot tell"


def verdict_table(findings: pd.DataFrame) -> pd.DataFrame:
    """One group's findings as a table of strings (:data:`TABLE_COLUMNS`), one row per family x comparison.

    ``score`` / ``spread`` are the statuses (found, no evidence, cannot tell); the
    difference is in points for accuracy-like metrics; ``seeds needed`` is the seeds per
    order for 80% power where no difference was found.
    """
    if findings.empty:
        return pd.DataFrame(columns=list(TABLE_COLUMNS))
    scale = scale_of(findings["metric"].iloc[0])
    rows: dict[tuple, dict] = {}
    for r in findings.itertuples():
        key = (r.family or ALL_LANGUAGES, r.comparison)
        row = rows.setdefault(key, dict.fromkeys(TABLE_COLUMNS, ""))
        row["family"], row["orders"] = key
        if r.question == "score":
            row["score"] = r.status
            if np.isfinite(r.estimate):
                row["difference [CI]"] = _estimate(r, lambda x, s=True: scale.value(x, signed=s))
            if r.status != _FOUND and np.isfinite(r.seeds_needed) and r.seeds_needed > r.seeds:
                row["seeds needed"] = str(int(r.seeds_needed))
        else:
            row["spread"] = r.status
            if np.isfinite(r.estimate):
                row["SD ratio [CI]"] = _estimate(r, lambda x, s=False: number(x, 2))
    return pd.DataFrame(list(rows.values()), columns=list(TABLE_COLUMNS))


def _estimate(r, fmt) -> str:
    text = fmt(r.estimate)
    if np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
        text += f" [{fmt(r.ci_low)}, {fmt(r.ci_high)}]"
    return text


def table_title(findings: pd.DataFrame) -> str:
    """What the verdict table's numbers are: units, interval levels and kinds, the test level."""
    first = findings.iloc[0]
    scale = scale_of(first["metric"])
    parts = [f"{first['label']}: does order change the score or its spread?"]
    unit = "points" if scale.unit == "points" else f"{first['metric']} units"
    for question, what in (("score", f"difference in {unit}"), ("spread", "SD ratio")):
        rows = findings[(findings["question"] == question) & findings["interval"].notna() & findings["confidence"].notna()]
        if len(rows):
            kinds = ", ".join(dict.fromkeys(rows["interval"]))
            parts.append(f"{what}: {rows['confidence'].iloc[0] * 100:g}% CI from {kinds}")
    tested = findings[findings["correction"].notna()]
    if len(tested):
        name = CORRECTION_NAMES.get(tested["correction"].iloc[0], tested["correction"].iloc[0])
        parts.append(f"found = {name}-adjusted p < {_alpha(findings):g}")
    return "; ".join(parts)


def _alpha(findings: pd.DataFrame) -> float:
    return float(findings["alpha"].iloc[0])


def statements(findings: pd.DataFrame, *, prefix: bool = True) -> list[str]:
    """The findings of one or more groups in plain sentences, most important first.

    ``prefix`` starts each sentence with its group's label (``"xnli accuracy: ..."``).
    """
    out: list[str] = []
    for label, group in findings.groupby("label", sort=False):
        lead = f"{label}: " if prefix else ""
        out.extend(lead + s for s in _group_statements(group))
    return out


def _group_statements(f: pd.DataFrame) -> list[str]:
    scale = scale_of(f["metric"].iloc[0])
    unit = scale.unit
    score, spread = f[f["question"] == "score"], f[f["question"] == "spread"]
    pairs = score[score["comparison"].str.contains(" vs ", regex=False)]
    out: list[str] = []
    untested = score[(score["status"] == _CANNOT) & score["test"].isna()]
    if len(untested) == len(score):
        return [f"cannot tell whether order matters: {untested['reason'].iloc[0]}"]
    for r in pairs[pairs["status"] == _FOUND].sort_values("p_adjusted").itertuples():
        first, second = split_term(r.comparison)
        direction = "higher" if r.estimate > 0 else "lower"
        size = f"{scale.value(abs(r.estimate))} {unit}" if unit == "points" else f"{scale.value(abs(r.estimate))}"
        out.append(f"in {r.family}, {first} scores {size} {direction} than {second} "
                   f"({_ci(r, lambda x: scale.value(x, signed=True))}; {_p(r)})")  # fmt: skip
    for r in score[score["comparison"].isin(["all orders", "order x family"]) & (score["status"] == _FOUND)].itertuples():
        if r.comparison == "order x family":
            out.append(f"the effect of order differs between families (order x family test, {_p(r)})")
        else:
            out.append(f"order changes the score (test over all orders and languages, {_p(r)})")
    quiet = pairs[pairs["status"] == _NONE]
    cannot = pairs[pairs["status"] == _CANNOT]
    if len(cannot):
        where = "any family" if len(cannot) == len(pairs) else join(dict.fromkeys(cannot["family"]))
        out.append(f"cannot tell whether order changes the score in {where}: {cannot['reason'].iloc[0]}")
    if len(quiet):
        name = CORRECTION_NAMES.get(quiet["correction"].iloc[0], quiet["correction"].iloc[0])
        level = f"{name}-adjusted p >= {_alpha(f):g}"
        if len(quiet) == len(pairs):
            out.append(f"no evidence that order changes the score in any family ({plural(len(quiet), 'comparison')}, "
                       f"{level})")  # fmt: skip
        else:
            others = "the other comparison" if len(quiet) == 1 else f"the other {len(quiet)} comparisons"
            out.append(f"no evidence for {others} ({level})")
    for r in spread[spread["status"] == _FOUND].sort_values("p_adjusted").itertuples():
        where = f"in {r.family}" if r.family else f"in {ALL_LANGUAGES}"
        if r.comparison == "all orders":
            out.append(f"across-seed spread differs between orders {where} (largest/smallest SD {number(r.estimate, 2)}; "
                       f"{_p(r)})")  # fmt: skip
        else:
            first, second = split_term(r.comparison)
            out.append(f"{where}, the across-seed SD under {first} is {number(r.estimate, 2)} times that under "
                       f"{second} ({_ci(r, lambda x: number(x, 2))}; {_p(r)})")  # fmt: skip
    if len(spread) and not (spread["status"] == _FOUND).any():
        cannot = spread[spread["status"] == _CANNOT]
        if len(cannot) == len(spread):
            out.append(f"cannot tell whether order changes across-seed spread: {cannot['reason'].iloc[0]}")
        else:
            out.append(f"no evidence that order changes across-seed spread ({plural(len(spread), 'test')})")
    need = quiet[quiet["seeds_needed"] > quiet["seeds"]]
    if len(need):
        by_count: dict[int, list[str]] = {}
        for r in need.drop_duplicates("family").sort_values("seeds_needed").itertuples():
            by_count.setdefault(int(r.seeds_needed), []).append(r.family)
        effect = scale.value(need["effect"].iloc[0])
        effect = f"a {effect}-point" if unit == "points" else f"a {effect} ({unit})"
        detail = "; ".join(f"{n} in {join(fs)}" for n, fs in by_count.items())
        out.append(f"to detect {effect} order difference with 80% power, seeds per order needed "
                   f"(the design has {int(need['seeds'].iloc[0])}): {detail}")  # fmt: skip
    return out


def _ci(r, fmt) -> str:
    if not (np.isfinite(r.ci_low) and np.isfinite(r.ci_high)):
        return "no interval"
    return f"{r.confidence * 100:g}% CI [{fmt(r.ci_low)}, {fmt(r.ci_high)}], {r.interval}"


def _p(r) -> str:
    name = CORRECTION_NAMES.get(r.correction, r.correction)
    return f"{name}-adjusted p {p_text(r.p_adjusted, equals=True)}"
