"""Training configuration: frozen dataclasses, loaded from TOML with strict keys.

Defaults live here, once; a config file overrides what differs, and a key this
module does not know is an error that names it. A sweep config expands into one
:class:`RunSpec` per order x seed pair x method; a run spec is everything that
determines a run, and the sha256 of its canonical JSON (:attr:`RunSpec.config_hash`)
is how a resumed sweep recognises runs already stored.

Examples
--------
>>> config = load_config()                     # the embedded default
>>> [run.order_name for run in plan(config)][:3]
['none', 'none', 'none']
>>> config = with_overrides(config, seeds=[7], orders=["none"], max_steps=30)
>>> len(plan(config)), plan(config)[0].stages[-1].steps
(1, 30)
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import itertools
import json
import math
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from seqrob.training.errors import OutOfRange, SweepTooLarge, UnknownModel
from seqrob.warehouse.errors import ConfigError

__all__ = [
    "TASK_KINDS",
    "DATA_SOURCES",
    "METHODS",
    "TRAINING_VERSION",
    "ModelConfig",
    "TaskConfig",
    "SeedsConfig",
    "EvaluationConfig",
    "PromptConfig",
    "SyntheticConfig",
    "LimitsConfig",
    "SweepConfig",
    "SweepSize",
    "RunSpec",
    "load_config",
    "parse_config",
    "default_config_path",
    "with_overrides",
    "plan",
    "estimate",
    "check_size",
    "parse_orders",
    "parse_seeds",
    "shipped_model_path",
]

TASK_KINDS = ("classification", "tagging", "qa")
DATA_SOURCES = ("synthetic", "datasets", "files")
METHODS = ("finetune", "prompt")
# Part of every run's config: bump when the training code changes what a config produces.
TRAINING_VERSION = "seqrob.training/1"
TINY = "tiny"
# Encoders shipped inside the package (training/pretrained/<name>/, made by seqrob.training.pretrain):
# a [model] name here resolves to that folder, which from_pretrained loads like a hub model.
SHIPPED_MODELS = ("synthetic-pretrained",)
_TINY_ONLY = ("hidden_size", "layers", "heads", "intermediate_size", "dropout", "vocab_size")
# Allowed model shapes: wide enough for any encoder seqrob can fine-tune on one machine,
# narrow enough that a typo (1e9) is refused at load instead of failing deep in torch.
MODEL_RANGES = {
    "max_length": (8, 8192),
    "hidden_size": (2, 8192),
    "layers": (1, 96),
    "heads": (1, 128),
    "intermediate_size": (1, 65536),
    "vocab_size": (1, 1_000_000),
}
# Seeds are stored in BIGINT columns and fed to numpy's SeedSequence (non-negative).
SEED_RANGE = (0, 2**63 - 1)
INT64 = (-(2**63), 2**63 - 1)
# A Hugging Face model id: "name" or "owner/name", letters, digits, '.', '_' and '-'.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")

# Which columns of a data set each task kind reads, and their default names.
KIND_FIELDS: dict[str, dict[str, object]] = {
    "classification": {"text": ["text"], "label": "label", "id": None},
    "tagging": {"words": "tokens", "tags": "ner_tags", "id": None},
    "qa": {"question": "question", "context": "context", "answers": "answers", "id": "id"},
}


@dataclass(frozen=True)
class ModelConfig:
    """The encoder: ``name = "tiny"`` (built here, random init), ``"synthetic-pretrained"``
    (shipped with seqrob: the tiny shape pretrained on the synthetic languages, see
    :mod:`seqrob.training.pretrain`), or a Hugging Face id / local path.

    The shape fields apply to the tiny model only; a named model brings its own.
    """

    name: str = TINY
    max_length: int = 64  # tokens per input (QA contexts longer than this are windowed)
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    intermediate_size: int = 128
    dropout: float = 0.1
    vocab_size: int = 1500  # most whole words the tokenizer keeps (it learns them from the synthetic corpus)

    @property
    def is_tiny(self) -> bool:
        return self.name == TINY

    @property
    def is_shipped(self) -> bool:
        """A model shipped inside the package (``synthetic-pretrained``)."""
        return self.name in SHIPPED_MODELS

    @property
    def source(self) -> str:
        """What ``from_pretrained`` is given: the shipped folder's path, else the name itself."""
        return str(shipped_model_path(self.name)) if self.is_shipped else self.name


