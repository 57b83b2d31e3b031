"""Quality history: every check result and every metric of every ``crane check`` run.

Why not the warehouse's ``_crane`` schema like pipeline state? The checker opens the
checked DuckDB file *read-only*, and DuckDB refuses a second, differently configured
open of the same file in one process — so history cannot live in the file being
checked. The default store is a SQLite file in WAL mode (``.crane/state.sqlite`` in the
project): many readers, one writer at a time, with a busy timeout plus retries so two
concurrent runs never fail with "database is locked" (LESSONS.md, Prefect #18934).
A PostgreSQL URL is accepted for teams that share history.

Values are always bound parameters; table and column names are fixed constants here.

>>> import tempfile, pathlib
>>> from crane.quality.model import MetricRecord, SuiteResult
>>> path = pathlib.Path(tempfile.mkdtemp()) / "state.sqlite"
>>> store = QualityStore(f"sqlite:///{path}")
>>> store.record(SuiteResult(run_id="r1", metrics=[MetricRecord("orders", "row_count", 10)]))
>>> [v for _, v in store.metric_history("orders", None, "row_count")]
[10.0]
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from crane.connectors.base import ConnectionURL
from crane.errors import CraneError
from crane.quality.model import CheckResult, SuiteResult

T = TypeVar("T")

BUSY_TIMEOUT_S = 10.0
RETRIES = 5
DEFAULT_PATH = Path(".crane") / "state.sqlite"
NO_FILTER = ""  # stored instead of NULL so "same filter" is a plain equality

_DDL = (
    """CREATE TABLE IF NOT EXISTS quality_runs (
        run_id TEXT PRIMARY KEY, suite TEXT, status TEXT, started_at TEXT,
        seconds DOUBLE PRECISION, query_count INTEGER, checks INTEGER, failed INTEGER,
        error TEXT, exit_code INTEGER)""",
    """CREATE TABLE IF NOT EXISTS quality_results (
        run_id TEXT, check_name TEXT, tbl TEXT, filter TEXT, col TEXT, check_type TEXT,
        dimension TEXT, severity TEXT, status TEXT, value TEXT, threshold TEXT,
        message TEXT, sample TEXT, sql_text TEXT, details TEXT, measured_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS quality_metrics (
        run_id TEXT, dataset TEXT, filter TEXT, col TEXT, metric TEXT,
        value DOUBLE PRECISION, measured_at TEXT)""",
    "CREATE INDEX IF NOT EXISTS quality_metrics_key ON quality_metrics "
    "(dataset, col, metric, filter, measured_at)",
    "CREATE INDEX IF NOT EXISTS quality_results_run ON quality_results (run_id)",
)

_RESULT_COLUMNS = (
    "run_id, check_name, tbl, filter, col, check_type, dimension, severity, status, "
    "value, threshold, message, sample, sql_text, details, measured_at"
)


_RUN_KEYS = (
    "run_id",
    "suite",
    "status",
    "started_at",
    "seconds",
    "query_count",
    "checks",
    "failed",
    "error",
    "exit_code",
)


class QualityStoreError(CraneError):
    """The quality history store could not be read or written."""


def default_url(project_dir: str | Path = ".") -> str:
    """The default store of a project: ``<project>/.crane/state.sqlite``."""
    return f"sqlite:///{Path(project_dir).resolve() / DEFAULT_PATH}"


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return float(value) if isinstance(value, bool) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class QualityStore:
    """Run, result and metric history in SQLite (default) or PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = ConnectionURL.parse(url)
        self.postgres = self.url.scheme in ("postgresql", "postgres")
        if not self.postgres and self.url.scheme != "sqlite":
            raise QualityStoreError(
                f"unsupported quality store {self.url.masked!r}",
                hint="use sqlite:///path/state.sqlite or postgresql://…",
            )
        self._ready = False

    # -- connection ------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[Any]:
        if self.postgres:
            import psycopg

            raw = self.url.raw.replace("postgres://", "postgresql://", 1)
            with psycopg.connect(raw, autocommit=False) as pg:
                yield pg
            return
        path = Path(self.url.database or DEFAULT_PATH)
        path.parent.mkdir(parents=True, exist_ok=True)
        con: Any = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            yield con
            con.commit()
        except BaseException:
            con.rollback()
            raise
        finally:
            con.close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def _retry(self, action: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(connection)`` in one transaction, retrying on lock/busy errors."""
        for attempt in range(RETRIES):
            try:
                with self._connect() as con:
                    if not self._ready:
                        for statement in _DDL:
                            con.execute(statement)
                        self._ready = True
                    return fn(con)
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise QualityStoreError(f"{action} failed: {error}") from error
                if attempt == RETRIES - 1:
                    raise QualityStoreError(f"{action} failed: {error}", transient=True) from error
                time.sleep(0.05 * 2**attempt)
            except Exception as error:  # psycopg and friends
                raise QualityStoreError(f"{action} failed: {error}") from error
        raise AssertionError("unreachable")

    def _execute(self, con: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        cur = con.execute(self._sql(sql), tuple(params))
        return list(cur.fetchall()) if cur.description else []

    def _many(self, con: Any, sql: str, rows: list[tuple]) -> None:
        if not rows:
            return
        if self.postgres:
            with con.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
        else:
            con.executemany(sql, rows)

    # -- writing ---------------------------------------------------------------
    def record(self, suite: SuiteResult) -> None:
        """Store the run, every check result and every metric, in one transaction."""
        run = (
            suite.run_id,
            suite.suite,
            suite.status,
            _iso(suite.started_at),
            suite.seconds,
            suite.query_count,
            len(suite.results),
            sum(1 for r in suite.results if r.status in ("fail", "error")),
            suite.error,
            suite.exit_code(),
        )
        at = _iso(suite.started_at)
        results = [_result_row(suite.run_id, r, at) for r in suite.results]
        metrics = [
            (
                m.run_id or suite.run_id,
                m.dataset,
                m.filter or NO_FILTER,
                m.column or NO_FILTER,
                m.metric,
                _number(m.value),
                _iso(m.measured_at),
            )
            for m in suite.metrics
        ]

        def write(con: Any) -> None:
            self._execute(con, "INSERT INTO quality_runs VALUES (?,?,?,?,?,?,?,?,?,?)", run)
            marks = ",".join("?" * 16)
            self._many(con, f"INSERT INTO quality_results VALUES ({marks})", results)
            self._many(con, "INSERT INTO quality_metrics VALUES (?,?,?,?,?,?,?)", metrics)

        self._retry("recording quality run", write)

    # -- reading ---------------------------------------------------------------
    def metric_history(
        self,
        dataset: str,
        column: str | None,
        metric: str,
        filter: str | None = None,
        limit: int = 1000,
        exclude_run: str | None = None,
        before: dt.datetime | None = None,
    ) -> list[tuple[dt.datetime, float | None]]:
        """The last ``limit`` values of one metric, oldest first.

        ``filter`` and ``column`` match exactly (None = the unfiltered table / a
        table-level metric). ``exclude_run`` keeps the value under test out of its own
        training data (LESSONS.md, Elementary #1560).
        """
        sql = (
            "SELECT measured_at, value FROM quality_metrics WHERE dataset = ? AND col = ? "
            "AND metric = ? AND filter = ?"
        )
        params: list[Any] = [dataset, column or NO_FILTER, metric, filter or NO_FILTER]
        if exclude_run:
            sql += " AND run_id <> ?"
            params.append(exclude_run)
        if before:
            sql += " AND measured_at < ?"
            params.append(_iso(before))
        sql += " ORDER BY measured_at DESC LIMIT ?"
        params.append(limit)
        rows = self._retry("reading metric history", lambda con: self._execute(con, sql, params))
        return [(dt.datetime.fromisoformat(at), value) for at, value in reversed(rows)]

    def results(self, run_id: str) -> list[CheckResult]:
        """The check results of one run, in the order they were recorded."""
        sql = f"SELECT {_RESULT_COLUMNS} FROM quality_results WHERE run_id = ?"
        rows = self._retry("reading results", lambda con: self._execute(con, sql, [run_id]))
        return [_result_from_row(row) for row in rows]

    def runs(self, suite: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Recent runs, newest first, optionally of one suite."""
        sql = (
            "SELECT run_id, suite, status, started_at, seconds, query_count, checks, failed, "
            "error, exit_code FROM quality_runs"
        )
        params: list[Any] = []
        if suite is not None:
            sql += " WHERE suite = ?"
            params.append(suite)
        sql += " ORDER BY started_at DESC LIMIT ?"
        params.append(limit)
        rows = self._retry("reading runs", lambda con: self._execute(con, sql, params))
        keys = _RUN_KEYS
        return [dict(zip(keys, row, strict=True)) for row in rows]


def _result_row(run_id: str, r: CheckResult, at: str) -> tuple:
    data = r.to_dict()
    return (
        run_id,
        r.check,
        r.table,
        r.filter or NO_FILTER,
        r.column or NO_FILTER,
        r.check_type,
        r.dimension,
        r.severity,
        r.status,
        json.dumps(data["value"]),
        r.threshold,
        r.message,
        json.dumps(data["sample"]),
        r.sql,
        json.dumps(data["details"]),
        at,
    )


def _result_from_row(row: Sequence[Any]) -> CheckResult:
    (_, name, table, filt, col, ctype, dim, sev, status, value, thr, msg, sample, sql, det, _) = row
    return CheckResult(
        check=name,
        table=table,
        check_type=ctype,
        dimension=dim,
        severity=sev,
        status=status,
        column=col or None,
        filter=filt or None,
        value=json.loads(value) if value else None,
        threshold=thr,
        message=msg or "",
        sample=json.loads(sample) if sample else [],
        sql=sql,
        details=json.loads(det) if det else {},
    )
