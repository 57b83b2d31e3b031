"""The state store on real targets: DDL, watermarks of every kind, run records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest

from crane.connectors.base import connect
from crane.state import store

PG_ADMIN = "host=127.0.0.1 user=postgres dbname=test"


def test_ddl_renders_the_same_tables_for_every_target():
    for dialect in ("duckdb", "postgres"):
        sql = [s.sql(dialect=dialect) for s in store.ddl()]
        assert sql[0] == 'CREATE SCHEMA IF NOT EXISTS "_crane"'
        assert all("IF NOT EXISTS" in s for s in sql)
        assert any('"_crane"."watermarks"' in s for s in sql)


VALUES = [
    17,
    Decimal("12.50"),
    dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
    dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
    dt.date(2024, 5, 6),
    "text-cursor",
]


def _exercise(url: str) -> None:
    with connect(url) as target:
        store.ensure_state(target)
        store.ensure_state(target)  # idempotent
        assert store.read_watermark(target, "p") is None
        for value in VALUES:
            with target.transaction():
                store.write_watermark(target, "p", store.Watermark(value, "c", "gt"), "run-1")
            mark = store.read_watermark(target, "p")
            assert mark == store.Watermark(value, "c", "gt")
        with target.transaction():
            for i in range(3):
                started = dt.datetime(2024, 1, 1, i, tzinfo=dt.UTC)
                store.record_run(
                    target,
                    {
                        "run_id": f"r{i}",
                        "pipeline": "p",
                        "status": "success",
                        "started_at": started,
                        "phases": {"extract": 0.5},
                        "schema_diff": {"added": ["x"]},
                        "rows_in": i,
                    },
                )
        runs = store.read_runs(target, limit=2)
        assert [r["run_id"] for r in runs] == ["r2", "r1"]
        assert runs[0]["phases"] == {"extract": 0.5} and runs[0]["schema_diff"] == {"added": ["x"]}
        assert store.read_runs(target, pipeline="other") == []
        with pytest.raises(RuntimeError), target.transaction():  # rolled back with the data
            store.write_watermark(target, "p", store.Watermark(99, "c"), "run-2")
            raise RuntimeError("crash before commit")
        assert store.read_watermark(target, "p").value == VALUES[-1]


def test_store_on_duckdb(duck_url):
    _exercise(duck_url)


@pytest.mark.integration
def test_store_on_postgres(pg_database):
    _exercise(pg_database)


def test_state_written_by_an_older_crane_gains_new_columns(duck_url):
    """A ``runs`` table without a newer column is extended, old rows kept, new runs recorded."""
    with connect(duck_url) as target:
        target.execute('CREATE SCHEMA "_crane"')
        target.execute('CREATE TABLE "_crane"."runs" (run_id text, pipeline text, status text)')
        target.execute("INSERT INTO \"_crane\".\"runs\" VALUES ('old', 'p', 'success')")
        store.ensure_state(target)
        store.record_run(target, {"run_id": "new", "pipeline": "p", "rows_deduplicated": 2})
        rows = target.execute(
            'SELECT run_id, rows_deduplicated FROM "_crane"."runs" ORDER BY run_id'
        )
    assert rows == [("new", 2), ("old", None)]


@pytest.mark.parametrize("dialect", ["mysql", "postgres", "duckdb"])
def test_timestamp_literals_keep_their_microseconds(dialect):
    """A window bound must not lose its fraction (MySQL's bare DATETIME cast truncates it)."""
    bound = dt.datetime(2026, 11, 26, 19, 41, 57, 726716)
    sql = store.literal(bound).sql(dialect=dialect)
    assert "57.726716" in sql and ("(6)" in sql or dialect == "duckdb")


@pytest.mark.integration
def test_mariadb_compares_a_sub_second_bound_exactly():
    import pymysql

    sql = store.literal(dt.datetime(2026, 11, 26, 19, 41, 57, 726716)).sql(dialect="mysql")
    con = pymysql.connect(host="127.0.0.1", user="root", database="test")
    with con.cursor() as cur:
        cur.execute(f"SELECT CAST('2026-11-26 19:41:57.500000' AS DATETIME(6)) < {sql}")
        assert cur.fetchone() == (1,)
    con.close()


@pytest.fixture
def my_target() -> Iterator[str]:
    """MariaDB as the target: its ``_crane`` schema is a database of the server, so it is
    dropped before and after (no other test keeps state there)."""
    import pymysql

    def drop() -> None:
        con = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
        with con.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS `_crane`")
        con.close()

    drop()
    yield "mysql://root@127.0.0.1:3306/test"
    drop()


@pytest.mark.integration
def test_store_on_mariadb(my_target):
    """Aware timestamps (watermarks, run times) are written as UTC: MariaDB's datetime
    literals take no offset, and strict mode refused every run's state."""
    _exercise(my_target)