def shipped_model_path(name: str) -> Path:
    """The folder of a shipped model (``training/pretrained/<name>/`` in the installed package)."""
    if name not in SHIPPED_MODELS:
        raise KeyError(name)
    return Path(str(resources.files("seqrob.training") / "pretrained" / name))


@functools.lru_cache(maxsize=8)
def _weights_digest(folder: str) -> str:
    """The first 16 hex digits of the sha256 of a shipped model's weights (part of each run's config)."""
    try:
        return hashlib.sha256((Path(folder) / "model.safetensors").read_bytes()).hexdigest()[:16]
    except OSError:
        return "missing"


@dataclass(frozen=True)
class TaskConfig:
    """One task: where its data come from, its kind, and how long and how fast it trains."""

    name: str
    kind: str
    data: str = "synthetic"  # synthetic | datasets | files
    dataset: str | None = None  # datasets: name or path; synthetic: suite task (default: the name)
    subset: str | None = None  # datasets config name; "{lang}" is replaced by the language
    train_split: str = "train"
    eval_split: str = "test"
    eval_dataset: str | None = None  # evaluation data from another data set (SQuAD -> XQuAD); default: dataset
    eval_subset: str | None = None  # default: subset
    train_files: str | None = None  # files: path with "{lang}"; .json/.jsonl/.csv/.parquet
    eval_files: str | None = None
    max_length: int | None = None  # tokens per input for this task; default: model.max_length
    fields: Mapping[str, object] = field(default_factory=dict)  # column names (see KIND_FIELDS)
    languages: tuple[str, ...] = ()  # training languages; () = the source language
    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup: float = 0.1  # share of the steps with a rising learning rate
    weight_decay: float = 0.01
    max_train_examples: int | None = None  # per training language
    max_steps: int | None = None  # a sweep-wide cap (--max-steps), set by plan()

    def field_name(self, key: str):
        """The data set's column for ``key`` (e.g. ``"label"``)."""
        return self.fields.get(key, KIND_FIELDS[self.kind][key])


@dataclass(frozen=True)
class SeedsConfig:
    """Model-init seeds and data-order seeds, recorded apart.

    ``data`` empty: each run's data seed equals its init seed. ``cross``: every
    init seed with every data seed; else they are paired by position.
    """

    init: tuple[int, ...] = (1, 2, 3)
    data: tuple[int, ...] = ()
    cross: bool = False

    def pairs(self) -> list[tuple[int, int]]:
        if not self.data:
            return [(seed, seed) for seed in self.init]
        if self.cross:
            return list(itertools.product(self.init, self.data))
        return list(zip(self.init, self.data))


@dataclass(frozen=True)
class EvaluationConfig:
    """Zero-shot evaluation of the target task: languages, batch size, optional cap."""

    languages: tuple[str, ...] = ()  # () = every language of the synthetic suite
    batch_size: int = 128
    max_examples: int | None = None
    families: Mapping[str, str] = field(default_factory=dict)  # code -> family, for codes seqrob does not know


@dataclass(frozen=True)
class PromptConfig:
    """Soft prompt tuning (method ``prompt``): prompt length and the learning rate of prompt and heads.

    The encoder stays frozen; the prompt carries over from stage to stage (as in
    SPoT, Vu et al. 2022), each stage gets a fresh head.
    """

    length: int = 8
    learning_rate: float = 1e-2


@dataclass(frozen=True)
class SyntheticConfig:
    """The built-in synthetic suite (see :mod:`seqrob.training.synthetic`)."""

    seed: int = 0
    train_examples: int = 1500  # per task and training language
    eval_examples: int = 300  # per evaluation language (parallel across languages)
    corpus_sentences: int = 1000  # per language, for the tokenizer


@dataclass(frozen=True)
class LimitsConfig:
    """How large a sweep may be before it is refused (checked at load, before any work).

    Raise a limit in ``[limits]`` or with ``--max-runs``, ``--max-predictions``,
    ``--max-memory-gb`` when a sweep really is meant to be that large.
    """

    runs: int = 10_000  # orders x seed pairs x methods
    predictions: int = 50_000_000  # runs x evaluation languages x evaluation examples (rows stored)
    memory_gb: float = 16.0  # estimated memory of one worker (see estimate())


