"""Fault injection, the fast form (issue 14): kill -9, Ctrl-C, a full disk and two writers.

Each test runs real ``seqrob`` processes and hurts them at seeded random moments, then
checks the README's Reliability promises with the checks of ``benchmarks/faults.py``
(one definition of "consistent"; that script is the long form, ``--n 50``): the
warehouse opens, each file is stored whole or not at all, a rerun completes without
duplicates, a killed sweep resumes with only its missing runs, and a fault a user sees
is one line with its exit code. The ingested file is simulated: 3 orders x 10 seeds x
30 languages, 900 scores and 306,000 predictions, as CSV (about 1.5 s to ingest here).
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "faults.py"
_SPEC = importlib.util.spec_from_file_location("seqrob_benchmark_faults", _PATH)
faults = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = faults  # dataclasses look their module up
_SPEC.loader.exec_module(faults)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The simulated files and how long one clean ingest of them takes here."""
    folder = tmp_path_factory.mktemp("faults")
    files = faults.make_ingest_files(folder / "data")
    return files, faults.clean_ingest_seconds(files, folder)


def test_kill_9_during_ingest_leaves_each_file_whole_or_absent_and_a_rerun_completes(data, tmp_path):
    files, seconds = data
    rng = random.Random(14)
    problems = []
    for at in sorted(rng.uniform(0.1, seconds) for _ in range(3)):
        problems += faults.kill_ingest_trial(files, tmp_path, at)
    assert problems == []


def test_second_writer_waits_then_stops_with_one_in_use_line_and_exit_3(data, tmp_path):
    files, _ = data
    assert faults.two_writers_trial(files, tmp_path, hold=3.0, wait=1.0) == []


def test_second_writer_that_waits_long_enough_stores_its_files(data, tmp_path):
    files, _ = data
    assert faults.two_writers_trial(files, tmp_path, hold=0.5, wait=3.0) == []


def test_ctrl_c_during_ingest_is_one_line_exit_130_and_whole_files(data, tmp_path):
    files, seconds = data
    rng = random.Random(15)
    problems = []
    for at in sorted(rng.uniform(0.4 * seconds, 0.8 * seconds) for _ in range(2)):
        problems += faults.interrupt_ingest_trial(files, tmp_path, at)
    assert problems == []


def test_full_disk_is_one_line_exit_2_and_whole_files(data, tmp_path):
    files, _ = data
    found = faults.full_disk_trial(files, tmp_path, "2110k")
    if found is None:
        pytest.skip("needs to mount a small tmpfs (root on Linux)")
    assert found == []


@linux_only
def test_kill_9_during_train_keeps_whole_runs_and_the_rerun_trains_only_the_missing(tmp_path):
    pytest.importorskip("torch", reason="seqrob train needs torch (pip install 'seqrob[train]')")
    config = faults.tiny_config(tmp_path / "tiny.toml")
    clean = faults.clean_sweep(config, tmp_path)
    rng = random.Random(14)
    at = rng.uniform(max(0.5, clean.stored_at[0] - 1.0), clean.stored_at[-1])
    assert faults.kill_train_trial(config, tmp_path, at, clean) == []
