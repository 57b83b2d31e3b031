"""DAG specs: YAML files under ``dags/`` and the Python decorator API build the same objects.

A YAML DAG::

    name: daily
    params: {region: eu}
    pools: {source_db: 2}
    defaults: {retries: 2, timeout: 600}
    tasks:
      - {name: extract_orders, pipeline: orders, pool: source_db}
      - {name: summary, sql: "CREATE OR REPLACE TABLE s AS SELECT {{ ds }} AS day",
         depends_on: [extract_orders]}
    groups:
      checks:
        depends_on: [summary]
        tasks:
          - {name: count, command: "test -s out.csv"}

The same in Python (`Dag`)::

    dag = Dag("daily", params={"region": "eu"}, pools={"source_db": 2})
    dag.pipeline("extract_orders", "orders", pool="source_db")

    @dag.task(depends_on=["extract_orders"])
    def summary(ctx, extract_orders): ...

Task names are global in a DAG; ``depends_on`` may name a group (= all its tasks).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crane.errors import ConfigError, UnknownNameError
from crane.orchestrate.alerts import Deadline, NotifierRef
from crane.orchestrate.graph import Graph, cycle_text
from crane.orchestrate.tasks import INFER_TYPE, task_types
from crane.orchestrate.triggers import TriggerSpec

if TYPE_CHECKING:
    from crane.config.env import Environment

DAG_DIR = "dags"
TriggerRule = Literal["all_success", "all_done", "one_failed", "none_failed"]
# every field a task may take a default for from the DAG's ``defaults``
_DEFAULTABLE = (
    "retries",
    "retry_delay",
    "retry_multiplier",
    "max_retry_delay",
    "retry_jitter",
    "retry_on",
    "timeout",
    "pool",
    "isolation",
    "max_memory_mb",
    "trigger_rule",
)
# decorated callables by reference, so in-process runs call the very function object
_FUNCTIONS: dict[str, Callable[..., Any]] = {}


class TaskSpec(BaseModel):
    """One task: common scheduling fields; type-specific options are the extra keys."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[A-Za-z0-9_][\w.-]*$")
    type: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    trigger_rule: TriggerRule = "all_success"
    group: str | None = None
    retries: int = Field(0, ge=0)
    retry_delay: float = Field(1.0, ge=0)  # seconds before the first retry
    retry_multiplier: float = Field(2.0, ge=1)
    max_retry_delay: float = Field(300.0, ge=0)
    retry_jitter: float = Field(0.0, ge=0, le=1)
    retry_on: Literal["transient", "any"] = "transient"
    timeout: float | None = Field(None, gt=0)  # seconds; the task is stopped and failed
    pool: str | None = None
    isolation: Literal["thread", "process"] = "thread"
    max_memory_mb: int | None = Field(None, gt=0)  # process tasks: heap limit (a leak fails)
    branch: bool = False  # the return value names the downstream task(s) to run
    writes: str | None = None  # a connection whose DuckDB file this task writes (serialized)
    params: dict[str, Any] = Field(default_factory=dict)
    # alerts (crane/orchestrate/alerts.py): notifier names or inline {type: …, …} mappings
    on_failure: list[NotifierRef] = Field(default_factory=list)
    on_retry: list[NotifierRef] = Field(default_factory=list)
    on_success: list[NotifierRef] = Field(default_factory=list)
    deadline: Deadline | None = None  # alert (do not stop) when not finished in time

    @property
    def options_data(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def options(self) -> Any:
        """The validated type-specific options (``sql``, ``connection``, ``command``, …)."""
        return task_types.get(self.type or "").Options.model_validate(self.options_data)

    @model_validator(mode="after")
    def _typed(self) -> TaskSpec:
        if self.max_memory_mb is not None and self.isolation != "process":
            raise ValueError(f"task {self.name!r}: max_memory_mb needs isolation: process")
        if self.type is None:
            found = [key for key in INFER_TYPE if key in self.options_data]
            if len(found) != 1:
                keys = ", ".join(INFER_TYPE)
                raise ValueError(
                    f"task {self.name!r}: set 'type' or exactly one of {keys}"
                    + (f" (found {', '.join(found)})" if found else "")
                )
            self.type = INFER_TYPE[found[0]]
        try:
            self.options()
        except UnknownNameError as error:
            raise ValueError(f"task {self.name!r}: {error}") from None
        except ValueError as error:  # pydantic ValidationError is a ValueError
            raise ValueError(f"task {self.name!r} ({self.type}): {_short(error)}") from None
        return self


class GroupSpec(BaseModel):
    """A task group: shared upstream dependencies, and a box in ``crane dag show``."""

    model_config = ConfigDict(extra="forbid")

    depends_on: list[str] = Field(default_factory=list)
    description: str | None = None


class DagSpec(BaseModel):
    """A DAG. ``schedule``/``timezone``/``catchup``/``max_active_runs`` drive the scheduler."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_][\w.-]*$")
    description: str | None = None
    schedule: str | None = None  # cron expression (the scheduler reads it)
    timezone: str = "UTC"
    catchup: bool = False
    max_active_runs: int = Field(1, ge=1)
    max_catchup_runs: int | None = Field(None, ge=0)  # catchup: only the N most recent intervals
    on_dataset: list[str] = Field(default_factory=list)  # run when all of these got new data
    triggers: list[TriggerSpec] = Field(default_factory=list)  # file / nats / redis events
    params: dict[str, Any] = Field(default_factory=dict)
    pools: dict[str, int] = Field(default_factory=dict)
    max_workers: int = Field(4, ge=1)
    defaults: dict[str, Any] = Field(default_factory=dict)
    groups: dict[str, GroupSpec] = Field(default_factory=dict)
    tasks: list[TaskSpec] = Field(default_factory=list)
    history: str | None = None  # run-history URL (sqlite:///… or postgresql://…)
    # alerts (crane/orchestrate/alerts.py): named notifiers, run-level callbacks, deadline
    notifiers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    on_failure: list[NotifierRef] = Field(default_factory=list)
    on_retry: list[NotifierRef] = Field(default_factory=list)
    on_success: list[NotifierRef] = Field(default_factory=list)
    deadline: Deadline | None = None

    def has_alerts(self) -> bool:
        """Whether a run needs the alert manager (callbacks or deadlines anywhere)."""
        items: list[Any] = [self, *self.tasks]
        return any(
            i.on_failure or i.on_retry or i.on_success or i.deadline is not None for i in items
        )

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        """``tasks`` as a mapping, groups holding ``tasks``, ``defaults`` → plain task lists."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        tasks = _task_list(data.get("tasks") or [])
        groups = dict(data.get("groups") or {})
        for group, body in list(groups.items()):
            if isinstance(body, dict) and "tasks" in body:
                body = dict(body)
                for item in _task_list(body.pop("tasks") or []):
                    tasks.append({**item, "group": group} if isinstance(item, dict) else item)
                groups[group] = body
        defaults = data.get("defaults") or {}
        if isinstance(defaults, dict):
            unknown = sorted(set(defaults) - set(_DEFAULTABLE))
            if unknown:
                raise ValueError(f"defaults: unknown field(s) {unknown}; allowed: {_DEFAULTABLE}")
            tasks = [{**defaults, **t} if isinstance(t, dict) else t for t in tasks]
        data["tasks"], data["groups"] = tasks, groups
        return data

    @model_validator(mode="after")
    def _check(self) -> DagSpec:
        names = [t.name for t in self.tasks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"task name(s) defined twice: {', '.join(dupes)}")
        clash = sorted(set(names) & set(self.groups))
        if clash:
            raise ValueError(f"name(s) used for both a task and a group: {', '.join(clash)}")
        for task in self.tasks:
            if task.group is not None and task.group not in self.groups:
                self.groups[task.group] = GroupSpec()
            if task.pool is not None and task.pool not in self.pools:
                raise ValueError(f"task {task.name!r}: {_unknown('pool', task.pool, self.pools)}")
        for pool, size in self.pools.items():
            if size < 1:
                raise ValueError(f"pool {pool!r} must allow at least 1 task (got {size})")
        graph = self.graph()  # resolves names
        cycle = graph.find_cycle()
        if cycle:
            raise ValueError(f"dependency cycle: {cycle_text(cycle)}")
        if self.has_alerts():
            from crane.orchestrate.alerts import check_notifiers

            check_notifiers(self)  # unknown notifier names / options fail validation
        return self

    def task(self, name: str) -> TaskSpec:
        for task in self.tasks:
            if task.name == name:
                return task
        raise UnknownNameError(_unknown("task", name, [t.name for t in self.tasks]))

    def members(self, group: str) -> list[str]:
        return [t.name for t in self.tasks if t.group == group]

    def graph(self) -> Graph:
        """The dependency graph: each task's ``depends_on`` plus its group's, groups expanded."""
        known = {t.name for t in self.tasks}
        members: dict[str, list[str]] = {g: [] for g in self.groups}
        for task in self.tasks:
            if task.group is not None:
                members.setdefault(task.group, []).append(task.name)
        return Graph.of({t.name: self._upstream(t, known, members) for t in self.tasks})

    def _upstream(
        self, task: TaskSpec, known: set[str], members: dict[str, list[str]]
    ) -> list[str]:
        names = list(task.depends_on)
        if task.group is not None:
            own = set(members[task.group])
            names += [n for n in self.groups[task.group].depends_on if n not in own]
        result: list[str] = []
        for name in names:
            if name in members:
                result += [m for m in members[name] if m != task.name]
            elif name in known:
                result.append(name)
            else:
                raise ValueError(
                    f"task {task.name!r} depends on "
                    + _unknown("task or group", name, sorted(known | set(self.groups)))
                )
        return list(dict.fromkeys(result))


def check_in_project(spec: DagSpec, project: Any) -> None:
    """What only the project can tell: named pipelines and connections exist."""
    from crane.orchestrate.tasks.sql import connection_url

    problems = []
    for task in spec.tasks:
        try:
            task_types.get(task.type or "").locks(task.options(), project)
            if task.writes:
                connection_url(task.writes, project)
        except ConfigError as error:
            problems.append(f"task {task.name!r}: {error.detail}")
    if spec.schedule:  # here, not in DagSpec: croniter costs ~0.2 s to import
        from crane.orchestrate.triggers.cron import Schedule

        try:
            Schedule(spec.schedule, spec.timezone)
        except ConfigError as error:
            problems.append(error.detail)
    if problems:
        raise ConfigError(f"DAG {spec.name}: " + "; ".join(problems))


def _task_list(tasks: Any) -> list[Any]:
    if isinstance(tasks, dict):
        return [{"name": name, **(body or {})} for name, body in tasks.items()]
    return list(tasks)


def _unknown(kind: str, name: str, known: Any) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=3)
    text = f"unknown {kind} {name!r}; known: {', '.join(names) or 'none'}"
    return text + (f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else "")


