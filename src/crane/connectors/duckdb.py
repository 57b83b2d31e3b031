"""DuckDB: the embedded default warehouse, and the engine that moves rows in-engine.

DuckDB can ATTACH PostgreSQL, MySQL/MariaDB and SQLite through its scanner
extensions, so a load from those systems into a DuckDB target never passes rows
through Python. The extensions come from the ``duckdb-extension-*`` packages
(``duckdb_extensions.import_extension``): a plain ``INSTALL`` would download.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from crane.connectors.base import Capabilities, Connector, TableRef, WriteMode, connectors
from crane.errors import ConnectorError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from sqlglot import exp

_extension_lock = threading.Lock()
_view_ids = itertools.count()

# A writable warehouse file gets a bounded buffer pool: DuckDB's default memory_limit is 80%
# of RAM and its buffer pool keeps every block it wrote, so RSS grew with the table (5M rows:
# 737 MB, 10M: 1,109 MB). With 256MB it spills to ``<file>.tmp`` instead: 504 / 511 MB, and no
# slower in paired runs (BENCHMARKS.md). Insertion order is not kept: every crane read that
# needs an order says ORDER BY. URL options override or add settings:
# ``duckdb:///w.duckdb?memory_limit=4GB&threads=2``.
WRITABLE_DEFAULTS: dict[str, Any] = {"memory_limit": "256MB", "preserve_insertion_order": False}


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load a scanner extension from its installed package; never from the network."""
    with _extension_lock:
        try:
            con.execute(f"LOAD {name}")  # already installed into the local extension dir
        except Exception:
            import duckdb_extensions

            duckdb_extensions.import_extension(name, con=con)
            con.execute(f"LOAD {name}")


@connectors.register("duckdb")
class DuckDBConnector(Connector):
    """A DuckDB database file (or ``:memory:``)."""

    scheme = "duckdb"
    dialect = "duckdb"
    default_schema = "main"
    capabilities = Capabilities(
        merge=True,
        copy=True,
        prefer_delete_insert_merge=True,
        replace_by_rename=True,
        key_constraints=False,
    )

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        super().__init__(url, read_only=read_only)
        import duckdb

        self.path = self.url.database or ":memory:"
        try:
            self.con = duckdb.connect(
                self.path, read_only=read_only and self.path != ":memory:", config=self._config()
            )
        except duckdb.IOException as error:
            raise ConnectorError(
                f"cannot open DuckDB file {self.path}: {error}",
                transient="lock" in str(error).lower(),
                hint="another process may be writing to it; only one writer at a time",
            ) from error
        self._depth = 0
        self._attached: dict[str, str] = {}

    def _config(self) -> dict[str, Any]:
        """DuckDB settings: the writable-file defaults, then every URL query option."""
        writable = not self.is_read_only and self.path != ":memory:"
        config = dict(WRITABLE_DEFAULTS) if writable else {}
        config.update({key: unquote(value) for key, value in self.url.params.items()})
        return config

    # -- reading -------------------------------------------------------------
    def read(
        self, source: str | TableRef, batch_rows: int = 100_000, params: Sequence[Any] = ()
    ) -> pa.RecordBatchReader:
        sql = f"SELECT * FROM {source.sql('duckdb')}" if isinstance(source, TableRef) else source
        cursor = self.con.cursor()
        result = cursor.execute(sql, list(params)) if params else cursor.execute(sql)
        return result.to_arrow_reader(batch_rows)

    # -- writing -------------------------------------------------------------
    def write(self, reader: pa.RecordBatchReader, table: TableRef, mode: WriteMode) -> int:
        view = f"_crane_in_{next(_view_ids)}"
        self.con.register(view, reader)
        try:
            target = table.sql("duckdb")
            if table.schema:
                self.con.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
            if mode == "append":
                if self.table_schema(table) is None:
                    self.con.execute(f"CREATE TABLE {target} AS SELECT * FROM {view} LIMIT 0")
                before = self._count(target)
                self.con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {view}")
                return self._count(target) - before
            verb = "CREATE OR REPLACE TABLE" if mode == "replace" else "CREATE TABLE"
            self.con.execute(f"{verb} {target} AS SELECT * FROM {view}")
            return self._count(target)
        finally:
            self.con.unregister(view)

    def _count(self, target: str) -> int:
        row = self.con.execute(f"SELECT count(*) FROM {target}").fetchone()
        return int(row[0]) if row else 0

    def execute(self, sql: str | exp.Expression, params: Sequence[Any] = ()) -> list[tuple]:
        text = self.render(sql)
        result = self.con.execute(text, list(params)) if params else self.con.execute(text)
        # DuckDB answers [] for statements without a result set; any error here is real
        return result.fetchall()

    def arrow(self, sql: str | exp.Expression, params: Sequence[Any] = ()) -> pa.Table:
        """Run a query and return its whole result as an Arrow table (small results)."""
        text = self.render(sql)
        result = self.con.execute(text, list(params)) if params else self.con.execute(text)
        return result.to_arrow_table()

    def _begin(self) -> None:
        self.con.execute("BEGIN TRANSACTION")

    # -- metadata ------------------------------------------------------------
    def table_schema(self, table: TableRef) -> pa.Schema | None:
        found = self.con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_name = ? AND table_schema = coalesce(?, current_schema()) "
            "AND table_catalog = current_database()",
            [table.name, table.schema],
        ).fetchone()
        if not found or not found[0]:
            return None
        return self.con.execute(f"SELECT * FROM {table.sql('duckdb')} LIMIT 0").arrow().schema

    def attach(self, other: Connector, alias: str) -> str:
        """ATTACH another system read-only through DuckDB's scanner; returns the alias."""
        spec = other.duckdb_attach()
        if spec is None:
            raise ConnectorError(f"{other!r} cannot be attached to DuckDB")
        kind, dsn = spec
        if self._attached.get(alias) == dsn:
            return alias
        if kind != "duckdb":  # DuckDB attaches its own files without an extension
            load_extension(self.con, kind)
        for statement in other.duckdb_attach_settings():  # e.g. exact TIME for MySQL
            self.con.execute(statement)
        escaped = dsn.replace("'", "''")
        self.con.execute(f"ATTACH '{escaped}' AS \"{alias}\" (TYPE {kind}, READ_ONLY)")
        self._attached[alias] = dsn
        return alias

    def duckdb_attach(self) -> tuple[str, str] | None:
        return ("duckdb", self.path) if self.path != ":memory:" else None

    def close(self) -> None:
        self.con.close()
