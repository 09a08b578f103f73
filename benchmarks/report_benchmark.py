"""Benchmark: the robustness report from a stored analysis (target < 20 s), and optionally
``seqrob demo`` end to end (target < 5 min on 2 cores).

    python benchmarks/report_benchmark.py            # report only
    python benchmarks/report_benchmark.py --demo     # also the demo (trains 9 tiny runs)

The report is timed in a fresh process, as ``seqrob report`` runs (imports included),
on a simulated warehouse of the size of a real XTREME-style study: 3 orders x 10 seeds
x 30 languages in 12 families with per-example outcomes (200 per language), analysed
once beforehand with the default options (10,000 bootstrap replicates). The load
average is printed beside each number: on a shared machine it explains most variation.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPORT_TARGET_S = 20.0
DEMO_TARGET_S = 300.0

_RENDER = textwrap.dedent(
    """
    import sys, time
    began = time.perf_counter()
    from seqrob.report import build_report
    from seqrob.warehouse import Warehouse
    with Warehouse(sys.argv[1]) as wh:
        report = build_report(wh)
        built = time.perf_counter()
        report.write(sys.argv[2])
    done = time.perf_counter()
    print(f"{int(report.reused)} {built - began:.2f} {done - built:.2f}")
    """
)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_report(folder: Path) -> float:
    from seqrob.analysis import analyze
    from seqrob.warehouse import Warehouse
    from seqrob.warehouse.simulate import DEFAULT_FAMILIES, simulate

    db = folder / "bench.duckdb"
    sim = simulate(seeds=10, families=DEFAULT_FAMILIES, n_examples=200, seed=1,
                   effects={("nli>qa", "Uralic"): 0.06, ("qa>nli", "Dravidian"): -0.05})  # fmt: skip
    with Warehouse(db) as wh:
        wh.ingest_frames(scores=sim.scores, predictions=sim.predictions)
        began = time.perf_counter()
        analyze(wh)
        print(f"analysis (stored; not part of the target): {time.perf_counter() - began:.1f} s")
    cpu = _children_cpu()
    began = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _RENDER, str(db), str(folder / "robustness.pdf")],
                         capture_output=True, text=True, check=True)  # fmt: skip
    wall = time.perf_counter() - began
    cpu = _children_cpu() - cpu
    reused, build, write = out.stdout.split()
    assert reused == "1", "the report did not find the stored analysis"
    from pypdf import PdfReader

    pages = len(PdfReader(str(folder / "robustness.pdf")).pages)
    print(f"report from the stored analysis: {wall:.1f} s wall, {cpu:.1f} s CPU (imports + build {float(build):.1f} s, "
          f"PDF and HTML {float(write):.1f} s; {pages} pages) - target < {REPORT_TARGET_S:.0f} s"
          f" - {'OK' if wall < REPORT_TARGET_S else 'OVER'}; {_load()}")  # fmt: skip
    return wall


def bench_demo(folder: Path) -> float:
    cpu = _children_cpu()
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "seqrob", "demo", "--db", str(folder / "demo.duckdb"),
                    "--out", str(folder / "demo.pdf")], check=True, cwd=folder, capture_output=True)  # fmt: skip
    wall = time.perf_counter() - began
    cpu = _children_cpu() - cpu
    print(f"seqrob demo end to end: {wall:.0f} s wall, {cpu:.0f} s CPU - target < {DEMO_TARGET_S:.0f} s"
          f" - {'OK' if wall < DEMO_TARGET_S else 'OVER'}; {_load()}")  # fmt: skip
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="also time `seqrob demo` end to end (trains 9 tiny runs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bench_report(Path(folder))
        if args.demo:
            bench_demo(Path(folder))


if __name__ == "__main__":
    main()
