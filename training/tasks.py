"""The three task kinds: how examples become model inputs, the loss, and per-example evaluation.

==============  =================================  =====================================
kind            per-example outcome (predictions)  scores (per language)
==============  =================================  =====================================
classification  ``correct`` (0/1)                  ``accuracy``
tagging         ``tp, fp, fn`` of entity spans     ``f1`` from the summed counts
qa              ``value`` = token F1               ``f1`` (mean) and ``em`` (exact match)
==============  =================================  =====================================

Tagging scores are entity-level (BIO spans must match exactly, as seqeval and
XTREME's WikiANN score them); a tag without a ``B-``/``I-`` prefix other than
``O`` is a one-word span, so POS-style tag sets score as per-word F1. QA follows
SQuAD: lower-cased, punctuation removed, whitespace tokens; contexts longer than
the model's input are read in overlapping windows and the best span over all
windows wins.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from seqrob.training.examples import (
    Example,
)
from seqrob.training.model import ClassificationHead, SpanHead, TaggingHead
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

__all__ = ["Task", "ClassificationTask", "TaggingTask", "QATask", "make_task", "entity_spans", "answer_f1"]

IGNORE = -100
MAX_ANSWER_TOKENS = 30

Feature = dict[str, object]


class Task:
    """What a task kind knows; subclasses fill in the four steps."""

    kind = ""

    def __init__(self, name: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.labels = tuple(labels)
        self.index = {label: i for i, label in enumerate(self.labels)}

    def head(self, hidden_size: int, dropout: float) -> nn.Module:
        raise NotImplementedError

    def features(
        self, examples: Sequence[Example], tokenizer: PreTrainedTokenizerBase, max_length: int
    ) -> list[Feature]:
        raise NotImplementedError

    def loss(self, head: nn.Module, hidden: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def outputs(self, head: nn.Module, hidden: torch.Tensor, batch: dict[str, torch.Tensor]) -> list:
        """One prediction per feature of the batch (plain Python/numpy values)."""
        raise NotImplementedError

    def outcomes(self, examples: Sequence[Example], features: Sequence[Feature], outputs: Sequence) -> pd.DataFrame:
        """Per-example outcomes: ``example_id`` and the kind's outcome columns."""
        raise NotImplementedError

    def scores(self, outcomes: pd.DataFrame) -> dict[str, float]:
        """Metric -> score over one language's outcomes."""
        raise NotImplementedError

    def collate(self, features: Sequence[Feature], pad_id: int) -> dict[str, torch.Tensor]:
        """Pad a list of features into (B, T) tensors."""
        width = max(len(f["input_ids"]) for f in features)
        batch = {
            "input_ids": _pad([f["input_ids"] for f in features], width, pad_id),
            "attention_mask": _pad([[1] * len(f["input_ids"]) for f in features], width, 0),
        }
        if "token_type_ids" in features[0]:
            batch["token_type_ids"] = _pad([f["token_type_ids"] for f in features], width, 0)
        return batch


class ClassificationTask(Task):
    kind = "classification"

    def head(self, hidden_size: int, dropout: float) -> nn.Module:
        return ClassificationHead(hidden_size, len(self.labels), dropout)

    def features(self, examples, tokenizer, max_length):
        texts = list(zip(*(e.texts for e in examples)))
        encoded = tokenizer(*[list(t) for t in texts], truncation=True, max_length=max_length)
        out = []
        for i, example in enumerate(examples):
            feature = _inputs(encoded, i)
            feature["label"] = self.index.get(example.label, IGNORE)
            out.append(feature)
        return out

    def collate(self, features, pad_id):
        batch = super().collate(features, pad_id)
        batch["label"] = torch.tensor([f["label"] for f in features])
        return batch

    def loss(self, head, hidden, batch):
        return F.cross_entropy(head(hidden), batch["label"], ignore_index=IGNORE)

    def outputs(self, head, hidden, batch):
        return head(hidden).argmax(-1).cpu().tolist()

    def outcomes(self, examples, features, outputs):
        correct = [int(f["label"] == pred) for f, pred in zip(features, outputs)]
        return pd.DataFrame({"example_id": [e.example_id for e in examples], "correct": correct})

    def scores(self, outcomes):
        return {"accuracy": float(outcomes["correct"].mean())}


