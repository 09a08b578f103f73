"""``seqrob train``: a sweep of sequenced intermediate-task training into the warehouse
(a thin wrapper of :func:`seqrob.training.config.load_config`,
:func:`~seqrob.training.config.with_overrides` and :func:`seqrob.training.sweep.sweep`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from seqrob.cli._common import DbOption, WaitOption, console, console_warning


# The defaults of [limits] (seqrob.training.config.LimitsConfig), written here to keep start-up light.
_LIMITS = ("limits.runs, 10000", "limits.predictions, 50000000: runs x languages x examples", "limits.memory_gb, 16")


def register(app: typer.Typer) -> None:
    app.command("train")(train)


def train(
    config: Annotated[
        Optional[Path],
        typer.Argument(help="Sweep config (TOML). Default: the embedded synthetic default.", show_default=False),
    ] = None,
    db: DbOption = None,
    seeds: Annotated[
        Optional[str], typer.Option(help="Seeds: a count N (init seeds 1..N) or a comma-separated list (1,5,9).")
    ] = None,
    orders: Annotated[
        Optional[str],
        typer.Option(help="Orders, comma-separated ('none,nli>qa,qa>nli'), or 'permutations' or 'all'."),
    ] = None,
    methods: Annotated[Optional[str], typer.Option(help="Methods, comma-separated: finetune, prompt.")] = None,
    max_steps: Annotated[
        Optional[int],
        typer.Option(
            "--max-steps", help="Cap every stage at N steps (smoke runs; stored as experiment <name>-max<N>steps)."
        ),
    ] = None,
    workers: Annotated[
        Optional[int], typer.Option(help="Runs at the same time (default: one per CPU core).", min=1)
    ] = None,
    backend: Annotated[str, typer.Option(help="Where runs execute: local (processes) or ray.")] = "local",
    address: Annotated[
        Optional[str], typer.Option(help="Ray cluster address for --backend ray (default: a local Ray instance).")
    ] = None,
    experiment: Annotated[Optional[str], typer.Option(help="Experiment name (default: the config's).")] = None,
    max_runs: Annotated[Optional[int], typer.Option(help=f"Refuse sweeps of more runs (default {_LIMITS[0]}).")] = None,
    max_predictions: Annotated[
        Optional[int], typer.Option(help=f"Refuse sweeps storing more predictions (default {_LIMITS[1]}).")
    ] = None,
    max_memory_gb: Annotated[
        Optional[float], typer.Option(help=f"Refuse sweeps whose workers need more memory (default {_LIMITS[2]}).")
    ] = None,
    wait: WaitOption = 30.0,
) -> None:
    """Run a sweep (orders x seeds x methods) of sequenced intermediate-task training into the warehouse.

    Sizes are checked first (runs, stored predictions, memory per worker, against the limits);
    Ctrl-C stops with what is stored kept (exit 130), and a rerun resumes."""
    from seqrob.training.config import load_config, with_overrides
    from seqrob.training.sweep import sweep
    from seqrob.warehouse import default_path

    loaded = load_config(config)
    loaded = with_overrides(
        loaded,
        seeds=seeds,
        orders=orders,
        methods=[m.strip() for m in methods.split(",") if m.strip()] if methods is not None else None,
        max_steps=max_steps,
        experiment=experiment,
        max_runs=max_runs,
        max_predictions=max_predictions,
        max_memory_gb=max_memory_gb,
    )
    with _Display() as display:
        result = sweep(
            loaded, db=db, workers=workers, backend=backend, address=address, wait=wait, events=display
        )
    where = db if db is not None else default_path()
    console.print(
        f"experiment {result.experiment}: {result.finished} runs finished, {result.failed} failed, "
        f"{result.skipped} already stored (of {result.planned}) in {result.seconds:.0f} s -> {where}"
    )
    for row in result.runs[result.runs.status == "failed"].itertuples():
        console_warning(f"run {row.run_id} failed: {row.failure}")
    if result.finished or result.skipped:
        console.print("see what is stored: seqrob warehouse info" + (f" --db {db}" if db is not None else ""))


class _Display:
    """Live progress for people: runs done / total with an ETA, and each worker's stage and loss.

    Where the output is not a terminal (CI logs, pipes) it prints one line per stored run instead.
    """

    def __init__(self) -> None:
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.runs: TaskID | None = None
        self.workers: dict[object, TaskID] = {}
        self.started = time.monotonic()

    def __enter__(self) -> _Display:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for task in self.workers.values():
            self.progress.remove_task(task)
        if self.live:
            self.progress.stop()

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "plan":
            note = f" ({event['skipped']} already stored)" if event["skipped"] else ""
            self.runs = self.progress.add_task(f"runs{note}", total=event["todo"])
            self.todo = event["todo"]
            if event["todo"]:
                self.progress.console.print(
                    f"{event['experiment']}: {event['todo']} runs on {event['workers']} {event['backend']} worker(s),"
                    f" {event['threads']} torch thread(s) each",
                    markup=False,
                )
        elif kind == "stored" and not self.live:
            elapsed = time.monotonic() - self.started
            eta = elapsed / event["done"] * (event["todo"] - event["done"])
            console.print(
                f"run {event['done']}/{event['todo']} {event['status']} in {event['seconds']:.0f} s"
                f" (elapsed {elapsed:.0f} s, about {eta:.0f} s to go): {event['run_id']}",
                markup=False,
                soft_wrap=True,
            )
        elif not self.live:
            return
        elif kind == "progress":
            key = event.get("pid", 0)
            label = f"{event['order']} seed {event['seed']}" + (
                f" {event['method']}" if event["method"] != "finetune" else ""
            )
            what = "evaluating" if event.get("evaluating") else f"loss {event['loss']:.3f}"
            text = f"  {label} stage {event['position']}/{event['stages']} {event['task']} {what}"
            if key not in self.workers:
                self.workers[key] = self.progress.add_task(text, total=event["steps"])
            self.progress.update(self.workers[key], description=text, completed=event["step"], total=event["steps"])
        elif kind == "stored" and self.runs is not None:
            self.progress.advance(self.runs)
            if event["status"] == "failed":
                self.progress.console.print(f"run failed: {event['run_id']}: {event['failure']}", markup=False)
