"""The Typer application: one module per command group, assembled here."""

from pathlib import Path
from typing import Annotated

import typer

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project", "-p", help="Project directory (default: search upwards for crane.yml)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")]


def build_app() -> typer.Typer:
    """A fresh app (commands import their heavy modules only when they run)."""
    from crane.cli import config, init, model, pipeline, run

    app = typer.Typer(
        name="crane",
        help="crane: pipelines, quality, orchestration and warehouse design for data engineers.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
    )
    app.callback()(_root)
    app.command("init")(init.init)
    app.command("run")(run.run)
    app.command("runs")(run.runs)
    app.command("check")(__import__("crane.cli.check", fromlist=["check"]).check)
    app.command("profile")(__import__("crane.cli.profile", fromlist=["profile"]).profile)
    app.add_typer(pipeline.app, name="pipeline")
    app.add_typer(config.app, name="config")
    from crane.cli import dag  # noqa: I001 - orchestration commands

    app.add_typer(dag.app, name="dag")
    app.command("scheduler")(__import__("crane.cli.scheduler", fromlist=["x"]).scheduler)
    app.add_typer(model.app, name="model")
    return app


def _root(
    debug: DebugOption = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """crane: pipelines, quality, orchestration and warehouse design for data engineers."""
    if version:
        import crane

        typer.echo(f"crane {crane.__version__}")
        raise typer.Exit(0)
