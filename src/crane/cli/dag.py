"""``crane dag list|validate|show|run|runs``: DAGs under ``dags/``, run locally, their history."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from crane.cli.app import JsonOption, ProjectOption

app = typer.Typer(help="DAGs: list, validate, show, run; their run history.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="DAG name (see `crane dag list`).")]
RUNS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "run"),
    ("dag", "dag"),
    ("state", "state"),
    ("logical_date", "logical date"),
    ("started_at", "started"),
    ("seconds", "seconds"),
    ("error", "error"),
)
ATTEMPT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("task", "task"),
    ("attempt", "try"),
    ("state", "state"),
    ("started_at", "started"),
    ("duration", "seconds"),
    ("output", "output"),
    ("error", "error"),
    ("log_path", "log"),
)


def _load(project: Path | None) -> tuple[Any, dict[str, Any]]:
    from crane.orchestrate.dag import load_dags
    from crane.project import Project

    loaded = Project.load(project)
    return loaded, load_dags(loaded.root, loaded.env)


def _one(dags: dict[str, Any], name: str) -> Any:
    from crane.errors import UnknownNameError
    from crane.orchestrate.dag import _unknown

    if name not in dags:
        raise UnknownNameError(_unknown("DAG", name, dags))
    return dags[name]


@app.command("list")
def list_(json: JsonOption = False, project: ProjectOption = None) -> None:
    """List the project's DAGs."""
    from crane.cli.output import print_json, print_table

    _, dags = _load(project)
    rows = [
        {"dag": s.name, "tasks": len(s.tasks), "schedule": s.schedule, "description": s.description}
        for s in dags.values()
    ]
    if json:
        print_json(rows)
        return
    columns = ["dag", "tasks", "schedule", "description"]
    print_table("DAGs", columns, [list(r.values()) for r in rows])


@app.command()
def validate(
    name: Annotated[str | None, typer.Argument(help="Only this DAG.")] = None,
    project: ProjectOption = None,
) -> None:
    """Check DAG files: fields, names, dependencies, cycles, pipelines and connections."""
    from crane.orchestrate.dag import check_in_project

    began = time.perf_counter()
    loaded, dags = _load(project)
    chosen = [_one(dags, name)] if name else list(dags.values())
    for spec in chosen:
        check_in_project(spec, loaded)
    seconds = time.perf_counter() - began  # parse time matters as DAGs grow (Airflow #11494)
    tasks = sum(len(s.tasks) for s in chosen)
    typer.echo(f"ok: {len(chosen)} DAG(s), {tasks} task(s), parsed in {seconds:.2f}s")


@app.command()
def show(
    name: NameArg,
    mermaid: Annotated[bool, typer.Option("--mermaid", help="Print a Mermaid flowchart.")] = False,
    project: ProjectOption = None,
) -> None:
    """Draw a DAG: layers in the terminal, or Mermaid."""
    from crane.orchestrate.graph import mermaid as to_mermaid
    from crane.orchestrate.tasks import task_types

    _, dags = _load(project)
    spec = _one(dags, name)
    graph = spec.graph()
    labels = {
        t.name: f"{t.name}\n{task_types.get(t.type).describe(t.options())}" for t in spec.tasks
    }
    if mermaid:
        groups = {t.name: t.group for t in spec.tasks}
        typer.echo(to_mermaid(graph, labels, groups, spec.name), nl=False)
        return
    typer.echo(_layered(spec, graph, labels))


def _layered(spec: Any, graph: Any, labels: dict[str, str]) -> str:
    layers = graph.layers()
    lines = [f"DAG {spec.name}  ({len(spec.tasks)} tasks, {len(layers)} layers)"]
    for depth, layer in enumerate(layers, 1):
        lines.append(f"layer {depth}")
        for task_name in layer:
            task = spec.task(task_name)
            notes = [labels[task_name].split("\n", 1)[1]]
            if task.group:
                notes.append(f"group {task.group}")
            if task.pool:
                notes.append(f"pool {task.pool}")
            if task.trigger_rule != "all_success":
                notes.append(task.trigger_rule)
            if task.branch:
                notes.append("branch")
            ups = graph.upstream[task_name]
            arrow = f"  ← {', '.join(ups)}" if ups else ""
            lines.append(f"  ● {task_name}  [{'; '.join(notes)}]{arrow}")
    return "\n".join(lines)


@app.command()
def run(
    name: NameArg,
    from_task: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Resume the last run: this task, what is downstream of it, "
            "and whatever did not succeed run again.",
        ),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run", help="The run to resume with --from (default: latest).")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="A parameter k=v (repeatable).")
    ] = None,
    date: Annotated[
        str | None, typer.Option("--date", help="Logical date YYYY-MM-DD (interval: that day).")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Tasks at once.")] = None,
    json: JsonOption = False,
    project: ProjectOption = None,
) -> None:
    """Run a DAG now, in this process; exit 1 if a task failed."""
    from crane.cli.console import RichConsole
    from crane.cli.output import print_json, print_table
    from crane.orchestrate.dag import check_in_project
    from crane.orchestrate.executor import run_dag
    from crane.orchestrate.history import HistoryStore, location
    from crane.orchestrate.triggers.datasets import record_datasets
    from crane.orchestrate.triggers.state import owner_listener

    loaded, dags = _load(project)
    spec = _one(dags, name)
    check_in_project(spec, loaded)
    history = HistoryStore.open(location(loaded.root, spec.history))
    logical, interval = _dates(date)
    console = RichConsole(quiet=json)
    try:
        result = run_dag(
            spec,
            project=loaded,
            history=history,
            params=_params(param or []),
            logical_date=logical,
            interval=interval,
            max_workers=workers,
            log_dir=loaded.root / ".crane" / "logs",
            from_task=from_task,
            resume_run=run_id,
            console=console,
            on_event=[owner_listener(history)],  # a crash leaves a run the scheduler can fail
        )
        record_datasets(history, spec, result, loaded)  # DAGs with on_dataset see manual runs
    finally:
        console.close()
        history.close()
    records = [
        {
            "task": t.name,
            "state": t.state + (" (kept)" if t.reused else ""),
            "try": t.attempts,
            "output": t.output,
            "error": t.error,
        }
        for t in result.tasks.values()
    ]
    if json:
        print_json(
            {
                "run_id": result.run_id,
                "dag": result.dag,
                "state": result.state,
                "resumed_from": result.resumed_from,
                "tasks": records,
            }
        )
    else:
        title = f"{result.dag} run {result.run_id[:12]}: {result.state}"
        print_table(title, list(records[0]) if records else [], [_cells(r) for r in records])
    if not result.ok:
        raise typer.Exit(1)


