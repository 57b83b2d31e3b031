"""PostgreSQL: psycopg for the session, DuckDB's scanner for reads, ADBC COPY for writes.

Paths chosen by measurement on a 1M-row, 7-column table (PG 15, 2 cores, measured when
this connector was written): reading into Arrow took 0.68-0.79 s through
DuckDB's postgres scanner (binary COPY, parallel ctid ranges, keeps numeric(p,s)
as decimal), 0.91-1.65 s through ADBC (numeric arrives as opaque text), 1.6 s
through connectorx (numeric widened to decimal(38,10)) and 8.5-9.6 s through
psycopg binary COPY rows; writing took 1.2-1.65 s through ADBC ``adbc_ingest``
(binary COPY built in C), 1.4-1.8 s through DuckDB's scanner, 4.6-5.1 s through
psycopg CSV COPY and 16 s through psycopg ``write_row``. As shipped, `read` takes
1.0-1.9 s; the staged `write` took 3.5-4.1 s (one extra server-side INSERT … SELECT).

Writes use ADBC's binary COPY. Outside a transaction, when every target column
takes ADBC's wire type as is, DDL and COPY run as one ADBC transaction straight
into the target (the 1.2-1.65 s path). Otherwise — inside ``transaction()``, or
when a column needs a cast (uuid, jsonb, enum … from Arrow strings) — rows are
copied into an UNLOGGED staging table and published with one ``INSERT … SELECT``
(explicit casts to the target's types) on the session connection, so a write
inside ``transaction()`` commits atomically with the caller's other statements
(e.g. the watermark): exactly-once.

DuckDB's scanner reads unconstrained ``numeric`` as DOUBLE (lossy); `duckdb_scan`
fixes that by casting such columns in PostgreSQL to ``numeric(38, s)`` with the
largest scale present, and at least 10 (or to text when 38 digits cannot hold the
values, or they hold NaN/Infinity).

**NaN in ``numeric(p,s)``.** The scanner reads a NaN into its DECIMAL as 0, without a
word, and no decimal type holds NaN. What crane does, by route:

* every read through ``postgres_query`` — `read` (the streamed route), the windows of
  incremental loads (``duckdb_window_scan``), full loads of tables with an unconstrained
  ``numeric`` — wraps each ``numeric(p,s)`` column in a check PostgreSQL evaluates per row
  (one comparison): a NaN fails the read with an error naming the column and the table;
* a full in-engine load into DuckDB (``duckdb_scan`` of the attached catalog: the fast,
  parallel route, which cannot evaluate anything per row in PostgreSQL) asks the table's
  statistics (``pg_stats``) first, and fails naming the column when ANALYZE saw a NaN.
  **A NaN the statistics do not show (never analyzed since it was written, or missed by
  the sample) loads as 0.00 on this route.** Proving its absence would cost a second scan
  of the table. A user whose ``numeric(p,s)`` columns may hold NaN reads them with a
  custom query (``NULLIF(amount, 'NaN')``, or ``amount::text``), or forbids it at the
  source (``CHECK (amount <> 'NaN')``).
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from crane.connectors import infinite, types
from crane.connectors.base import Capabilities, Connector, TableRef, WriteMode, connectors
from crane.connectors.pool import Pool
from crane.errors import ConnectorError

if TYPE_CHECKING:
    import duckdb
    import psycopg
    import pyarrow as pa
    from sqlglot import exp

# SQLSTATEs worth a retry: serialization failure, deadlock, lock timeout, admin or
# crash shutdown, cannot-connect-now, too many connections, out of memory/disk.
TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53000", "53100", "53200", "53300"}
)
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08"})  # connection exceptions
# Without a SQLSTATE the server never answered: transient, unless libpq says it refused us.
TERMINAL_CONNECT_MESSAGES = (
    "authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
    "invalid dsn",
    "invalid connection option",
)
# driver exception classes that mean "no answer from the server"; IOException is what
# DuckDB's postgres scanner raises when it cannot reach the server
CONNECTION_ERROR_NAMES = frozenset(
    {"OperationalError", "InterfaceError", "ConnectionError", "IOException"}
)
NUMERIC_OID = 1700
_TIME_OIDS = frozenset({1114, 1184})  # timestamp, timestamptz
MAX_DECIMAL_DIGITS = 38  # DuckDB/Arrow decimal128
LOOSE_SCALE = 10  # decimals an unconstrained numeric gets at least (connectorx's choice too)
# estimated distinct values from which a column counts as mostly distinct (see
# ``distinct_text_columns``): a DuckDB row group holds 122,880 rows, so a column with at
# least this many values repeats too little inside one for a dictionary to pay
MOSTLY_DISTINCT = 100_000


def classify(error: BaseException) -> bool:
    """True if ``error`` (psycopg, ADBC or OS) is worth retrying; False if terminal."""
    state = getattr(error, "sqlstate", None)
    if state:
        return state in TRANSIENT_SQLSTATES or state[:2] in TRANSIENT_SQLSTATE_CLASSES
    text = str(error).lower()
    if any(fragment in text for fragment in TERMINAL_CONNECT_MESSAGES):
        return False
    return isinstance(error, OSError) or type(error).__name__ in CONNECTION_ERROR_NAMES


def _close(con: Any) -> None:
    con.close()


def _alive(con: Any) -> bool:
    """A pooled session is reused only if a round trip still works (server restarts)."""
    try:
        con.execute("SELECT 1")
        return True
    except Exception:
        return False


_sessions = Pool(_close)
_ingesters = Pool(_close)


@connectors.register("postgresql", "postgres")
class PostgresConnector(Connector):
    """A PostgreSQL database; ``read_only`` sets ``default_transaction_read_only``."""

    scheme = "postgresql"
    dialect = "postgres"
    default_schema = "public"
    capabilities = Capabilities(
        merge=True,  # PostgreSQL 15+
        copy=True,
        logical_replication=True,
        advisory_locks=True,
        duckdb_attach_type="postgres",
    )

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        super().__init__(url, read_only=read_only)
        self.dsn = self._dsn()
        self._key = ("pg", self.url.raw, str(read_only))
        self._depth = 0
        self._orphans: list[TableRef] = []
        self._duck: duckdb.DuckDBPyConnection | None = None
        self._duck_lock = threading.Lock()
        try:
            self.con: psycopg.Connection = _sessions.acquire(self._key, self._open, _alive)
        except Exception as error:
            raise self._error(error, "cannot connect") from error

    def _dsn(self) -> str:
        from urllib.parse import unquote

        from psycopg.conninfo import make_conninfo

        parts: dict[str, Any] = {
            "host": self.url.host,
            "port": self.url.port,
            "dbname": self.url.database,
            "user": self.url.user,
            "password": self.url.password,
            **{key: unquote(value) for key, value in self.url.params.items()},
        }
        if self.is_read_only:  # beside the URL's own options (search_path, timeouts …)
            own = parts.get("options") or ""
            parts["options"] = f"{own} -c default_transaction_read_only=on".strip()
        return make_conninfo(**{k: v for k, v in parts.items() if v not in (None, "")})

    def _open(self) -> psycopg.Connection:
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True)

    def _error(self, error: BaseException, action: str, **context: Any) -> ConnectorError:
        text = str(error).strip()
        if self.url.password:
            text = text.replace(self.url.password, "***")
        return ConnectorError(
            f"{action} on {self.url.masked}: {text}", transient=classify(error), **context
        )

    # -- reading -------------------------------------------------------------
    def read(
        self, source: str | TableRef, batch_rows: int = 100_000, params: Sequence[Any] = ()
    ) -> pa.RecordBatchReader:
        import pyarrow as pa

        duck = self._duckdb()
        if isinstance(source, TableRef):
            pg_types = self._column_types(source)
            layered = self._layered_arrays(f"SELECT * FROM {self._qualified(source)}")
            if layered:
                columns = self._columns(source) or []
                loose = [name for name, _, unconstrained in columns if unconstrained]
                everything = f"SELECT * FROM {self._qualified(source)}"
                enums = self._enum_labels(source)
                where = self._qualified(source)
                sql = self._query_scan(
                    everything, "pg", loose, enums, as_text=list(layered), where=where
                )
            elif self._bounded_numeric(pg_types) and not self._has_own_types(source):
                # a NaN in numeric(p,s) is refused by the query route; the catalog's reads 0
                everything = f"SELECT * FROM {self._qualified(source)}"
                enums = self._enum_labels(source)
                where = self._qualified(source)
                sql = self._query_scan(everything, "pg", enums=enums, where=where)
            else:
                sql = self._scan(source, "pg")
        else:
            query = self._inline(source, params)
            pg_types = self._layered_arrays(query)
            sql = self._query_scan(query, "pg", as_text=list(pg_types))
        cursor = duck.cursor()
        try:
            reader = cursor.execute(types.duckdb_arrow_exact(cursor, sql)).to_arrow_reader(
                batch_rows
            )
        except Exception as error:
            cursor.close()
            raise self._error(error, "read", table=str(source)[:200]) from error
        schema = types.with_sql_types(reader.schema, pg_types, self.dialect)

        def batches() -> Iterator[pa.RecordBatch]:
            # closing the cursor ends the scanner's PostgreSQL transaction as soon as
            # the stream is drained (or dropped), so it never sits idle in transaction
            try:
                for batch in reader:
                    yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)
            finally:
                cursor.close()

        return pa.RecordBatchReader.from_batches(schema, batches())

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with this database attached read-only as ``pg``."""
        with self._duck_lock:
            if self._duck is None:
                import duckdb

                from crane.connectors.extensions import load_extension, trusted_config

                duck = duckdb.connect(config=trusted_config({}))
                load_extension(duck, "postgres")
                escaped = self.dsn.replace("'", "''")
                duck.execute(f"ATTACH '{escaped}' AS pg (TYPE postgres, READ_ONLY)")
                self._duck = duck
            else:
                # tables created since the attach must be visible to this read
                self._duck.execute("SELECT * FROM pg_clear_cache()")
            return self._duck

    def _inline(self, sql: str, params: Sequence[Any]) -> str:
        """Bind parameters client-side: the scanner takes a query text, not parameters."""
        if not params:
            return sql
        from psycopg import ClientCursor

        try:  # the same escaping as `execute`: a quoted "share%" is no placeholder
            return ClientCursor(self.con).mogrify(_percent_escaped(sql), list(params))
        except Exception as error:
            raise self._error(error, "read", table=sql[:200]) from error

    def duckdb_scan(self, table: TableRef, alias: str) -> str:
        """A DuckDB SELECT reading ``table`` of the database attached as ``alias`` exactly."""
        return self._scan(table, alias)

    def duckdb_window_scan(self, query: str, table: TableRef, alias: str) -> str | None:
        """A DuckDB SELECT of ``query`` (a filtered read of ``table``, in PostgreSQL's
        SQL) run whole by the database attached as ``alias``, through ``postgres_query``:
        the scanner does not load the schema's catalog for it. An enum column is cast back
        to its ENUM; None when a column of ``table`` has another type of its own (a domain,
        a composite, an extension's type, an array of enums): only the attached catalog maps
        those exactly."""
        columns = self._columns(table)
        if columns is None or self._has_own_types(table):
            return None
        loose = [name for name, _, unconstrained in columns if unconstrained]
        enums = self._enum_labels(table)
        return self._query_scan(query, alias, loose, enums, where=self._qualified(table))

    def distinct_text_columns(self, table: TableRef) -> list[str]:
        """Text columns whose statistics (``pg_stats``, kept by ANALYZE and autovacuum)
        estimate at least MOSTLY_DISTINCT values: a DuckDB target can skip trying a
        dictionary on them. No statistics, no hint."""
        rows = self.con.execute(
            "SELECT s.attname FROM pg_stats s"
            " JOIN pg_class c ON c.oid = to_regclass(%s)"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = s.attname"
            " WHERE s.schemaname = %s AND s.tablename = %s"
            " AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)"
            " AND CASE WHEN s.n_distinct < 0 THEN -s.n_distinct * greatest(c.reltuples, 0)"
            " ELSE s.n_distinct END >= %s",
            [
                self._qualified(table),
                table.schema or self.default_schema,
                table.name,
                MOSTLY_DISTINCT,
            ],
        ).fetchall()
        return [row[0] for row in rows]

    @staticmethod
    def _bounded_numeric(pg_types: dict[str, str]) -> bool:
        return any(sql_type.startswith("numeric(") for sql_type in pg_types.values())

    def _refuse_sampled_nan(self, table: TableRef) -> None:
        """Fail, naming the column, when the table's statistics (``pg_stats``, kept by
        ANALYZE and autovacuum) saw a NaN in a ``numeric(p,s)`` column: the scanner reads a
        NaN into a decimal as 0, silently. Only a hint: a NaN the sample missed still loads
        as 0 through this route (see the module docstring)."""
        rows = self.con.execute(
            "SELECT s.attname FROM pg_stats s JOIN pg_attribute a"
            " ON a.attrelid = to_regclass(%s) AND a.attname = s.attname"
            " WHERE s.schemaname = %s AND s.tablename = %s"
            " AND a.atttypid = 'numeric'::regtype AND a.atttypmod <> -1"
            " AND (s.most_common_vals::text LIKE '%%NaN%%'"
            " OR s.histogram_bounds::text LIKE '%%NaN%%')",
            [self._qualified(table), table.schema or self.default_schema, table.name],
        ).fetchall()
        if rows:
            raise ConnectorError(
                f"column {rows[0][0]} of {self._qualified(table)} holds NaN, which no decimal"
                " holds (DuckDB's scanner would load it as 0)",
                table=str(table),
                column=rows[0][0],
                hint="read the table with a custom query: NULLIF(column, 'NaN'), or column::text",
            )

    def _has_own_types(self, table: TableRef) -> bool:
        """A column whose type (or element type) is not built in, other than a plain enum;
        or an array declared with several dimensions (``int[][]``): a query result does not
        carry them, and ``postgres_query`` then refused every 2-D value."""
        row = self.con.execute(
            "SELECT count(*) FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
            " LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'"
            " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
            " AND (a.attndims > 1 OR t.typtype <> 'e' AND (t.typnamespace <> "
            "'pg_catalog'::regnamespace OR e.typnamespace <> 'pg_catalog'::regnamespace))",
            [self._qualified(table)],
        ).fetchone()
        return bool(row and row[0])

    def _enum_labels(self, table: TableRef) -> dict[str, list[str]]:
        """Each enum column's labels, in the enum's order (``postgres_query`` reads an enum
        as text; the scan casts it back)."""
        rows = self.con.execute(
            "SELECT a.attname, array_agg(e.enumlabel ORDER BY e.enumsortorder)"
            " FROM pg_attribute a JOIN pg_enum e ON e.enumtypid = a.atttypid"
            " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
            " GROUP BY a.attname",
            [self._qualified(table)],
        ).fetchall()
        return {name: list(labels) for name, labels in rows}

    def _scan(self, table: TableRef, alias: str) -> str:
        from sqlglot import exp

        columns = self._columns(table)
        if columns is None:
            raise ConnectorError(f"table does not exist in {self.url.masked}", table=str(table))
        loose = [name for name, _, unconstrained in columns if unconstrained]
        if not loose:
            self._refuse_sampled_nan(table)
            full = exp.table_(
                exp.to_identifier(table.name, quoted=True),
                db=exp.to_identifier(table.schema or self.default_schema, quoted=True),
                catalog=exp.to_identifier(alias, quoted=True),
            )
            return exp.select("*").from_(full).sql("duckdb")
        source = exp.select("*").from_(table.expression())
        enums = self._enum_labels(table)
        where = self._qualified(table)
        return self._query_scan(source.sql("postgres"), alias, loose, enums, where=where)

    def _query_scan(
        self,
        sql: str,
        alias: str,
        loose: list[str] | None = None,
        enums: dict[str, list[str]] | None = None,
        as_text: list[str] | None = None,
        where: str = "the query",
    ) -> str:
        """``postgres_query`` over ``sql``, unconstrained numerics cast to an exact type,
        the ``as_text`` columns to their text, a NaN in a ``numeric(p,s)`` column (of
        ``where``) an error, and the ``enums`` columns cast back to their ENUM."""
        from sqlglot import exp

        described = self._describe(sql)
        if loose is None:
            loose = [d.name for d in described if self._is_loose(d)]
        bounded = {
            d.name: f"numeric({d.precision},{d.scale or 0})"
            for d in described
            if d.type_code == NUMERIC_OID and d.precision is not None
        }
        names = [d.name for d in described]
        if loose or as_text or bounded:
            sql = self._exact_numeric(sql, loose, names, as_text or [], bounded, where)
        call = exp.func("postgres_query", exp.Literal.string(alias), exp.Literal.string(sql))
        recast = [
            exp.cast(exp.column(name, quoted=True), _enum_type(labels)).as_(name, quoted=True)
            for name, labels in (enums or {}).items()
            if name in names
        ]
        star = exp.Star(**{"replace": recast}) if recast else exp.Star()
        return exp.select(star).from_(call).sql("duckdb")

    @staticmethod
    def _is_loose(column: Any) -> bool:
        return bool(column.type_code == NUMERIC_OID and column.precision is None)

    @staticmethod
    def _wrap(projections: str, sql: str) -> str:
        # a user's query is SQL text already: it is wrapped as text, not re-parsed,
        # so any PostgreSQL syntax sqlglot does not know still works
        return f"SELECT {projections} FROM ({sql}) AS _crane_q"

    def _describe(self, sql: str) -> list[Any]:
        return self._described(sql)[0]

    def _described(self, sql: str) -> tuple[list[Any], list[tuple[int, int]]]:
        """The result columns of ``sql``, and the (table oid, column number) each one
        reads, (0, 0) for a computed one."""
        try:
            cur = self.con.execute(self._wrap("*", sql) + " LIMIT 0")
        except Exception as error:
            raise self._error(error, "read", table=sql[:200]) from error
        result = cur.pgresult
        fields = range(result.nfields) if result is not None else range(0)
        origins = [(result.ftable(i), result.ftablecol(i)) for i in fields if result is not None]
        return list(cur.description or []), origins

    def _layered_arrays(self, sql: str) -> dict[str, str]:
        """Result columns of ``sql`` reading a table column declared with several array
        dimensions (``int[][]``), with its type. The scanner maps such a column to nested
        lists of fixed depth and failed the whole read on a value of another depth (or,
        through ``postgres_query``, which cannot see the declared depth, on every 2-D
        value); read as their text they arrive exact and a PostgreSQL target casts back."""
        described, origins = self._described(sql)
        tables = [table for table, _ in origins]
        if not any(tables):
            return {}
        rows = self.con.execute(
            "SELECT u.i::int, format_type(a.atttypid, a.atttypmod)"
            " FROM unnest(%s::oid[], %s::int[]) WITH ORDINALITY AS u(t, c, i)"
            " JOIN pg_attribute a ON a.attrelid = u.t AND a.attnum = u.c"
            " WHERE a.attndims > 1",
            [tables, [column for _, column in origins]],
        ).fetchall()
        return {described[i - 1].name: sql_type for i, sql_type in rows}

    def fraction_digits(self, sql: str) -> int | None:
        column = self._describe(sql)[0]  # precision: the typmod of timestamp(p), time(p)
        return column.precision if column.type_code in _TIME_OIDS else None

    def _exact_numeric(
        self,
        sql: str,
        loose: list[str],
        names: list[str],
        as_text: Sequence[str] = (),
        bounded: dict[str, str] | None = None,
        where: str = "the query",
    ) -> str:
        """Wrap ``sql`` so each column in ``loose`` is ``numeric(38, s)`` (or text if too wide),
        each in ``as_text`` is text and each ``bounded`` (``numeric(p,s)``) fails on NaN."""
        from sqlglot import exp

        exact = {**self._loose_types(sql, loose), **dict.fromkeys(as_text, "text")}
        projections: list[Any] = []
        for name in names:
            col: Any = exp.column(name, quoted=True)
            if name in exact:
                to_type = exp.DataType.build(exact[name], dialect="postgres")
                col = exp.cast(col, to_type).as_(name, quoted=True)
            elif name in (bounded or {}):
                col = _nan_refused(name, (bounded or {})[name], where).as_(name, quoted=True)
            projections.append(col)
        return self._wrap(", ".join(p.sql("postgres") for p in projections), sql)

    def _loose_types(self, sql: str, loose: list[str]) -> dict[str, str]:
        """The exact type each unconstrained numeric of ``sql`` is read as: the widest
        scale present in ``numeric(38, s)``, or text when 38 digits cannot hold it — or
        when it holds NaN or ±Infinity, which no decimal holds (their scale is NULL)."""
        from sqlglot import exp

        if not loose:
            return {}
        stats: list[Any] = []
        for name in loose:
            value = exp.column(name, quoted=True)
            width = exp.func("length", exp.cast(exp.func("trunc", exp.func("abs", value)), "text"))
            special = exp.and_(
                value.is_(exp.null()).not_(), exp.func("scale", value.copy()).is_(exp.null())
            )
            too_wide = exp.Literal.number(MAX_DECIMAL_DIGITS + 1)
            width = exp.Case().when(special, too_wide).else_(width)
            stats += [exp.func("max", exp.func("scale", value.copy())), exp.func("max", width)]
        aggregate = ", ".join(e.sql("postgres") for e in stats)
        row = self.con.execute(self._wrap(aggregate, sql)).fetchone() or ()
        exact: dict[str, str] = {}
        for i, name in enumerate(loose):
            scale, digits = int(row[2 * i] or 0), int(row[2 * i + 1] or 1)
            # at least LOOSE_SCALE decimals where the integer digits leave room: the type
            # must not follow each window's values, or a first load of whole numbers (or
            # of no rows) makes decimal(38,0) and the first 1.5 is a change no decimal holds
            scale = max(scale, min(LOOSE_SCALE, MAX_DECIMAL_DIGITS - digits))
            fits = scale + digits <= MAX_DECIMAL_DIGITS
            exact[name] = f"numeric({MAX_DECIMAL_DIGITS},{scale})" if fits else "text"
        return exact

    # -- metadata ------------------------------------------------------------
    def _columns(self, table: TableRef) -> list[tuple[str, str, bool]] | None:
        """(name, SQL type, is unconstrained numeric) per column, or None if no table."""
        rows = self.con.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
            " a.atttypid = 'numeric'::regtype AND a.atttypmod = -1"
            " FROM pg_attribute a WHERE a.attrelid = to_regclass(%s)"
            " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [self._qualified(table)],
        ).fetchall()
        return [(r[0], r[1], bool(r[2])) for r in rows] or None

    def _column_types(self, table: TableRef) -> dict[str, str]:
        return {name: sql_type for name, sql_type, _ in self._columns(table) or []}

    def _qualified(self, table: TableRef) -> str:
        return TableRef(table.name, table.schema or self.default_schema).sql("postgres")

    def table_schema(self, table: TableRef) -> pa.Schema | None:
        from sqlglot import exp

        columns = self._columns(table)
        if columns is None:
            return None
        # The scanner reads through a session of its own, which cannot see a table this
        # session created in a still-open transaction: describe typed NULLs instead,
        # mapped to Arrow by the same scanner that reads the rows.
        loose = [name for name, _, unconstrained in columns if unconstrained]
        exact = self._loose_types(f"SELECT * FROM {self._qualified(table)}", loose)
        nulls = ", ".join(
            exp.cast(exp.null(), _catalog_type(exact.get(name, sql_type)))
            .as_(name, quoted=True)
            .sql("postgres")
            for name, sql_type, _ in columns
        )
        query = exp.Literal.string(f"SELECT {nulls}")
        call = exp.func("postgres_query", exp.Literal.string("pg"), query)
        sql = exp.select("*").from_(call).limit(0).sql("duckdb")
        schema = self._duckdb().execute(sql).to_arrow_table().schema
        return types.with_sql_types(schema, self._column_types(table), self.dialect)

    # -- writing -------------------------------------------------------------
    def write(self, reader: pa.RecordBatchReader, table: TableRef, mode: WriteMode) -> int:
        import pyarrow as pa

        if self.is_read_only:
            raise ConnectorError(f"{self.url.masked} is open read-only", table=str(table))
        table = TableRef(table.name, table.schema or self.default_schema)
        # rows holding ±infinity in a timestamp or date cannot cross binary COPY: they are
        # set aside as text and inserted with casts in the same transaction
        reader, aside = infinite.split(_without_uint64(types.to_plain(reader)))
        if not self._depth:
            rows = self._direct_copy(reader, table, mode, aside)
            if rows is not None:
                return rows
        stage = TableRef(f"_crane_stage_{uuid.uuid4().hex[:12]}", table.schema)
        stages = [stage]
        self._ingest(reader, stage)
        if aside:
            stages.append(TableRef(f"{stage.name}_inf", table.schema))
            text = infinite.text_schema(reader.schema)
            self._ingest(pa.RecordBatchReader.from_batches(text, aside), stages[1])
        try:
            with self.transaction():
                rows = self._publish(stage, table, mode, reader.schema)
                if aside:
                    rows += self._publish(stages[1], table, "append", text)
                for staged in stages:
                    self.execute(_drop(staged))
        except ConnectorError:
            self._orphans.extend(stages)
            self._drop_orphans()
            raise
        except Exception as error:
            self._orphans.extend(stages)
            self._drop_orphans()
            raise self._error(error, "write", table=str(table)) from error
        return rows

    def _direct_copy(
        self,
        reader: pa.RecordBatchReader,
        table: TableRef,
        mode: WriteMode,
        aside: list[pa.RecordBatch],
    ) -> int | None:
        """With no caller transaction, DDL and COPY run as one ADBC transaction — when the
        target's column types take ADBC's binary wire types without a cast (else None:
        the staged path casts)."""
        import pyarrow as pa

        existing = self._column_types(table)
        if existing and mode == "create":
            raise ConnectorError("table already exists", table=str(table))
        fresh = not existing or mode == "replace"
        wanted = self._target_types(reader.schema) if fresh else existing
        if any(f.name not in wanted for f in reader.schema):
            return None  # the staged path reports the unknown columns
        oids = dict(zip(wanted, self._type_oids(list(wanted.values())), strict=True))
        empty = pa.RecordBatchReader.from_batches(reader.schema, [])
        with self._adbc() as cur:
            if not all(_takes(oids[n], w) for n, w in self._wire_oids(cur, empty).items()):
                return None
            if fresh:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(table.schema or 'public')}")
                cur.execute(_drop(table).sql("postgres"))
                cur.execute(_create_sql(table, wanted).sql("postgres"))
            rows = int(cur.adbc_ingest(table.name, reader, "append", db_schema_name=table.schema))
            if aside:  # filled as the stream was read: same ADBC transaction
                rows += self._insert_aside(cur, table, wanted, aside)
            return rows

    def _insert_aside(
        self, cur: Any, table: TableRef, wanted: dict[str, str], aside: list[pa.RecordBatch]
    ) -> int:
        """Insert the rows `infinite.split` set aside (their temporal columns as text) with
        casts to the target's types, through a temp table of the ADBC transaction."""
        import pyarrow as pa

        name = f"_crane_inf_{uuid.uuid4().hex[:12]}"
        held = pa.RecordBatchReader.from_batches(aside[0].schema, aside)
        cur.adbc_ingest(name, held, mode="create", temporary=True)
        temp = TableRef(name, "pg_temp")
        cur.execute(_insert_cast(temp, table, aside[0].schema, wanted).sql("postgres"))
        cur.execute(_drop(temp).sql("postgres"))
        return sum(batch.num_rows for batch in aside)

    def _type_oids(self, sql_types: list[str]) -> list[int]:
        row = self.execute(
            "SELECT array_agg(to_regtype(t)::oid::int ORDER BY i)"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, i)",
            [sql_types],
        )
        return list(row[0][0])

    @staticmethod
    def _wire_oids(cur: Any, empty: pa.RecordBatchReader) -> dict[str, int]:
        """The column types ADBC creates for this Arrow schema (in a throwaway temp table)."""
        name = f"_crane_wire_{uuid.uuid4().hex[:12]}"
        cur.adbc_ingest(name, empty, mode="create", temporary=True)
        cur.execute(
            "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = "
            f"'pg_temp.{name}'::regclass AND attnum > 0 ORDER BY attnum"
        )
        found = {str(n): int(t) for n, t in cur.fetchall()}
        cur.execute(f"DROP TABLE pg_temp.{name}")
        return found

    @contextmanager
    def _adbc(self) -> Iterator[Any]:
        """A pooled ADBC cursor inside one ADBC transaction: commit on success."""
        import adbc_driver_postgresql.dbapi as adbc

        key = ("adbc", self.url.raw)
        con = _ingesters.acquire(key, lambda: adbc.connect(self.dsn))
        healthy = False
        try:
            with con.cursor() as cur:
                yield cur
            con.commit()
            healthy = True
        except Exception as error:
            con.rollback()
            healthy = True
            if isinstance(error, ConnectorError):
                raise
            raise self._error(error, "bulk copy") from error
        finally:
            _ingesters.release(key, con, healthy=healthy)

    def _ingest(self, reader: pa.RecordBatchReader, stage: TableRef) -> None:
        """Binary COPY of the stream into a fresh UNLOGGED staging table (own connection)."""
        import pyarrow as pa

        with self._adbc() as cur:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(stage.schema or 'public')}")
            # create empty (ADBC picks the wire-compatible types), then skip the WAL
            empty = pa.RecordBatchReader.from_batches(reader.schema, [])
            cur.adbc_ingest(stage.name, empty, mode="create", db_schema_name=stage.schema)
            cur.execute(f"ALTER TABLE {stage.sql('postgres')} SET UNLOGGED")
            cur.adbc_ingest(stage.name, reader, mode="append", db_schema_name=stage.schema)

    def _publish(self, stage: TableRef, table: TableRef, mode: WriteMode, schema: pa.Schema) -> int:

        existing = self._column_types(table)
        if existing and mode == "create":
            raise ConnectorError("table already exists", table=str(table))
        if existing and mode == "replace":
            self.execute(_drop(table))
            existing = {}
        if not existing:
            self._create(table, schema)
            existing = self._column_types(table)
        unknown = [f.name for f in schema if f.name not in existing]
        if unknown:
            raise ConnectorError(
                f"columns {unknown} are not in the target", table=str(table), column=unknown[0]
            )
        insert = _insert_cast(stage, table, schema, existing)
        with self.con.cursor() as cur:
            cur.execute(insert.sql("postgres"))
            return cur.rowcount

    def _create(self, table: TableRef, schema: pa.Schema) -> None:
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(table.schema or 'public')}")
        self.execute(_create_sql(table, self._target_types(schema)))

    def _target_types(self, schema: pa.Schema) -> dict[str, str]:
        """Column types a new table gets: the source's own type when it exists here."""
        wanted = {}
        for field in schema:
            sql_type = types.field_sql_type(field, self.dialect)
            if not self._type_exists(sql_type):  # e.g. an enum of the source database
                sql_type = types.sql_type(field.type, self.dialect)
            wanted[field.name] = sql_type
        return wanted

    def _type_exists(self, sql_type: str) -> bool:
        return bool(self.execute("SELECT to_regtype(%s) IS NOT NULL", [sql_type])[0][0])

    def _drop_orphans(self) -> None:
        """Drop staging tables of failed writes once no transaction holds them."""
        if self._depth or not self._orphans:
            return
        orphans, self._orphans = self._orphans, []
        for stage in orphans:
            with contextlib.suppress(Exception):  # broken session: found later by name
                self.con.execute(_drop(stage).sql("postgres"))

    # -- statements ----------------------------------------------------------
    def execute(self, sql: str | exp.Expression, params: Sequence[Any] = ()) -> list[tuple]:
        text = _percent_escaped(self.render(sql)) if params else self.render(sql)
        try:
            cur = self.con.execute(text, list(params) if params else None)
            return cur.fetchall() if cur.description else []
        except Exception as error:
            raise self._error(error, "execute") from error

    def execute_count(self, sql: str | exp.Expression, params: Sequence[Any] = ()) -> int:
        text = _percent_escaped(self.render(sql)) if params else self.render(sql)
        try:  # psycopg: the count from the server's command tag
            return int(self.con.execute(text, list(params) if params else None).rowcount)
        except Exception as error:
            raise self._error(error, "execute") from error

    def _commit(self) -> None:
        self.execute("COMMIT")
        self._drop_orphans()

    def _rollback(self) -> None:
        self._quiet_rollback()
        self._drop_orphans()

    def _quiet_rollback(self) -> None:
        with contextlib.suppress(Exception):  # connection gone: the server rolled back for us
            self.con.execute("ROLLBACK")

    def duckdb_attach(self) -> tuple[str, str] | None:
        return ("postgres", self.dsn)

    def close(self) -> None:
        if self._duck is not None:
            self._duck.close()
            self._duck = None
        con = self.__dict__.pop("con", None)
        if con is None:
            return
        from psycopg.pq import TransactionStatus

        if not con.closed and con.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(Exception):  # broken: the pool closes it below
                con.execute("ROLLBACK")
        healthy = not con.closed and con.info.transaction_status == TransactionStatus.IDLE
        _sessions.release(self._key, con, healthy=healthy)


