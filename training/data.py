"""Task data: the synthetic suite, or real data through ``datasets`` (hub name or local files).

Both real paths call :func:`datasets.load_dataset`: by name (``xnli``, ``google/xtreme``
with a subset such as ``PAN-X.de``) where the hub or a local cache is reachable,
or as ``load_dataset("json" | "csv" | "parquet", data_files=...)`` for local files.
Rows become the examples of :mod:`seqrob.training.examples`; which columns are
read is the task's ``fields`` (defaults: XNLI/PAWS-X ``label``, WikiANN ``tokens`` and
``ner_tags``, SQuAD/XQuAD ``question``, ``context``, ``answers``, ``id``).
Integer labels with a ``ClassLabel`` feature are turned into their names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from seqrob.training.config import SyntheticConfig, TaskConfig
from seqrob.training.examples import (
    ClassificationExample,
    Example,
    QAExample,
    TaggingExample,
)
from seqrob.warehouse.errors import ConfigError

__all__ = ["TaskData", "load_task"]

_FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class TaskData:
    """A task's training examples (all its training languages) and label set.

    ``evaluation`` maps each evaluation language to its examples (target task only).
    ``labels`` is the label or tag set (empty for QA).
    """

    train: list[Example]
    evaluation: dict[str, list[Example]]
    labels: tuple[str, ...]


def load_task(
    task: TaskConfig,
    *,
    synthetic: SyntheticConfig | None,
    evaluation_languages: Sequence[str] = (),
    max_eval_examples: int | None = None,
) -> TaskData:
    """Load one task's data (cached per process: runs of a sweep share it)."""
    key = json.dumps(
        [asdict(task), asdict(synthetic) if synthetic else None, list(evaluation_languages), max_eval_examples],
        sort_keys=True,
        default=list,
    )
    if key not in _CACHE:
        if len(_CACHE) >= 8:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _load(task, synthetic, tuple(evaluation_languages), max_eval_examples)
    return _CACHE[key]


_CACHE: dict[str, TaskData] = {}


def _load(task, synthetic, evaluation_languages, max_eval_examples) -> TaskData:
    cap = task.max_train_examples
    if task.data == "synthetic":
        from seqrob.training import synthetic as suite

        data = suite.build(synthetic)
        train = [e for lang in task.languages for e in data.examples(task.dataset, lang, "train")[:cap]]
        evaluation = {lang: data.examples(task.dataset, lang, "eval") for lang in evaluation_languages}
        labels = {"classification": suite.TOPIC_LABELS, "tagging": suite.NER_TAGS, "qa": ()}[task.kind]
    else:
        train, labels = [], None
        for lang in task.languages:
            examples, names = _read(task, lang, "train")
            train += examples[:cap]
            labels = labels or names
        evaluation = {}
        for lang in evaluation_languages:
            evaluation[lang], names = _read(task, lang, "eval")
            labels = labels or names
        labels = labels or _labels_seen(task.kind, train)
    if max_eval_examples is not None:
        evaluation = {lang: examples[:max_eval_examples] for lang, examples in evaluation.items()}
    if not train:
        raise ConfigError(
            f"task '{task.name}' has no training examples in {', '.join(task.languages)} - check its data"
        )
    return TaskData(train=train, evaluation=evaluation, labels=tuple(labels))


def _read(task: TaskConfig, language: str, split: str) -> tuple[list[Example], tuple[str, ...] | None]:
    """One language's split as examples, and the label names the data set declares (if any)."""
    dataset = _open(task, language, split)
    names = None
    key = {"classification": "label", "tagging": "tags"}.get(task.kind)
    if key is not None:
        column = task.field_name(key)
        _require(dataset, column, task, language, split)
        feature = dataset.features[column]
        feature = getattr(feature, "feature", feature)  # a Sequence of ClassLabel for tags
        names = tuple(feature.names) if hasattr(feature, "names") else None
    return [_example(task, row, i, names) for i, row in enumerate(dataset)], names


def _open(task: TaskConfig, language: str, split: str):
    try:
        import datasets
    except ImportError:
        raise ConfigError(f"task '{task.name}' reads data through `datasets`, which is not installed - pip install 'seqrob[train]'") from None
    datasets.disable_progress_bars()
    try:
        if task.data == "files":
            template = task.train_files if split == "train" else (task.eval_files or task.train_files)
            path = template.replace("{lang}", language)
            fmt = _FORMATS.get(Path(path).suffix.lower())
            if fmt is None:
                raise ConfigError(
                    f"task '{task.name}': cannot read '{path}' - use .json, .jsonl, .csv or .parquet files"
                )
            if not Path(path).exists():
                raise ConfigError(f"task '{task.name}': no file {path} for language '{language}' - check {split}_files")
            return datasets.load_dataset(fmt, data_files={"data": path}, split="data")
        if split == "train":
            name, subset, where = task.dataset, task.subset, task.train_split
        else:
            name, subset, where = task.eval_dataset or task.dataset, task.eval_subset or task.subset, task.eval_split
        subset = subset.replace("{lang}", language) if subset else None
        return datasets.load_dataset(name, subset, split=where)
    except ConfigError:
        raise
    except Exception as error:  # datasets raises many kinds (connection, missing config, ...)
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(
            f"task '{task.name}': cannot load {split} data for '{language}' from '{task.dataset or task.train_files}': {first}"
            " - check dataset, subset and split names, and that the hub or a local cache is reachable"
        ) from None


def _require(dataset, column: str, task: TaskConfig, language: str, split: str) -> None:
    if column not in dataset.column_names:
        raise ConfigError(
            f"task '{task.name}' ({language}, {split}): the data has no column '{column}'"
            f" - its columns are {', '.join(dataset.column_names)}; map yours under [tasks.{task.name}.fields]"
        )


def _example(task: TaskConfig, row: dict, index: int, names: tuple[str, ...] | None) -> Example:
    id_field = task.field_name("id")
    example_id = str(row[id_field]) if id_field and id_field in row else f"{index:06d}"
    try:
        if task.kind == "classification":
            fields = task.field_name("text")
            fields = [fields] if isinstance(fields, str) else list(fields)
            return ClassificationExample(
                example_id, tuple(str(row[f]) for f in fields), _name(row[task.field_name("label")], names)
            )
        if task.kind == "tagging":
            words = tuple(str(w) for w in row[task.field_name("words")])
            tags = tuple(_name(t, names) for t in row[task.field_name("tags")])
            if len(words) != len(tags):
                raise ConfigError(
                    f"task '{task.name}': example {example_id} has {len(words)} words but {len(tags)} tags"
                )
            return TaggingExample(example_id, words, tags)
        answers = row[task.field_name("answers")]
        pairs = tuple(zip(answers["text"], answers["answer_start"])) if isinstance(answers, dict) else tuple(answers)
        return QAExample(example_id, str(row[task.field_name("question")]), str(row[task.field_name("context")]), pairs)
    except KeyError as error:
        raise ConfigError(
            f"task '{task.name}': example {example_id} has no column {error} - map your columns under [tasks.{task.name}.fields]"
        ) from None


def _name(value: object, names: tuple[str, ...] | None) -> str:
    if names is not None and isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    return str(value)


def _labels_seen(kind: str, train: list[Example]) -> tuple[str, ...]:
    if kind == "classification":
        return tuple(sorted({e.label for e in train}))
    if kind == "tagging":
        seen = {t for e in train for t in e.tags}
        return ("O", *sorted(seen - {"O"}))
    return ()