@dataclass(frozen=True)
class SweepConfig:
    """A whole sweep: every order x seed pair x method of one experiment."""

    experiment: str
    source_language: str
    target: str
    tasks: Mapping[str, TaskConfig]
    orders: tuple[str, ...] = ("none",)
    methods: tuple[str, ...] = ("finetune",)
    seeds: SeedsConfig = SeedsConfig()
    model: ModelConfig = ModelConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    prompt: PromptConfig = PromptConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    limits: LimitsConfig = LimitsConfig()
    max_steps: int | None = None
    path: str | None = None  # where it was read from (not part of any run's config)

    @property
    def intermediate(self) -> tuple[str, ...]:
        return tuple(name for name in self.tasks if name != self.target)

    @property
    def uses_synthetic(self) -> bool:
        return any(task.data == "synthetic" for task in self.tasks.values())


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run; its hash identifies it in the warehouse."""

    experiment: str
    order: tuple[str, ...]
    method: str
    init_seed: int
    data_seed: int
    source_language: str
    stages: tuple[TaskConfig, ...]  # intermediate tasks in order, then the target task
    model: ModelConfig
    evaluation: EvaluationConfig
    prompt: PromptConfig | None
    synthetic: SyntheticConfig | None
    version: str = TRAINING_VERSION

    @property
    def order_name(self) -> str:
        return ">".join(self.order) if self.order else "none"

    @property
    def target(self) -> TaskConfig:
        return self.stages[-1]

    def to_dict(self) -> dict:
        """The resolved config as plain JSON values (what the warehouse stores)."""
        out = _plain(dataclasses.asdict(self)) | {"order_name": self.order_name}
        if self.model.is_shipped:  # regenerated weights make new runs, never mix with stored ones
            out["model"]["weights_sha256"] = _weights_digest(self.model.source)
        if self.synthetic is not None:
            from seqrob.training.synthetic import GENERATOR

            out["synthetic"]["generator"] = GENERATOR
        return out

    @property
    def config_hash(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def run_id(self) -> str:
        return f"{self.experiment}:{self.method}:{self.order_name}:seed{self.init_seed}-data{self.data_seed}:{self.config_hash[:10]}"

    @property
    def cost(self) -> float:
        """Rough relative cost (steps x batch size), to start the longest runs first."""
        return sum((stage.steps or 1000) * stage.batch_size for stage in self.stages)


# -- loading ----------------------------------------------------------------------------


def default_config_path() -> Path:
    """The embedded default config (``training/configs/default.toml``)."""
    return Path(str(resources.files("seqrob.training") / "configs" / "default.toml"))


def load_config(path: str | Path | None = None) -> SweepConfig:
    """Read a sweep config from TOML (``None``: the embedded default).

    Raises
    ------
    ConfigError
        The file is missing or not TOML, a key is unknown, a value has the wrong
        type, or the tasks, orders, seeds or languages do not fit together.
    """
    where = Path(path) if path is not None else default_config_path()
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no config file {where} - give the path of a TOML file, or none for the default") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {where}: {error.strerror}") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{where}: not valid TOML ({error}) - fix the syntax at that line") from None
    return parse_config(table, where=str(where), base=where.parent)


def parse_config(table: Mapping[str, object], *, where: str = "config", base: Path | None = None) -> SweepConfig:
    """Build a :class:`SweepConfig` from a parsed TOML table (see :func:`load_config`)."""
    table = dict(table)
    top = {f.name for f in dataclasses.fields(SweepConfig)} - {"path", "max_steps"}
    _check_keys(table, top, where, "")
    for key in ("experiment", "source_language", "target", "tasks"):
        if key not in table:
            raise ConfigError(f"{where}: '{key}' is missing - add it at the top level (see configs/default.toml)")
    raw_tasks = table.pop("tasks")
    if not isinstance(raw_tasks, Mapping) or not raw_tasks:
        raise ConfigError(f"{where}: 'tasks' must hold at least one [tasks.NAME] table")
    tasks = {}
    for name, raw in raw_tasks.items():
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: tasks.{name} must be a table ([tasks.{name}])")
        tasks[name] = _task(name, dict(raw), where, base)
    sections = {
        "seeds": SeedsConfig, "model": ModelConfig, "evaluation": EvaluationConfig,
        "prompt": PromptConfig, "synthetic": SyntheticConfig, "limits": LimitsConfig,
    }  # fmt: skip
    values: dict[str, object] = {"tasks": tasks}
    raw_model = table.get("model", {})
    for key, cls in sections.items():
        raw = table.pop(key, {})
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: '{key}' must be a table ([{key}])")
        values[key] = _build(cls, dict(raw), where, key)
    raw_orders = table.pop("orders", ["none"])
    values |= _build(SweepConfig, table, where, "", only=("experiment", "source_language", "target", "methods"))
    config = SweepConfig(**values, path=where)
    if not config.model.is_tiny:
        given = set(dict(raw_model)) & set(_TINY_ONLY)
        if given:
            key = sorted(given)[0]
            raise ConfigError(
                f"{where}: model.{key} applies only to the embedded tiny model, and model.name is '{config.model.name}'"
                " - remove it (a named model brings its own shape)"
            )
    config = dataclasses.replace(config, orders=parse_orders(raw_orders, config, where=where))
    _validate(config, where)
    return config


def with_overrides(
    config: SweepConfig,
    *,
    seeds: Sequence[int] | int | str | None = None,
    orders: Sequence[str] | str | None = None,
    methods: Sequence[str] | None = None,
    max_steps: int | None = None,
    experiment: str | None = None,
    max_runs: int | None = None,
    max_predictions: int | None = None,
    max_memory_gb: float | None = None,
) -> SweepConfig:
    """The command-line overrides (``--seeds``, ``--orders``, ...) applied to a loaded config.

    ``seeds``: a count N (init seeds 1..N, data seeds paired) or a list of init
    seeds. ``max_steps`` caps every stage; unless ``experiment`` is given too, the
    runs go to ``<experiment>-max<N>steps`` so smoke runs never mix with full ones.
    ``max_runs``, ``max_predictions``, ``max_memory_gb`` raise (or lower) the
    ``[limits]`` of the config; they apply before the seeds and orders are expanded.
    """
    where = "command line"
    limits = {"runs": max_runs, "predictions": max_predictions, "memory_gb": max_memory_gb}
    for key, value in limits.items():
        if value is not None and not value > 0:
            raise ConfigError(f"--max-{key.replace('_', '-')} {value}: must be positive")
    given = {key: value for key, value in limits.items() if value is not None}
    if given:
        config = dataclasses.replace(config, limits=dataclasses.replace(config.limits, **given))
    if seeds is not None:
        chosen = parse_seeds(seeds, limit=config.limits.runs)
        data = config.seeds.data if config.seeds.cross else ()
        config = dataclasses.replace(config, seeds=SeedsConfig(init=chosen, data=data, cross=config.seeds.cross))
    if orders is not None:
        config = dataclasses.replace(config, orders=parse_orders(orders, config, where=where))
    if methods is not None:
        config = dataclasses.replace(config, methods=tuple(methods))
    if max_steps is not None:
        if max_steps < 1:
            raise ConfigError(f"--max-steps {max_steps}: must be a positive number of steps")
        config = dataclasses.replace(config, max_steps=max_steps)
        if experiment is None:
            config = dataclasses.replace(config, experiment=f"{config.experiment}-max{max_steps}steps")
    if experiment is not None:
        config = dataclasses.replace(config, experiment=experiment)
    _validate(config, where)
    return config


def parse_seeds(value: Sequence[int] | int | str, *, limit: int | None = None) -> tuple[int, ...]:
    """``3`` -> (1, 2, 3); ``"4,9"`` or ``[4, 9]`` -> (4, 9).

    A count over ``limit`` is refused (:class:`SweepTooLarge`) before any seed is made.
    """
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
        try:
            numbers = [int(part) for part in parts]
        except ValueError:
            raise ConfigError(
                f"--seeds '{value}': give a count (3) or a comma-separated list of integers (1,5,9)"
            ) from None
        value = numbers[0] if len(numbers) == 1 and "," not in value else numbers
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ConfigError(f"--seeds {value}: give at least one seed")
        if limit is not None and value > limit:
            raise SweepTooLarge(
                f"--seeds {value:,} is more runs than the limit of {limit:,}"
                " - ask for fewer seeds, or raise the limit with --max-runs or [limits] runs"
            )
        return tuple(range(1, value + 1))
    seeds = tuple(int(v) for v in value)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {list(seeds)}: give distinct integers")
    return seeds


def parse_orders(value: object, config: SweepConfig, *, where: str) -> tuple[str, ...]:
    """Order names from a list (``["none", "ner>qa"]``), a comma-separated string, or a keyword.

    ``"permutations"``: ``none`` and every ordering of all intermediate tasks;
    ``"all"``: ``none`` and every ordering of every non-empty subset of them.
    """
    tasks = config.intermediate
    if isinstance(value, str) and value.strip() in ("permutations", "all"):
        sizes = [len(tasks)] if value.strip() == "permutations" else range(1, len(tasks) + 1)
        count = 1 + sum(math.perm(len(tasks), k) for k in sizes)  # counted before any is made
        if count > config.limits.runs:
            raise SweepTooLarge(
                f"{where}: orders '{value.strip()}' over {len(tasks)} intermediate tasks are {count:,} orders,"
                f" more than the limit of {config.limits.runs:,} runs - list the orders, or raise the limit"
                " with --max-runs or [limits] runs"
            )
        orders = ["none"] + [">".join(p) for k in sizes for p in itertools.permutations(tasks, k)]
        return tuple(dict.fromkeys(orders))
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: 'orders' must be a list of strings, 'permutations' or 'all'")
    orders = []
    for raw in value:
        order = raw.strip()
        names = [] if order == "none" else [part.strip() for part in order.split(">")]
        if order != "none" and (not order or any(not n for n in names)):
            raise ConfigError(
                f"{where}: order '{raw}' has an empty task - write tasks joined by '>' (ner>qa), or 'none'"
            )
        for name in names:
            if name == config.target:
                raise ConfigError(
                    f"{where}: order '{order}' names the target task '{name}' - it always trains last; leave it out"
                )
            if name not in tasks:
                raise ConfigError(
                    f"{where}: order '{order}' names task '{name}', which is not an intermediate task"
                    f" - intermediate tasks are: {', '.join(tasks) or 'none'}{_suggest(name, tasks)}"
                )
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}: order '{order}' repeats a task - list each task once")
        orders.append(">".join(names) if names else "none")
    if not orders:
        raise ConfigError(f"{where}: 'orders' is empty - list at least one order ('none' is the target task alone)")
    return tuple(dict.fromkeys(orders))


def plan(config: SweepConfig) -> list[RunSpec]:
    """One :class:`RunSpec` per method x order x seed pair, in a stable order."""
    runs = []
    for method in config.methods:
        for order in config.orders:
            names = () if order == "none" else tuple(order.split(">"))
            stages = tuple(_capped(config.tasks[name], config) for name in (*names, config.target))
            for init_seed, data_seed in config.seeds.pairs():
                runs.append(
                    RunSpec(
                        experiment=config.experiment,
                        order=names,
                        method=method,
                        init_seed=init_seed,
                        data_seed=data_seed,
                        source_language=config.source_language,
                        stages=stages,
                        model=config.model,
                        evaluation=_evaluation(config),
                        prompt=config.prompt if method == "prompt" else None,
                        synthetic=config.synthetic if config.uses_synthetic else None,
                    )  # fmt: skip
                )
    return runs


@dataclass(frozen=True)
class SweepSize:
    """A sweep's size, counted from its config before anything is built (see :func:`estimate`)."""

    runs: int  # orders x seed pairs x methods
    predictions: int  # runs x evaluation languages x evaluation examples: rows the warehouse stores
    memory_gb: float  # rough peak memory of one worker: process, data, model, optimiser, activations