def _short(error: Exception) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        parts = []
        for err in errors():
            loc = ".".join(str(k) for k in err["loc"])
            msg = "unknown option" if err["type"] == "extra_forbidden" else err["msg"]
            parts.append(f"{loc}: {msg}" if loc else str(msg))
        return "; ".join(parts)
    return str(error)


# -- the Python API -------------------------------------------------------------------------
class Dag:
    """Build a `DagSpec` in Python; ``dag.spec`` equals the spec of the same DAG in YAML."""

    def __init__(self, name: str, **settings: Any) -> None:
        self.name = name
        self.settings = settings
        self.tasks: list[dict[str, Any]] = []
        self._group: str | None = None

    def add(self, name: str, **fields: Any) -> str:
        """Add a task (``type``, or a key: ``sql``/``command``/``callable``); returns its name."""
        if "depends_on" in fields:
            fields["depends_on"] = [_name_of(d) for d in fields["depends_on"]]
        if self._group is not None and "group" not in fields:
            fields["group"] = self._group
        self.tasks.append({"name": name, **fields})
        return name

    def task(self, name: str | None = None, **fields: Any) -> Callable[[Callable[..., Any]], Any]:
        """Decorator: a Python task calling the function (``isolation='process'`` imports it)."""

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            ref = callable_ref(fn)
            _FUNCTIONS[ref] = fn
            self.add(name or fn.__name__, callable=ref, **fields)
            fn.task_name = name or fn.__name__  # type: ignore[attr-defined]
            return fn

        return decorate

    def pipeline(self, name: str, pipeline: str, **fields: Any) -> str:
        return self.add(name, pipeline=pipeline, **fields)

    def sql(self, name: str, sql: str | list[str], **fields: Any) -> str:
        return self.add(name, sql=sql, **fields)

    def shell(self, name: str, command: str | list[str], **fields: Any) -> str:
        return self.add(name, command=command, **fields)

    @contextlib.contextmanager
    def group(self, name: str, depends_on: list[Any] | None = None) -> Iterator[None]:
        """Tasks added inside ``with dag.group("checks"):`` belong to the group."""
        groups = self.settings.setdefault("groups", {})
        groups[name] = {"depends_on": [_name_of(d) for d in depends_on or []]}
        previous, self._group = self._group, name
        try:
            yield
        finally:
            self._group = previous

    @property
    def spec(self) -> DagSpec:
        return DagSpec.model_validate({"name": self.name, **self.settings, "tasks": self.tasks})


