"""seqrob: does the order of intermediate tasks really change cross-lingual accuracy
and its stability across seeds, or was it seed noise?

The public API mirrors the CLI: ``seqrob ingest`` is ``Warehouse.ingest``,
``seqrob warehouse info`` is ``Warehouse.info``, ``seqrob simulate`` is
``seqrob.simulate``, ``seqrob analyze significance`` is ``seqrob.analyze`` (on a
warehouse or a DataFrame of scores) and ``seqrob report`` is ``Result.report``.

>>> import seqrob as sr
>>> with sr.Warehouse(":memory:") as wh:
...     stored = wh.ingest_frames(scores=sr.simulate(seeds=3).scores)
...     len(wh.experiments())
1

The public names are imported on first use: ``import seqrob`` (and so every
``seqrob`` command, ``--help`` too) does not pay for DuckDB, pandas and the
statistics until something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seqrob.analysis import Options
    from seqrob.api import Result, analyze
    from seqrob.warehouse import Warehouse
    from seqrob.warehouse.simulate import simulate

__all__ = ["__version__", "Warehouse", "simulate", "analyze", "Options", "Result"]

#: Public name -> the module that holds it.
_LAZY = {
    "Warehouse": "seqrob.warehouse",
    "simulate": "seqrob.warehouse.simulate",
    "analyze": "seqrob.api",
    "Result": "seqrob.api",
    "Options": "seqrob.analysis",
}


def __getattr__(name: str) -> object:
    if name == "__version__":
        value: object = _version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'seqrob' has no attribute {name!r}")
    globals()[name] = value  # asked once: later lookups find it without __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _version() -> str:
    # importlib.metadata costs tens of milliseconds at import: only the report asks for it.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("seqrob")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+unknown"
