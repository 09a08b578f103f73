"""Fault injection (issue 14): kill -9, Ctrl-C, a full disk and two writers against ingest and train.

Each trial runs a real ``seqrob`` process, hurts it at a random moment (seeded), then
checks the promises of the README's Reliability section:

* the warehouse opens (``seqrob warehouse info`` exits 0) and holds each file all or
  nothing: per run, the file's row count of scores and predictions, or 0;
* the same command run again completes and leaves exactly the rows of one clean ingest
  (no duplicates), or, for ``seqrob train``, the stored runs are complete, the rerun
  trains only the missing ones and the scores equal an uninterrupted sweep's;
* user-visible faults (Ctrl-C, a full disk, a warehouse in use) are one line, the
  documented exit code (130, 2, 3) and no traceback; workers die with their parent.

``tests/test_faults.py`` runs a few trials of each scenario in CI; this script is the
long form::

    python benchmarks/faults.py --n 50          # 50 trials per scenario
    python benchmarks/faults.py --n 10 --scenarios kill-ingest,kill-train

It prints, per scenario, the trials, how many left everything consistent and the time,
then each problem found; it exits 1 when any trial found one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SEQROB = [sys.executable, "-m", "seqrob"]
KEYS = {
    "scores": "run_id, task, language, metric",
    "predictions": "run_id, task, language, example_id",
}


# -- data ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestFiles:
    """A simulated scores file and predictions file, and what one clean ingest stores."""

    scores: Path
    predictions: Path
    runs: int
    scores_per_run: int
    predictions_per_run: int


def make_ingest_files(folder: Path, *, fmt: str = "csv", seeds: int = 10, n_examples: int = 340) -> IngestFiles:
    """3 orders x ``seeds`` seeds x 30 languages; 10 seeds and 340 examples give 306,000 predictions."""
    from seqrob.warehouse.simulate import simulate

    sim = simulate(seeds=seeds, n_examples=n_examples, seed=14)
    paths = sim.write(folder, format=fmt)
    runs = sim.scores.run_id.nunique()
    return IngestFiles(paths["scores"], paths["predictions"], runs, len(sim.scores) // runs, len(sim.predictions) // runs)


def new_warehouse(path: Path) -> Path:
    """An empty warehouse file (the state every ingest trial starts from)."""
    from seqrob.warehouse import Warehouse

    for leftover in (path, Path(f"{path}.wal")):
        leftover.unlink(missing_ok=True)
    Warehouse(path).close()
    return path


def ingest_command(files: IngestFiles, db: Path, *extra: str) -> list[str]:
    return [*SEQROB, "ingest", str(files.scores), str(files.predictions), "--db", str(db), *extra]


# -- checks ----------------------------------------------------------------------------------------


def one_line_error(err: str, expected_code: int, returncode: int, contains: str) -> list[str]:
    """Problems with a user-visible fault's report: exit code, one line, no traceback."""
    problems = []
    lines = [line for line in err.splitlines() if line.strip()]
    if returncode != expected_code:
        problems.append(f"exit {returncode}, not {expected_code}: {_tail(err)}")
    if "Traceback" in err:
        problems.append(f"a traceback: {_tail(err)}")
    elif len(lines) != 1 or contains not in lines[0]:
        problems.append(f"not one line saying {contains!r}: {err.strip()[-300:]!r}")
    return problems


