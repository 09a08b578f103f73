"""One run: train the stages in order, evaluate the target zero-shot, return a RunRecord.

Stage k starts from the encoder (and, for prompt tuning, the soft prompt) that
stage k-1 left, with a fresh head for its own task; the target task trains last,
on its training languages (the source language by default); then the target is
evaluated on every evaluation language, per example.

Seeds: the *init* seed fixes the tiny encoder's random weights (a pretrained
encoder brings its own), the soft prompt's and every head's initialisation; the *data* seed fixes the order of training batches and the
dropout masks. Same seeds, same machine, same thread count: same scores (on a
CPU; GPU kernels are not all deterministic). Runs train on a GPU when there is one
(``$SEQROB_DEVICE`` overrides); the device is recorded with the package versions.

A stage whose loss is not finite (NaN or inf) stops the run; it comes back with
``status="failed"`` and the reason, and the sweep goes on. Other errors propagate.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd
import torch
from seqrob.training.config import RunSpec, TaskConfig
from seqrob.training.data import TaskData, load_task
from seqrob.training.model import Backbone, load_encoder
from seqrob.training.tasks import Feature, Task, make_task
from seqrob.warehouse.errors import ConfigError
from seqrob.warehouse.runs import RunRecord, StageRecord
from torch import nn

__all__ = ["Diverged", "Trained", "run", "train", "evaluate", "device", "packages"]

Report = Callable[[dict], None]
REPORT_EVERY = 10  # steps between progress reports


class Diverged(Exception):
    """A stage's loss stopped being a finite number."""


@dataclass
class Trained:
    """A trained run, before evaluation: the backbone, the target's head and task, its data."""

    backbone: Backbone
    head: nn.Module
    task: Task
    data: TaskData
    tokenizer: object
    stages: list[StageRecord]


def run(spec: RunSpec, *, report: Report | None = None) -> RunRecord:
    """Train and evaluate one run; never writes anywhere (the sweep's writer stores the record).

    Parameters
    ----------
    spec
        The resolved run (see :func:`seqrob.training.config.plan`).
    report
        Called with progress dicts (``run_id, order, seed, method, position, stages, task, step,
        steps, loss``; ``evaluating`` once training is over).

    Returns
    -------
    seqrob.warehouse.runs.RunRecord
        Finished with scores and per-example predictions, or failed with the reason.
    """
    started = datetime.now(timezone.utc)
    stages: list[StageRecord] = []
    status, failure, scores, predictions = "finished", None, None, None
    try:
        trained = train(spec, report=report, stages=stages)
        scores, predictions = evaluate(trained, spec)
    except Diverged as error:
        status, failure = "failed", str(error)
    return RunRecord(
        run_id=spec.run_id,
        experiment=spec.experiment,
        order=spec.order_name,
        seed=spec.init_seed,
        data_seed=spec.data_seed,
        method=spec.method,
        model=spec.model.name,
        config=spec.to_dict(),
        config_hash=spec.config_hash,
        status=status,
        failure=failure,
        packages=packages(),
        host=socket.gethostname(),
        started_at=started,
        ended_at=datetime.now(timezone.utc),
        stages=tuple(stages),
        scores=scores,
        predictions=predictions,
        families=_families(spec),
    )


