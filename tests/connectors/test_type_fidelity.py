"""Every common type round-trips exactly: PG→DuckDB, MariaDB→DuckDB, PG→PG (Arrow path).

Expected values are written out as Python literals — they are what the source
holds — and compared as Python values after the move. Arrow is used to fetch
from DuckDB because it is exact for intervals (months/days/nanoseconds), where
Python's ``timedelta`` folds a month into 30 days.

Two source behaviours are not losses and are asserted as such:
* ``char(n)`` padding: PostgreSQL treats trailing blanks of ``char(n)`` as
  insignificant (``'ab'::char(5)::text = 'ab'``); DuckDB stores ``'ab'``.
* ``jsonb`` is normalised by PostgreSQL on input; its *parsed* value is compared.

One limit: an *unconstrained* ``numeric`` column keeps a display scale per value
(``1.10`` and ``1.1`` are equal but print differently). Arrow decimals have one
scale per column, so values arrive exact but trailing zeros of such a column are
not kept; ``numeric(p,s)`` columns keep their scale (``0.10`` stays ``0.10``).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pyarrow as pa
import pytest

from crane.connectors import TableRef, connect

pytestmark = pytest.mark.integration

PG = "postgresql://postgres@127.0.0.1:5432/test"
UTC = dt.UTC
U1 = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"

PG_DDL = """
CREATE TYPE {s}.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE {s}.src (
  id int, i2 smallint, i4 int, i8 bigint, n numeric(12,2), nu numeric,
  tx text, vc varchar(20), ch char(5), b boolean, d date, tm time, ts timestamp,
  tstz timestamptz, iv interval, u uuid, j json, jb jsonb, by bytea,
  ai int[], at text[], e {s}.mood);