def ingest_problems(db: Path, files: IngestFiles) -> tuple[list[str], dict[str, int]]:
    """Whether ``db`` opens and holds each file whole or not at all; returns (problems, rows per table)."""
    from seqrob.warehouse import Warehouse

    info = subprocess.run([*SEQROB, "warehouse", "info", "--db", str(db), "--format", "json"], capture_output=True, text=True)
    problems = [] if info.returncode == 0 else [f"warehouse info: exit {info.returncode}: {_tail(info.stderr)}"]
    with Warehouse(db, read_only=True) as wh:
        con = wh.con
        total = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "scores", "predictions")}
        # a rerun that finds everything stored logs its ingest too (0 rows stored)
        total["ingests"] = con.execute("SELECT count(*) FROM ingests WHERE rows_stored > 0").fetchone()[0]
        for table, per_run in (("scores", files.scores_per_run), ("predictions", files.predictions_per_run)):
            counts = [n for (n,) in con.execute(f"SELECT count(*) FROM {table} GROUP BY run_id").fetchall()]
            if total[table] not in (0, files.runs * per_run) or any(n != per_run for n in counts):
                problems.append(f"{table}: half-stored ({total[table]:,} rows, per run {sorted(set(counts))})")
            distinct = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT {KEYS[table]} FROM {table})").fetchone()[0]
            if distinct != total[table]:
                problems.append(f"{table}: {total[table] - distinct:,} duplicated rows")
    stored_files = (total["scores"] > 0) + (total["predictions"] > 0)
    if total["runs"] not in (0, files.runs) or (total["runs"] > 0) != (total["scores"] > 0):
        problems.append(f"runs: {total['runs']} stored with {total['scores']} scores")
    if total["predictions"] and not total["scores"]:
        problems.append("predictions stored without their scores")
    if total["ingests"] != stored_files:
        problems.append(f"ingests lists {total['ingests']} files, {stored_files} are stored")
    return problems, total


def rerun_problems(db: Path, files: IngestFiles) -> list[str]:
    """Run the same ingest again: it must complete and leave exactly one clean ingest's rows."""
    again = subprocess.run(ingest_command(files, db), capture_output=True, text=True)
    if again.returncode != 0:
        return [f"the rerun failed: exit {again.returncode}: {_tail(again.stderr)}"]
    problems, total = ingest_problems(db, files)
    want = {"runs": files.runs, "scores": files.runs * files.scores_per_run,
            "predictions": files.runs * files.predictions_per_run}  # fmt: skip
    if any(total[t] != n for t, n in want.items()):
        problems.append(f"after the rerun: {total}, not {want}")
    return problems


def _tail(text: str, size: int = 300) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-size:] if lines else "(nothing)"


# -- ingest scenarios ---------------------------------------------------------------------------


def clean_ingest_seconds(files: IngestFiles, folder: Path) -> float:
    """How long one clean ``seqrob ingest`` of both files takes here (start-up included)."""
    db = new_warehouse(folder / "clean.duckdb")
    start = time.monotonic()
    subprocess.run(ingest_command(files, db), check=True, capture_output=True)
    return time.monotonic() - start