def train(spec: RunSpec, *, report: Report | None = None, stages: list[StageRecord] | None = None) -> Trained:
    """Train the stages of ``spec`` in order; raise :class:`Diverged` if a loss stops being finite.

    ``stages`` (if given) receives each finished stage as it ends, so a caller sees
    the stages that ran before a divergence.
    """
    stages = [] if stages is None else stages
    encoder, tokenizer = load_encoder(spec.model, spec.synthetic, seed=_seed(spec.init_seed, 0, "encoder"))
    prompt = spec.prompt.length if spec.prompt else 0
    backbone = Backbone(encoder, prompt_length=prompt, seed=_seed(spec.init_seed, 0, "prompt")).to(device())
    if spec.prompt:
        backbone.encoder.requires_grad_(False)  # prompt tuning: the encoder never changes
    for position, stage in enumerate(spec.stages, start=1):
        is_target = position == len(spec.stages)
        data = load_task(
            stage,
            synthetic=spec.synthetic,
            evaluation_languages=spec.evaluation.languages if is_target else (),
            max_eval_examples=spec.evaluation.max_examples,
        )
        task = make_task(stage.kind, stage.name, data.labels)
        features = _features(task, data.train, tokenizer, spec, stage)
        torch.manual_seed(_seed(spec.init_seed, position, "head"))
        head = task.head(backbone.hidden_size, backbone.dropout).to(device())
        steps = _steps(stage, len(features))
        context = {"run_id": spec.run_id, "order": spec.order_name, "seed": spec.init_seed, "method": spec.method,
                   "position": position, "stages": len(spec.stages), "task": stage.name}  # fmt: skip
        torch.manual_seed(_seed(spec.data_seed, position, "dropout"))
        order = np.random.default_rng(_seed(spec.data_seed, position, "order"))
        loss = _train_stage(
            backbone, head, task, features, stage, spec, steps, order, tokenizer.pad_token_id, context, report
        )
        stages.append(StageRecord(position=position, task=stage.name, steps=steps, final_loss=loss))
    if report:
        report({**context, "step": steps, "steps": steps, "loss": loss, "evaluating": True})
    return Trained(backbone, head, task, data, tokenizer, stages)


