"""DuckDB: the embedded default warehouse, and the engine that moves rows in-engine.

DuckDB can ATTACH PostgreSQL, MySQL/MariaDB and SQLite through its scanner
extensions (`crane.connectors.extensions`), so a load from those systems into a DuckDB
target never passes rows through Python.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Sequence, Set
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from crane.connectors.base import (
    TEMP_SCHEMA,
    Capabilities,
    Connector,
    TableRef,
    WriteMode,
    connectors,
)
from crane.connectors.extensions import load_extension, trusted_config
from crane.errors import ConnectorError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from sqlglot import exp

_view_ids = itertools.count()

# A writable warehouse file gets a bounded buffer pool: DuckDB's default memory_limit is 80%
# of RAM and its buffer pool keeps every block it wrote, so RSS grew with the table (5M rows:
# 737 MB, 10M: 1,109 MB). With 256MB it spills to ``<file>.tmp`` instead: 504 / 511 MB, and no
# slower in paired runs (BENCHMARKS.md). Insertion order is not kept: every crane read that
# needs an order says ORDER BY. URL options override or add settings:
# ``duckdb:///w.duckdb?memory_limit=4GB&threads=2``.
WRITABLE_DEFAULTS: dict[str, Any] = {"memory_limit": "256MB", "preserve_insertion_order": False}
# the catalog name a warehouse file is attached under (see DuckDBConnector._open)
CATALOG = "_crane_warehouse"


def open_attached(path: str, read_only: bool, config: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """A new DuckDB instance with the file at ``path`` ATTACHed as ``CATALOG`` and in use.

    Not under the file's own name: DuckDB calls a file's catalog after its stem, and
    ``analytics.duckdb`` holding a schema ``analytics`` made every ``analytics.<table>``
    an ambiguous reference. A cursor of the returned connection starts in DuckDB's
    in-memory catalog: ``USE`` it again.
    """
    import duckdb

    root = duckdb.connect(":memory:", config=trusted_config(config))
    try:
        escaped = path.replace("'", "''")
        mode = " (READ_ONLY)" if read_only else ""
        root.execute(f"ATTACH '{escaped}' AS {CATALOG}{mode}")
        root.execute(f"USE {CATALOG}")
    except Exception:
        root.close()
        raise
    return root


def _same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


class _Files:
    """Warehouse files opened by this process, each ATTACHed once (``open_attached``).

    DuckDB lets a process attach a file once, so every connector of the file (parallel
    workers, a DAG's tasks) gets a cursor of one shared root connection, closed with the
    last one (which checkpoints the file).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, tuple[duckdb.DuckDBPyConnection, bool, dict[str, Any], int]] = {}

    def acquire(
        self, path: str, read_only: bool, config: dict[str, Any]
    ) -> duckdb.DuckDBPyConnection:
        key = os.path.realpath(path)
        with self._lock:
            if key not in self._open:
                root = open_attached(path, read_only, config)
                self._open[key] = (root, read_only, config, 0)
            root, opened_read_only, opened_config, users = self._open[key]
            if opened_read_only != read_only or opened_config != config:
                raise ConnectorError(
                    f"DuckDB file {path} is already open in this process with other settings",
                    hint="open it once per process with one URL (same options, same mode)",
                )
            self._open[key] = (root, read_only, config, users + 1)
            con = root.cursor()
        con.execute(f"USE {CATALOG}")
        return con

    def release(self, path: str) -> None:
        key = os.path.realpath(path)
        with self._lock:
            root, read_only, config, users = self._open[key]
            if users > 1:
                self._open[key] = (root, read_only, config, users - 1)
                return
            del self._open[key]
            root.close()


_files = _Files()

# a streamed table's first batch decides which text columns are mostly distinct (see
# ``DuckDBConnector.create_as``): at least this many rows, and this share of distinct values
# among the non-NULL ones
DISTINCT_SAMPLE_ROWS = 10_000
MOSTLY_DISTINCT_SHARE = 0.5


