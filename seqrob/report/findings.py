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

__all__ = ["TABLE_COLUMNS", "METHOD_TABLE_COLUMNS", "ALL_LANGUAGES", "verdict_table", "table_title", "statements"]

ALL_LANGUAGES = "all languages"
TABLE_COLUMNS = ("family", "orders", "difference [CI]", "score", "SD ratio [CI]", "spread", "seeds needed")
#: The columns of a comparison of methods' table: what is compared is methods, or an
#: order difference between methods (``"a vs b: m vs n"``).
METHOD_TABLE_COLUMNS = ("family", "compared", *TABLE_COLUMNS[2:])
_FOUND, _NONE, _CANNOT = "found", "no evidence", "cannot tell"


def verdict_table(findings: pd.DataFrame) -> pd.DataFrame:
    """One group's findings as a table of strings (:data:`TABLE_COLUMNS`), one row per family x comparison.

    ``score`` / ``spread`` are the statuses (found, no evidence, cannot tell); the
    difference is in points for accuracy-like metrics; ``seeds needed`` is the seeds per
    order for 80% power where no difference was found.
    """
    columns = METHOD_TABLE_COLUMNS if _compares_methods(findings) else TABLE_COLUMNS
    if findings.empty:
        return pd.DataFrame(columns=list(columns))
    scale = scale_of(findings["metric"].iloc[0])
    pairs = set(findings.loc[findings["factor"] == "method", "comparison"])
    rows: dict[tuple, dict] = {}
    for r in findings.itertuples():
        key = (r.family or ALL_LANGUAGES, _compared(r.comparison, pairs))
        row = rows.setdefault(key, dict.fromkeys(columns, ""))
        row["family"], row[columns[1]] = key
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
    return pd.DataFrame(list(rows.values()), columns=list(columns))


def _compared(comparison: str, pairs: set[str]) -> str:
    """An order x method comparison ``"a vs b: m vs n"`` as the table shows it when the
    table's method rows already name ``m vs n``: ``"a vs b × method"``."""
    orders, _, methods = comparison.partition(": ")
    return f"{orders} \u00d7 method" if methods and pairs == {methods} else comparison


def _compares_methods(findings: pd.DataFrame) -> bool:
    return bool(len(findings)) and bool((findings["factor"].fillna("order") != "order").all())


def _estimate(r, fmt) -> str:
    text = fmt(r.estimate)
    if np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
        text += f" [{fmt(r.ci_low)}, {fmt(r.ci_high)}]"
    return text


def table_title(findings: pd.DataFrame) -> str:
    """What the verdict table's numbers are: units, interval levels and kinds, the test level."""
    first = findings.iloc[0]
    scale = scale_of(first["metric"])
    question = "does order change the score or its spread?"
    if _compares_methods(findings):
        pairs = set(findings.loc[findings["factor"] == "method", "comparison"])
        question = ("does the method change the score or its spread (averaged over the orders), and does order's "
                    "effect depend on the method?")  # fmt: skip
        if len(pairs) == 1:
            m, n = split_term(next(iter(pairs)))
            question += f" ('a vs b \u00d7 method': the difference a - b under {m} minus under {n})"
    parts = [f"{first['label']}: {question}"]
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
    if _compares_methods(f):
        return _method_statements(f)
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
    out += _no_spread_found(spread, "order")
    out += _seeds_needed(quiet, scale, "order difference with 80% power, seeds per order needed")
    return out


def _no_spread_found(spread: pd.DataFrame, factor: str) -> list[str]:
    """The sentence for spread tests none of which found anything (none without tests)."""
    if not len(spread) or (spread["status"] == _FOUND).any():
        return []
    cannot = spread[spread["status"] == _CANNOT]
    if len(cannot) == len(spread):
        return [f"cannot tell whether {factor} changes across-seed spread: {cannot['reason'].iloc[0]}"]
    return [f"no evidence that {factor} changes across-seed spread ({plural(len(spread), 'test')})"]


def _seeds_needed(quiet: pd.DataFrame, scale, what: str, design: str = "") -> list[str]:
    """Seeds needed for 80% power where nothing was found, grouped by count."""
    need = quiet[quiet["seeds_needed"] > quiet["seeds"]]
    if not len(need):
        return []
    by_count: dict[int, list[str]] = {}
    for r in need.drop_duplicates("family").sort_values("seeds_needed").itertuples():
        by_count.setdefault(int(r.seeds_needed), []).append(r.family or ALL_LANGUAGES)
    effect = scale.value(need["effect"].iloc[0])
    effect = f"a {effect}-point" if scale.unit == "points" else f"a {effect} ({scale.unit})"
    detail = "; ".join(f"{n} in {join(fs)}" for n, fs in by_count.items())
    return [f"to detect {effect} {what} ({design}the design has {int(need['seeds'].iloc[0])}): {detail}"]