def _train_stage(
    backbone: Backbone,
    head: nn.Module,
    task: Task,
    features: Sequence[Feature],
    stage: TaskConfig,
    spec: RunSpec,
    steps: int,
    order: np.random.Generator,
    pad_id: int,
    context: dict,
    report: Report | None,
) -> float:
    """Train ``steps`` batches; return the mean loss of the last tenth of them (at most 50)."""
    learning_rate = spec.prompt.learning_rate if spec.prompt else stage.learning_rate
    trained = [p for p in (*backbone.parameters(), *head.parameters()) if p.requires_grad]
    groups = [
        {"params": [p for p in trained if p.ndim >= 2], "weight_decay": stage.weight_decay},
        {"params": [p for p in trained if p.ndim < 2], "weight_decay": 0.0},  # no decay on biases and norms
    ]
    optimizer = torch.optim.AdamW(groups, lr=learning_rate, fused=_fusable(trained))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, steps, stage.warmup))
    backbone.train(), head.train()
    losses: list[float] = []
    for step, indices in zip(range(steps), _batches(len(features), stage.batch_size, order)):
        batch = _to_device(task.collate([features[i] for i in indices], pad_id))
        loss = task.loss(head, backbone(batch), batch)
        value = float(loss.item())
        if not math.isfinite(value):
            raise Diverged(
                f"stage {context['position']} ({stage.name}) diverged: loss {value} at step {step + 1} of {steps}"
                f" (learning rate {learning_rate:g}) - lower the learning rate"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(value)
        if report and (step % REPORT_EVERY == 0 or step == steps - 1):
            report({**context, "step": step + 1, "steps": steps, "loss": value})
    if not all(torch.isfinite(p).all() for p in trained):
        raise Diverged(
            f"stage {context['position']} ({stage.name}) diverged: weights are not finite after {steps} steps"
        )
    tail = losses[-max(1, min(50, steps // 10)) :]
    return float(np.mean(tail))


@torch.no_grad()
def evaluate(trained: Trained, spec: RunSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Zero-shot evaluation of the target on every language: scores and per-example outcomes."""
    backbone, head, task, data, tokenizer = (
        trained.backbone,
        trained.head,
        trained.task,
        trained.data,
        trained.tokenizer,
    )
    backbone.eval(), head.eval()
    score_rows, frames = [], []
    for language in spec.evaluation.languages:
        examples = data.evaluation[language]
        features = task.features(examples, tokenizer, spec.target.max_length or spec.model.max_length)
        outputs: list = [None] * len(features)
        by_length = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
        for start in range(0, len(by_length), spec.evaluation.batch_size):
            chosen = by_length[start : start + spec.evaluation.batch_size]
            batch = _to_device(task.collate([features[i] for i in chosen], tokenizer.pad_token_id))
            for i, output in zip(chosen, task.outputs(head, backbone(batch), batch)):
                outputs[i] = output
        outcomes = task.outcomes(examples, features, outputs)
        for metric, score in task.scores(outcomes).items():
            score_rows.append((task.name, language, metric, score, len(examples)))
        keep = [c for c in ("correct", "value", "tp", "fp", "fn") if c in outcomes]
        frames.append(outcomes[["example_id", *keep]].assign(task=task.name, language=language))
    scores = pd.DataFrame(score_rows, columns=["task", "language", "metric", "score", "n_examples"])
    predictions = pd.concat(frames, ignore_index=True)[["task", "language", "example_id", *keep]]
    return scores, predictions


_FEATURES: dict[str, list[Feature]] = {}


def _features(task: Task, examples, tokenizer, spec: RunSpec, stage: TaskConfig) -> list[Feature]:
    """Tokenised training examples, cached per process (every run of a sweep tokenises the same data)."""
    synthetic = asdict(spec.synthetic) if spec.synthetic else None
    key = json.dumps([asdict(stage), asdict(spec.model), synthetic, task.labels], sort_keys=True, default=list)
    if key not in _FEATURES:
        if len(_FEATURES) >= 8:
            _FEATURES.pop(next(iter(_FEATURES)))
        _FEATURES[key] = task.features(examples, tokenizer, stage.max_length or spec.model.max_length)
    return _FEATURES[key]


def device() -> torch.device:
    """Where runs train: ``$SEQROB_DEVICE`` if set (``cpu``, ``cuda``, ``cuda:1``), else a GPU if there is one."""
    chosen = os.environ.get("SEQROB_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(chosen)
    except RuntimeError:
        raise ConfigError(f"SEQROB_DEVICE='{chosen}' is not a torch device - use cpu, cuda or cuda:N") from None


def _to_device(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    where = device()
    return batch if where.type == "cpu" else {key: value.to(where) for key, value in batch.items()}


def _fusable(parameters: Sequence[torch.Tensor]) -> bool:
    """The fused AdamW kernel (one call per step instead of one per tensor) where torch has it."""
    return all(
        p.dtype in (torch.float32, torch.float16, torch.bfloat16) and p.device.type in ("cpu", "cuda")
        for p in parameters
    )


def _batches(n: int, size: int, order: np.random.Generator):
    """Endless batches of indices: a fresh permutation every epoch."""
    while True:
        permutation = order.permutation(n)
        for start in range(0, n, size):
            yield permutation[start : start + size].tolist()


def _steps(stage: TaskConfig, n_features: int) -> int:
    steps = (
        stage.steps if stage.steps is not None else math.ceil(stage.epochs * math.ceil(n_features / stage.batch_size))
    )
    return min(steps, stage.max_steps) if stage.max_steps is not None else steps


def _lr_factor(step: int, steps: int, warmup: float) -> float:
    """Linear warm-up over ``warmup`` of the steps, then linear decay to zero."""
    rise = max(1, int(warmup * steps))
    if step < rise:
        return (step + 1) / rise
    return max(0.0, (steps - step) / max(1, steps - rise))


def _seed(seed: int, position: int, stream: str) -> int:
    """A seed for one stream of one stage, derived from a run seed (independent streams)."""
    streams = ("encoder", "prompt", "head", "dropout", "order")
    return int(np.random.SeedSequence([seed, position, streams.index(stream)]).generate_state(1)[0])


def _families(spec: RunSpec) -> dict[str, str]:
    from seqrob.training.synthetic import FAMILIES

    families = dict(spec.evaluation.families)
    if spec.target.data == "synthetic":
        families |= {
            code: family for family, codes in FAMILIES.items() for code in codes if code in spec.evaluation.languages
        }
    return families


def packages() -> dict[str, str]:
    """Versions of what a run's numbers depend on (stored with every run)."""
    out = {"python": platform.python_version()}
    for name in ("seqrob", "torch", "transformers", "tokenizers", "datasets", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    out["torch_threads"] = str(torch.get_num_threads())
    where = device()
    out["device"] = torch.cuda.get_device_name(where) if where.type == "cuda" else "cpu"
    return out
