"""The Typer application: one module per command group, assembled here.

Building a command makes Typer inspect every parameter of its function (type
hints, defaults, help), which costs about as much as importing Typer itself
when done for all of crane's ~50 parameters. An invocation needs one command,
so `build_app` builds only the one named on the command line (see
`invoked_command`); ``crane --help``, a typo ("did you mean") and anything
unusual still get the whole app, so what a user sees is the same either way.
"""

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project", "-p", help="Project directory (default: search upwards for crane.yml)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")]

# command name -> (module, function); listed in this order by ``crane --help``
COMMANDS = {
    "init": ("crane.cli.init", "init"),
    "run": ("crane.cli.run", "run"),
    "runs": ("crane.cli.run", "runs"),
    "check": ("crane.cli.check", "check"),
    "profile": ("crane.cli.profile", "profile"),
    "scheduler": ("crane.cli.scheduler", "scheduler"),
}
# group name -> (module, Typer app); listed after the commands
GROUPS = {
    "pipeline": ("crane.cli.pipeline", "app"),
    "config": ("crane.cli.config", "app"),
    "dag": ("crane.cli.dag", "app"),
    "model": ("crane.cli.model", "app"),
}
# the root's own options; all are flags, so the first other word names the command
_ROOT_FLAGS = ("--debug",)


def build_app(only: str | None = None) -> typer.Typer:
    """The app with every command, or with just the command or group named ``only``.

    >>> sorted(typer.main.get_command(build_app("runs")).commands)
    ['runs']
    """
    app = typer.Typer(
        name="crane",
        help="crane: pipelines, quality, orchestration and warehouse design for data engineers.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
    )
    app.callback()(_root)
    for name, (module, function) in COMMANDS.items():
        if only in (None, name):
            app.command(name)(_load(module, function))
    for name, (module, sub_app) in GROUPS.items():
        if only in (None, name):
            app.add_typer(_load(module, sub_app), name=name)
    return app


def invoked_command(args: Sequence[str]) -> str | None:
    """The crane command ``args`` run, when that is certain; None means "build everything".

    >>> invoked_command(["--debug", "run", "orders"]), invoked_command(["--help", "run"])
    ('run', None)
    """
    for arg in args:
        if arg in _ROOT_FLAGS:
            continue
        return arg if arg in COMMANDS or arg in GROUPS else None
    return None


def _load(module: str, attribute: str) -> Any:
    return getattr(importlib.import_module(module), attribute)


def _print_version(wanted: bool) -> None:
    """``--version`` is eager: it answers before Click asks for a command."""
    if wanted:
        import crane

        typer.echo(f"crane {crane.__version__}")
        raise typer.Exit(0)


def _root(
    debug: DebugOption = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """crane: pipelines, quality, orchestration and warehouse design for data engineers."""
