"""``crane run`` and ``crane runs``: run pipelines, show the run history."""

from typing import Annotated, Any

import typer

from crane.cli.app import DebugOption, JsonOption, ProjectOption

RUN_COLUMNS = (
    ("pipeline", "pipeline"),
    ("status", "status"),
    ("rows_extracted", "extracted"),
    ("rows_loaded", "loaded"),
    ("rows_quarantined", "quarantined"),
    ("duration", "seconds"),
    ("throughput", "rows/s"),
    ("error", "error"),
)
HISTORY_COLUMNS = (
    ("run_id", "run"),
    ("pipeline", "pipeline"),
    ("status", "status"),
    ("started_at", "started"),
    ("rows_extracted", "extracted"),
    ("rows_loaded", "loaded"),
    ("rows_quarantined", "quarantined"),
    ("duration", "seconds"),
    ("throughput", "rows/s"),
    ("error", "error"),
)


def run(
    pipelines: Annotated[
        list[str] | None, typer.Argument(help="Pipelines to run.", metavar="PIPELINE")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every pipeline of the project.")] = False,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Ignore saved watermarks; reload everything.")
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for a running load of the same pipeline.")
    ] = False,
    warehouse: Annotated[
        str | None, typer.Option("--warehouse", help="Warehouse URL or connection name.")
    ] = None,
    json: JsonOption = False,
    debug: DebugOption = False,
    project: ProjectOption = None,
) -> None:
    """Run pipelines (extract, transform, load) and report rows and timings per pipeline."""
    from crane.cli.console import RichConsole
    from crane.cli.output import print_json, print_table
    from crane.project import Project

    if not pipelines and not all_:
        raise typer.BadParameter("name the pipelines to run, or pass --all")
    if pipelines and all_:
        raise typer.BadParameter(f"--all runs every pipeline: drop {' '.join(pipelines)}, or --all")
    loaded = Project.load(project, overrides={"warehouse": warehouse} if warehouse else None)
    if all_ and not loaded.pipelines:
        raise typer.BadParameter(f"the project at {loaded.root} has no pipelines yet")
    console = RichConsole(quiet=json)
    try:
        outcomes = loaded.run(
            pipelines or (), all_=all_, full_refresh=full_refresh, wait=wait, console=console
        )
    finally:
        console.close()
    records = [o.as_dict() for o in outcomes]
    if json:
        print_json(records)
    else:
        print_table(None, [h for _, h in RUN_COLUMNS], [_row(r, RUN_COLUMNS) for r in records])
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed:
        _report_failure(outcome, debug)
    if failed:
        raise typer.Exit(1)


def _report_failure(outcome: Any, debug: bool) -> None:
    import sys
    import traceback

    from crane.config.secrets import mask

    error = outcome.error or getattr(outcome.result, "error", None) or "failed"
    if debug and isinstance(outcome.error, BaseException):
        print(mask("".join(traceback.format_exception(outcome.error))), file=sys.stderr, end="")
    else:
        print(f"error: pipeline {outcome.pipeline}: {mask(str(error))}", file=sys.stderr)


def runs(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many recent runs.")] = 20,
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="Only runs of this pipeline.")
    ] = None,
    json: JsonOption = False,
    project: ProjectOption = None,
) -> None:
    """Show recent runs: rows extracted, loaded, quarantined, duration, throughput."""
    from crane.cli.output import print_json, print_table
    from crane.config.secrets import mask
    from crane.project import Project
    from crane.state.store import list_runs

    loaded = Project.load(project, warehouse_only=True)
    records = list_runs(loaded.warehouse_url, limit, pipeline=pipeline)
    records = [{k: mask(v) if isinstance(v, str) else v for k, v in r.items()} for r in records]
    if json:
        print_json(records)
        return
    if not records:
        import sys

        which = f" of pipeline {pipeline}" if pipeline else ""
        print(f"no runs{which} recorded in {mask(loaded.warehouse_url)} yet", file=sys.stderr)
        return
    columns = [c for c in HISTORY_COLUMNS if any(c[0] in r for r in records)] or HISTORY_COLUMNS
    print_table("recent runs", [h for _, h in columns], [_row(r, columns) for r in records])


def _row(record: dict[str, Any], columns: Any) -> list[Any]:
    row = []
    for key, _ in columns:
        value = record.get(key)
        if key == "duration" and value is None:
            value = record.get("duration_seconds") or record.get("seconds")
        if key == "started_at" and value is not None:
            value = str(value)[:19]  # to the second; the JSON output keeps the full instant
        if key == "run_id" and isinstance(value, str):
            value = value[:12]
        if key == "error" and isinstance(value, str):
            value = value.splitlines()[0][:80] if value else value
        row.append(value)
    return row
