"""``crane init``: scaffold a project that runs as it is."""

import shlex
from pathlib import Path
from typing import Annotated

import typer


def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the project.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Create crane.yml, example pipelines (YAML and Python), .env.example and a sample source."""
    from crane.templates import scaffold

    written = scaffold(directory, force=force)
    typer.echo(f"Created a crane project in {directory}:")
    for path in written:
        typer.echo(f"  {path}")
    where = "" if directory.resolve() == Path.cwd() else f"cd {shlex.quote(str(directory))} && "
    typer.echo(f"Next: {where}crane run --all && crane runs")
