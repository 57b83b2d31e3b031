"""Alerts: on_failure / on_retry / on_success callbacks and deadlines that fire mid-run.

The executor tells an `AlertManager` about every run/task transition (``on_event``);
the manager turns them into `Alert`s for the configured notifiers (crane/orchestrate/
notify.py) and sends them on its own thread, so a slow SMTP server never slows the
scheduling loop. A failing notifier is logged and recorded in ``deliveries``; it never
fails the run (and every delivery is appended to ``.crane/alerts.jsonl`` in the
project). The run's end waits (bounded) for pending alerts, so a CLI run does not
exit before its failure alert went out.

Deadlines alert while the work is still running (Airflow's SLAs only reported after
the fact and were removed in Airflow 3)::

    deadline: {within: 2h}                  # the run, counted from its start
    deadline: {at: "06:00"}                 # wall clock, in the DAG's timezone
    tasks:
      - {name: load, pipeline: orders, deadline: {within: 15m, notify: [ops]}}

A missed deadline alerts once (``deadline_missed``) to ``deadline.notify``, or else
the task's and the DAG's ``on_failure`` notifiers; the work goes on (use ``timeout``
to stop a task).
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from crane.console import Console
    from crane.orchestrate.dag import DagSpec
    from crane.orchestrate.notify import Alert

NotifierRef = str | dict[str, Any]
ALERT_LOG = "alerts.jsonl"  # under <project>/.crane: every delivery, ok or not
DRAIN_TIMEOUT = 30.0  # seconds the run's end waits for pending alerts
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
log = logging.getLogger("crane.alerts")


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``.

    >>> parse_duration("15m"), parse_duration(90), parse_duration("1.5h")
    (900.0, 90.0, 5400.0)
    """
    if isinstance(value, int | float):
        return float(value)
    found = _DURATION.match(str(value))
    if not found:
        raise ValueError(f"not a duration: {value!r} (use seconds, or 30s, 15m, 2h, 1d)")
    return float(found.group(1)) * _UNITS[found.group(2)]


