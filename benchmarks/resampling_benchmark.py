"""Resampling benchmark: prints the DESIGN.md targets and where seqrob stands.

    python benchmarks/resampling_benchmark.py [--n-boot 10000] [--examples 2000]

- Paired hierarchical bootstrap: 10,000 replicates over 3 orders x 10 seeds x 30
  languages x 2,000 examples (1.8M outcomes); target under 10 s on 2 cores. Also its
  peak memory (tracemalloc, which sees numpy's buffers) and the seeds-only case.
- ASO: one pair of 10-seed score lists with 1,000 bootstrap replicates; target under
  50 ms (deepsig 1.2.8 takes about 4 s with its defaults).
- Sign-flip: every order pair x family on the same design (10 seeds: 1,024 sign
  vectors), and one 16-seed comparison (65,536 sign vectors).

Timings depend on what else the machine runs; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
import warnings

import numpy as np

from seqrob.analysis.aso import aso, aso_table
from seqrob.analysis.bootstrap import paired_bootstrap
from seqrob.analysis.outcomes import _read_predictions
from seqrob.analysis.permutation import _sign_flip, sign_flip_test
from seqrob.warehouse.simulate import DEFAULT_FAMILIES, simulate


def _timed(function, *args, repeat: int = 1, **kwargs):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        times.append(time.perf_counter() - started)
    return result, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=10_000)
    parser.add_argument("--examples", type=int, default=2_000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--no-memory", action="store_true", help="skip the second, traced bootstrap run")
    options = parser.parse_args()
    warnings.simplefilter("ignore")

    print(f"cores: {os.cpu_count()}, load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sim, (seconds,) = _timed(
        simulate, seeds=options.seeds, n_examples=options.examples, families=DEFAULT_FAMILIES, seed=0
    )
    n_outcomes = len(sim.predictions)
    print(
        f"design: 3 orders x {options.seeds} seeds x 30 languages x {options.examples} examples "
        f"= {n_outcomes:,} outcomes (simulated in {seconds:.1f} s)"
    )

    # --- bootstrap ---------------------------------------------------------------
    _, (read_seconds,) = _timed(
        _read_predictions, sim.predictions, run="run_id", task="task", language="language", example="example_id"
    )
    table, (boot_seconds,) = _timed(paired_bootstrap, sim.scores, sim.predictions, n_boot=options.n_boot, seed=1)
    verdict = "meets" if boot_seconds < 10 else "MISSES"
    print(
        f"paired hierarchical bootstrap, B={options.n_boot:,} (seeds + examples, percentile and BCa, "
        f"{len(table)} rows): {boot_seconds:.2f} s  [target < 10 s: {verdict}]"
    )
    print(f"  of which reading the predictions into matrices: {read_seconds:.2f} s")
    print(f"  replicates per second: {options.n_boot / boot_seconds:,.0f}")
    if not options.no_memory:
        tracemalloc.start()
        paired_bootstrap(sim.scores, sim.predictions, n_boot=options.n_boot, seed=1)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  peak memory allocated during the call (tracemalloc): {peak / 2**20:.0f} MiB")
    _, (seeds_only,) = _timed(paired_bootstrap, sim.scores, n_boot=options.n_boot, seed=1)
    print(f"seeds-only bootstrap (scores only), B={options.n_boot:,}: {seeds_only:.2f} s")

    # --- ASO ---------------------------------------------------------------------
    rng = np.random.default_rng(0)
    a, b = 0.72 + rng.normal(0, 0.01, 10), 0.715 + rng.normal(0, 0.01, 10)
    aso(a, b, seed=0)  # warm up
    _, times = _timed(aso, a, b, seed=0, repeat=20)
    median = statistics.median(times) * 1000
    verdict = "meets" if median < 50 else "MISSES"
    print(f"ASO, two 10-seed lists, B=1,000: median {median:.1f} ms over 20 calls  [target < 50 ms: {verdict}]")
    table, (seconds,) = _timed(aso_table, sim.scores, seed=0)
    print(
        f"ASO table, 6 ordered pairs x {table['family'].nunique(dropna=False)} family columns "
        f"({len(table)} comparisons): {seconds:.2f} s"
    )

    # --- sign-flip ---------------------------------------------------------------
    flips, (seconds,) = _timed(sign_flip_test, sim.scores)
    print(
        f"sign-flip test, {len(flips)} pair x family rows at {options.seeds} seeds "
        f"({2**options.seeds:,} sign vectors each): {seconds * 1000:.0f} ms"
    )
    d = rng.normal(0.01, 0.02, (16, 16))
    _sign_flip(d, "two-sided", 0.95, 1, None)  # builds the cached subset matrix
    _, times = _timed(_sign_flip, d, "two-sided", 0.95, 1, None, repeat=5)
    print(f"sign-flip core, 16 seeds (65,536 sign vectors) x 16 columns: {statistics.median(times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
