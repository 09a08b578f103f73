"""The calibration table: type-I error and 95% CI coverage of every test, over the grid.

Runs :func:`seqrob.analysis.calibrate.calibrate` on 3, 5, 10 and 20 seeds x 2 and 4
orders x few (10 languages, 3 families) and many (30 languages, 12 families) language
sets x five noise structures (the mixed model's own, and four it does not assume: run x
family luck with family SDs 4x apart, outlier runs with heavy tails, a ceiling on the
logit scale, unequal seeds), and prints the table in Markdown (for the
README) with the run time. Targets: type-I error in [0.04, 0.06], coverage in
[0.93, 0.97].

    python benchmarks/calibration.py                      # n_sim 200 per design and kind
    python benchmarks/calibration.py --n-sim 400 --workers 2 --csv calibration.csv
    python benchmarks/calibration.py --seeds 3,5 --procedures mixed --noises model
    python benchmarks/calibration.py --n-sim 100 --workers 2 --procedures verdicts,variance --csv verdicts.csv

The same as ``seqrob analyze calibrate``; this script adds the Markdown and a summary
of what misses its target.
"""

from __future__ import annotations

import argparse
import sys
import time

from seqrob.analysis.calibrate import calibrate, markdown, summary_markdown


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sim", type=int, default=200, help="data sets per design and kind (null, planted)")
    parser.add_argument("--seeds", default="3,5,10,20")
    parser.add_argument("--orders", default="2,4")
    parser.add_argument("--families", default="few,many")
    parser.add_argument("--noises", default="model,run_x_family,outliers,ceiling,unbalanced")
    parser.add_argument("--procedures", default=None, help="comma-separated subset of verdicts,mixed,bootstrap,few_seeds,variance,aso,methods")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--fast", action="store_true", help="fewer bootstrap replicates")
    parser.add_argument("--csv", default=None, help="also write the table as CSV")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    table = calibrate(
        seeds=_ints(args.seeds), orders=_ints(args.orders), families=tuple(args.families.split(",")),
        noises=tuple(args.noises.split(",")), n_sim=args.n_sim, seed=args.seed, fast=args.fast, workers=args.workers,
        procedures=None if args.procedures is None else tuple(args.procedures.split(",")),
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if args.csv:
        table.to_csv(args.csv, index=False)
    print(markdown(table))
    print()
    print(summary_markdown(table))
    print()
    print(f"{len(table)} rows, n_sim = {args.n_sim} per design and kind, {seconds:.0f} s on {args.workers} process(es)")
    missed = table[table["status"].str.startswith("missed")]
    print(f"missed: {len(missed)}" + "".join(
        f"\n- {r.test} {r.measure} = {r.estimate:.3f} {r.status} (MC SE {r.mc_se:.3f}) at {r.seeds} seeds, {r.orders} orders, "
        f"{r.families} families, {r.noise} noise" for r in missed.itertuples()))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
