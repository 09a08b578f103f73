"""Trained results on the synthetic suite have real structure (through the real sweep and warehouse).

A reduced version of the default sweep (two orders, two seeds, both methods, 150
evaluation examples; the same shipped pretrained encoder, languages, tasks, steps
and code path) is trained into a warehouse, and its stored scores must show what
the issue asks of the default:

* fine-tuning: the source language scores best, the source's own family beats every
  other family, every language beats chance (1/4);
* prompt tuning (frozen encoder): clearly above chance everywhere, below fine-tuning
  on the source language;
* orders give measurably different outcomes in at least one family: the family
  means of two orders differ by more than 0.04 and every seed agrees on the sign.

One test function, so that pytest -n does not train the sweep twice.
``python benchmarks/training_benchmark.py`` prints the same table for the full
default sweep.
"""

from __future__ import annotations

import dataclasses

from seqrob.training.config import load_config, with_overrides
from seqrob.training.sweep import sweep
from seqrob.warehouse import Warehouse
from test_training_run import one_torch_thread  # noqa: F401 (an autouse fixture)

CHANCE = 0.25


def reduced_default():
    config = with_overrides(load_config(), orders=["none", "qa>ner"], seeds=[1, 2], experiment="structure")
    synthetic = dataclasses.replace(config.synthetic, eval_examples=150)
    return dataclasses.replace(config, synthetic=synthetic)


def test_synthetic_results_have_real_structure():
    config = reduced_default()
    assert set(config.methods) == {"finetune", "prompt"}
    with Warehouse(":memory:") as wh:
        result = sweep(config, db=wh, workers=1, threads=1)
        assert (result.finished, result.failed) == (8, 0)
        scores = wh.scores()
    source = config.source_language
    finetune, prompt = (scores[scores.method == method] for method in ("finetune", "prompt"))
    by_language = finetune.groupby("language").score.mean()

    # fine-tuning: the source language scores best
    assert by_language.idxmax() == source and by_language[source] > 0.9, by_language.to_dict()

    # the source's own family beats every other family
    others = finetune[finetune.language != source]
    by_family = others.groupby("family").score.mean()
    own = finetune.loc[finetune.language == source, "family"].iloc[0]
    assert by_family.idxmax() == own, by_family.to_dict()
    assert (by_family[own] - by_family.drop(own)).min() > 0.05, by_family.to_dict()

    # every language beats chance
    assert (by_language > CHANCE + 0.03).all(), by_language.to_dict()

    # prompt tuning learns with the encoder frozen: clearly above chance, below fine-tuning on the source
    prompted = prompt.groupby("language").score.mean()
    assert (prompted > CHANCE + 0.1).all(), prompted.to_dict()
    assert prompted[source] < by_language[source], (prompted[source], by_language[source])

    # orders differ measurably in some family: a clear mean difference, the same sign for every seed
    seeds = others.groupby(["family", "order", "seed"]).score.mean().unstack("order")
    differences = seeds["qa>ner"] - seeds["none"]
    clear = [
        family
        for family, diff in differences.groupby("family")
        if abs(diff.mean()) > 0.04 and ((diff > 0).all() or (diff < 0).all())
    ]
    assert clear, differences.to_dict()
