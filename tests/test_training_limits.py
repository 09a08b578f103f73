"""Limits: sizes refused at config load, before any work, as one named error each.

Every case here once hung, ran out of memory or ended in a traceback (issue 14,
item 3); each now takes well under a second and raises an error that names the
key and the range, or the estimate and what raises the limit.
"""

from __future__ import annotations

import time

import pytest
from seqrob.training.config import check_size, estimate, parse_config, plan, with_overrides
from seqrob.training.errors import OutOfRange, SweepTooLarge, UnknownModel
from seqrob.warehouse.errors import ConfigError, SeqrobError
from test_training_run import tiny_table
from test_training_sweep import cli_app, write_toml
from typer.testing import CliRunner


def refused(table: dict, error: type[SeqrobError]) -> str:
    """Parse ``table`` and return the one-line message of the ``error`` it must raise (within a second)."""
    began = time.monotonic()
    with pytest.raises(error) as raised:
        parse_config(table, where="my.toml")
    assert time.monotonic() - began < 1.0
    message = str(raised.value)
    assert message.startswith("my.toml: ") and "\n" not in message
    return message


def eleven_tasks() -> dict:
    """The tiny config with ten intermediate tasks (its ner and qa, eight copies of ner) and the target."""
    table = tiny_table(orders=["none"])
    for i in range(8):
        table["tasks"][f"ner{i}"] = {"kind": "tagging", "dataset": "ner", "steps": 2}
    return table


@pytest.mark.parametrize("key, value", [("hidden_size", 10**9), ("max_length", 10**9), ("layers", 10**6), ("heads", 0)])
def test_absurd_model_sizes_are_refused_with_the_allowed_range(key, value):
    table = tiny_table()
    table["model"][key] = value
    message = refused(table, OutOfRange)
    assert f"model.{key} = {value} is outside the allowed range" in message


def test_a_task_max_length_out_of_range_is_refused():
    table = tiny_table()
    table["tasks"]["topic"]["max_length"] = 10**9
    assert "tasks.topic.max_length = 1000000000 is outside the allowed range 8 to 8192" in refused(table, OutOfRange)


@pytest.mark.parametrize("seeds", [{"init": [10**23]}, {"init": [2**63]}, {"init": [1], "data": [10**20]}])
def test_seeds_the_warehouse_cannot_store_are_refused_at_load(seeds):
    table = tiny_table(seeds=seeds)
    assert "does not fit a 64-bit integer" in refused(table, OutOfRange)


def test_negative_seeds_are_refused_at_load():
    """numpy's SeedSequence takes no negative seed: the run would fail in the worker."""
    message = refused(tiny_table(seeds={"init": [-1]}), OutOfRange)
    assert f"seeds.init = -1 is outside the allowed range 0 to {2**63 - 1}" in message


def test_a_seed_too_large_on_the_command_line_is_refused():
    config = parse_config(tiny_table())
    with pytest.raises(OutOfRange, match="seeds.init"):
        with_overrides(config, seeds="1,100000000000000000000000")


def test_the_largest_storable_seed_is_accepted():
    config = parse_config(tiny_table(seeds={"init": [2**63 - 1]}))
    assert plan(config)[0].init_seed == 2**63 - 1


@pytest.mark.parametrize("name", ["../../../../etc", "/no/such/model/folder", "a b", "owner/name/extra"])
def test_a_model_name_that_is_no_model_is_refused_in_one_line(name):
    table = tiny_table()
    table["model"] = {"name": name}
    message = refused(table, UnknownModel)
    assert f"model.name '{name}'" in message


def test_a_model_folder_needs_config_json(tmp_path):
    table = tiny_table()
    table["model"] = {"name": str(tmp_path)}
    assert "is a folder without config.json" in refused(table, UnknownModel)
    (tmp_path / "config.json").write_text("{}")
    assert parse_config(table).model.name == str(tmp_path)


@pytest.mark.parametrize("name", ["tiny", "FacebookAI/xlm-roberta-base", "bert-base-cased"])
def test_tiny_and_hugging_face_ids_are_accepted(name):
    table = tiny_table()
    table["model"] = {"name": name} if name != "tiny" else table["model"]
    assert parse_config(table).model.name == name


