"""Training speed on CPU: steps/s of the default model, and the time of the default sweep (issue: training).

Steps/s are measured inside the real training loop (the progress reports of
``seqrob.training.run.train``), per task kind and method, with one torch thread
(what each of two workers gets on 2 cores) and with all cores. The default sweep
is exactly what ``seqrob train`` runs with no arguments (the shipped pretrained
encoder, 3 orders x 2 methods x 5 seeds), into a fresh warehouse; the target is
under 3 minutes on 2 cores, and the time is printed with its ratio to the target,
the CPU seconds of the workers, and the load average (a busy machine makes the
wall time longer, not the CPU time). Then the structure of its results: mean
accuracy per method, family and order (the source language apart).

    python benchmarks/training_benchmark.py              # both
    python benchmarks/training_benchmark.py --no-sweep   # steps/s only
    python benchmarks/training_benchmark.py --no-steps   # the sweep only
    python benchmarks/training_benchmark.py --no-steps --db /tmp/default.duckdb   # and keep its warehouse
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd


TARGET_SECONDS = 180.0


def steps_per_second(steps: int, threads: int, method: str = "finetune") -> dict[str, float]:
    """Steps/s per task of the default config, measured between the first and last report of each stage."""
    import torch
    from seqrob.training.config import load_config, plan, with_overrides
    from seqrob.training.run import train

    torch.set_num_threads(threads)
    config = with_overrides(load_config(), orders=["ner>qa"], seeds=[1], methods=[method], max_steps=steps + 1)
    spec = plan(config)[0]
    seen: dict[str, list[tuple[int, float]]] = {}

    def report(event: dict) -> None:
        if not event.get("evaluating"):
            seen.setdefault(event["task"], []).append((event["step"], time.perf_counter()))

    train(spec, report=report)  # once to build the suite, tokenizer and data (cached per process)
    seen.clear()
    train(spec, report=report)
    out = {}
    for task, marks in seen.items():
        (first_step, first_time), (last_step, last_time) = marks[0], marks[-1]
        out[task] = (last_step - first_step) / (last_time - first_time)
    return out


def default_sweep(workers: int | None, keep: Path | None = None) -> tuple[float, float, pd.DataFrame]:
    """Run the default sweep into a fresh warehouse; return wall seconds, CPU seconds (this process
    and its workers) and the stored scores."""
    import resource
    from seqrob.training.config import load_config
    from seqrob.training.sweep import sweep
    from seqrob.warehouse import Warehouse

    def show(event: dict) -> None:
        if event["event"] == "plan":
            print(f"  {event['todo']} runs on {event['workers']} workers x {event['threads']} threads", flush=True)
        elif event["event"] == "stored":
            print(f"  stored {event['done']}/{event['todo']} ({event['seconds']:.1f} s) {event['run_id']}", flush=True)

    with tempfile.TemporaryDirectory() as folder:
        db = keep if keep is not None else Path(folder) / "bench.duckdb"
        if keep is not None and keep.exists():
            raise SystemExit(f"{keep} exists - the benchmark times a fresh warehouse; remove it or pick another path")
        def cpu() -> float:
            usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
            return sum(u.ru_utime + u.ru_stime for u in usage)

        start, cpu_start = time.perf_counter(), cpu()
        result = sweep(load_config(), db=db, workers=workers, events=show)
        seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu_start
        with Warehouse(db, read_only=True) as wh:
            scores = wh.scores()
    if result.failed:
        print(f"  warning: {result.failed} runs failed")
    return seconds, cpu_seconds, scores


def structure(scores: pd.DataFrame, source: str) -> pd.DataFrame:
    """Mean accuracy per method x family (source language apart) x order, averaged over seeds and languages."""
    frame = scores.assign(group=scores.family.where(scores.language != source, f"source ({source})"))
    table = frame.pivot_table(index=["method", "group"], columns="order", values="score", aggfunc="mean")
    seeds = frame.groupby(["method", "group", "order", "seed"]).score.mean().groupby(["method", "group", "order"]).std()
    sd = seeds.unstack("order").add_suffix(" sd")
    return table.join(sd).sort_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="steps per task for the steps/s measurement")
    parser.add_argument("--workers", type=int, default=None, help="sweep workers (default: one per core)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the default sweep")
    parser.add_argument("--no-steps", action="store_true", help="skip the steps/s measurement")
    parser.add_argument("--db", type=Path, default=None, help="keep the sweep's warehouse here (a new file)")
    args = parser.parse_args()

    import torch
    from seqrob.training.sweep import cores

    print(f"machine: {cores()} cores, {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    if not args.no_steps:
        for threads in sorted({1, cores()}):
            for method in ("finetune", "prompt"):
                rates = steps_per_second(args.steps, threads, method)
                text = ", ".join(f"{task} {rate:.1f}" for task, rate in rates.items())
                print(f"steps/s of the default model (batch 32), {method}, {threads} thread(s): {text}", flush=True)
    if not args.no_sweep:
        print("default sweep (seqrob train with no arguments):", flush=True)
        seconds, cpu_seconds, scores = default_sweep(args.workers, args.db)
        runs = scores.run_id.nunique()
        print(
            f"default sweep: {runs} runs, {scores.language.nunique()} languages, {seconds:.1f} s wall"
            f" = {seconds / TARGET_SECONDS:.2f} x the target of {TARGET_SECONDS:.0f} s on 2 cores"
            f" ({'met' if seconds < TARGET_SECONDS else 'MISSED'}); {cpu_seconds:.1f} CPU s"
            f" (on {cores()} idle cores about {cpu_seconds / cores():.0f} s wall)"
        )
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        from seqrob.training.config import load_config

        table = structure(scores, load_config().source_language)
        with pd.option_context("display.width", 160, "display.precision", 3):
            print("mean accuracy (chance 0.25) by method, family and order; sd = across-seed SD of the family mean:")
            print(table)


if __name__ == "__main__":
    main()
