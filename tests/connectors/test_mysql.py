"""MySQL/MariaDB connector on the real server: streams, LOAD DATA writes, transactions."""

from __future__ import annotations

import decimal

import pyarrow as pa
import pytest

from crane.connectors import TableRef, connect
from crane.connectors.mysql import MySQLConnector, classify, encode_batch
from crane.errors import ConnectorError

pytestmark = pytest.mark.integration
DEC = pa.decimal128(30, 15)


def _url(db: str, password: str = "") -> str:
    auth = f"root:{password}" if password else "root"
    return f"mysql://{auth}@127.0.0.1:3306/{db}"


def _table(n: int = 5) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "amount": pa.array([decimal.Decimal(f"{i}.123456789012345") for i in range(n)], DEC),
            # the characters LOAD DATA treats specially must survive
            "name": [None, "tab\there", "new\nline", "back\\slash \\N", ""][:n] + ["x"] * (n - 5),
            "flag": [True, False, None, True, False][:n] + [True] * (n - 5),
        }
    )


def test_write_modes_and_bounded_read(my_db):
    with connect(_url(my_db)) as con:
        assert con.write(_table().to_reader(), TableRef("t"), "create") == 5
        assert con.write(_table().to_reader(), TableRef("t"), "append") == 5
        assert con.execute("select count(*) from t") == [(10,)]
        with pytest.raises(ConnectorError, match="already exists"):
            con.write(_table().to_reader(), TableRef("t"), "create")
        assert con.write(_table().to_reader(), TableRef("t"), "replace") == 5
        batches = list(con.read(TableRef("t"), batch_rows=2))
        assert [b.num_rows for b in batches] == [2, 2, 1]
        back = pa.Table.from_batches(batches)
        assert back.schema.field("amount").type == DEC  # connectorx alone gives (38,10)
        assert back.to_pylist() == _table().to_pylist()


def test_query_read_with_params_and_table_schema(my_db):
    with connect(f"mariadb://root@127.0.0.1:3306/{my_db}") as con:
        con.write(_table().to_reader(), TableRef("t"), "create")
        rows = con.read("select id, name from t where id > %s order by id", params=[2])
        assert rows.read_all().to_pylist() == [
            {"id": 3, "name": "back\\slash \\N"},
            {"id": 4, "name": ""},
        ]
        assert con.table_schema(TableRef("t")).names == ["id", "amount", "name", "flag"]
        assert con.table_schema(TableRef("missing")) is None


def test_write_inside_transaction_rolls_back_with_it(my_db):
    with connect(_url(my_db)) as con:
        con.write(_table().to_reader(), TableRef("t"), "create")
        con.execute("create table state (w int)")
        with pytest.raises(RuntimeError), con.transaction():
            assert con.write(_table().to_reader(), TableRef("t"), "append") == 5
            with con.transaction():
                con.execute("insert into state values (%s)", [1])
            raise RuntimeError("crash before commit")
        assert con.execute("select count(*) from t") == [(5,)]
        assert con.execute("select count(*) from state") == [(0,)]


def test_load_data_warnings_fail_loudly(my_db):
    with connect(_url(my_db)) as con:
        con.execute("create table t (id int, amount decimal(4,1), name text, flag boolean)")
        with pytest.raises(ConnectorError, match="LOAD DATA reported"):
            con.write(_table().to_reader(), TableRef("t"), "append")  # 1.123… truncated


def test_read_only_is_enforced_by_the_server(my_db):
    with connect(_url(my_db)) as con:
        con.execute("create table t (x int)")
    with connect(_url(my_db), read_only=True) as ro:
        with pytest.raises(ConnectorError, match="READ ONLY"), ro.transaction():
            ro.execute("insert into t values (1)")
        with pytest.raises(ConnectorError):
            ro.write(_table().to_reader(), TableRef("t2"), "create")
        assert ro.execute("select count(*) from t") == [(0,)]