# Rough sizes, erring high: a worker process with torch and transformers loaded (about
# 0.55 GB seen in top); one example with its tokenised features (Python lists of ints,
# about 3 x 40 bytes a token); one tokenizer corpus sentence.
_PROCESS_BYTES = 600e6
_EXAMPLE_BYTES = 1_000
_TOKEN_BYTES = 120
_SENTENCE_BYTES = 300


def estimate(config: SweepConfig) -> SweepSize:
    """Count a sweep's runs and stored predictions, and estimate one worker's memory, from the config alone.

    Nothing is planned or built, so a sweep of any size is measured at once. Data of
    ``datasets``/``files`` tasks count only when capped (``max_train_examples``,
    ``evaluation.max_examples``); a named model's weights are not counted (the tiny
    model's are: weights, gradients and two AdamW moments, 16 bytes a parameter).
    """
    from seqrob.training.synthetic import LANGUAGES

    seeds = config.seeds
    pairs = len(seeds.init) * len(seeds.data) if seeds.cross and seeds.data else len(seeds.init)
    if seeds.data and not seeds.cross:
        pairs = min(len(seeds.init), len(seeds.data))
    runs = len(config.orders) * pairs * len(config.methods)
    languages = config.evaluation.languages or LANGUAGES
    target = config.tasks[config.target]
    synthetic = config.synthetic
    per_language = synthetic.eval_examples if target.data == "synthetic" else config.evaluation.max_examples or 0
    if target.data == "synthetic" and config.evaluation.max_examples is not None:
        per_language = min(per_language, config.evaluation.max_examples)
    model = config.model
    tokens = max([model.max_length, *(t.max_length or 0 for t in config.tasks.values())])
    example = _EXAMPLE_BYTES + _TOKEN_BYTES * tokens
    train = 0
    for task in config.tasks.values():  # a worker caches the features of every stage it trains
        count = synthetic.train_examples if task.data == "synthetic" else task.max_train_examples or 0
        if task.data == "synthetic" and task.max_train_examples is not None:
            count = min(count, task.max_train_examples)
        train += count * len(task.languages or (config.source_language,))
    data = (train + per_language * len(languages)) * example
    if config.uses_synthetic:
        data += synthetic.corpus_sentences * len(LANGUAGES) * _SENTENCE_BYTES
    weights = activations = 0.0
    if model.is_tiny:
        hidden, inner, length = model.hidden_size, model.intermediate_size, model.max_length + 64
        layer = 4 * hidden * hidden + 2 * hidden * inner + 9 * hidden + inner
        weights = 16.0 * ((model.vocab_size + 64 + length + 2) * hidden + model.layers * layer)
        batch = max([config.evaluation.batch_size, *(t.batch_size for t in config.tasks.values())])
        per_layer = length * (12 * hidden + 2 * inner) + 2 * model.heads * length * length
        activations = 4.0 * batch * model.layers * per_layer
    memory = (_PROCESS_BYTES + data + weights + activations) / 1e9
    return SweepSize(runs=runs, predictions=runs * per_language * len(languages), memory_gb=memory)


