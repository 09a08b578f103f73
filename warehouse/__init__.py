"""The seqrob warehouse: stored runs, scores, per-example outcomes and analyses (DuckDB).

>>> from seqrob.warehouse import Warehouse
>>> wh = Warehouse("results.duckdb")          # doctest: +SKIP
>>> wh.ingest(["scores.csv", "predictions.parquet"])  # doctest: +SKIP
"""

from seqrob.warehouse.errors import (
    ConfigError,
    DesignError,
    InputError,
    SchemaError,
    SeqrobError,
    WarehouseInUse,
)
from seqrob.warehouse.store import Warehouse, default_path

__all__ = [
    "Warehouse",
    "default_path",
    "SeqrobError",
    "InputError",
    "WarehouseInUse",
    "SchemaError",
    "DesignError",
    "ConfigError",
]
