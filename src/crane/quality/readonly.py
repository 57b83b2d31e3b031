"""Read-only sessions to the checked databases: the checker cannot write, by construction.

Each engine is opened read-only at the database level, so even a hand-written
custom check cannot change data (DESIGN.md principle 6):

- DuckDB: ``duckdb.connect(path, read_only=True)`` (the file itself is opened read-only);
- PostgreSQL: session ``default_transaction_read_only=on`` *and* every query in an
  explicit ``BEGIN READ ONLY`` transaction that is rolled back afterwards; the
  extended query protocol refuses several statements in one call;
- MySQL/MariaDB: ``SET SESSION TRANSACTION READ ONLY`` and every query inside
  ``START TRANSACTION READ ONLY`` … ``ROLLBACK``; multi-statements stay disabled;
- SQLite: ``file:…?mode=ro`` URI.

On top of that, a static guard refuses any statement that is not a query (and
ATTACH/PRAGMA/SET/COPY, which some engines allow in read-only mode) with a clear
error before it reaches the engine. The database-level protection is what tests
prove with the guard switched off. Every statement issued is recorded in
``queries`` so tests and ``--plan`` can count them.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from crane.connectors.base import ConnectionURL
from crane.connectors.duckdb import CATALOG as WAREHOUSE_CATALOG
from crane.connectors.duckdb import open_attached
from crane.errors import CraneError
from crane.quality.dialects import QualityDialect, dialect_for


class ReadOnlyViolation(CraneError):
    """A statement that could modify the checked database was refused."""


class QueryError(CraneError):
    """A query of the checker failed in the checked database."""


_QUERY_TYPES = (exp.Query,)  # SELECT, UNION, … (WITH … SELECT parses as a Select)
# write nodes that may hide inside a query: SELECT … INTO, data-modifying CTEs
_WRITES = (exp.Into, exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop)


def guard(sql: str, dialect: str) -> None:
    """Refuse anything but a single read query, before it reaches the engine."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except sqlglot.errors.ParseError:
        head = re.match(r"\s*(\w+)", sql)
        if head and head.group(1).upper() in ("SELECT", "WITH", "VALUES", "TABLE"):
            return  # engine-specific syntax sqlglot does not know; the engine is read-only
        statements = []
    one = statements[0] if len(statements) == 1 else None
    if one is not None and _reads_only(one):
        return
    head = re.match(r"\s*(\w+)", sql)
    verb = head.group(1).upper() if head else "?"
    raise ReadOnlyViolation(
        f"refused {verb} statement: the quality checker only runs read queries",
        hint="a custom check must be one SELECT returning violating rows or a metric",
    )


def _reads_only(tree: exp.Expr) -> bool:
    return isinstance(tree, _QUERY_TYPES) and not any(isinstance(n, _WRITES) for n in tree.walk())


# The checker's default DuckDB memory cap: a 30-check suite over 10M rows peaks at
# ~1.36 GB RSS uncapped and ~0.86 GB with 600MB (DuckDB spills the DISTINCT hash
# tables); 640MB keeps the checker under 1 GB. Override: ?memory_limit=4GB.
DUCKDB_MEMORY_LIMIT = "640MB"
# A GROUP BY on a key whose min..max range spans at most 2^24 values (dense integer ids)
# uses an array indexed by the key instead of a hash table. DuckDB's default stops at
# 2^12; unique(id) over 10M dense ids took 1.2 s CPU instead of 3.4 s with 24 bits. The
# array is sized from the column's RANGE, not its rows: 1,000 rows with ids spread over
# 16M took 0.5 s and 280 MB instead of 2 ms, so the wider setting applies only to scans
# of at least 2^20 rows (array at most 16x the rows; `group_keys_in_arrays`).
# https://duckdb.org/docs/stable/configuration/overview (perfect_ht_threshold)
DUCKDB_PERFECT_HT_BITS = 24
DUCKDB_DEFAULT_HT_BITS = 12
ARRAY_GROUPING_MIN_ROWS = 1 << 20
_DUCKDB_SETTINGS = (
    "memory_limit",
    "threads",
    "temp_directory",
    "max_temp_directory_size",
    "perfect_ht_threshold",
)