def _opened(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (Linux /proc; elsewhere: assume so)."""
    fds = Path(f"/proc/{pid}/fd")
    if not Path("/proc").is_dir():
        return True
    with contextlib.suppress(OSError):
        return any(os.path.realpath(fd) == str(path.resolve()) for fd in fds.iterdir())
    return False


def _hurt_after(command: list[str], at: float, how: signal.Signals, *, group: bool,
                opened: Path | None = None) -> tuple[int, str, bool]:  # fmt: skip
    """Run ``command``; ``at`` seconds after its start send ``how`` (to its process group when
    ``group``, as a terminal's Ctrl-C does). With ``opened``, not before the process has that
    file open: a signal during interpreter start-up, before the command runs at all, is not a
    fault of the command (on a loaded machine start-up alone can take over a second).
    Returns (exit code, stderr, whether it was hit)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    began = time.monotonic()
    if opened is not None:
        while process.poll() is None and not _opened(process.pid, opened) and time.monotonic() - began < 60:
            time.sleep(0.01)
    hit = False
    try:
        process.wait(timeout=max(0.0, at - (time.monotonic() - began)))
    except subprocess.TimeoutExpired:
        hit = True
        if group:
            os.killpg(process.pid, how)
        else:
            os.kill(process.pid, how)
    try:
        _, err = process.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, err, hit


def kill_ingest_trial(files: IngestFiles, folder: Path, at: float) -> list[str]:
    """kill -9 ``seqrob ingest`` ``at`` seconds after it starts; check, then rerun and check."""
    db = new_warehouse(folder / "killed.duckdb")
    code, err, hit = _hurt_after(ingest_command(files, db), at, signal.SIGKILL, group=False)
    if hit and code != -signal.SIGKILL:
        return [f"kill -9 at {at:.2f} s: exit {code}: {_tail(err)}"]
    problems, _ = ingest_problems(db, files)
    return [f"kill -9 at {at:.2f} s: {p}" for p in problems + rerun_problems(db, files)]


def interrupt_ingest_trial(files: IngestFiles, folder: Path, at: float) -> list[str]:
    """Ctrl-C (SIGINT to the process group) ``at`` seconds into ``seqrob ingest``:
    exit 130 and one line, or it had finished; the warehouse consistent; a rerun completes."""
    db = new_warehouse(folder / "interrupted.duckdb")
    code, err, hit = _hurt_after(ingest_command(files, db), at, signal.SIGINT, group=True, opened=db)
    if not hit or (code == 0 and _complete(db, files)):
        problems = []  # it had finished (or finished as the signal came): exit 0 with everything stored is right
    else:
        problems = one_line_error(err, 130, code, "interrupted")
    problems += ingest_problems(db, files)[0] + rerun_problems(db, files)
    return [f"Ctrl-C at {at:.2f} s: {p}" for p in problems]


def _complete(db: Path, files: IngestFiles) -> bool:
    from seqrob.warehouse import Warehouse

    with Warehouse(db, read_only=True) as wh:
        stored = wh.con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    return stored == files.runs * files.predictions_per_run


HOLDER = """
import sys, time
from seqrob.warehouse import Warehouse
wh = Warehouse(sys.argv[1])
print("holding", flush=True)
if sys.argv[2] == "released":  # hold until told (a line on stdin)
    sys.stdin.readline()
else:
    time.sleep(float(sys.argv[2]))
wh.close()
"""


def two_writers_trial(files: IngestFiles, folder: Path, hold: float, wait: float) -> list[str]:
    """One process holds the warehouse ``hold`` seconds; ``seqrob ingest --wait WAIT`` comes second.

    ``hold`` > ``wait``: exit 3 with one "is in use" line after about ``wait`` seconds and
    the warehouse unchanged; the holder then holds until the second writer has exited, so
    a slow start-up of the second (a loaded machine) cannot outlast the hold. ``hold`` <
    ``wait``: the second writer waits, then stores the files.
    """
    db = new_warehouse(folder / "shared.duckdb")
    refuse = hold > wait + 1.0
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), "released" if refuse else str(hold)],
                              stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdin is not None
        if holder.stdout.readline().strip() != "holding":
            return ["the holder did not open the warehouse"]
        start = time.monotonic()
        second = subprocess.run(ingest_command(files, db, "--wait", str(wait)), capture_output=True, text=True)
        waited = time.monotonic() - start
    finally:
        with contextlib.suppress(BrokenPipeError):
            holder.stdin.write("release\n")
            holder.stdin.close()
        holder.wait(timeout=hold + 30)
    where = f"hold {hold:.1f} s, --wait {wait:.1f}"
    if refuse:
        problems = one_line_error(second.stderr, 3, second.returncode, "is in use")
        if waited < wait:
            problems.append(f"gave up after {waited:.2f} s, before --wait {wait}")
        _, total = ingest_problems(db, files)
        if total["scores"] or total["predictions"]:
            problems.append(f"the refused writer stored rows: {total}")
    elif hold < wait - 1.0:
        problems = [] if second.returncode == 0 else [f"did not wait: exit {second.returncode}: {_tail(second.stderr)}"]
        problems += ingest_problems(db, files)[0]
        if not _complete(db, files):
            problems.append("the second writer stored nothing after waiting")
    else:
        return []  # too close to call: either outcome is right
    return [f"{where}: {p}" for p in problems]


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A tmpfs of ``size`` mounted on ``folder`` (None when this process may not mount one)."""
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None or os.geteuid() != 0:
        yield None
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def full_disk_trial(files: IngestFiles, folder: Path, size: str) -> list[str] | None:
    """Ingest into a warehouse on a tmpfs of ``size``: a full disk is one line, exit 2, and the
    warehouse holds each file whole or not at all. None when no tmpfs can be mounted here."""
    with small_disk(folder / f"disk-{size}", size) as disk:
        if disk is None:
            return None
        db = new_warehouse(disk / "full.duckdb")
        out = subprocess.run(ingest_command(files, db), capture_output=True, text=True)
        if out.returncode == 0:
            problems = []  # it fitted
        else:
            problems = one_line_error(out.stderr, 2, out.returncode, "is full")
        problems += ingest_problems(db, files)[0]
    return [f"disk of {size}: {p}" for p in problems]


# -- train -------------------------------------------------------------------------------------


def tiny_config(path: Path, *, steps: int = 8) -> Path:
    """2 orders x 2 seeds of the tests' tiny model (tests/test_training_run.py), 1-2 s per run."""
    path.write_text(
        f"""experiment = "faults"
source_language = "qna"
target = "topic"
orders = ["none", "ner>qa"]

[seeds]
init = [1, 2]

[model]
max_length = 48
hidden_size = 32
layers = 1
heads = 2
intermediate_size = 64
vocab_size = 400

[synthetic]
train_examples = 120
eval_examples = 24
corpus_sentences = 150

[evaluation]
languages = ["qna", "qnb", "qea", "qsa"]
batch_size = 64

[tasks.topic]
kind = "classification"
steps = {steps}
batch_size = 16
learning_rate = 0.003

[tasks.ner]
kind = "tagging"
languages = ["qna", "qea"]
steps = 6
batch_size = 16
learning_rate = 0.003

[tasks.qa]
kind = "qa"
steps = 6
batch_size = 16
learning_rate = 0.003
"""
    )
    return path


