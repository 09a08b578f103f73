"""The shipped pretrained encoder: masked-language-model pretraining of the tiny BERT on the synthetic suite.

The embedded default fine-tunes (and prompt-tunes) an encoder that already knows
the twelve synthetic languages, as XLM-R knows a hundred real ones: a BERT of the
tiny model's shape (hidden 64, 2 layers, 4 heads, intermediate 128, 64 tokens),
pretrained with masked language modelling on the unlabelled corpora of all twelve
languages (:meth:`seqrob.training.synthetic.Suite.corpus`, the languages of
synthetic seed 0), with the tokenizer of :mod:`seqrob.training.tokenizer` trained
on the same corpus. The result ships in ``training/pretrained/synthetic-pretrained/``
(``save_pretrained``: ``config.json``, ``model.safetensors``, ``tokenizer.json``, ...);
``[model] name = "synthetic-pretrained"`` resolves to that folder, which
``AutoModel.from_pretrained`` loads like any hub model (into a ``BertModel``).

Regenerate the shipped folder (deterministic: fixed seeds, one torch thread,
``torch.use_deterministic_algorithms``; about a minute on one CPU core)::

    python -m seqrob.training.pretrain                 # into the package's folder
    python -m seqrob.training.pretrain --out /tmp/x    # anywhere else

A rerun on the same machine gives the same bytes; on another CPU the weights may
differ in the last bits (floating-point kernels differ), not more. ``pretraining.json``
beside the weights records the recipe and the final MLM losses.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NAME", "PretrainConfig", "pretrain", "shipped_folder", "main"]

NAME = "synthetic-pretrained"  # the [model] name that resolves to the shipped folder
COMMAND = "python -m seqrob.training.pretrain"


def shipped_folder() -> Path:
    """Where the shipped encoder lives (inside the installed package)."""
    from seqrob.training.config import shipped_model_path

    return shipped_model_path(NAME)


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines the pretrained weights (recorded in ``pretraining.json``)."""

    synthetic_seed: int = 0  # the languages (their lexicons and grammars) of this synthetic seed
    corpus_sentences: int = 2000  # per language (plus one question per four sentences)
    vocab_size: int = 1500  # most whole words (the corpus has about 1,260; characters come on top)
    max_length: int = 64  # tokens per input (the tokenizer's model_max_length)
    prompt_room: int = 64  # extra positions for a soft prompt (max_position_embeddings = max_length + this)
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    intermediate_size: int = 128
    dropout: float = 0.1  # hidden dropout (what fine-tuning uses too); attention dropout is 0
    steps: int = 2500
    batch_size: int = 64
    learning_rate: float = 2e-3
    warmup: float = 0.05  # share of the steps with a rising learning rate, then linear decay to 0
    weight_decay: float = 0.01
    mask_probability: float = 0.15  # of the word tokens; 80% [MASK], 10% a random token, 10% kept
    held_out: float = 0.05  # share of the corpus kept apart to measure the final MLM loss
    seed: int = 0  # weights, masks, batch order


Report = Callable[[dict], None]


def pretrain(
    config: PretrainConfig = PretrainConfig(), out: str | Path | None = None, *, report: Report | None = None
) -> dict:
    """Pretrain and save into ``out`` (default: the shipped folder); return the summary also written there.

    Runs on the CPU with one torch thread and deterministic algorithms (the caller's
    settings are restored after).
    """
    import torch

    out = Path(out) if out is not None else shipped_folder()
    with _deterministic(torch):
        started = time.perf_counter()
        summary = _pretrain(config, out, report or (lambda event: None))
        seconds = time.perf_counter() - started
    return summary | {"seconds": round(seconds, 1)}


@contextlib.contextmanager
def _deterministic(torch) -> Iterator[None]:
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    state = torch.random.get_rng_state()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.random.set_rng_state(state)