def check_size(config: SweepConfig, *, where: str = "config") -> SweepSize:
    """:func:`estimate`, refused with :class:`SweepTooLarge` where it is over ``config.limits``."""
    size, limits = estimate(config), config.limits
    if size.runs > limits.runs:
        raise SweepTooLarge(
            f"{where}: the sweep has {size.runs:,} runs (orders x seed pairs x methods), more than the limit of"
            f" {limits.runs:,} - ask for fewer, or raise the limit with --max-runs or [limits] runs"
        )
    if size.predictions > limits.predictions:
        raise SweepTooLarge(
            f"{where}: the sweep would store {size.predictions:,} predictions (runs x evaluation languages x"
            f" evaluation examples), more than the limit of {limits.predictions:,} - lower synthetic.eval_examples"
            " or evaluation.max_examples, or raise the limit with --max-predictions or [limits] predictions"
        )
    if size.memory_gb > limits.memory_gb:
        raise SweepTooLarge(
            f"{where}: one worker would need about {size.memory_gb:,.1f} GB (data, model and activations),"
            f" more than the limit of {limits.memory_gb:g} GB - lower the example counts or the model size,"
            " or raise the limit with --max-memory-gb or [limits] memory_gb"
        )
    return size


# -- helpers ----------------------------------------------------------------------------


