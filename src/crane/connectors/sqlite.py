"""SQLite: the standard-library driver, with declared column types mapped to Arrow.

SQLite stores values with dynamic types; the *declared* type of a column is the
only schema there is, so `read` builds Arrow columns from it (``DECIMAL(12,2)``
→ decimal128(12,2) parsed from text, ``DATE`` → date32, ``TIMESTAMP`` →
timestamp) and a query's columns are typed from its first batch. Rows cross
into Arrow a batch at a time (``fetchmany``); `write` binds whole batches with
``executemany`` (a C loop in ``sqlite3``). Loads into DuckDB use DuckDB's sqlite
scanner through `duckdb_attach` instead. ``read_only`` opens the file with the
``mode=ro`` URI, so SQLite itself refuses writes.

Decimals are written to columns declared ``DECIMAL_TEXT(p,s)``: the name gives
TEXT affinity, so SQLite keeps every digit (a ``DECIMAL`` column has NUMERIC
affinity and stores 123456789012345.123456789012345 as a rounded double).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from crane.connectors import types
from crane.connectors.base import Capabilities, Connector, TableRef, WriteMode, connectors
from crane.errors import ConnectorError

if TYPE_CHECKING:
    import sqlite3

    import pyarrow as pa
    from sqlglot import exp

TRANSIENT_CODES = frozenset({5, 6, 10})  # SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR
TRANSIENT_MESSAGES = ("database is locked", "database table is locked", "busy", "disk i/o")
BUSY_TIMEOUT_S = 30.0
# declared-type pattern -> Arrow type factory, first match wins (SQLite affinity order)
_DECLARED: list[tuple[str, str]] = [
    (r"^(DECIMAL|NUMERIC)(?:_TEXT)?\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)", "decimal"),
    (r"BOOL", "bool_"),
    (r"INT", "int64"),
    (r"^DATE$", "date32"),
    (r"DATETIME|TIMESTAMP", "timestamp"),
    (r"^TIME$", "time64"),
    (r"CHAR|CLOB|TEXT|JSON|UUID", "string"),
    (r"BLOB", "binary"),
    (r"REAL|FLOA|DOUB", "float64"),
]


def classify(error: BaseException) -> bool:
    """True if ``error`` is worth retrying (another writer holds the lock)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:  # extended codes keep the primary code in the low byte
        return code & 0xFF in TRANSIENT_CODES
    return any(fragment in str(error).lower() for fragment in TRANSIENT_MESSAGES)


def arrow_type(declared: str) -> pa.DataType | None:
    """The Arrow type for a declared SQLite column type; None = infer from values.

    >>> arrow_type("DECIMAL(12,2)"), arrow_type("varchar(20)"), arrow_type("")
    (Decimal128Type(decimal128(12, 2)), DataType(string), None)
    """
    import pyarrow as pa

    upper = declared.strip().upper()
    for pattern, kind in _DECLARED:
        found = re.search(pattern, upper)
        if not found:
            continue
        if kind == "decimal":
            return pa.decimal128(int(found.group(2)), int(found.group(3)))
        if kind == "timestamp":
            return pa.timestamp("us")
        if kind == "time64":
            return pa.time64("us")
        return getattr(pa, kind)()  # type: ignore[no-any-return]
    return None