def _name_of(item: Any) -> str:
    return str(getattr(item, "task_name", item))


def callable_ref(fn: Callable[..., Any]) -> str:
    """``module:qualname``, or ``/path/file.py:qualname`` for a DAG file loaded by path."""
    module = sys.modules.get(fn.__module__)
    file = getattr(module, "__file__", None)
    if fn.__module__.startswith("_crane_dags_") and file:
        return f"{file}:{fn.__qualname__}"
    return f"{fn.__module__}:{fn.__qualname__}"


def registered_function(ref: str) -> Callable[..., Any] | None:
    return _FUNCTIONS.get(ref)


# -- loading a project's dags/ ----------------------------------------------------------------
def load_dags(root: Path, env: Environment | None = None) -> dict[str, DagSpec]:
    """Every DAG under ``root/dags``: ``*.yml`` (one DAG, named after the file by default)
    and ``*.py`` (defining ``dag`` or a ``dags`` list). Names must be unique."""
    from crane.config.env import Environment

    env = env if env is not None else Environment.load(root)
    folder = root / DAG_DIR
    found: dict[str, DagSpec] = {}
    files: dict[str, str] = {}
    paths = sorted(folder.glob("*.y*ml")) + sorted(folder.glob("*.py")) if folder.is_dir() else []
    for path in paths:
        if path.name.startswith(("_", ".")):
            continue
        loaded = _load_python(path) if path.suffix == ".py" else [_load_yaml(path, root, env)]
        for spec in loaded:
            display = str(path.relative_to(root))
            if spec.name in found:
                raise ConfigError(
                    f"DAG {spec.name!r} is defined twice: in {files[spec.name]} and {display}",
                    file=display,
                )
            found[spec.name], files[spec.name] = spec, display
    return found


def _load_yaml(path: Path, root: Path, env: Environment) -> DagSpec:
    from crane.config.loader import read_document, validate

    doc = read_document(path, root, env)
    if not isinstance(doc.data, dict):
        raise doc.fail((), "a DAG file must be a mapping with 'tasks'")
    return validate(DagSpec, {"name": path.stem, **doc.data}, doc)


def _load_python(path: Path) -> list[DagSpec]:
    module_name = f"_crane_dags_{abs(hash(str(path)))}_{path.stem}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ConfigError(f"cannot import {path}", file=str(path))
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module  # decorated functions find their file while it runs
    sys.path.insert(0, str(path.parent))
    try:
        loader_spec.loader.exec_module(module)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(f"{type(error).__name__}: {error}", file=str(path)) from error
    finally:
        sys.path.remove(str(path.parent))
    items = ([module.dag] if hasattr(module, "dag") else []) + list(getattr(module, "dags", []))
    if not items:
        raise ConfigError("a DAG file must define `dag = Dag(...)` or `dags`", file=str(path))
    return [item.spec if isinstance(item, Dag) else item for item in items]
