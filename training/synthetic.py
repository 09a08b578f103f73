"""The built-in synthetic multilingual task suite (the embedded default's data).

Twelve made-up languages in four made-up families, generated deterministically
from one seed. It exists so that ``seqrob train`` runs offline on a laptop in
minutes and still produces results with real structure; it is not a stand-in for
any natural language.

How the languages are made
--------------------------
* A *concept* (a person's name, a place, a verb, "with", ...) gets one word form
  per family: about two in three names are world-wide and spelled the same in every
  language, a few loanwords come from the world-wide pool adapted to the family's
  spelling; everything else is a family proto-form built from the family's own
  letters and syllable shapes.
* Each language takes its family's forms through its own sound changes (one or two
  letter substitutions) and replaces some words outright (innovations). So related
  languages share most words exactly or up to a letter; unrelated ones share only
  adapted names and loanwords (and some subwords).
* Word order (verb position, pre- or postpositions, adjective before or after the
  noun, where negation goes) is a family trait; one language per family flips one
  parameter.

The tasks (the three kinds the field uses)
------------------------------------------
``topic`` (classification): what the event's object is: person, place,
organisation or thing. The sentence also holds a person as subject and adjuncts
("with <person>", "in <place>", "for <organisation>"), so the answer needs the
syntax of the language, not just its words. Chance is 1/4.
``ner`` (tagging): BIO tags for persons, places and organisations.
``qa`` (extractive QA): one event as context; the question asks for its subject,
object, place or companion.

Evaluation sets are parallel (the same events rendered in every language, as XNLI
and XQuAD are translations), so an ``example_id`` means the same item everywhere.
Training sets draw different events per language.

Examples
--------
>>> suite = build(SyntheticConfig(train_examples=10, eval_examples=5))
>>> suite.family_of["qna"]
'Synthetic-North'
>>> example = suite.examples("topic", "qna", "eval")[0]
>>> example.label in TOPIC_LABELS
True
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from seqrob.training.config import SyntheticConfig
from seqrob.training.examples import (
    ClassificationExample,
    Example,
    QAExample,
    TaggingExample,
)

__all__ = [
    "FAMILIES",
    "LANGUAGES",
    "TASKS",
    "TOPIC_LABELS",
    "GENERATOR",
    "Suite",
    "build",
]

# Bump when a change alters what a given seed generates (it is part of every run's config).
GENERATOR = "seqrob.synthetic/1"

# Codes come from ISO 639-3's private-use range (qaa-qtz), so they never name a real
# language; family names carry a prefix no Glottolog family has.
FAMILIES: dict[str, tuple[str, ...]] = {
    "Synthetic-North": ("qna", "qnb", "qnc"),
    "Synthetic-East": ("qea", "qeb", "qec"),
    "Synthetic-South": ("qsa", "qsb", "qsc"),
    "Synthetic-Island": ("qia", "qib", "qic"),
}
LANGUAGES: tuple[str, ...] = tuple(code for codes in FAMILIES.values() for code in codes)
TASKS: dict[str, str] = {"topic": "classification", "ner": "tagging", "qa": "qa"}
TOPIC_LABELS: tuple[str, ...] = ("person", "place", "organisation", "thing")
NER_TAGS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")

# Concept classes: how many concepts, and how likely one is a world-wide form.
_CLASSES: dict[str, tuple[int, float]] = {
    "first": (60, 0.7), "last": (30, 0.6), "place": (40, 0.6), "org": (24, 0.7), "orgword": (4, 0.0),
    "noun": (24, 0.08), "adj": (16, 0.08), "verb": (24, 0.08), "time": (6, 0.0),
    "in": (1, 0.0), "with": (1, 0.0), "for": (1, 0.0), "not": (1, 0.0),
    "who": (1, 0.0), "what": (1, 0.0), "where": (1, 0.0),
}  # fmt: skip
_FUNCTION = {"in", "with", "for", "not", "who", "what", "where", "orgword", "time"}

# Spelling of each family (and of the world-wide pool): consonants, vowels, syllable shapes.
_PHONOLOGY: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "world": ("bdfgklmnprstvz", "aeiou", ("CV", "CVC")),
    "Synthetic-North": ("ptkmnslrv", "aeiou", ("CV", "CVC")),
    "Synthetic-East": ("bdgzmnhjw", "aouy", ("CV", "CVC", "V")),
    "Synthetic-South": ("ptkfsxmnlr", "aeiu", ("CVC", "CV")),
    "Synthetic-Island": ("hkmnpwl", "aeiou", ("CV", "V")),
}
# Word order per family: (verb position, adposition, adjective, negation).
_ORDER: dict[str, tuple[str, str, str, str]] = {
    "Synthetic-North": ("SVO", "pre", "before", "before"),
    "Synthetic-East": ("SOV", "post", "before", "after"),
    "Synthetic-South": ("VSO", "pre", "after", "before"),
    "Synthetic-Island": ("SVO", "post", "after", "after"),
}
_INNOVATION = 0.2  # share of a language's content words replaced by a new word
_ENTITY = {"first": "PER", "last": "PER", "place": "LOC", "org": "ORG", "orgword": "ORG"}
_SPLITS = {"train": 0, "eval": 1, "corpus": 2}


@dataclass(frozen=True)
class Grammar:
    """A language's word order."""

    verb: str  # SVO, SOV or VSO
    adposition: str  # pre or post
    adjective: str  # before or after the noun
    negation: str  # before or after the verb


