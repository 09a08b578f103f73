"""The report's words: numbers rounded for reading, and the findings in plain sentences.

Nothing here computes a statistic: every number comes from the analysis's result rows
(seqrob's one vocabulary of columns) and is only rounded and put into words. Differences
of accuracy-like metrics are in points (x 100); other metrics in their own units.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "Scale",
    "scale_of",
    "number",
    "p_text",
    "interval",
    "join",
    "split_term",
    "Findings",
    "findings",
    "design_line",
    "CORRECTION_NAMES",
    "REFERENCES",
]

CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
SUMMARY_ITEMS = 6  # findings listed per heading on the one-page summary; the rest are counted

REFERENCES = {
    "bates2015": "Bates, D., M\u00e4chler, M., Bolker, B. & Walker, S. (2015). Fitting linear mixed-effects models using "
    "lme4. *Journal of Statistical Software* 67(1).",
    "kuznetsova2017": "Kuznetsova, A., Brockhoff, P. B. & Christensen, R. H. B. (2017). lmerTest package: tests in linear "
    "mixed effects models. *Journal of Statistical Software* 82(13).",
    "sellam2021": "Sellam, T., Yadlowsky, S., Wei, J., Saphra, N., D'Amour, A., Linzen, T., Bastings, J., Turc, I., "
    "Eisenstein, J., Das, D., Tenney, I. & Pavlick, E. (2022). The MultiBERTs: BERT reproductions for robustness "
    "analysis. *ICLR 2022* (arXiv:2106.16163, 2021).",
    "efron1987": "Efron, B. (1987). Better bootstrap confidence intervals. *Journal of the American Statistical "
    "Association* 82(397), 171-185.",
    "dror2019": "Dror, R., Shlomov, S. & Reichart, R. (2019). Deep dominance - how to properly compare deep neural "
    "models. *ACL 2019*, 2773-2785.",
    "ulmer2022": "Ulmer, D., Hardmeier, C. & Frellsen, J. (2022). deep-significance: easy and meaningful statistical "
    "significance testing in the age of neural networks. arXiv:2204.06815.",
    "holm1979": "Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scandinavian Journal of "
    "Statistics* 6(2), 65-70.",
    "bh1995": "Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. *Journal of the Royal "
    "Statistical Society B* 57(1), 289-300.",
    "pitman1939": "Pitman, E. J. G. (1939). A note on normal correlation. *Biometrika* 31(1/2), 9-12.",
    "morgan1939": "Morgan, W. A. (1939). A test for the significance of the difference between the two variances in a "
    "sample from a normal bivariate population. *Biometrika* 31(1/2), 13-19.",
    "brown1974": "Brown, M. B. & Forsythe, A. B. (1974). Robust tests for the equality of variances. *Journal of the "
    "American Statistical Association* 69(346), 364-367.",
    "levene1960": "Levene, H. (1960). Robust tests for equality of variances. In *Contributions to Probability and "
    "Statistics*, Stanford University Press, 278-292.",
    "dodge2020": "Dodge, J., Ilharco, G., Schwartz, R., Farhadi, A., Hajishirzi, H. & Smith, N. (2020). Fine-tuning "
    "pretrained language models: weight initializations, data orders, and early stopping. arXiv:2002.06305.",
    "phang2020": "Phang, J., Calixto, I., Htut, P. M., Pruksachatkun, Y., Liu, H., Vania, C., Kann, K. & Bowman, S. R. "
    "(2020). English intermediate-task training improves zero-shot cross-lingual transfer too. *AACL 2020*.",
    "okabe2008": "Okabe, M. & Ito, K. (2008). Color universal design (CUD): how to make figures and presentations that "
    "are friendly to colorblind people. J*FLY.",
}


# --- numbers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """How a metric is shown: accuracy-like metrics in points (x 100), others as they are."""

    factor: float
    unit: str  # "points" or the metric's name
    digits: int

    def value(self, x: float, *, signed: bool = False) -> str:
        return number(x * self.factor, self.digits, signed=signed)


def scale_of(metric: str) -> Scale:
    from seqrob.warehouse.ingest import is_bounded_metric

    return Scale(100.0, "points", 1) if is_bounded_metric(metric) else Scale(1.0, metric, 3)


def number(x: float | None, digits: int = 2, *, signed: bool = False) -> str:
    """A rounded number for reading; infinite bounds say so; missing values are a dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x):
        return "\u2013"
    if np.isinf(x):
        return "unbounded" if not signed else ("+\u221e" if x > 0 else "\u2212\u221e")
    text = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    if text.lstrip("+-") == f"{0:.{digits}f}":
        text = text.replace("-", "").replace("+", "\u00b1" if signed else "")
    return text.replace("-", "\u2212")


def p_text(p: float | None, *, equals: bool = False) -> str:
    """p-values for reading: two significant digits, ``< 0.001`` below that."""
    if p is None or pd.isna(p):
        return "\u2013"
    if p < 0.001:
        return "< 0.001" if equals else "<0.001"
    if p >= 0.995:
        text = "1"
    elif p >= 0.1:
        text = f"{p:.2f}"
    else:
        text = f"{p:.2g}"
    return f"= {text}" if equals else text