def _without_uint64(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """uint64 columns as exact ``decimal(20, 0)``: ADBC's COPY sends a uint64 as int8, so
    18446744073709551615 (MySQL's ``bigint unsigned`` max) arrived as -1."""
    import pyarrow as pa

    if not any(pa.types.is_uint64(f.type) for f in reader.schema):
        return reader
    exact = pa.decimal128(20, 0)
    schema = pa.schema(
        [f.with_type(exact) if pa.types.is_uint64(f.type) else f for f in reader.schema],
        metadata=reader.schema.metadata,
    )

    def convert(batch: pa.RecordBatch) -> pa.RecordBatch:
        columns = [c.cast(f.type) for c, f in zip(batch.columns, schema, strict=True)]
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    return types.map_batches(reader, schema, convert)


def _ident(name: str) -> str:
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True).sql("postgres")


def _type(sql_type: str) -> exp.DataType:
    from sqlglot import exp

    return exp.DataType.build(sql_type, dialect="postgres", udt=True)


def _insert_cast(
    source: TableRef, table: TableRef, schema: pa.Schema, target_types: dict[str, str]
) -> exp.Insert:
    """``INSERT INTO table (columns) SELECT <each cast to the target's type> FROM source``."""
    from sqlglot import exp

    columns = [exp.to_identifier(f.name, quoted=True) for f in schema]
    casts = [exp.cast(exp.column(f.name, quoted=True), _type(target_types[f.name])) for f in schema]
    return exp.Insert(
        this=exp.Schema(this=table.expression(), expressions=columns),
        expression=exp.select(*casts).from_(source.expression()),
    )


