"""The real-model path, offline: a model folder and local data files through the hub loaders.

A tiny model and tokenizer are saved with ``save_pretrained`` and loaded back by
``AutoModel``/``AutoTokenizer.from_pretrained`` (the call a hub id takes); the
data are CSV and JSON Lines files in the column layouts of XNLI-style, WikiANN and
SQuAD/XQuAD, read by ``datasets.load_dataset`` (the call a hub data set takes).
Real language codes get their families from the warehouse's language table.
"""

from __future__ import annotations

import json

import pandas as pd
import torch
from seqrob.training.config import ModelConfig, SyntheticConfig, load_config, plan
from seqrob.training.model import build_tiny, load_encoder
from seqrob.training.sweep import sweep
from seqrob.training.synthetic import Suite
from seqrob.training.tokenizer import train_tokenizer
from seqrob.warehouse import Warehouse

# Made-up sentences stand in for two real languages' data sets.
LANGUAGES = {"en": "qna", "de": "qnb"}


def write_data(folder, suite: Suite) -> None:
    folder.mkdir()
    for code, made_up in LANGUAGES.items():
        for split in ("train", "eval"):
            topic = suite.examples("topic", made_up, split)
            pd.DataFrame({"sentence": [e.texts[0] for e in topic], "gold": [e.label for e in topic]}).to_csv(
                folder / f"topic_{code}_{split}.csv", index=False
            )
        with open(folder / f"ner_{code}.jsonl", "w") as handle:
            for e in suite.examples("ner", made_up, "train"):
                handle.write(json.dumps({"tokens": list(e.words), "ner_tags": list(e.tags)}) + "\n")
        with open(folder / f"qa_{code}.jsonl", "w") as handle:
            for e in suite.examples("qa", made_up, "train"):
                ((text, start),) = e.answers
                row = {"id": e.example_id, "question": e.question, "context": e.context,
                       "answers": {"text": [text], "answer_start": [start]}}  # fmt: skip
                handle.write(json.dumps(row) + "\n")


def test_saved_model_and_local_files_take_the_same_path_as_the_hub(tmp_path):
    suite = Suite(SyntheticConfig(train_examples=80, eval_examples=20, corpus_sentences=100))
    tokenizer = train_tokenizer(suite.corpus(), vocab_size=300, max_length=64)
    shape = ModelConfig(hidden_size=32, layers=1, heads=2, intermediate_size=64, max_length=64)
    saved = build_tiny(shape, tokenizer, seed=0)
    saved.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    write_data(tmp_path / "data", suite)
    config_file = tmp_path / "real.toml"
    config_file.write_text(
        f"""
experiment = "saved-model"
source_language = "en"
target = "topic"
orders = ["qa", "ner>qa"]

[seeds]
init = [1]

[model]
name = "{tmp_path / "model"}"
max_length = 64

[evaluation]
languages = ["en", "de"]

[tasks.topic]
kind = "classification"
data = "files"
train_files = "data/topic_{{lang}}_train.csv"
eval_files = "data/topic_{{lang}}_eval.csv"
fields = {{ text = ["sentence"], label = "gold" }}
steps = 6
batch_size = 16
learning_rate = 3e-3

[tasks.ner]
kind = "tagging"
data = "files"
train_files = "data/ner_{{lang}}.jsonl"
languages = ["en", "de"]
steps = 4
batch_size = 16
learning_rate = 3e-3

[tasks.qa]
kind = "qa"
data = "files"
train_files = "data/qa_{{lang}}.jsonl"
epochs = 0.1
batch_size = 16
learning_rate = 3e-3
"""
    )
    config = load_config(config_file)
    spec = plan(config)[0]
    encoder, loaded_tokenizer = load_encoder(spec.model, None, seed=123)
    for name, weight in saved.state_dict().items():  # from_pretrained gives the saved weights, whatever the seed
        assert torch.equal(weight, encoder.state_dict()[name])
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()

    with Warehouse(tmp_path / "wh.duckdb") as wh:
        result = sweep(config, db=wh, workers=1, threads=1)
        assert (result.finished, result.failed) == (2, 0)
        scores = wh.scores()
        stages = wh.table("stages").sort_values(["run_id", "position"])
        predictions = wh.table("predictions")
    assert set(scores.language) == {"en", "de"}
    assert set(scores.family) == {"Indo-European"}  # from the warehouse's language table
    assert set(scores.metric) == {"accuracy"} and set(scores.n_examples) == {20}
    assert stages.groupby("run_id").task.apply(list).sort_values().tolist() == [["ner", "qa", "topic"], ["qa", "topic"]]
    qa_steps = stages[stages.task == "qa"].steps.iloc[0]
    assert qa_steps == 1  # epochs = 0.1 of 80 examples in batches of 16: ceil(0.1 * 5)
    assert len(predictions) == 2 * 2 * 20 and set(predictions.correct.unique()) <= {0, 1}
