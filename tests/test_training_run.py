"""One run: determinism, seeds, divergence, prompt tuning, and the three task kinds' evaluation.

Runs here use a tiny configuration (a 1-layer, 32-wide encoder, a few steps per
stage, four evaluation languages): they check the code path, not the accuracy.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from seqrob.training.config import parse_config, plan
from seqrob.training.examples import QAExample, TaggingExample
from seqrob.training.model import Backbone, load_encoder
from seqrob.training.run import _seed, run, train
from seqrob.training.tasks import QATask, TaggingTask, answer_f1, entity_spans
from seqrob.warehouse import Warehouse


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread, and the machine may be shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_table(**top) -> dict:
    """A sweep config small enough for tests (a few seconds per run)."""
    table = {
        "experiment": "tiny",
        "source_language": "qna",
        "target": "topic",
        "orders": ["none", "ner>qa"],
        "seeds": {"init": [1]},
        "model": {
            "max_length": 48,
            "hidden_size": 32,
            "layers": 1,
            "heads": 2,
            "intermediate_size": 64,
            "vocab_size": 400,
        },
        "synthetic": {"train_examples": 120, "eval_examples": 24, "corpus_sentences": 150},
        "evaluation": {"languages": ["qna", "qnb", "qea", "qsa"], "batch_size": 64},
        "tasks": {
            "topic": {"kind": "classification", "steps": 8, "batch_size": 16, "learning_rate": 3e-3},
            "ner": {
                "kind": "tagging",
                "languages": ["qna", "qea"],
                "steps": 6,
                "batch_size": 16,
                "learning_rate": 3e-3,
            },
            "qa": {"kind": "qa", "steps": 6, "batch_size": 16, "learning_rate": 3e-3},
        },
    }
    table.update(copy.deepcopy(top))
    return table


def tiny_runs(**top):
    return plan(parse_config(tiny_table(**top)))


def test_same_seeds_give_the_same_scores_and_outcomes():
    spec = tiny_runs(orders=["ner>qa"])[0]
    first, second = run(spec), run(spec)
    assert first.status == second.status == "finished"
    pd.testing.assert_frame_equal(first.scores, second.scores)
    pd.testing.assert_frame_equal(first.predictions, second.predictions)
    assert [s.final_loss for s in first.stages] == [s.final_loss for s in second.stages]
    assert [s.task for s in first.stages] == ["ner", "qa", "topic"]
    assert set(first.scores.language) == {"qna", "qnb", "qea", "qsa"}
    assert set(first.predictions.columns) == {"task", "language", "example_id", "correct"}
    assert first.families["qea"] == "Synthetic-East"


def test_init_and_data_seeds_each_change_the_run():
    (base,) = tiny_runs(orders=["none"])
    other_init = dataclasses.replace(base, init_seed=2)
    other_data = dataclasses.replace(base, data_seed=2)
    losses = {name: run(spec).stages[0].final_loss for name, spec in
              [("base", base), ("init", other_init), ("data", other_data)]}  # fmt: skip
    assert len(set(losses.values())) == 3
    record = run(other_data)
    assert (record.seed, record.data_seed) == (1, 2)


def test_a_diverging_stage_fails_the_run_with_the_reason_and_the_sweep_goes_on():
    from seqrob.training.sweep import sweep

    table = tiny_table(orders=["none", "ner"], seeds={"init": [1]})
    table["tasks"]["ner"]["learning_rate"] = 1e9
    config = parse_config(table)
    with Warehouse(":memory:") as wh:
        result = sweep(config, db=wh, workers=1, threads=1)
        assert (result.finished, result.failed) == (1, 1)
        failed = wh.info().failed
        assert len(failed) == 1 and failed.order.iloc[0] == "ner"
        assert (
            "stage 1 (ner) diverged" in failed.failure.iloc[0] and "lower the learning rate" in failed.failure.iloc[0]
        )
        assert wh.scores().order.unique().tolist() == ["none"]
        # a rerun skips the failed run too: the set of runs stays the same
        again = sweep(config, db=wh, workers=1, threads=1)
        assert (again.skipped, again.finished, again.failed) == (2, 0, 0)


def test_prompt_tuning_leaves_the_encoder_unchanged_and_trains_the_prompt():
    (spec,) = tiny_runs(orders=["ner"], methods=["prompt"], prompt={"length": 4, "learning_rate": 1e-2})
    trained = train(spec)
    fresh, _ = load_encoder(spec.model, spec.synthetic, seed=_seed(spec.init_seed, 0, "encoder"))
    after = trained.backbone.encoder.state_dict()
    for name, weight in fresh.state_dict().items():
        assert torch.equal(weight, after[name]), name
    initial = Backbone(fresh, prompt_length=4, seed=_seed(spec.init_seed, 0, "prompt")).prompt.vectors.detach()
    prompt = trained.backbone.prompt.vectors.detach()
    assert prompt.shape == initial.shape == (4, fresh.config.hidden_size)
    assert not torch.allclose(prompt, initial)  # the prompt moved off its initialisation
    record = run(spec)
    assert record.status == "finished" and record.method == "prompt"
    assert record.config["prompt"] == {"length": 4, "learning_rate": 0.01}


def test_entity_spans_and_counts():
    assert entity_spans(["B-PER", "I-PER", "O", "B-LOC", "I-ORG"]) == {(0, 1, "PER"), (3, 3, "LOC"), (4, 4, "ORG")}
    task = TaggingTask("ner", ["O", "B-PER", "I-PER", "B-LOC"])
    example = TaggingExample("e1", ("a", "b", "c", "d"), ("B-PER", "I-PER", "O", "B-LOC"))
    # predicted: B-PER O O B-LOC (the PER span is cut short: one fp, one fn; LOC right)
    feature = {"first": [1, 2, 3, 4]}
    predicted = np.array([0, 1, 0, 0, 3, 0])
    outcomes = task.outcomes([example], [feature], [predicted])
    assert outcomes[["tp", "fp", "fn"]].iloc[0].tolist() == [1, 1, 1]
    assert task.scores(outcomes)["f1"] == pytest.approx(0.5)


def test_answer_f1_is_squad_token_f1():
    assert answer_f1("the big house", "big house") == pytest.approx(0.8)
    assert answer_f1("Paris.", "paris") == 1.0
    assert answer_f1("", "x") == 0.0


def test_long_qa_contexts_are_read_in_windows():
    from seqrob.training.model import tiny_tokenizer

    (spec,) = tiny_runs(orders=["none"])
    tokenizer = tiny_tokenizer(spec.model, spec.synthetic)
    words = [f"w{i}" for i in range(60)]
    context = " ".join(words)
    start = context.index("w55")
    example = QAExample("q1", "w55 ?", context, (("w55 w56", start),))
    task = QATask("qa")
    features = task.features([example], tokenizer, 32)
    assert len(features) > 1
    hits = [f for f in features if f["start"] > 0]
    assert hits, "the answer is in some window"
    outputs = []
    for feature in features:  # logits that point at the gold span where it is, nowhere else
        n = len(feature["input_ids"])
        start_logits, end_logits = np.zeros(n), np.zeros(n)
        if feature["start"] > 0:
            start_logits[feature["start"]], end_logits[feature["end"]] = 10.0, 10.0
        outputs.append((start_logits, end_logits))
    outcomes = task.outcomes([example], features, outputs)
    assert outcomes.value.iloc[0] == 1.0 and outcomes.em.iloc[0] == 1.0


def test_max_train_examples_caps_each_training_language():
    from seqrob.training.data import load_task

    spec, = tiny_runs(orders=["ner"])
    stage = dataclasses.replace(spec.stages[0], max_train_examples=10)
    data = load_task(stage, synthetic=spec.synthetic)
    assert stage.languages == ("qna", "qea") and len(data.train) == 20
    assert data.train[10].words != data.train[0].words  # the second ten are the second language's
