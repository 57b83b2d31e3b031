"""Export a crane DAG as a Prefect 3 flow (``@flow``/``@task``, ``ThreadPoolTaskRunner``).

Mapping (checked against Prefect 3.x ``task``): ``retries`` → ``retries``, the backoff
(delay × multiplier, capped) → ``retry_delay_seconds`` as the exact list of delays,
``retry_jitter`` → ``retry_jitter_factor`` (approximate: Prefect adds jitter, crane
subtracts it), ``timeout`` stays crane's (``run-task`` stops the task), ``max_workers``
→ the task runner's ``max_workers``, ``on_failure``/``on_success`` → state hooks
calling ``crane dag notify`` (``on_retry`` → ``retry_condition_fn``: Prefect has no retry
hook, but asks that function right before each retry), the cron schedule and time zone →
``serve(schedules=[Cron(…, timezone=…)])``.
Prefect has no trigger rules: tasks that need one are decided in the flow body (they
wait for their upstream tasks there). Pools and DuckDB one-writer locks become
in-process semaphores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crane.orchestrate.exporters import (
    Export,
    Exporter,
    ExportSettings,
    backoff,
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

_RESERVED = {"flow", "task", "wait", "decide", "notify", "crane_task", "contextlib", "os"}


class PrefectExporter(Exporter):
    name = "prefect"

    def export(self, spec: DagSpec, settings: ExportSettings) -> Export:
        notes = common_notes(spec, "Prefect")
        taken = set(_RESERVED) | {"shlex", "subprocess", "sys", "threading", "runs", "failed"}
        flow_var = identifier(f"{spec.name}_flow", taken)
        names = {t.name: identifier(t.name, taken) for t in spec.tasks}
        slots = {f"pool:{p}": size for p, size in spec.pools.items()}
        graph = spec.graph()
        decided = _decided_in_flow(spec)
        tasks = []
        for task in spec.tasks:
            locks = exclusive_locks(spec, task, settings.loaded)
            slots.update(dict.fromkeys(locks, 1))
            held = ([f"pool:{task.pool}"] if task.pool else []) + locks
            tasks.append(
                {
                    "name": task.name,
                    "var": names[task.name],
                    "kwargs": self._kwargs(spec, task, notes),
                    "slots": held,
                    "upstream": graph.upstream[task.name],
                    "rule": task.trigger_rule if task.name in decided else None,
                }
            )
        if decided:
            notes.append(
                "trigger rules emulated in the flow body for: "
                + ", ".join(sorted(decided))
                + " (they wait for their upstream tasks before being submitted)"
            )
        timed = [t.name for t in spec.tasks if t.timeout]
        if timed:
            notes.append(
                "timeouts enforced by `crane dag run-task` (it stops the task) rather than "
                "Prefect's timeout_seconds, which cannot interrupt a worker thread: "
                + ", ".join(timed)
            )
        if spec.catchup:
            notes.append("catchup: Prefect deployments do not catch up missed runs")
        if spec.max_active_runs > 1:
            notes.append(f"max_active_runs {spec.max_active_runs}: set a deployment limit")
        text = render(
            "prefect.py.j2",
            dag_name=spec.name,
            description=spec.description,
            file_name=f"{spec.name}_flow.py",
            schedule=spec.schedule,
            timezone=spec.timezone,
            crane=settings.crane,
            project=str(settings.project),
            slots=sorted(slots.items()),
            tasks=tasks,
            flow_var=flow_var,
            max_workers=spec.max_workers,
            on_failure=bool(spec.on_failure),
            on_success=bool(spec.on_success),
            uses_rules=bool(decided),
            uses_retry_hook=any(task_callbacks(spec, t)["retry"] and t.retries for t in spec.tasks),
            notes=notes,
        )
        return Export(text, notes)

    def _kwargs(self, spec: DagSpec, task: TaskSpec, notes: list[str]) -> list[tuple[str, str]]:
        kwargs: list[tuple[str, str]] = []
        if task.retries:
            kwargs += [
                ("retries", pyrepr(task.retries)),
                ("retry_delay_seconds", pyrepr(backoff(task))),
            ]
            if task.retry_jitter:
                kwargs.append(("retry_jitter_factor", pyrepr(task.retry_jitter)))
        wanted = task_callbacks(spec, task)
        if wanted["failure"]:
            kwargs.append(("on_failure", '[notify("task_failed")]'))
        if wanted["success"]:
            kwargs.append(("on_completion", '[notify("task_success")]'))
        if wanted["retry"] and task.retries:  # Prefect asks it right before each retry
            kwargs.append(("retry_condition_fn", "notify_then_retry"))
        return kwargs


def _decided_in_flow(spec: DagSpec) -> set[str]:
    """Tasks with a trigger rule, and those downstream that may see a skipped upstream."""
    graph = spec.graph()
    decided: set[str] = set()
    for name in graph.order():
        task = spec.task(name)
        if task.trigger_rule != "all_success" or decided & set(graph.upstream[name]):
            decided.add(name)
    return decided


exporters.register("prefect")(PrefectExporter())