class ReadOnlySession:
    """One read-only connection to a checked database."""

    def __init__(self, url: str, *, guard_statements: bool = True) -> None:
        self.url = ConnectionURL.parse(url)
        self.dialect: QualityDialect = dialect_for(self.url.scheme)
        self.guard = guard_statements
        self.queries: list[str] = []
        self._con: Any = None
        self._duckdb_catalog: str | None = None
        self._ht_bits = DUCKDB_DEFAULT_HT_BITS
        self._open()

    # -- opening -----------------------------------------------------------------
    def _open(self) -> None:
        opener = getattr(self, f"_open_{self.dialect.name}")
        try:
            opener()
        except CraneError:
            raise
        except Exception as error:
            raise QueryError(
                f"cannot open {self.url.masked} read-only: {error}", transient=False
            ) from error

    def _open_duckdb(self) -> None:
        import duckdb

        path = self.url.database or ":memory:"
        if path != ":memory:" and not Path(path).exists():
            raise QueryError(f"DuckDB database {path} does not exist")
        # URL parameters such as ?memory_limit=1GB&threads=2 bound the checker's footprint
        config: dict[str, Any] = {k: v for k, v in self.url.params.items() if k in _DUCKDB_SETTINGS}
        config.setdefault("memory_limit", DUCKDB_MEMORY_LIMIT)
        if path == ":memory:":
            self._con = duckdb.connect(path, config=config)
            return
        self._con = open_attached(path, True, config)
        self._duckdb_catalog = WAREHOUSE_CATALOG

    def _duckdb_cursor(self) -> Any:
        """A cursor looking at the checked file (a new cursor starts in DuckDB's memory)."""
        cur = self._con.cursor()
        if self._duckdb_catalog:
            cur.execute(f"USE {self._duckdb_catalog}")
        return cur

    def _open_postgres(self) -> None:
        from urllib.parse import unquote

        import psycopg

        raw = self.url.raw.replace("postgres://", "postgresql://", 1).split("?")[0]
        extra = unquote(self.url.params.get("options", ""))
        options = f"-c default_transaction_read_only=on {extra}".strip()
        self._con = psycopg.connect(raw, options=options)
        self._con.read_only = True  # every transaction starts BEGIN READ ONLY

    def _open_mysql(self) -> None:
        import pymysql

        self._con = pymysql.connect(
            host=self.url.host or "127.0.0.1",
            port=self.url.port or 3306,
            user=self.url.user or "root",
            password=self.url.password or "",
            database=self.url.database or None,
            autocommit=True,
        )
        with self._con.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")

    def _open_sqlite(self) -> None:
        path = Path(self.url.database or "")
        if not path.exists():
            raise QueryError(f"SQLite database {path} does not exist")
        self._con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        # REGEXP is a client-side function: nothing is created in the database.
        self._con.create_function("regexp", 2, _sqlite_regexp, deterministic=True)

    def group_keys_in_arrays(self, rows: int) -> None:
        """Before a GROUP BY over a scan of ``rows`` rows: DuckDB may group dense keys
        in an array when the scan is big enough (see ``ARRAY_GROUPING_MIN_ROWS``). A
        session setting, not a write; a URL's own ``perfect_ht_threshold`` wins."""
        if self.dialect.name != "duckdb" or "perfect_ht_threshold" in self.url.params:
            return
        bits = DUCKDB_PERFECT_HT_BITS if rows >= ARRAY_GROUPING_MIN_ROWS else DUCKDB_DEFAULT_HT_BITS
        if bits != self._ht_bits:
            self._con.execute(f"SET GLOBAL perfect_ht_threshold = {int(bits)}")  # cursors too
            self._ht_bits = bits

    # -- querying ----------------------------------------------------------------
    def render(self, query: str | exp.Expr) -> str:
        return query if isinstance(query, str) else self.dialect.render(query)

    def fetch(
        self, query: str | exp.Expr, limit: int | None = None
    ) -> tuple[list[str], list[tuple]]:
        """Run one read query; return (column names, rows) — at most ``limit`` rows."""
        sql = self.render(query)
        if self.guard:
            self._guard(query, sql)
        self.queries.append(sql)
        try:
            return self._run(sql, limit)
        except CraneError:
            raise
        except Exception as error:
            raise QueryError(_first_line(error)) from error

    def _guard(self, query: str | exp.Expr, sql: str) -> None:
        """A tree the checker built is checked as is (re-parsing its SQL cost ~10 ms a
        statement); text from a user is parsed first."""
        if isinstance(query, exp.Expr) and _reads_only(query):
            return
        guard(sql, self.dialect.name)

    def _run(self, sql: str, limit: int | None) -> tuple[list[str], list[tuple]]:
        name = self.dialect.name
        if name == "duckdb":
            cur = self._duckdb_cursor()
            try:
                cur.execute(sql)
                return _names(cur), _take(cur, limit)
            finally:
                cur.close()
        if name == "postgres":
            try:
                with self._con.cursor() as cur:
                    cur.execute(sql, prepare=False)
                    return _names(cur), _take(cur, limit)
            finally:
                self._con.rollback()
        if name == "mysql":
            with self._con.cursor() as cur:
                cur.execute("START TRANSACTION READ ONLY")
                try:
                    cur.execute(sql)
                    return _names(cur), _take(cur, limit)
                finally:
                    cur.execute("ROLLBACK")
        cur = self._con.execute(sql)
        return _names(cur), _take(cur, limit)

    def stream(self, query: str | exp.Expr, batch_rows: int = 50_000) -> Iterator[list[tuple]]:
        """Rows of a read query in bounded chunks (cross-connection key checks)."""
        sql = self.render(query)
        if self.guard:
            self._guard(query, sql)
        self.queries.append(sql)
        name = self.dialect.name
        if name == "postgres":
            try:
                with self._con.cursor(name="crane_keys") as cur:
                    cur.execute(sql)
                    while rows := cur.fetchmany(batch_rows):
                        yield list(rows)
            finally:
                self._con.rollback()
            return
        if name == "mysql":
            import pymysql

            with self._con.cursor(pymysql.cursors.SSCursor) as cur:
                cur.execute("START TRANSACTION READ ONLY")
                try:
                    cur.execute(sql)
                    while rows := cur.fetchmany(batch_rows):
                        yield list(rows)
                finally:
                    cur.fetchall()
                    cur.execute("ROLLBACK")
            return
        cur = self._duckdb_cursor() if name == "duckdb" else self._con.execute(sql)
        if name == "duckdb":
            cur.execute(sql)
        while rows := cur.fetchmany(batch_rows):
            yield list(rows)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> ReadOnlySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _names(cur: Any) -> list[str]:
    return [d[0] for d in cur.description or ()]


def _take(cur: Any, limit: int | None) -> list[tuple]:
    if cur.description is None:
        return []
    rows = cur.fetchall() if limit is None else cur.fetchmany(limit)
    return [tuple(r) for r in rows]


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _sqlite_regexp(pattern: str | None, value: Any) -> bool | None:
    if pattern is None or value is None:
        return None
    return re.search(pattern, str(value)) is not None