def test_errors_are_classified_and_masked(my_db):
    with connect(_url(my_db)) as con:
        with pytest.raises(ConnectorError) as info:
            con.execute("select * from nope")
        assert info.value.transient is False
    with pytest.raises(ConnectorError) as denied:
        connect(_url(my_db, password="s3cret-pw"))
    assert denied.value.transient is False
    assert "s3cret-pw" not in str(denied.value)


@pytest.mark.parametrize(
    ("errno", "transient"),
    [(1213, True), (1205, True), (2006, True), (2013, True), (1146, False), (1045, False)],
)
def test_classify(errno, transient):
    import pymysql

    assert classify(pymysql.err.OperationalError(errno, "x")) is transient


def test_encode_batch_escapes_and_nulls():
    batch = pa.record_batch({"a": [1, None], "s": ["x\ty", "\\"], "b": [True, None]})
    assert encode_batch(batch) == b"1\tx\\ty\t1\n\\N\t\\\\\t\\N\n"


def test_sessions_are_pooled(my_db):
    first = connect(_url(my_db))
    raw = first.con
    first.close()
    with connect(_url(my_db)) as second:
        assert second.con is raw and isinstance(second, MySQLConnector)
        kind, dsn = second.duckdb_attach()
        assert kind == "mysql" and f"database={my_db}" in dsn
        assert not second.capabilities.merge and not second.capabilities.transactional_ddl


def test_ddl_never_commits_a_callers_transaction(my_db):
    """MySQL DDL commits implicitly: create is refused and replace deletes inside one."""
    with connect(_url(my_db)) as con:
        con.write(_table().to_reader(), TableRef("t"), "create")
        with pytest.raises(ConnectorError, match="commits implicitly"), con.transaction():
            con.write(_table().to_reader(), TableRef("new"), "create")
        with pytest.raises(RuntimeError), con.transaction():
            assert con.write(_table(2).to_reader(), TableRef("t"), "replace") == 2
            raise RuntimeError("crash before commit")
        assert con.execute("select count(*) from t") == [(5,)]
        assert con.table_schema(TableRef("new")) is None


def test_a_dead_pooled_session_is_replaced(my_db):
    import pymysql

    first = connect(_url(my_db))
    thread = first.execute("select connection_id()")[0][0]
    first.close()  # back to the pool
    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with admin.cursor() as cur:
        cur.execute("kill %s", [thread])
    admin.close()
    with connect(_url(my_db)) as second:
        assert second.execute("select connection_id()")[0][0] != thread
        assert second.execute("select @@session.time_zone") == [("+00:00",)]


def test_aware_timestamps_keep_their_instant_as_utc(my_db):
    import datetime as dt

    plus2 = dt.timezone(dt.timedelta(hours=2))
    stamps = pa.array(
        [dt.datetime(2024, 1, 1, 10, 0, 0, 500, tzinfo=plus2)], pa.timestamp("us", tz="+02:00")
    )
    with connect(_url(my_db)) as con:
        con.write(pa.table({"ts": stamps}).to_reader(), TableRef("t"), "create")
        assert con.execute("select ts from t") == [(dt.datetime(2024, 1, 1, 8, 0, 0, 500),)]


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("d date", "'0000-00-00'", "'0000-00-00'"),
        ("d datetime", "'2024-02-00 10:00:00'", "'2024-02-00 10:00:00'"),
        ("d time", "'-838:59:59'", "'-838:59:59'"),
        ("d time", "'25:00:00'", "'25:00:00'"),
    ],
)
def test_a_value_arrow_cannot_hold_fails_naming_its_column(my_db, column, value, shown):
    """Zero dates and TIME durations made connectorx panic: a Rust panic is no Exception,
    so it escaped every handler as a traceback. Now it is a terminal error naming the
    column, the value and a way round it."""
    with connect(_url(my_db)) as con:
        con.execute("SET SESSION sql_mode = ''")  # the legacy mode that lets zero dates in
        con.execute(f"CREATE TABLE t (id int, {column})")
        con.execute(f"INSERT INTO t VALUES (1, NULL), (2, {value})")
        with pytest.raises(ConnectorError, match=f"column 'd' holds .*: {shown}") as caught:
            con.read(TableRef("t")).read_all()
        assert caught.value.column == "d" and not caught.value.transient
        assert "custom source query" in str(caught.value)


