"""``crane config show``: every effective setting, where it came from, secrets masked."""

from typing import Annotated

import typer

from crane.cli.app import JsonOption, ProjectOption

app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)


@app.command("show")
def show(
    warehouse: Annotated[
        str | None, typer.Option("--warehouse", help="Override the warehouse (as `crane run`).")
    ] = None,
    json: JsonOption = False,
    project: ProjectOption = None,
) -> None:
    """Show settings and their origin: cli > env/.env > crane.yml (with line) > default."""
    from crane.cli.output import print_json, print_table
    from crane.project import Project

    loaded = Project.load(project, overrides={"warehouse": warehouse} if warehouse else None)
    rows = [{"key": s.key, "value": s.value, "origin": s.origin} for s in loaded.settings]
    if json:
        print_json(rows)
    else:
        print_table(
            "configuration",
            ["key", "value", "origin"],
            [[r["key"], r["value"], r["origin"]] for r in rows],
        )
