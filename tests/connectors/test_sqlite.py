"""SQLite connector: declared types give exact Arrow, read-only is the file mode."""

from __future__ import annotations

import datetime
import decimal
import sqlite3

import pyarrow as pa
import pytest

from crane.connectors import TableRef, connect
from crane.connectors.duckdb import DuckDBConnector
from crane.connectors.sqlite import classify
from crane.errors import ConnectorError


def _table() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([1, 2, None], pa.int64()),
            "amount": pa.array(
                [decimal.Decimal("12345678.91"), decimal.Decimal("0.10"), None],
                pa.decimal128(12, 2),
            ),
            "big": pa.array(
                [decimal.Decimal("123456789012345.123456789012345"), None, None],
                pa.decimal128(30, 15),
            ),
            "name": ["a", None, ""],
            "ts": pa.array([datetime.datetime(2024, 1, 1, 10, 0, 0, 123456), None, None]),
            "d": pa.array([datetime.date(2024, 2, 29), None, None]),
            "flag": [True, False, None],
            "blob": [b"\x00\xff", None, b""],
        }
    )


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'src.db'}"


def test_round_trip_is_exact_and_bounded(sqlite_url):
    with connect(sqlite_url) as con:
        assert con.write(_table().to_reader(), TableRef("t"), "create") == 3
        batches = list(con.read(TableRef("t"), batch_rows=2))
        assert [b.num_rows for b in batches] == [2, 1]
        back = pa.Table.from_batches(batches)
        assert back.to_pylist() == _table().to_pylist()
        assert con.write(_table().to_reader(), TableRef("t"), "append") == 3
        assert con.write(_table().to_reader(), TableRef("t"), "replace") == 3
        assert con.execute("select count(*) from t") == [(3,)]
        assert con.table_schema(TableRef("t")).field("big").type == pa.decimal128(30, 15)
        assert con.table_schema(TableRef("missing")) is None
        rows = con.read("select id, name from t where id > ?", params=[1]).read_all()
        assert rows.to_pylist() == [{"id": 2, "name": None}]


def test_a_query_over_one_table_keeps_its_declared_types_when_empty(sqlite_url):
    """An incremental window that finds nothing is typed like its table: its columns used
    to come out as text, and the run failed its schema check ('id: int64 to string')."""
    with connect(sqlite_url) as con:
        con.write(_table().to_reader(), TableRef("t"), "create")
        declared = con.table_schema(TableRef("t"))
        empty = con.read('SELECT * FROM "t" WHERE "id" > ?', params=[99]).read_all()
        assert empty.num_rows == 0 and empty.schema == declared
        some = con.read("select id, name from t where id > 99").read_all()
        assert some.schema.field("id").type == pa.int64()
        # anything else than plain columns of one table is still typed by its values
        joined = con.read("select a.id + 1 as n from t a join t b on a.id = b.id where 0")
        assert joined.schema.field("n").type == pa.string()


def test_transaction_rolls_back(sqlite_url):
    with connect(sqlite_url) as con:
        con.execute("create table t (x int)")
        with pytest.raises(RuntimeError), con.transaction():
            con.write(pa.table({"x": [1, 2]}).to_reader(), TableRef("t"), "append")
            raise RuntimeError("boom")
        assert con.execute("select count(*) from t") == [(0,)]


def test_read_only_uses_the_file_mode(sqlite_url):
    with connect(sqlite_url) as con:
        con.execute("create table t (x int)")
    with connect(sqlite_url, read_only=True) as ro, pytest.raises(ConnectorError, match="readonly"):
        ro.execute("insert into t values (1)")


def test_duckdb_scans_it_in_engine(sqlite_url, duck_url):
    with connect(sqlite_url) as src:
        src.write(_table().to_reader(), TableRef("t"), "create")
        with connect(duck_url) as duck:
            assert isinstance(duck, DuckDBConnector)
            alias = duck.attach(src, "src")
            duck.execute(f"create table t as {src.duckdb_scan(TableRef('t'), alias)}")
            assert duck.execute("select count(*), max(id) from t") == [(3, 2)]


def test_classify_a_locked_database_as_transient(tmp_path):
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("create table t (x)")
    holder.execute("begin immediate")
    with connect(f"sqlite:///{path}") as con:
        con.con.execute("pragma busy_timeout = 50")
        with pytest.raises(ConnectorError) as locked:
            con.execute("insert into t values (1)")
        assert locked.value.transient is True
        with pytest.raises(ConnectorError) as missing:
            con.execute("select * from nope")
        assert missing.value.transient is False
    holder.close()
    assert classify(sqlite3.OperationalError("database is locked")) is True
