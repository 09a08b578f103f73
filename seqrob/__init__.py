"""seqrob: does the order of intermediate tasks really change cross-lingual accuracy
and its stability across seeds, or was it seed noise?

The public API mirrors the CLI: ``seqrob ingest`` is ``Warehouse.ingest``,
``seqrob warehouse info`` is ``Warehouse.info``, ``seqrob simulate`` is
``seqrob.warehouse.simulate``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("seqrob")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
