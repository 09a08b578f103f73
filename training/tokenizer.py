"""A WordPiece tokenizer whose vocabulary is trained locally with ``tokenizers``, wrapped for ``transformers``.

The tiny model (random init) has no pretrained vocabulary; its tokenizer learns one
from the synthetic suite's unlabelled corpus (the shipped ``synthetic-pretrained``
encoder's tokenizer was made the same way, by :mod:`seqrob.training.pretrain`, and
ships beside its weights) (every language, as a multilingual
model's vocabulary does): the most frequent words as whole tokens (the
``tokenizers`` word-level trainer), and every character seen, alone and as a
``##`` continuation, so a word outside the vocabulary is spelled out rather than
lost. Whole words keep inputs short, which is most of a tiny model's speed on a
CPU; and unlike the BPE and WordPiece trainers of ``tokenizers``, whose
tie-breaking differs from run to run, this vocabulary is the same every time,
which keeps runs reproducible.

Wrapped as a :class:`~transformers.PreTrainedTokenizerFast`, it saves and loads
with ``save_pretrained`` / ``AutoTokenizer.from_pretrained`` like any hub
tokenizer, so the rest of the training code cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import PreTrainedTokenizerFast

__all__ = ["SPECIAL_TOKENS", "train_tokenizer"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_tokenizer(corpus: Iterable[str], *, vocab_size: int, max_length: int) -> PreTrainedTokenizerFast:
    """Learn a vocabulary from ``corpus``; deterministic for a given corpus.

    Parameters
    ----------
    corpus
        Sentences (whitespace and punctuation separate words).
    vocab_size
        Most whole words to keep (special tokens and characters come on top).
    max_length
        The tokenizer's ``model_max_length``.

    Returns
    -------
    transformers.PreTrainedTokenizerFast
        BERT-style: ``[CLS] a [SEP]`` and ``[CLS] a [SEP] b [SEP]`` with token type ids.
    """
    normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    words.normalizer, words.pre_tokenizer = normalizer, pre_tokenizer
    sentences = list(corpus)
    words.train_from_iterator(
        sentences,
        trainer=trainers.WordLevelTrainer(
            vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False
        ),
    )
    learned = sorted(words.get_vocab().items(), key=lambda item: item[1])  # specials first, then by frequency
    characters = sorted({ch for sentence in sentences for ch in normalizer.normalize_str(sentence) if not ch.isspace()})
    vocab: dict[str, int] = {}
    for token in [t for t, _ in learned] + characters + ["##" + ch for ch in characters]:
        vocab.setdefault(token, len(vocab))
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizer, pre_tokenizer
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )
