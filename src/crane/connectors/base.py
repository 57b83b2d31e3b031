"""The connector contract every system implements.

A connector streams Arrow record batches out (`read`), bulk-writes them in
(`write`), runs SQL (`execute`) inside `transaction()`, and *declares* what it
supports as data (`Capabilities`) so callers never branch on the system's name.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

from crane.registry import Registry

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

WriteMode = Literal["append", "replace", "create"]


@dataclass(frozen=True)
class Capabilities:
    """What a system supports; callers read these flags instead of checking names."""

    transactions: bool = True
    transactional_ddl: bool = True
    merge: bool = False  # native MERGE statement
    copy: bool = False  # a bulk COPY path
    logical_replication: bool = False
    advisory_locks: bool = False
    schemas: bool = True  # namespaces inside one database
    # the TYPE name DuckDB's scanner uses to ATTACH this system, if it can
    duckdb_attach_type: str | None = None
    # False: a DuckDB target streams this system's own ``read()`` instead of ATTACHing it
    # through the scanner, because the connector's reader was measured faster
    duckdb_in_engine: bool = True
    # merge as DELETE matching keys + INSERT (counts from a semi join) instead of MERGE:
    # for engines without update bloat where that was measured faster (DuckDB: 50k into 5M,
    # MERGE 1.8 s + 0.8 s change count vs delete+insert 0.3-0.7 s); such a connector's
    # execute() must return a DELETE's row count as its one result row
    prefer_delete_insert_merge: bool = False
    # a table staged in the target's schema can become the target by a RENAME inside the
    # publish transaction, so a ``replace`` load stages there and never copies the rows again
    replace_by_rename: bool = False
    # a table crane creates gets ``load.primary_key`` as a PRIMARY KEY constraint unless the
    # pipeline says otherwise. False on DuckDB: its ART index tripled the cost of a 1% merge
    # into 5M rows (insert, commit and checkpoint all maintain it) and added 2.4 s to a 5M
    # first load, while crane's loads keep keys unique on their own (the batch is checked,
    # matched keys are deleted before they are inserted)
    key_constraints: bool = True
    # a window read in-engine may stage into a TEMP table of the publishing connection
    # (``TableRef(name, TEMP_SCHEMA)``):
    # its rows skip the write-ahead log and the file (DuckDB: a 50k-row window of a 5M-row
    # table staged and committed in ~35 ms instead of ~100 ms); a rerun re-reads it anyway
    temp_staging: bool = False


# the schema of a connection's temporary tables, for engines with ``temp_staging``
TEMP_SCHEMA = "temp"


@dataclass(frozen=True)
class TableRef:
    """A schema-qualified table name; rendered quoted by the SQL builder, never by hand."""

    name: str
    schema: str | None = None

    @classmethod
    def parse(cls, dotted: str, default_schema: str | None = None) -> TableRef:
        schema, _, name = dotted.rpartition(".")
        return cls(name=name, schema=schema or default_schema)

    def expression(self) -> exp.Table:
        from sqlglot import exp

        return exp.table_(
            exp.to_identifier(self.name, quoted=True),
            db=exp.to_identifier(self.schema, quoted=True) if self.schema else None,
        )

    def sql(self, dialect: str) -> str:
        return self.expression().sql(dialect=dialect)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class ConnectionURL:
    """A parsed connection URL; ``masked`` is what logs and errors may show."""

    raw: str
    scheme: str
    host: str | None
    port: int | None
    database: str | None
    user: str | None
    password: str | None
    params: dict[str, str]

    @classmethod
    def parse(cls, url: str) -> ConnectionURL:
        parts = urlsplit(url)
        scheme = parts.scheme.split("+")[0].lower()
        params = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        database = unquote(parts.path.lstrip("/")) if scheme not in ("duckdb", "sqlite") else None
        if scheme in ("duckdb", "sqlite"):
            # duckdb:///relative.db, duckdb:////abs/path.db, duckdb:///:memory:
            database = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
            database = database or ":memory:"
        return cls(
            raw=url,
            scheme=scheme,
            host=parts.hostname,
            port=parts.port,
            database=database,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            params=params,
        )

    @property
    def masked(self) -> str:
        from crane.config.secrets import mask  # also ?password=… and other query secrets

        if not self.password:
            return mask(self.raw)
        # the URL holds the password as written (percent-encoded), not the decoded one
        written = urlsplit(self.raw).password
        return mask(self.raw.replace(f":{written}@", ":***@", 1))


class Connector(ABC):
    """One open session to one system. Not thread-safe: use one per thread."""

    scheme: ClassVar[str]
    dialect: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    default_schema: ClassVar[str | None] = None

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = ConnectionURL.parse(url)
        self.is_read_only = read_only
        self._depth = 0  # open transaction nesting level

    # -- reading -------------------------------------------------------------
    @abstractmethod
    def read(
        self, source: str | TableRef, batch_rows: int = 100_000, params: Sequence[Any] = ()
    ) -> pa.RecordBatchReader:
        """Stream a table or a query as Arrow record batches of at most ``batch_rows``."""

    def fetch(self, sql: str | exp.Expression, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a query and return all rows; for small results (metadata, metrics)."""
        return self.execute(sql, params)

    def fraction_digits(self, sql: str) -> int | None:
        """Digits after the second of the first column of ``sql`` when it is a time
        type declared coarser than microseconds (``timestamp(0)``, MySQL's default
        ``DATETIME``); None when microseconds or unknown. Runs no scan."""
        return None

    # -- writing -------------------------------------------------------------
    @abstractmethod
    def write(self, reader: pa.RecordBatchReader, table: TableRef, mode: WriteMode) -> int:
        """Bulk-write a stream into ``table`` by the fastest path; returns rows written."""

    @abstractmethod
    def execute(self, sql: str | exp.Expression, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one statement in the current transaction; returns rows if it yields any."""

    def execute_count(self, sql: str | exp.Expression, params: Sequence[Any] = ()) -> int:
        """Run one INSERT, UPDATE or DELETE in the current transaction; returns how many rows
        it changed, as the driver reports it. Connectors whose driver reports no such count
        leave this as is, and callers that need one (the SCD Type 2 on-time path) go another
        way."""
        raise NotImplementedError(f"{type(self).__name__} reports no DML row counts")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit on success, roll back on error; nested use joins the outer one.

        Each system says how it begins, commits and rolls back (`_begin`, `_commit`,
        `_rollback`); the nesting rule is the same everywhere, so it lives here once.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        self._commit()

    def _begin(self) -> None:
        self.execute("BEGIN")

    def _commit(self) -> None:
        self.execute("COMMIT")

    def _rollback(self) -> None:
        with contextlib.suppress(Exception):  # connection gone: the server rolled back for us
            self.execute("ROLLBACK")

    # -- metadata ------------------------------------------------------------
    @abstractmethod
    def table_schema(self, table: TableRef) -> pa.Schema | None:
        """The table's columns as an Arrow schema, or None if it does not exist."""

    def duckdb_attach(self) -> tuple[str, str] | None:
        """(TYPE, connection string) for DuckDB's scanner to read this system in-engine."""
        return None

    def duckdb_attach_settings(self) -> list[str]:
        """DuckDB ``SET`` statements to run before attaching, so its scanner reads exactly."""
        return []

    def duckdb_scan(self, table: TableRef, alias: str) -> str:
        """A DuckDB SELECT reading ``table`` of this system attached as ``alias``, losslessly.

        Connectors whose scanner maps a type lossily override this with a fix.
        """
        from sqlglot import exp

        full = table.expression()
        full.set("catalog", exp.to_identifier(alias, quoted=True))
        if self.default_schema and not table.schema:
            full.set("db", exp.to_identifier(self.default_schema, quoted=True))
        return exp.select("*").from_(full).sql("duckdb")

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def render(self, sql: str | exp.Expression) -> str:
        return sql if isinstance(sql, str) else sql.sql(dialect=self.dialect)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url.masked}>"


connectors: Registry[type[Connector]] = Registry(
    "connector",
    builtins={
        "duckdb": "crane.connectors.duckdb",
        "postgresql": "crane.connectors.postgres",
        "postgres": "crane.connectors.postgres",
        "mysql": "crane.connectors.mysql",
        "mariadb": "crane.connectors.mysql",
        "sqlite": "crane.connectors.sqlite",
    },
)


def connect(url: str, *, read_only: bool = False) -> Connector:
    """Open a connector for ``url``, chosen by its scheme.

    >>> with connect("duckdb:///:memory:") as con:
    ...     con.execute("select 42")
    [(42,)]
    """
    scheme = ConnectionURL.parse(url).scheme
    return connectors.get(scheme)(url, read_only=read_only)