@dataclass(frozen=True)
class Phrase:
    """Concepts that render as one constituent; ``entity`` is its NER type (or None)."""

    concepts: tuple[tuple[str, int], ...]
    entity: str | None = None


@dataclass(frozen=True)
class Event:
    """One meaning: subject verb object, with adjuncts ("with", "in", "for", time)."""

    subject: Phrase
    verb: int
    obj: Phrase
    topic: str
    adjuncts: tuple[tuple[str, Phrase], ...]
    negated: bool


@dataclass(frozen=True)
class _Rendered:
    words: list[str]
    tags: list[str]
    roles: dict[str, tuple[int, int]]  # role -> [first word, last word + 1)


class Suite:
    """The generated languages and their task data (see the module docstring)."""

    def __init__(self, config: SyntheticConfig) -> None:
        self.config = config
        self.family_of = {code: family for family, codes in FAMILIES.items() for code in codes}
        root = np.random.SeedSequence([config.seed, 0])
        rng = np.random.default_rng(root)
        world = {cls: [_word(rng, "world", 2, 3) for _ in range(n)] for cls, (n, _) in _CLASSES.items()}
        is_world = {cls: rng.random(n) < p for cls, (n, p) in _CLASSES.items()}
        self.lexicon: dict[str, dict[tuple[str, int], str]] = {}
        self.grammar: dict[str, Grammar] = {}
        for family, codes in FAMILIES.items():
            adapt = _rules(rng, family, 2)
            proto = {}
            for cls, (n, _) in _CLASSES.items():
                short = cls in _FUNCTION
                for i in range(n):
                    if is_world[cls][i]:  # names keep their spelling; loanwords follow the family's
                        proto[(cls, i)] = world[cls][i] if cls in _ENTITY else _apply(adapt, world[cls][i])
                    else:
                        proto[(cls, i)] = _word(rng, family, 1 if short else 2, 2 if short else 3)
            flip = int(rng.integers(len(codes)))
            for k, code in enumerate(codes):
                changes = _rules(rng, family, 1 + k % 2)
                lexicon = {}
                for concept, form in proto.items():
                    cls = concept[0]
                    if cls in _ENTITY and is_world[cls][concept[1]]:
                        lexicon[concept] = form
                        continue
                    innovate = cls not in _ENTITY and cls not in ("who", "what", "where")
                    if innovate and rng.random() < _INNOVATION:
                        form = _word(rng, family, 1 if cls in _FUNCTION else 2, 2 if cls in _FUNCTION else 3)
                    lexicon[concept] = _apply(changes, form)
                self.lexicon[code] = _unique(lexicon)
                order = list(_ORDER[family])
                if k == flip:  # one language per family differs in one word-order parameter
                    which = int(rng.integers(1, 4))
                    order[which] = {"pre": "post", "post": "pre", "before": "after", "after": "before"}[order[which]]
                self.grammar[code] = Grammar(*order)

    # -- public ---------------------------------------------------------------------

    @property
    def languages(self) -> tuple[str, ...]:
        return LANGUAGES

    def examples(self, task: str, language: str, split: str) -> list[Example]:
        """The examples of one task in one language; ``split`` is ``train`` or ``eval``."""
        return _examples(self.config, task, language, split)

    def corpus(self) -> Iterator[str]:
        """Unlabelled sentences in every language (what the tokenizer is trained on)."""
        for language in LANGUAGES:
            rng = self._rng("corpus", language, "corpus")
            for i in range(self.config.corpus_sentences):
                event = _event(rng)
                yield " ".join(self.render(event, language).words) + " ."
                if i % 4 == 0:  # questions too, as a web corpus has them
                    yield " ".join(self.question(event, "subject" if i % 8 else "object", language))

    def render(self, event: Event, language: str) -> _Rendered:
        """One event as words of ``language``, with BIO tags and where each role is."""
        lexicon, grammar = self.lexicon[language], self.grammar[language]
        out = _Builder(lexicon)
        verb = [("verb", event.verb)]
        if event.negated:
            verb = [("not", 0), *verb] if grammar.negation == "before" else [*verb, ("not", 0)]

        def adjuncts() -> None:
            for role, phrase in event.adjuncts:
                if role == "time":
                    out.phrase(phrase, None)
                    continue
                marker = Phrase(((role, 0),))
                parts = (marker, phrase) if grammar.adposition == "pre" else (phrase, marker)
                out.phrase(parts[0], role if parts[0] is phrase else None)
                out.phrase(parts[1], role if parts[1] is phrase else None)

        obj = _ordered_np(event.obj, grammar)
        if grammar.verb == "SVO":
            out.phrase(event.subject, "subject"), out.plain(verb), out.phrase(obj, "object"), adjuncts()
        elif grammar.verb == "SOV":
            out.phrase(event.subject, "subject"), adjuncts(), out.phrase(obj, "object"), out.plain(verb)
        else:  # VSO
            out.plain(verb), out.phrase(event.subject, "subject"), out.phrase(obj, "object"), adjuncts()
        return _Rendered(out.words, out.tags, out.roles)

    def question(self, event: Event, role: str, language: str) -> list[str]:
        """A question about ``event`` asking for ``role`` (wh-word first, then the clause)."""
        lexicon, grammar = self.lexicon[language], self.grammar[language]
        word = {"subject": "who", "object": "what", "in": "where", "with": "who"}[role]
        wh = [lexicon[(word, 0)]]
        if role == "with":
            marker = lexicon[("with", 0)]
            wh = [marker, *wh] if grammar.adposition == "pre" else [*wh, marker]
        verb = [lexicon[("verb", event.verb)]]
        if role == "subject":
            return [*wh, *verb, "?"]
        subject = [lexicon[c] for c in event.subject.concepts]
        clause = [*verb, *subject] if grammar.verb == "VSO" else [*subject, *verb]
        return [*wh, *clause, "?"]

    # -- internals ------------------------------------------------------------------

    def _rng(self, task: str, language: str | None, split: str) -> np.random.Generator:
        # Evaluation sets are parallel: their stream does not depend on the language.
        lang = 0 if language is None else 1 + LANGUAGES.index(language)
        task_index = ("corpus", *TASKS).index(task)
        return np.random.default_rng(np.random.SeedSequence([self.config.seed, 1, task_index, lang, _SPLITS[split]]))


