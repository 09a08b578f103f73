"""The report's six sections, as document blocks: summary, design, accuracy, robustness,
methods, reproducibility (in that order, as a methods-and-results section reads)."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from importlib import metadata

import numpy as np
import pandas as pd

from seqrob.analysis.design import FEW_SEEDS
from seqrob.report import figures
from seqrob.report.document import (
    TEXT_HEIGHT_IN,
    Block,
    Figure,
    Heading,
    PageBreak,
    Table,
    Text,
)
from seqrob.report.findings import statements, table_title, verdict_table
from seqrob.report.sources import Group, Inputs
from seqrob.report.text import (
    CORRECTION_NAMES,
    REFERENCES,
    design_limits,
    design_line,
    interval,
    intervals_of,
    join,
    number,
    p_text,
    percent,
    plural,
    scale_of,
    split_term,
    term_text,
)

__all__ = ["QUESTION", "build"]

QUESTION = (
    "Does the order of intermediate fine-tuning tasks change zero-shot cross-lingual performance, or its "
    "stability across seeds, by more than seed noise alone would?"
)
PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "duckdb", "pyarrow", "matplotlib", "seaborn", "reportlab",
            "pypdf", "torch", "transformers", "tokenizers")  # fmt: skip


#: A section after page 1 starts on a new page unless this much of the page (inches) is left:
#: short sections share a page instead of leaving one mostly empty.
SECTION_ROOM = 0.4 * TEXT_HEIGHT_IN


def build(inputs: Inputs) -> list[Block]:
    """Every block of the report, in reading order."""
    blocks: list[Block] = []
    blocks += summary(inputs)
    blocks.append(PageBreak())  # page 1 stands alone
    blocks += design(inputs)
    for number_, group in enumerate(inputs.groups, start=1):
        blocks.append(PageBreak(unless_room=SECTION_ROOM))
        blocks += accuracy(group, inputs, index=number_)
    for number_, group in enumerate(inputs.comparisons, start=len(inputs.groups) + 1):
        blocks.append(PageBreak(unless_room=SECTION_ROOM))
        blocks += comparison(group, inputs, index=number_)
    for number_, group in enumerate(inputs.groups, start=1):
        blocks.append(PageBreak(unless_room=SECTION_ROOM))
        blocks += robustness(group, inputs, index=number_)
    blocks.append(PageBreak(unless_room=SECTION_ROOM))
    blocks += methods(inputs)
    blocks.append(PageBreak(unless_room=SECTION_ROOM))
    blocks += reproducibility(inputs)
    return blocks


def _section(inputs: Inputs, number_: int, title: str, group: Group, index: int) -> str:
    several = len(inputs.groups) + len(inputs.comparisons) > 1
    return f"{number_}.{index} {title}: {group.label}" if several else f"{number_}. {title}"


# --- 1. summary --------------------------------------------------------------------------------


def summary(inputs: Inputs) -> list[Block]:
    """Page 1: the question, the design, and per task x metric the stored findings -- the
    same sentences and table the terminal prints (:mod:`seqrob.report.findings`)."""
    options = inputs.options
    experiment = inputs.experiment or "all experiments"
    ids = ", ".join(str(a.analysis_id) for a in inputs.analyses if a.analysis_id is not None) or "(not stored)"
    blocks: list[Block] = [
        Heading("Does task order matter? A robustness report"),
        Text(f"Experiment **{experiment}** \u00b7 warehouse {inputs.path} \u00b7 seqrob analysis {ids}", "note"),
        Text(f"**Question.** {QUESTION}", "lead"),
        Text(f"**Design.** {design_line(inputs.groups)}", "lead"),
        *(Text(limit, "bullet") for limit in design_limits(inputs.groups)),
    ]
    several = len(inputs.groups) + len(inputs.comparisons) > 1
    for group in inputs.groups + inputs.comparisons:
        if several:
            blocks.append(Text(f"**{group.label}**", "body"))
        for sentence in statements(group.findings, prefix=False):
            blocks.append(Text(sentence[0].upper() + sentence[1:] + ".", "bullet"))
        table = verdict_table(group.findings)
        if len(table):
            blocks.append(Table(list(table.columns), table.values.tolist(), caption=table_title(group.findings),
                                align=["l", "l", "r", "l", "r", "l", "r"],
                                widths=[1.4, 1.5, 1.4, 0.9, 1.2, 0.9, 0.6]))  # fmt: skip
    blocks.append(Text("**Can these verdicts be trusted?**", "body"))
    for item in inputs.cautions or ["No test the verdicts read is off target on these runs or in simulations of "
                                    "this design."]:  # fmt: skip
        blocks.append(Text(item, "bullet"))
    name = CORRECTION_NAMES.get(options.correction, options.correction)
    blocks.append(Text(
        f"How to read this: each row compares two orders in one family (first minus second); 'found' means the "
        f"{name}-adjusted p is below \u03b1 = {options.alpha:g}, corrected over the family of tests named in Section 5. "
        "'No evidence' is not evidence of no effect: the interval says which effects the data still allow, and "
        "'seeds needed' how many seeds per order would detect the planned effect with 80% power. 'Cannot tell': "
        "the design cannot support the test. Section 3 has every contrast, Section 4 across-seed variability, "
        "Section 5 exactly what was computed.", "note"))  # fmt: skip
    return blocks


# --- 2. design -----------------------------------------------------------------------------------


def design(inputs: Inputs) -> list[Block]:
    blocks: list[Block] = [Heading("2. Design")]
    info = inputs.design
    blocks.append(Text("What is stored and analysed: every order's runs (one per seed), the languages each was evaluated "
                       "on, grouped by language family, and anything missing or failed. Orders are written as the "
                       "intermediate tasks in training order (a>b: a, then b, then the target task); 'none' trains the "
                       "target task alone."))  # fmt: skip
    seen: set[tuple] = set()
    for group in inputs.groups:
        key = (group.method, tuple(group.orders), tuple(sorted(group.scores["language"].unique())))
        if key in seen:
            continue
        seen.add(key)
        blocks.append(_design_table(group, inputs))
    orders = info.orders
    if len(orders):
        rows = []
        for r in orders.itertuples():
            stages = "target only" if r.order == "none" else " \u2192 ".join(r.order.split(">")) + " \u2192 target"
            rows.append([r.experiment, r.method, r.order, stages, str(r.seeds), r.seed_values or "\u2013", str(r.failed)])
        blocks.append(Table(["experiment", "method", "order", "training stages", "seeds", "seed values", "failed runs"],
                            rows, caption="Orders and their runs (finished seeds, failed runs).",
                            align=["l", "l", "l", "l", "r", "l", "r"]))  # fmt: skip
    missing = info.missing
    if len(missing):
        summary_rows = (missing.groupby(["task", "order", "seed"])["language"]
                        .apply(lambda s: ", ".join(sorted(s))).reset_index())  # fmt: skip
        shown = summary_rows.head(40)
        rows = [[r.task, r.order, str(r.seed), r.language] for r in shown.itertuples()]
        caption = (f"Missing cells: {len(missing)} order \u00d7 seed \u00d7 language scores are absent from the full cross "
                   f"of what is stored" + (f" (first 40 of {len(summary_rows)} run \u00d7 task rows shown)" if len(summary_rows) > 40 else "") + ".")  # fmt: skip
        blocks.append(Table(["task", "order", "seed", "missing languages"], rows, caption=caption,
                            align=["l", "l", "r", "l"], widths=[2, 2, 1, 8]))  # fmt: skip
    else:
        blocks.append(Text("**Missing cells:** none; every order \u00d7 seed \u00d7 language cell is present.", "body"))
    failed = info.failed
    if len(failed):
        rows = [[r.run_id, r.order, str(r.seed), _first_line(r.failure, 160)] for r in failed.itertuples()]
        blocks.append(Table(["run", "order", "seed", "failure"], rows, caption=f"Failed runs ({len(failed)}): not analysed.",
                            widths=[3, 1.5, 0.7, 6], align=["l", "l", "r", "l"]))  # fmt: skip
    else:
        blocks.append(Text("**Failed runs:** none.", "body"))
    notes = list(dict.fromkeys(list(info.warnings) + [w for g in inputs.groups for w in g.warnings]))
    if notes:
        blocks.append(Text("**What the design and the analysis warn about**", "body"))
        blocks.extend(Text(note, "bullet") for note in notes[:20])
        if len(notes) > 20:
            blocks.append(Text(f"... and {len(notes) - 20} more warnings (seqrob analyze significance prints them all).", "bullet"))
    return blocks


def _first_line(text, limit: int) -> str:
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return "\u2013"
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def _design_table(group: Group, inputs: Inputs) -> Table:
    data = group.scores
    orders = group.orders
    rows = []
    for family in group.families:
        part = data[data["family"] == family]
        codes = sorted(part["language"].unique())
        cells = []
        for order in orders:
            cell = part[part["order"] == order]
            cells.append(f"{cell['seed'].nunique()} \u00d7 {cell['language'].nunique()}" if len(cell) else "\u2013")
        rows.append([family, f"{len(codes)}: {', '.join(codes)}"] + cells)
    cells = [f"{data[data['order'] == o]['seed'].nunique()} \u00d7 {data[data['order'] == o]['language'].nunique()}" for o in orders]
    rows.append(["**all**", f"**{data['language'].nunique()}**"] + [f"**{c}**" for c in cells])
    header = ["family", "languages"] + orders
    caption = (f"{group.label}: seeds \u00d7 languages with scores, per order and language family "
               f"({data['run_id'].nunique()} runs, {len(data)} scores).")  # fmt: skip
    return Table(header, rows, caption=caption, align=["l", "l"] + ["r"] * len(orders),
                 widths=[1.6, 3.2] + [1.0] * len(orders))  # fmt: skip


# --- 3. accuracy --------------------------------------------------------------------------------


def _families_note(group: Group) -> dict[str, str]:
    counts = group.scores.groupby("family")["language"].nunique()
    return {f: f"  ({plural(int(n), 'language')})" for f, n in counts.items()}


def _correction(rows: pd.DataFrame, inputs: Inputs) -> str:
    """The reader's name of the correction behind the rows' adjusted p (their ``correction``
    column; the analysis option where no row says)."""
    named = rows["correction"].dropna()
    code = named.iloc[0] if len(named) else inputs.options.correction
    return CORRECTION_NAMES.get(code, code)


def _level(rows: pd.DataFrame, inputs: Inputs) -> str:
    """The rows' interval level (their ``confidence`` column; ``1 - alpha`` where no row says)."""
    levels = rows["confidence"].dropna()
    return percent(levels.iloc[0] if len(levels) else inputs.options.confidence)


