"""PostgreSQL connector on the real server: streams, writes, transactions, errors."""

from __future__ import annotations

import decimal

import pyarrow as pa
import pytest

from crane.connectors import TableRef, connect
from crane.connectors.postgres import PostgresConnector, classify
from crane.errors import ConnectorError

DEC = pa.decimal128(12, 2)
PG = "postgresql://postgres@127.0.0.1:5432/test"
pytestmark = pytest.mark.integration


def _table(n: int = 5) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "amount": pa.array([decimal.Decimal(f"{i}.10") for i in range(n)], DEC),
            "name": [f"n{i}" if i % 2 else None for i in range(n)],
        }
    )


def test_write_modes_and_bounded_read(pg_schema):
    ref = TableRef("t", pg_schema)
    with connect(PG) as con:
        assert con.write(_table().to_reader(), ref, "create") == 5
        assert con.write(_table().to_reader(), ref, "append") == 5
        assert con.execute(f'select count(*) from "{pg_schema}".t') == [(10,)]
        with pytest.raises(ConnectorError, match="already exists"):
            con.write(_table().to_reader(), ref, "create")
        assert con.write(_table(3).to_reader(), ref, "replace") == 3
        batches = list(con.read(ref, batch_rows=2))
        assert [b.num_rows for b in batches] == [2, 1]
        back = pa.Table.from_batches(batches)
        assert back.schema.field("amount").type == pa.decimal128(12, 2)
        assert back.to_pylist() == _table(3).to_pylist()
        # no staging table is left behind
        assert con.execute(
            "select count(*) from pg_tables where schemaname = %s and tablename like %s",
            [pg_schema, "_crane_stage_%"],
        ) == [(0,)]


def test_query_read_with_params_and_table_schema(pg_schema):
    ref = TableRef("t", pg_schema)
    with connect(PG) as con:
        con.write(_table().to_reader(), ref, "create")
        rows = con.read(f'select id, name from "{pg_schema}".t where id > %s', params=[2])
        assert rows.read_all().to_pylist() == [{"id": 3, "name": "n3"}, {"id": 4, "name": None}]
        schema = con.table_schema(ref)
        assert schema is not None and schema.names == ["id", "amount", "name"]
        assert con.table_schema(TableRef("missing", pg_schema)) is None


def test_write_inside_transaction_rolls_back_with_it(pg_schema):
    """Exactly-once: a load and its state write commit (or vanish) together."""
    ref = TableRef("t", pg_schema)
    with connect(PG) as con:
        con.write(_table().to_reader(), ref, "create")
        con.execute(f'create table "{pg_schema}".state (w int)')
        with pytest.raises(RuntimeError), con.transaction():
            assert con.write(_table().to_reader(), ref, "append") == 5
            with con.transaction():  # nested joins the outer one
                con.execute(f'insert into "{pg_schema}".state values (1)')
            raise RuntimeError("crash before commit")
        assert con.execute(f'select count(*) from "{pg_schema}".t') == [(5,)]
        assert con.execute(f'select count(*) from "{pg_schema}".state') == [(0,)]
        with con.transaction():  # transactional DDL
            con.execute(f'create table "{pg_schema}".ddl (x int)')
            con.execute(f'insert into "{pg_schema}".state values (2)')
        assert con.execute(f'select w from "{pg_schema}".state') == [(2,)]


def test_read_only_is_enforced_by_the_server(pg_schema):
    with connect(PG) as con:
        con.execute(f'create table "{pg_schema}".t (x int)')
    with connect(PG, read_only=True) as ro:
        with pytest.raises(ConnectorError, match="read-only") as info:
            ro.execute(f'insert into "{pg_schema}".t values (1)')
        assert info.value.transient is False
        with pytest.raises(ConnectorError):
            ro.write(_table().to_reader(), TableRef("t2", pg_schema), "create")
        assert ro.execute(f'select count(*) from "{pg_schema}".t') == [(0,)]


def test_errors_are_classified_and_masked(pg_schema):
    url = "postgresql://postgres:s3cret-pw@127.0.0.1:5432/test"
    with connect(url) as con:
        with pytest.raises(ConnectorError) as info:
            con.execute(f'select * from "{pg_schema}".nope')
        assert info.value.transient is False
        assert "s3cret-pw" not in str(info.value) and "***" in str(info.value)
        con.execute("select 1")  # the session survives a failed statement
    with pytest.raises(ConnectorError) as refused:
        connect("postgresql://postgres@127.0.0.1:1/test")
    assert refused.value.transient is True


