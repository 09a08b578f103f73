"""Fixtures shared by the tests: warehouses, small valid data sets, and the bad-input cases.

* ``mem_wh``: an in-memory warehouse (``Warehouse(":memory:")``), closed afterwards.
* ``db_path``: a warehouse file in ``tmp_path`` (created empty, not held open).
* ``write``: writes a DataFrame (or raw bytes/text) as CSV, Parquet or JSON Lines by suffix.
* ``dataset``: writes the small valid scores and predictions files in one format.
* ``populated``/``populated_wh``/``populated_db``: the small data set stored (the last
  two shared by a module, for tests that leave the warehouse unchanged).
* ``snapshot``/``assert_unchanged``: every warehouse table's rows, to prove a refused
  ingest changed nothing.
* ``bad_case``: parametrises a test over :data:`BAD_CASES`, the issue's list of
  inputs that ingest must refuse (used by the library and the CLI tests alike).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqrob.warehouse import Warehouse
from seqrob.warehouse.schema import TABLES

SCORE_HEADER = "run_id,order,seed,task,language,metric,score"
PREDICTION_HEADER = "run_id,task,language,example_id,correct"

# The small valid data set: 2 orders x 2 seeds x 3 languages, one task and metric.
RUNS = [("r1", "nli>qa", 1), ("r2", "nli>qa", 2), ("r3", "qa>nli", 1), ("r4", "qa>nli", 2)]
LANGUAGES = ["de", "fr", "sw"]
EXAMPLES = 4


def scores_frame() -> pd.DataFrame:
    """Valid long scores: one row per run x language (task xnli, metric accuracy)."""
    rows = []
    for i, (run_id, order, seed) in enumerate(RUNS):
        for j, language in enumerate(LANGUAGES):
            rows.append(
                {"run_id": run_id, "order": order, "seed": seed, "task": "xnli",
                 "language": language, "metric": "accuracy", "score": 0.5 + 0.01 * (3 * i + j)}
            )
    return pd.DataFrame(rows)


def predictions_frame() -> pd.DataFrame:
    """Valid predictions: EXAMPLES 0/1 outcomes per run x language."""
    rows = []
    for i, (run_id, _, _) in enumerate(RUNS):
        for j, language in enumerate(LANGUAGES):
            for k in range(EXAMPLES):
                rows.append(
                    {"run_id": run_id, "task": "xnli", "language": language,
                     "example_id": f"ex{k}", "correct": (i + j + k) % 2}
                )
    return pd.DataFrame(rows)


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` in the format the suffix names (.csv, .parquet, .jsonl)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    elif suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for record in frame.to_dict(orient="records"):
                handle.write(json.dumps(record) + "\n")
    else:  # pragma: no cover - a test bug
        raise ValueError(path)
    return path


def read_all(wh: Warehouse) -> dict[str, tuple[list[str], list[str]]]:
    """Every table as (columns, its rows' reprs sorted): equal snapshots mean an unchanged warehouse.

    Reads through the warehouse's own connection (``wh.table`` would build DataFrames,
    several times slower, and these snapshots are taken in every refusal test).
    """
    snapshot = {}
    for name in TABLES:
        relation = wh.con.table(name)
        snapshot[name] = (list(relation.columns), sorted(repr(row) for row in relation.fetchall()))
    return snapshot


def assert_same_tables(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for name in before:
        assert before[name][0] == after[name][0], f"table {name}: columns changed"
        assert before[name][1] == after[name][1], f"table {name}: rows changed"


# A run with scores but no per-example outcomes (stored by ``populate``, not in the files).
SCORES_ONLY_RUN = {"run_id": "r5", "order": "none", "seed": 1, "task": "xnli", "language": "de",
                   "metric": "accuracy", "score": 0.45}


def populate(wh: Warehouse) -> Warehouse:
    """Store the small valid data set (scores and predictions) and :data:`SCORES_ONLY_RUN`."""
    scores = pd.concat([scores_frame(), pd.DataFrame([SCORES_ONLY_RUN])], ignore_index=True)
    wh.ingest_frames(scores=scores, predictions=predictions_frame(), source="base")
    return wh


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture
def mem_wh():
    with Warehouse(":memory:") as wh:
        yield wh


@pytest.fixture
def db_path(tmp_path) -> Path:
    """A new, empty warehouse file (closed, so a CLI call or subprocess can open it)."""
    path = tmp_path / "warehouse.duckdb"
    Warehouse(path).close()
    return path


@pytest.fixture
def write(tmp_path) -> Callable[..., Path]:
    """``write(name, content)``: content is a DataFrame (format by suffix), text or bytes."""

    def _write(name: str, content) -> Path:
        path = tmp_path / name
        if isinstance(content, pd.DataFrame):
            return write_table(content, path)
        if isinstance(content, str):
            path.write_bytes(content.encode("utf-8"))
        else:
            path.write_bytes(content)
        return path

    return _write


@pytest.fixture
def dataset(tmp_path) -> Callable[[str], tuple[Path, Path]]:
    """``dataset(fmt)`` writes the small valid scores and predictions files; returns their paths."""

    def _dataset(fmt: str) -> tuple[Path, Path]:
        scores = write_table(scores_frame(), tmp_path / f"scores.{fmt}")
        predictions = write_table(predictions_frame(), tmp_path / f"predictions.{fmt}")
        return scores, predictions

    return _dataset


@pytest.fixture
def snapshot() -> Callable[[Warehouse], dict]:
    return read_all


@pytest.fixture
def assert_unchanged() -> Callable[[dict, Warehouse], None]:
    return lambda before, wh: assert_same_tables(before, read_all(wh))


@pytest.fixture
def populated():
    """A function that fills a warehouse with the small valid data set."""
    return populate


@pytest.fixture(scope="module")
def populated_wh():
    """An in-memory warehouse holding the small valid data set, shared by a module's tests:
    only for tests that must leave it unchanged (and check that they did)."""
    with Warehouse(":memory:") as wh:
        yield populate(wh)


@pytest.fixture(scope="module")
def populated_db(tmp_path_factory) -> Path:
    """A warehouse file holding the small valid data set, shared like :func:`populated_wh`."""
    path = tmp_path_factory.mktemp("populated") / "warehouse.duckdb"
    with Warehouse(path) as wh:
        populate(wh)
    return path


# --- the inputs ingest must refuse -----------------------------------------------------


def _truncated_parquet(path: Path) -> None:
    write_table(scores_frame(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _parquet_nan(path: Path, value: float | None = float("nan")) -> None:
    frame = scores_frame()
    table = pa.Table.from_pandas(frame.assign(run_id=frame.run_id + "-new"), preserve_index=False)
    scores = frame["score"].tolist()
    scores[2] = value
    # from_pandas=False keeps NaN a NaN (pandas would turn it into a null).
    table = table.set_column(table.schema.get_field_index("score"), "score", pa.array(scores, pa.float64(), from_pandas=False))
    pq.write_table(table, path)


def _lines(header: str, *rows: str) -> str:
    return "\n".join([header, *rows]) + "\n"


@dataclass(frozen=True)
class BadCase:
    """A file ingest must refuse, and what the one-line message must say.

    ``row``/``column`` are where the message must point (None: not applicable);
    ``problem`` is a piece of the message that says what is wrong; ``fix`` a piece
    of the part after " - " that says how to fix it. ``options`` are keyword
    arguments of ``Warehouse.ingest`` (the CLI tests turn them into options).
    """

    id: str
    name: str
    content: object  # str, bytes, or a function(path) that writes the file
    problem: str
    fix: str
    row: int | None = None
    column: str | None = None
    options: dict = field(default_factory=dict)

    def write(self, folder: Path) -> Path:
        path = folder / self.name
        if callable(self.content):
            self.content(path)
        elif isinstance(self.content, str):
            path.write_bytes(self.content.encode("utf-8"))
        else:
            path.write_bytes(self.content)
        return path

    def cli_options(self) -> list[str]:
        args: list[str] = []
        for key, value in self.options.items():
            if key == "columns":
                for canonical, original in value.items():
                    args += ["--column", f"{canonical}={original}"]
            elif key == "constants":
                for canonical, constant in value.items():
                    args += ["--set", f"{canonical}={constant}"]
            elif key == "replace":
                args += ["--replace"] if value else []
            else:
                args += [f"--{key}", str(value)]
        return args


H = SCORE_HEADER
P = PREDICTION_HEADER

BAD_CASES = [
    BadCase("missing-column", "scores.csv", _lines("run_id,order,task,language,metric,score", "n1,none,xnli,de,accuracy,0.5"),
            "required column 'seed' is missing", "--column seed=", column="seed"),
    BadCase("missing-outcome", "preds.csv", _lines("run_id,task,language,example_id", "r1,xnli,de,ex9"),
            "needs an outcome column", "'correct'"),
    BadCase("score-text", "scores.csv", _lines(H, "n1,none,1,xnli,de,accuracy,0.5", "n1,none,1,xnli,fr,accuracy,abc"),
            "'abc' is not a number", "number", row=2, column="score"),
    BadCase("score-empty", "scores.csv", _lines(H, "n1,none,1,xnli,de,accuracy,0.5", "n1,none,1,xnli,fr,accuracy,"),
            "is empty", "number", row=2, column="score"),
    BadCase("score-blank", "scores.csv", _lines(H, "n1,none,1,xnli,de,accuracy,  "),
            "is empty", "number", row=1, column="score"),
    BadCase("score-nan", "scores.csv", _lines(H, "n1,none,1,xnli,de,accuracy,0.5", "n1,none,1,xnli,fr,accuracy,NaN"),
            "not a finite number", "write the number", row=2, column="score"),
    BadCase("score-python-only-number", "scores.csv", _lines(H, "n1,none,1,xnli,de,loss,1_000"),
            "'1_000' is not a number", "plain number", row=1, column="score"),
    BadCase("score-inf", "scores.csv", _lines(H, "n1,none,1,xnli,de,accuracy,inf"),
            "not a finite number", "write the number", row=1, column="score"),
    BadCase("score-nan-parquet", "scores.parquet", _parquet_nan,
            "not a finite number", "write the number", row=3, column="score"),
    BadCase("score-null-parquet", "scores.parquet", lambda p: _parquet_nan(p, None),
            "is empty", "number", row=3, column="score"),
    BadCase("score-nan-jsonl", "scores.jsonl",
            '{"run_id": "n1", "order": "none", "seed": 1, "task": "xnli", "language": "de", "metric": "accuracy", "score": 0.5}\n'
            '{"run_id": "n1", "order": "none", "seed": 1, "task": "xnli", "language": "fr", "metric": "accuracy", "score": NaN}\n',
            "not a finite number", "write the number", row=2, column="score"),
    BadCase("score-null-jsonl", "scores.jsonl",
            '{"run_id": "n1", "order": "none", "seed": 1, "task": "xnli", "language": "de", "metric": "accuracy", "score": 0.5}\n'
            '{"run_id": "n1", "order": "none", "seed": 1, "task": "xnli", "language": "fr", "metric": "accuracy", "score": null}\n',
            "is empty", "number", row=2, column="score"),
    BadCase("accuracy-above-1", "scores.csv",
            _lines(H, "n1,none,1,xnli,de,accuracy,0.5", "n1,none,1,xnli,fr,accuracy,1.5", "n1,none,1,xnli,sw,accuracy,0.4"),
            "1.5 is outside [0, 1]", "one scale", row=2, column="score"),
    BadCase("accuracy-half-above-1", "scores.csv", _lines(H, "n1,none,1,xnli,de,accuracy,0.5", "n1,none,1,xnli,fr,accuracy,75"),
            "75.0 is outside [0, 1]", "one scale", row=2, column="score"),
    BadCase("percent-above-100", "scores.csv",
            _lines(H, "n1,none,1,xnli,de,accuracy,50", "n1,none,1,xnli,fr,accuracy,150", "n1,none,1,xnli,sw,accuracy,70"),
            "150.0 is outside 0-100", "one scale", row=2, column="score"),
    BadCase("f1-above-1", "scores.csv",
            _lines(H, "n1,none,1,xnli,de,f1,0.5", "n1,none,1,xnli,fr,f1,0.6", "n1,none,1,xnli,sw,f1,7"),
            "7.0 is outside [0, 1]", "one scale", row=3, column="score"),
    BadCase("accuracy-negative", "scores.csv", _lines(H, "n1,none,1,xnli,de,accuracy,0.5", "n1,none,1,xnli,fr,accuracy,-0.1"),
            "-0.1 is negative", "[0, 1]", row=2, column="score"),
    BadCase("duplicate-in-file", "scores.csv",
            _lines(H, "n1,none,1,xnli,de,accuracy,0.5", "n1,none,1,xnli,fr,accuracy,0.6", "n1,none,1,xnli,de,accuracy,0.7"),
            "repeats row 1", "keep one", row=3),
    BadCase("duplicate-vs-warehouse", "scores.csv", _lines(H, "r1,nli>qa,1,xnli,de,accuracy,0.99"),
            "differs from the stored", "--replace", row=1, column="score"),
    BadCase("run-vs-warehouse", "scores.csv", _lines(H, "r1,qa>nli,1,xnli,de,accuracy,0.5"),
            "is stored as", "--replace", row=1),
    BadCase("prediction-duplicate-in-file", "preds.csv", _lines(P, "r1,xnli,de,new1,1", "r1,xnli,de,new1,0"),
            "repeats row 1", "keep one", row=2),
    BadCase("prediction-vs-warehouse", "preds.csv", _lines(P, "r1,xnli,de,ex0,1"),
            "differs from the one stored", "--replace", row=1),
    BadCase("unknown-language", "scores.csv", _lines(H, "n1,none,1,xnli,de,accuracy,0.5", "n1,none,1,xnli,qqq,accuracy,0.5"),
            "unknown language code 'qqq'", "--families", row=2, column="language"),
    BadCase("empty-file", "scores.csv", b"", "empty", "export"),
    BadCase("empty-parquet", "scores.parquet", b"", "empty", "export"),
    BadCase("empty-jsonl", "scores.jsonl", b"\n\n", "no records", "export"),
    BadCase("blank-lines-only", "scores.csv", b"\n\n\n", "no header", "export"),
    BadCase("header-only", "scores.csv", H + "\n", "no data rows", "export"),
    BadCase("header-only-blank-lines", "scores.csv", H + "\n\n\n", "no data rows", "export"),
    BadCase("header-only-parquet", "scores.parquet", lambda p: write_table(scores_frame().head(0), p),
            "no data rows", "export"),
    BadCase("ragged-too-many", "scores.csv", _lines(H, "n1,none,1,xnli,de,accuracy,0.5", "n1,none,1,xnli,fr,accuracy,0.5,9"),
            "8 fields but the header has 7", "separators or quotes", row=2),
    BadCase("ragged-too-few", "scores.csv", _lines(H, "n1,none,1,xnli,de,accuracy,0.5", "n1,none,1,xnli,fr,accuracy"),
            "6 fields but the header has 7", "separators or quotes", row=2),
    BadCase("truncated-parquet", "scores.parquet", _truncated_parquet, "not a readable Parquet file", "truncated"),
    BadCase("csv-not-utf8", "scores.csv",
            (_lines(H, *[f"n{i},none,{i},xnli,de,accuracy,0.5" for i in range(1, 1001)]) + "n9,none,1,xnli,d\xe9,accuracy,0.5\n")
            .encode("latin-1"),
            "can't decode byte 0xe9", "UTF-8", row=1001),
    BadCase("jsonl-not-utf8", "scores.jsonl",
            b'{"run_id": "n1", "order": "none", "seed": 1, "task": "xnli", "language": "de", "metric": "accuracy", "score": 0.5}\n'
            b'{"run_id": "n\xe9"}\n',
            "line 2 is not UTF-8 text", "UTF-8", row=2),
    BadCase("malformed-json", "scores.jsonl",
            '{"run_id": "n1", "order": "none", "seed": 1, "task": "xnli", "language": "de", "metric": "accuracy", "score": 0.5}\n'
            '{"run_id": "n1", "order": "none", "seed": 1, "task": "xnli", "language": "fr", "metric": "accuracy", "score": 0.5\n',
            "line 2 is not valid JSON", "one JSON object per line", row=2),
    BadCase("json-not-object", "scores.jsonl", '["n1", "none", 1]\n', "not an object", "one JSON object per line", row=1),
    BadCase("seed-fraction", "scores.csv", _lines(H, "n1,none,1.5,xnli,de,accuracy,0.5"),
            "'1.5' is not a whole number", "integer", row=1, column="seed"),
    BadCase("seed-text", "scores.csv", _lines(H, "n1,none,1,xnli,de,accuracy,0.5", "n1,none,abc,xnli,fr,accuracy,0.5"),
            "'abc' is not a", "integer", row=2, column="seed"),
    BadCase("seed-fraction-jsonl", "scores.jsonl",
            '{"run_id": "n1", "order": "none", "seed": 1.5, "task": "xnli", "language": "de", "metric": "accuracy", "score": 0.5}\n',
            "1.5 is not a whole number", "integer", row=1, column="seed"),
    BadCase("order-empty", "scores.csv", _lines(H, "n1,none,1,xnli,de,accuracy,0.5", "n2,,1,xnli,de,accuracy,0.5"),
            "'order' is empty", "fill it in", row=2, column="order"),
    BadCase("order-trailing-arrow", "scores.csv", _lines(H, "n1,nli>,1,xnli,de,accuracy,0.5"),
            "order 'nli>' has an empty task", "'none'", row=1, column="order"),
    BadCase("order-leading-arrow", "scores.csv", _lines(H, "n1,>qa,1,xnli,de,accuracy,0.5"),
            "order '>qa' has an empty task", "'none'", row=1, column="order"),
    BadCase("order-double-arrow", "scores.csv", _lines(H, "n1,nli> >qa,1,xnli,de,accuracy,0.5"),
            "has an empty task", "'none'", row=1, column="order"),
    BadCase("run-two-orders", "scores.csv", _lines(H, "n1,nli,1,xnli,de,accuracy,0.5", "n1,qa,1,xnli,fr,accuracy,0.5"),
            "run 'n1' has order 'qa' here but 'nli' on row 1", "own run_id", row=2, column="order"),
    BadCase("run-two-seeds", "scores.csv", _lines(H, "n1,nli,1,xnli,de,accuracy,0.5", "n1,nli,2,xnli,fr,accuracy,0.5"),
            "run 'n1' has seed '2' here but '1' on row 1", "own run_id", row=2, column="seed"),
    BadCase("prediction-duplicate-new-run", "preds.csv", _lines(P, "r5,xnli,de,e1,1", "r5,xnli,de,e2,1", "r5,xnli,de,e1,0"),
            "repeats row 1", "keep one", row=3),
    BadCase("predictions-unknown-run-new-run", "preds.csv", _lines(P, "r5,xnli,de,e1,1", "ghost,xnli,de,e1,1"),
            "predictions for run 'ghost', which the warehouse does not have", "scores first", row=2, column="run_id"),
    BadCase("correct-two-new-run", "preds.csv", _lines(P, "r5,xnli,de,e1,1", "r5,xnli,de,e2,2"),
            "'correct' is '2', not 0 or 1", "write 0 or 1", row=2, column="correct"),
    BadCase("predictions-unknown-run", "preds.csv", _lines(P, "r1,xnli,de,new1,1", "ghost,xnli,de,new1,1"),
            "predictions for run 'ghost', which the warehouse does not have", "scores first", row=2, column="run_id"),
    BadCase("correct-two", "preds.csv", _lines(P, "r1,xnli,de,new1,1", "r1,xnli,de,new2,2"),
            "'correct' is '2', not 0 or 1", "write 0 or 1", row=2, column="correct"),
    BadCase("correct-yes", "preds.csv", _lines(P, "r1,xnli,de,new1,yes"),
            "'correct' is 'yes', not 0 or 1", "write 0 or 1", row=1, column="correct"),
    BadCase("correct-two-parquet", "preds.parquet",
            lambda p: write_table(pd.DataFrame({"run_id": ["r1", "r1"], "task": "xnli", "language": "de",
                                                "example_id": ["new1", "new2"], "correct": [1, 2]}), p),
            "'correct' is 2, not 0 or 1", "write 0 or 1", row=2, column="correct"),
    BadCase("mapped-column-absent", "scores.csv", _lines(H.replace("seed", "Seed"), "n1,none,1,xnli,de,accuracy,0.5"),
            "--column seed=Run: the file has no column 'Run'", "columns are:", options={"columns": {"seed": "Run"}}),
    BadCase("kind-ambiguous", "mixed.csv", _lines(H + ",example_id", "n1,none,1,xnli,de,accuracy,0.5,e1"),
            "cannot tell scores from predictions", "--kind"),
    BadCase("no-kind", "other.csv", _lines("a,b", "1,2"), "neither a 'score' nor an 'example_id'", "--kind"),
]


def pytest_generate_tests(metafunc):
    if "bad_case" in metafunc.fixturenames:
        metafunc.parametrize("bad_case", BAD_CASES, ids=[case.id for case in BAD_CASES])