def _mostly_distinct_text(reader: pa.RecordBatchReader) -> tuple[pa.RecordBatchReader, set[str]]:
    """The same stream (its first batch read ahead) and its text columns whose first batch
    is mostly distinct values: a source with no statistics of its own (MySQL, SQLite, a
    query) still spares DuckDB the dictionary attempts on them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        first = reader.read_next_batch()
    except StopIteration:
        return reader, set()
    replay = pa.RecordBatchReader.from_batches(reader.schema, itertools.chain([first], reader))
    if first.num_rows < DISTINCT_SAMPLE_ROWS:
        return replay, set()
    fsst = set()
    for field, column in zip(first.schema, first.columns, strict=True):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        present = len(column) - column.null_count
        if present and pc.count_distinct(column).as_py() >= MOSTLY_DISTINCT_SHARE * present:
            fsst.add(field.name)
    return replay, fsst


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
        temp_staging=True,
    )

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        super().__init__(url, read_only=read_only)
        import duckdb

        self.path = self.url.database or ":memory:"
        try:
            self.con = self._open(duckdb)
        except duckdb.IOException as error:
            missing = "does not exist" in str(error)  # opened read-only before any load
            raise ConnectorError(
                f"cannot open DuckDB file {self.path}: {error}",
                transient="lock" in str(error).lower(),
                hint="the file does not exist yet: `crane run` creates it with the first load"
                if missing
                else "another process may be writing to it; only one writer at a time",
            ) from error
        self._depth = 0
        self._attached: dict[str, str] = {}
        self._closed = False

    def _open(self, duckdb: Any) -> duckdb.DuckDBPyConnection:
        config = self._config()
        if self.path == ":memory:":
            return duckdb.connect(":memory:", config=trusted_config(config))
        config.setdefault("temp_directory", f"{self.path}.tmp")  # where a file spills
        return _files.acquire(self.path, self.is_read_only, config)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of this connection, looking at the warehouse (a cursor starts in DuckDB's
        own in-memory catalog)."""
        cursor = self.con.cursor()
        if self.path != ":memory:":
            cursor.execute(f"USE {CATALOG}")
        return cursor

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
        from crane.connectors import types

        sql = f"SELECT * FROM {source.sql('duckdb')}" if isinstance(source, TableRef) else source
        cursor = self.cursor()
        result = cursor.execute(sql, list(params)) if params else cursor.execute(sql)
        # Arrow has no TIMETZ (DuckDB's export dropped the offset): such columns cross as
        # their text, tagged so that a target creates them as its own time-with-zone type
        zoned = [d[0] for d in cursor.description or [] if types.is_timetz(d[1])]
        if not zoned:
            return result.to_arrow_reader(batch_rows)
        exact = types.duckdb_zoned_as_text(sql, zoned)
        result = cursor.execute(exact, list(params)) if params else cursor.execute(exact)
        reader = result.to_arrow_reader(batch_rows)
        tagged = types.with_sql_types(
            reader.schema, dict.fromkeys(zoned, "TIME WITH TIME ZONE"), self.dialect
        )
        return types.with_schema(reader, tagged)

    # -- writing -------------------------------------------------------------
    def write(self, reader: pa.RecordBatchReader, table: TableRef, mode: WriteMode) -> int:
        view = f"_crane_in_{next(_view_ids)}"
        temporary = table.schema == TEMP_SCHEMA  # a staged window: this connection's own
        fsst: set[str] = set()
        if mode != "append" and not temporary:
            reader, fsst = _mostly_distinct_text(reader)
        self.con.register(view, reader)
        try:
            target = table.sql("duckdb")
            if table.schema and not temporary:
                self.con.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
            if temporary and mode == "replace":
                self.con.execute(
                    f"CREATE OR REPLACE TEMPORARY TABLE {target} AS SELECT * FROM {view}"
                )
                return self._count(target)
            if mode == "append":
                if self.table_schema(table) is None:
                    self.con.execute(f"CREATE TABLE {target} AS SELECT * FROM {view} LIMIT 0")
                before = self._count(target)
                self.con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {view}")
                return self._count(target) - before
            verb = "CREATE OR REPLACE TABLE" if mode == "replace" else "CREATE TABLE"
            if fsst and mode == "replace":
                self.create_as(table, f"SELECT * FROM {view}", fsst)
            else:
                self.con.execute(f"{verb} {target} AS SELECT * FROM {view}")
            return self._count(target)
        finally:
            self.con.unregister(view)

    def create_as(self, table: TableRef, query: str | exp.Expression, fsst: Set[str]) -> None:
        """``CREATE OR REPLACE TABLE table AS query``, with the text columns in ``fsst``
        declared ``USING COMPRESSION fsst``.

        DuckDB weighs a dictionary against FSST on every segment of every string column;
        for strings that are mostly distinct (emails, free text) the dictionary never wins
        and building it is wasted: 0.6 s of 3.7 s CPU in a 5M-row load, for the same file
        size. The columns' types are the query's own, as DuckDB describes them."""
        from sqlglot import exp

        text = self.render(query)
        described = self.con.execute(f"DESCRIBE {text}").fetchall()
        columns = []
        for name, sql_type, *_ in described:
            column = f"{exp.to_identifier(name, quoted=True).sql('duckdb')} {sql_type}"
            if name in fsst and sql_type == "VARCHAR":
                column += " USING COMPRESSION fsst"
            columns.append(column)
        target = table.sql("duckdb")
        with self.transaction():  # one transaction: the rows are written once, in parallel
            self.con.execute(f"CREATE OR REPLACE TABLE {target} ({', '.join(columns)})")
            self.con.execute(f"INSERT INTO {target} {text}")

    def _count(self, target: str) -> int:
        row = self.con.execute(f"SELECT count(*) FROM {target}").fetchone()
        return int(row[0]) if row else 0

    def execute(self, sql: str | exp.Expression, params: Sequence[Any] = ()) -> list[tuple]:
        text = self.render(sql)
        result = self.con.execute(text, list(params)) if params else self.con.execute(text)
        # DuckDB answers [] for statements without a result set; any error here is real
        return result.fetchall()

    def execute_count(self, sql: str | exp.Expression, params: Sequence[Any] = ()) -> int:
        # DuckDB answers an INSERT, UPDATE or DELETE with one row: the number of rows changed
        rows = self.execute(sql, params)
        return int(rows[0][0]) if rows else 0

    def arrow(self, sql: str | exp.Expression, params: Sequence[Any] = ()) -> pa.Table:
        """Run a query and return its whole result as an Arrow table (small results)."""
        text = self.render(sql)
        result = self.con.execute(text, list(params)) if params else self.con.execute(text)
        return result.to_arrow_table()

    def _begin(self) -> None:
        self.con.execute("BEGIN TRANSACTION")

    # -- metadata ------------------------------------------------------------
    def table_schema(self, table: TableRef) -> pa.Schema | None:
        if table.schema == TEMP_SCHEMA:  # this connection's own temporary tables
            found = self.con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?",
                [table.name],
            ).fetchone()
            if not found or not found[0]:
                return None
            return self.con.execute(f"SELECT * FROM {table.sql('duckdb')} LIMIT 0").arrow().schema
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
        if kind == "duckdb" and self.path != ":memory:" and _same_file(dsn, self.path):
            return CATALOG  # the warehouse itself (bronze -> silver): attached already
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
        if self._closed:
            return
        self._closed = True
        self.con.close()
        if self.path != ":memory:":
            _files.release(self.path)
