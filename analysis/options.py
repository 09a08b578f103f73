"""The parameters of an analysis: one frozen dataclass, shared by the API, the CLI and the report.

An analysis is stored with :meth:`Options.parameters`; the report reuses a stored
analysis only when these match its request exactly (and the data is unchanged).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from seqrob.warehouse.errors import InputError

__all__ = ["Options"]

_CORRECTIONS = ("holm", "bh")


@dataclass(frozen=True)
class Options:
    """What to analyse and how.

    Attributes
    ----------
    task, metric, experiment, method
        Restrict to these (default: every task and metric; the one experiment stored;
        every training method, each analysed on its own).
    baseline
        The order listed first in every comparison table (``none`` = target task alone).
        Every pair of orders is compared either way; without the baseline stored, the
        orders are listed by name.
    alpha
        Level of the tests; intervals are ``1 - alpha``.
    correction
        ``"holm"`` (family-wise error) or ``"bh"`` (false discovery rate), within each
        family of tests of one task x metric (:mod:`seqrob.analysis.multiplicity`).
    n_boot
        Bootstrap replicates.
    seed
        Seed of every resampling RNG (the analysis is reproducible from it).
    effect
        The order difference (metric units: 0.01 = 1 point of accuracy) the power
        analysis sizes seeds for.
    """

    task: str | None = None
    metric: str | None = None
    experiment: str | None = None
    method: str | None = None
    baseline: str = "none"
    alpha: float = 0.05
    correction: str = "holm"
    n_boot: int = 10_000
    seed: int = 0
    effect: float = 0.01

    def __post_init__(self) -> None:
        if self.correction not in _CORRECTIONS:
            raise InputError(f"unknown correction '{self.correction}'", fix="use --correction holm or --correction bh")
        if not 0 < self.alpha < 0.5:
            raise InputError(f"alpha {self.alpha} is outside (0, 0.5)", fix="use e.g. --alpha 0.05")
        if self.n_boot < 100:
            raise InputError(f"--n-boot {self.n_boot} is too few replicates", fix="use at least 1000 (10000 recommended)")
        if not self.effect > 0:
            raise InputError(f"--effect {self.effect} must be positive", fix="e.g. --effect 0.01 (1 point of accuracy)")

    @classmethod
    def of(cls, options: Options | None = None, **overrides) -> Options:
        """``options`` (default: the defaults) with ``overrides``; an unknown name is an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise InputError(f"unknown analysis option(s) {', '.join(unknown)}", fix="options: " + ", ".join(sorted(names)))
        return replace(options or cls(), **overrides)

    @property
    def confidence(self) -> float:
        return 1.0 - self.alpha

    def parameters(self) -> dict:
        """The options as stored with an analysis (JSON-ready)."""
        return asdict(self)