class Deadline(BaseModel):
    """Finish ``within`` a duration of the start, and/or ``at`` a wall-clock time."""

    model_config = ConfigDict(extra="forbid")

    within: float | None = Field(None, gt=0)
    at: str | None = None  # "HH:MM[:SS]" (next occurrence) or an ISO date-time
    notify: list[NotifierRef] | None = None

    @field_validator("within", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("at")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None and not _is_clock(value):
            dt.datetime.fromisoformat(value)  # raises ValueError with a clear message
        return value

    @model_validator(mode="after")
    def _some(self) -> Deadline:
        if self.within is None and self.at is None:
            raise ValueError("a deadline needs 'within' (a duration) or 'at' (a time)")
        return self

    def due(self, started: dt.datetime, timezone: str) -> dt.datetime:
        """The earliest of the limits, as an aware UTC time."""
        limits = []
        if self.within is not None:
            limits.append(started + dt.timedelta(seconds=self.within))
        if self.at is not None:
            limits.append(wall_clock(self.at, started, timezone))
        return min(limits)


def _is_clock(text: str) -> bool:
    return re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", text) is not None


def wall_clock(at: str, after: dt.datetime, timezone: str) -> dt.datetime:
    """``"06:00"`` → the first 06:00 in ``timezone`` at or after ``after``; ISO → itself.

    >>> start = dt.datetime(2026, 3, 1, 7, 30, tzinfo=dt.UTC)
    >>> wall_clock("06:00", start, "UTC").isoformat()
    '2026-03-02T06:00:00+00:00'
    >>> wall_clock("09:00", start, "Europe/Paris").isoformat()
    '2026-03-01T08:00:00+00:00'
    """
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    if not _is_clock(at):
        moment = dt.datetime.fromisoformat(at)
        return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(dt.UTC)
    clock = dt.time.fromisoformat(at if at.count(":") == 2 else f"{int(at[:-3]):02d}{at[-3:]}")
    local = after.astimezone(zone)
    moment = dt.datetime.combine(local.date(), clock, tzinfo=zone)
    if moment < local:
        moment = dt.datetime.combine(local.date() + dt.timedelta(days=1), clock, tzinfo=zone)
    return moment.astimezone(dt.UTC)


def check_notifiers(spec: DagSpec) -> None:
    """Every callback and deadline names a known notifier with valid options."""
    from crane.errors import CraneError
    from crane.orchestrate.notify import resolve

    items: list[Any] = [spec, *spec.tasks]
    for item in items:
        for ref in AlertManager._all_refs(item):
            try:
                resolve(ref, spec.notifiers)
            except CraneError as error:
                where = f"task {item.name!r}: " if item is not spec else ""
                raise ValueError(f"{where}{error.detail}") from None


@dataclass
class Delivery:
    """One alert sent (or not) by one notifier: what ``deliveries`` records."""

    event: str
    notifier: str
    task: str | None
    ok: bool
    error: str | None = None
    seconds: float = 0.0


@dataclass
class _Watch:
    key: str  # "" for the run, else the task name
    due: dt.datetime
    refs: list[NotifierRef]
    detail: str


class AlertManager:
    """An ``on_event`` listener for `run_dag`: callbacks, deadlines, notifier dispatch."""

    def __init__(self, spec: DagSpec, project: Any = None, console: Console | None = None) -> None:
        from crane.orchestrate.notify import resolve

        self.spec, self.project, self.console = spec, project, console
        self.deliveries: list[Delivery] = []
        self._resolve = lambda ref: resolve(ref, spec.notifiers)
        check_notifiers(spec)  # unknown notifiers fail before anything runs
        self._outbox: queue.SimpleQueue[tuple[Alert, list[NotifierRef]] | None] = (
            queue.SimpleQueue()
        )
        self._pending = 0
        self._idle = threading.Condition()
        self._watches: dict[str, _Watch] = {}
        self._wake = threading.Condition()
        self._stopped = False
        self._threads: list[threading.Thread] = []
        self._last: dict[str, Any] = {}

    @staticmethod
    def _all_refs(item: Any) -> list[NotifierRef]:
        refs = [*item.on_failure, *item.on_retry, *item.on_success]
        if item.deadline is not None and item.deadline.notify:
            refs += item.deadline.notify
        return refs

    # -- events from the executor (loop thread: quick) --------------------------------------
    def __call__(self, event: dict[str, Any]) -> None:
        kind, name = event["event"], event.get("task")
        task = self.spec.task(name) if name else None
        if kind == "run_started":
            self._start(event)
        elif kind == "task_started" and task is not None:
            self._watch_task(task, event)
        elif kind == "task_retry" and task is not None:
            self._queue(event, "task_retry", [*task.on_retry, *self.spec.on_retry])
        elif kind in ("task_success", "task_failed") and task is not None:
            self._unwatch(task.name)
            self._last[task.name] = event
            refs = task.on_success if kind == "task_success" else task.on_failure
            self._queue(event, kind, list(refs))
        elif kind == "run_finished":
            self._finish(event)

    def _start(self, event: dict[str, Any]) -> None:
        for target in (self._sender, self._watcher):
            thread = threading.Thread(target=target, name="crane-alerts", daemon=True)
            thread.start()
            self._threads.append(thread)
        if self.spec.deadline is not None:
            due = self.spec.deadline.due(dt.datetime.now(dt.UTC), self.spec.timezone)
            refs = self.spec.deadline.notify or self.spec.on_failure
            self._add_watch(_Watch("", due, list(refs), f"the DAG run was due by {due:%c} UTC"))

    def _watch_task(self, task: Any, event: dict[str, Any]) -> None:
        if task.deadline is None or task.name in self._watches or event.get("attempt", 1) > 1:
            return
        due = task.deadline.due(dt.datetime.now(dt.UTC), self.spec.timezone)
        refs = task.deadline.notify or [*task.on_failure, *self.spec.on_failure]
        detail = f"task {task.name} was due by {due:%c} UTC"
        self._add_watch(_Watch(task.name, due, list(refs), detail))
        self._last[task.name] = event

    def _finish(self, event: dict[str, Any]) -> None:
        with self._wake:
            self._watches.clear()
            self._stopped = True
            self._wake.notify_all()
        failed = list(event.get("failed") or [])
        refs = self.spec.on_failure if event["state"] != "success" else self.spec.on_success
        kind = "run_failed" if event["state"] != "success" else "run_success"
        first = self._last.get(failed[0], {}) if failed else {}
        alert_event = {**event, "failed": failed}
        if first:
            alert_event.update(error=first.get("error"), log_path=first.get("log_path"))
        self._queue(alert_event, kind, list(refs))
        self.drain()
        self._outbox.put(None)

    # -- the deadline watcher ----------------------------------------------------------------
    def _add_watch(self, watch: _Watch) -> None:
        with self._wake:
            self._watches[watch.key] = watch
            self._wake.notify_all()

    def _unwatch(self, key: str) -> None:
        with self._wake:
            self._watches.pop(key, None)

    def _watcher(self) -> None:
        with self._wake:
            while not self._stopped:
                now = dt.datetime.now(dt.UTC)
                for watch in [w for w in self._watches.values() if w.due <= now]:
                    del self._watches[watch.key]
                    self._missed(watch)
                soonest = min((w.due for w in self._watches.values()), default=None)
                wait = (soonest - now).total_seconds() if soonest else None
                self._wake.wait(timeout=None if wait is None else max(wait, 0.001))

    def _missed(self, watch: _Watch) -> None:
        last = self._last.get(watch.key, {})
        event = {
            "dag": self.spec.name,
            "run_id": last.get("run_id") or self._run_id,
            "state": "running",
            "task": watch.key or None,
            "attempt": last.get("attempt"),
            "logical_date": last.get("logical_date") or self._logical_date,
            "log_path": last.get("log_path"),
            "detail": watch.detail,
        }
        self._queue(event, "deadline_missed", watch.refs)

    # -- sending -----------------------------------------------------------------------------
    def _queue(self, event: dict[str, Any], kind: str, refs: list[NotifierRef]) -> None:
        if kind == "run_started" or not refs:
            return
        if event.get("run_id"):
            self._run_id, self._logical_date = event["run_id"], event.get("logical_date")
        from crane.orchestrate.notify import Alert

        logical = event.get("logical_date")
        alert = Alert(
            event=kind,
            dag=self.spec.name,
            run_id=str(event.get("run_id") or ""),
            state=str(event.get("state") or ""),
            task=event.get("task"),
            attempt=event.get("attempt"),
            error=event.get("error"),
            logical_date=logical.isoformat() if isinstance(logical, dt.datetime) else logical,
            log_path=event.get("log_path"),
            failed_tasks=list(event.get("failed") or []),
            detail=event.get("detail"),
        )
        with self._idle:
            self._pending += 1
        self._outbox.put((alert, refs))

    _run_id: str = ""
    _logical_date: Any = None

    def _sender(self) -> None:
        while True:
            item = self._outbox.get()
            if item is None:
                return
            alert, refs = item
            for ref in refs:
                self._deliver(alert, ref)
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _deliver(self, alert: Alert, ref: NotifierRef) -> None:
        from crane.orchestrate.notify import send

        began = time.perf_counter()
        label = ref if isinstance(ref, str) else str(ref.get("type"))
        try:
            _, options = self._resolve(ref)
            send(alert, options)
            outcome = Delivery(alert.event, label, alert.task, True)
        except Exception as error:  # recorded and logged: an alert never fails the run
            outcome = Delivery(alert.event, label, alert.task, False, str(error))
            log.warning("alert %s via %s failed: %s", alert.event, label, error)
            if self.console is not None:
                self.console.warn(f"{self.spec.name}: alert via {label} failed: {error}")
        outcome.seconds = time.perf_counter() - began
        self.deliveries.append(outcome)
        self._record(alert, outcome)

    def _record(self, alert: Alert, outcome: Delivery) -> None:
        """Append to ``<project>/.crane/alerts.jsonl``: what was sent, what failed, why."""
        root = getattr(self.project, "root", None)
        if root is None:
            return
        import json

        from crane.config.secrets import mask

        line = {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "dag": alert.dag,
            "run_id": alert.run_id,
            **asdict(outcome),
        }
        try:
            path = root / ".crane" / ALERT_LOG
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as file:
                file.write(mask(json.dumps(line, default=str)) + "\n")
        except OSError as error:
            log.warning("cannot record alert delivery: %s", error)

    def drain(self, timeout: float = DRAIN_TIMEOUT) -> bool:
        """Wait until every queued alert was attempted; False if ``timeout`` ran out."""
        end = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True
