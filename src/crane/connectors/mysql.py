"""MySQL / MariaDB: PyMySQL for the session, connectorx for reads, LOAD DATA for writes.

Paths chosen by measurement on a 1M-row, 7-column table (MariaDB 10.11, 2 shared
cores, measured when this connector was written): reading into Arrow took
2.7-3.3 s through connectorx (``arrow_stream``, bounded batches), 6.8-13.3 s
through DuckDB's mysql scanner and 22-29 s through PyMySQL ``SSCursor`` batches;
writing took 7.2-9.2 s through ``LOAD DATA LOCAL INFILE`` fed with tab-separated
text that pyarrow encodes column by column, 26 s through DuckDB's scanner and
54-56 s through PyMySQL ``executemany`` multi-row INSERTs. LOAD DATA turns data
errors into warnings, so any warning fails the write (nothing silent).

connectorx reads every DECIMAL as decimal(38,10) (digits past the 10th decimal
are lost) and bit(1)/tinyint(1) as bytes/integers, so `read` selects decimals as
text and restores their exact ``decimal(p,s)`` in Arrow, and turns ``bit(1)`` and
``tinyint(1)`` into booleans (what DuckDB's scanner does too). Sessions run with
``time_zone = '+00:00'``: TIMESTAMP columns read and write as naive UTC.

MySQL DDL commits implicitly, so ``transactional_ddl`` is False: a ``replace``
inside a transaction empties the table with DELETE instead of dropping it, and
creating a missing table inside a transaction is refused (it would silently
commit the caller's work).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from crane.connectors import types
from crane.connectors.base import Capabilities, Connector, TableRef, WriteMode, connectors
from crane.connectors.pool import Pool
from crane.errors import ConnectorError

if TYPE_CHECKING:
    import pyarrow as pa
    import pymysql
    from sqlglot import exp

# MySQL/MariaDB error numbers worth a retry: lock wait timeout, deadlock, too many
# connections, server shutdown, connection lost / gone away / cannot connect,
# connection killed, idle disconnect.
TRANSIENT_ERRNOS = frozenset(
    {
        1205,
        1213,
        1040,
        1053,
        1077,
        1152,
        1158,
        1159,
        1160,
        1161,
        1927,
        2002,
        2003,
        2006,
        2013,
        2055,
        4031,
    }
)
LOCAL_INFILE_REFUSED = frozenset({1148, 3948, 4166})  # server disallows LOAD DATA LOCAL
SESSION_SETUP = ("SET time_zone = '+00:00'", "SET NAMES utf8mb4")
READ_ONLY_SETUP = ("SET SESSION TRANSACTION READ ONLY",)
LOAD_CHUNK_BYTES = 64 << 20  # one LOAD DATA statement per ~64 MB of encoded rows
# PyMySQL description type codes (pymysql.constants.FIELD_TYPE)
_DECIMAL_CODES = frozenset({0, 246})
_BIT, _TINY = 16, 1
_UNSIGNED_FLAG = 32  # pymysql.constants.FLAG.UNSIGNED
_UNREADABLE_CODES = {255: "GEOMETRY"}  # connectorx: "not implemented: MYSQL_TYPE_GEOMETRY"
_DATE_CODES = frozenset({7, 10, 12, 14})  # TIMESTAMP, DATE, DATETIME, NEWDATE
_TIME = 11
MAX_DECIMAL_DIGITS = 38  # Arrow decimal128; DuckDB has no wider decimal


def classify(error: BaseException) -> bool:
    """True if ``error`` (PyMySQL, connectorx or OS) is worth retrying; False if terminal."""
    args = getattr(error, "args", ())
    if args and isinstance(args[0], int):
        return args[0] in TRANSIENT_ERRNOS
    if isinstance(error, OSError):
        return True
    text = str(error).lower()
    return "lost connection" in text or "gone away" in text or "can't connect" in text


def _close(con: Any) -> None:
    con.close()


def _alive(con: Any) -> bool:
    """A pooled session is reused only if the server still answers (no silent reconnect,
    which would drop the session's time zone and read-only settings)."""
    try:
        con.ping(reconnect=False)
        return True
    except Exception:
        return False


_sessions = Pool(_close)


@connectors.register("mysql", "mariadb")
class MySQLConnector(Connector):
    """A MySQL or MariaDB database; ``read_only`` sets ``SESSION TRANSACTION READ ONLY``."""

    scheme = "mysql"
    dialect = "mysql"
    default_schema = None
    capabilities = Capabilities(
        transactional_ddl=False,
        merge=False,  # INSERT … ON DUPLICATE KEY UPDATE instead
        copy=True,  # LOAD DATA LOCAL INFILE
        advisory_locks=True,  # GET_LOCK()
        schemas=False,  # a "schema" is a database
        duckdb_attach_type="mysql",
        # connectorx read() into DuckDB: 19.7-40 s for 5M rows vs 78.7 s via the mysql scanner
        duckdb_in_engine=False,
    )

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        super().__init__(url, read_only=read_only)
        self._key = ("mysql", self.url.raw, str(read_only))
        self._depth = 0
        try:
            self.con: pymysql.Connection = _sessions.acquire(self._key, self._open, _alive)
        except Exception as error:
            raise self._error(error, "cannot connect") from error

    def _open(self) -> pymysql.Connection:
        import pymysql

        con = pymysql.connect(
            host=self.url.host or "127.0.0.1",
            port=self.url.port or 3306,
            user=self.url.user or "root",
            password=self.url.password or "",
            database=self.url.database or None,
            autocommit=True,
            local_infile=True,
            charset="utf8mb4",
        )
        with con.cursor() as cur:
            for statement in SESSION_SETUP + (READ_ONLY_SETUP if self.is_read_only else ()):
                cur.execute(statement)
        return con

    def _error(self, error: BaseException, action: str, **context: Any) -> ConnectorError:
        text = str(error).strip()
        if self.url.password:
            text = text.replace(self.url.password, "***")
        return ConnectorError(
            f"{action} on {self.url.masked}: {text}", transient=classify(error), **context
        )

    # -- statements ----------------------------------------------------------
    def render(self, sql: str | exp.Expression) -> str:
        if isinstance(sql, str):
            return sql
        from sqlglot import exp

        # PyMySQL binds with %s; sqlglot renders MySQL placeholders as "?"
        def placeholder(node: exp.Expression) -> exp.Expression:
            return exp.var("%s") if isinstance(node, exp.Placeholder) else node

        return sql.transform(placeholder).sql(dialect=self.dialect)

    def execute(self, sql: str | exp.Expression, params: Sequence[Any] = ()) -> list[tuple]:
        text = self.render(sql)
        try:
            with self.con.cursor() as cur:
                cur.execute(text, list(params) if params else None)
                return list(cur.fetchall()) if cur.description else []
        except Exception as error:
            raise self._error(error, "execute") from error

    def _begin(self) -> None:
        """START TRANSACTION … COMMIT; DDL inside commits implicitly (MySQL's rule)."""
        self.execute("START TRANSACTION")

    def _rollback(self) -> None:
        with contextlib.suppress(Exception):  # connection gone: the server rolled back
            self.con.rollback()

    # -- reading -------------------------------------------------------------
    def read(
        self, source: str | TableRef, batch_rows: int = 100_000, params: Sequence[Any] = ()
    ) -> pa.RecordBatchReader:
        import connectorx

        sql = self._select(source, params)
        columns = self._describe(sql)
        exact_sql, fixes = self._exact(sql, columns)
        setup = list(SESSION_SETUP[:1]) + (list(READ_ONLY_SETUP) if self.is_read_only else [])
        try:
            reader = connectorx.read_sql(
                self._cx_url(),
                exact_sql,
                return_type="arrow_stream",
                batch_size=batch_rows,
                pre_execution_query=setup,
            )
        except BaseException as error:  # a Rust panic (unsupported type) is no Exception
            if type(error).__name__ == "PanicException":
                raise self._unreadable(sql, columns, str(source)[:200], error) from None
            if not isinstance(error, Exception):
                raise
            raise self._error(error, "read", table=str(source)[:200]) from error
        reader = self._guarded(reader, sql, columns, str(source)[:200])
        restored = self._restore(reader, fixes, str(source)[:200])
        if isinstance(source, TableRef):  # keep varchar(n), enum(...), json for MySQL targets
            sql_types = self._column_types(source)
            restored = types.with_schema(
                restored, types.with_sql_types(restored.schema, sql_types, self.dialect)
            )
        return types.rebatch(restored, batch_rows)

    def _select(self, source: str | TableRef, params: Sequence[Any]) -> str:
        if isinstance(source, TableRef):
            return f"SELECT * FROM {source.sql('mysql')}"
        if params:
            return self.con.cursor().mogrify(source, list(params))
        return source

    def _describe(self, sql: str) -> list[tuple]:
        """PEP 249 descriptions, each with an eighth item: whether the column is UNSIGNED
        (a DECIMAL's display length counts a sign only when it is not)."""
        try:
            with self.con.cursor() as cur:
                cur.execute(f"SELECT * FROM ({sql}) AS _q LIMIT 0")
                fields = getattr(getattr(cur, "_result", None), "fields", None) or []
                flags = [bool(f.flags & _UNSIGNED_FLAG) for f in fields]
                described = list(cur.description or [])
        except Exception as error:
            raise self._error(error, "read", table=sql[:200]) from error
        flags += [False] * (len(described) - len(flags))
        return [(*d, unsigned) for d, unsigned in zip(described, flags, strict=True)]

    def fraction_digits(self, sql: str) -> int | None:
        _, code, _, _, _, decimals, *_ = self._describe(sql)[0]
        return int(decimals or 0) if code in _DATE_CODES and (decimals or 0) < 6 else None

    def _exact(self, sql: str, columns: list[tuple]) -> tuple[str, dict[str, pa.DataType]]:
        """Select decimals as text and bits as integers; return the Arrow types to restore."""
        import pyarrow as pa
        from sqlglot import exp

        fixes: dict[str, pa.DataType] = {}
        projections: list[Any] = []
        for name, code, _, length, precision, scale, _, unsigned in columns:
            col: Any = exp.column(name, quoted=True)
            if code in _DECIMAL_CODES:
                # the display size less the point and (unless UNSIGNED) the sign
                digits = precision - (1 if scale else 0) - (0 if unsigned else 1)
                if digits <= MAX_DECIMAL_DIGITS:
                    fixes[name] = pa.decimal128(digits, scale)
                # wider (up to DECIMAL(65,30)): exact text, as the PostgreSQL connector reads
                # a numeric 38 digits cannot hold; DuckDB takes no 256-bit decimal
                col = exp.cast(col, exp.DataType.build("CHAR", dialect="mysql")).as_(name)
            elif (code == _BIT and length == 1) or (code == _TINY and length == 1):
                fixes[name] = pa.bool_()
                col = exp.cast(col, exp.DataType.build("SIGNED", dialect="mysql")).as_(name)
            projections.append(col)
        if not fixes:
            return sql, fixes
        inner = f"({sql}) AS _q"
        return f"SELECT {', '.join(p.sql('mysql') for p in projections)} FROM {inner}", fixes

    def _guarded(
        self, reader: pa.RecordBatchReader, sql: str, columns: list[tuple], source: str
    ) -> pa.RecordBatchReader:
        """The stream, with connectorx's conversion panics (a Rust panic, which is no
        ``Exception``: it escaped every handler with a traceback) turned into an error
        that names the column holding the value no Arrow type takes."""
        import pyarrow as pa

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            except BaseException as error:
                if type(error).__name__ != "PanicException":
                    raise
                raise self._unreadable(sql, columns, source, error) from None

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def _unreadable(
        self, sql: str, columns: list[tuple], source: str, panic: BaseException
    ) -> ConnectorError:
        """Which column holds a zero date or a TIME outside a day (what connectorx cannot
        convert), found by one query per such column; only run once a read failed."""
        from sqlglot import exp

        for name, code, *_ in columns:
            col = exp.column(name, quoted=True)
            if code in _UNREADABLE_CODES:
                ident = col.sql("mysql")
                return ConnectorError(
                    f"column {name!r} is {_UNREADABLE_CODES[code]}, which the reader cannot take",
                    table=source,
                    column=name,
                    hint=f"read it through a custom source query, e.g. ST_AsText({ident}) AS "
                    f"{ident}, or leave it out (source.columns)",
                )
            if code in _DATE_CODES:
                bad = exp.or_(exp.func("MONTH", col).eq(0), exp.func("DAYOFMONTH", col).eq(0))
                what = "a zero date (zero month or day, as in '0000-00-00')"
                fix = f"NULLIF({col.sql('mysql')}, '0000-00-00')"
            elif code == _TIME:
                day = (exp.Literal.string("00:00:00"), exp.Literal.string("24:00:00"))
                bad = exp.or_(col.copy() < day[0], col.copy() >= day[1])
                what, fix = (
                    "a TIME outside one day (a duration)",
                    f"TIME_TO_SEC({col.sql('mysql')})",
                )
            else:
                continue
            shown = f"CAST({col.sql('mysql')} AS CHAR)"  # as MySQL prints it
            probe = f"SELECT {shown} FROM ({sql}) AS _q WHERE {bad.sql('mysql')} LIMIT 1"
            found = self.execute(probe)
            if found:
                return ConnectorError(
                    f"column {name!r} holds {what}: {found[0][0]!r}, which Arrow cannot hold",
                    table=source,
                    column=name,
                    hint=f"read it through a custom source query, e.g. {fix} AS "
                    f"{col.sql('mysql')}, or fix the value in the source",
                )
        return ConnectorError(f"read: {str(panic)[:300]}", table=source)

    def _restore(
        self, reader: pa.RecordBatchReader, fixes: dict[str, pa.DataType], source: str
    ) -> pa.RecordBatchReader:
        import pyarrow as pa

        plain = types.plain_schema(reader.schema)
        target = pa.schema([f.with_type(fixes.get(f.name, f.type)) for f in plain])
        if target.equals(reader.schema):
            return reader

        def convert(batch: pa.RecordBatch) -> pa.RecordBatch:
            arrays = []
            for column, field in zip(batch.columns, target, strict=True):
                if pa.types.is_boolean(field.type) and pa.types.is_integer(column.type):
                    _only_zero_or_one(column, field.name, source)
                arrays.append(column.cast(field.type))
            return pa.RecordBatch.from_arrays(arrays, schema=target)

        return types.map_batches(reader, target, convert)

    def _cx_url(self) -> str:
        url = self.url
        auth = url.raw.split("://", 1)[1].split("@", 1)[0] if "@" in url.raw else "root"
        host = f"{url.host or '127.0.0.1'}:{url.port or 3306}"
        return f"mysql://{auth}@{host}/{url.database or ''}"

    # -- writing -------------------------------------------------------------
    def write(self, reader: pa.RecordBatchReader, table: TableRef, mode: WriteMode) -> int:
        if self.is_read_only:
            raise ConnectorError(f"{self.url.masked} is open read-only", table=str(table))
        reader = types.to_plain(reader)
        try:
            self._prepare(table, mode, reader.schema)  # DDL first: it commits implicitly
            with self.transaction():
                return self._load(reader, table)
        except ConnectorError:
            raise
        except Exception as error:
            raise self._error(error, "write", table=str(table)) from error

    def _prepare(self, table: TableRef, mode: WriteMode, schema: pa.Schema) -> None:
        from sqlglot import exp

        exists = self.table_schema(table) is not None
        if exists and mode == "create":
            raise ConnectorError("table already exists", table=str(table))
        if exists and mode == "replace":
            if self._depth:  # DROP would silently commit the caller's transaction
                self.execute(exp.delete(table.expression()))
                return
            self.execute(exp.Drop(tables=[table.expression()], kind="TABLE"))
            exists = False
        if exists:
            return
        if self._depth:
            raise ConnectorError(
                "cannot create a table inside a transaction: MySQL DDL commits implicitly",
                table=str(table),
                hint="create the target before the transaction (write mode 'create')",
            )
        defs = [
            exp.ColumnDef(
                this=exp.to_identifier(f.name, quoted=True),
                kind=exp.DataType.build(
                    types.field_sql_type(f, self.dialect), dialect="mysql", udt=True
                ),
            )
            for f in schema
        ]
        self.execute(
            exp.Create(this=exp.Schema(this=table.expression(), expressions=defs), kind="TABLE")
        )

    def _load(self, reader: pa.RecordBatchReader, table: TableRef) -> int:
        """Encode batches as LOAD DATA text in ~64 MB files; one statement per file."""
        rows = 0
        columns = [f.name for f in reader.schema]
        fd, path = tempfile.mkstemp(prefix="crane_load_", suffix=".tsv")
        try:
            out = os.fdopen(fd, "wb")
            for batch in reader:
                out.write(encode_batch(batch))
                if out.tell() >= LOAD_CHUNK_BYTES:
                    out.close()
                    rows += self._load_file(path, table, columns)
                    out = open(path, "wb")  # noqa: SIM115 - reopened per chunk
            out.close()
            if os.path.getsize(path):
                rows += self._load_file(path, table, columns)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        return rows

    def _load_file(self, path: str, table: TableRef, columns: list[str]) -> int:
        from sqlglot import exp

        # BIT columns do not parse text digits; load them through a variable
        bits = {n for n, t in self._column_types(table).items() if t.lower().startswith("bit")}
        targets, sets = [], []
        for i, name in enumerate(columns):
            ident = exp.to_identifier(name, quoted=True).sql("mysql")
            targets.append(f"@v{i}" if name in bits else ident)
            if name in bits:
                sets.append(f"{ident} = CAST(@v{i} AS UNSIGNED)")
        sql = (
            f"LOAD DATA LOCAL INFILE {self.con.escape(path)} INTO TABLE {table.sql('mysql')}"
            f" CHARACTER SET binary ({', '.join(targets)})"
            + (f" SET {', '.join(sets)}" if sets else "")
        )
        with self.con.cursor() as cur:
            loaded = cur.execute(sql)
            if cur.warning_count:
                cur.execute("SHOW WARNINGS LIMIT 3")
                shown = "; ".join(str(w[2]) for w in cur.fetchall())
                raise ConnectorError(f"LOAD DATA reported: {shown}", table=str(table))
        return int(loaded)

    # -- metadata ------------------------------------------------------------
    def _column_types(self, table: TableRef) -> dict[str, str]:
        found = self.execute(
            "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s"
            " ORDER BY ORDINAL_POSITION",
            [table.schema, table.name],
        )
        return {str(name): str(sql_type) for name, sql_type in found}

    def table_schema(self, table: TableRef) -> pa.Schema | None:
        if not self._column_types(table):
            return None
        return self.read(table, batch_rows=1).schema

    def duckdb_attach(self) -> tuple[str, str] | None:
        parts = {
            "host": self.url.host or "127.0.0.1",
            "user": self.url.user or "root",
            "port": str(self.url.port or 3306),
            "database": self.url.database or "",
            "password": self.url.password or "",
        }
        return ("mysql", " ".join(f"{k}={v}" for k, v in parts.items() if v))

    def duckdb_attach_settings(self) -> list[str]:
        # TIME would arrive as VARCHAR; TIMESTAMP is read in the session zone -> pin UTC.
        return ["SET mysql_time_as_time = true", "SET mysql_session_time_zone = '+00:00'"]

    def duckdb_scan(self, table: TableRef, alias: str) -> str:
        from sqlglot import exp

        full = exp.table_(
            exp.to_identifier(table.name, quoted=True),
            db=exp.to_identifier(table.schema or self.url.database, quoted=True),
            catalog=exp.to_identifier(alias, quoted=True),
        )
        return exp.select("*").from_(full).sql("duckdb")

    def close(self) -> None:
        con = self.__dict__.pop("con", None)
        if con is None:
            return
        healthy = con.open
        if healthy and self._depth:
            with contextlib.suppress(Exception):
                con.rollback()
        _sessions.release(self._key, con, healthy=healthy)


def _only_zero_or_one(column: pa.Array, name: str, source: str) -> None:
    """A ``tinyint(1)`` is read as a boolean, but its (1) is only a display width: a
    status code of 2 or -1 would silently become true. Such a column fails instead."""
    import pyarrow as pa
    import pyarrow.compute as pc

    other = pc.filter(column, pc.invert(pc.is_in(column, pa.array([0, 1], column.type))))
    if len(other) - other.null_count:
        value = pc.drop_null(other)[0].as_py()
        ident = f"`{name}`"
        raise ConnectorError(
            f"column {name!r} is tinyint(1), read as a boolean, but holds {value}",
            table=source,
            column=name,
            hint=f"read it through a custom source query as CAST({ident} AS SIGNED) AS {ident}",
        )


# LOAD DATA's default text format: tab-separated, newline-terminated, backslash
# escapes, \N for NULL. These bytes would otherwise end or split a field.
_ESCAPES = ((b"\\", b"\\\\"), (b"\t", b"\\t"), (b"\n", b"\\n"), (b"\r", b"\\r"))


def _text(column: pa.Array) -> pa.Array:
    """One column as LOAD DATA text, vectorised in pyarrow (no per-row Python)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_boolean(kind):
        column = column.cast(pa.int8())
    elif pa.types.is_timestamp(kind) and kind.tz:
        column = column.cast(pa.timestamp(kind.unit, tz="UTC")).cast(pa.timestamp(kind.unit))
    elif pa.types.is_list(kind) or pa.types.is_struct(kind):
        import json

        column = pa.array([None if v is None else json.dumps(v) for v in column.to_pylist()])
    if not (pa.types.is_binary(column.type) or pa.types.is_string(column.type)):
        column = column.cast(pa.string())
    column = column.cast(pa.binary())
    for raw, escaped in _ESCAPES:
        column = pc.replace_substring(column, raw, escaped)
    return pc.fill_null(column, pa.scalar(b"\\N", pa.binary()))


def encode_batch(batch: pa.RecordBatch) -> bytes:
    """A record batch as LOAD DATA text (tab-separated lines)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if batch.num_rows == 0:
        return b""
    fields = [_text(column) for column in batch.columns]
    tab, newline = pa.scalar(b"\t", pa.binary()), pa.scalar(b"\n", pa.binary())
    lines = pc.binary_join_element_wise(*fields, tab) if len(fields) > 1 else fields[0]
    lines = pc.binary_join_element_wise(lines, pa.scalar(b"", pa.binary()), newline)
    offsets = pa.array([0, len(lines)], pa.int32())
    whole = pc.binary_join(pa.ListArray.from_arrays(offsets, lines), pa.scalar(b"", pa.binary()))
    return bytes(whole[0].as_buffer())
