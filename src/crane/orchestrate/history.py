"""Run history: DAG runs and task attempts, in SQLite (default) or PostgreSQL.

Why it never says "database is locked" (Prefect #18934, #15170): in a process,
every write goes through ONE writer thread that batches queued writes into
short transactions; the file is in WAL mode (readers never block the writer)
with a ``busy_timeout``, and a write that still meets another *process*'s lock
is retried with backoff. Readers open their own connections.

Tables: ``dag_runs`` (one row per run) and ``task_attempts`` (one row per
attempt of a task; attempt 0 records a task that never ran: skipped or
upstream_failed), including log path, error and the task's small output.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crane.errors import CraneError

RUN_COLUMNS = (
    "run_id", "dag", "state", "logical_date", "data_interval_start", "data_interval_end",
    "params", "started_at", "finished_at", "resumed_from", "error",
)  # fmt: skip
ATTEMPT_COLUMNS = (
    "run_id", "task", "attempt", "state", "started_at", "finished_at", "duration",
    "log_path", "error", "output", "isolation",
)  # fmt: skip
_DDL = (
    """CREATE TABLE IF NOT EXISTS dag_runs (
        run_id TEXT PRIMARY KEY, dag TEXT NOT NULL, state TEXT NOT NULL,
        logical_date TEXT, data_interval_start TEXT, data_interval_end TEXT, params TEXT,
        started_at TEXT, finished_at TEXT, resumed_from TEXT, error TEXT)""",
    """CREATE TABLE IF NOT EXISTS task_attempts (
        run_id TEXT NOT NULL, task TEXT NOT NULL, attempt INTEGER NOT NULL, state TEXT NOT NULL,
        started_at TEXT, finished_at TEXT, duration DOUBLE PRECISION, log_path TEXT, error TEXT,
        output TEXT, isolation TEXT, PRIMARY KEY (run_id, task, attempt))""",
    "CREATE INDEX IF NOT EXISTS dag_runs_by_dag ON dag_runs (dag, started_at)",
)
_JSON_FIELDS = ("params", "output")
_BUSY_MS = 30_000
_PG_RETRY = ("40001", "40P01")


HISTORY_ENV = "CRANE_DAG_HISTORY"


def location(root: Path, configured: str | None = None) -> str:
    """Where a project's run history lives: $CRANE_DAG_HISTORY > the DAG's ``history`` >
    ``.crane/history.sqlite`` in the project (beside, not inside, the DuckDB warehouse:
    the warehouse file allows one writing process, the history must allow many)."""
    import os

    return os.environ.get(HISTORY_ENV) or configured or str(root / ".crane" / "history.sqlite")


class HistoryError(CraneError):
    """The run history could not be read or written."""


class HistoryStore:
    """Open with `HistoryStore.open(url_or_path)`; ``close()`` flushes pending writes."""

    def __init__(self, connect: Callable[[], Any], placeholder: str) -> None:
        self._connect = connect
        self._ph = placeholder
        self._queue: queue.Queue[tuple[str, tuple[Any, ...]] | threading.Event | None] = (
            queue.Queue()
        )
        self._error: BaseException | None = None
        with self._connection() as con:
            self._write(con, [(ddl, ()) for ddl in _DDL])
        self._writer = threading.Thread(target=self._drain, name="crane-history", daemon=True)
        self._writer.start()

    @classmethod
    def open(cls, where: str | Path) -> HistoryStore:
        text = str(where)
        if text.startswith(("postgresql://", "postgres://")):
            return cls(lambda: _pg_connect(text), "%s")
        path = Path(text.removeprefix("sqlite:///")) if text.startswith("sqlite:") else Path(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(lambda: _sqlite_connect(path), "?")

    def connect(self) -> Any:
        """A new connection to the same database, for a caller needing its own transaction
        (the scheduler's atomic claims, `crane.orchestrate.triggers.state`); close it."""
        return self._connect()

    @property
    def placeholder(self) -> str:
        return self._ph

    # -- writes (queued; one writer thread) ------------------------------------------------
    def upsert_run(self, record: dict[str, Any]) -> None:
        self._put("dag_runs", RUN_COLUMNS, ("run_id",), record)

    def upsert_attempt(self, record: dict[str, Any]) -> None:
        self._put("task_attempts", ATTEMPT_COLUMNS, ("run_id", "task", "attempt"), record)

    def _put(
        self, table: str, columns: tuple[str, ...], key: tuple[str, ...], record: dict[str, Any]
    ) -> None:
        present = [c for c in columns if c in record]
        values = tuple(_encode(c, record[c]) for c in present)
        updates = ", ".join(f"{c} = excluded.{c}" for c in present if c not in key)
        sql = (
            f"INSERT INTO {table} ({', '.join(present)}) VALUES "
            f"({', '.join([self._ph] * len(present))}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
        )
        self._queue.put((sql, values))

    def flush(self) -> None:
        """Wait until every queued write is committed (raises the writer's error, if any)."""
        done = threading.Event()
        self._queue.put(done)
        done.wait()
        error, self._error = self._error, None  # each failure is reported once
        if error is not None:
            raise HistoryError(f"run history write failed: {error}") from error

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._writer.join(timeout=10)

    def _drain(self) -> None:
        """The writer thread: batches of queued writes, one short transaction each.

        It never dies on an error (a flush would wait forever): a failed batch is
        retried once on a fresh connection, then reported at the next `flush`.
        """
        con: Any = None
        while True:
            batch, events, stop = self._next_batch()
            if batch:
                con = self._commit_batch(con, batch)
            for event in events:
                event.set()
            if stop:
                if con is not None:
                    con.close()
                return

    def _next_batch(self) -> tuple[list[tuple[str, tuple[Any, ...]]], list[threading.Event], bool]:
        item = self._queue.get()
        batch: list[tuple[str, tuple[Any, ...]]] = []
        events: list[threading.Event] = []
        while True:
            if item is None:
                return batch, events, True
            if isinstance(item, threading.Event):
                events.append(item)
            else:
                batch.append(item)
            if len(batch) >= 500:
                return batch, events, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, events, False

    def _commit_batch(self, con: Any, batch: list[tuple[str, tuple[Any, ...]]]) -> Any:
        for fresh in (False, True):
            try:
                if con is None or fresh:
                    if con is not None:
                        with contextlib.suppress(Exception):
                            con.close()
                    con = self._connect()
                self._write(con, batch)
                return con
            except Exception as error:  # reported at the next flush
                if fresh:
                    self._error = error
        return con

    def _write(self, con: Any, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        """One short transaction; another process holding the lock means wait and retry."""
        for attempt in range(60):
            try:
                cur = con.cursor()
                for sql, values in batch:
                    cur.execute(sql, values)
                con.commit()
                return
            except Exception as error:
                con.rollback()
                if not _is_busy(error) or attempt == 59:
                    raise
                time.sleep(min(0.01 * 2**attempt, 0.5))

    # -- reads -------------------------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[Any]:
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._connection() as con:
            cur = con.cursor()
            cur.execute(sql.replace("?", self._ph), params)
            names = [d[0] for d in cur.description]
            return [_decode(dict(zip(names, row, strict=True))) for row in cur.fetchall()]

    def runs(self, dag: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        where, params = ("WHERE dag = ?", (dag,)) if dag else ("", ())
        return self._query(
            f"SELECT * FROM dag_runs {where} ORDER BY started_at DESC LIMIT ?", (*params, limit)
        )

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run (a unique prefix of its id is enough) with its attempts."""
        rows = self._query("SELECT * FROM dag_runs WHERE run_id LIKE ?", (f"{run_id}%",))
        if len(rows) > 1:
            raise HistoryError(f"run id prefix {run_id!r} matches {len(rows)} runs")
        if not rows:
            return None
        run = rows[0]
        run["attempts"] = self._query(
            "SELECT * FROM task_attempts WHERE run_id = ? ORDER BY started_at, task, attempt",
            (run["run_id"],),
        )
        return run

    def latest_run(self, dag: str) -> dict[str, Any] | None:
        found = self.runs(dag, limit=1)
        return self.run(found[0]["run_id"]) if found else None


def final_states(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each task's last attempt in ``run`` (as returned by `HistoryStore.run`)."""
    last: dict[str, dict[str, Any]] = {}
    for attempt in run.get("attempts", []):
        current = last.get(attempt["task"])
        if current is None or attempt["attempt"] >= current["attempt"]:
            last[attempt["task"]] = attempt
    return last


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=_BUSY_MS / 1000, check_same_thread=False)
    con.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable at checkpoints, fast
    return con


def _pg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgres://", "postgresql://", 1))


def _is_busy(error: BaseException) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text or getattr(error, "sqlstate", "") in _PG_RETRY


def _encode(column: str, value: Any) -> Any:
    """Values as stored; parameters and outputs are masked like logs (DESIGN principle 7)."""
    from crane.config.secrets import mask

    if column in _JSON_FIELDS:
        return None if value is None else mask(json.dumps(value, default=str))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for column in _JSON_FIELDS:
        if isinstance(row.get(column), str):
            row[column] = json.loads(row[column])
    return row