class _Err(Exception):
    def __init__(self, sqlstate: str | None, text: str = "") -> None:
        super().__init__(text)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_Err("40001"), True),  # serialization failure
        (_Err("40P01"), True),  # deadlock
        (_Err("55P03"), True),  # lock not available
        (_Err("57P01"), True),  # admin shutdown
        (_Err("08006"), True),  # connection failure
        (_Err("42P01"), False),  # undefined table
        (_Err("28P01"), False),  # bad password
        (_Err("22P02"), False),  # invalid text representation
        (_Err(None, "password authentication failed for user"), False),
        (ConnectionResetError(), True),
    ],
)
def test_classify(error, transient):
    assert classify(error) is transient


def test_sessions_are_pooled():
    first = connect(PG)
    raw = first.con
    first.close()
    second = connect(PG)
    try:
        assert second.con is raw
        assert isinstance(second, PostgresConnector)
        assert second.duckdb_attach() == ("postgres", second.dsn)
        assert second.capabilities.merge and second.capabilities.transactional_ddl
    finally:
        second.close()


def test_a_dead_pooled_session_is_replaced():
    import psycopg

    first = connect(PG)
    pid = first.execute("select pg_backend_pid()")[0][0]
    first.close()  # back to the pool
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as admin:
        admin.execute("select pg_terminate_backend(%s)", [pid])
    with connect(PG) as second:
        assert second.execute("select pg_backend_pid()")[0][0] != pid


def test_a_failing_stream_leaves_the_old_table(pg_schema):
    """replace = DROP + CREATE + COPY in one transaction: a crash mid-stream changes nothing."""
    ref = TableRef("t", pg_schema)

    def broken():
        yield _table(2).to_batches()[0]
        raise OSError("source connection lost")

    with connect(PG) as con:
        con.write(_table().to_reader(), ref, "create")
        for in_transaction in (False, True):  # direct COPY, then the staged path
            reader = pa.RecordBatchReader.from_batches(_table().schema, broken())
            with pytest.raises(ConnectorError):
                if in_transaction:
                    with con.transaction():
                        con.write(reader, ref, "replace")
                else:
                    con.write(reader, ref, "replace")
            assert con.execute(f'select count(*) from "{pg_schema}".t') == [(5,)]


def test_parameters_beside_percent_signs_in_names_literals_and_modulo(pg_schema):
    """psycopg reads every ``%`` of a statement that has parameters: crane's statements
    escape all but their ``%s`` placeholders, so a name like ``"share%"`` still works."""
    table = f'"{pg_schema}"."t%s"'
    with connect(PG) as pg:
        pg.execute(f'CREATE TABLE {table} ("share%" int, "a%s" text)')
        assert pg.execute_count(f"INSERT INTO {table} VALUES (%s, %s), (9, '5%')", [7, "x"]) == 2
        rows = pg.execute(
            f'SELECT "share%" % 4, "a%s", %s FROM {table} WHERE "a%s" <> %s ORDER BY 1',
            ["p", "never"],
        )
        assert rows == [(1, "5%", "p"), (3, "x", "p")]
        assert pg.execute(f"SELECT count(*) FROM {table} WHERE \"a%s\" LIKE '5%'") == [(1,)]


def test_read_with_parameters_beside_percent_signs(pg_schema):
    """A query read with parameters binds them client-side: a ``%`` in a quoted name, a
    literal or a modulo beside them is text, not a placeholder."""
    table = f'"{pg_schema}"."r%s"'
    with connect(PG) as pg:
        pg.execute(f'CREATE TABLE {table} ("share%" int, "a%s" text)')
        pg.execute(f"INSERT INTO {table} VALUES (7, 'x'), (9, '5%'), (4, 'y')")
        query = (
            f'SELECT "share%" % 4 AS m, "a%s", %s AS p FROM {table}'
            ' WHERE "a%s" LIKE \'5%\' OR "share%" < %s ORDER BY 1'
        )
        rows = pg.read(query, params=["p", 5]).read_all().to_pylist()
        assert rows == [{"m": 0, "a%s": "y", "p": "p"}, {"m": 1, "a%s": "5%", "p": "p"}]


@pytest.mark.parametrize("exists", [False, True])
def test_unsigned_64_bit_integers_keep_their_value(pg_schema, exists):
    """ADBC's COPY sent uint64 as int8: MySQL's bigint unsigned max arrived as -1."""
    ref = TableRef("u", pg_schema)
    top = 2**64 - 1
    data = pa.table({"id": [1, 2, 3], "n": pa.array([top, 0, None], pa.uint64())})
    with connect(PG) as con:
        if exists:
            con.execute(f'CREATE TABLE "{pg_schema}".u (id bigint, n numeric(20))')
        assert con.write(data.to_reader(), ref, "append") == 3
        rows = con.execute(f'SELECT id, n FROM "{pg_schema}".u ORDER BY id')
        assert rows == [(1, decimal.Decimal(top)), (2, 0), (3, None)]
        with con.transaction():  # the staged path too
            con.write(data.to_reader(), ref, "append")
        assert con.execute(f'SELECT max(n) FROM "{pg_schema}".u') == [(decimal.Decimal(top),)]


