"""``python -m seqrob`` is the ``seqrob`` command."""

from seqrob.cli import main

main()