def _capped(task: TaskConfig, config: SweepConfig) -> TaskConfig:
    languages = task.languages or (config.source_language,)
    steps = task.steps
    if steps is not None and config.max_steps is not None:
        steps = min(steps, config.max_steps)
    return dataclasses.replace(task, languages=languages, steps=steps, max_steps=config.max_steps)


def _evaluation(config: SweepConfig) -> EvaluationConfig:
    from seqrob.training.synthetic import LANGUAGES

    languages = config.evaluation.languages or LANGUAGES
    return dataclasses.replace(config.evaluation, languages=tuple(languages))


def _task(name: str, raw: dict, where: str, base: Path | None) -> TaskConfig:
    section = f"tasks.{name}"
    task = _build(TaskConfig, raw | {"name": name}, where, section, skip=("max_steps",))
    if task.kind not in TASK_KINDS:
        raise ConfigError(f"{where}: {section}.kind '{task.kind}' is not one of {', '.join(TASK_KINDS)}")
    if task.data not in DATA_SOURCES:
        raise ConfigError(f"{where}: {section}.data '{task.data}' is not one of {', '.join(DATA_SOURCES)}")
    known = KIND_FIELDS[task.kind]
    for key in task.fields:
        if key not in known:
            raise ConfigError(
                f"{where}: unknown key '{section}.fields.{key}'{_suggest(key, known)} - a {task.kind} task reads: {', '.join(known)}"
            )
    if (task.steps is None) == (task.epochs is None):
        raise ConfigError(f"{where}: {section} needs exactly one of 'steps' or 'epochs'")
    for key in ("steps", "epochs", "batch_size", "learning_rate", "max_length"):
        value = getattr(task, key)
        if value is not None and not value > 0:
            raise ConfigError(f"{where}: {section}.{key} must be positive, got {value}")
    if task.max_length is not None:
        _check_range(task.max_length, MODEL_RANGES["max_length"], where, f"{section}.max_length")
    if not 0 <= task.warmup < 1:
        raise ConfigError(f"{where}: {section}.warmup must be in [0, 1), got {task.warmup}")
    if task.data == "datasets" and not task.dataset:
        raise ConfigError(
            f"{where}: {section} reads data = 'datasets' but names no 'dataset' - add dataset = \"xnli\" (or a path)"
        )
    if task.data == "files":
        if not task.train_files:
            raise ConfigError(
                f"{where}: {section} reads data = 'files' but has no 'train_files' - add train_files = \"data/{{lang}}.jsonl\""
            )
        resolved = {k: _resolve_path(getattr(task, k), base) for k in ("train_files", "eval_files")}
        task = dataclasses.replace(task, **resolved)
    if task.data == "synthetic":
        from seqrob.training.synthetic import TASKS

        suite_task = task.dataset or name
        if suite_task not in TASKS:
            raise ConfigError(
                f"{where}: {section} reads the synthetic suite, which has no task '{suite_task}' - use dataset = one of {', '.join(TASKS)}"
            )
        if TASKS[suite_task] != task.kind:
            raise ConfigError(
                f"{where}: {section}: synthetic task '{suite_task}' is {TASKS[suite_task]}, not {task.kind} - set kind = \"{TASKS[suite_task]}\""
            )
        task = dataclasses.replace(task, dataset=suite_task)
    return task