def _nan_refused(name: str, sql_type: str, where: str) -> exp.Expr:
    """``name`` (a ``numeric(p,s)`` column), or an error naming it and ``where`` on a NaN:
    DuckDB's scanner reads a NaN into a decimal as 0, silently. The error is a failed cast
    of a text that holds the value, so PostgreSQL cannot fold it at plan time; the outer
    cast keeps the column's precision and scale (the scanner maps them to its DECIMAL)."""
    from sqlglot import exp

    value = exp.column(name, quoted=True)
    message = exp.DPipe(
        this=exp.Literal.string(
            f"crane: column {name} of {where} holds NaN, which no decimal holds"
            " (it would load as 0); read it with a custom query (NULLIF(column, 'NaN') or"
            " column::text) instead:"
        ),
        expression=exp.cast(value.copy(), "text"),
    )
    is_nan = exp.EQ(this=value.copy(), expression=exp.cast(exp.Literal.string("NaN"), "numeric"))
    guarded = exp.Case().when(is_nan, exp.cast(message, "int")).else_(value.copy())
    return exp.cast(guarded, exp.DataType.build(sql_type, dialect="postgres"))


def _drop(table: TableRef) -> exp.Drop:
    from sqlglot import exp

    return exp.Drop(tables=[table.expression()], kind="TABLE", exists=True)


