"""Exporters: the same DAG as an Airflow 3 DAG file or a Prefect 3 flow that calls crane.

Each exported task runs ``crane dag run-task DAG TASK`` — one pipeline definition,
many runners (DESIGN.md principle 8): the peer owns scheduling, retries, timeouts and
callbacks; crane runs exactly one task per call. What the peer cannot express is
listed in ``Export.notes`` — printed by ``crane dag export`` and written in the
file's header — never dropped silently.

Adding an exporter is one module registering an `Exporter` in `exporters`::

    exporters.register("dagster")(DagsterExporter())
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crane.registry import Registry

if TYPE_CHECKING:
    from crane.orchestrate.dag import DagSpec, TaskSpec


@dataclass
class ExportSettings:
    """Where the exported code finds crane and the project (overridable by env at run time)."""

    project: Path
    crane: str = "crane"  # the executable, or e.g. "/opt/venv/bin/crane"
    loaded: Any = None  # the loaded `Project`, to find DuckDB files tasks write


def exclusive_locks(spec: DagSpec, task: TaskSpec, loaded: Any) -> list[str]:
    """The DuckDB files a task writes (one writer per file): the peer must serialize them."""
    from crane.orchestrate.tasks import task_types
    from crane.orchestrate.tasks.sql import connection_url, writer_locks

    locks = [
        lock
        for lock in task_types.get(task.type or "").locks(task.options(), loaded)
        if not lock.startswith("pool:")
    ]
    if task.writes:
        locks += writer_locks(connection_url(task.writes, loaded))
    return list(dict.fromkeys(locks))


@dataclass
class Export:
    text: str
    notes: list[str] = field(default_factory=list)  # what was not (fully) translated
    suffix: str = ".py"


class Exporter:
    name = ""

    def export(self, spec: DagSpec, settings: ExportSettings) -> Export:
        raise NotImplementedError


exporters: Registry[Exporter] = Registry(
    "exporter",
    builtins={
        "airflow": "crane.orchestrate.exporters.airflow",
        "prefect": "crane.orchestrate.exporters.prefect",
    },
)


def export_dag(spec: DagSpec, to: str, settings: ExportSettings) -> Export:
    return exporters.get(to).export(spec, settings)


# -- shared by the exporters ------------------------------------------------------------------
def render(template: str, **values: Any) -> str:
    """Render ``templates/<template>`` (Jinja2; Python literals come in pre-rendered)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("crane.orchestrate.exporters", "templates"),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Python source, not HTML  # noqa: S701
    )
    env.filters["pyrepr"] = pyrepr
    return env.get_template(template).render(**values)


def identifier(name: str, taken: set[str]) -> str:
    """A readable Python variable for a task name (``load-orders`` → ``load_orders``)."""
    base = re.sub(r"\W", "_", name)
    if base[0].isdigit() or keyword.iskeyword(base) or base in taken:
        base = f"task_{base}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def common_notes(spec: DagSpec, peer: str) -> list[str]:
    """Untranslatable features shared by both peers."""
    notes = []
    if spec.deadline is not None:
        notes.append(
            f"DAG deadline ({_deadline_text(spec.deadline)}): {peer} gets no deadline; "
            "run under `crane scheduler` for deadline alerts"
        )
    for task in spec.tasks:
        if task.deadline is not None:
            notes.append(
                f"task {task.name}: deadline ({_deadline_text(task.deadline)}) not translated"
            )
        if task.branch:
            notes.append(f"task {task.name}: branching not translated; every downstream path runs")
        if task.type == "python" and task.depends_on:
            notes.append(
                f"task {task.name}: values returned by upstream tasks are not passed "
                "(each task runs in its own crane call); pass data by table"
            )
    transient = [t.name for t in spec.tasks if t.retries and t.retry_on == "transient"]
    if transient:
        notes.append(
            f"retry_on transient not translated ({peer} retries any failure) for: "
            + ", ".join(transient)
        )
    return notes


def _deadline_text(deadline: Any) -> str:
    parts = []
    if deadline.within is not None:
        parts.append(f"within {deadline.within:g}s")
    if deadline.at is not None:
        parts.append(f"at {deadline.at}")
    return ", ".join(parts)


def task_callbacks(spec: DagSpec, task: TaskSpec) -> dict[str, bool]:
    """Which alert callbacks a task needs (DAG-level ``on_retry`` applies to every task)."""
    return {
        "failure": bool(task.on_failure),
        "retry": bool(task.on_retry or spec.on_retry),
        "success": bool(task.on_success),
    }


def backoff(task: TaskSpec) -> list[float]:
    """The delays before each retry (crane's formula, capped), for peers that take a list.

    >>> from crane.orchestrate.dag import TaskSpec
    >>> backoff(TaskSpec(name="t", command="x", retries=4, retry_delay=10, max_retry_delay=50))
    [10.0, 20.0, 40.0, 50.0]
    """
    import dataclasses

    from crane.orchestrate.retry import policy

    rules = dataclasses.replace(policy(task), jitter=0.0)
    return [round(rules.delay(n), 3) for n in range(1, task.retries + 1)]


def pyrepr(value: Any) -> str:
    """A Python literal, strings in double quotes (as ruff format writes them).

    >>> print(pyrepr("daily"), pyrepr("it's"), pyrepr(None))
    "daily" "it's" None
    """
    if isinstance(value, list):
        return "[" + ", ".join(pyrepr(item) for item in value) + "]"
    text = repr(value)
    if isinstance(value, str) and '"' not in value and "\\" not in text:
        return f'"{text[1:-1]}"' if text[0] == "'" else text
    return text
