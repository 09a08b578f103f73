"""Benchmark: how fast the ``seqrob`` command answers (targets: ``--help`` < 0.3 s,
``warehouse info`` on a small warehouse < 1 s).

    python benchmarks/startup.py          # 10 runs of each
    python benchmarks/startup.py --n 30

Each command runs in a fresh process through the installed ``seqrob`` script, as a
user types it, so interpreter start-up and every import count. The small warehouse is
built first with ``seqrob simulate --db`` (its defaults: 3 orders x 6 seeds x 30
languages, 200 examples each) in a temporary folder. One untimed run of each command
comes first (it writes the bytecode caches). The median wall time is the number; the
load average beside it explains most variation on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HELP_TARGET_S = 0.3
INFO_TARGET_S = 1.0


def _seqrob() -> list[str]:
    """The installed script beside this interpreter (else on PATH, else ``python -m seqrob``)."""
    beside = Path(sys.executable).with_name("seqrob")
    found = str(beside) if beside.exists() else shutil.which("seqrob")
    return [found] if found else [sys.executable, "-m", "seqrob"]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def _times(command: list[str], n: int) -> list[float]:
    subprocess.run(command, check=True, capture_output=True)  # untimed: bytecode caches
    walls = []
    for _ in range(n):
        began = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - began)
    return walls


def _report(name: str, walls: list[float], target: float) -> float:
    median = statistics.median(walls)
    print(f"{name}: median {median:.3f} s (min {min(walls):.3f}, max {max(walls):.3f}, {len(walls)} runs)"
          f" - target < {target:g} s, {median / target:.2f} of it - {'OK' if median < target else 'OVER'}")  # fmt: skip
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="timed runs of each command (default 10)")
    args = parser.parse_args()
    seqrob = _seqrob()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "small.duckdb"
        subprocess.run([*seqrob, "simulate", "--db", str(db)], check=True, capture_output=True)
        _report("seqrob --help", _times([*seqrob, "--help"], args.n), HELP_TARGET_S)
        _report("seqrob warehouse info", _times([*seqrob, "warehouse", "info", "--db", str(db)], args.n), INFO_TARGET_S)
    print(_load())


if __name__ == "__main__":
    main()