def interval(low: float, high: float, scale: Scale, *, signed: bool = True) -> str:
    return f"[{scale.value(low, signed=signed)}, {scale.value(high, signed=signed)}]"


def join(items: Iterable[str]) -> str:
    items = list(items)
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def split_term(term: str) -> tuple[str, str]:
    """``"nli>qa vs none"`` -> ``("nli>qa", "none")``."""
    first, _, second = term.partition(" vs ")
    return first, second


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# --- the design in one line -----------------------------------------------------------------


def _range(values: Sequence[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}\u2013{high}"


def design_line(groups) -> str:
    """Orders, seeds, languages, families, tasks and methods in one sentence."""
    scores = pd.concat([g.scores for g in groups], ignore_index=True)
    orders = groups[0].orders
    seeds = scores.groupby(["method", "task", "order"])["seed"].nunique().tolist()
    tasks = sorted({f"{g.task} ({g.metric})" for g in groups})
    methods = sorted(scores["method"].unique())
    runs = scores["run_id"].nunique()
    return (
        f"{plural(len(orders), 'order')} ({', '.join(orders)}) \u00d7 {_range(seeds)} seed{'s' if max(seeds) > 1 else ''} "
        f"per order \u00d7 {plural(scores['language'].nunique(), 'language')} in "
        f"{plural(scores['family'].nunique(), 'family').replace('familys', 'families')}; "
        f"{'task' if len(tasks) == 1 else 'tasks'} {', '.join(tasks)}; "
        f"{'method' if len(methods) == 1 else 'methods'} {', '.join(methods)}; {plural(runs, 'finished run')}."
    )


# --- findings --------------------------------------------------------------------------------


@dataclass
class Findings:
    """The summary's four headings, each a list of sentences (``**``-bold markup)."""

    accuracy: list[str] = field(default_factory=list)
    variance: list[str] = field(default_factory=list)
    no_evidence: list[str] = field(default_factory=list)
    cannot_tell: list[str] = field(default_factory=list)

    def extend(self, other: Findings) -> None:
        for name in ("accuracy", "variance", "no_evidence", "cannot_tell"):
            getattr(self, name).extend(getattr(other, name))


def primary_variance(results: pd.DataFrame) -> pd.DataFrame:
    """The variance rows the summary reads: the permutation tests of spread (valid with outlier runs and skew)."""
    return results[results["test"] == "variance"]


def findings(group, *, alpha: float, correction: str, effect: float, prefix: bool) -> Findings:
    """What the analysis of one method x task x metric supports, in plain words with numbers."""
    out = Findings()
    scale = scale_of(group.metric)
    lead = f"*{group.label}*: " if prefix else ""
    name = CORRECTION_NAMES.get(correction, correction)
    results = group.results
    contrasts = results[(results["test"] == "contrast") & results["family"].notna()]
    seeds = group.min_seeds
    if contrasts.empty:
        if seeds < 3:
            out.cannot_tell.append(
                f"{lead}With {plural(seeds, 'seed')} per order, order cannot be told from seed noise: no test was run "
                "and only mean scores are reported. At least 3 seeds per order are needed to test, 5 or more to "
                "estimate across-seed variance usefully."
            )
            largest = _largest_difference(group)
            if largest is not None:
                family, first, second, value = largest
                out.cannot_tell.append(
                    f"{lead}The largest difference in family means, untested and possibly seed noise: in **{family}**, "
                    f"*{first}* minus *{second}* = {scale.value(value, signed=True)} {scale.unit}."
                )
        elif len(group.orders) < 2:
            out.cannot_tell.append(f"{lead}One order only ({group.orders[0]}): there is nothing to compare.")
        else:
            out.cannot_tell.append(f"{lead}No contrast could be tested; see the warnings in Section 2.")
        return out

    significant = contrasts[contrasts["p_adjusted"] < alpha].sort_values("p_adjusted")
    for row in significant.itertuples():
        first, second = split_term(row.term)
        direction = "higher" if row.estimate > 0 else "lower"
        out.accuracy.append(
            f"{lead}In **{row.family}**, *{first}* scores {scale.value(abs(row.estimate))} {scale.unit} {direction} than "
            f"*{second}* (95% CI {interval(row.ci_low, row.ci_high, scale)}; {name}-adjusted p {p_text(row.p_adjusted, equals=True)})."
        )
    tests = {r.test: r for r in results[results["test"].isin(["order_anova", "order_family_anova"])].itertuples()}
    if "order_family_anova" in tests and np.isfinite(tests["order_family_anova"].p_adjusted):
        row = tests["order_family_anova"]
        where = out.accuracy if row.p_adjusted < alpha else out.no_evidence
        verb = "differs" if row.p_adjusted < alpha else "does not detectably differ"
        where.append(f"{lead}Across families, the effect of order {verb} between families "
                     f"(order \u00d7 family test: adjusted p {p_text(row.p_adjusted, equals=True)}).")  # fmt: skip

    quiet = [f for f in group.families if f not in set(significant["family"])]
    quiet = [f for f in quiet if f in set(contrasts["family"])]
    if quiet:
        rows = contrasts[contrasts["family"].isin(quiet)]
        bound = np.nanmax(np.abs(rows[["ci_low", "ci_high"]].to_numpy(dtype=float)))
        none_at_all = significant.empty
        where = "any family" if none_at_all else join(f"**{f}**" for f in quiet)
        sentence = (f"{lead}No evidence that order changes {group.metric} in {where} "
                    f"(all {name}-adjusted p \u2265 {alpha:g}")  # fmt: skip
        if np.isfinite(bound):
            sentence += f"; every 95% CI there lies within \u00b1{scale.value(bound)} {scale.unit})."
        else:
            sentence += ")."
        out.no_evidence.append(sentence)

    variance_rows = primary_variance(results)
    spread = variance_rows[variance_rows["p_adjusted"] < alpha]
    pairwise = spread[spread["term"].str.contains(" vs ", regex=False)]
    for row in spread.sort_values("family", na_position="first").itertuples():
        family = row.family if isinstance(row.family, str) else None
        where = f"in **{family}**" if family else "across all languages"
        if row.term == "order":
            same = pairwise["family"].isna() if family is None else pairwise["family"] == family
            if same.any():  # the pairwise ratios below say more than the omnibus test
                continue
            out.variance.append(f"{lead}Across-seed spread differs between orders {where} (permutation test of spread, adjusted "
                                f"p {p_text(row.p_adjusted, equals=True)}; largest/smallest SD = {number(row.estimate, 2)}).")  # fmt: skip
        else:
            first, second = split_term(row.term)
            out.variance.append(
                f"{lead}{where[0].upper() + where[1:]}, the across-seed SD under *{first}* is {number(row.estimate, 2)} "
                f"times that under *{second}* (95% CI {number(row.ci_low, 2)} to {number(row.ci_high, 2)}; "
                f"permutation test of spread, adjusted p {p_text(row.p_adjusted, equals=True)})."
            )
    if spread.empty and len(variance_rows):
        out.no_evidence.append(f"{lead}No evidence that order changes across-seed variance "
                               f"({plural(len(variance_rows), 'test')}, all {name}-adjusted p \u2265 {alpha:g}).")  # fmt: skip

    power = group.power
    if len(power) and "seeds_needed" in power.columns:
        need = power[power["family"].isin(quiet) & power["seeds_needed"].notna()]
        short = need[need["seeds_needed"] > seeds]
        enough = need[need["seeds_needed"] <= seeds]
        if len(short):
            by_count: dict[int, list[str]] = {}
            for r in short.sort_values("seeds_needed").itertuples():
                by_count.setdefault(int(r.seeds_needed), []).append(r.family)
            detail = "; ".join(f"{n} in {join(fs)}" for n, fs in by_count.items())
            out.cannot_tell.append(
                f"{lead}Too few seeds to rule out small effects: detecting a {scale.value(effect)}-{scale.unit.rstrip('s')} "
                f"order difference with 80% power would need these seeds per order (the design has {seeds}): {detail}."
            )
        if len(enough):
            out.no_evidence.append(
                f"{lead}With {seeds} seeds the design had 80% power for a {scale.value(effect)}-{scale.unit.rstrip('s')} "
                f"difference in {join(enough['family'])}: an effect that large there would probably have been seen."
            )
    single = [f for f, n in group.design.get("languages_per_family", {}).items() if n == 1]
    if single:
        out.cannot_tell.append(f"{lead}{join(single)} {'has' if len(single) == 1 else 'have'} one language each: "
                               "an effect there cannot be told from that language's own.")  # fmt: skip
    if seeds <= 5:
        signflip = results[results["test"] == "signflip_contrast"]
        floor = ""
        if len(signflip):
            floor = f" (the smallest p an exact sign-flip test over {seeds} seeds can reach is {number(2 / 2 ** seeds, 3)})"
        out.cannot_tell.append(f"{lead}{seeds} seeds per order is few: seed-level intervals are wide{floor}, and "
                               "variance tests and ASO have little power.")  # fmt: skip
    return out


def _largest_difference(group) -> tuple[str, str, str, float] | None:
    """The family and order pair with the largest absolute difference of mean scores (descriptive)."""
    means = group.scores.groupby(["family", "order"])["score"].mean().unstack("order")
    baseline = group.baseline if group.baseline in means.columns else None
    best = None
    for family, row in means.iterrows():
        for first in means.columns:
            for second in ([baseline] if baseline else means.columns):
                if first == second or pd.isna(row[first]) or pd.isna(row[second]):
                    continue
                value = row[first] - row[second]
                if best is None or abs(value) > abs(best[3]):
                    best = (family, first, second, float(value))
    return best


def term_text(term: str) -> str:
    """A model term for reading: ``ordernli>qa:familyUralic`` -> ``order nli>qa \u00d7 family Uralic``."""
    parts = []
    for piece in term.split(":"):
        match = re.match(r"^(order|family)(.+)$", piece)
        parts.append(f"{match.group(1)} {match.group(2)}" if match else piece)
    return " \u00d7 ".join(parts)
