"""Ingest throughput and peak memory (issue: foundation).

Writes a predictions file of N rows (3 orders x 10 seeds x 30 languages x examples)
as Parquet and CSV, ingests each into a fresh warehouse in a child process, and
prints rows/s and the child's peak RSS, then ingests the same file again (every row
already stored) in a fresh child and prints its peak RSS. Targets: >= 1M rows/s from Parquet,
>= 300k rows/s from CSV, memory bounded by streaming (peak RSS far below what the
file would take in memory).

    python benchmarks/ingest_benchmark.py            # 10M rows
    python benchmarks/ingest_benchmark.py --rows 1e6 # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

LANGUAGES = ["en", "de", "fr", "es", "ru", "hi", "bn", "ur", "fa", "el", "bg", "fi", "et", "hu", "ta",
             "te", "ml", "tr", "kk", "ar", "he", "zh", "my", "ja", "ko", "id", "sw", "yo", "th", "vi"]
ORDERS = ["none", "nli>qa", "qa>nli"]
SEEDS = range(1, 11)

_CHILD = """
import json, resource, sys, time
from seqrob.warehouse import Warehouse
db, scores, predictions = sys.argv[1:4]
with Warehouse(db) as wh:
    wh.ingest([scores])
    start = time.perf_counter()
    result = wh.ingest([predictions])
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": int(result["rows_stored"].sum()),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# The same file again, in a fresh process (its own peak RSS): every row is already stored.
_REINGEST = """
import json, resource, sys, time
from seqrob.warehouse import Warehouse
db, predictions = sys.argv[1:3]
with Warehouse(db) as wh:
    start = time.perf_counter()
    result = wh.ingest([predictions])
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": int(result["rows_skipped"].sum()),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_files(rows: int, folder: Path, csv: bool) -> tuple[Path, Path, Path | None]:
    runs = [(f"{o}-s{s}", o, s) for o in ORDERS for s in SEEDS]
    per_cell = max(1, rows // (len(runs) * len(LANGUAGES)))
    scores = pd.DataFrame(
        [dict(run_id=r, order=o, seed=s, task="xnli", language=l, metric="accuracy", score=0.7)
         for r, o, s in runs for l in LANGUAGES]
    )
    scores_path = folder / "scores.parquet"
    scores.to_parquet(scores_path)
    parquet_path = folder / "predictions.parquet"
    csv_path = folder / "predictions.csv" if csv else None
    rng = np.random.default_rng(0)
    writer = None
    csv_writer = None
    example_ids = pa.array([f"ex{i}" for i in range(per_cell)])
    for run_id, _, _ in runs:
        n = per_cell * len(LANGUAGES)
        table = pa.table({
            "run_id": pa.array([run_id] * n),
            "task": pa.array(["xnli"] * n),
            "language": pa.array(np.repeat(LANGUAGES, per_cell)),
            "example_id": pa.concat_arrays([example_ids] * len(LANGUAGES)),
            "correct": pa.array(rng.integers(0, 2, n, dtype=np.int8)),
        })
        if writer is None:
            writer = pq.ParquetWriter(parquet_path, table.schema)
            if csv_path is not None:
                csv_writer = pacsv.CSVWriter(csv_path, table.schema)
        writer.write_table(table)
        if csv_writer is not None:
            csv_writer.write_table(table)
    writer.close()
    if csv_writer is not None:
        csv_writer.close()
    return scores_path, parquet_path, csv_path


def measure(scores: Path, predictions: Path, folder: Path) -> dict:
    db = folder / f"bench-{predictions.suffix[1:]}.duckdb"
    out = subprocess.run([sys.executable, "-c", _CHILD, str(db), str(scores), str(predictions)],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["file_mb"] = predictions.stat().st_size / 2**20
    again = subprocess.run([sys.executable, "-c", _REINGEST, str(db), str(predictions)],
                           check=True, capture_output=True, text=True)
    result["again"] = json.loads(again.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=10e6, help="prediction rows (default 10M)")
    parser.add_argument("--no-csv", action="store_true", help="skip the CSV measurement")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        scores, parquet, csv = write_files(int(args.rows), folder, not args.no_csv)
        print(f"wrote the files in {time.perf_counter() - start:.1f} s")
        targets = {"parquet": 1_000_000, "csv": 300_000}
        for name, path in (("parquet", parquet), ("csv", csv)):
            if path is None:
                continue
            r = measure(scores, path, folder)
            rate = r["rows"] / r["seconds"]
            print(
                f"{name:8s} {r['rows']:>11,} rows  {r['file_mb']:7.0f} MB file  {r['seconds']:6.2f} s  "
                f"{rate / 1e6:5.2f} M rows/s  (target {targets[name] / 1e6:.1f} M: x{rate / targets[name]:.2f})  "
                f"peak RSS {r['peak_rss_mb']:,.0f} MB"
            )
            a = r["again"]
            print(f"{'':8s} re-ingest (all {a['rows']:,} rows already stored): {a['seconds']:6.2f} s  peak RSS {a['peak_rss_mb']:,.0f} MB")


if __name__ == "__main__":
    main()
