"""The synthetic suite: deterministic, families that share more than non-families, valid task data.

(The structure of *trained* results on the suite is checked in test_training_sweep.py.)
"""

from __future__ import annotations

import itertools

from seqrob.training.config import SyntheticConfig
from seqrob.training.synthetic import (
    FAMILIES,
    LANGUAGES,
    NER_TAGS,
    TOPIC_LABELS,
    Suite,
    build,
)

SMALL = SyntheticConfig(train_examples=50, eval_examples=40, corpus_sentences=20)


def shared_words(suite: Suite, a: str, b: str) -> float:
    """Share of concepts spelled the same in languages a and b."""
    la, lb = suite.lexicon[a], suite.lexicon[b]
    return sum(la[c] == lb[c] for c in la) / len(la)


def test_generation_is_deterministic_and_depends_on_the_seed():
    one, two = Suite(SMALL), Suite(SMALL)
    assert one.lexicon == two.lexicon and one.grammar == two.grammar
    assert one.examples("qa", "qeb", "train") == two.examples("qa", "qeb", "train")
    other = Suite(SyntheticConfig(seed=1, train_examples=50, eval_examples=40, corpus_sentences=20))
    assert other.lexicon != one.lexicon
    assert list(one.corpus()) == list(two.corpus())


def test_related_languages_share_more_words_and_word_order_than_unrelated_ones():
    suite = build(SMALL)
    family_of = suite.family_of
    pairs = list(itertools.combinations(LANGUAGES, 2))
    within = [shared_words(suite, a, b) for a, b in pairs if family_of[a] == family_of[b]]
    across = [shared_words(suite, a, b) for a, b in pairs if family_of[a] != family_of[b]]
    assert min(within) > max(across)
    assert min(across) > 0.1  # names and loanwords: something to transfer through
    for family, codes in FAMILIES.items():
        orders = [suite.grammar[c] for c in codes]
        same = sum(a == b for a, b in itertools.combinations(orders, 2))
        assert same >= 1, family  # at most one language per family differs
    assert len({suite.grammar[codes[0]].verb for codes in FAMILIES.values()}) >= 3


def test_evaluation_sets_are_parallel_across_languages():
    suite = build(SMALL)
    north, east = suite.examples("topic", "qna", "eval"), suite.examples("topic", "qea", "eval")
    assert [e.example_id for e in north] == [e.example_id for e in east]
    assert [e.label for e in north] == [e.label for e in east]
    assert [e.texts for e in north] != [e.texts for e in east]
    assert {e.label for e in north} == set(TOPIC_LABELS)
    # training sets are drawn apart per language
    assert suite.examples("ner", "qna", "train")[0].words != suite.examples("ner", "qnb", "train")[0].words


def test_task_data_is_well_formed():
    suite = build(SMALL)
    for language in LANGUAGES:
        for example in suite.examples("ner", language, "eval"):
            assert len(example.words) == len(example.tags)
            assert set(example.tags) <= set(NER_TAGS)
            assert all(
                not (t.startswith("I-") and (i == 0 or example.tags[i - 1] == "O")) for i, t in enumerate(example.tags)
            )
        for example in suite.examples("qa", language, "eval"):
            ((answer, start),) = example.answers
            assert answer and example.context[start : start + len(answer)] == answer
            assert example.question.endswith("?")