def _cells(record: dict[str, Any]) -> list[Any]:
    import json as json_

    out = []
    for key, value in record.items():
        if key == "output" and value is not None and not isinstance(value, str):
            value = json_.dumps(value, default=str)
        if key == "run_id" and isinstance(value, str):
            value = value[:12]
        if key in ("started_at", "logical_date") and isinstance(value, str):
            value = value[:19]
        if isinstance(value, str) and key in ("output", "error"):
            value = value.splitlines()[0][:80] if value else value
        out.append(value)
    return out


def _params(items: list[str]) -> dict[str, Any]:
    import yaml

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--param {item!r}: expected key=value")
        params[key.strip()] = yaml.safe_load(value) if value else ""
    return params


def _dates(date: str | None) -> tuple[Any, Any]:
    import datetime as dt

    if date is None:
        return None, None
    try:
        day = dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC)
    except ValueError:
        raise typer.BadParameter(f"--date {date!r}: expected YYYY-MM-DD") from None
    return day, (day, day + dt.timedelta(days=1))


@app.command()
def runs(
    run_id: Annotated[str | None, typer.Argument(help="Show this run's task attempts.")] = None,
    dag: Annotated[str | None, typer.Option("--dag", help="Only runs of this DAG.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many recent runs.")] = 20,
    json: JsonOption = False,
    project: ProjectOption = None,
) -> None:
    """Recent DAG runs, or one run's task attempts (state, timings, log, error)."""
    from crane.cli.output import print_json, print_table
    from crane.errors import CraneError
    from crane.orchestrate.history import HistoryStore, location
    from crane.project import Project

    loaded = Project.load(project)
    history = HistoryStore.open(location(loaded.root))
    try:
        if run_id is None:
            records = history.runs(dag, limit)
            for r in records:
                r["seconds"] = _seconds(r)
            columns = RUNS_COLUMNS
        else:
            found = history.run(run_id)
            if found is None:
                raise CraneError(f"no DAG run {run_id!r} in {location(loaded.root)}")
            records, columns = found["attempts"], ATTEMPT_COLUMNS
    finally:
        history.close()
    if json:
        print_json(found if run_id is not None else records)
        return
    rows = []
    for record in records:
        row = [record.get(key) for key, _ in columns]
        rows.append(_cells(dict(zip([k for k, _ in columns], row, strict=True))))
    title = "DAG runs" if run_id is None else f"run {run_id}"
    print_table(title, [h for _, h in columns], rows)


def _seconds(record: dict[str, Any]) -> float | None:
    import datetime as dt

    start, end = record.get("started_at"), record.get("finished_at")
    if not start or not end:
        return None
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


@app.command()
def backfill(
    name: NameArg,
    start: Annotated[str, typer.Option("--start", help="First logical date (YYYY-MM-DD[THH:MM]).")],
    end: Annotated[str, typer.Option("--end", help="Last logical date (inclusive).")],
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Also run intervals the scheduler already ran.")
    ] = False,
    json: JsonOption = False,
    project: ProjectOption = None,
) -> None:
    """Run every schedule interval with a logical date in [start, end] (dates in the DAG's
    time zone), up to max_active_runs at once; exit 1 if a run failed."""
    from crane.cli.console import RichConsole
    from crane.cli.output import print_json, print_table
    from crane.orchestrate.dag import check_in_project
    from crane.orchestrate.history import HistoryStore, location
    from crane.orchestrate.scheduler import backfill as run_backfill
    from crane.orchestrate.scheduler import parse_moment

    loaded, dags = _load(project)
    spec = _one(dags, name)
    check_in_project(spec, loaded)
    history = HistoryStore.open(location(loaded.root, spec.history))
    console = RichConsole(quiet=json)
    try:
        done = run_backfill(
            spec,
            parse_moment(start, spec.timezone),
            parse_moment(end, spec.timezone, end=True),
            history=history,
            project=loaded,
            log_dir=loaded.root / ".crane" / "logs",
            console=console,
            rerun=rerun,
        )
    finally:
        console.close()
        history.close()
    rows = [
        {"logical_date": day.isoformat(), "run_id": r.run_id, "state": r.state}
        for day, r in done.runs
    ] + [{"logical_date": s.isoformat(), "run_id": None, "state": "skipped"} for s in done.skipped]
    rows.sort(key=lambda r: str(r["logical_date"]))
    if json:
        print_json(rows)
    else:
        print_table(f"backfill {name}", list(rows[0]) if rows else [], [_cells(r) for r in rows])
    if not done.ok:
        raise typer.Exit(1)


# `crane dag export|run-task|notify` (Airflow/Prefect exporters): crane/cli/dag_peers.py
def _attach_peers() -> None:
    from crane.cli import dag_peers

    dag_peers.attach(app)


_attach_peers()