def train_command(config: Path, db: Path) -> list[str]:
    return [*SEQROB, "train", str(config), "--db", str(db), "--workers", "1"]


@dataclass(frozen=True)
class CleanSweep:
    """An uninterrupted sweep: its stored rows, and when its runs were stored (seconds from start)."""

    scores: object  # pandas.DataFrame
    per_run: dict[str, int]
    stored_at: list[float]
    seconds: float


def stored_sweep(db: Path):
    """(runs, scores of finished runs, rows per run of stages/scores/predictions)."""
    from seqrob.warehouse import Warehouse

    with Warehouse(db, read_only=True) as wh:
        runs = wh.table("runs")
        scores = wh.scores().sort_values(["run_id", "task", "language", "metric"]).reset_index(drop=True)
        per_run = {
            table: dict(wh.con.execute(f"SELECT run_id, count(*) FROM {table} GROUP BY run_id").fetchall())
            for table in ("stages", "scores", "predictions")
        }
    return runs, scores, per_run


def clean_sweep(config: Path, folder: Path) -> CleanSweep:
    db = folder / "clean-train.duckdb"
    db.unlink(missing_ok=True)
    start = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(train_command(config, db), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    stored_at = []
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("run "):
            stored_at.append(time.monotonic() - start)
    if process.wait() != 0:
        raise RuntimeError("the clean sweep failed")
    runs, scores, per_run = stored_sweep(db)
    counts = {table: next(iter(set(values.values()))) for table, values in per_run.items() if table != "stages"}
    return CleanSweep(scores, counts, stored_at, time.monotonic() - start)


def _children(pid: int) -> list[int]:
    """Living processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
                if int(ppid) == pid and state != "Z":
                    out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_train_trial(config: Path, folder: Path, at: float, clean: CleanSweep) -> list[str]:
    """kill -9 ``seqrob train`` (the parent only) ``at`` seconds after it starts; its workers must
    exit, what is stored must be whole runs, and the rerun must train only the missing runs."""
    db = folder / "killed-train.duckdb"
    for leftover in (db, Path(f"{db}.wal")):
        leftover.unlink(missing_ok=True)
    process = subprocess.Popen(train_command(config, db), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    problems: list[str] = []
    try:
        deadline = time.monotonic() + at
        children: set[int] = set()
        while time.monotonic() < deadline and process.poll() is None:
            children.update(_children(process.pid))
            time.sleep(0.05)
        if process.poll() is not None:
            return []  # finished before the kill: nothing to check beyond the clean sweep
        children.update(_children(process.pid))
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        until = time.monotonic() + 5
        while any(_alive(pid) for pid in children) and time.monotonic() < until:
            time.sleep(0.1)
        orphans = [pid for pid in children if _alive(pid)]
        if orphans:
            problems.append(f"{len(orphans)} process(es) outlived the killed parent by 5 s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    if db.exists():
        runs, _, per_run = stored_sweep(db)
        unfinished = runs[runs.status != "finished"]
        if len(unfinished):
            problems.append(f"{len(unfinished)} run(s) stored with status {sorted(set(unfinished.status))}")
        for table in ("scores", "predictions"):
            partial = {r: n for r, n in per_run[table].items() if n != clean.per_run[table]}
            if partial or set(per_run[table]) != set(runs.run_id):
                problems.append(f"{table}: half-stored runs {partial or sorted(set(runs.run_id) - set(per_run[table]))}")
        kept = len(runs)
    else:
        kept = 0
    again = subprocess.run(train_command(config, db), capture_output=True, text=True)
    if again.returncode != 0:
        return [f"kill -9 at {at:.2f} s: {p}" for p in [*problems, f"the rerun failed: {_tail(again.stderr)}"]]
    found = re.search(r"(\d+) runs finished, (\d+) failed, (\d+) already stored \(of (\d+)\)", again.stdout.replace("\n", " "))
    planned = len(clean.scores.run_id.unique())
    if found is None:
        problems.append(f"the rerun did not say what it did: {_tail(again.stdout)}")
    elif (int(found[1]), int(found[3]), int(found[4])) != (planned - kept, kept, planned):
        problems.append(f"the rerun trained {found[1]} and skipped {found[3]} of {found[4]}; {kept} were stored")
    _, scores, _ = stored_sweep(db)
    if not scores.equals(clean.scores):
        problems.append("after the rerun the scores differ from an uninterrupted sweep's")
    return [f"kill -9 at {at:.2f} s: {p}" for p in problems]


# -- the long form -----------------------------------------------------------------------------

SCENARIOS = ("kill-ingest", "ctrl-c-ingest", "two-writers", "full-disk", "kill-train")


def run(scenarios: tuple[str, ...], n: int, seed: int, folder: Path) -> list[dict]:
    """``n`` trials of each scenario at seeded random moments; one summary dict per scenario."""
    rng = random.Random(seed)
    files = make_ingest_files(folder / "data")
    duration = clean_ingest_seconds(files, folder)
    summary = []
    for scenario in scenarios:
        start, problems, trials, failed = time.monotonic(), [], 0, 0
        for _ in range(n):
            if scenario == "kill-ingest":
                found = kill_ingest_trial(files, folder, rng.uniform(0.1, duration))
            elif scenario == "ctrl-c-ingest":
                found = interrupt_ingest_trial(files, folder, rng.uniform(0.1, duration))
            elif scenario == "two-writers":
                hold = rng.choice([0.5, 3.0])
                found = two_writers_trial(files, folder, hold=hold, wait=2.0 if hold < 1 else 1.0)
            elif scenario == "full-disk":
                found = full_disk_trial(files, folder, f"{rng.randint(1000, 4500)}k")
                if found is None:
                    break
            else:
                if trials == 0:
                    config = tiny_config(folder / "tiny.toml")
                    clean = clean_sweep(config, folder)
                found = kill_train_trial(config, folder, rng.uniform(max(0.5, clean.stored_at[0] - 1.0), clean.seconds), clean)
            trials += 1
            problems += found
            failed += bool(found)
            print(f"  {scenario} trial {trials}: {len(found)} problem(s)", file=sys.stderr, flush=True)
        summary.append({"scenario": scenario, "trials": trials, "consistent": trials - failed,
                        "seconds": time.monotonic() - start, "problems": problems})  # fmt: skip
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="trials per scenario (default 50)")
    parser.add_argument("--seed", type=int, default=14, help="seed of the random moments")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, of: " + ", ".join(SCENARIOS))
    args = parser.parse_args(argv)
    scenarios = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    with tempfile.TemporaryDirectory(prefix="seqrob-faults-") as tmp:
        summary = run(scenarios, args.n, args.seed, Path(tmp))
    print(f"{'scenario':<15} {'trials':>6} {'consistent':>10} {'seconds':>8}")
    for row in summary:
        print(f"{row['scenario']:<15} {row['trials']:>6} {row['consistent']:>10} {row['seconds']:>8.1f}")
    for row in summary:
        for problem in row["problems"]:
            print(f"{row['scenario']}: {problem}")
    return 1 if any(row["problems"] for row in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