@functools.lru_cache(maxsize=4)
def build(config: SyntheticConfig) -> Suite:
    """The suite for ``config`` (cached: one per process and configuration)."""
    return Suite(config)


@functools.lru_cache(maxsize=64)
def _examples(config: SyntheticConfig, task: str, language: str, split: str) -> list[Example]:
    suite = build(config)
    if task not in TASKS:
        raise KeyError(task)
    parallel = split == "eval"
    rng = suite._rng(task, None if parallel else language, split)
    n = config.eval_examples if parallel else config.train_examples
    make = {"topic": _topic, "ner": _ner, "qa": _qa}[task]
    return [make(suite, rng, language, f"{task}-{split}-{i:05d}") for i in range(n)]


def _topic(suite: Suite, rng: np.random.Generator, language: str, example_id: str) -> ClassificationExample:
    event = _event(rng)
    words = suite.render(event, language).words
    return ClassificationExample(example_id, (" ".join(words) + " .",), event.topic)


def _ner(suite: Suite, rng: np.random.Generator, language: str, example_id: str) -> TaggingExample:
    rendered = suite.render(_event(rng), language)
    return TaggingExample(example_id, tuple([*rendered.words, "."]), tuple([*rendered.tags, "O"]))


def _qa(suite: Suite, rng: np.random.Generator, language: str, example_id: str) -> QAExample:
    event = _event(rng)
    roles = ["subject", "object", *(role for role, _ in event.adjuncts if role in ("in", "with"))]
    role = roles[int(rng.integers(len(roles)))]
    rendered = suite.render(event, language)
    first_word, end_word = rendered.roles[role]
    prefix = " ".join(rendered.words[:first_word])
    answer = " ".join(rendered.words[first_word:end_word])
    context = " ".join(rendered.words) + " ."
    question = " ".join(suite.question(event, role, language))
    return QAExample(example_id, question, context, ((answer, len(prefix) + (1 if prefix else 0)),))