def accuracy(group: Group, inputs: Inputs, *, index: int) -> list[Block]:
    alpha = inputs.options.alpha
    scale = scale_of(group.metric)
    colors = figures.order_colors(group.orders, group.baseline)
    blocks: list[Block] = [Heading(_section(inputs, 3, "Accuracy", group, index))]
    contrasts = group.results[(group.results["test"] == "contrast") & group.results["family"].notna()]
    if contrasts.empty:
        blocks.append(Text(f"No order contrasts were estimated: with {plural(group.min_seeds, 'seed')} per order (or a "
                           "single order) order cannot be separated from seed noise, so this section shows mean scores "
                           "only."))  # fmt: skip
    else:
        name = _correction(contrasts, inputs)
        source = intervals_of(contrasts) or "no intervals"
        corrected = contrasts["n_corrected"].dropna()
        count = int(corrected.iloc[0]) if len(corrected) else len(contrasts)
        blocks.append(Text(
            f"Each row is the difference in mean {group.metric} between two orders within one language family "
            f"(first minus second), tested on that family's own seed-to-seed differences, so a noisy family cannot "
            f"borrow a quiet family's variance; intervals: {source}. {name} correction over the {count} contrasts of "
            f"{group.label}; filled diamonds are significant at \u03b1 = {alpha:g} after it."))  # fmt: skip
        rows = contrasts.assign(group=contrasts["family"])
        pages = figures.chunk_groups([(f, int((rows["group"] == f).sum()) + 1) for f in group.families])
        for k, families in enumerate(pages):
            fig = figures.interval_plot(
                rows[rows["group"].isin(families)], groups=families, colors=colors,
                color_of=lambda term: colors.get(split_term(term)[0], "#333333"),
                xlabel=f"difference in {group.metric} ({scale.unit}); lines: {source}", scale=scale.factor,
                label=lambda r: f"{scale.value(r['estimate'], signed=True):>6} {interval(r['ci_low'], r['ci_high'], scale):<16} {_p_label(r['p_adjusted'])}",
                significant=lambda r: bool(r["p_adjusted"] < alpha), group_note=_families_note(group),
            )  # fmt: skip
            part = f" (part {k + 1} of {len(pages)})" if len(pages) > 1 else ""
            blocks.append(Figure(fig, caption=(
                f"**Order contrasts per language family{part}** ({group.label}). Points: difference in mean "
                f"{group.metric}, {scale.unit}; lines: {source}; dashed: no difference. Colour: the first order "
                f"of each comparison. Right: estimate, CI and {name}-adjusted p.")))  # fmt: skip
        blocks.append(_contrast_table(group, contrasts, inputs))
    blocks += _heatmaps(group, scale, inputs.languages)
    blocks += _model_tables(group, inputs)
    return blocks


