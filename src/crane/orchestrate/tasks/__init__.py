"""Task types: one module per type, registered by name in `task_types`.

A task type turns a task's options (validated by its ``Options`` model) and a
`TaskContext` into a call. Built in: ``pipeline``, ``sql``, ``python``,
``shell``. The model (plan/apply/load) and quality-check parts add ``model`` and
``quality`` here as one module each plus a line in ``_BUILTINS`` / ``INFER_TYPE``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from crane.registry import Registry

if TYPE_CHECKING:
    from crane.project import Project

_BUILTINS = {
    "pipeline": "crane.orchestrate.tasks.pipeline",
    "sql": "crane.orchestrate.tasks.sql",
    "python": "crane.orchestrate.tasks.python",
    "shell": "crane.orchestrate.tasks.shell",
    # "model": "crane.orchestrate.tasks.model",      (warehouse part: plan/apply/load)
    "quality": "crane.orchestrate.tasks.quality",  # a failing check stops downstream
}
# a task that names one of these keys (and no ``type``) is of the type given here
INFER_TYPE = {
    "pipeline": "pipeline",
    "sql": "sql",
    "command": "shell",
    "callable": "python",
    "check": "quality",
}


class Options(BaseModel):
    """Base of every task type's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class TaskType:
    """What a task type implements. Subclasses set ``name`` and ``Options``."""

    name: ClassVar[str]
    Options: ClassVar[type[Options]]

    def run(self, options: Any, ctx: TaskContext) -> Any:
        """Do the work; return a small JSON-able value (passed to downstream tasks) or None."""
        raise NotImplementedError

    def locks(self, options: Any, project: Project | None) -> list[str]:
        """Resources needing exclusive use, e.g. ``duckdb:/path/wh.duckdb`` (one writer)."""
        return []

    def describe(self, options: Any) -> str:
        """A short label for ``crane dag show``."""
        return self.name


task_types: Registry[TaskType] = Registry("task type", _BUILTINS)


@dataclass
class TaskContext:
    """What a running task may know: the run, its parameters and its upstream outputs."""

    dag: str
    task: str
    run_id: str
    attempt: int
    logical_date: dt.datetime
    data_interval_start: dt.datetime
    data_interval_end: dt.datetime
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    project: Project | None = None
    log_path: Path | None = None
    timeout: float | None = None
    _cancels: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)

    def template_values(self) -> dict[str, Any]:
        """The names templates may use (``{{ ds }}``, ``{{ params.x }}``, ``{{ inputs.t }}``…)."""
        return {
            "dag": self.dag,
            "task": self.task,
            "run_id": self.run_id,
            "attempt": self.attempt,
            "logical_date": self.logical_date.isoformat(),
            "ds": self.logical_date.date().isoformat(),
            "ds_nodash": self.logical_date.strftime("%Y%m%d"),
            "ts": self.logical_date.isoformat(),
            "data_interval_start": self.data_interval_start.isoformat(),
            "data_interval_end": self.data_interval_end.isoformat(),
            "params": self.params,
            "inputs": self.inputs,
        }

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Register how to stop this task (kill a subprocess, interrupt a query)."""
        self._cancels.append(callback)
        if self._cancelled.is_set():
            callback()

    def cancel(self) -> None:
        """Called by the executor on timeout: run every registered stop callback."""
        self._cancelled.set()
        for callback in list(self._cancels):
            with contextlib.suppress(Exception):  # best effort: the task fails either way
                callback()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def table(self, name: str, connection: str = "warehouse") -> dict[str, str]:
        """A reference to pass large data downstream: return this instead of the rows."""
        return {"table": name, "connection": connection}