def _pretrain(config: PretrainConfig, out: Path, report: Report) -> dict:
    import numpy as np
    import torch
    from seqrob.training.config import SyntheticConfig
    from seqrob.training.model import quiet_progress
    from seqrob.training.synthetic import LANGUAGES, Suite
    from seqrob.training.tokenizer import train_tokenizer
    from transformers import BertConfig, BertForMaskedLM, BertModel

    synthetic = SyntheticConfig(seed=config.synthetic_seed, corpus_sentences=config.corpus_sentences)
    sentences = list(Suite(synthetic).corpus())
    tokenizer = train_tokenizer(sentences, vocab_size=config.vocab_size, max_length=config.max_length)
    ids = tokenizer(sentences, truncation=True, max_length=config.max_length)["input_ids"]
    order = np.random.default_rng(np.random.SeedSequence([config.seed, 0])).permutation(len(ids))
    n_held = int(round(config.held_out * len(ids)))
    held, train = [ids[i] for i in order[:n_held]], [ids[i] for i in order[n_held:]]

    bert = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        intermediate_size=config.intermediate_size,
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=config.max_length + config.prompt_room,
        pad_token_id=tokenizer.pad_token_id,
        type_vocab_size=2,
    )
    torch.manual_seed(config.seed)
    model = BertForMaskedLM(bert)
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    masks = torch.Generator().manual_seed(config.seed + 1)
    batches = np.random.default_rng(np.random.SeedSequence([config.seed, 1]))

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    rest = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
    rise = max(1, int(config.warmup * config.steps))

    def factor(step: int) -> float:
        return (step + 1) / rise if step < rise else max(0.0, (config.steps - step) / max(1, config.steps - rise))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    model.train()
    losses: list[float] = []
    permutation, cursor = batches.permutation(len(train)), 0
    for step in range(config.steps):
        if cursor + config.batch_size > len(train):
            permutation, cursor = batches.permutation(len(train)), 0
        chosen = [train[i] for i in permutation[cursor : cursor + config.batch_size]]
        cursor += config.batch_size
        inputs, attention, labels = _masked(chosen, tokenizer, special, config.mask_probability, masks)
        loss = _mlm_loss(model, inputs, attention, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        value = float(loss.item())
        if not math.isfinite(value):
            raise RuntimeError(f"MLM pretraining diverged at step {step + 1} (loss {value})")
        losses.append(value)
        if step % 250 == 0 or step == config.steps - 1:
            report({"step": step + 1, "steps": config.steps, "loss": value})

    held_loss, held_accuracy = _held_out(model, held, tokenizer, special, config)
    encoder = _encoder(model, bert, config.seed, BertModel)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_progress():
        encoder.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    _portable_tokenizer_config(out)
    tail = losses[-max(1, config.steps // 10) :]
    summary = {
        "name": NAME,
        "command": COMMAND,
        "recipe": dataclasses.asdict(config),
        "corpus": {
            "languages": list(LANGUAGES),
            "sentences": len(sentences),
            "train_sentences": len(train),
            "held_out_sentences": len(held),
            "tokens": int(sum(len(s) for s in ids)),
        },
        "vocabulary": len(tokenizer),
        "parameters": int(sum(p.numel() for p in encoder.parameters())),
        "final_train_mlm_loss": round(float(np.mean(tail)), 4),  # mean of the last tenth of the steps
        "held_out_mlm_loss": round(held_loss, 4),
        "held_out_mlm_accuracy": round(held_accuracy, 4),
    }
    (out / "pretraining.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(_readme(summary), encoding="utf-8")
    return summary


def _portable_tokenizer_config(out: Path) -> None:
    """Name the tokenizer class ``PreTrainedTokenizerFast``, which transformers 4 and 5 both load
    (transformers 5 writes its own ``TokenizersBackend``, unknown to 4)."""
    path = out / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _masked(batch: list[list[int]], tokenizer, special, probability: float, generator):
    """Pad ``batch``; mask a share of its word tokens as BERT does (80/10/10)."""
    import torch

    width = max(len(ids) for ids in batch)
    inputs = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
    for row, ids in enumerate(batch):
        inputs[row, : len(ids)] = torch.tensor(ids)
    attention = (inputs != tokenizer.pad_token_id).long()
    words = ~torch.isin(inputs, special)
    chosen = (torch.rand(inputs.shape, generator=generator) < probability) & words
    labels = torch.where(chosen, inputs, torch.full_like(inputs, -100))
    draw = torch.rand(inputs.shape, generator=generator)
    random_tokens = torch.randint(len(special), len(tokenizer), inputs.shape, generator=generator)
    inputs = torch.where(chosen & (draw < 0.8), torch.full_like(inputs, tokenizer.mask_token_id), inputs)
    inputs = torch.where(chosen & (draw >= 0.8) & (draw < 0.9), random_tokens, inputs)
    return inputs, attention, labels


def _mlm_loss(model, inputs, attention, labels):
    """Cross-entropy over the masked positions only (the vocabulary projection of the others is wasted work)."""
    import torch

    hidden = model.bert(input_ids=inputs, attention_mask=attention).last_hidden_state
    scored = labels != -100
    logits = model.cls(hidden[scored])
    return torch.nn.functional.cross_entropy(logits, labels[scored])


def _held_out(model, held: list[list[int]], tokenizer, special, config: PretrainConfig) -> tuple[float, float]:
    """MLM loss and accuracy on the held-out sentences, under fixed masks."""
    import torch

    generator = torch.Generator().manual_seed(config.seed + 2)
    model.eval()
    total_loss, total_correct, total = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, len(held), 256):
            inputs, attention, labels = _masked(
                held[start : start + 256], tokenizer, special, config.mask_probability, generator
            )
            hidden = model.bert(input_ids=inputs, attention_mask=attention).last_hidden_state
            scored = labels != -100
            logits = model.cls(hidden[scored])
            total_loss += float(torch.nn.functional.cross_entropy(logits, labels[scored], reduction="sum"))
            total_correct += int((logits.argmax(-1) == labels[scored]).sum())
            total += int(scored.sum())
    model.train()
    return total_loss / max(1, total), total_correct / max(1, total)


def _encoder(model, bert, seed: int, BertModel):
    """The MLM model's encoder as a ``BertModel`` with a pooler, so ``AutoModel`` loads every weight.

    The pooler (unused by seqrob, which reads the last hidden states) gets a seeded init.
    """
    import torch

    torch.manual_seed(seed + 3)
    encoder = BertModel(bert, add_pooling_layer=True)
    missing, unexpected = encoder.load_state_dict(model.bert.state_dict(), strict=False)
    assert not unexpected and all(name.startswith("pooler.") for name in missing), (missing, unexpected)
    return encoder


def _readme(summary: dict) -> str:
    recipe, corpus = summary["recipe"], summary["corpus"]
    return f"""# {summary["name"]}

A tiny BERT (hidden {recipe["hidden_size"]}, {recipe["layers"]} layers, {recipe["heads"]} heads,
intermediate {recipe["intermediate_size"]}, {summary["parameters"]:,} parameters, vocabulary {summary["vocabulary"]})
pretrained with masked language modelling on seqrob's synthetic suite: the unlabelled corpora of all
{len(corpus["languages"])} made-up languages of synthetic seed {recipe["synthetic_seed"]} ({corpus["sentences"]:,} sentences,
{recipe["corpus_sentences"]:,} per language plus questions; {corpus["tokens"]:,} tokens). Not a model of any real language.

Made by `{summary["command"]}` (seqrob/training/pretrain.py): {recipe["steps"]:,} steps of batch {recipe["batch_size"]},
AdamW lr {recipe["learning_rate"]:g} (warm-up {recipe["warmup"]:g}, linear decay), {recipe["mask_probability"]:.0%} of word tokens masked
(80% [MASK], 10% random, 10% kept), seed {recipe["seed"]}, one torch thread, deterministic algorithms.
Tokenizer: seqrob.training.tokenizer.train_tokenizer on the same corpus.

Final MLM loss: {summary["final_train_mlm_loss"]} (training, last tenth of the steps);
held-out {summary["held_out_mlm_loss"]} (accuracy {summary["held_out_mlm_accuracy"]:.1%}) on {corpus["held_out_sentences"]:,} sentences kept apart.

Load it as `[model] name = "{summary["name"]}"` in a seqrob sweep config, or directly with
`AutoModel.from_pretrained(<this folder>)` / `AutoTokenizer.from_pretrained(<this folder>)`.
`pretraining.json` holds the full recipe.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder to write (default: the shipped folder)")
    parser.add_argument("--steps", type=int, default=None, help="override the number of steps (not the shipped recipe)")
    args = parser.parse_args(argv)
    config = PretrainConfig() if args.steps is None else dataclasses.replace(PretrainConfig(), steps=args.steps)
    out = args.out if args.out is not None else shipped_folder()

    def show(event: dict) -> None:
        print(f"  step {event['step']:>5}/{event['steps']}  MLM loss {event['loss']:.3f}", flush=True)

    print(f"pretraining {NAME} into {out}", flush=True)
    summary = pretrain(config, out, report=show)
    print(
        f"done in {summary['seconds']} s: final MLM loss {summary['final_train_mlm_loss']} (train),"
        f" {summary['held_out_mlm_loss']} (held out, accuracy {summary['held_out_mlm_accuracy']:.1%})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
