"""``quality``: run a check suite read-only; an error-severity failure fails the task.

A failing check therefore stops what depends on it (default trigger rule) and
fires the DAG's ``on_failure`` alerts, while a ``trigger_rule: one_failed`` task can
react::

    tasks:
      - {name: load, pipeline: orders_etl}
      - {name: validate, check: quality, table: orders, depends_on: [load]}
      - {name: publish, command: "...", depends_on: [validate]}

``check`` names a suite under ``checks/`` (file stem) or a path; ``table`` keeps only
that table's checks; ``fail_on: warn`` also fails on warnings. Results go to the
quality history (``crane check`` reads the same store) unless ``record: false``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from crane.errors import ConfigError, CraneError
from crane.orchestrate.tasks import Options, TaskContext, TaskType, task_types
from crane.orchestrate.tasks.sql import writer_locks


class QualityCheckFailed(CraneError):
    """Checks failed at the severity that fails the task: data, not a glitch — no retry."""

    transient = False


class QualityOptions(Options):
    check: str
    table: str | None = None
    fail_on: Literal["error", "warn"] = "error"
    record: bool = True


class QualityTask(TaskType):
    name = "quality"
    Options = QualityOptions

    def run(self, options: QualityOptions, ctx: TaskContext) -> Any:
        from crane.quality.executor import run_suite
        from crane.state.quality import QualityStore, default_url

        project = _project(ctx.project)
        suite = _suite(options, project)
        store = QualityStore(default_url(project.root)) if options.record else None
        outcome = run_suite(suite, store)
        if outcome.error:
            raise CraneError(f"check suite {options.check} could not run: {outcome.error}")
        failing = [r for r in outcome.results if _fails(r, options.fail_on)]
        for result in outcome.results:
            print(f"{result.status:5} {result.severity:5} {result.check}")  # the attempt log
        summary = {"run_id": outcome.run_id, "status": outcome.status, **outcome.counts()}
        if failing:
            names = ", ".join(r.check for r in failing[:5])
            more = f" (+{len(failing) - 5} more)" if len(failing) > 5 else ""
            raise QualityCheckFailed(
                f"{len(failing)} check(s) failed at {options.fail_on} severity: {names}{more}",
                hint=f"crane check --project {project.root} for details",
            )
        return summary

    def locks(self, options: QualityOptions, project: Any) -> list[str]:
        """Read-only, but a DuckDB file written in this process must not be open for
        writing at the same time: take its writer lock."""
        if project is None:
            return []
        suite = _suite(options, project)
        urls = {suite.connections.get(c.connection, c.connection) for c in suite.checks}
        return sorted({lock for url in urls for lock in writer_locks(url)})

    def describe(self, options: QualityOptions) -> str:
        return f"checks {options.check}" + (f" on {options.table}" if options.table else "")


def _fails(result: Any, fail_on: str) -> bool:
    if result.status in ("fail", "error") and result.severity == "error":
        return True
    return fail_on == "warn" and result.status in ("fail", "error", "warn")


def _project(project: Any) -> Any:
    if project is None:
        raise ConfigError("a quality task needs a project (crane.yml)")
    return project


def _suite(options: QualityOptions, project: Any) -> Any:
    from crane.quality.loader import find_suites, load_suite

    def resolve(name: str) -> str:
        if name == "warehouse":
            return str(project.warehouse_url)
        return str(project.resolve_url(name) if "://" in name else project.connection_url(name))

    given = Path(options.check)
    paths = [p for p in find_suites(project.root) if p.stem == options.check]
    if not paths and (project.root / given).is_file():
        paths = [project.root / given]
    if not paths:
        known = ", ".join(p.stem for p in find_suites(project.root)) or "none"
        raise ConfigError(f"unknown check suite {options.check!r}; known: {known}")
    suite = load_suite(paths[0], resolve, "warehouse")
    if options.table:
        suite = suite.select(options.table)
        if not suite.checks:
            raise ConfigError(f"suite {options.check!r} has no checks for {options.table!r}")
    return suite


task_types.register("quality")(QualityTask())
