"""The ``seqrob`` command line: one thin command per library call.

Each command group lives in its own module; this module assembles them and turns
every :class:`~seqrob.warehouse.errors.SeqrobError` into one readable line and a
non-zero exit code (no traceback for a user's mistake).

Start-up is part of the interface (``seqrob --help`` in under 0.3 s; see
``benchmarks/startup.py``): the command modules import typer and rich only, and each
command imports the library (pandas, DuckDB, the statistics) when it runs.
"""

from __future__ import annotations

import signal
import sys

import typer

try:  # Typer >= 0.20 carries its own copy of click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older Typer uses click itself
    from click.exceptions import ClickException

from seqrob.cli import analyze, demo, ingest, report, simulate, train, warehouse
from seqrob.cli._common import console_error

app = typer.Typer(
    name="seqrob",
    help="Does the order of intermediate tasks really change cross-lingual accuracy "
    "and its stability across seeds, or was it seed noise?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ingest.register(app)
warehouse.register(app)
simulate.register(app)
analyze.register(app)
train.register(app)
report.register(app)
demo.register(app)


def run() -> None:
    """The ``seqrob`` script and ``python -m seqrob``: :func:`main`, then deaf to Ctrl-C.

    Once the command has returned, what it did is committed; a Ctrl-C while the
    interpreter tears down (closing DuckDB, freeing modules: a tenth of a second or more)
    would otherwise kill the process silently with SIGINT, a failure with no message for
    work that was done. Not part of :func:`main`, which tests call in their own process.
    """
    try:
        main()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> None:
    """The command line on ``argv`` (``sys.argv`` when None), with one-line errors."""
    try:
        returned = app(args=argv, standalone_mode=False)
        if returned == 130:  # typer turns Ctrl-C into a returned 130 when not standalone
            raise KeyboardInterrupt
    except ClickException as error:  # a usage mistake: unknown option, missing argument, bad value
        context = getattr(error, "ctx", None)
        where = context.command_path if context is not None else "seqrob"
        where = "seqrob" + where[where.index(" "):] if " " in where else "seqrob"
        console_error(f"{error.format_message()} - see '{where} --help'")
        sys.exit(error.exit_code)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        console_error("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        console_error("interrupted: the warehouse keeps only what was committed before")
        sys.exit(130)
    except Exception as error:
        if _interrupted(error):  # Ctrl-C while DuckDB ran a query (its own exception, not KeyboardInterrupt)
            console_error("interrupted: the warehouse keeps only what was committed before")
            sys.exit(130)
        if not _is_user_error(error):
            raise
        console_error(str(error))
        sys.exit(error.exit_code)


def _interrupted(error: BaseException) -> bool:
    """Whether ``error`` (or what it hides: an exception raised while handling another) is
    DuckDB's answer to Ctrl-C."""
    while error is not None:
        if type(error).__name__ == "InterruptException" or "Query interrupted" in str(error):
            return True
        error = error.__context__
    return False


def _is_user_error(error: Exception) -> bool:
    """Whether ``error`` is a SeqrobError, asked without importing seqrob.warehouse
    (and so DuckDB and pandas) at start-up: one was raised only if its module is loaded."""
    errors = sys.modules.get("seqrob.warehouse.errors")
    return errors is not None and isinstance(error, errors.SeqrobError)
