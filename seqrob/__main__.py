"""``python -m seqrob`` is the ``seqrob`` command."""

from seqrob.cli import run

run()
