"""``crane scheduler``: fire DAG runs on cron schedules and events, in one long-lived process.

One loop (`Scheduler.tick`) decides what to run; each run executes on its own
thread through the same `run_dag` as ``crane dag run``. Per tick, per DAG:

* **schedule** — the intervals that closed since the DAG's schedule state (the
  last claimed logical date, `TriggerState`), oldest first; without
  ``catchup`` only the latest; ``max_catchup_runs`` keeps the N most recent;
* **files** — new, settled files matching a ``file:`` glob (once per path);
* **datasets** — every dataset in ``on_dataset`` has an event newer than the
  ones this DAG already consumed (a DAG run whose pipeline task loaded rows
  into ``warehouse.orders`` emits ``warehouse.orders``);
* **queued** events from the webhook and NATS/Redis listeners (threads).

Every firing is claimed atomically in the history database first, so restarts
and a second scheduler process never fire the same interval or file twice.
``max_active_runs`` caps a DAG's concurrent runs in this process: an interval
is claimed only when a slot is free, event firings wait in a queue.

Shutdown (`shutdown`, on SIGTERM): stop firing, let running runs finish within
``grace`` seconds, then interrupt the rest — their running tasks are cancelled
and recorded failed, the run ``failed`` with ``interrupted: scheduler shut
down``. At start-up, runs left ``running`` by a process that no longer exists
are marked failed the same way.

Time comes from ``now`` (a function), so tests drive a day of schedules in
milliseconds.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crane.console import NullConsole
from crane.errors import CraneError
from crane.orchestrate.triggers import Fire
from crane.orchestrate.triggers.cron import Schedule
from crane.orchestrate.triggers.datasets import record_datasets
from crane.orchestrate.triggers.state import TriggerState, owner_listener

if TYPE_CHECKING:
    from crane.console import Console
    from crane.orchestrate.dag import DagSpec
    from crane.orchestrate.executor import DagRunResult
    from crane.orchestrate.history import HistoryStore
    from crane.project import Project

Clock = Callable[[], dt.datetime]
MAX_SLEEP = 1.0  # seconds: file and dataset triggers are polled at least this often
INTERRUPTED = "interrupted: scheduler shut down"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class _Active:
    """A run this scheduler started: its thread, its stop switch, its id once known."""

    fire: Fire
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    run_id: str | None = None

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


class Scheduler:
    """Decides and starts runs; ``tick()`` is one pass (the CLI calls it in a loop)."""

    def __init__(
        self,
        dags: dict[str, DagSpec],
        history: HistoryStore,
        *,
        project: Project | None = None,
        root: Path | None = None,
        now: Clock = utcnow,
        log_dir: Path | None = None,
        console: Console | None = None,
        file_settle: float = 1.0,
    ) -> None:
        self.dags, self.history, self.project = dags, history, project
        self.root = root or (project.root if project is not None else Path.cwd())
        self.now, self.log_dir = now, log_dir
        self.console = console or NullConsole()
        self.file_settle = file_settle
        self.state = TriggerState(history)
        self.schedules = {
            n: Schedule(s.schedule, s.timezone) for n, s in dags.items() if s.schedule
        }
        self.active: dict[str, list[_Active]] = {name: [] for name in dags}
        self.queued: dict[str, collections.deque[Fire]] = {n: collections.deque() for n in dags}
        self.results: list[DagRunResult] = []  # finished runs, newest last (tests, CLI summary)
        self.launched = 0  # runs started by this scheduler
        self.stopping = False
        self.hurry = threading.Event()  # set during `shutdown`: end the grace period now
        self._lock = threading.Lock()  # guards active/queued/results against run threads
        self._wake = threading.Event()
        # what this process knows was claimed; claims only grow, so a stale cache can only
        # lead to a claim that fails (another process was first) — then it is reloaded
        self._last: dict[str, dt.datetime | None] = {}
        self._seen: dict[str, set[str]] = {}
        self._used: dict[str, dict[str, int]] = {}
        self._not_before: dict[str, dt.datetime] = {}  # nothing due for the DAG until then
        self._datasets_wanted = sorted({d for s in dags.values() for d in s.on_dataset})

    # -- start-up -----------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Mark runs left ``running`` by a process that is gone as failed (their ids), and
        release intervals it claimed but never started."""
        for dag, key in self.state.release_lost_claims():
            self.console.warn(f"{dag}: interval {key} was claimed by a dead process; released")
        recovered = []
        for orphan in self.state.orphaned_runs():
            error = f"interrupted: the process running it (pid {orphan['pid']}) is gone"
            mark_failed(self.history, orphan["run_id"], error)
            recovered.append(orphan["run_id"])
            self.console.warn(f"run {orphan['run_id'][:12]} {error}; marked failed")
        self.history.flush()
        return recovered

    # -- one pass -----------------------------------------------------------------------------
    def tick(self) -> float:
        """Fire whatever is due now; return how long to sleep before the next pass."""
        if self.stopping:
            return MAX_SLEEP
        now = self.now()
        for name in self.dags:
            self._queued(name)  # webhook and messages first: they are waited for
        try:
            events = self.state.latest_events(self._datasets_wanted)
        except Exception as error:
            self.console.warn(f"dataset events unreadable: {type(error).__name__}: {error}")
            events = {}
        for name, spec in self.dags.items():
            try:
                self._pass(name, spec, now, events)
            except Exception as error:  # e.g. the history database is unreachable: next pass
                self.console.warn(
                    f"{name}: scheduling pass failed: {type(error).__name__}: {error}"
                )
        return self._sleep(now)

    def _pass(self, name: str, spec: DagSpec, now: dt.datetime, events: dict[str, int]) -> None:
        if name in self.schedules:
            self._scheduled(name, spec, now)
        for trigger in spec.triggers:
            if trigger.kind == "file":
                self._files(name, trigger.target)
        if spec.on_dataset:
            self._datasets(name, spec.on_dataset, events)

    def run_once(self, timeout: float = 24 * 3600) -> int:
        """Passes until nothing new starts, each waiting for its runs (``--once``: a
        catch-up with ``max_active_runs: 1`` takes a pass per interval); runs started."""
        before = self.launched
        while True:
            started = self.launched
            self.tick()
            self.wait_idle(timeout)
            if self.launched == started or self.stopping:
                return self.launched - before

    def _sleep(self, now: dt.datetime) -> float:
        times = [self._not_before.get(name, now) for name in self.schedules]
        wait = min([(t - now).total_seconds() for t in times], default=MAX_SLEEP)
        return max(min(wait, MAX_SLEEP), 0.0)

    def _free(self, name: str) -> int:
        with self._lock:
            return self.dags[name].max_active_runs - len(self.active[name])

    def _scheduled(self, name: str, spec: DagSpec, now: dt.datetime) -> None:
        if name in self._not_before and now < self._not_before[name]:
            return  # the common case: no cron arithmetic, no query
        free = self._free(name)
        if free <= 0:
            return  # claimed only when it can start: a later pass picks it up
        if name not in self._last:
            self._last[name] = self.state.last_scheduled(name)
        due = self.schedules[name].due(
            now, self._last[name], spec.catchup, spec.max_catchup_runs, free
        )
        for start, end in due:
            if not self.state.claim(name, "schedule", [start.isoformat()], start):
                del self._last[name]  # another process fired it: reload the state next pass
                return
            self._last[name] = start
            self._launch(Fire(name, "schedule", logical_date=start, interval=(start, end)))
        if len(due) < free:  # all that was due has started: sleep until the next interval
            self._not_before[name] = self.schedules[name].next_fire(now)

    def _files(self, name: str, pattern: str) -> None:
        from crane.orchestrate.triggers.files import matching

        if self._free(name) <= 0:
            return  # unclaimed files wait: a claim is only made when the run starts
        if name not in self._seen:
            self._seen[name] = self.state.claimed(name, "file")
        seen = self._seen[name]
        for path in matching(self.root, pattern, self.file_settle):
            key = str(path)
            if key in seen or self._free(name) <= 0:
                continue
            seen.add(key)  # ours now, or another process's: either way not again
            if self.state.claim(name, "file", [key]):
                self._launch(Fire(name, "file", params={"file": key}, key=key))

    def _datasets(self, name: str, datasets: list[str], latest: dict[str, int]) -> None:
        if self._free(name) <= 0:
            return
        if name not in self._used:
            self._used[name] = self.state.consumed(name)
        used = self._used[name]
        if not all(latest.get(d, 0) > used.get(d, 0) for d in datasets):
            return
        keys = [f"{d}#{latest[d]}" for d in datasets]
        if not self.state.claim(name, "dataset", keys):
            del self._used[name]  # another process consumed them: reload next pass
            return
        used.update({d: latest[d] for d in datasets})
        params = {"datasets": {d: latest[d] for d in datasets}}
        self._launch(Fire(name, "dataset", params=params, key=",".join(keys)))

    def _queued(self, name: str) -> None:
        while self._free(name) > 0:
            with self._lock:
                if not self.queued[name]:
                    return
                fire = self.queued[name].popleft()
            self._launch(fire)

    # -- events from other threads ------------------------------------------------------------
    def submit(self, dag: str, params: dict[str, Any] | None = None, kind: str = "webhook") -> None:
        """Queue a run of ``dag`` (thread-safe: webhook and message listeners call it).

        Raises KeyError for an unknown DAG and RuntimeError while shutting down.
        """
        if dag not in self.dags:
            raise KeyError(dag)
        if self.stopping:
            raise RuntimeError("the scheduler is shutting down")
        with self._lock:
            self.queued[dag].append(Fire(dag, kind, params=dict(params or {})))
        self._wake.set()

    def wake(self) -> None:
        """End the current `wait` now (a signal handler, a queued event)."""
        self._wake.set()

    def wait(self, seconds: float) -> None:
        """Sleep until the next pass is due or an event is queued."""
        self._wake.wait(seconds)
        self._wake.clear()

    # -- runs ---------------------------------------------------------------------------------
    def _launch(self, fire: Fire) -> None:
        when = fire.logical_date.isoformat() if fire.logical_date else "now"
        self.console.info(f"{fire.dag}: {fire.kind} run for {when}")
        handle = _Active(fire)
        thread = threading.Thread(
            target=self._execute, args=(handle,), daemon=True, name=f"crane-run-{fire.dag}"
        )
        handle.thread = thread
        with self._lock:
            self.active[fire.dag].append(handle)
            self.launched += 1
        thread.start()

    def _execute(self, handle: _Active) -> None:
        from crane.orchestrate.executor import run_dag

        fire, spec = handle.fire, self.dags[handle.fire.dag]

        def listen(event: dict[str, Any]) -> None:
            if event["event"] == "run_started":
                handle.run_id = event["run_id"]
                self.state.own(event["run_id"])

        try:
            result = run_dag(
                spec,
                project=self.project,
                history=self.history,
                params={**fire.params, "trigger": fire.kind},
                logical_date=fire.logical_date,
                interval=fire.interval,
                log_dir=self.log_dir,
                console=self.console,
                stop=handle.stop,
                on_event=[listen],
            )
            self._emit_datasets(spec, result)
            with self._lock:
                self.results.append(result)
        except CraneError as error:
            if handle.stop.is_set() and handle.run_id is not None:
                mark_failed(self.history, handle.run_id, INTERRUPTED)
            else:
                self.console.warn(f"{fire.dag}: run could not complete: {error}")
        except Exception as error:  # a bug in a run must not stop the scheduler
            self.console.warn(f"{fire.dag}: run crashed: {type(error).__name__}: {error}")
        finally:
            with self._lock:
                self.active[fire.dag].remove(handle)
            self._wake.set()

    def _emit_datasets(self, spec: DagSpec, result: DagRunResult) -> None:
        for dataset, rows in record_datasets(self.history, spec, result, self.project).items():
            self.console.info(f"{spec.name}: dataset {dataset} updated ({rows} rows)")

    def running(self) -> int:
        with self._lock:
            return sum(len(runs) for runs in self.active.values())

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no run is active and nothing is queued (tests, ``--once``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = any(self.active.values()) or any(self.queued.values())
            if not busy:
                return True
            self._queued_all()
            time.sleep(0.01)
        return False

    def _queued_all(self) -> None:
        for name in self.dags:
            if not self.stopping:
                self._queued(name)

    def shutdown(self, grace: float = 30.0) -> list[str]:
        """Stop firing; wait ``grace`` s for running runs, then interrupt them (their ids)."""
        self.stopping = True
        with self._lock:
            handles = [h for runs in self.active.values() for h in runs]
            for queue_ in self.queued.values():
                queue_.clear()
        deadline = time.monotonic() + grace
        while any(h.alive() for h in handles) and time.monotonic() < deadline:
            if self.hurry.wait(0.05):
                break
        stopped = [h for h in handles if h.alive()]
        for handle in stopped:
            handle.stop.set()  # the run's loop raises within 0.2 s and cancels its tasks
        for handle in stopped:
            if handle.thread is not None:
                handle.thread.join(30)
        self.history.flush()
        return [h.run_id or "?" for h in stopped]


def mark_failed(history: HistoryStore, run_id: str, error: str) -> None:
    """Record a run, and its tasks still running, as failed with ``error``."""
    run = history.run(run_id)
    if run is None:
        return
    now = dt.datetime.now(dt.UTC)
    for attempt in run.pop("attempts"):
        if attempt["state"] in ("running", "up_for_retry", "none"):
            attempt.update(state="failed", finished_at=now, error=error)
            history.upsert_attempt(attempt)
    history.upsert_run({**run, "state": "failed", "finished_at": now, "error": error})


# -- backfill ------------------------------------------------------------------------------------
@dataclass
class BackfillResult:
    runs: list[tuple[dt.datetime, DagRunResult]]  # (logical date, result), oldest first
    skipped: list[dt.datetime]  # intervals the scheduler (or an earlier backfill) already ran

    @property
    def ok(self) -> bool:
        return all(r.ok for _, r in self.runs)


def backfill(
    spec: DagSpec,
    start: dt.datetime,
    end: dt.datetime,
    *,
    history: HistoryStore,
    project: Project | None = None,
    log_dir: Path | None = None,
    console: Console | None = None,
    rerun: bool = False,
) -> BackfillResult:
    """Run every interval of ``spec``'s schedule whose logical date (start) lies in
    ``[start, end]`` — Airflow's convention: ``--start 2026-11-01 --end 2026-11-03`` of a
    daily DAG is three runs — oldest first, up to ``max_active_runs`` at once; each run
    gets its logical date and data interval.

    Each interval is claimed like a scheduled one, so the scheduler will not fire it
    again; one it already fired is skipped unless ``rerun``.
    """
    from concurrent.futures import ThreadPoolExecutor

    from crane.orchestrate.executor import run_dag

    if not spec.schedule:
        raise CraneError(f"DAG {spec.name} has no schedule to backfill")
    state = TriggerState(history)
    todo: list[tuple[dt.datetime, dt.datetime]] = []
    skipped: list[tuple[dt.datetime, dt.datetime]] = []
    schedule = Schedule(spec.schedule, spec.timezone)
    for first, last in schedule.intervals(start, next(schedule.ticks(end, 1))):
        claimed = state.claim(spec.name, "schedule", [first.isoformat()], first)
        (todo if claimed or rerun else skipped).append((first, last))

    def one(interval: tuple[dt.datetime, dt.datetime]) -> DagRunResult:
        result = run_dag(
            spec,
            project=project,
            history=history,
            params={"trigger": "backfill"},
            logical_date=interval[0],
            interval=interval,
            log_dir=log_dir,
            console=console,
            on_event=[owner_listener(history)],
        )
        record_datasets(history, spec, result, project)  # downstream DAGs see backfills
        return result

    with ThreadPoolExecutor(spec.max_active_runs, thread_name_prefix="crane-backfill") as pool:
        runs = list(pool.map(one, todo))
    return BackfillResult(
        [(i[0], r) for i, r in zip(todo, runs, strict=True)], [s for s, _ in skipped]
    )


def parse_moment(text: str, timezone: str, end: bool = False) -> dt.datetime:
    """``2026-11-01`` or ``2026-11-01T06:00`` in the DAG's zone (an explicit offset wins);
    with ``end``, a bare date means the whole day (``--end 2026-11-03`` includes 06:00)."""
    from zoneinfo import ZoneInfo

    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CraneError(f"{text!r} is not a date or date-time (YYYY-MM-DD[THH:MM])") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    if end and len(text.strip()) == 10:  # a date: through its last instant
        moment = moment + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    return moment.astimezone(dt.UTC)