def comparison(group: Group, inputs: Inputs, *, index: int) -> list[Block]:
    """A task x metric's comparison of training methods (:mod:`seqrob.analysis.methods`):
    the method contrast and the order x method contrasts per family, and each method's
    across-seed SD."""
    from seqrob.analysis.methods import METHOD_CONTRAST, METHOD_VARIANCE, ORDER_METHOD_CONTRAST

    alpha, scale = inputs.options.alpha, scale_of(group.metric)
    methods = group.methods
    blocks: list[Block] = [Heading(_section(inputs, 3, "Methods compared", group, index))]
    contrasts = group.results[group.results["test"].isin((METHOD_CONTRAST, ORDER_METHOD_CONTRAST))]
    if contrasts.empty:
        blocks.append(Text(f"The methods ({join(methods)}) were not compared: fewer than 2 seeds were run with every "
                           "order under every method."))  # fmt: skip
        return blocks
    source = intervals_of(contrasts) or "no intervals"
    blocks.append(Text(
        f"Methods {join(methods)} on {group.design['seeds']} seeds run with every order under each. "
        f"**Method:** per seed, the difference of the methods' family means, each averaged over the orders "
        f"({join(group.orders)}); **order × method:** per seed, an order difference under one method minus the "
        f"same under the other. Both are tested over seeds, each family on its own noise; intervals: {source}. "
        f"{_correction(contrasts, inputs)} correction within each question; filled diamonds are significant at "
        f"α = {alpha:g} after it."))  # fmt: skip
    rows = contrasts.assign(group=contrasts["family"])
    colors = {"method": figures.OKABE_ITO[4], "order × method": figures.OKABE_ITO[0]}
    pages = figures.chunk_groups([(f, int((rows["group"] == f).sum()) + 1) for f in group.families])
    for k, families in enumerate(pages):
        fig = figures.interval_plot(
            rows[rows["group"].isin(families)], groups=families, colors=colors,
            color_of=lambda term: colors["order × method" if ": " in term else "method"],
            xlabel=f"difference in {group.metric} ({scale.unit}); lines: {source}", scale=scale.factor,
            label=lambda r: f"{scale.value(r['estimate'], signed=True):>6} {interval(r['ci_low'], r['ci_high'], scale):<16} {_p_label(r['p_adjusted'])}",
            significant=lambda r: bool(r["p_adjusted"] < alpha), group_note=_families_note(group),
            legend_title="colour: what is compared",
        )  # fmt: skip
        part = f" (part {k + 1} of {len(pages)})" if len(pages) > 1 else ""
        blocks.append(Figure(fig, caption=(
            f"**Methods compared per language family{part}** ({group.label}). 'm vs n': method m minus n, averaged "
            f"over the orders; 'a vs b: m vs n': the order difference a minus b under m minus under n. Points in "
            f"{scale.unit}; lines: {source}; dashed: no difference. Right: estimate, CI and adjusted p.")))  # fmt: skip
    order = {f: i for i, f in enumerate(group.families)}
    table = []
    for r in contrasts.sort_values("family", key=lambda f: f.map(order), kind="stable").itertuples():
        adjusted = p_text(r.p_adjusted)
        table.append([r.family, r.term, scale.value(r.estimate, signed=True), interval(r.ci_low, r.ci_high, scale),
                      number(r.df, 1), p_text(r.p_value), f"**{adjusted}**" if r.p_adjusted < alpha else adjusted])  # fmt: skip
    blocks.append(Table(["family", "compared", f"diff. ({scale.unit})", f"{_level(contrasts, inputs)} CI", "df", "p",
                         f"p ({_correction(contrasts, inputs)})"], table,
                        caption=f"**Every method comparison** of {group.label}: {source}. Bold: significant after "
                                "correction (each question is its own family of tests).",
                        align=["l", "l", "r", "r", "r", "r", "r"], widths=[1.3, 2.3, 0.8, 1.3, 0.4, 0.7, 0.8],
                        font_size=7))  # fmt: skip
    sds = group.results[group.results["test"] == "method_sd"].set_index(["family", "term"])["estimate"]
    tests = group.results[group.results["test"] == METHOD_VARIANCE]
    if len(tests):
        spread = []
        for r in tests.sort_values("family", key=lambda f: f.map(order), kind="stable").itertuples():
            adjusted = p_text(r.p_adjusted)
            spread.append([r.family, *(scale.value(sds.get((r.family, m), np.nan)) for m in methods), r.term,
                           _ratio(r.estimate), f"[{_ratio(r.ci_low)}, {_ratio(r.ci_high)}]",
                           f"**{adjusted}**" if r.p_adjusted < alpha else adjusted])  # fmt: skip
        header = ["family", *(f"SD {m} ({scale.unit})" for m in methods), "compared", "SD ratio",
                  f"{_level(tests, inputs)} CI", f"p ({_correction(tests, inputs)})"]  # fmt: skip
        blocks.append(Table(header, spread, caption=(
            f"**Across-seed spread by method** ({group.label}): the SD over seeds of each method's family score "
            f"averaged over the orders, and a permutation test of the method labels within seeds (its interval by "
            f"inverting the test). With few seeds the test cannot reach significance: the findings say so."),
            align=["l"] + ["r"] * len(methods) + ["l", "r", "r", "r"], font_size=7))  # fmt: skip
    return blocks


def _p_label(p) -> str:
    text = p_text(p)
    return "p" + ("" if text.startswith("<") else "=") + text


def _check(group: Group) -> pd.DataFrame:
    """The resampling check shown beside each contrast: the exact sign-flip test where it ran
    (few seeds), else the paired bootstrap's percentile interval."""
    results = group.results
    flips = results[results["test"] == "signflip_contrast"]
    if len(flips):
        return flips.drop_duplicates(["term", "family"])
    boot = results[results["test"] == "bootstrap_contrast"]
    percentile = boot[boot["variant"] == "percentile"]
    return (percentile if len(percentile) else boot).drop_duplicates(["term", "family"])


def _contrast_table(group: Group, contrasts: pd.DataFrame, inputs: Inputs) -> Table:
    scale = scale_of(group.metric)
    name = _correction(contrasts, inputs)
    check = _check(group)
    adjusted = check["correction"].notna().any()
    by_key = check.set_index(["family", "term"])
    order = {f: i for i, f in enumerate(group.families)}
    rows = []
    for r in contrasts.sort_values("family", key=lambda s: s.map(order), kind="stable").itertuples():
        key = (r.family, r.term)
        significant = r.p_adjusted < inputs.options.alpha
        row = [r.family, r.term, scale.value(r.estimate, signed=True), interval(r.ci_low, r.ci_high, scale),
               number(r.df, 1), p_text(r.p_value), ("**" + p_text(r.p_adjusted) + "**") if significant else p_text(r.p_adjusted)]  # fmt: skip
        if len(check):
            found = key in by_key.index
            row += [interval(by_key.loc[key, "ci_low"], by_key.loc[key, "ci_high"], scale) if found else "\u2013",
                    p_text(by_key.loc[key, "p_adjusted" if adjusted else "p_value"]) if found else "\u2013"]  # fmt: skip
        rows.append(row)
    header = ["family", "contrast", f"diff. ({scale.unit})", f"{_level(contrasts, inputs)} CI", "df", "p", f"p ({name})"]
    widths = [1.45, 1.65, 0.95, 1.4, 0.5, 0.8, 0.8]
    caption = f"**Every order contrast** of {group.label}: {intervals_of(contrasts)} with its p"
    if len(check):
        kind = join(dict.fromkeys(check["interval"].dropna())) or "check"
        header += [f"{kind}: {_level(check, inputs)} CI", f"its p ({_correction(check, inputs) if adjusted else 'unadjusted'})"]
        widths += [1.4, 1.1]
        caption += f" (primary) and, as a check, the {intervals_of(check) or kind} with its p"
    return Table(header, rows, caption=caption + ". Bold: significant after correction.",
                 align=["l", "l"] + ["r"] * (len(header) - 2), widths=widths, font_size=7)


def _heatmaps(group: Group, scale, languages: pd.DataFrame) -> list[Block]:
    data = group.scores
    means = data.groupby(["language", "order"], as_index=False)["score"].mean()
    family_of = data.drop_duplicates("language").set_index("language")["family"].to_dict()
    blocks: list[Block] = []
    counts = data.groupby("family")["language"].nunique()
    pages = figures.chunk_groups([(f, int(counts[f])) for f in group.families], limit=52)
    reference = _reference_order(group)
    beside = f"; right: each other order minus {reference}" if len(group.orders) > 1 else ""
    for k, families in enumerate(pages):
        fig = figures.language_heatmap(
            means[means["language"].map(family_of).isin(families)], orders=group.orders, reference=reference,
            families=families, language_label=_language_labels(data, languages), family_of=family_of, scale=scale.factor,
            unit=scale.unit if scale.unit != "points" else f"{group.metric} (\u00d7100)",
        )  # fmt: skip
        part = f" (part {k + 1} of {len(pages)})" if len(pages) > 1 else ""
        seeds = group.min_seeds
        blocks.append(Figure(fig, caption=(
            f"**Mean {group.metric} per language and order{part}** ({group.label}), averaged over "
            f"{plural(seeds, 'seed')}{beside}. Languages are grouped by family. "
            "These are descriptive means, not tests: per-language differences carry seed noise.")))  # fmt: skip
    return blocks


