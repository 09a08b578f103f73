"""Named exceptions shared by every layer of seqrob.

Every error a user can cause is a :class:`SeqrobError`. Its message is one line
that says what is wrong, where (file, row, column) and how to fix it; the CLI
prints exactly that line and exits non-zero, without a traceback.
"""

from __future__ import annotations

__all__ = [
    "SeqrobError",
    "InputError",
    "WarehouseInUse",
    "SchemaError",
    "DesignError",
    "ConfigError",
]


class SeqrobError(Exception):
    """Base class of every error seqrob raises for a user's mistake."""

    exit_code = 2


class InputError(SeqrobError):
    """A file or table offered to seqrob cannot be used as it is.

    Parameters
    ----------
    problem
        What is wrong, in words ("score 'abc' is not a number").
    file, row, column
        Where it is. ``row`` counts data rows from 1 (the header is not a row).
    fix
        How to fix it, in words.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.row = row
        self.column = column
        self.fix = fix
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = ", ".join(where) + ": " + self.problem if where else self.problem
        if self.fix:
            text += f" - {self.fix}"
        return text


class WarehouseInUse(SeqrobError):
    """Another process holds the warehouse file."""

    exit_code = 3


class SchemaError(SeqrobError):
    """The warehouse file is not a seqrob warehouse, or is newer than this seqrob."""


class DesignError(SeqrobError):
    """The stored design cannot support the requested analysis."""


class ConfigError(SeqrobError):
    """A configuration file or option is invalid."""