@pytest.mark.parametrize("seeds", ["10000000", "1000000000"])
def test_a_huge_seed_count_is_refused_before_any_seed_is_made(seeds):
    config = parse_config(tiny_table())
    began = time.monotonic()
    with pytest.raises(SweepTooLarge) as raised:
        with_overrides(config, seeds=seeds)
    assert time.monotonic() - began < 1.0
    assert f"--seeds {int(seeds):,} is more runs than the limit of 10,000" in str(raised.value)
    assert "--max-runs" in str(raised.value)


def test_orders_all_over_ten_intermediate_tasks_is_refused_before_it_is_expanded():
    table = eleven_tasks()
    table["orders"] = "all"
    message = refused(table, SweepTooLarge)
    assert "orders 'all' over 10 intermediate tasks are 9,864,101 orders" in message
    assert "--max-runs or [limits] runs" in message
    # the same from the command line
    config = parse_config(eleven_tasks())
    with pytest.raises(SweepTooLarge, match="9,864,101 orders"):
        with_overrides(config, orders="all")


def test_too_many_runs_is_refused_with_the_estimate_and_the_override():
    table = tiny_table(seeds={"init": list(range(1, 101)), "data": list(range(1, 101)), "cross": True})
    message = refused(table, SweepTooLarge)
    assert "the sweep has 20,000 runs" in message and "--max-runs or [limits] runs" in message
    table["limits"] = {"runs": 20_000}
    assert estimate(parse_config(table)).runs == 20_000


@pytest.mark.parametrize(
    "key, value, what, override",
    [
        ("eval_examples", 10**9, "would store 8,000,000,000 predictions", "--max-predictions"),
        ("train_examples", 10**9, "one worker would need about", "--max-memory-gb"),
        ("corpus_sentences", 10**9, "one worker would need about", "--max-memory-gb"),
    ],
)
def test_too_much_data_is_refused_with_the_estimate_and_the_override(key, value, what, override):
    table = tiny_table()
    table["synthetic"][key] = value
    message = refused(table, SweepTooLarge)
    assert what in message and override in message


def test_a_raised_limit_lets_a_large_sweep_through_and_sizes_are_estimated():
    table = tiny_table()
    size = estimate(parse_config(table))
    assert (size.runs, size.predictions) == (2, 2 * 4 * 24)  # runs x languages x examples
    assert 0.5 < size.memory_gb < 2
    table["synthetic"]["eval_examples"] = 10**8
    with pytest.raises(SweepTooLarge):
        parse_config(table)
    config = with_overrides(parse_config(tiny_table()), max_predictions=10**10, max_memory_gb=10**6)
    big = parse_config(table | {"limits": {"predictions": 10**10, "memory_gb": 10**6}})
    assert check_size(big).predictions == 2 * 4 * 10**8
    assert config.limits.predictions == 10**10


def test_limits_must_be_positive():
    with pytest.raises(ConfigError, match="--max-runs 0: must be positive"):
        with_overrides(parse_config(tiny_table()), max_runs=0)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "10000000"], "--seeds 10,000,000 is more runs than the limit"),
        (["--seeds", "1000000000"], "--seeds 1,000,000,000 is more runs than the limit"),
        (["--orders", "all", "--max-runs", "100"], "more than the limit of 100 runs"),
    ],
)
def test_cli_refuses_a_huge_sweep_as_one_line_before_any_work(tmp_path, args, message):
    config = write_toml(tmp_path / "big.toml", eleven_tasks())
    db = tmp_path / "wh.duckdb"
    result = CliRunner().invoke(cli_app(), ["train", str(config), "--db", str(db), *args])
    assert isinstance(result.exception, SweepTooLarge) and result.exception.exit_code == 2
    assert message in str(result.exception) and "\n" not in str(result.exception)
    assert not db.exists()  # refused before the warehouse was opened


def test_the_cli_help_states_the_configured_default_limits():
    """seqrob/cli/train.py spells the defaults out (it must not import training at start-up)."""
    from seqrob.cli.train import _LIMITS
    from seqrob.training.config import LimitsConfig

    limits = LimitsConfig()
    assert _LIMITS[0].startswith(f"limits.runs, {limits.runs}")
    assert _LIMITS[1].startswith(f"limits.predictions, {limits.predictions}")
    assert _LIMITS[2].startswith(f"limits.memory_gb, {limits.memory_gb:g}")