@connectors.register("sqlite")
class SQLiteConnector(Connector):
    """A SQLite database file: ``sqlite:///relative.db`` or ``sqlite:////abs/path.db``."""

    scheme = "sqlite"
    dialect = "sqlite"
    default_schema = None
    capabilities = Capabilities(schemas=False, duckdb_attach_type="sqlite")

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        super().__init__(url, read_only=read_only)
        import sqlite3

        self.path = self.url.database or ":memory:"
        target = f"file:{self.path}?mode=ro" if read_only else self.path
        try:
            self.con: sqlite3.Connection = sqlite3.connect(
                target, uri=read_only, timeout=BUSY_TIMEOUT_S, isolation_level=None
            )
        except sqlite3.Error as error:
            raise self._error(error, "cannot open") from error
        self._depth = 0

    def _error(self, error: BaseException, action: str, **context: Any) -> ConnectorError:
        return ConnectorError(
            f"{action} on {self.url.masked}: {error}", transient=classify(error), **context
        )

    # -- statements ----------------------------------------------------------
    def execute(self, sql: str | exp.Expression, params: Sequence[Any] = ()) -> list[tuple]:
        try:
            cur = self.con.execute(self.render(sql), list(params))
            return cur.fetchall() if cur.description else []
        except Exception as error:
            raise self._error(error, "execute") from error

    def _begin(self) -> None:
        self.execute("BEGIN IMMEDIATE" if not self.is_read_only else "BEGIN")

    def _rollback(self) -> None:
        with contextlib.suppress(Exception):
            self.con.execute("ROLLBACK")

    # -- reading -------------------------------------------------------------
    def read(
        self, source: str | TableRef, batch_rows: int = 100_000, params: Sequence[Any] = ()
    ) -> pa.RecordBatchReader:
        import pyarrow as pa

        if isinstance(source, TableRef):
            declared = self._declared(source)
            sql = f"SELECT * FROM {source.sql('sqlite')}"
        else:
            declared, sql = self._declared_of_query(source), source
        try:
            cur = self.con.execute(sql, list(params))
        except Exception as error:
            raise self._error(error, "read", table=str(source)[:200]) from error
        names = [d[0] for d in cur.description or []]
        first = cur.fetchmany(batch_rows)
        hints = {n: arrow_type(t) for n, t in declared.items()}
        inferred = _batch(first, names, hints).schema
        # a column that was all NULL in the first batch: text is the safe guess
        inferred = pa.schema(
            [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in inferred]
        )
        schema = types.with_sql_types(inferred, declared, self.dialect)

        def batches() -> Iterator[pa.RecordBatch]:
            rows = first
            while rows:
                yield _batch(rows, names, hints, schema)
                rows = cur.fetchmany(batch_rows)

        return pa.RecordBatchReader.from_batches(schema, batches())

    def _declared(self, table: TableRef) -> dict[str, str]:
        from sqlglot import exp

        pragma = exp.func("pragma_table_info", exp.Literal.string(table.name))
        rows = self.execute(exp.select("name", "type").from_(pragma))
        return {str(name): str(kind) for name, kind in rows}

    def _declared_of_query(self, sql: str) -> dict[str, str]:
        """Declared types of a query's plain columns of one table (``SELECT *`` or named
        columns, e.g. an incremental window): SQLite reports no types for a result, and a
        window with no rows would otherwise come out as text. Anything else (joins,
        expressions, unparsable SQL) is typed by its values, as before."""
        from sqlglot import ParseError, exp, parse_one

        try:
            query = parse_one(sql, read="sqlite")
        except ParseError:
            return {}
        source = query.args.get("from_") or query.args.get("from")
        if not isinstance(query, exp.Select) or source is None or query.args.get("joins"):
            return {}
        table = source.this
        if not isinstance(table, exp.Table) or table.args.get("db"):
            return {}
        declared = self._declared(TableRef(table.name))
        if query.is_star:
            return declared
        return {
            c.name: declared[c.name]
            for c in query.expressions
            if isinstance(c, exp.Column) and c.name in declared
        }

    def table_schema(self, table: TableRef) -> pa.Schema | None:
        if not self._declared(table):
            return None
        return self.read(table, batch_rows=1).schema

    # -- writing -------------------------------------------------------------
    def write(self, reader: pa.RecordBatchReader, table: TableRef, mode: WriteMode) -> int:
        from sqlglot import exp

        reader = types.to_plain(reader)
        target = table.sql("sqlite")
        exists = bool(self._declared(table))
        if exists and mode == "create":
            raise ConnectorError("table already exists", table=str(table))
        names = [exp.to_identifier(f.name, quoted=True).sql("sqlite") for f in reader.schema]
        insert = f"INSERT INTO {target} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        rows = 0
        with self.transaction():
            if exists and mode == "replace":
                self.execute(exp.Drop(tables=[table.expression()], kind="TABLE"))
                exists = False
            if not exists:
                self._create(table, reader.schema)
            try:
                for batch in reader:
                    self.con.executemany(insert, _bindable(batch))
                    rows += batch.num_rows
            except Exception as error:
                raise self._error(error, "write", table=str(table)) from error
        return rows

    def _create(self, table: TableRef, schema: pa.Schema) -> None:
        from sqlglot import exp

        # SQLite keeps the declared type text verbatim (it only derives an affinity
        # from it), so it is written as is: sqlglot would turn DECIMAL into REAL.
        defs = ", ".join(
            f"{exp.to_identifier(f.name, quoted=True).sql('sqlite')} "
            f"{types.field_sql_type(f, self.dialect)}"
            for f in schema
        )
        self.execute(f"CREATE TABLE {table.sql('sqlite')} ({defs})")

    def duckdb_attach(self) -> tuple[str, str] | None:
        return ("sqlite", self.path) if self.path != ":memory:" else None

    def close(self) -> None:
        self.con.close()


def _batch(
    rows: list[tuple],
    names: list[str],
    hints: dict[str, pa.DataType | None],
    schema: pa.Schema | None = None,
) -> pa.RecordBatch:
    """Rows → one Arrow batch, typed by declared type (or the first batch's schema)."""
    import pyarrow as pa

    arrays = []
    for i, name in enumerate(names):
        values = [row[i] for row in rows]
        wanted = schema.field(i).type if schema is not None else hints.get(name)
        arrays.append(_column(values, wanted))
    if schema is not None:
        return pa.RecordBatch.from_arrays(arrays, schema=schema)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _column(values: list[Any], wanted: pa.DataType | None) -> pa.Array:
    import pyarrow as pa

    if wanted is None or pa.types.is_null(wanted):
        return pa.array(values)
    if pa.types.is_decimal(wanted) or pa.types.is_temporal(wanted):
        # stored as text (or REAL for numerics): parse through strings, exactly
        return pa.array([None if v is None else str(v) for v in values], pa.string()).cast(wanted)
    if pa.types.is_boolean(wanted):  # stored as 0/1
        return pa.array([None if v is None else bool(v) for v in values], wanted)
    return pa.array(values, wanted)


def _bindable(batch: pa.RecordBatch) -> Iterator[tuple]:
    """Rows with values sqlite3 can bind: exact types become text, booleans 0/1."""
    import json

    import pyarrow as pa

    columns = []
    for column in batch.columns:
        kind = column.type
        if pa.types.is_decimal(kind) or pa.types.is_temporal(kind):
            column = column.cast(pa.string())
        elif pa.types.is_boolean(kind):
            column = column.cast(pa.int8())
        values = column.to_pylist()
        if pa.types.is_list(kind) or pa.types.is_struct(kind):
            values = [None if v is None else json.dumps(v) for v in values]
        columns.append(values)
    return zip(*columns, strict=True)