def _reference_order(group: Group) -> str:
    """The order the others are compared with: the baseline where it was run, else the first order
    (as in the contrasts, where the first-listed order comes second)."""
    return group.baseline if group.baseline in group.orders else group.orders[0]


def _language_labels(data: pd.DataFrame, languages: pd.DataFrame) -> dict[str, str]:
    """``Finnish (fi)`` where the warehouse knows the name, else the code."""
    names = languages.set_index("code")["name"].dropna().to_dict() if len(languages) else {}
    labels = {}
    for code in data["language"].unique():
        name = names.get(code)
        labels[code] = f"{name} ({code})" if name and name.lower() != code.lower() else code
    return labels


def _model_tables(group: Group, inputs: Inputs) -> list[Block]:
    model = group.model
    scale = scale_of(group.metric)
    blocks: list[Block] = [Heading("The mixed model", level=2)]
    if not model.get("fixed_effects"):
        blocks.append(Text("Not fitted: it needs at least two orders with at least two seeds each."))
        return blocks
    formula = model.get("formula") or "score ~ order * family + (1|seed) + (1|seed:order) + (1|language)"
    fixed = pd.DataFrame(model["fixed_effects"])
    first_order = _absent_level(group.orders, fixed["term"], "order")
    first_family = _absent_level(group.families, fixed["term"], "family")
    blocks.append(Text(
        f"Fitted by {model.get('criterion', 'REML')} to every score of {group.label} (one per run \u00d7 language): "
        f"**{formula}**. The fixed effects are {first_order}'s mean in {first_family} and the differences "
        "from it; the random intercepts carry what is not the order's doing: each seed, each seed \u00d7 order run, "
        f"each language. {'Converged.' if model.get('converged', True) else 'The optimiser did NOT converge: read with care.'}"))  # fmt: skip
    components = model.get("variance_components") or {}
    total = sum(v for v in components.values() if v is not None and np.isfinite(v))
    meaning = {
        "seed": "seed (shared by all orders of a seed: init, data order)",
        "run": "run (seed \u00d7 order: what one training run adds)",
        "language": "language (some languages are easier)",
        "residual": "residual (run \u00d7 language, evaluation noise)",
    }
    rows = []
    for key in ("seed", "run", "language", "residual"):
        if key in components:
            value = components[key]
            ok = value is not None and np.isfinite(value)
            rows.append([meaning[key], f"{value:.3g}" if ok else "\u2013",
                         scale.value(np.sqrt(value)) if ok else "\u2013",
                         f"{100 * value / total:.0f}%" if ok and total > 0 else "\u2013"])  # fmt: skip
    blocks.append(Table(["component", "variance", f"SD ({scale.unit})", "share"], rows,
                        caption="**Variance components**: where the variation in scores comes from.",
                        align=["l", "r", "r", "r"], widths=[5, 1.3, 1.3, 1]))  # fmt: skip
    tests = group.results[group.results["test"].isin(list(_MODEL_TESTS))]
    if len(tests):
        rows = [[_MODEL_TESTS[r.test], number(r.statistic, 2), number(r.df, 1), p_text(r.p_value), p_text(r.p_adjusted),
                 r.method or "\u2013"] for r in tests.itertuples()]  # fmt: skip
        blocks.append(Table(["test of", "statistic", "df", "p", f"p ({_correction(tests, inputs)})", "how"], rows,
                            caption=("**Does order matter at all, and does its effect differ by family?** The "
                                     "verdicts read the tests over seeds (no shared run variance assumed); the mixed "
                                     "model's F tests assume one run variance for all families and are for reference. "
                                     "Adjusted within the families of tests listed in Section 5."),
                            align=["l", "r", "r", "r", "r", "l"], widths=[2.6, 0.9, 0.6, 0.7, 0.9, 5.3], font_size=6.8))  # fmt: skip
    rows = [[term_text(r.term), scale.value(r.estimate, signed=r.term != "(Intercept)"), scale.value(r.se),
             number(r.df, 1), number(r.statistic, 2), p_text(r.p_value)] for r in fixed.itertuples()]  # fmt: skip
    blocks.append(Table(["term", f"estimate ({scale.unit})", "SE", "df", "t", "p"], rows,
                        caption=(f"**Fixed effects** (treatment coding: the intercept is {first_order} in "
                                 f"{first_family}; unadjusted p; the per-family contrasts above are the inference)."),
                        align=["l", "r", "r", "r", "r", "r"], widths=[5, 1.4, 1, 0.9, 0.9, 0.9]))
    return blocks


#: The model-level tests shown beside the mixed model, and what each tests.
_MODEL_TESTS = {
    "order_anova": "order, over seeds (verdict)",
    "order_family_anova": "order \u00d7 family, over seeds (verdict)",
    "lrt_order": "order, mixed model (reference)",
    "lrt_order_family": "order \u00d7 family, mixed model (reference)",
    "run_variance_lrt": "run variance differs by order (reference)",
}


def _absent_level(levels: Sequence[str], terms: pd.Series, factor: str) -> str:
    """The reference level of a treatment-coded factor: the one level with no ``<factor><level>`` term."""
    coded = set(terms)
    absent = [level for level in levels if f"{factor}{level}" not in coded]
    return absent[0] if len(absent) == 1 else f"the reference {factor}"


# --- 4. robustness --------------------------------------------------------------------------------


