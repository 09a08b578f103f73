"""Training configs: strict TOML loading, orders and seeds, resolved runs and their hashes.

No training happens here (these tests take well under a second each).
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from seqrob.training.config import (
    default_config_path,
    load_config,
    parse_config,
    plan,
    with_overrides,
)
from seqrob.training.synthetic import FAMILIES
from seqrob.warehouse.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"


def default_table() -> dict:
    return tomllib.loads(default_config_path().read_text(encoding="utf-8"))


def test_default_config_is_a_full_design():
    config = load_config()
    runs = plan(config)
    assert "none" in config.orders and len(config.orders) >= 3
    assert len(config.seeds.init) >= 3
    languages = runs[0].evaluation.languages
    families = {family for family, codes in FAMILIES.items() if set(codes) & set(languages)}
    assert len(languages) >= 10 and len(families) >= 4
    assert {stage.kind for run in runs for stage in run.stages} == {"classification", "tagging", "qa"}
    assert len(runs) == len(config.orders) * len(config.seeds.init) * len(config.methods)
    assert len({run.config_hash for run in runs}) == len(runs)
    assert len({run.run_id for run in runs}) == len(runs)


def test_the_packaged_default_is_the_file_in_the_repository():
    assert default_config_path().read_text() == (CONFIGS / "default.toml").read_text()


def test_real_experiment_config_parses_and_resolves_without_the_network():
    config = load_config(CONFIGS / "xlmr_xtreme.toml")
    runs = plan(config)
    assert config.model.name == "FacebookAI/xlm-roberta-base"
    assert config.orders == ("none", "nli>qa", "qa>nli")
    assert len(runs[0].evaluation.languages) == 40
    qa = config.tasks["qa"]
    assert (qa.dataset, qa.eval_dataset, qa.eval_subset, qa.max_length) == (
        "rajpurkar/squad",
        "google/xquad",
        "xquad.{lang}",
        384,
    )
    assert runs[-1].stages[-1].name == "wikiann" and runs[-1].stages[-1].languages == ("en",)


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda t: t.update(epxeriment="x"), "epxeriment"),
        (lambda t: t["tasks"]["ner"].update(stpes=5), "tasks.ner.stpes"),
        (lambda t: t["model"].update(hidden=32), "model.hidden"),
        (lambda t: t["seeds"].update(inits=[1]), "seeds.inits"),
        (lambda t: t["evaluation"].update(langs=["qna"]), "evaluation.langs"),
        (lambda t: t["tasks"]["topic"].update(fields={"txt": ["a"]}), "tasks.topic.fields.txt"),
    ],
)
def test_an_unknown_key_is_an_error_that_names_it(edit, key):
    table = default_table()
    edit(table)
    with pytest.raises(ConfigError) as error:
        parse_config(table, where="my.toml")
    message = str(error.value)
    assert f"unknown key '{key}'" in message and message.startswith("my.toml:")
    assert "\n" not in message


def test_unknown_key_suggests_the_close_one():
    table = default_table()
    table["tasks"]["ner"]["learning_rat"] = 0.1
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        parse_config(table)


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda t: t["tasks"]["ner"].update(steps="many"), "tasks.ner.steps must be an integer"),
        (lambda t: t["seeds"].update(init="1,2"), "seeds.init must be a list"),
        (lambda t: t["tasks"]["ner"].update(kind="tagger"), "kind 'tagger' is not one of"),
        (lambda t: t["tasks"]["ner"].update(epochs=2), "exactly one of 'steps' or 'epochs'"),
        (lambda t: t.update(orders=["ner>ner"]), "repeats a task"),
        (lambda t: t.update(orders=["ner>topic"]), "names the target task"),
        (lambda t: t.update(orders=["ner>nli"]), "names task 'nli'"),
        (lambda t: t.update(methods=["finetuen"]), "did you mean 'finetune'"),
        (lambda t: t.update(target="pos"), "target 'pos' is not a task"),
        (lambda t: t["seeds"].update(data=[1]), "seeds.data has 1 seeds but seeds.init has 5"),
        (lambda t: t["evaluation"].update(languages=["qna", "de"]), "'de' is not in the synthetic suite"),
        (lambda t: t["model"].update(name="some/model", dropout=0.1), "model.dropout applies only to the embedded tiny model"),
        (lambda t: t["tasks"]["ner"].update(learning_rate=-1.0), "learning_rate must be positive"),
        (lambda t: t.pop("source_language"), "'source_language' is missing"),
    ],
)
def test_invalid_values_are_one_line_errors(edit, fragment):
    table = default_table()
    edit(table)
    with pytest.raises(ConfigError) as error:
        parse_config(table)
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_or_broken_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no config file"):
        load_config(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("experiment = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_orders_keywords_expand():
    table = default_table()
    table["orders"] = "permutations"
    assert parse_config(table).orders == ("none", "ner>qa", "qa>ner")
    table["orders"] = "all"
    assert parse_config(table).orders == ("none", "ner", "qa", "ner>qa", "qa>ner")
    config = with_overrides(load_config(), orders="none, qa>ner")
    assert config.orders == ("none", "qa>ner")


def test_init_and_data_seeds_are_recorded_apart_and_can_be_crossed():
    table = default_table()
    table["methods"] = ["finetune"]
    table["seeds"] = {"init": [1, 2], "data": [10, 20, 30], "cross": True}
    runs = plan(dataclasses.replace(parse_config(table), orders=("none",)))
    assert sorted((r.init_seed, r.data_seed) for r in runs) == [(i, d) for i in (1, 2) for d in (10, 20, 30)]
    table["seeds"] = {"init": [1, 2], "data": [7, 8]}
    runs = plan(dataclasses.replace(parse_config(table), orders=("none",)))
    assert [(r.init_seed, r.data_seed) for r in runs] == [(1, 7), (2, 8)]
    assert runs[0].to_dict()["data_seed"] == 7


def test_the_hash_identifies_the_resolved_run():
    first, again = plan(load_config()), plan(load_config())
    assert [r.config_hash for r in first] == [r.config_hash for r in again]
    other = plan(with_overrides(load_config(), seeds=[1, 2, 3], experiment="other"))
    assert not {r.config_hash for r in first} & {r.config_hash for r in other}
    changed = default_table()
    changed["tasks"]["topic"]["learning_rate"] = 1e-3
    assert plan(parse_config(changed))[0].config_hash != first[0].config_hash


def test_overrides_from_the_command_line():
    config = with_overrides(load_config(), seeds="2", max_steps=30)
    runs = plan(config)
    assert config.seeds.init == (1, 2)
    assert config.experiment == "synthetic-default-max30steps"  # smoke runs never mix with full ones
    assert all(stage.steps <= 30 for run in runs for stage in run.stages)
    assert with_overrides(load_config(), seeds="4,9").seeds.init == (4, 9)
    assert with_overrides(load_config(), max_steps=5, experiment="mine").experiment == "mine"
    with pytest.raises(ConfigError, match="--seeds"):
        with_overrides(load_config(), seeds="a,b")
    with pytest.raises(ConfigError, match="--max-steps"):
        with_overrides(load_config(), max_steps=0)


def test_real_languages_need_a_family_seqrob_knows(tmp_path):
    table = tomllib.loads((CONFIGS / "xlmr_xtreme.toml").read_text())
    table["evaluation"]["languages"] = ["de", "xx-made-up"]
    with pytest.raises(ConfigError, match="'xx-made-up' is unknown"):
        parse_config(table)
    table["evaluation"]["families"] = {"xx-made-up": "Private"}
    assert parse_config(table).evaluation.families == {"xx-made-up": "Private"}


def test_tiny_model_needs_the_synthetic_suite():
    table = tomllib.loads((CONFIGS / "xlmr_xtreme.toml").read_text())
    table["model"] = {"name": "tiny"}
    with pytest.raises(ConfigError, match="tokenizer is trained on the synthetic suite"):
        parse_config(table)


def test_local_file_paths_are_relative_to_the_config(tmp_path):
    (tmp_path / "data").mkdir()
    config_file = tmp_path / "exp.toml"
    config_file.write_text(
        """
experiment = "files"
source_language = "en"
target = "cls"
[model]
name = "some/model"
[evaluation]
languages = ["en", "de"]
[tasks.cls]
kind = "classification"
data = "files"
train_files = "data/{lang}_train.jsonl"
eval_files = "data/{lang}_test.jsonl"
steps = 5
"""
    )
    task = load_config(config_file).tasks["cls"]
    assert task.train_files == str(tmp_path / "data" / "{lang}_train.jsonl")
