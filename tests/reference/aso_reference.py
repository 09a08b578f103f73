"""Reference values for seqrob.analysis.aso, computed with deepsig (Ulmer et al. 2022).

Run once, by hand, where deepsig is installed (``pip install deepsig==1.2.8``)::

    python tests/reference/aso_reference.py

It writes ``aso_reference.json`` beside this file. The tests read that file and never
import deepsig. For each case it stores the score lists, deepsig's violation ratio
(deterministic) and deepsig's ``aso()`` eps_min for several deepsig seeds (the spread
across seeds is deepsig's own Monte Carlo error, which the tests' tolerance uses).
"""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from deepsig.aso import aso, compute_violation_ratio

# deepsig's seed argument: iteration i of a call with seed s uses np.random.seed(s + i),
# i = 1..1000, so the seeds are spaced 10,000 apart to give independent bootstraps.
SEEDS = (10_000, 20_000, 30_000)
DT = 0.005


def _lists() -> dict[str, tuple[list[float], list[float]]]:
    rng = np.random.default_rng(20240611)
    r = lambda x: [round(float(v), 4) for v in x]  # noqa: E731
    return {
        # A clearly better: eps_min near 0.
        "separated": (r(rng.normal(0.74, 0.01, 10)), r(rng.normal(0.71, 0.01, 10))),
        # Same distribution: eps around 0.5, eps_min well above it.
        "same": (r(rng.normal(0.72, 0.01, 10)), r(rng.normal(0.72, 0.01, 10))),
        # Overlapping, A somewhat better.
        "overlap": (r(rng.normal(0.725, 0.01, 10)), r(rng.normal(0.72, 0.01, 10))),
        # Unequal lengths (5 vs 8 seeds).
        "unequal": (r(rng.normal(0.73, 0.015, 5)), r(rng.normal(0.72, 0.01, 8))),
        # Accuracies on a coarse grid, with ties within and between the lists.
        "ties": ([0.70, 0.71, 0.71, 0.72, 0.72, 0.72, 0.73, 0.74, 0.70, 0.71],
                 [0.70, 0.70, 0.71, 0.71, 0.72, 0.69, 0.70, 0.71, 0.72, 0.70]),
    }  # fmt: skip


def main() -> None:
    cases = []
    settings = [
        ("separated", {}),
        ("same", {}),
        ("overlap", {}),
        ("unequal", {}),
        ("ties", {}),
        ("overlap", {"confidence_level": 0.99}),
        ("overlap", {"num_comparisons": 2}),
        # Bonferroni for 3 comparisons is confidence 1 - 0.05 / 3: deepsig's num_comparisons=3
        # gives 0.95 + 0.05 / 3 instead, so pass the corrected level directly.
        ("overlap", {"confidence_level": 1 - 0.05 / 3}),
        ("overlap", {"num_comparisons": 3}),
    ]
    lists = _lists()
    for name, kwargs in settings:
        a, b = lists[name]
        started = time.perf_counter()
        eps = [float(aso(a, b, dt=DT, seed=s, show_progress=False, **kwargs)) for s in SEEDS]
        seconds = (time.perf_counter() - started) / len(SEEDS)
        cases.append(
            {
                "name": name,
                "scores_a": a,
                "scores_b": b,
                "deepsig_kwargs": kwargs,
                "violation_ratio": float(compute_violation_ratio(a, b, dt=DT)),
                "eps_min": eps,
                "seeds": list(SEEDS),
                "seconds_per_call": round(seconds, 3),
            }
        )
        print(name, kwargs, np.round(eps, 4), f"{seconds:.2f} s/call")
    out = {
        "source": "deepsig.aso.aso and deepsig.aso.compute_violation_ratio",
        "deepsig_version": metadata.version("deepsig"),
        "numpy_version": np.__version__,
        "python": platform.python_version(),
        "defaults": {"num_bootstrap_iterations": 1000, "dt": DT, "confidence_level": 0.95},
        "cases": cases,
    }
    path = Path(__file__).with_name("aso_reference.json")
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print("wrote", path)


if __name__ == "__main__":
    main()