INSERT INTO {s}.src VALUES
 (1, -32768, 2147483647, 9223372036854775807, 12345678.91,
  1.123456789012345678901234567890, 'héllo', 'v', 'ab', true, '2024-02-29',
  '12:34:56.789', '2024-01-01 10:00:00.123456', '2024-01-01 10:00:00+02',
  '1 year 2 mons 3 days 04:05:06.5', '{u}', '{{"a": [1, 2]}}', '{{"b": 1, "a": null}}',
  '\\xdeadbeef00', '{{1,NULL,3}}', '{{"x","y z",NULL,"q\\"uote","c,omma"}}', 'happy'),
 (2, 0, 0, -1, 0.10, -0.000000000000000000001, '', '', '', false, '0001-01-01',
  '00:00', '1970-01-01 00:00', '1999-12-31 23:59:59.999999-08', '-1 mons', '{u}',
  '[]', '{{}}', '\\x', '{{}}', '{{}}', 'sad'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"""

PG_EXPECTED = [
    {
        "id": 1, "i2": -32768, "i4": 2147483647, "i8": 9223372036854775807,
        "n": Decimal("12345678.91"), "nu": Decimal("1.123456789012345678901234567890"),
        "tx": "héllo", "vc": "v", "ch": "ab", "b": True, "d": dt.date(2024, 2, 29),
        "tm": dt.time(12, 34, 56, 789000), "ts": dt.datetime(2024, 1, 1, 10, 0, 0, 123456),
        "tstz": dt.datetime(2024, 1, 1, 8, 0, tzinfo=UTC),
        "iv": pa.MonthDayNano([14, 3, (4 * 3600 + 5 * 60 + 6) * 10**9 + 500_000_000]),
        "u": U1, "j": '{"a": [1, 2]}', "jb": {"a": None, "b": 1},
        "by": b"\xde\xad\xbe\xef\x00", "ai": [1, None, 3],
        "at": ["x", "y z", None, 'q"uote', "c,omma"], "e": "happy",
    },
    {
        "id": 2, "i2": 0, "i4": 0, "i8": -1, "n": Decimal("0.10"),
        "nu": Decimal("-0.000000000000000000001"), "tx": "", "vc": "", "ch": "", "b": False,
        "d": dt.date(1, 1, 1), "tm": dt.time(0, 0), "ts": dt.datetime(1970, 1, 1),
        "tstz": dt.datetime(2000, 1, 1, 7, 59, 59, 999999, tzinfo=UTC),
        "iv": pa.MonthDayNano([-1, 0, 0]), "u": U1, "j": "[]", "jb": {}, "by": b"",
        "ai": [], "at": [], "e": "sad",
    },
    {},  # row 3, every column NULL: filled in by _with_null_row
]  # fmt: skip


def _with_null_row(rows: list[dict]) -> list[dict]:
    """The rows plus row 3: every column NULL."""
    return [*rows[:-1], {k: (3 if k == "id" else None) for k in rows[0]}]


PG_EXPECTED = _with_null_row(PG_EXPECTED)  # noqa: F811


def _normalise(rows: list[dict]) -> list[dict]:
    """Compare UUIDs as text and jsonb as parsed JSON (see module docstring)."""
    out = []
    for row in rows:
        row = dict(row)
        if isinstance(row.get("u"), uuid.UUID):
            row["u"] = str(row["u"])
        if isinstance(row.get("jb"), str):
            row["jb"] = json.loads(row["jb"])
        if isinstance(row.get("tstz"), dt.datetime):
            row["tstz"] = row["tstz"].astimezone(UTC)
        out.append(row)
    return out


@pytest.fixture
def pg_source(pg_schema):
    with connect(PG) as con:
        for statement in PG_DDL.format(s=f'"{pg_schema}"', u=U1).split(";\n"):
            if statement.strip():
                con.execute(statement)
    return TableRef("src", pg_schema)


def _assert_exact(rows: list[dict], expected: list[dict]) -> None:
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        for column, value in want.items():
            assert got[column] == value, f"column {column}: {got[column]!r} != {value!r}"
            if isinstance(value, Decimal):
                assert isinstance(got[column], Decimal) and got[column].as_tuple().exponent <= (
                    value.as_tuple().exponent
                ), column
            if isinstance(value, dt.datetime):
                assert (got[column].tzinfo is None) == (value.tzinfo is None), column


def test_postgres_to_duckdb_via_attach(pg_source, duck_url):
    with connect(PG) as pg, connect(duck_url) as duck:
        alias = duck.attach(pg, "src")
        # the scanner alone reads unconstrained numeric as DOUBLE; duckdb_scan fixes it
        plain = duck.execute(f'SELECT typeof(nu) FROM src."{pg_source.schema}".src LIMIT 1')
        assert plain == [("DOUBLE",)]
        duck.execute(f"CREATE TABLE t AS {pg.duckdb_scan(pg_source, alias)}")
        # the attached database's tables are in duckdb_columns() too: other tests' "t"
        types = dict(duck.execute("SELECT column_name, data_type FROM duckdb_columns() "
                                  "WHERE table_name = 't' AND database_name = "
                                  "current_database()"))  # fmt: skip
        assert types["n"] == "DECIMAL(12,2)" and types["nu"] == "DECIMAL(38,30)"
        assert types["ts"] == "TIMESTAMP" and types["tstz"] == "TIMESTAMP WITH TIME ZONE"
        assert types["u"] == "UUID" and types["iv"] == "INTERVAL"
        assert types["e"] == "ENUM('sad', 'ok', 'happy')"  # read as text, cast back
        rows = duck.arrow("SELECT * FROM t ORDER BY id").to_pylist()
        _assert_exact(_normalise(rows), PG_EXPECTED)


def test_postgres_to_postgres_via_arrow(pg_source):
    schema = pg_source.schema
    with connect(PG) as pg:
        # created by write() from the Arrow stream (source types travel as field metadata)
        assert pg.write(pg.read(pg_source, batch_rows=2), TableRef("made", schema), "create") == 3
        # appended into an existing table of the same DDL
        pg.execute(f'CREATE TABLE "{schema}".copy (LIKE "{schema}".src)')
        assert pg.write(pg.read(pg_source), TableRef("copy", schema), "append") == 3
        ddl = (
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 ORDER BY attnum"
        )
        source_ddl = pg.execute(ddl, [f'"{schema}".src'])
        source_rows = pg.execute(f'SELECT * FROM "{schema}".src ORDER BY id')
        for name in ("made", "copy"):
            assert pg.execute(ddl, [f'"{schema}".{name}']) == source_ddl
            # psycopg values of both tables: Decimal, UUID, dict, timedelta, lists …
            assert pg.execute(f'SELECT * FROM "{schema}".{name} ORDER BY id') == source_rows
            exact = pg.execute(
                f'SELECT count(*) FROM "{schema}".src s JOIN "{schema}".{name} c USING (id) '
                "WHERE s.iv::text IS NOT DISTINCT FROM c.iv::text "
                "AND s.nu IS NOT DISTINCT FROM c.nu AND s.n::text IS NOT DISTINCT FROM c.n::text"
            )
            assert exact == [(3,)]  # interval months and numeric scale exactly kept


MY_DDL = """
CREATE TABLE src (
  id int, i1 tinyint, i2 smallint, i3 mediumint, i8 bigint, u8 bigint unsigned,
  n decimal(12,2), nw decimal(30,15), vc varchar(20), ch char(5), tx text, d date,
  tm time(6), dt datetime(6), ts timestamp(6) NULL, j json, bl blob,
  e enum('sad','ok','happy'), st set('a','b','c'), b1 bit(1), bo boolean, f double, yr year)
"""
MY_ROWS = """
INSERT INTO src VALUES
 (1, -128, 2, 3, 9223372036854775807, 18446744073709551615, 12345678.91,
  123456789012345.123456789012345, 'héllo', 'c', 'long text', '2024-02-29',
  '12:34:56.789', '2024-01-01 10:00:00.123456', '2024-01-01 10:00:00.5',
  '{"a": [1, 2]}', x'deadbeef00', 'happy', 'a,c', b'1', true, 1.5, 2024),
 (2, 0, 0, 0, -1, 0, 0.10, -0.000000000000001, '', '', '', '1000-01-01',
  '00:00:00', '1970-01-01 00:00:00', '2038-01-19 03:14:07.999999', '[]', x'', 'sad', '',
  b'0', false, -0.0, 1901),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
"""
MY_EXPECTED = [
    {
        "id": 1, "i1": -128, "i2": 2, "i3": 3, "i8": 9223372036854775807,
        "u8": 18446744073709551615, "n": Decimal("12345678.91"),
        "nw": Decimal("123456789012345.123456789012345"), "vc": "héllo", "ch": "c",
        "tx": "long text", "d": dt.date(2024, 2, 29), "tm": dt.time(12, 34, 56, 789000),
        "dt": dt.datetime(2024, 1, 1, 10, 0, 0, 123456),
        "ts": dt.datetime(2024, 1, 1, 10, 0, 0, 500000),  # TIMESTAMP: naive UTC
        "j": '{"a": [1, 2]}', "bl": b"\xde\xad\xbe\xef\x00", "e": "happy", "st": "a,c",
        "b1": True, "bo": True, "f": 1.5, "yr": 2024,
    },
    {
        "id": 2, "i1": 0, "i2": 0, "i3": 0, "i8": -1, "u8": 0, "n": Decimal("0.10"),
        "nw": Decimal("-0.000000000000001"), "vc": "", "ch": "", "tx": "",
        "d": dt.date(1000, 1, 1), "tm": dt.time(0, 0), "dt": dt.datetime(1970, 1, 1),
        "ts": dt.datetime(2038, 1, 19, 3, 14, 7, 999999), "j": "[]", "bl": b"", "e": "sad",
        "st": "", "b1": False, "bo": False, "f": 0.0, "yr": 1901,
    },
    {},  # row 3, every column NULL: filled in by _with_null_row
]  # fmt: skip


MY_EXPECTED = _with_null_row(MY_EXPECTED)


@pytest.fixture
def my_source(my_db):
    url = f"mysql://root@127.0.0.1:3306/{my_db}"
    with connect(url) as con:
        con.execute(MY_DDL)
        con.execute(MY_ROWS)
    return url


def test_mariadb_to_duckdb_via_attach(my_source, duck_url):
    with connect(my_source) as my, connect(duck_url) as duck:
        alias = duck.attach(my, "src")
        duck.execute(f"CREATE TABLE t AS {my.duckdb_scan(TableRef('src'), alias)}")
        # the attached database's tables are in duckdb_columns() too: other tests' "t"
        types = dict(duck.execute("SELECT column_name, data_type FROM duckdb_columns() "
                                  "WHERE table_name = 't' AND database_name = "
                                  "current_database()"))  # fmt: skip
        assert types["nw"] == "DECIMAL(30,15)" and types["tm"] == "TIME"
        assert types["b1"] == "BOOLEAN" and types["u8"] == "UBIGINT"
        rows = duck.arrow("SELECT * FROM t ORDER BY id").to_pylist()
        _assert_exact(rows, MY_EXPECTED)
        # the same values through the Arrow read path (connectorx + exact decimals)
        _assert_exact(my.read(TableRef("src"), batch_rows=2).read_all().to_pylist(), MY_EXPECTED)


def test_unconstrained_numeric_with_nan_or_infinity_is_read_as_exact_text(pg_schema, duck_url):
    """NaN and ±Infinity fit no decimal: such a column arrives as text, every value exact,
    instead of the cast to ``numeric(38, s)`` failing the whole read."""
    table = TableRef("special", pg_schema)
    with connect(PG) as pg, connect(duck_url) as duck:
        pg.execute(f'CREATE TABLE "{pg_schema}".special (id int, nu numeric, fine numeric)')
        pg.execute(
            f"INSERT INTO \"{pg_schema}\".special VALUES (1, 'NaN', 1.5), (2, 'Infinity', NULL),"
            " (3, '-Infinity', 2), (4, 1e-30, 3), (5, NULL, 4)"
        )
        expected = ["NaN", "Infinity", "-Infinity", "0." + "0" * 29 + "1", None]
        read = pg.read(table).read_all()
        assert read.column("nu").to_pylist() == expected
        assert pa.types.is_decimal(read.schema.field("fine").type)
        alias = duck.attach(pg, "src")
        duck.execute(f"CREATE TABLE t AS {pg.duckdb_scan(table, alias)}")
        assert [r[0] for r in duck.execute("SELECT nu FROM t ORDER BY id")] == expected
        schema = pg.table_schema(table)
        assert schema is not None and pa.types.is_string(schema.field("nu").type)