# binary COPY sends ADBC's wire type; the target column may be that type or one that
# reads the same bytes (text on the wire into varchar(n) / char(n))
_SAME_WIRE = {25: frozenset({25, 1043, 1042})}


def _takes(target_oid: int, wire_oid: int) -> bool:
    return target_oid == wire_oid or target_oid in _SAME_WIRE.get(wire_oid, ())


def _create_sql(table: TableRef, columns: dict[str, str]) -> exp.Create:
    from sqlglot import exp

    defs = [
        exp.ColumnDef(this=exp.to_identifier(name, quoted=True), kind=_type(sql_type))
        for name, sql_type in columns.items()
    ]
    return exp.Create(this=exp.Schema(this=table.expression(), expressions=defs), kind="TABLE")


def _catalog_type(text: str) -> exp.DataType:
    """A type as ``format_type`` spells it (built-in, array, enum or other user type)."""
    from sqlglot import exp

    try:
        return exp.DataType.build(text, dialect="postgres")
    except Exception:  # a user-defined type sqlglot does not know: keep its catalog name
        return exp.DataType.build(text, dialect="postgres", udt=True)


def _enum_type(labels: list[str]) -> exp.DataType:
    from sqlglot import exp

    return exp.DataType(
        this=exp.DataType.Type.ENUM, expressions=[exp.Literal.string(v) for v in labels]
    )


_PERCENT_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|%s|%")


def _percent_escaped(sql: str) -> str:
    """``sql`` as psycopg must see it with parameters: every ``%`` doubled except the
    ``%s`` placeholders outside quotes, since a quoted name or literal (``"share%"``) or a
    modulo may hold one too."""

    def escape(match: re.Match[str]) -> str:
        token = match.group()
        return token if token == "%s" else token.replace("%", "%%")

    return _PERCENT_TOKENS.sub(escape, sql)