def _resolve_path(value: str | None, base: Path | None) -> str | None:
    if value is None or base is None or Path(value).is_absolute():
        return value
    return str((base / value).resolve())


def _validate(config: SweepConfig, where: str) -> None:
    from seqrob.training.synthetic import LANGUAGES

    if config.target not in config.tasks:
        raise ConfigError(
            f"{where}: target '{config.target}' is not a task - define [tasks.{config.target}] or pick one of: {', '.join(config.tasks)}"
        )
    for method in config.methods:
        if method not in METHODS:
            raise ConfigError(
                f"{where}: method '{method}' is not one of {', '.join(METHODS)}{_suggest(method, METHODS)}"
            )
    if not config.methods:
        raise ConfigError(f'{where}: \'methods\' is empty - use ["finetune"], ["prompt"] or both')
    if not config.seeds.init:
        raise ConfigError(f"{where}: seeds.init is empty - give at least one seed")
    if config.seeds.data and not config.seeds.cross and len(config.seeds.data) != len(config.seeds.init):
        raise ConfigError(
            f"{where}: seeds.data has {len(config.seeds.data)} seeds but seeds.init has {len(config.seeds.init)}"
            " - give as many (they are paired), or set cross = true"
        )
    for key in ("init", "data"):
        seeds = getattr(config.seeds, key)
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"{where}: seeds.{key} repeats a seed - give distinct integers")
    for key in ("init", "data"):
        for seed in getattr(config.seeds, key):
            _check_range(seed, SEED_RANGE, where, f"seeds.{key}")
    _check_range(config.synthetic.seed, SEED_RANGE, where, "synthetic.seed")
    if not config.experiment.strip():
        raise ConfigError(f"{where}: 'experiment' is empty - name the experiment")
    model = config.model
    for key, allowed in MODEL_RANGES.items():
        _check_range(getattr(model, key), allowed, where, f"model.{key}")
    _check_model_name(model.name, where)
    if model.is_tiny and not config.uses_synthetic:
        raise ConfigError(
            f"{where}: the embedded tiny model's tokenizer is trained on the synthetic suite, and no task uses it"
            " - set model.name to a Hugging Face id or a saved model folder"
        )
    if model.is_tiny:
        for task in config.tasks.values():
            if task.max_length is not None and task.max_length > model.max_length:
                raise ConfigError(
                    f"{where}: tasks.{task.name}.max_length {task.max_length} exceeds the tiny model's max_length {model.max_length}"
                    " - raise model.max_length"
                )
    if model.is_shipped and config.uses_synthetic and config.synthetic.seed != 0:
        raise ConfigError(
            f"{where}: model '{model.name}' was pretrained on the languages of synthetic seed 0, and synthetic.seed"
            f" is {config.synthetic.seed} (other languages) - set synthetic.seed = 0, or use model.name = \"tiny\""
        )
    if model.is_tiny and model.hidden_size % model.heads:
        raise ConfigError(
            f"{where}: model.hidden_size {model.hidden_size} is not a multiple of model.heads {model.heads}"
        )
    languages = config.evaluation.languages or (LANGUAGES if config.uses_synthetic else ())
    if not languages:
        raise ConfigError(f"{where}: evaluation.languages is empty - list the languages to evaluate on")
    target = config.tasks[config.target]
    if target.data == "synthetic":
        unknown = [code for code in (*languages, config.source_language) if code not in LANGUAGES]
        if unknown:
            raise ConfigError(
                f"{where}: language '{unknown[0]}' is not in the synthetic suite - its languages are: {', '.join(LANGUAGES)}"
            )
    for task in config.tasks.values():
        if task.data == "synthetic":
            bad = [code for code in task.languages if code not in LANGUAGES]
            if bad:
                raise ConfigError(f"{where}: tasks.{task.name}.languages: '{bad[0]}' is not in the synthetic suite")
    _check_families(config, languages, where)
    check_size(config, where=where)


