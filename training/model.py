"""The encoder, the three task heads, and the soft prompt of prompt tuning.

The encoder is whatever ``transformers.AutoModel`` builds: a tiny random-init BERT
from a config (``name = "tiny"``), or a pretrained model by Hugging Face id or
local folder (``from_pretrained``, the same call for both). The embedded default's
``synthetic-pretrained`` is such a folder, shipped inside the package
(:mod:`seqrob.training.pretrain` made it): its name resolves to the folder's path
and it loads through ``from_pretrained`` like any other. Heads are small
modules made fresh for every stage; the encoder (and, for prompt tuning, the soft
prompt) is what carries over from one stage to the next.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import torch
from seqrob.training.config import ModelConfig, SyntheticConfig
from seqrob.warehouse.errors import ConfigError
from torch import nn
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

__all__ = [
    "Backbone",
    "ClassificationHead",
    "TaggingHead",
    "SpanHead",
    "build_tiny",
    "load_encoder",
    "quiet_progress",
    "tiny_tokenizer",
]


def tiny_tokenizer(model: ModelConfig, synthetic: SyntheticConfig) -> PreTrainedTokenizerBase:
    """The tiny model's tokenizer, trained on the synthetic corpus (cached per process)."""
    return _tiny_tokenizer(model.vocab_size, model.max_length, synthetic)


@functools.lru_cache(maxsize=2)
def _tiny_tokenizer(vocab_size: int, max_length: int, synthetic: SyntheticConfig) -> PreTrainedTokenizerBase:
    from seqrob.training.synthetic import build
    from seqrob.training.tokenizer import train_tokenizer

    return train_tokenizer(build(synthetic).corpus(), vocab_size=vocab_size, max_length=max_length)


def build_tiny(model: ModelConfig, tokenizer: PreTrainedTokenizerBase, *, seed: int) -> BertModel:
    """A randomly initialised BERT of the configured shape; ``seed`` fixes its weights."""
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=model.hidden_size,
        num_hidden_layers=model.layers,
        num_attention_heads=model.heads,
        intermediate_size=model.intermediate_size,
        hidden_dropout_prob=model.dropout,
        attention_probs_dropout_prob=0.0,  # attention dropout costs a third of a CPU step and adds little here
        max_position_embeddings=model.max_length + 64,  # room for a soft prompt
        pad_token_id=tokenizer.pad_token_id,
        type_vocab_size=2,
    )
    torch.manual_seed(seed)
    return BertModel(config, add_pooling_layer=False)


def load_encoder(
    model: ModelConfig, synthetic: SyntheticConfig | None, *, seed: int
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The encoder and its tokenizer: tiny (random init under ``seed``) or ``from_pretrained``.

    A pretrained model (hub id, folder, or a shipped name such as ``synthetic-pretrained``,
    resolved to its folder by :attr:`ModelConfig.source`) brings its weights; ``seed`` is unused then.
    """
    if model.is_tiny:
        if synthetic is None:  # the config checks this; a RunSpec built by hand may not
            raise ConfigError(
                "the tiny model needs the synthetic suite for its tokenizer - set model.name to a saved model"
            )
        tokenizer = tiny_tokenizer(model, synthetic)
        return build_tiny(model, tokenizer, seed=seed), tokenizer
    source = model.source
    try:
        with quiet_progress():  # one "Loading weights" bar per run would bury the sweep's own progress
            tokenizer = AutoTokenizer.from_pretrained(source)
            encoder = AutoModel.from_pretrained(source)
    except OSError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = "folder" if Path(source).exists() else "model id"
        raise ConfigError(
            f"cannot load model '{model.name}' ({where}): {first} - check the name, or that the hub or a local cache is reachable"
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"model '{model.name}' has no fast tokenizer - seqrob needs offsets (save a tokenizer.json with it)"
        )
    return encoder, tokenizer


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """Hide transformers' progress bars (loading and saving weights) for the while."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


class SoftPrompt(nn.Module):
    """``length`` trainable vectors inserted after the first token (Lester et al. 2021)."""

    def __init__(self, length: int, hidden_size: int, init: torch.Tensor) -> None:
        super().__init__()
        self.vectors = nn.Parameter(init.detach().clone().reshape(length, hidden_size))


class Backbone(nn.Module):
    """The encoder, plus a soft prompt when prompt tuning; gives one vector per input token."""

    def __init__(self, encoder: PreTrainedModel, *, prompt_length: int = 0, seed: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.prompt: SoftPrompt | None = None
        if prompt_length:
            # Initialise from random vocabulary embeddings, a common start for soft prompts.
            embeddings = encoder.get_input_embeddings().weight
            generator = torch.Generator().manual_seed(seed)
            rows = torch.randint(embeddings.shape[0], (prompt_length,), generator=generator)
            self.prompt = SoftPrompt(prompt_length, embeddings.shape[1], embeddings[rows])

    @property
    def hidden_size(self) -> int:
        return self.encoder.config.hidden_size

    @property
    def dropout(self) -> float:
        return float(getattr(self.encoder.config, "hidden_dropout_prob", 0.1) or 0.1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T) token ids, mask and types -> (B, T, H) hidden states."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        types = batch.get("token_type_ids")
        if self.prompt is None:
            kwargs = {"token_type_ids": types} if types is not None else {}
            return self.encoder(input_ids=ids, attention_mask=mask, **kwargs).last_hidden_state
        n, p = ids.shape[0], self.prompt.vectors.shape[0]
        embedded = self.encoder.get_input_embeddings()(ids)  # (B, T, H)
        prompt = self.prompt.vectors.unsqueeze(0).expand(n, -1, -1)  # (B, P, H)
        embedded = torch.cat([embedded[:, :1], prompt, embedded[:, 1:]], dim=1)  # (B, T+P, H)
        mask = torch.cat([mask[:, :1], mask.new_ones(n, p), mask[:, 1:]], dim=1)
        kwargs = {}
        if types is not None:
            kwargs["token_type_ids"] = torch.cat([types[:, :1], types.new_zeros(n, p), types[:, 1:]], dim=1)
        hidden = self.encoder(inputs_embeds=embedded, attention_mask=mask, **kwargs).last_hidden_state
        return torch.cat([hidden[:, :1], hidden[:, 1 + p :]], dim=1)  # (B, T, H): prompt positions dropped


class ClassificationHead(nn.Module):
    """First-token vector -> dense + tanh -> label logits (the RoBERTa/XLM-R head)."""

    def __init__(self, hidden_size: int, n_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, n_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = self.dropout(hidden[:, 0])  # (B, H)
        x = torch.tanh(self.dense(x))
        return self.out(self.dropout(x))  # (B, labels)


class TaggingHead(nn.Module):
    """Every token's vector -> tag logits."""

    def __init__(self, hidden_size: int, n_tags: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, n_tags)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(hidden))  # (B, T, tags)


class SpanHead(nn.Module):
    """Every token's vector -> start and end logits of the answer span."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.out = nn.Linear(hidden_size, 2)

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.out(hidden)  # (B, T, 2)
        return logits[..., 0], logits[..., 1]