def _ci(r, fmt) -> str:
    if not (np.isfinite(r.ci_low) and np.isfinite(r.ci_high)):
        return "no interval"
    return f"{r.confidence * 100:g}% CI [{fmt(r.ci_low)}, {fmt(r.ci_high)}], {r.interval}"


def _p(r) -> str:
    name = CORRECTION_NAMES.get(r.correction, r.correction)
    return f"{name}-adjusted p {p_text(r.p_adjusted, equals=True)}"


def _method_statements(f: pd.DataFrame) -> list[str]:
    """A comparison of methods in sentences: the method's effect on the score and on the
    spread (averaged over the orders), then whether order's effect depends on the method."""
    scale = scale_of(f["metric"].iloc[0])
    unit = scale.unit
    method = f[f["factor"] == "method"]
    score, spread = method[method["question"] == "score"], method[method["question"] == "spread"]
    interaction = f[f["factor"] == "order x method"]
    untested = score[(score["status"] == _CANNOT) & score["test"].isna()]
    if len(score) and len(untested) == len(score):
        return [f"cannot tell whether the method matters: {untested['reason'].iloc[0]}"]
    out: list[str] = []
    for r in score[score["status"] == _FOUND].sort_values("p_adjusted").itertuples():
        first, second = split_term(r.comparison)
        where = f"in {r.family}" if r.family else f"over {ALL_LANGUAGES}"
        direction = "higher" if r.estimate > 0 else "lower"
        size = f"{scale.value(abs(r.estimate))} {unit}" if unit == "points" else f"{scale.value(abs(r.estimate))}"
        out.append(f"{where}, {first} scores {size} {direction} than {second}, averaged over the orders "
                   f"({_ci(r, lambda x: scale.value(x, signed=True))}; {_p(r)})")  # fmt: skip
    quiet = score[score["status"] == _NONE]
    if len(quiet):
        name = CORRECTION_NAMES.get(quiet["correction"].iloc[0], quiet["correction"].iloc[0])
        where = "any family" if len(quiet) == len(score) else join(q or ALL_LANGUAGES for q in dict.fromkeys(quiet["family"]))
        out.append(f"no evidence that the method changes the score in {where} ({name}-adjusted p >= {_alpha(f):g})")
    for r in spread[spread["status"] == _FOUND].sort_values("p_adjusted").itertuples():
        first, second = split_term(r.comparison)
        where = f"in {r.family}" if r.family else f"over {ALL_LANGUAGES}"
        out.append(f"{where}, the across-seed SD under {first} is {number(r.estimate, 2)} times that under {second} "
                   f"({_ci(r, lambda x: number(x, 2))}; {_p(r)})")  # fmt: skip
    out += _no_spread_found(spread, "the method")
    for r in interaction[interaction["status"] == _FOUND].sort_values("p_adjusted").itertuples():
        orders, methods = r.comparison.split(": ", 1)
        a, b = split_term(orders)
        m, n = split_term(methods)
        where = f"in {r.family}" if r.family else f"over {ALL_LANGUAGES}"
        size = scale.value(r.estimate, signed=True) + (f" {unit}" if unit == "points" else "")
        out.append(f"{where}, order's effect depends on the method: {a} minus {b} is {size} under {m} relative to "
                   f"{n} ({_ci(r, lambda x: scale.value(x, signed=True))}; {_p(r)})")  # fmt: skip
    if len(interaction) and not (interaction["status"] == _FOUND).any():
        name = CORRECTION_NAMES.get(interaction["correction"].dropna().iloc[0], "") if interaction["correction"].notna().any() else ""
        level = f", {name}-adjusted p >= {_alpha(f):g}" if name else ""
        out.append(f"no evidence that order's effect depends on the method ({plural(len(interaction), 'comparison')}"
                   f"{level})")  # fmt: skip
    out += _seeds_needed(quiet, scale, "difference between methods with 80% power, seeds needed",
                         "each run with every order under every method; ")  # fmt: skip
    return out
