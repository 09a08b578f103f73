"""Sequenced intermediate-task training: configs, runs and sweeps into the warehouse.

>>> from seqrob.training import load_config, with_overrides, sweep
>>> config = with_overrides(load_config(), seeds=2, max_steps=30)   # the embedded default, smaller
>>> result = sweep(config, db="seqrob.duckdb")                      # doctest: +SKIP

``seqrob train`` is this, from the command line. One run on its own:
``seqrob.training.run.run(spec)`` for each ``spec`` in ``plan(config)``
(importing ``seqrob.training.run`` imports torch; this module does not).
"""

from seqrob.training.config import (
    RunSpec,
    SweepConfig,
    default_config_path,
    load_config,
    parse_config,
    plan,
    with_overrides,
)
from seqrob.training.sweep import SweepResult, sweep

__all__ = [
    "RunSpec",
    "SweepConfig",
    "SweepResult",
    "default_config_path",
    "load_config",
    "parse_config",
    "plan",
    "sweep",
    "with_overrides",
]
