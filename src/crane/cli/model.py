"""``crane model validate|ddl|plan|apply``: the warehouse model, checked, rendered and built."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crane.cli.app import JsonOption, ProjectOption

if TYPE_CHECKING:
    from crane.project import Project
    from crane.warehouse.model_files import LoadedModel

app = typer.Typer(help="Design the warehouse: validate, render DDL, plan and apply.")

DialectOption = Annotated[
    str,
    typer.Option("--dialect", "-d", help="duckdb, postgres, snowflake, bigquery or redshift."),
]
TargetOption = Annotated[
    str | None,
    typer.Option("--target", help="Connection name or URL (default: the project warehouse)."),
]
StateOption = Annotated[
    str, typer.Option("--state-schema", help="Schema of crane's helper tables.")
]


def _load(project: Path | None) -> tuple[Project, LoadedModel]:
    from crane.project import Project
    from crane.warehouse.model_files import load_models
    from crane.warehouse.validate import validate

    loaded = Project.load(project)
    return loaded, validate(load_models(loaded.root, loaded.env))


@app.command("validate")
def validate_(json: JsonOption = False, project: ProjectOption = None) -> None:
    """Check models/*.yml: grain, references, business keys, measures, physical options."""
    from crane.cli.output import print_json
    from crane.config.loader import SpecError

    try:
        _, model = _load(project)
    except SpecError as error:
        if not json:
            raise
        # CI reads the problems as data: file, line, field, reason (exit 1 all the same)
        keys = ("file", "line", "field", "reason")
        problems = [dict(zip(keys, p, strict=True)) for p in error.problems]
        print_json({"ok": False, "problems": problems})
        raise typer.Exit(1) from None
    summary = {
        "files": model.files,
        "dimensions": [d.name for d in model.model.dimensions],
        "facts": [f.name for f in model.model.facts],
        "bridges": [b.name for b in model.model.bridges],
    }
    if json:
        print_json({"ok": True, **summary})
        return
    typer.echo(
        f"ok: {len(summary['dimensions'])} dimensions, {len(summary['facts'])} facts, "
        f"{len(summary['bridges'])} bridges in {len(model.files)} file(s)"
    )


@app.command("ddl")
def ddl(
    dialect: DialectOption = "duckdb",
    helpers: Annotated[
        bool, typer.Option("--helpers/--no-helpers", help="crane's helper tables.")
    ] = True,
    samples: Annotated[
        bool, typer.Option("--samples/--no-samples", help="Sample analytical views.")
    ] = True,
    project: ProjectOption = None,
) -> None:
    """Print the complete warehouse schema SQL for one engine."""
    from crane.warehouse import ddl as render

    _, model = _load(project)
    statements = render.build(model.model, dialect, helpers=helpers, samples=samples)
    typer.echo(f"-- crane model ddl --dialect {dialect}")
    typer.echo(render.script(statements), nl=False)


@app.command("plan")
def plan(
    target: TargetOption = None,
    sql: Annotated[bool, typer.Option("--sql", help="Show each change's statements.")] = False,
    state_schema: StateOption = "_crane",
    json: JsonOption = False,
    project: ProjectOption = None,
) -> None:
    """Show what `apply` would change in the target, as a readable diff."""
    from crane.cli.output import print_json
    from crane.connectors.base import connect
    from crane.warehouse import plan as planner

    loaded, model = _load(project)
    with connect(_url(loaded, target)) as con:
        result = planner.plan(model.model, con, state_schema=state_schema)
    if json:
        print_json(result.as_dict())
        return
    typer.echo(result.render(sql=sql))


@app.command("apply")
def apply(
    target: TargetOption = None,
    allow_destructive: Annotated[
        bool,
        typer.Option("--allow-destructive", help="Also drop and retype columns."),
    ] = False,
    state_schema: StateOption = "_crane",
    json: JsonOption = False,
    project: ProjectOption = None,
) -> None:
    """Build or change the target so it matches the model (one transaction)."""
    from crane.cli.output import print_json
    from crane.connectors.base import connect
    from crane.warehouse import plan as planner

    loaded, model = _load(project)
    with connect(_url(loaded, target)) as con:
        result = planner.plan(model.model, con, state_schema=state_schema)
        done = planner.apply(result, con, allow_destructive=allow_destructive)
    if json:
        print_json({**result.as_dict(), "applied": done.applied, "skipped": done.skipped})
        return
    typer.echo(result.render())
    typer.echo(f"applied {done.applied} change(s), {done.statements} statement(s)")
    for detail in done.skipped:
        typer.echo(f"not applied (needs a rebuild): {detail}", err=True)


def _url(project: Project, target: str | None) -> str:
    if target is None:
        return project.warehouse_url
    return project.resolve_url(target) if "://" in target else project.connection_url(target)


@app.command("load")
def load(
    names: Annotated[
        list[str] | None, typer.Argument(help="Dimensions/facts to load (default: all).")
    ] = None,
    target: TargetOption = None,
    json: JsonOption = False,
    project: ProjectOption = None,
) -> None:
    """Fill the star schema from each object's `source:` SELECT (dimensions, then facts)."""
    from crane.cli.output import print_json
    from crane.connectors.base import connect
    from crane.errors import CraneError
    from crane.warehouse.load import load_model, locate

    loaded, model = _load(project)
    with connect(_url(loaded, target)) as con:
        try:
            result = load_model(con, model.model, names or ())
        except CraneError as error:
            located = locate(error, model)  # the model file and line of the object
            if located is error:
                raise
            raise located from error
    if json:
        print_json(
            {
                "run_id": result.run_id,
                "objects": [o.as_dict() for o in result.objects],
                "skipped": result.skipped,
            }
        )
        return
    for o in result.objects:
        extra = f", {o.deleted} replaced" if o.deleted else ""
        extra += f", {o.unknown} with an unknown member" if o.unknown else ""
        extra += f", {o.quarantined} quarantined in {o.quarantine_table}" if o.quarantined else ""
        extra += f", {o.unchanged} unchanged" if o.unchanged else ""
        typer.echo(
            f"{o.kind:<9} {o.table:<24} {o.rows_in:>6} in, {o.inserted:>6} inserted, "
            f"{o.updated:>5} updated{extra} ({o.seconds:.2f}s)"
        )
    for name in result.skipped:
        typer.echo(f"skipped {name}: no `source:` declared")
    typer.echo(f"run {result.run_id}: loaded {len(result.objects)} object(s)")
