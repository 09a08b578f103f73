"""Sweeps: every run of a config, on local processes or Ray, stored by one writer, resumable.

Workers only train and evaluate (:func:`seqrob.training.run.run`) and send back a
:class:`~seqrob.warehouse.runs.RunRecord`; this process is the only writer, and
stores each record in one transaction as it arrives. A rerun of the same sweep
skips every run whose config hash the warehouse already has, so a sweep killed
at any moment (even ``kill -9``) and rerun ends with the same set of runs and no
duplicates: a run is either stored whole or not at all, and then redone.

Local backend: a pool of ``workers`` processes (default: one per core), each with
``cores // workers`` torch threads so that they do not oversubscribe the CPU (one
for the tiny and the shipped synthetic-pretrained models). One worker: the runs train in this process.
Workers watch their parent: if it dies by any signal (even ``kill -9``), each
worker exits within a second (Linux: the kernel's parent-death signal; elsewhere a
thread that polls the parent's pid). Ctrl-C stops the sweep between two stores (a
store in progress finishes first), ends the workers, and raises
:class:`~seqrob.training.errors.Interrupted` with the count of runs stored.
Ray backend: the same run function as Ray tasks, on ``ray.init(address=...)`` (a
cluster) or a local Ray instance; if Ray is already initialised it is used as is.
"""

from __future__ import annotations

import dataclasses
import contextlib
import os
import queue as queue_module
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as wait_for
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from seqrob.training.config import RunSpec, SweepConfig, check_size, plan
from seqrob.training.errors import Interrupted
from seqrob.warehouse import Warehouse
from seqrob.warehouse.errors import ConfigError, SeqrobError
from seqrob.warehouse.runs import RunRecord

__all__ = ["BACKENDS", "SweepResult", "sweep", "cores"]

BACKENDS = ("local", "ray")