class TaggingTask(Task):
    kind = "tagging"

    def head(self, hidden_size: int, dropout: float) -> nn.Module:
        return TaggingHead(hidden_size, len(self.labels), dropout)

    def features(self, examples, tokenizer, max_length):
        encoded = tokenizer(
            [list(e.words) for e in examples], is_split_into_words=True, truncation=True, max_length=max_length
        )
        out = []
        for i, example in enumerate(examples):
            feature = _inputs(encoded, i)
            labels, first = [], []  # first: token position of each word's first piece
            previous = None
            for position, word in enumerate(encoded.word_ids(i)):
                if word is None or word == previous:
                    labels.append(IGNORE)
                else:
                    labels.append(self.index.get(example.tags[word], IGNORE))
                    first.append(position)
                previous = word
            feature["labels"], feature["first"] = labels, first
            out.append(feature)
        return out

    def collate(self, features, pad_id):
        batch = super().collate(features, pad_id)
        batch["labels"] = _pad([f["labels"] for f in features], batch["input_ids"].shape[1], IGNORE)
        return batch

    def loss(self, head, hidden, batch):
        logits = head(hidden)  # (B, T, tags)
        return F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE)

    def outputs(self, head, hidden, batch):
        return list(head(hidden).argmax(-1).cpu().numpy())

    def outcomes(self, examples, features, outputs):
        rows = []
        for example, feature, predicted in zip(examples, features, outputs):
            tags = [self.labels[int(predicted[p])] for p in feature["first"]]
            tags += ["O"] * (len(example.words) - len(tags))  # words cut off by truncation: predicted O
            gold, guess = entity_spans(example.tags), entity_spans(tags)
            tp = len(gold & guess)
            rows.append((example.example_id, tp, len(guess) - tp, len(gold) - tp))
        return pd.DataFrame(rows, columns=["example_id", "tp", "fp", "fn"])

    def scores(self, outcomes):
        tp, fp, fn = (int(outcomes[c].sum()) for c in ("tp", "fp", "fn"))
        return {"f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0}


class QATask(Task):
    kind = "qa"

    def head(self, hidden_size: int, dropout: float) -> nn.Module:
        return SpanHead(hidden_size)

    def features(self, examples, tokenizer, max_length):
        encoded = tokenizer(
            [e.question for e in examples], [e.context for e in examples],
            truncation="only_second", max_length=max_length, stride=max_length // 4,
            return_overflowing_tokens=True, return_offsets_mapping=True,
        )  # fmt: skip
        out = []
        for i, example_index in enumerate(encoded["overflow_to_sample_mapping"]):
            example = examples[example_index]
            feature = _inputs(encoded, i)
            sequence = encoded.sequence_ids(i)
            offsets = [o if s == 1 else None for o, s in zip(encoded["offset_mapping"][i], sequence)]
            start = end = 0  # the first token stands for "the answer is not in this window"
            if example.answers:
                text, char_start = example.answers[0]
                char_end = char_start + len(text)
                inside = [p for p, o in enumerate(offsets) if o is not None and o[0] < char_end and o[1] > char_start]
                if inside and offsets[inside[0]][0] <= char_start and offsets[inside[-1]][1] >= char_end:
                    start, end = inside[0], inside[-1]
            feature |= {"start": start, "end": end, "example": int(example_index), "offsets": offsets}
            out.append(feature)
        return out

    def collate(self, features, pad_id):
        batch = super().collate(features, pad_id)
        batch["start"] = torch.tensor([f["start"] for f in features])
        batch["end"] = torch.tensor([f["end"] for f in features])
        return batch

    def loss(self, head, hidden, batch):
        start, end = head(hidden)  # (B, T) each
        pad = batch["attention_mask"] == 0
        start, end = start.masked_fill(pad, -1e4), end.masked_fill(pad, -1e4)
        return (F.cross_entropy(start, batch["start"]) + F.cross_entropy(end, batch["end"])) / 2

    def outputs(self, head, hidden, batch):
        start, end = head(hidden)
        return list(zip(start.float().cpu().numpy(), end.float().cpu().numpy()))

    def outcomes(self, examples, features, outputs):
        best: dict[int, tuple[float, str]] = {}
        for feature, (start, end) in zip(features, outputs):
            span = _best_span(start, end, feature["offsets"])
            if span is None:
                continue
            score, (char_start, char_end) = span
            index = feature["example"]
            if index not in best or score > best[index][0]:
                best[index] = (score, examples[index].context[char_start:char_end])
        rows = []
        for index, example in enumerate(examples):
            predicted = best.get(index, (0.0, ""))[1]
            golds = [text for text, _ in example.answers] or [""]
            f1 = max(answer_f1(predicted, gold) for gold in golds)
            em = max(float(_normalize(predicted) == _normalize(gold)) for gold in golds)
            rows.append((example.example_id, f1, em))
        return pd.DataFrame(rows, columns=["example_id", "value", "em"])

    def scores(self, outcomes):
        return {"f1": float(outcomes["value"].mean()), "em": float(outcomes["em"].mean())}


def make_task(kind: str, name: str, labels: Sequence[str] = ()) -> Task:
    """The :class:`Task` of a kind (``classification``, ``tagging`` or ``qa``)."""
    return {"classification": ClassificationTask, "tagging": TaggingTask, "qa": QATask}[kind](name, labels)


def entity_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """``(first, last, type)`` of every span in a BIO sequence (an ``I-`` after ``O`` starts one).

    >>> sorted(entity_spans(["B-PER", "I-PER", "O", "I-LOC", "NOUN"]))
    [(0, 1, 'PER'), (3, 3, 'LOC'), (4, 4, 'NOUN')]
    """
    spans, start, kind = set(), None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-") if tag[:2] in ("B-", "I-") else ("", "", tag)
        continues = prefix == "I" and kind == label and start is not None
        if start is not None and not continues:
            spans.add((start, i - 1, kind))
            start, kind = None, None
        if tag == "O" or continues:
            continue
        if prefix in ("B", "I"):
            start, kind = i, label
        else:  # a plain tag is a one-word span
            spans.add((i, i, label))
    return spans


def answer_f1(predicted: str, gold: str) -> float:
    """SQuAD token F1 between two answer strings.

    >>> answer_f1("the big house", "big house")
    0.8
    """
    guess, truth = _normalize(predicted).split(), _normalize(gold).split()
    if not guess or not truth:
        return float(guess == truth)
    common = sum((Counter(guess) & Counter(truth)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(guess), common / len(truth)
    return 2 * precision * recall / (precision + recall)


def _normalize(text: str) -> str:
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text.lower())
    return re.sub(r"\s+", " ", text).strip()


def _best_span(start: np.ndarray, end: np.ndarray, offsets: Sequence) -> tuple[float, tuple[int, int]] | None:
    context = np.array([o is not None for o in offsets] + [False] * (len(start) - len(offsets)))
    if not context.any():
        return None
    scores = start[:, None] + end[None, :]  # (T, T): span i..j
    n = len(start)
    i, j = np.indices((n, n))
    allowed = (j >= i) & (j - i < MAX_ANSWER_TOKENS) & context[:, None] & context[None, :]
    scores = np.where(allowed, scores, -np.inf)
    flat = int(np.argmax(scores))
    a, b = divmod(flat, n)
    return float(scores[a, b]), (offsets[a][0], offsets[b][1])


def _inputs(encoded, i: int) -> Feature:
    feature: Feature = {"input_ids": encoded["input_ids"][i]}
    if "token_type_ids" in encoded:
        feature["token_type_ids"] = encoded["token_type_ids"][i]
    return feature


def _pad(rows: Sequence[Sequence[int]], width: int, value: int) -> torch.Tensor:
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for k, row in enumerate(rows):
        out[k, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out
