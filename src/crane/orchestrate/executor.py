"""The local executor: runs a DAG in this process with millisecond overhead per task.

One scheduling loop (the calling thread) owns all state; tasks run on their own
daemon threads (or, with ``isolation: process``, in a child process watched by
a thread) and report back through one queue, so there are no locks on the hot
path. The loop enforces, in this order: dependencies and trigger rules, the
worker count, resource pools (``pools: {source_db: 2}``) and exclusive locks —
one writer per DuckDB file, because DuckDB allows one writing process and
concurrent writers in one process would conflict on transactions (DESIGN.md).

Timeouts: the loop stops the task (kills its process group or process,
interrupts a DuckDB query) and fails the attempt at once; a thread that cannot
be stopped keeps its pool slots and locks until it really returns, so a
stuck task can never let a second writer in. Retries wait on the loop's timer,
not on a thread.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
import queue
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crane.config.secrets import mask
from crane.console import NullConsole
from crane.errors import CraneError
from crane.orchestrate import capture
from crane.orchestrate.dag import DagSpec, TaskSpec
from crane.orchestrate.resume import parse_time, reusable, run_to_resume
from crane.orchestrate.retry import TaskTimeoutError, next_delay
from crane.orchestrate.tasks import TaskContext, TaskType, task_types
from crane.orchestrate.tasks.sql import connection_url, writer_locks
from crane.orchestrate.threads import ThreadPool

if TYPE_CHECKING:
    from crane.console import Console
    from crane.orchestrate.history import HistoryStore
    from crane.project import Project

MAX_OUTPUT_BYTES = 64 * 1024  # larger results: write a table and return its name
DONE = ("success", "failed", "skipped", "upstream_failed")
FAILED = ("failed", "upstream_failed")
SIGNAL_CHECK = 0.2  # seconds


class DagRunError(CraneError):
    """A DAG run finished with failed tasks."""


@dataclass
class TaskRun:
    """The outcome of one task in a run."""

    name: str
    state: str = "none"
    attempts: int = 0
    output: Any = None
    error: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    log_path: Path | None = None
    reused: bool = False  # taken over from the run being resumed


@dataclass
class DagRunResult:
    run_id: str
    dag: str
    state: str
    tasks: dict[str, TaskRun]
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    resumed_from: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "success"

    def raise_for_status(self) -> DagRunResult:
        if not self.ok:
            failed = [t.name for t in self.tasks.values() if t.state == "failed"]
            raise DagRunError(f"DAG {self.dag} failed: {', '.join(failed)}", run_id=self.run_id)
        return self


_WORKERS = ThreadPool()


@dataclass
class _Active:
    token: int
    ctx: TaskContext
    deadline: float | None


@dataclass(order=True)
class _Due:
    at: float
    name: str = field(compare=False)


def run_dag(
    spec: DagSpec,
    *,
    project: Project | None = None,
    history: HistoryStore | None = None,
    params: dict[str, Any] | None = None,
    logical_date: dt.datetime | None = None,
    interval: tuple[dt.datetime, dt.datetime] | None = None,
    max_workers: int | None = None,
    log_dir: Path | None = None,
    from_task: str | None = None,
    resume_run: str | None = None,
    console: Console | None = None,
    stop: threading.Event | None = None,
    on_event: list[Callable[[dict[str, Any]], None]] | None = None,
    run_id: str | None = None,
) -> DagRunResult:
    """Run ``spec`` once and return what happened (``raise_for_status()`` to raise).

    ``from_task`` resumes ``resume_run`` (default: the DAG's latest run in
    ``history``): that task, everything downstream of it and whatever did not
    succeed are run again; the rest keep their results. ``on_event`` callables get each
    run/task transition (``run_started``, ``task_started``, ``task_retry``, ``task_success``,
    ``task_failed``, ``run_finished``) on the loop thread: they must return quickly. The
    spec's deadlines and ``on_failure``/``on_retry``/``on_success`` alerts hook in here.
    """
    reuse: dict[str, dict[str, Any]] = {}
    resumed_from = None
    if from_task is not None:
        spec.task(from_task)  # unknown names fail before anything runs
        old = run_to_resume(spec, history, resume_run)
        resumed_from = old["run_id"]
        reuse = reusable(spec, old, from_task)
        params = {**(old.get("params") or {}), **(params or {})}
        logical_date = logical_date or parse_time(old.get("logical_date"))
        start, end = old.get("data_interval_start"), old.get("data_interval_end")
        if interval is None and start and end:
            interval = (parse_time(start), parse_time(end))  # type: ignore[assignment]
    execution = _Execution(
        spec,
        project=project,
        history=history,
        params={**spec.params, **(params or {})},
        logical_date=logical_date,
        interval=interval,
        max_workers=max_workers or spec.max_workers,
        log_dir=log_dir,
        console=console or NullConsole(),
        reuse=reuse,
        resumed_from=resumed_from,
    )
    execution.listeners = list(on_event or [])
    if run_id:  # a peer orchestrator's run id (`crane dag run-task … --run-id`)
        execution.run_id = execution.result.run_id = run_id
        if execution.log_dir is not None:
            execution.log_dir = execution.log_dir.parent / run_id
    execution.stop = stop  # set it to interrupt the run (scheduler shutdown)
    if spec.has_alerts():
        from crane.orchestrate.alerts import AlertManager

        if not any(isinstance(listener, AlertManager) for listener in execution.listeners):
            manager = AlertManager(spec, project=project, console=execution.console)
            execution.listeners.append(manager)
    with capture.installed():
        return execution.run()


class _Execution:
    def __init__(
        self,
        spec: DagSpec,
        *,
        project: Project | None,
        history: HistoryStore | None,
        params: dict[str, Any],
        logical_date: dt.datetime | None,
        interval: tuple[dt.datetime, dt.datetime] | None,
        max_workers: int,
        log_dir: Path | None,
        console: Console,
        reuse: dict[str, dict[str, Any]],
        resumed_from: str | None,
    ) -> None:
        self.spec, self.project, self.history, self.console = spec, project, history, console
        self.params, self.max_workers, self.reuse = params, max_workers, reuse
        self.run_id = uuid.uuid4().hex
        now = dt.datetime.now(dt.UTC)
        self.logical_date = logical_date or now
        self.interval = interval or (self.logical_date, self.logical_date)
        self.log_dir = (log_dir / spec.name / self.run_id) if log_dir is not None else None
        self.graph = spec.graph()
        self.tasks = {t.name: t for t in spec.tasks}
        self.types: dict[str, TaskType] = {
            n: task_types.get(t.type or "") for n, t in self.tasks.items()
        }
        self.options = {n: t.options() for n, t in self.tasks.items()}
        self.locks = {n: self._locks_of(t) for n, t in self.tasks.items()}
        self.capacity = {f"pool:{p}": size for p, size in spec.pools.items()}
        self.used: Counter[str] = Counter()
        self.results = {n: TaskRun(n) for n in self.tasks}
        self.waiting = {n: len(ups) for n, ups in self.graph.upstream.items()}
        self.ready: list[str] = []
        self.active: dict[str, _Active] = {}
        self.holding: dict[int, list[str]] = {}  # token -> locks, until its thread returns
        self.retries: list[_Due] = []
        self.branch_skipped: set[str] = set()
        self.events: queue.SimpleQueue[tuple[int, str, Any, BaseException | None]] = (
            queue.SimpleQueue()
        )
        self.tokens = itertools.count(1)
        self.unfinished = len(self.tasks)
        self.result = DagRunResult(self.run_id, spec.name, "running", self.results, now)
        self.result.resumed_from = resumed_from
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.stop: threading.Event | None = None

    def _locks_of(self, task: TaskSpec) -> list[str]:
        locks = [f"pool:{task.pool}"] if task.pool else []
        locks += self.types[task.name].locks(self.options[task.name], self.project)
        if task.writes:
            locks += writer_locks(connection_url(task.writes, self.project))
        return list(dict.fromkeys(locks))

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> DagRunResult:
        self._record_run()
        self._emit("run_started")
        for name in self.graph.order():
            if name in self.reuse:
                old = self.reuse[name]
                self.results[name].reused = True
                self._finish(name, old["state"], output=old.get("output"), record=True)
        for name in self.graph.order():
            if self.waiting[name] == 0 and self.results[name].state == "none":
                self._evaluate(name)
        try:
            self._loop()
        except BaseException:  # Ctrl-C, SIGTERM handler, a bug: stop the tasks, keep the record
            self._abandon()
            self._emit("run_finished")
            raise
        failed = any(r.state in FAILED for r in self.results.values())
        self.result.state = "failed" if failed else "success"
        self.result.finished_at = dt.datetime.now(dt.UTC)
        self._record_run()
        self._emit("run_finished")
        if self.history is not None:
            self.history.flush()
        return self.result

    def _loop(self) -> None:
        while self.unfinished:
            if self.stop is not None and self.stop.is_set():
                raise DagRunError("interrupted: the run was stopped", run_id=self.run_id)
            self._launch_ready()
            try:
                event = self.events.get(timeout=self._wakeup())
            except queue.Empty:
                event = None
            if event is not None:
                self._on_event(*event)
            self._expire()
            self._due()

    def _abandon(self) -> None:
        """The run is interrupted: stop running tasks, mark the run failed in history."""
        for name, active in list(self.active.items()):
            active.ctx.cancel()
            self.results[name].error = "interrupted: the DAG run was stopped"
            self.results[name].state = "failed"
            self.results[name].finished_at = dt.datetime.now(dt.UTC)
            self._record_attempt(name)
        self.active.clear()
        self.result.state = "failed"
        self.result.finished_at = dt.datetime.now(dt.UTC)
        self._record_run()
        if self.history is not None:
            self.history.flush()

    def _wakeup(self) -> float:
        times = [a.deadline for a in self.active.values() if a.deadline is not None]
        if self.retries:
            times.append(self.retries[0].at)
        # never block for long: a signal (Ctrl-C, SIGTERM) is only handled between waits
        return max(min([*times, time.monotonic() + SIGNAL_CHECK]) - time.monotonic(), 0.0)

    def _launch_ready(self) -> None:
        waiting = []
        for name in self.ready:
            locks = self.locks[name]
            if len(self.holding) >= self.max_workers or any(
                self.used[lock] >= self.capacity.get(lock, 1) for lock in locks
            ):
                waiting.append(name)
                continue
            self._launch(name)
        self.ready = waiting

    def _launch(self, name: str) -> None:
        task, run = self.tasks[name], self.results[name]
        run.attempts += 1
        token = next(self.tokens)
        for lock in self.locks[name]:
            self.used[lock] += 1
        self.holding[token] = self.locks[name]
        log = self.log_dir / f"{name}.{run.attempts}.log" if self.log_dir is not None else None
        ctx = TaskContext(
            dag=self.spec.name,
            task=name,
            run_id=self.run_id,
            attempt=run.attempts,
            logical_date=self.logical_date,
            data_interval_start=self.interval[0],
            data_interval_end=self.interval[1],
            params={**self.params, **task.params},
            inputs={u: self.results[u].output for u in self.graph.upstream[name]},
            project=self.project,
            log_path=log,
            timeout=task.timeout,
        )
        deadline = time.monotonic() + task.timeout if task.timeout else None
        self.active[name] = _Active(token, ctx, deadline)
        run.state, run.log_path, run.error = "running", log, None
        run.started_at, run.finished_at = dt.datetime.now(dt.UTC), None
        self._record_attempt(name)
        self._emit("task_started", name)
        _WORKERS.submit(self._work, token, name, ctx)

    def _work(self, token: int, name: str, ctx: TaskContext) -> None:
        """On the task's thread: run it, report (output, error) to the loop."""
        task = self.tasks[name]
        output: Any = None
        error: BaseException | None = None
        try:
            if task.isolation == "process":
                from crane.orchestrate.worker import run_in_process

                output = run_in_process(task, ctx)
            else:
                if ctx.log_path is not None:
                    ctx.log_path.parent.mkdir(parents=True, exist_ok=True)
                with capture.to_file(ctx.log_path):
                    output = self.types[name].run(self.options[name], ctx)
            output = _small(output)
        except BaseException as caught:  # reported; the loop decides retry or failure
            error = caught
            if ctx.log_path is not None and not ctx.cancelled:
                _append(ctx.log_path, "".join(traceback.format_exception(caught)))
        self.events.put((token, name, output, error))

    def _on_event(self, token: int, name: str, output: Any, error: BaseException | None) -> None:
        for lock in self.holding.pop(token, ()):
            self.used[lock] -= 1
        active = self.active.get(name)
        if active is None or active.token != token:
            return  # a timed-out attempt's thread finally returned
        del self.active[name]
        if error is None:
            self._succeeded(name, output)
        else:
            self._failed(name, error)

    def _succeeded(self, name: str, output: Any) -> None:
        if self.tasks[name].branch:
            chosen = [output] if isinstance(output, str) else list(output or [])
            following = self.graph.downstream[name]
            unknown = [c for c in chosen if c not in following]
            if unknown:
                error = CraneError(
                    f"branch chose {unknown}, which are not downstream of it: {following}"
                )
                self._failed(name, error)
                return
            self.branch_skipped.update(d for d in following if d not in chosen)
        self._finish(name, "success", output=output)

    def _failed(self, name: str, error: BaseException) -> None:
        run = self.results[name]
        run.error = mask(f"{type(error).__name__}: {error}")
        delay = next_delay(self.tasks[name], run.attempts, error)
        if delay is None:
            self._finish(name, "failed")
            return
        run.state, run.finished_at = "up_for_retry", dt.datetime.now(dt.UTC)
        self._record_attempt(name)
        heapq.heappush(self.retries, _Due(time.monotonic() + delay, name))
        self._emit("task_retry", name)
        self.console.warn(f"{self.spec.name}.{name} try {run.attempts} failed; retry {delay:.1f}s")

    def _expire(self) -> None:
        now = time.monotonic()
        for name, active in list(self.active.items()):
            if active.deadline is not None and now >= active.deadline:
                del self.active[name]
                active.ctx.cancel()
                self._failed(name, TaskTimeoutError(f"timed out after {self.tasks[name].timeout}s"))

    def _due(self) -> None:
        now = time.monotonic()
        while self.retries and self.retries[0].at <= now:
            self.ready.append(heapq.heappop(self.retries).name)

    # -- states ------------------------------------------------------------------------------
    def _evaluate(self, name: str) -> None:
        """All upstream tasks are done: run ``name``, or settle it as skipped/upstream_failed."""
        if name in self.reuse:
            return  # settled from the resumed run by `run`
        if name in self.branch_skipped:
            self._finish(name, "skipped")
            return
        states = [self.results[u].state for u in self.graph.upstream[name]]
        verdict = decide(self.tasks[name].trigger_rule, states)
        if verdict == "run":
            self.ready.append(name)
        else:
            self._finish(name, verdict)

    def _finish(self, name: str, state: str, output: Any = None, record: bool = True) -> None:
        run = self.results[name]
        run.state, run.output = state, output
        run.finished_at = dt.datetime.now(dt.UTC)
        if run.started_at is None:
            run.started_at = run.finished_at
        if record:
            self._record_attempt(name)
        self.unfinished -= 1
        if state in ("success", "failed") and not run.reused:
            self._emit(f"task_{state}", name)
        if state in FAILED:
            self.console.warn(f"{self.spec.name}.{name} {state}: {run.error or ''}")
        else:
            took = (run.finished_at - run.started_at).total_seconds()
            kept = " (kept from the resumed run)" if run.reused else ""
            self.console.info(f"{self.spec.name}.{name} {state} in {took:.2f}s{kept}")
        for child in self.graph.downstream[name]:
            self.waiting[child] -= 1
            if self.waiting[child] == 0:
                self._evaluate(child)

    # -- listeners ---------------------------------------------------------------------------
    def _emit(self, kind: str, name: str | None = None) -> None:
        """Tell the listeners; a failing listener is reported, never fails the run."""
        if not self.listeners:
            return
        event: dict[str, Any] = {
            "event": kind,
            "dag": self.spec.name,
            "run_id": self.run_id,
            "state": self.result.state,
            "logical_date": self.logical_date,
            "task": name,
        }
        if name is not None:
            run = self.results[name]
            event.update(
                state=run.state,
                attempt=run.attempts,
                error=run.error,
                log_path=str(run.log_path) if run.log_path else None,
            )
        else:
            event["failed"] = [n for n, r in self.results.items() if r.state == "failed"]
        for listener in self.listeners:
            try:
                listener(event)
            except Exception as error:  # an alert must never break the run
                self.console.warn(f"{self.spec.name}: event listener failed: {error}")

    # -- history -----------------------------------------------------------------------------
    def _record_run(self) -> None:
        if self.history is None:
            return
        result = self.result
        failed = [n for n, r in self.results.items() if r.state == "failed"]
        self.history.upsert_run(
            {
                "run_id": self.run_id,
                "dag": self.spec.name,
                "state": result.state,
                "logical_date": self.logical_date,
                "data_interval_start": self.interval[0],
                "data_interval_end": self.interval[1],
                "params": self.params,
                "started_at": result.started_at,
                "finished_at": result.finished_at,
                "resumed_from": result.resumed_from,
                "error": f"failed: {', '.join(failed)}" if failed else None,
            }
        )

    def _record_attempt(self, name: str) -> None:
        if self.history is None:
            return
        run = self.results[name]
        ran = run.state not in ("skipped", "upstream_failed") or run.attempts > 0
        duration = (
            (run.finished_at - run.started_at).total_seconds()
            if run.finished_at and run.started_at
            else None
        )
        self.history.upsert_attempt(
            {
                "run_id": self.run_id,
                "task": name,
                "attempt": run.attempts if ran and not run.reused else 0,
                "state": run.state if not run.reused else f"{run.state}",
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "duration": duration,
                "log_path": str(run.log_path) if run.log_path else None,
                "error": run.error if run.state != "success" else None,
                "output": run.output,
                "isolation": "reused" if run.reused else self.tasks[name].isolation,
            }
        )


