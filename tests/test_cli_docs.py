"""Every command exists, has help text, and is in the README's CLI reference."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from seqrob.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _commands(group, prefix: tuple[str, ...] = ()):
    # Typer builds its commands on its own copy of click (typer._click), so the classes
    # are not click's: tell groups and options apart by what they have.
    for name, command in group.commands.items():
        path = (*prefix, name)
        if hasattr(command, "commands"):
            yield from _commands(command, path)
        else:
            yield path, command


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_subcommands_are_listed():
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"analyze significance", "analyze power", "analyze calibrate", "warehouse info", "train"} <= paths


def test_top_level_groups_exist():
    names = set(typer.main.get_command(app).commands)
    assert {"train", "ingest", "analyze", "report", "demo", "warehouse", "simulate"} <= names


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_command_has_help_and_is_documented(path, command):
    assert command.help and command.help.strip(), f"seqrob {' '.join(path)} has no help text"
    assert f"seqrob {' '.join(path)}" in README, f"seqrob {' '.join(path)} is missing from the README"
    for param in command.params:
        if getattr(param, "param_type_name", "") == "option" and param.name != "help":
            assert param.help, f"option {param.opts[0]} of seqrob {' '.join(path)} has no help text"


def test_help_runs_from_the_installed_script():
    out = subprocess.run([sys.executable, "-m", "seqrob", "--help"], capture_output=True, text=True, check=True)
    for group in ("train", "ingest", "analyze", "report", "demo", "warehouse"):
        assert re.search(rf"\b{group}\b", out.stdout)


def test_a_user_error_is_one_line_without_a_traceback(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "seqrob", "warehouse", "info", "--db", str(tmp_path / "none.duckdb")],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert out.stderr.startswith("error: no warehouse at") and "Traceback" not in out.stderr
