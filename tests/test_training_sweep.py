"""Sweeps: worker processes and one writer, the CLI, kill -9 and rerun, and the Ray backend.

All sweeps here use the tiny configuration of test_training_run.py, written to a
TOML file, so each run takes a second or two; the cost is mostly process start-up.
Each test checks its warehouse against the plan (the run ids) and against the first
run computed again in the test process (the same scores: runs are deterministic
with one torch thread, wherever they run). Tests share no fixtures, so pytest -n
can spread them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import typer
from seqrob.training.config import load_config, plan
from seqrob.training.sweep import sweep
from seqrob.warehouse import Warehouse
from seqrob.warehouse.errors import SeqrobError
from test_training_run import one_torch_thread, tiny_table  # noqa: F401 (an autouse fixture)
from typer.testing import CliRunner

# 2 orders x 2 seeds
SWEEP = {"orders": ["none", "ner>qa"], "seeds": {"init": [1, 2]}}


def write_toml(path: Path, table: dict) -> Path:
    """A small TOML writer for the config tables used here (tables, lists, scalars)."""

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return repr(v)

    lines, tables = [], []
    for key, v in table.items():
        (tables if isinstance(v, dict) else lines).append((key, v))
    out = [f"{k} = {value(v)}" for k, v in lines]
    for key, section in tables:
        if key == "tasks":
            for name, task in section.items():
                out.append(f"\n[tasks.{name}]")
                out += [f"{k} = {value(v)}" for k, v in task.items()]
        else:
            out.append(f"\n[{key}]")
            out += [f"{k} = {value(v)}" for k, v in section.items()]
    path.write_text("\n".join(out) + "\n")
    assert tomllib.loads(path.read_text()) == table
    return path


def stored_runs(db: Path) -> dict:
    with Warehouse(db, read_only=True) as wh:
        runs = wh.table("runs")
        return {
            "runs": runs,
            "scores": wh.scores().sort_values(["run_id", "language", "metric"]).reset_index(drop=True),
            "stages": len(wh.table("stages")),
            "predictions": len(wh.table("predictions")),
        }


def cli_app() -> typer.Typer:
    """The train command on its own app (seqrob.cli registers the same function)."""
    from seqrob.cli import train as train_cli

    app = typer.Typer()
    train_cli.register(app)

    @app.callback()
    def _root() -> None:  # keeps "train" a subcommand, as in seqrob's app
        pass

    return app


def expected(config: Path) -> tuple[list[str], str, list[float]]:
    """The run ids the sweep must store; and the first run's id and stage losses, computed here.

    Final losses are floats that any difference in the computation would change:
    equal losses mean the worker computed exactly what this process computes.
    """
    from seqrob.training.run import run

    specs = plan(load_config(config))
    record = run(specs[0])
    return sorted(s.run_id for s in specs), specs[0].run_id, [stage.final_loss for stage in record.stages]


def stored_losses(db: Path, run_id: str) -> list[float]:
    with Warehouse(db, read_only=True) as wh:
        stages = wh.table("stages")
    return stages[stages.run_id == run_id].sort_values("position").final_loss.tolist()


def test_cli_sweep_on_worker_processes_stores_every_run_and_a_rerun_skips_them(tmp_path):
    config = write_toml(tmp_path / "tiny.toml", tiny_table(**SWEEP))
    db = tmp_path / "wh.duckdb"
    result = CliRunner().invoke(cli_app(), ["train", str(config), "--db", str(db), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "4 runs on 2 local worker(s), 1 torch thread(s) each" in result.output
    assert "4 runs finished, 0 failed, 0 already stored" in result.output
    stored = stored_runs(db)
    runs = stored["runs"]
    assert len(runs) == 4 and runs.run_id.is_unique and set(runs.status) == {"finished"}
    assert sorted(zip(runs.order, runs.seed, runs.data_seed)) == [
        ("ner>qa", 1, 1),
        ("ner>qa", 2, 2),
        ("none", 1, 1),
        ("none", 2, 2),
    ]
    assert runs.config_hash.notna().all() and runs.packages.str.contains("torch").all()
    assert stored["stages"] == 2 * 3 + 2 * 1
    assert stored["predictions"] == 4 * 4 * 24  # runs x languages x examples
    assert set(stored["scores"].family) == {"Synthetic-North", "Synthetic-East", "Synthetic-South"}
    run_ids, first, losses = expected(config)
    assert sorted(runs.run_id) == run_ids
    assert stored_losses(db, first) == losses  # a worker process computes what this process computes

    again = CliRunner().invoke(cli_app(), ["train", str(config), "--db", str(db), "--workers", "2"])
    assert again.exit_code == 0, again.output
    assert "0 runs finished, 0 failed, 4 already stored (of 4)" in again.output
    pd.testing.assert_frame_equal(stored_runs(db)["scores"], stored["scores"])


def test_cli_unknown_config_key_is_one_line_without_traceback(tmp_path):
    table = tiny_table()
    table["tasks"]["topic"]["stpes"] = 3
    config = write_toml(tmp_path / "bad.toml", table)
    result = CliRunner().invoke(cli_app(), ["train", str(config), "--db", str(tmp_path / "wh.duckdb")])
    assert isinstance(result.exception, SeqrobError)
    assert "unknown key 'tasks.topic.stpes' (did you mean 'steps'?)" in str(result.exception)
    assert "\n" not in str(result.exception)


def test_seqrob_main_prints_config_errors_as_one_line(tmp_path):
    """Through the real entry point, once seqrob.cli registers seqrob.cli.train."""
    from seqrob.cli import app

    command = typer.main.get_command(app).commands["train"]
    if "pending" in command.callback.__module__:
        pytest.skip("seqrob train is still the placeholder in seqrob/cli/pending.py")
    table = tiny_table()
    table["model"]["hiden_size"] = 3
    config = write_toml(tmp_path / "bad.toml", table)
    out = subprocess.run(
        [sys.executable, "-m", "seqrob", "train", str(config), "--db", str(tmp_path / "wh.duckdb")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode != 0
    assert "unknown key 'model.hiden_size'" in out.stderr and "Traceback" not in out.stderr


KILLABLE = textwrap.dedent(
    """
    import sys
    from seqrob.training.config import load_config, plan
    from seqrob.training.sweep import sweep

    def show(event):
        if event["event"] in ("stored", "progress"):
            print(event["event"], event["run_id"], flush=True)

    sweep(load_config(sys.argv[1]), db=sys.argv[2], workers=1, threads=1, events=show)
    print("done", flush=True)
    """
)


def _sweep_process(script: Path, config: Path, db: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(script), str(config), str(db)],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def _kill_after(process: subprocess.Popen, line_starts: str, count: int, delay: float) -> None:
    seen = 0
    for line in process.stdout:
        if line.startswith(line_starts):
            seen += 1
            if seen == count:
                time.sleep(delay)
                break
    os.killpg(process.pid, signal.SIGKILL)  # the sweep and anything it started
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def test_kill_9_at_any_moment_then_rerun_gives_the_same_runs_exactly(tmp_path):
    config = write_toml(tmp_path / "tiny.toml", tiny_table(**SWEEP))
    script = tmp_path / "sweep.py"
    script.write_text(KILLABLE)
    db = tmp_path / "killed.duckdb"
    # killed right after a run is committed, then in the middle of training a run
    _kill_after(_sweep_process(script, config, db), "stored", 1, 0.0)
    _kill_after(_sweep_process(script, config, db), "progress", 3, 0.2)
    partial = stored_runs(db)["runs"]
    assert 1 <= len(partial) < 4 and partial.run_id.is_unique
    result = sweep(load_config(config), db=db, workers=1, threads=1)  # the rerun, here to save a process start
    assert result.skipped == len(partial) and result.finished == 4 - len(partial)
    after = stored_runs(db)
    run_ids, first, losses = expected(config)
    assert sorted(after["runs"].run_id) == run_ids  # the same set, no duplicates
    assert (after["stages"], after["predictions"]) == (2 * 3 + 2 * 1, 4 * 4 * 24)
    assert stored_losses(db, first) == losses


def test_ray_backend_runs_the_same_function_and_one_writer_stores(tmp_path):
    ray = pytest.importorskip(
        "ray", reason="the ray backend is tested where Ray is installed (pip install 'seqrob[ray]')"
    )
    config = write_toml(tmp_path / "tiny.toml", tiny_table(**SWEEP))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        events = []
        result = sweep(load_config(config), db=tmp_path / "ray.duckdb", backend="ray", workers=2, events=events.append)
        assert ray.is_initialized()  # a Ray instance the caller started is left running
    finally:
        ray.shutdown()
    assert (result.finished, result.failed) == (4, 0)
    assert any(e["event"] == "progress" for e in events)
    after = stored_runs(tmp_path / "ray.duckdb")
    run_ids, first, losses = expected(config)
    assert sorted(after["runs"].run_id) == run_ids and after["runs"].run_id.is_unique
    assert stored_losses(tmp_path / "ray.duckdb", first) == losses  # a Ray task computes what this process computes


# -- the parent dies or is interrupted: no worker outlives it ---------------------------------

LONG = {"seeds": {"init": [1, 2]}, "orders": ["none"]}  # two runs, each far longer than the test waits


def _long_sweep(tmp_path: Path) -> subprocess.Popen:
    """``seqrob train`` on 2 workers, in its own process group (as a shell job is)."""
    table = tiny_table(**LONG)
    table["tasks"]["topic"]["steps"] = 10**6
    config = write_toml(tmp_path / "long.toml", table)
    return subprocess.Popen(
        [sys.executable, "-m", "seqrob", "train", str(config), "--db", str(tmp_path / "wh.duckdb"), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def _children(pid: int) -> dict[int, str]:
    """Living processes whose parent is ``pid``, with their command lines (from /proc)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state != "Z":
                out[int(entry.name)] = cmdline
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _workers_started(process: subprocess.Popen, timeout: float = 180.0) -> dict[int, str]:
    """Wait until both workers run (past start-up: a worker's second thread is its parent watch, or torch's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        children = _children(process.pid)
        workers = [pid for pid, cmd in children.items() if "spawn_main" in cmd]
        if len(workers) == 2 and all(len(list(Path(f"/proc/{pid}/task").iterdir())) > 1 for pid in workers):
            time.sleep(2.0)  # into the run
            return _children(process.pid)
        time.sleep(0.2)
    raise AssertionError("the workers did not start")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
def test_kill_9_of_the_parent_ends_its_workers_within_seconds(tmp_path):
    process = _long_sweep(tmp_path)
    try:
        children = _workers_started(process)
        assert sum("spawn_main" in cmd for cmd in children.values()) == 2
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {pid: cmd for pid, cmd in children.items() if _alive(pid)}
        assert not left, f"left running after the parent died: {left}"  # workers and the resource tracker
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
def test_ctrl_c_ends_the_sweep_with_one_line_and_exit_130(tmp_path):
    process = _long_sweep(tmp_path)
    try:
        children = _workers_started(process)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert err.strip() == "error: interrupted; 0 runs stored, rerun to resume"
        time.sleep(1.0)
        assert not [pid for pid in children if _alive(pid)]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
