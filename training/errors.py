"""Named errors of training: what the CLI prints as one line (exit 2, or 130 when interrupted).

Each is a :class:`~seqrob.warehouse.errors.SeqrobError`; those about a config are
also :class:`~seqrob.warehouse.errors.ConfigError`, so a caller that catches
config errors catches them too.
"""

from __future__ import annotations

from seqrob.warehouse.errors import ConfigError, SeqrobError

__all__ = ["OutOfRange", "UnknownModel", "SweepTooLarge", "Interrupted"]


class OutOfRange(ConfigError):
    """A number in a config is outside what seqrob can train with or store (the message gives the range)."""


class UnknownModel(ConfigError):
    """``model.name`` is neither ``tiny``, a Hugging Face model id, nor a folder with a config.json."""


class SweepTooLarge(ConfigError):
    """A sweep's estimated size (runs, stored predictions, memory) is over a limit; the message
    gives the estimate and the option or config key that raises the limit."""


class Interrupted(SeqrobError):
    """The sweep was interrupted (Ctrl-C); what was stored stays, and a rerun resumes."""

    exit_code = 130

    def __init__(self, stored: int) -> None:
        self.stored = stored
        super().__init__(f"interrupted; {stored} runs stored, rerun to resume")