def robustness(group: Group, inputs: Inputs, *, index: int) -> list[Block]:
    alpha = inputs.options.alpha
    scale = scale_of(group.metric)
    colors = figures.order_colors(group.orders, group.baseline)
    blocks: list[Block] = [Heading(_section(inputs, 4, "Robustness across seeds", group, index))]
    seeds = group.min_seeds
    if seeds < 2:
        blocks.append(Text(f"With {plural(seeds, 'seed')} per order there is no across-seed variation to show or "
                           "estimate: nothing in this section can be tested. Train or ingest at least 3 seeds per order "
                           "(5 or more to compare variances)."))  # fmt: skip
        return blocks
    blocks.append(Text(
        "Does the order change how much a result depends on the seed? Each point is one seed's score averaged over a "
        "family's languages; the same seed is joined across orders"
        + (" (the seeds are paired: every order ran with the same seeds)" if group.design.get("paired_seeds", True) else "")
        + ". A wider spread under one order means a single-seed result under that order is less trustworthy."))  # fmt: skip
    data = group.scores
    per_family = data.groupby(["family", "order", "seed"], as_index=False)["score"].mean().rename(columns={"family": "panel"})
    overall = data.groupby(["order", "seed"], as_index=False)["score"].mean().assign(panel=figures.ALL_LANGUAGES)
    seed_scores = pd.concat([overall, per_family], ignore_index=True)
    panels = [figures.ALL_LANGUAGES] + group.families
    notes = {f: f" ({n})" for f, n in data.groupby("family")["language"].nunique().items()}
    for chunk in _chunks(panels, 16):
        fig = figures.seed_distributions(seed_scores[seed_scores["panel"].isin(chunk)], panels=chunk, orders=group.orders,
                                         colors=colors, scale=scale.factor, unit=scale.unit, panel_note=notes)  # fmt: skip
        blocks.append(Figure(fig, caption=(
            f"**Across-seed distributions** ({group.label}): one point per seed ({plural(seeds, 'seed')} per order), the "
            f"family's mean {group.metric} in {scale.unit}; bar: mean; whisker: \u00b11 SD. Panels have their own "
            "y-scales (families differ in level; the spread within a panel is what matters). "
            "In brackets: languages in the family.")))  # fmt: skip
    pairs = group.results[(group.results["test"] == "variance") & group.results["term"].str.contains(" vs ", regex=False)]
    if len(pairs):
        name = _correction(pairs, inputs)
        source = intervals_of(pairs) or "no intervals"
        rows = pairs.assign(group=pairs["family"].fillna(figures.ALL_LANGUAGES))
        groups = [figures.ALL_LANGUAGES] + group.families
        for chunk in figures.chunk_groups([(g, int((rows["group"] == g).sum()) + 1) for g in groups]):
            fig = figures.interval_plot(
                rows[rows["group"].isin(chunk)], groups=chunk, colors=colors,
                color_of=lambda term: colors.get(split_term(term)[0], "#333333"),
                xlabel=f"ratio of across-seed SDs (first order / second; log scale); lines: {source}", log=True,
                reference=1.0,
                label=lambda r: f"{_ratio(r['estimate']):>5} [{_ratio(r['ci_low'])}, {_ratio(r['ci_high'])}] {_p_label(r['p_adjusted'])}",
                significant=lambda r: bool(r["p_adjusted"] < alpha), group_note=_families_note(group),
            )  # fmt: skip
            unbounded = int((~np.isfinite(rows["ci_high"].astype(float)) | (rows["ci_low"] < 1 / 64)).sum())
            note = (f" {unbounded} of {len(rows)} intervals run off the scale (arrowheads: unbounded or beyond 1/64): "
                    f"with {plural(seeds, 'seed')} per order the data cannot bound those ratios.") if unbounded else ""  # fmt: skip
            blocks.append(Figure(fig, caption=(
                f"**SD ratios** ({group.label}): across-seed SD under the first order divided by that under the second; "
                f"lines: {source}, the ratios the test does not reject; dashed: equal spread. Right: ratio, CI and "
                f"{name}-adjusted p of the permutation test of spread (order labels permuted within seeds). Filled: "
                f"significant after correction.{note}")))  # fmt: skip
    blocks += _sd_table(group, inputs)
    blocks += _variance_table(group, inputs)
    blocks += _aso(group, inputs)
    return blocks


def _ratio(value) -> str:
    """An SD ratio for reading: beyond 1/100 or 100 only its side is worth printing."""
    if value is not None and np.isfinite(value) and value >= 100:
        return ">100"
    if value is not None and np.isfinite(value) and 0 < value < 0.01:
        return "<0.01"
    return number(value, 2)


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def _sd_table(group: Group, inputs: Inputs) -> list[Block]:
    scale = scale_of(group.metric)
    sd = group.results[group.results["test"] == "sd"]
    if sd.empty:
        return []
    sd = sd.assign(group=sd["family"].fillna(figures.ALL_LANGUAGES)).drop_duplicates(["group", "term"])
    rows = []
    for g in [figures.ALL_LANGUAGES] + group.families:
        part = sd[sd["group"] == g].set_index("term")
        if part.empty:
            continue
        cells = []
        for order in group.orders:
            if order in part.index:
                r = part.loc[order]
                cells.append(f"{scale.value(r['estimate'])} {interval(r['ci_low'], r['ci_high'], scale, signed=False)}")
            else:
                cells.append("\u2013")
        rows.append([g] + cells)
    return [Table(["family"] + group.orders, rows,
                  caption=(f"**Across-seed SD per order** ({scale.unit}; {intervals_of(sd) or 'no intervals'}) of the "
                           "family's seed-level mean scores."),
                  align=["l"] + ["r"] * len(group.orders), widths=[1.8] + [1.6] * len(group.orders))]


def _variance_table(group: Group, inputs: Inputs) -> list[Block]:
    results = group.results
    paired = results[(results["test"] == "variance") & (results["term"] == "order")]
    if paired.empty:
        return []
    reference = results[(results["test"] == "levene") & (results["term"] == "order")]
    paired, reference = (frame.assign(group=frame["family"].fillna(figures.ALL_LANGUAGES)) for frame in (paired, reference))
    variants = list(dict.fromkeys(reference["variant"].dropna()))  # the reference tests that ran, by variant
    rows = []
    for g in [figures.ALL_LANGUAGES] + group.families:
        part = paired[paired["group"] == g]
        if part.empty:
            continue
        r = part.iloc[0]
        others = reference[reference["group"] == g]
        cells = []
        for variant in variants:
            row = others[others["variant"] == variant]
            cells.append(p_text(row.iloc[0]["p_value"]) if len(row) else "\u2013")
        statistic = "\u2013" if not np.isfinite(r["statistic"]) else number(r["statistic"], 2)
        rows.append([g, number(r["estimate"], 2), number(r["n"], 0), statistic,
                     p_text(r["p_value"]), p_text(r["p_adjusted"])] + cells)  # fmt: skip
    reference_note = (f" {join(variants)} (unadjusted p) treat the orders as independent samples and are shown for "
                      "reference only.") if variants else ""  # fmt: skip
    blocks: list[Block] = [Table(
        ["family", "max/min SD", "seeds", "log ratio", "p", f"p ({_correction(paired, inputs)})"]
        + [f"{v} p" for v in variants], rows,
        caption=("**Variance tests**: do the orders differ in across-seed spread? Omnibus over all orders: a "
                 "permutation test of the order labels within seeds (statistic: log of the largest over the smallest "
                 "mean absolute deviation from the order's median), valid with outlier runs, skew and seed effects."
                 + reference_note),
        align=["l"] + ["r"] * (5 + len(variants)), widths=[1.9, 0.9, 0.6, 1.2, 0.7, 0.8] + [1.1] * len(variants))]  # fmt: skip
    lrt = results[results["test"] == "run_variance_lrt"]
    if len(lrt):
        r = lrt.iloc[0]
        blocks.append(Text(f"For reference: in the mixed model, letting each order have its own run variance "
                           f"changes the REML log-likelihood by a chi-square of {number(r['statistic'], 2)} on "
                           f"{number(r['df'], 0)} df (p = {p_text(r['p_value'])}); the chi-square reference is liberal "
                           "with fewer than about 20 seeds and assumes normal runs; verdicts read the permutation tests above."))  # fmt: skip
    return blocks


def _aso(group: Group, inputs: Inputs) -> list[Block]:
    aso = group.results[group.results["test"] == "aso"]
    if aso.empty:
        return []
    aso = aso.assign(group=aso["family"].fillna(figures.ALL_LANGUAGES))
    orders = group.orders
    pairs = [f"{a} vs {b}" for a in orders for b in orders if a != b]
    if len(orders) > 5:  # keep the matrix legible: the pairs with the baseline, both ways
        pairs = [p for p in pairs if group.baseline in split_term(p)]
    blocks: list[Block] = []
    groups = [figures.ALL_LANGUAGES] + group.families
    for chunk in _chunks(groups, 40):
        fig = figures.aso_matrix(aso[aso["group"].isin(chunk)], rows=chunk, pairs=pairs)
        blocks.append(Figure(fig, caption=(
            f"**Almost stochastic order** ({group.label}; Dror et al. 2019): \u03b5_min for 'A vs B' (columns) per family "
            "(rows), from the seed-level scores. \u03b5_min < 0.5 (purple) means A is almost stochastically better than "
            "B; near 1 (orange), B is. With few seeds, read it as a description of the seed distributions.")))  # fmt: skip
    return blocks


# --- 5. methods -------------------------------------------------------------------------------------


