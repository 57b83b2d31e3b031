"""``python -m crane`` — the same as the ``crane`` command."""

from crane.cli import main

main()
