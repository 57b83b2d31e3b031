"""``crane dag export|run-task|notify``: hand a DAG to Airflow or Prefect.

``export`` writes the peer's file; the exported tasks call ``run-task`` (exactly one
task, with the peer's run id and data interval) and the peer's callbacks call
``notify`` (the DAG's configured notifiers). Attached to ``crane dag`` by cli/dag.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from crane.cli.app import JsonOption, ProjectOption

NameArg = Annotated[str, typer.Argument(help="DAG name (see `crane dag list`).")]
EVENTS = ("task_failed", "task_retry", "task_success", "run_failed", "run_success")


def attach(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("run-task")(run_task)
    app.command("notify")(notify)


def export(
    name: NameArg,
    to: Annotated[str, typer.Option("--to", help="airflow or prefect.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here (default: print the code).")
    ] = None,
    crane: Annotated[
        str, typer.Option("--crane", help="The crane command the peer's workers run.")
    ] = "crane",
    json: JsonOption = False,
    project: ProjectOption = None,
) -> None:
    """Write the DAG as an Airflow 3 DAG file or a Prefect 3 flow calling crane per task.

    What the peer cannot express is listed (stderr, and the file's header)."""
    from crane.cli.dag import _load, _one
    from crane.cli.output import print_json
    from crane.orchestrate.exporters import ExportSettings, export_dag

    loaded, dags = _load(project)
    spec = _one(dags, name)
    settings = ExportSettings(project=loaded.root.resolve(), crane=crane, loaded=loaded)
    result = export_dag(spec, to, settings)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.text, encoding="utf-8")
    if json:
        print_json({"dag": name, "to": to, "out": str(out) if out else None, "notes": result.notes})
        return
    if out is None:
        typer.echo(result.text, nl=False)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    if out is not None:
        typer.echo(f"wrote {out} ({to}, {len(spec.tasks)} tasks, {len(result.notes)} note(s))")


def run_task(
    name: NameArg,
    task: Annotated[str, typer.Argument(help="The one task to run.")],
    run_id: Annotated[str | None, typer.Option("--run-id", help="The peer's run id.")] = None,
    logical_date: Annotated[
        str | None, typer.Option("--logical-date", help="ISO date-time (or 'None').")
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="Data interval start.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Data interval end.")] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="A parameter k=v (repeatable).")
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Run exactly one task of a DAG (what exported Airflow/Prefect tasks call); exit 1 if
    it failed. Retries and alerts are the caller's: here the task runs once."""
    from crane.cli.console import RichConsole
    from crane.cli.dag import _load, _one, _params
    from crane.orchestrate.executor import run_dag

    loaded, dags = _load(project)
    spec = _one(dags, name)
    single = one_task_spec(spec, task)
    logical, first, last = _when(logical_date), _when(start), _when(end)
    interval = (first, last) if first and last else None
    console = RichConsole()
    try:
        result = run_dag(
            single,
            project=loaded,
            params=_params(param or []),
            logical_date=logical or first,
            interval=interval,
            console=console,
            run_id=run_id,
        )
    finally:
        console.close()
    outcome = result.tasks[task]
    if not result.ok:
        typer.echo(f"{name}.{task} failed: {outcome.error}", err=True)
        raise typer.Exit(1)


def one_task_spec(spec: Any, task: str) -> Any:
    """The DAG reduced to ``task``: no dependencies, one try, no crane-side alerts."""
    chosen = spec.task(task)
    body = chosen.model_dump(exclude_unset=True)
    body.update(depends_on=[], trigger_rule="all_success", retries=0, group=None, branch=False)
    for key in ("on_failure", "on_retry", "on_success", "deadline"):
        body.pop(key, None)
    data = spec.model_dump(
        exclude={"tasks", "groups", "on_failure", "on_retry", "on_success", "deadline"},
        exclude_unset=True,
    )
    data.pop("defaults", None)  # already applied to every task
    return type(spec).model_validate({**data, "tasks": [body]})


def _when(text: str | None) -> Any:
    import datetime as dt

    if not text or text in ("None", "null"):
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected an ISO date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def notify(
    name: NameArg,
    event: Annotated[str, typer.Option("--event", help=f"One of {', '.join(EVENTS)}.")],
    task: Annotated[str | None, typer.Option("--task", help="The task it is about.")] = None,
    run_id: Annotated[str, typer.Option("--run-id", help="The run it is about.")] = "",
    error: Annotated[str | None, typer.Option("--error", help="The error text.")] = None,
    log: Annotated[Path | None, typer.Option("--log", help="A log file to tail.")] = None,
    project: ProjectOption = None,
) -> None:
    """Send an alert to the DAG's notifiers for ``event`` (what exported callbacks call).

    A notifier that fails is reported on stderr; the exit code stays 0."""
    from crane.cli.dag import _load, _one
    from crane.orchestrate.notify import Alert, resolve, send

    if event not in EVENTS:
        raise typer.BadParameter(f"--event {event!r}: one of {', '.join(EVENTS)}")
    _, dags = _load(project)
    spec = _one(dags, name)
    refs = _refs(spec, event, task)
    state = "failed" if event.endswith("failed") else event.split("_", 1)[1]
    alert = Alert(
        event=event,
        dag=name,
        run_id=run_id,
        state=state,
        task=task,
        error=error,
        log_path=str(log) if log else None,
        failed_tasks=[task] if task and event == "task_failed" else [],
    )
    for ref in refs:
        label = ref if isinstance(ref, str) else str(ref.get("type"))
        try:
            send(alert, resolve(ref, spec.notifiers)[1])
            typer.echo(f"sent {event} via {label}")
        except Exception as failure:  # an alert never fails the caller's run
            typer.echo(f"alert via {label} failed: {failure}", err=True)


def _refs(spec: Any, event: str, task: str | None) -> list[Any]:
    item = spec.task(task) if task else spec
    if event == "task_retry":
        return [*item.on_retry, *spec.on_retry]
    kind = "on_failure" if event.endswith("failed") else "on_success"
    return list(getattr(item, kind))