def methods(inputs: Inputs) -> list[Block]:
    """What was computed, generated from the result rows: a paragraph per procedure that ran
    (their ``test``, ``variant``, ``interval`` and ``correction`` columns), the families of
    tests corrected together, the calibration, and the references cited."""
    results = pd.concat([g.results for g in inputs.groups + inputs.comparisons], ignore_index=True)
    blocks: list[Block] = [Heading("5. Methods"), Text(
        "**Data.** One score per run \u00d7 task \u00d7 language \u00d7 metric, from finished runs only; a run is one "
        "order trained with one seed. Where per-example outcomes are stored, resampling goes down to examples. "
        "Accuracy-like metrics are analysed as proportions and reported in points (\u00d7100).")]  # fmt: skip
    cited: list[str] = []
    for paragraph in (_verdict_methods, _training_method_methods, _few_seed_methods, _mixed_methods,
                      _bootstrap_methods, _variance_methods, _aso_methods, _multiplicity_methods,
                      _power_methods):  # fmt: skip
        text, references = paragraph(results, inputs)
        if text:
            blocks.append(Text(text))
            cited += references
    blocks.append(_families_of_tests(inputs))
    blocks += _calibration(inputs)
    blocks.append(Heading("References", level=2))
    for key in dict.fromkeys(cited + ["dodge2020", "phang2020", "okabe2008"]):
        blocks.append(Text(REFERENCES[key], "small"))
    return blocks


def _of(results: pd.DataFrame, *tests: str) -> pd.DataFrame:
    return results[results["test"].isin(tests)]


def _variants(rows: pd.DataFrame, words: dict[str, str]) -> str:
    """The rows' test variants in words (a variant without words is named as stored)."""
    return join(words.get(v, v) for v in dict.fromkeys(rows["variant"].dropna()))


_CONTRAST_WORDS = {
    "paired": "the paired t over seeds of each seed's difference in that family's mean",
    "Welch": "Welch's t on the runs' family means (orders run with different seeds)",
}
_ANOVA_WORDS = {
    "Greenhouse-Geisser repeated measures": "the repeated-measures ANOVA over seeds of the order \u00d7 family means "
    "with the Greenhouse-Geisser correction (Greenhouse & Geisser 1959)",
    "heteroscedastic ANOVA-type statistic": "the heteroscedastic ANOVA-type test of Brunner, Dette & Munk (1997) on the "
    "runs' order \u00d7 family means (unpaired runs)",
}
_ANOVA_REFERENCES = {"Greenhouse-Geisser repeated measures": "greenhouse1959",
                     "heteroscedastic ANOVA-type statistic": "brunner1997"}  # fmt: skip


def _verdict_methods(results: pd.DataFrame, inputs: Inputs) -> tuple[str, list[str]]:
    contrasts, anova = _of(results, "contrast"), _of(results, "order_anova", "order_family_anova")
    if contrasts.empty and anova.empty:
        return "", []
    text = ("**Verdict tests** (the inference). Each run is summarised by its family means (the mean over a family's "
            "languages).")  # fmt: skip
    if len(contrasts):
        text += (f" Order contrasts within a family: {_variants(contrasts, _CONTRAST_WORDS)}, so each family is tested "
                 f"on its own seed-to-seed noise; intervals: {intervals_of(contrasts) or 'none'}.")  # fmt: skip
    if len(anova):
        text += (" Whether order matters at all, and whether its effect differs between families: "
                 f"{_variants(anova, _ANOVA_WORDS)}.")  # fmt: skip
    text += (" Neither assumes that families share one run variance or that a run's luck is the same in every family; "
             "real runs break both (a model that assumes them called false order effects in 65% of relabelled real "
             "nulls).")  # fmt: skip
    return text, [_ANOVA_REFERENCES[v] for v in dict.fromkeys(anova["variant"].dropna()) if v in _ANOVA_REFERENCES]


def _training_method_methods(results: pd.DataFrame, inputs: Inputs) -> tuple[str, list[str]]:
    from seqrob.analysis.methods import METHOD_CONTRAST, METHOD_VARIANCE, ORDER_METHOD_CONTRAST

    rows = _of(results, METHOD_CONTRAST, METHOD_VARIANCE, ORDER_METHOD_CONTRAST)
    if rows.empty:
        return "", []
    seeds = join(str(g.design["seeds"]) for g in inputs.comparisons)
    text = ("**Training methods compared** (verdicts). Only the seeds run with every order under every method "
            f"({seeds}) are used, and each seed is one unit: its pipelines share the seed's luck however it carries "
            "across orders and methods. Method: the per-seed difference of the methods' family means, each averaged "
            "over the orders, by a paired t over seeds. Order × method: per seed, an order difference under one "
            "method minus under the other, by a paired t over seeds. Spread: the SD over seeds of each method's "
            "order-averaged family score, by a permutation test of the method labels within seeds (exact, its "
            "smallest p 2/2^S with two methods: below 6 seeds it cannot reach 0.05). Each question is its own "
            f"family of tests; intervals: {intervals_of(rows) or 'none'}.")  # fmt: skip
    return text, []


def _few_seed_methods(results: pd.DataFrame, inputs: Inputs) -> tuple[str, list[str]]:
    flips = _of(results, "signflip_contrast")
    if flips.empty:
        return "", []
    few = min(g.min_seeds for g in inputs.groups)
    return (f"**Few seeds.** With {FEW_SEEDS} seeds or fewer per order a bootstrap over seeds undercovers, so the exact "
            f"paired sign-flip test (all 2^n sign vectors; {intervals_of(flips) or 'no intervals'}) is shown beside the "
            f"t as a check. This report's smallest design has {plural(few, 'seed')} per order."), []  # fmt: skip


def _mixed_methods(results: pd.DataFrame, inputs: Inputs) -> tuple[str, list[str]]:
    model = _of(results, "lrt_order", "lrt_order_family", "mixed_contrast", "run_variance_lrt")
    if model.empty:
        return "", []
    formulas = join(dict.fromkeys(g.model["formula"] for g in inputs.groups if g.model.get("formula")))
    contrasts = _of(results, "mixed_contrast")
    shown = f"its contrasts ({intervals_of(contrasts)}; estimates only) and " if len(contrasts) else ""
    return (f"**Mixed model** (for reference and for comparison with lme4). For each task \u00d7 metric: {formulas}, "
            "crossed random intercepts for seed, seed \u00d7 order (the run) and language, fitted by REML with lme4's "
            "profiled deviance (Bates et al. 2015) and checked against lme4/lmerTest on the same data; "
            f"{shown}its F tests (denominator df by Satterthwaite, Kuznetsova et al. 2017) are shown but no verdict "
            "reads them."), ["bates2015", "kuznetsova2017"]  # fmt: skip


def _bootstrap_methods(results: pd.DataFrame, inputs: Inputs) -> tuple[str, list[str]]:
    boot, sd = _of(results, "bootstrap_contrast", "bootstrap_mean"), _of(results, "sd")
    if boot.empty and sd.empty:
        return "", []
    options = inputs.options
    parts = [f"means and differences: {intervals_of(boot)}" if len(boot) else "",
             f"across-seed SDs: {intervals_of(sd)}" if len(sd) else ""]  # fmt: skip
    text = (f"**Paired hierarchical bootstrap** (Sellam et al. 2021, the MultiBERTs procedure): B = {options.n_boot:,} "
            "replicates resample seeds and, within each language, examples, jointly for all orders (every order sees "
            f"the same seeds and examples, so differences are paired). Intervals (Efron 1987): "
            f"{'; '.join(p for p in parts if p)}.")  # fmt: skip
    references = ["sellam2021", "efron1987"]
    if (pd.concat([boot, sd])["confidence"].dropna() > options.confidence + 1e-9).any():
        text += (f" With few seeds the bootstrap's intervals are expanded (Hesterberg 2015): computed at the wider "
                 f"level shown so that they cover at about {percent(options.confidence)}.")  # fmt: skip
        references.append("hesterberg2015")
    contrasts = _of(results, "bootstrap_contrast")
    if len(contrasts):
        text += (" Its contrasts' p-values are corrected as a family of their own and shown as a check; no verdict "
                 "reads them." if contrasts["correction"].notna().any() else
                 " Its contrasts are descriptions here: not corrected, and no verdict reads them.")  # fmt: skip
    return text + f" Resampling seed: {options.seed}.", references