def decide(rule: str, states: list[str]) -> str:
    """What a task does once its upstreams are done: ``run``, ``skipped``, ``upstream_failed``.

    >>> decide("all_success", ["success", "skipped"])
    'skipped'
    >>> decide("none_failed", ["success", "skipped"])
    'run'
    >>> decide("one_failed", ["success", "failed"])
    'run'
    """
    failed = any(s in FAILED for s in states)
    if rule == "all_success":
        if all(s == "success" for s in states):
            return "run"
        return "upstream_failed" if failed else "skipped"
    if rule == "all_done":
        return "run"
    if rule == "one_failed":
        return "run" if failed else "skipped"
    if rule == "none_failed":
        return "upstream_failed" if failed else "run"
    raise ValueError(f"unknown trigger rule {rule!r}")


def _small(output: Any) -> Any:
    """Outputs travel as JSON and are kept in history: they must be small."""
    if output is None or isinstance(output, bool | int | float):
        return output
    text = json.dumps(output, default=str)
    if len(text) > MAX_OUTPUT_BYTES:
        raise CraneError(
            f"task returned {len(text):,} bytes; the limit is {MAX_OUTPUT_BYTES:,}",
            hint="write large data to a table and return its name (ctx.table('name'))",
        )
    return json.loads(text)


def _append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as file:
        file.write(mask(text))
