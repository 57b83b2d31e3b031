"""Trigger state, in the run-history database: what fired, what datasets changed, who runs what.

Why claims: "no double firing" must hold across a restart AND across two
scheduler processes on one history. Every firing is first *claimed* with an
``INSERT … ON CONFLICT DO NOTHING`` on a primary key — (dag, kind, key):
the interval's logical date, the file's path, a dataset event — so exactly one
process wins, whatever the timing; the loser sees 0 rows inserted and moves on.
The last claimed logical date of a DAG is its schedule state.

Tables (beside ``dag_runs`` and ``task_attempts``):

* ``trigger_claims(dag, kind, key, logical_date, claimed_by, claimed_at)``
* ``dataset_events(event_id, dataset, dag, run_id, rows, created_at)``
* ``run_owners(run_id, host, pid)``: the process running a run, so a later
  scheduler can tell a crashed run (its process is gone) from a live one.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crane.orchestrate.history import HistoryStore

_DDL = (
    """CREATE TABLE IF NOT EXISTS trigger_claims (
        dag TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, logical_date TEXT,
        claimed_by TEXT, claimed_at TEXT, PRIMARY KEY (dag, kind, key))""",
    """CREATE TABLE IF NOT EXISTS run_owners (
        run_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL)""",
)
# the one engine difference: how an ever-increasing event id is declared
_EVENTS_ID = {"?": "INTEGER PRIMARY KEY AUTOINCREMENT", "%s": "BIGSERIAL PRIMARY KEY"}
_EVENTS_DDL = """CREATE TABLE IF NOT EXISTS dataset_events (
    event_id {id}, dataset TEXT NOT NULL, dag TEXT, run_id TEXT, rows BIGINT, created_at TEXT)"""


def me() -> str:
    """This process, as written in ``claimed_by``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class TriggerState:
    """Claims and events in the history database (SQLite or PostgreSQL)."""

    def __init__(self, history: HistoryStore) -> None:
        self.history = history
        self.ph = history.placeholder
        ddl = [*_DDL, _EVENTS_DDL.format(id=_EVENTS_ID[self.ph])]
        self._run([(sql, ()) for sql in ddl])

    # -- claims ----------------------------------------------------------------------------
    def claim(
        self, dag: str, kind: str, keys: Iterable[str], logical_date: dt.datetime | None = None
    ) -> bool:
        """Claim every key for ``dag`` in one transaction; False (nothing kept) if any was taken."""
        now = dt.datetime.now(dt.UTC).isoformat()
        day = logical_date.astimezone(dt.UTC).isoformat() if logical_date else None
        sql = (
            "INSERT INTO trigger_claims (dag, kind, key, logical_date, claimed_by, claimed_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dag, kind, key) DO NOTHING"
        )
        statements = [(sql, (dag, kind, key, day, me(), now)) for key in keys]
        return self._run(statements, all_or_none=True) is not None

    def last_scheduled(self, dag: str) -> dt.datetime | None:
        """The schedule state: the latest logical date fired by the schedule (or a backfill)."""
        found = self._one(
            "SELECT MAX(logical_date) FROM trigger_claims WHERE dag = ? AND kind = 'schedule'",
            (dag,),
        )
        return dt.datetime.fromisoformat(found) if found else None

    def claimed(self, dag: str, kind: str) -> set[str]:
        rows = self._all("SELECT key FROM trigger_claims WHERE dag = ? AND kind = ?", (dag, kind))
        return {r[0] for r in rows}

    def release_lost_claims(self) -> list[tuple[str, str]]:
        """Schedule claims of a dead process on this host whose run never started (it died
        between claim and run): released, so the interval fires again. (dag, key) pairs."""
        rows = self._all(
            "SELECT c.dag, c.key, c.claimed_by FROM trigger_claims c WHERE c.kind = 'schedule' "
            "AND c.claimed_by LIKE ? AND NOT EXISTS (SELECT 1 FROM dag_runs r "
            "WHERE r.dag = c.dag AND r.logical_date = c.logical_date)",
            (f"{socket.gethostname()}:%",),
        )
        lost = [(r[0], r[1]) for r in rows if not _alive(int(r[2].rpartition(":")[2]))]
        sql = "DELETE FROM trigger_claims WHERE dag = ? AND kind = 'schedule' AND key = ?"
        if lost:
            self._run([(sql, pair) for pair in lost])
        return lost

    # -- datasets --------------------------------------------------------------------------
    def emit(self, dataset: str, dag: str | None, run_id: str | None, rows: int | None) -> None:
        sql = (
            "INSERT INTO dataset_events (dataset, dag, run_id, rows, created_at) "
            "VALUES (?, ?, ?, ?, ?)"
        )
        now = dt.datetime.now(dt.UTC).isoformat()
        self._run([(sql, (dataset, dag, run_id, rows, now))])

    def latest_events(self, datasets: list[str]) -> dict[str, int]:
        """The newest event id per dataset (datasets never updated are absent)."""
        if not datasets:
            return {}
        marks = ", ".join("?" * len(datasets))
        rows = self._all(
            "SELECT dataset, MAX(event_id) FROM dataset_events "
            f"WHERE dataset IN ({marks}) GROUP BY dataset",
            tuple(datasets),
        )
        return {r[0]: int(r[1]) for r in rows}

    def consumed(self, dag: str) -> dict[str, int]:
        """Per dataset, the newest event a dataset-triggered run of ``dag`` already used."""
        best: dict[str, int] = {}
        for key in self.claimed(dag, "dataset"):
            dataset, _, event = key.rpartition("#")
            best[dataset] = max(best.get(dataset, 0), int(event))
        return best

    # -- run owners ------------------------------------------------------------------------
    def own(self, run_id: str) -> None:
        sql = (
            "INSERT INTO run_owners (run_id, host, pid) VALUES (?, ?, ?) "
            "ON CONFLICT (run_id) DO NOTHING"
        )
        self._run([(sql, (run_id, socket.gethostname(), os.getpid()))])

    def orphaned_runs(self) -> list[dict[str, Any]]:
        """Runs still ``running`` whose owning process on this host no longer exists."""
        rows = self._all(
            "SELECT r.run_id, o.pid FROM dag_runs r JOIN run_owners o ON o.run_id = r.run_id "
            "WHERE r.state = 'running' AND o.host = ?",
            (socket.gethostname(),),
        )
        return [{"run_id": r[0], "pid": int(r[1])} for r in rows if not _alive(int(r[1]))]

    # -- plumbing --------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.ph)

    def _run(
        self, statements: list[tuple[str, tuple[Any, ...]]], all_or_none: bool = False
    ) -> int | None:
        """One transaction; with ``all_or_none`` every statement must change a row."""
        con = self.history.connect()
        try:
            cur = con.cursor()
            changed = 0
            for sql, values in statements:
                cur.execute(self._sql(sql), values)
                if all_or_none and cur.rowcount != 1:
                    con.rollback()
                    return None
                changed += max(cur.rowcount, 0)
            con.commit()
            return changed
        finally:
            con.close()

    def _all(self, sql: str, values: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        con = self.history.connect()
        try:
            cur = con.cursor()
            cur.execute(self._sql(sql), values)
            return list(cur.fetchall())
        finally:
            con.close()

    def _one(self, sql: str, values: tuple[Any, ...]) -> Any:
        rows = self._all(sql, values)
        return rows[0][0] if rows else None


def owner_listener(history: HistoryStore) -> Callable[[dict[str, Any]], None]:
    """An executor ``on_event`` listener recording this process as each run's owner, so a
    scheduler starting after a crash can tell that run is dead (``crane dag run``, backfill)."""
    state = TriggerState(history)

    def listen(event: dict[str, Any]) -> None:
        if event.get("event") == "run_started":
            state.own(event["run_id"])

    return listen


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
