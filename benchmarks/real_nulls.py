"""False verdicts on real runs where order cannot matter, and a real effect to find.

Published per-seed results of ONE training configuration (seqrob.warehouse.datasets:
10 BERT-base seeds x 12 NLI evaluation sets; 50 BERT-large seeds x 4 GLUE tasks; and 24
seeds of seqrob's own synthetic default, one order) are relabelled at random into
pseudo-orders, paired (runs drawn into blocks, one pseudo-seed per block, orders shuffled
within it) or unpaired (each run an order at random, as in "3 pseudo-orders of 33 seeds
each"), many times. Order cannot matter, so every verdict is false. For each Holm family
the verdicts read (contrasts; order and order x family; variance) this prints the share of
relabellings with any adjusted p < 0.05 (the family-wise false-verdict rate, target <=
0.05) and the per-row type-I error of each test, beside the mixed model's F tests (for
reference: they assume one run variance for all families).

The method questions get the same real null: runs drawn into blocks of 2 pseudo-methods x
2 pseudo-orders (one pseudo-seed per block), so neither method nor order x method can
matter; the share of relabellings with any adjusted p < 0.05 per method Holm family.

Then the real effect: BERTAdam without bias correction (``not_debiased``) against AdamW
(``standard_debiased``), paired by seed: the first fails on some seeds.

    python benchmarks/real_nulls.py                 # 200 relabellings per set and design
    python benchmarks/real_nulls.py --n 50 --no-mixed
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from seqrob.analysis.calibrate import _method_rows, _null_measures, _rows, pseudo_orders
from seqrob.warehouse.datasets import load_real

DESIGNS = (("paired", 2), ("paired", 3), ("unpaired", 3))
SETS = {
    "instability_nli": lambda: load_real("instability_nli"),
    "revisit_glue": lambda: load_real("revisit_glue", variant="standard_debiased"),
    "seqrob_one_order": lambda: load_real("seqrob_one_order"),
}
FAMILY_WISE = ("contrast (Holm family)", "order_anova + order_family_anova (Holm family)",
               "variance (permutation) (Holm family)")  # fmt: skip


def null_rates(scores: pd.DataFrame, *, design: str, orders: int, n: int, mixed: bool, seed: int = 0) -> dict:
    """Per (test, measure): the mean over ``n`` relabellings, and ``any verdict``."""
    include = ("verdicts", "variance", "mixed") if mixed else ("verdicts", "variance")
    results = []
    for i in range(n):
        relabelled = pseudo_orders(scores, orders, paired=design == "paired", rng=np.random.default_rng([seed, i]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = _rows(relabelled, alpha=0.05, n_boot=100, aso_boot=100, seed=i, include=include, baseline="o1")
        measures = _null_measures(rows, 0.05)
        measures[("any verdict", "family_wise")] = float(any(measures.get((f, "family_wise"), 0.0) for f in FAMILY_WISE))
        for test in ("lrt_order", "lrt_order_family"):  # the mixed model's F tests, unadjusted
            if (test, "type_I") in measures:
                measures[(f"{test} (mixed, reference)", "rejects")] = measures.pop((test, "type_I"))
        results.append(measures)
    keys = sorted({k for r in results for k in r})
    return {k: (float(np.mean([r[k] for r in results if k in r])), sum(k in r for r in results)) for k in keys}


METHOD_FAMILIES = ("method_contrast (Holm family)", "order_method_contrast (Holm family)",
                   "method_variance (permutation) (Holm family)")  # fmt: skip


def pseudo_methods(scores: pd.DataFrame, orders: int, rng: np.random.Generator) -> pd.DataFrame:
    """Runs of ONE configuration as 2 pseudo-methods x ``orders`` pseudo-orders per pseudo-seed."""
    relabelled = pseudo_orders(scores, 2 * orders, paired=True, rng=rng)
    index = relabelled["order"].str[1:].astype(int) - 1
    return relabelled.assign(method=np.where(index < orders, "finetune", "prompt"),
                             order=(index % orders + 1).map(lambda i: f"o{i}"))  # fmt: skip


def method_null_rates(scores: pd.DataFrame, *, orders: int, n: int, seed: int = 0) -> dict:
    """Per (test, measure) of the method questions: the mean over ``n`` relabellings, and ``any verdict``."""
    results = []
    for i in range(n):
        relabelled = pseudo_methods(scores, orders, np.random.default_rng([seed, 2, i]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = _method_rows(relabelled, alpha=0.05, seed=i)
        measures = _null_measures(rows, 0.05)
        measures[("any method verdict", "family_wise")] = float(any(measures.get((f, "family_wise"), 0.0)
                                                                    for f in METHOD_FAMILIES))  # fmt: skip
        results.append(measures)
    keys = sorted({k for r in results for k in r})
    return {k: (float(np.mean([r[k] for r in results if k in r])), sum(k in r for r in results)) for k in keys}


def real_effect() -> pd.DataFrame:
    """The verdict rows of not_debiased vs standard_debiased (paired by seed), per family."""
    from seqrob.analysis.design import order_list
    from seqrob.analysis.multiplicity import adjust
    from seqrob.analysis.procedures import run_tests

    data = load_real("revisit_glue")
    data = data[data["order"].isin(["not_debiased", "standard_debiased"])]
    data = data[data["run_id"].isin(data.groupby("run_id")["language"].nunique().loc[lambda s: s == 4].index)]
    orders = order_list(data, "standard_debiased")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frames = run_tests(data, None, orders=orders, alpha=0.05, n_boot=1000, seed=0,
                           min_seeds=int(data.groupby("order")["seed"].nunique().min()),
                           include=("verdicts", "variance"), variance_boot=False).frames  # fmt: skip
    rows = adjust(pd.concat(frames, ignore_index=True), correction="holm")
    keep = rows["test"].isin(["contrast", "variance", "order_anova", "order_family_anova"]) & rows["p_value"].notna()
    return rows.loc[keep, ["test", "term", "family", "estimate", "ci_low", "ci_high", "p_value", "p_adjusted", "n"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="relabellings per set and design")
    parser.add_argument("--no-mixed", action="store_true", help="skip the mixed model's reference F tests")
    parser.add_argument("--methods-only", action="store_true", help="only the method questions' real nulls")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    lines = ["| set | design | test | measure | rate | n |", "| --- | --- | --- | --- | ---: | ---: |"]
    worst = 0.0
    for name, load in SETS.items():
        scores = load()
        for design, orders in () if args.methods_only else DESIGNS:
            t0 = time.perf_counter()
            rates = null_rates(scores, design=design, orders=orders, n=args.n, mixed=not args.no_mixed)
            for (test, measure), (rate, count) in rates.items():
                lines.append(f"| {name} | {design}, {orders} orders | {test} | {measure} | {rate:.3f} | {count} |")
                if measure == "family_wise" and test != "any verdict":
                    worst = max(worst, rate)
            print(f"{name}, {design}, {orders} orders: {time.perf_counter() - t0:.0f} s", flush=True)
        if scores["seed"].nunique() >= 12:  # 3+ pseudo-seeds of 2 methods x 2 orders
            t0 = time.perf_counter()
            for (test, measure), (rate, count) in method_null_rates(scores, orders=2, n=args.n).items():
                lines.append(f"| {name} | 2 methods x 2 orders | {test} | {measure} | {rate:.3f} | {count} |")
                if measure == "family_wise" and test != "any method verdict":
                    worst = max(worst, rate)
            print(f"{name}, 2 methods x 2 orders: {time.perf_counter() - t0:.0f} s", flush=True)
    print("\n".join(lines))
    print(f"\nlargest family-wise false-verdict rate of a verdict Holm family: {worst:.3f} (target <= 0.05; "
          f"MC SE at n = {args.n}: {np.sqrt(0.05 * 0.95 / args.n):.3f})")  # fmt: skip
    print("\nReal effect: not_debiased vs standard_debiased (paired by seed), the verdict rows:")
    print(real_effect().to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