def _event(rng: np.random.Generator) -> Event:
    def pick(cls: str) -> tuple[str, int]:
        return (cls, int(rng.integers(_CLASSES[cls][0])))

    def person() -> Phrase:
        if rng.random() < 0.4:
            return Phrase((pick("first"), pick("last")), "PER")
        return Phrase((pick("first"),), "PER")

    def place() -> Phrase:
        return Phrase((pick("place"),), "LOC")

    def org() -> Phrase:
        return Phrase((pick("org"), pick("orgword")), "ORG")

    def thing() -> Phrase:
        if rng.random() < 0.5:
            return Phrase((pick("adj"), pick("noun")))
        return Phrase((pick("noun"),))

    topic = TOPIC_LABELS[int(rng.integers(len(TOPIC_LABELS)))]
    obj = {"person": person, "place": place, "organisation": org, "thing": thing}[topic]()
    adjuncts = []
    for role, p, make in (("with", 0.35, person), ("in", 0.45, place), ("for", 0.25, org), ("time", 0.3, None)):
        if rng.random() < p:
            adjuncts.append((role, make() if make else Phrase((pick("time"),))))
    order = rng.permutation(len(adjuncts))
    return Event(person(), pick("verb")[1], obj, topic, tuple(adjuncts[i] for i in order), bool(rng.random() < 0.2))


def _ordered_np(phrase: Phrase, grammar: Grammar) -> Phrase:
    if phrase.entity is None and len(phrase.concepts) == 2 and grammar.adjective == "after":
        return Phrase(phrase.concepts[::-1])
    return phrase


class _Builder:
    def __init__(self, lexicon: dict[tuple[str, int], str]) -> None:
        self.lexicon = lexicon
        self.words: list[str] = []
        self.tags: list[str] = []
        self.roles: dict[str, tuple[int, int]] = {}

    def plain(self, concepts: list[tuple[str, int]]) -> None:
        for concept in concepts:
            self.words.append(self.lexicon[concept])
            self.tags.append("O")

    def phrase(self, phrase: Phrase, role: str | None) -> None:
        start = len(self.words)
        for k, concept in enumerate(phrase.concepts):
            self.words.append(self.lexicon[concept])
            self.tags.append(f"{'B' if k == 0 else 'I'}-{phrase.entity}" if phrase.entity else "O")
        if role is not None:
            self.roles[role] = (start, len(self.words))


def _word(rng: np.random.Generator, phonology: str, low: int, high: int) -> str:
    consonants, vowels, shapes = _PHONOLOGY[phonology]
    out = []
    for _ in range(int(rng.integers(low, high + 1))):
        for slot in shapes[int(rng.integers(len(shapes)))]:
            pool = consonants if slot == "C" else vowels
            out.append(pool[int(rng.integers(len(pool)))])
    return "".join(out)


def _rules(rng: np.random.Generator, family: str, n: int) -> list[tuple[str, str]]:
    """``n`` letter substitutions within the family's spelling (a sound change)."""
    consonants, vowels, _ = _PHONOLOGY[family]
    rules = []
    for _ in range(n):
        pool = consonants if rng.random() < 0.6 else vowels
        a, b = rng.choice(list(pool), size=2, replace=False)
        rules.append((str(a), str(b)))
    return rules


def _apply(rules: list[tuple[str, str]], word: str) -> str:
    for a, b in rules:
        word = word.replace(a, b)
    return word


def _unique(lexicon: dict[tuple[str, int], str]) -> dict[tuple[str, int], str]:
    """Make distinct concepts distinct words (a collision gets a letter appended)."""
    seen: dict[str, tuple[str, int]] = {}
    out = {}
    for concept, form in lexicon.items():
        while form in seen:
            form += form[-1] if len(form) < 3 else "a"
            if form in seen:
                form = form[:-1] + "e" + form[-1]
        seen[form] = concept
        out[concept] = form
    return out