def _check_range(value: int, allowed: tuple[int, int], where: str, name: str) -> None:
    low, high = allowed
    if not low <= value <= high:
        raise OutOfRange(f"{where}: {name} = {value} is outside the allowed range {low} to {high} - pick a value in it")


def _check_model_name(name: str, where: str) -> None:
    """``tiny``, a shipped model, a folder with a config.json, or a Hugging Face model id; else :class:`UnknownModel`."""
    if name == TINY:
        return
    if name in SHIPPED_MODELS:
        if not (shipped_model_path(name) / "config.json").is_file():
            raise UnknownModel(
                f"{where}: model.name '{name}' is shipped with seqrob, but {shipped_model_path(name)} has no"
                " config.json - regenerate it with: python -m seqrob.training.pretrain"
            )
        return
    folder = Path(name).expanduser()
    if folder.is_dir():
        if (folder / "config.json").is_file():
            return
        raise UnknownModel(
            f"{where}: model.name '{name}' is a folder without config.json - save a model there"
            " (save_pretrained) or give a Hugging Face model id"
        )
    if _HUB_ID.fullmatch(name) and ".." not in name:
        return
    raise UnknownModel(
        f"{where}: model.name '{name}' is neither 'tiny', a Hugging Face model id (owner/name)"
        " nor a model folder with config.json - fix the name or the path"
    )


def _check_families(config: SweepConfig, languages: Sequence[str], where: str) -> None:
    """Every evaluation language needs a family: the suite's, the config's, or seqrob's table."""
    from seqrob.training.synthetic import LANGUAGES
    from seqrob.warehouse.languages import resolve

    for code in languages:
        if code in LANGUAGES or code in config.evaluation.families:
            continue
        if resolve(code) is None:
            raise ConfigError(
                f"{where}: evaluation language '{code}' is unknown to seqrob's language table"
                f' - use an ISO 639 / BCP-47 code, or add it under [evaluation.families] ({code} = "Family")'
            )


def _check_keys(table: Mapping[str, object], known: set[str] | Sequence[str], where: str, section: str) -> None:
    for key in table:
        if key not in known:
            name = f"{section}.{key}" if section else key
            raise ConfigError(
                f"{where}: unknown key '{name}'{_suggest(key, known)} - known keys{' in [' + section + ']' if section else ''}: "
                + ", ".join(sorted(known))
            )


def _suggest(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _build(cls, raw: dict, where: str, section: str, *, only: Sequence[str] | None = None, skip: Sequence[str] = ()):
    """Check keys and value types of one table against a dataclass; return the instance
    (or, with ``only``, the checked values as a dict)."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in skip]
    if only is not None:
        names = list(only)
    _check_keys(raw, names, where, section)
    values = {}
    for key, value in raw.items():
        values[key] = _coerce(value, hints[key], where, f"{section}.{key}" if section else key)
    return values if only is not None else cls(**values)


def _coerce(value: object, hint: object, where: str, name: str) -> object:
    """``value`` as type ``hint`` (int, float, str, bool, tuples, optional, mappings) or a ConfigError."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where, name)
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"{where}: {name} must be a list, got {value!r}")
        return tuple(_coerce(v, args[0], where, name) for v in value)
    if origin is Mapping or hint is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: {name} must be a table, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {name} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {name} must be an integer, got {value!r}")
        if not INT64[0] <= value <= INT64[1]:  # what the warehouse (DuckDB BIGINT, JSON) can store
            raise OutOfRange(
                f"{where}: {name} = {value} does not fit a 64-bit integer ({INT64[0]} to {INT64[1]}) - use a smaller number"
            )
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {name} must be a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        raise ConfigError(f"{where}: {name} must be a table")
    return value


def _plain(value: object) -> object:
    """Tuples to lists, mappings to dicts (sorted keys), so JSON is canonical."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