def test_decimals_wider_than_38_digits_arrive_as_exact_text(my_db):
    """DECIMAL(65,30) fits no 128-bit decimal and DuckDB takes no 256-bit one: exact text."""
    wide = "12345678901234567890123456789012345.123456789012345678901234567891"
    with connect(_url(my_db)) as con:
        con.execute("CREATE TABLE t (id int, w decimal(65,30), n decimal(10,2))")
        con.execute(
            f"INSERT INTO t VALUES (1, {wide}, 1.50), (2, -0.000000000000000000000000000001, NULL)"
        )
        read = con.read(TableRef("t")).read_all()
        assert read.column("w").to_pylist() == [wide, "-0.000000000000000000000000000001"]
        assert read.schema.field("n").type == pa.decimal128(10, 2)


def test_a_tinyint_1_holding_more_than_0_or_1_is_no_boolean(my_db):
    """tinyint(1) is read as a boolean, but (1) is only a display width: 2 and -1 became
    true silently. Such a column now fails naming it; a real flag still reads as bool."""
    with connect(_url(my_db)) as con:
        con.execute("CREATE TABLE t (id int, flag tinyint(1), status tinyint(1))")
        con.execute("INSERT INTO t VALUES (1, 0, 0), (2, 1, 1), (3, NULL, 2), (4, 1, -1)")
        flags = con.read("SELECT id, flag FROM t ORDER BY id").read_all()
        assert flags.column("flag").to_pylist() == [False, True, None, True]
        with pytest.raises(ConnectorError, match="column 'status' is tinyint.1., .* holds 2"):
            con.read(TableRef("t")).read_all()
        cast = con.read("SELECT CAST(status AS SIGNED) AS status FROM t ORDER BY id").read_all()
        assert cast.column("status").to_pylist() == [0, 1, 2, -1]


def test_unsigned_decimals_keep_every_digit(my_db):
    """A DECIMAL's display length counts a sign only when it is signed: an UNSIGNED
    decimal(10,2) was read as decimal(9,2) and its largest values failed the read."""
    with connect(_url(my_db)) as con:
        con.execute(
            "CREATE TABLE t (u decimal(10,2) unsigned, z decimal(5,0) unsigned, s decimal(38,2))"
        )
        con.execute(f"INSERT INTO t VALUES (99999999.99, 99999, -{'9' * 36}.99)")
        read = con.read(TableRef("t")).read_all()
        assert [f.type for f in read.schema] == [
            pa.decimal128(10, 2),
            pa.decimal128(5, 0),
            pa.decimal128(38, 2),
        ]
        assert read.to_pylist() == [
            {
                "u": decimal.Decimal("99999999.99"),
                "z": decimal.Decimal("99999"),
                "s": decimal.Decimal(f"-{'9' * 36}.99"),
            }
        ]


def test_a_column_type_the_reader_cannot_take_fails_naming_it(my_db):
    """connectorx panics on GEOMETRY when the read starts: a Rust panic is no Exception,
    so it escaped as a traceback."""
    with connect(_url(my_db)) as con:
        con.execute("CREATE TABLE t (id int, shape geometry)")
        con.execute("INSERT INTO t VALUES (1, POINT(1, 2))")
        with pytest.raises(ConnectorError, match="column 'shape' is GEOMETRY") as caught:
            con.read(TableRef("t"))
        assert caught.value.column == "shape" and "ST_AsText" in str(caught.value)
