"""The shipped pretrained encoder (synthetic-pretrained): reproducible, loaded like a hub model, and
what prompt tuning and fine-tuning do to it.

* ``python -m seqrob.training.pretrain --out DIR`` reproduces the shipped folder: the same
  tokenizer files, the same tensors (within a small tolerance: another CPU's kernels may
  round differently), the same recipe (about a minute and a half on one core);
* the embedded default names it, and ``load_encoder`` loads it with
  ``AutoModel.from_pretrained`` / ``AutoTokenizer.from_pretrained`` on the shipped folder;
* a few steps of both methods from it: prompt tuning leaves every encoder weight as
  shipped, fine-tuning changes them.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from seqrob.training import model as model_module
from seqrob.training import pretrain
from seqrob.training.config import (
    ModelConfig,
    default_config_path,
    load_config,
    parse_config,
    plan,
    shipped_model_path,
    with_overrides,
)
from seqrob.training.model import load_encoder
from seqrob.training.run import run, train
from seqrob.training.sweep import sweep
from seqrob.warehouse import Warehouse
from seqrob.warehouse.errors import ConfigError
from test_training_run import one_torch_thread  # noqa: F401 (an autouse fixture)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "training" / "pretrained" / pretrain.NAME
FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "pretraining.json", "README.md")


def test_the_shipped_folder_is_complete_and_small():
    assert shipped_model_path(pretrain.NAME) == SHIPPED  # an editable install: the repository's folder
    assert sorted(p.name for p in SHIPPED.iterdir()) == sorted(FILES)
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 3e6
    summary = json.loads((SHIPPED / "pretraining.json").read_text())
    assert summary["recipe"] == dataclasses.asdict(pretrain.PretrainConfig())
    assert summary["command"] == "python -m seqrob.training.pretrain"
    assert summary["held_out_mlm_loss"] < 4.0  # far under log(vocabulary) = 7.2: it learned the languages
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["seqrob.training"]
    packaged = {p.relative_to(ROOT / "training") for pattern in patterns for p in (ROOT / "training").glob(pattern)}
    assert {Path("pretrained") / pretrain.NAME / name for name in FILES} <= packaged


def test_regeneration_reproduces_the_shipped_weights(tmp_path):
    summary = pretrain.pretrain(out=tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        assert (tmp_path / name).read_text() == (SHIPPED / name).read_text(), name
    again, shipped = load_file(tmp_path / "model.safetensors"), load_file(SHIPPED / "model.safetensors")
    assert again.keys() == shipped.keys()
    for name, tensor in shipped.items():
        difference = (again[name] - tensor).abs().max().item()
        assert torch.allclose(again[name], tensor, rtol=1e-4, atol=1e-5), f"{name}: max difference {difference:g}"
    recorded = json.loads((SHIPPED / "pretraining.json").read_text())
    assert summary["recipe"] == recorded["recipe"] and summary["corpus"] == recorded["corpus"]
    assert summary["held_out_mlm_loss"] == pytest.approx(recorded["held_out_mlm_loss"], abs=1e-3)
    assert torch.get_num_threads() == 1 and not torch.are_deterministic_algorithms_enabled()  # restored


def test_the_default_loads_the_shipped_encoder_through_from_pretrained(monkeypatch):
    table = tomllib.loads(default_config_path().read_text())
    assert table["model"]["name"] == pretrain.NAME
    assert not set(table["model"]) & {"hidden_size", "layers", "heads", "intermediate_size", "vocab_size"}
    spec = plan(load_config())[0]
    calls = []
    for loader in ("AutoModel", "AutoTokenizer"):
        real = getattr(model_module, loader).from_pretrained

        def spy(source, *args, _real=real, _loader=loader, **kwargs):
            calls.append((_loader, source))
            return _real(source, *args, **kwargs)

        monkeypatch.setattr(getattr(model_module, loader), "from_pretrained", spy)
    encoder, tokenizer = load_encoder(spec.model, spec.synthetic, seed=1)
    assert sorted(calls) == [("AutoModel", str(SHIPPED)), ("AutoTokenizer", str(SHIPPED))]
    assert type(encoder).__name__ == "BertModel" and tokenizer.is_fast
    shipped = load_file(SHIPPED / "model.safetensors")
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(tensor, shipped[name]), name  # every weight from the file, none left at random
    assert spec.model.name == pretrain.NAME  # the runs store the name, not this machine's path
    assert spec.to_dict()["model"]["weights_sha256"]  # new weights, new config hashes: never mixed on resume


def test_shipped_model_needs_its_synthetic_seed_and_no_shape_keys():
    table = tomllib.loads(default_config_path().read_text())
    table["synthetic"]["seed"] = 3
    with pytest.raises(ConfigError, match="pretrained on the languages of synthetic seed 0"):
        parse_config(table)
    table = tomllib.loads(default_config_path().read_text())
    table["model"]["layers"] = 4
    with pytest.raises(ConfigError, match="model.layers applies only to the embedded tiny model"):
        parse_config(table)
    assert ModelConfig().is_tiny and not ModelConfig().is_shipped  # a config without a name still gets "tiny"


def small_default(methods):
    config = with_overrides(load_config(), orders=["ner>qa"], seeds=[1], methods=methods, max_steps=4)
    synthetic = dataclasses.replace(config.synthetic, train_examples=64, eval_examples=16)
    evaluation = dataclasses.replace(config.evaluation, languages=("qna", "qea"))
    return dataclasses.replace(config, synthetic=synthetic, evaluation=evaluation)


def test_prompt_tuning_keeps_the_encoder_and_finetuning_changes_it():
    shipped = load_file(SHIPPED / "model.safetensors")
    changed = {}
    for method in ("prompt", "finetune"):
        (spec,) = plan(small_default([method]))
        trained = train(spec)
        weights = trained.backbone.encoder.state_dict()
        changed[method] = [name for name, tensor in shipped.items() if not torch.equal(weights[name], tensor)]
        if method == "prompt":
            assert trained.backbone.prompt is not None
            assert not any(p.requires_grad for p in trained.backbone.encoder.parameters())
    assert changed["prompt"] == []
    assert "encoder.layer.0.attention.self.query.weight" in changed["finetune"]
    assert len(changed["finetune"]) > len(shipped) // 2


def test_a_small_sweep_of_both_methods_from_the_pretrained_encoder(tmp_path):
    config = small_default(["finetune", "prompt"])
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        result = sweep(config, db=wh, workers=1, threads=1)
        assert (result.finished, result.failed) == (2, 0)
        runs = wh.table("runs")
    assert set(runs.method) == {"finetune", "prompt"} and set(runs.model) == {pretrain.NAME}
    (spec,) = plan(small_default(["prompt"]))
    first, second = run(spec), run(spec)  # deterministic per seed
    assert first.scores.equals(second.scores)
