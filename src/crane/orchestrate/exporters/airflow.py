"""Export a crane DAG as an Airflow 3 DAG file (``airflow.sdk.DAG`` + ``BashOperator``).

Mapping (checked against Airflow 3.3's ``BaseOperator``): ``retries`` → ``retries``,
``retry_delay`` → ``retry_delay``, ``retry_multiplier`` → ``retry_exponential_backoff``
(a multiplier since Airflow 3.x; 0 = constant delay), ``max_retry_delay`` →
``max_retry_delay``, ``timeout`` → ``execution_timeout``, ``pool`` → ``pool``,
``trigger_rule`` → ``TriggerRule``, ``max_workers`` → ``max_active_tasks``, callbacks →
``on_*_callback`` calling ``crane dag notify``. Tasks writing one DuckDB file share a
one-slot pool (DuckDB allows one writing process).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shlex
from typing import TYPE_CHECKING

from crane.orchestrate.exporters import (
    Export,
    Exporter,
    ExportSettings,
    common_notes,
    exclusive_locks,
    exporters,
    identifier,
    pyrepr,
    render,
    task_callbacks,
)

if TYPE_CHECKING:
    from crane.orchestrate.dag import DagSpec, TaskSpec

_RULES = {
    "all_success": "ALL_SUCCESS",
    "all_done": "ALL_DONE",
    "one_failed": "ONE_FAILED",
    "none_failed": "NONE_FAILED",
}


class AirflowExporter(Exporter):
    name = "airflow"

    def export(self, spec: DagSpec, settings: ExportSettings) -> Export:
        notes = common_notes(spec, "Airflow")
        setup: list[str] = []
        pools = self._pools(spec, settings, notes, setup)
        taken: set[str] = {"dag", "dt", "os", "shlex", "subprocess", "pendulum", "notify"}
        names = {t.name: identifier(t.name, taken) for t in spec.tasks}
        tasks = [
            {"name": t.name, "var": names[t.name], "kwargs": self._kwargs(spec, t, pools)}
            for t in spec.tasks
        ]
        if spec.schedule is None:
            notes.append("no schedule: the Airflow DAG runs only when triggered")
        text = render(
            "airflow.py.j2",
            dag_name=spec.name,
            description=spec.description,
            schedule=spec.schedule,
            timezone=spec.timezone,
            start=dt.date(dt.datetime.now(dt.UTC).year - 1, 1, 1),
            catchup=spec.catchup,
            max_active_runs=spec.max_active_runs,
            max_workers=spec.max_workers,
            on_failure=bool(spec.on_failure),
            on_success=bool(spec.on_success),
            crane=settings.crane,
            project=str(settings.project),
            tasks=tasks,
            edges=_edges(spec, names),
            uses_rules=any(t.trigger_rule != "all_success" for t in spec.tasks),
            notes=notes,
            setup=setup,
        )
        return Export(text, notes + [f"setup: {line}" for line in setup])

    def _pools(
        self, spec: DagSpec, settings: ExportSettings, notes: list[str], setup: list[str]
    ) -> dict[str, str]:
        """task → Airflow pool: its crane pool, or a one-slot pool per DuckDB file written."""
        chosen: dict[str, str] = {}
        for pool, size in spec.pools.items():
            about = shlex.quote(f"crane pool of DAG {spec.name}")
            setup.append(f"airflow pools set {pool} {size} {about}")
        writers: dict[str, str] = {}
        for task in spec.tasks:
            locks = exclusive_locks(spec, task, settings.loaded)
            if task.pool:
                chosen[task.name] = task.pool
                if locks:
                    notes.append(
                        f"task {task.name}: writes {locks[0]} and is in pool {task.pool}; "
                        "an Airflow task has one pool, so its DuckDB writes are not serialized"
                    )
            elif locks:
                lock = locks[0]
                if lock not in writers:
                    digest = hashlib.sha1(lock.encode()).hexdigest()[:8]
                    writers[lock] = f"crane_writer_{digest}"
                    about = shlex.quote(f"one writer: {lock.removeprefix('duckdb:')}")
                    setup.append(f"airflow pools set {writers[lock]} 1 {about}")
                chosen[task.name] = writers[lock]
        return chosen

    def _kwargs(
        self, spec: DagSpec, task: TaskSpec, pools: dict[str, str]
    ) -> list[tuple[str, str]]:
        kwargs: list[tuple[str, str]] = []
        if task.retries:
            kwargs += [
                ("retries", repr(task.retries)),
                ("retry_delay", _delta(task.retry_delay)),
            ]
            if task.retry_multiplier > 1:
                kwargs += [
                    ("retry_exponential_backoff", repr(task.retry_multiplier)),
                    ("max_retry_delay", _delta(task.max_retry_delay)),
                ]
        if task.timeout:
            kwargs.append(("execution_timeout", _delta(task.timeout)))
        if task.name in pools:
            kwargs.append(("pool", pyrepr(pools[task.name])))
        if task.trigger_rule != "all_success":
            kwargs.append(("trigger_rule", f"TriggerRule.{_RULES[task.trigger_rule]}"))
        wanted = task_callbacks(spec, task)
        for kind, argument in (("failure", "failed"), ("retry", "retry"), ("success", "success")):
            if wanted[kind]:
                kwargs.append((f"on_{kind}_callback", f'notify("task_{argument}")'))
        if task.group:
            kwargs.append(("doc_md", pyrepr(f"crane group: {task.group}")))
        return kwargs


def _delta(seconds: float) -> str:
    return f"dt.timedelta(seconds={seconds:g})"


def _edges(spec: DagSpec, names: dict[str, str]) -> list[str]:
    graph = spec.graph()
    lines = []
    for task in spec.tasks:
        upstream = [names[u] for u in graph.upstream[task.name]]
        if len(upstream) == 1:
            lines.append(f"{upstream[0]} >> {names[task.name]}")
        elif upstream:
            lines.append(f"[{', '.join(upstream)}] >> {names[task.name]}")
    return lines


exporters.register("airflow")(AirflowExporter())