def _variance_methods(results: pd.DataFrame, inputs: Inputs) -> tuple[str, list[str]]:
    variance = _of(results, "variance")
    if variance.empty:
        return "", []
    pairs = variance[variance["term"].str.contains(" vs ", regex=False)]
    text = ("**Variance.** Whether order changes across-seed variance (the verdicts): a permutation test of the order "
            "labels within each seed (among runs when seeds are not shared) on the seed-level family means, statistic "
            "the log of the largest over the smallest mean absolute deviation from the order's median, for every pair "
            "of orders and over all orders; valid whatever the shape of the scores (skew near a ceiling, outlier runs) "
            "and the seed effect.")  # fmt: skip
    if len(pairs):
        text += (f" SD-ratio intervals ({intervals_of(pairs) or 'none'}) are the ratios the pairwise test does not "
                 "reject: they come from the test, not from the bootstrap.")  # fmt: skip
    references: list[str] = []
    reference: list[str] = []
    morgan = _of(results, "pitman_morgan")
    if len(morgan):
        reference.append("the paired Pitman-Morgan test (Pitman 1939; Morgan 1939; exact under normality, broken by an "
                         f"outlier run; its SD-ratio intervals: {intervals_of(morgan) or 'none'})")  # fmt: skip
        references += ["pitman1939", "morgan1939"]
    levene = _of(results, "levene")
    if len(levene):
        named = {"Brown-Forsythe": "Brown-Forsythe (Brown & Forsythe 1974)", "Levene": "Levene (1960)"}
        variants = list(dict.fromkeys(levene["variant"].dropna())) or ["Brown-Forsythe", "Levene"]  # variant not stored
        reference.append(f"{join(named.get(v, v) for v in variants)} tests, which treat the orders as independent samples")
        references += ["brown1974", "levene1960"]
    if len(_of(results, "run_variance_lrt")):
        reference.append("the mixed model's likelihood-ratio test of one run variance per order")
    if reference:
        text += f" For reference: {join(reference)}."
    sd = _of(results, "sd")
    if len(sd):
        text += f" Per-order SDs: {intervals_of(sd) or 'no intervals'}."
    return text, references


def _aso_methods(results: pd.DataFrame, inputs: Inputs) -> tuple[str, list[str]]:
    aso = _of(results, "aso")
    if aso.empty:
        return "", []
    levels = join(percent(c) for c in dict.fromkeys(aso["confidence"].dropna())) or "the stated confidence"
    if aso["correction"].notna().any():
        status = f"its p-values are {_correction(aso, inputs)}-corrected; no verdict reads them."
    else:
        status = ("descriptive: neither its confidence nor its p-values are adjusted for the number of pairs, and no "
                  "verdict reads them.")  # fmt: skip
    return ("**Almost stochastic order** (Dror et al. 2019), as implemented by deepsig (Ulmer et al. 2022), for every "
            f"ordered pair of orders on seed-level scores; \u03b5_min at {levels} confidence, {status}"), \
        ["dror2019", "ulmer2022"]  # fmt: skip


def _multiplicity_methods(results: pd.DataFrame, inputs: Inputs) -> tuple[str, list[str]]:
    corrections = list(dict.fromkeys(results["correction"].dropna()))
    named = {"holm": ("Holm 1979", "holm1979"), "bh": ("Benjamini & Hochberg 1995", "bh1995")}
    if not corrections:
        return "**Multiplicity.** No p-value was corrected: no test was run (descriptive results only).", []
    used = join(f"{CORRECTION_NAMES.get(c, c)} ({named.get(c, (c, ''))[0]})" for c in corrections)
    loose = results[results["p_value"].notna() & results["correction"].isna()]
    text = (f"**Multiplicity.** {used} within each family of tests of one task \u00d7 metric; the families and how "
            "many p-values each corrects are listed below. Unadjusted p-values are shown beside adjusted ones.")  # fmt: skip
    if len(loose):
        text += f" Not corrected (descriptive): {join(dict.fromkeys(loose['test']))}."
    return text, [named[c][1] for c in corrections if c in named]


def _power_methods(results: pd.DataFrame, inputs: Inputs) -> tuple[str, list[str]]:
    if not any(len(g.power) for g in inputs.groups):
        return "", []
    options, scale = inputs.options, scale_of(inputs.groups[0].metric)
    return (f"**Power.** Seeds per order needed to detect an order difference of {scale.value(options.effect)} "
            f"{scale.unit} with 80% power at \u03b1 = {options.alpha:g}, per family from that family's own seed-to-seed "
            f"SD of the differences (noncentral t), at the level the {_correction(_of(results, 'contrast'), inputs)} "
            "correction asks of the smallest p."), []  # fmt: skip


def _families_of_tests(inputs: Inputs) -> Table:
    """The families of tests corrected together, from the rows' ``correction``, ``correction_family``
    and ``n_corrected`` columns; and the tests with p-values that no correction covers."""
    rows = []
    for group in inputs.groups + inputs.comparisons:
        results = group.results
        corrected = results[results["correction"].notna()]
        keys = corrected[["correction_family", "correction", "n_corrected"]].drop_duplicates()
        for r in keys.itertuples():
            count = "\u2013" if pd.isna(r.n_corrected) else str(int(r.n_corrected))
            rows.append([group.label, r.correction_family, CORRECTION_NAMES.get(r.correction, r.correction), count])
        loose = results[results["p_value"].notna() & results["correction"].isna()]
        if len(loose):
            rows.append([group.label, join(dict.fromkeys(loose["test"])), "none (descriptive)", "\u2013"])
    if not rows:
        rows = [["\u2013", "no test was run (descriptive results only)", "\u2013", "\u2013"]]
    return Table(["task \u00d7 metric", "tests corrected together", "correction", "p-values"], rows,
                 caption="**Families of tests** and their correction (p-values: how many each family corrects together).",
                 align=["l", "l", "l", "r"], widths=[1.6, 4, 1.4, 0.8])  # fmt: skip


