"""``python -m crane.cli`` — the same as the ``crane`` command."""

from crane.cli import main

main()