def test_timetz_keeps_its_offset_through_arrow(pg_schema):
    """DuckDB's Arrow export dropped a timetz's offset (23:59:59+05:30 became 23:59:59):
    read as its text, a PostgreSQL target gets the value back exactly."""
    with connect(PG) as pg:
        pg.execute(f'CREATE TABLE "{pg_schema}".z (id int, t timetz)')
        pg.execute(f"INSERT INTO \"{pg_schema}\".z VALUES (1, '23:59:59+05:30'), (2, NULL)")
        for source in (TableRef("z", pg_schema), f'SELECT id, t FROM "{pg_schema}".z'):
            read = pg.read(source).read_all()
            assert read.column("t").to_pylist() == ["23:59:59+05:30", None]
        copy = TableRef("copy", pg_schema)
        pg.execute(f'CREATE TABLE "{pg_schema}".copy (id int, t timetz)')
        pg.write(pg.read(TableRef("z", pg_schema)), copy, "append")
        assert pg.execute(f'SELECT t::text FROM "{pg_schema}".copy ORDER BY id') == [
            ("23:59:59+05:30",),
            (None,),
        ]


def test_a_read_only_session_keeps_the_urls_own_options(pg_schema):
    """``?options=`` (search_path, timeouts) was dropped on a read-only session (every
    source is one), and its value was not percent-decoded."""
    url = f"{PG}?options=-c%20search_path%3D{pg_schema}%20-c%20statement_timeout%3D12345"
    with connect(url, read_only=True) as pg:
        assert pg.execute("SHOW search_path") == [(pg_schema,)]
        assert pg.execute("SHOW statement_timeout") == [("12345ms",)]
        assert pg.execute("SHOW default_transaction_read_only") == [("on",)]


def test_infinite_timestamps_cross_both_write_paths(pg_schema):
    """'infinity' and '-infinity' (timestamp, timestamptz, date) failed binary COPY with a
    bare 'Error occurred writing COPY data'. Straight into the target (no transaction) and
    through staging (inside a transaction, or with a uuid column that needs a cast), they
    load exactly beside the finite rows."""
    src = f'"{pg_schema}".src'
    with connect(PG) as pg:
        pg.execute(f"CREATE TABLE {src} (id int, ts timestamp, tz timestamptz, d date, u uuid)")
        pg.execute(
            f"INSERT INTO {src} SELECT g, CASE g % 3 WHEN 0 THEN 'infinity' ELSE"
            " '2024-01-01'::timestamp + g * interval '1 second' END, CASE g % 5 WHEN 0 THEN"
            " '-infinity' ELSE '2024-01-01 00:00+02'::timestamptz END, CASE WHEN g = 7 THEN"
            " '-infinity'::date END, NULL FROM generate_series(1, 20) g"
        )
        text = "SELECT id, ts::text, tz::text, d::text FROM {} ORDER BY id"
        expected = pg.execute(text.format(src))
        for name, columns in (("direct", "id, ts, tz, d"), ("cast", "id, ts, tz, d, u")):
            query = f"SELECT {columns} FROM {src}"
            assert pg.write(pg.read(query, batch_rows=4), TableRef(name, pg_schema), "create") == 20
            assert pg.execute(text.format(f'"{pg_schema}".{name}')) == expected
        with pg.transaction():
            made = TableRef("inside", pg_schema)
            assert pg.write(pg.read(TableRef("src", pg_schema)), made, "create") == 20
        assert pg.execute(text.format(f'"{pg_schema}".inside')) == expected
        leftovers = pg.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
            [pg_schema, "_crane%"],
        )
        assert leftovers == [(0,)]


def test_a_nan_in_a_bounded_numeric_fails_a_read_naming_the_column(pg_schema):
    """The scanner read numeric(10,2) 'NaN' as 0.00, silently, on every streamed read. A
    read (of a table or a query) now fails naming the column; NaN-free reads are exact."""
    with connect(PG) as pg:
        pg.execute(f'CREATE TABLE "{pg_schema}".n (id int, a numeric(10,2), f float8)')
        pg.execute(f"INSERT INTO \"{pg_schema}\".n VALUES (1, 1.50, 'NaN'), (2, 0, 0)")
        for source in (TableRef("n", pg_schema), f'SELECT * FROM "{pg_schema}".n'):
            read = pg.read(source).read_all()
            assert read.column("a").to_pylist() == [decimal.Decimal("1.50"), decimal.Decimal(0)]
            assert read.schema.field("a").type == pa.decimal128(10, 2)
        pg.execute(f"INSERT INTO \"{pg_schema}\".n VALUES (3, 'NaN', 1)")
        for source in (TableRef("n", pg_schema), f'SELECT * FROM "{pg_schema}".n'):
            with pytest.raises(ConnectorError, match="column a of .* holds NaN"):
                pg.read(source).read_all()
