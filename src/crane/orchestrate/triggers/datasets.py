"""Dataset events: a run that updated a dataset tells the DAGs waiting for it.

A dataset is named ``<connection>.<table>``. A pipeline task that loaded rows
(``rows_loaded > 0``) updated its target table (``warehouse.orders``); any task
may also return ``{"dataset": name}`` or ``{"datasets": [names]}``. A load of
zero rows is no update: downstream DAGs (``on_dataset: [...]``) do not run.
Events live in the history database (`TriggerState.emit`), whoever ran the
DAG: the scheduler, a backfill or ``crane dag run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crane.orchestrate.triggers.state import TriggerState

if TYPE_CHECKING:
    from crane.orchestrate.dag import DagSpec
    from crane.orchestrate.executor import DagRunResult
    from crane.orchestrate.history import HistoryStore
    from crane.project import Project


def record_datasets(
    history: HistoryStore, spec: DagSpec, result: DagRunResult, project: Project | None
) -> dict[str, int | None]:
    """Emit a dataset event for each dataset the run updated (whoever ran it: the
    scheduler, a backfill, ``crane dag run``); returns them."""
    found = produced_datasets(spec, result, project)
    if found:
        state = TriggerState(history)
        for dataset, rows in found.items():
            state.emit(dataset, spec.name, result.run_id, rows)
    return found


def produced_datasets(
    spec: DagSpec, result: DagRunResult, project: Project | None
) -> dict[str, int | None]:
    """Datasets a successful task updated: pipeline tasks that loaded rows (``<connection>.
    <table>``), and any task returning ``{"dataset": name}`` or ``{"datasets": [names]}``."""
    found: dict[str, int | None] = {}
    for name, run in result.tasks.items():
        output = run.output
        if run.state != "success" or not isinstance(output, dict):
            continue
        for dataset in _declared(output):
            found[dataset] = output.get("rows_loaded")
        task = spec.task(name)
        if task.type == "pipeline" and (output.get("rows_loaded") or 0) > 0:
            found[_pipeline_dataset(task, output, project)] = int(output["rows_loaded"])
    return found


def _declared(output: dict[str, Any]) -> list[str]:
    names = output.get("datasets") or []
    if isinstance(output.get("dataset"), str):
        names = [output["dataset"], *names]
    return [str(n) for n in names]


def _pipeline_dataset(task: Any, output: dict[str, Any], project: Project | None) -> str:
    connection = "warehouse"
    if project is not None:
        target = project.pipeline(task.options().pipeline).target
        connection = target.connection or "warehouse"
    return f"{connection}.{output.get('table')}"