def _calibration(inputs: Inputs) -> list[Block]:
    from seqrob.analysis.calibrate import METHOD_VERDICT_TESTS, VERDICT_TESTS, nearest_design

    table = inputs.calibration
    blocks: list[Block] = [Heading("Calibration", level=2)]
    blocks += _data_calibration(inputs)
    if table is None or len(table) == 0:
        blocks.append(Text(
            "No simulation calibration table was given for this report: write one with `seqrob analyze calibrate "
            "--out calibration.csv` and pass it with `seqrob report --calibration calibration.csv`."))  # fmt: skip
        return blocks
    about_methods = table["test"].str.startswith(METHOD_VERDICT_TESTS)
    shown = [(table[~about_methods], inputs.groups, "order")]
    if inputs.comparisons and about_methods.any():
        shown.append((table[about_methods], inputs.comparisons, "method"))
    for part, groups, factor in shown:
        if part.empty or not groups:
            continue
        design = nearest_design(part, seeds=min(g.min_seeds for g in groups),
                                orders=max(len(g.orders) for g in groups),
                                families=max(g.scores["family"].nunique() for g in groups))  # fmt: skip
        rows_ = part
        for column, value in design.items():
            rows_ = rows_[rows_[column] == value]
        verdict = rows_["test"].str.startswith(VERDICT_TESTS) | rows_["test"].str.endswith("(Holm family)")
        rows_ = rows_[verdict].sort_values(["measure", "test"], kind="stable")
        noises = list(dict.fromkeys(rows_["noise"])) if "noise" in rows_.columns else ["model"]
        what = ("the verdicts' tests of order" if factor == "order" else
                "the method questions' tests (two simulated methods, every order under each)")  # fmt: skip
        blocks.append(Text(
            f"Measured by simulation from a known truth (seqrob analyze calibrate): on data with no {factor} effect, "
            "the share of tests rejecting at \u03b1 (type-I error, target 0.04-0.06) and of data sets with any false "
            "verdict in a Holm family (family-wise, target \u2264 \u03b1); on data with planted effects, the share of "
            "intervals holding the true difference (coverage, target 0.93-0.97). The noise structures are the mixed "
            f"model's own and others it does not assume ({', '.join(noises)}). Shown: {what} in the simulated design "
            f"closest to this report's ({design['seeds']} seeds per {factor}, {design['orders']} orders, the "
            f"'{design['families']}' set of families); the full grid has "
            f"{part[['seeds', 'orders', 'families']].drop_duplicates().shape[0] * len(noises)} designs."))  # fmt: skip
        rows = []
        for r in rows_.itertuples():
            rows.append([str(r.test).replace(" (Holm family)", " (Holm)"), str(r.measure), str(getattr(r, "noise", "model")),
                         number(r.estimate, 3), number(getattr(r, "mc_se", np.nan), 3), str(getattr(r, "status", "\u2013"))])  # fmt: skip
        blocks.append(Table(["test", "measure", "noise", "rate", "MC SE", "status"], rows,
                            caption=f"**Calibration by simulation** of {what}.",
                            align=["l", "l", "l", "r", "r", "l"], widths=[2.6, 1.0, 1.1, 0.7, 0.7, 1.6],
                            font_size=6.5))  # fmt: skip
    return blocks


def _data_calibration(inputs: Inputs) -> list[Block]:
    table = inputs.data_calibration
    if table is None or len(table) == 0:
        return [Text("**On these runs.** Not measured yet: `seqrob analyze calibrate --db PATH` relabels the orders "
                     "within each seed (order cannot matter, the runs' own noise kept) and measures each verdict test's "
                     "type-I error here.")]  # fmt: skip
    rows = [[f"{r.task} {r.metric}", str(r.test).replace(" (Holm family)", " (Holm)"), str(r.measure),
             number(r.estimate, 3), number(r.mc_se, 3), str(int(r.n_sim)), str(r.status)]
            for r in table.itertuples()]  # fmt: skip
    return [Text(f"**On these runs** (analysis {int(table['analysis_id'].iloc[0])}): the orders relabelled within each "
                 "seed, so that order cannot matter while the runs' own noise stays; the share of false rejections of each "
                 "verdict test."),
            Table(["task \u00d7 metric", "test", "measure", "rate", "MC SE", "relabellings", "status"], rows,
                  caption="**Calibration on this warehouse's own runs.**", align=["l", "l", "l", "r", "r", "r", "l"],
                  widths=[1.4, 2.4, 0.9, 0.6, 0.6, 0.8, 1.3], font_size=6.5)]  # fmt: skip


# --- 6. reproducibility ----------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def reproducibility(inputs: Inputs) -> list[Block]:
    import hashlib

    from seqrob import __version__

    blocks: list[Block] = [Heading("6. Reproducibility")]
    digest = hashlib.sha256(inputs.fingerprint.encode()).hexdigest()
    rows = [
        ["seqrob", __version__],
        ["Python", f"{platform.python_version()} ({platform.system()} {platform.machine()})"],
        ["warehouse", str(inputs.path)],
        ["content hash (SHA-256 of the data fingerprint)", digest],
        ["data fingerprint (runs / scores / outcomes / languages: count:hash)", inputs.fingerprint],
    ]
    for record in inputs.analyses:
        created = pd.Timestamp(record.created_at).strftime("%Y-%m-%d %H:%M:%S %Z") if record.created_at is not None else "\u2013"
        status = "stored analysis reused" if record.reused else "analysis run for this report"
        rows.append([f"analysis {record.analysis_id if record.analysis_id is not None else '(not stored)'}",
                     f"{status}; created {created} by seqrob {record.seqrob_version or __version__}; data hash matches"])  # fmt: skip
    blocks.append(Table(["what", "value"], rows, caption="**Software and data.**", widths=[2.3, 5]))
    params = [[k, "(all)" if v is None else str(v)] for k, v in inputs.parameters.items()]
    blocks.append(Table(["parameter", "value"], params,
                        caption=("**Analysis parameters** (rerun: seqrob analyze significance with the same options; "
                                 "every resampling RNG is seeded from 'seed')."),
                        widths=[1.5, 5]))
    blocks.append(Table(["package", "version"], [[p, _version(p)] for p in PACKAGES],
                        caption="**Package versions** used to render this report.", widths=[1.5, 5]))  # fmt: skip
    blocks += _provenance(inputs)
    return blocks


def _provenance(inputs: Inputs) -> list[Block]:
    runs = inputs.runs
    if runs.empty:
        return []
    rows = []
    for (experiment, method, order), part in runs.groupby(["experiment", "method", "order"], sort=True):
        finished = part[part["status"] == "finished"]
        sources = ", ".join(sorted(part["source"].dropna().map(lambda s: s.split(":")[0]).unique())) or "\u2013"
        commits = sorted(part["git_commit"].dropna().unique())
        hosts = sorted(part["host"].dropna().unique())
        seconds = (pd.to_datetime(finished["ended_at"]) - pd.to_datetime(finished["started_at"])).dt.total_seconds()
        torch = sorted({_package(p, "torch") for p in part["packages"].dropna()} - {None})
        rows.append([
            experiment, method, order, f"{len(finished)}/{len(part)}", sources,
            ", ".join(c[:12] + ("+dirty" if c.endswith("+dirty") else "") for c in commits) or "\u2013",
            ", ".join(hosts) or "\u2013", ", ".join(torch) or "\u2013",
            f"{seconds.mean():.0f}" if seconds.notna().any() else "\u2013",
            str(part["config_hash"].dropna().nunique()) if part["config_hash"].notna().any() else "\u2013",
        ])  # fmt: skip
    return [Table(
        ["experiment", "method", "order", "finished", "source", "git commit", "host", "torch", "s/run", "configs"], rows,
        caption=("**Per-run provenance**, summarised per order: where the runs came from (seqrob training or an "
                 "ingested file), the code and machine that produced them, mean training time, and distinct resolved "
                 "configs (the full config of every run is stored in the warehouse's runs table)."),
        align=["l", "l", "l", "r", "l", "l", "l", "l", "r", "r"],
        widths=[1.4, 0.8, 0.8, 0.85, 0.75, 1.6, 0.6, 1.0, 0.55, 0.65], font_size=6.8)]


def _package(packages, name: str) -> str | None:
    try:
        value = json.loads(packages) if isinstance(packages, str) else packages
    except (TypeError, ValueError):
        return None
    if isinstance(value, dict):
        return value.get(name)
    return None
