"""One example of each task kind, as every data source (synthetic, ``datasets``, files) yields it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClassificationExample", "TaggingExample", "QAExample", "Example"]


@dataclass(frozen=True)
class ClassificationExample:
    """A sentence (one text) or a sentence pair (two texts) and its label."""

    example_id: str
    texts: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class TaggingExample:
    """Words and one tag per word (BIO for entities; any tag set for POS-style tagging)."""

    example_id: str
    words: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class QAExample:
    """A question, its context and the gold answers as ``(text, character start)``."""

    example_id: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]


Example = ClassificationExample | TaggingExample | QAExample