Events = Callable[[dict], None]


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did.

    ``runs`` has one row per run of the sweep: ``run_id, order, method, seed,
    data_seed, status`` (``finished``, ``failed``, or ``skipped`` when stored
    before), ``failure`` and ``seconds``.
    """

    experiment: str
    planned: int
    skipped: int
    finished: int
    failed: int
    seconds: float
    runs: pd.DataFrame


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def sweep(
    config: SweepConfig,
    *,
    db: str | Path | Warehouse | None = None,
    workers: int | None = None,
    backend: str = "local",
    address: str | None = None,
    threads: int | None = None,
    wait: float = 30.0,
    events: Events | None = None,
) -> SweepResult:
    """Run every order x seed x method of ``config`` not yet stored, into the warehouse.

    Parameters
    ----------
    config
        A loaded sweep config (:func:`~seqrob.training.config.load_config`, then
        :func:`~seqrob.training.config.with_overrides`).
    db
        Warehouse file (default ``$SEQROB_DB`` or ``./seqrob.duckdb``) or an open
        :class:`Warehouse`. A file is opened only to read what is stored and to store
        each run, so ``seqrob warehouse info`` can look in between.
    workers
        Runs at the same time (default: one per core, at most one per run).
    backend
        ``"local"`` (processes) or ``"ray"``.
    address
        Ray cluster address for ``ray.init`` (default: a local Ray instance).
    threads
        Torch threads per worker (default: cores // workers, at least 1; 1 for the embedded
        tiny model and the shipped ``synthetic-pretrained`` one, whose steps are too small to share between threads). With one worker,
        runs train in this process, with this many threads for the while.
    wait
        Seconds to wait for another process holding the warehouse.
    events
        Called with progress dicts: ``{"event": "plan", ...}``, ``"progress"``
        (a stage's step and loss), ``"stored"`` (a run is in the warehouse).

    Returns
    -------
    SweepResult
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend '{backend}' is not one of {', '.join(BACKENDS)}")
    emit = events or (lambda event: None)
    began = time.monotonic()
    check_size(config)  # before anything is planned or started
    specs = plan(config)
    interrupts = _Interrupts()
    stored: set[str] = set()
    done = 0
    try:
        with interrupts:
            with interrupts.deferred(), _open(db, wait) as wh:  # DuckDB turns Ctrl-C in a query into an error
                stored = wh.stored_config_hashes(experiment=config.experiment)
            todo = sorted((s for s in specs if s.config_hash not in stored), key=lambda s: -s.cost)
            n_workers = max(1, min(workers or cores(), len(todo) or 1))
            if threads is None:  # a 64-wide model gains nothing from more threads, and loses much on a busy machine
                threads = 1 if config.model.is_tiny or config.model.is_shipped else max(1, cores() // n_workers)
            emit({"event": "plan", "experiment": config.experiment, "total": len(specs),
                  "skipped": len(specs) - len(todo), "todo": len(todo), "workers": n_workers, "threads": threads,
                  "backend": backend})  # fmt: skip
            rows = [_row(s, "skipped", None, 0.0) for s in specs if s.config_hash in stored]
            commit = _git_commit()
            results = (
                (record for record in ())
                if not todo
                else _local(todo, n_workers, threads, emit)
                if backend == "local"
                else _ray(todo, n_workers, threads, address, emit)
            )
            with contextlib.closing(results):  # closed at once on Ctrl-C: its workers end then
                for record in results:
                    record = dataclasses.replace(record, git_commit=commit)
                    with interrupts.deferred(), _open(db, wait) as wh:  # Ctrl-C waits for the commit
                        if record.config_hash not in wh.stored_config_hashes(experiment=record.experiment):
                            wh.store_run(record)  # one transaction: the whole run or nothing
                        done += 1
                    seconds = (record.ended_at - record.started_at).total_seconds()
                    spec = next(s for s in todo if s.run_id == record.run_id)
                    rows.append(_row(spec, record.status, record.failure, seconds))
                    emit({"event": "stored", "run_id": record.run_id, "status": record.status,
                          "failure": record.failure, "done": done, "todo": len(todo), "seconds": seconds})  # fmt: skip
    except KeyboardInterrupt:
        raise Interrupted(sum(spec.config_hash in stored for spec in specs) + done) from None
    runs = pd.DataFrame(
        rows, columns=["run_id", "order", "method", "seed", "data_seed", "status", "failure", "seconds"]
    )
    return SweepResult(
        experiment=config.experiment,
        planned=len(specs),
        skipped=int((runs.status == "skipped").sum()),
        finished=int((runs.status == "finished").sum()),
        failed=int((runs.status == "failed").sum()),
        seconds=time.monotonic() - began,
        runs=runs,
    )


# -- backends -----------------------------------------------------------------------------


def _local(specs: Sequence[RunSpec], workers: int, threads: int, emit: Events) -> Iterator[RunRecord]:
    """Runs on a pool of fresh processes (spawned: no state inherited from this one)."""
    if workers == 1:  # no pool for one worker: same code, this process (its thread count restored after)
        import torch

        from seqrob.training.run import run

        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for spec in specs:
                yield run(spec, report=lambda event: emit({"event": "progress", **event}))
        finally:
            torch.set_num_threads(before)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    reports = context.Queue()
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(threads, reports, os.getpid())
    )
    try:
        pending = {pool.submit(_work, spec) for spec in specs}
        while pending:
            finished, pending = wait_for(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(reports, emit)
            for future in finished:
                try:
                    record = future.result()
                except BrokenProcessPool:
                    raise SeqrobError(
                        "a worker process died (out of memory, killed, or it could not start: a script that calls"
                        " sweep() with workers needs `if __name__ == '__main__':`) - rerun the same command to resume;"
                        " every run stored so far is kept"
                    ) from None
                yield record
    except BaseException:  # Ctrl-C, a failed store, the caller stopping early: end the runs, do not wait for them
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        reports.close()


def _ray(
    specs: Sequence[RunSpec], workers: int, threads: int, address: str | None, emit: Events
) -> Iterator[RunRecord]:
    """Runs as Ray tasks (one CPU-thread budget each); results come back to this process."""
    try:
        import ray
        from ray.util.queue import Queue
    except ImportError:
        raise ConfigError("the ray backend needs Ray - pip install 'seqrob[ray]' (or 'ray>=2.9')") from None
    started = not ray.is_initialized()
    if started:
        options = {"num_cpus": workers * threads} if address is None else {}
        ray.init(address=address, include_dashboard=False, log_to_driver=False, **options)
    reports = Queue(actor_options={"num_cpus": 0})
    try:
        task = ray.remote(num_cpus=threads)(_ray_work)
        pending = [task.remote(spec, threads, reports) for spec in specs]
        while pending:
            finished, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            _drain(reports, emit)
            for ref in finished:
                yield ray.get(ref)
    finally:
        reports.shutdown()
        if started:
            ray.shutdown()


_REPORTS = None


def _init_worker(threads: int, reports, parent: int) -> None:
    global _REPORTS
    _REPORTS = reports
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent decides
    _watch_parent(parent)
    _set_threads(threads)


def _watch_parent(parent: int, every: float = 0.5) -> None:
    """End this worker when ``parent`` dies, by any signal: no orphan keeps training (or holding memory)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: the kernel kills us when the parent goes
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)

    def watch() -> None:  # elsewhere, and if the thread that started us was not the parent's main one
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="seqrob-parent-watch", daemon=True).start()


def _work(spec: RunSpec) -> RunRecord:
    from seqrob.training.run import run

    return run(spec, report=lambda event: _REPORTS.put({"event": "progress", "pid": os.getpid(), **event}))


def _ray_work(spec: RunSpec, threads: int, reports) -> RunRecord:
    from seqrob.training.run import run

    _set_threads(threads)
    return run(spec, report=lambda event: reports.put_nowait({"event": "progress", "pid": os.getpid(), **event}))


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _drain(reports, emit: Events) -> None:
    while True:
        try:
            event = reports.get_nowait()
        except (queue_module.Empty, Exception):  # ray's Queue raises its own Empty
            return
        emit(event)


# -- helpers ------------------------------------------------------------------------------


class _Interrupts:
    """Ctrl-C as KeyboardInterrupt, except inside :meth:`deferred`, where it waits for the block to end.

    Installed only in the main thread and over Python's own handler (a caller's handler is left alone).
    """

    def __init__(self) -> None:
        self.deferring = False
        self.pending = False
        self.previous = None

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.deferring:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.pending:
            raise KeyboardInterrupt



class _Borrowed:
    """An open Warehouse given by the caller: used, not closed."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh

    def __enter__(self) -> Warehouse:
        return self.wh

    def __exit__(self, *exc: object) -> None:
        pass


def _open(db, wait: float):
    return _Borrowed(db) if isinstance(db, Warehouse) else Warehouse(db, wait=wait)


def _row(spec: RunSpec, status: str, failure: str | None, seconds: float) -> tuple:
    return (spec.run_id, spec.order_name, spec.method, spec.init_seed, spec.data_seed, status, failure, seconds)


def _git_commit() -> str | None:
    """The commit of the seqrob source tree (``+dirty`` with uncommitted changes), if it is a git checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)  # fmt: skip
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
