"""The report's words: numbers rounded for reading (the findings' sentences are in
:mod:`seqrob.report.findings`).

Nothing here computes a statistic: every number comes from the analysis's result rows
(seqrob's one vocabulary of columns) and is only rounded and put into words. Differences
of accuracy-like metrics are in points (x 100); other metrics in their own units.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqrob.analysis.multiplicity import CORRECTION_NAMES

__all__ = [
    "CORRECTION_NAMES",
    "REFERENCES",
    "Scale",
    "design_line",
    "interval",
    "intervals_of",
    "join",
    "number",
    "p_text",
    "percent",
    "plural",
    "scale_of",
    "split_term",
]


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
    "greenhouse1959": "Greenhouse, S. W. & Geisser, S. (1959). On methods in the analysis of profile data. "
    "*Psychometrika* 24(2), 95-112.",
    "brunner1997": "Brunner, E., Dette, H. & Munk, A. (1997). Box-type approximations in nonparametric factorial "
    "designs. *Journal of the American Statistical Association* 92(440), 1494-1502.",
    "hesterberg2015": "Hesterberg, T. C. (2015). What teachers should know about the bootstrap: resampling in the "
    "undergraduate statistics curriculum. *The American Statistician* 69(4), 371-386.",
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


def percent(level: float) -> str:
    """An interval's level for reading: ``0.95`` -> ``"95%"``, ``0.99514`` -> ``"99.51%"``."""
    return f"{level * 100:.4g}%"


def intervals_of(rows: pd.DataFrame) -> str:
    """What produced the rows' intervals, read from their ``interval`` and ``confidence``
    columns: ``"95% CI from paired t over seeds"``, each level and kind once; ``""`` when
    no row has an interval."""
    shown = rows[rows["interval"].notna() & rows["confidence"].notna()]
    kinds: dict[float, list[str]] = {}
    for level, kind in dict.fromkeys(zip(shown["confidence"], shown["interval"])):
        kinds.setdefault(float(level), []).append(str(kind))
    return "; ".join(f"{percent(level)} CI from {join(names)}" for level, names in kinds.items())


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


def design_limits(groups) -> list[str]:
    """What the design itself cannot tell (one language, one family, no 'none' baseline), as sentences.

    Verdicts that a design cannot support (one order, one seed) are findings and say so
    themselves; these are the questions the findings never ask of such a design."""
    scores = pd.concat([g.scores for g in groups], ignore_index=True)
    languages, families = sorted(scores["language"].unique()), sorted(scores["family"].dropna().unique())
    limits = []
    if len(languages) == 1:
        limits.append(f"Cannot tell whether order acts differently in other languages: one language only ({languages[0]}).")
    elif len(families) == 1:
        limits.append(f"Cannot tell whether order acts differently in different families: all "
                      f"{len(languages)} languages are in one family ({families[0]}).")  # fmt: skip
    orders = groups[0].orders
    baseline = groups[0].baseline
    if len(orders) >= 2 and baseline not in orders:
        limits.append(f"No '{baseline or 'none'}' baseline was run: orders are compared with each other "
                      f"({orders[0]} stands in as the reference), not with fine-tuning on the target task alone.")  # fmt: skip
    return limits


def term_text(term: str) -> str:
    """A model term for reading: ``ordernli>qa:familyUralic`` -> ``order nli>qa \u00d7 family Uralic``."""
    parts = []
    for piece in term.split(":"):
        match = re.match(r"^(order|family)(.+)$", piece)
        parts.append(f"{match.group(1)} {match.group(2)}" if match else piece)
    return " \u00d7 ".join(parts)
