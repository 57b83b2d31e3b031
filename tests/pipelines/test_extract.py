"""Extract strategies on real engines: windows, commit-safe bounds, partitions, backfill."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest
from _runner_helpers import (
    PG_URL,
    duck_change,
    duck_rows,
    make_duck_orders,
    make_pg_orders,
    normalize,
    pg,
    pg_change,
    pg_rows,
    spec,
)

from crane.connectors import TableRef, connect
from crane.pipelines.bounds import cursor_kind, parse_duration
from crane.pipelines.extract import coerce, minus_lookback, split_points
from crane.pipelines.runner import run_pipeline
from crane.state.store import decode, encode, value_kind

# -- pure pieces ------------------------------------------------------------------------


def test_split_points_cover_ints_times_and_dates():
    assert split_points(0, 100, 4) == [25, 50, 75]
    assert split_points(5, 5, 4) == []
    assert split_points(None, None, 4) == []
    start = dt.datetime(2024, 1, 1)
    assert split_points(start, start + dt.timedelta(hours=4), 2) == [start + dt.timedelta(hours=2)]
    assert split_points(dt.date(2024, 1, 1), dt.date(2024, 1, 9), 4) == [
        dt.date(2024, 1, 3),
        dt.date(2024, 1, 5),
        dt.date(2024, 1, 7),
    ]


def test_a_duration_lookback_on_a_number_cursor_is_a_config_error():
    from crane.errors import ConfigError

    with pytest.raises(ConfigError, match="lookback '2h' is not a count"):
        minus_lookback(10, "2h", "int")
    assert minus_lookback(10, "3", "int") == 7


def test_coerce_and_lookback_keep_the_cursor_type():
    assert coerce("42", "int") == 42
    instant = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert coerce("2024-01-02T03:04:05", "timestamptz") == instant
    assert coerce("2024-01-02", "date") == dt.date(2024, 1, 2)
    assert minus_lookback(100, 10, "int") == 90
    assert minus_lookback(dt.datetime(2024, 1, 1, 2), "2h", "timestamp") == dt.datetime(2024, 1, 1)
    assert parse_duration("500ms") == dt.timedelta(milliseconds=500)
    assert cursor_kind(pa.timestamp("us", tz="UTC")) == "timestamptz"
    assert cursor_kind(pa.int32()) == "int"


@pytest.mark.parametrize(
    "value",
    [
        7,
        dt.datetime(2024, 1, 1, 1, 2, 3, 456789),
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        dt.date(2024, 2, 29),
        "abc",
    ],
)
def test_watermark_values_round_trip_as_one_small_value(value):
    assert decode(encode(value), value_kind(value)) == value
    assert len(encode(value) or "") < 40  # state stays one small value, never a hash list


# -- incremental on DuckDB sources (single writer: window (watermark, max]) -----------------


def test_incremental_reads_each_row_once_including_ties_at_the_boundary(tmp_path):
    src, tgt = str(tmp_path / "src.duckdb"), str(tmp_path / "w.duckdb")
    con = duckdb.connect(src)
    con.execute(
        "CREATE TABLE orders AS SELECT i AS id, TIMESTAMP '2024-01-01' AS updated_at, "
        "1.0::DECIMAL(10,2) AS amount, 'a' AS name FROM range(10) t(i)"
    )
    con.close()
    pipeline = spec("ties", load={"strategy": "append", "primary_key": []})
    urls = {"source_url": f"duckdb:///{src}", "target_url": f"duckdb:///{tgt}"}
    first = run_pipeline(pipeline, **urls).raise_for_status()
    assert first.rows_loaded == 10
    con = duckdb.connect(src)  # more rows sharing the old boundary value can't appear later
    con.execute(
        "INSERT INTO orders SELECT i, TIMESTAMP '2024-01-02', 2, 'b' FROM range(10, 13) t(i)"
    )
    con.close()
    second = run_pipeline(pipeline, **urls).raise_for_status()
    third = run_pipeline(pipeline, **urls).raise_for_status()
    assert (second.rows_loaded, third.rows_loaded) == (3, 0)
    assert [r[0] for r in duck_rows(tgt, "ties")] == list(range(13))  # append: no duplicates


def test_backfill_reads_only_its_range_and_keeps_the_watermark(tmp_path):
    src, tgt = str(tmp_path / "src.duckdb"), str(tmp_path / "w.duckdb")
    make_duck_orders(src, 100)
    urls = {"source_url": f"duckdb:///{src}", "target_url": f"duckdb:///{tgt}"}
    pipeline = spec("bf")
    before = run_pipeline(pipeline, **urls).raise_for_status().watermark_after
    window = ("2024-01-01T00:10:00", "2024-01-01T00:20:00")
    result = run_pipeline(pipeline, backfill=window, **urls).raise_for_status()
    assert result.rows_extracted == 10  # minutes 10..19, end exclusive
    assert result.watermark_after == before
    con = duckdb.connect(tgt, read_only=True)
    assert con.execute("SELECT value FROM _crane.watermarks").fetchall() == [(encode(before),)]
    con.close()


def test_lookback_rereads_and_merge_dedupes(tmp_path):
    src, tgt = str(tmp_path / "src.duckdb"), str(tmp_path / "w.duckdb")
    make_duck_orders(src, 100)
    urls = {"source_url": f"duckdb:///{src}", "target_url": f"duckdb:///{tgt}"}
    pipeline = spec("lb", extract={"lookback": "30m"})
    run_pipeline(pipeline, **urls).raise_for_status()
    again = run_pipeline(pipeline, **urls).raise_for_status()
    assert again.rows_extracted == 31  # the last 30 minutes, inclusive of the watermark row
    assert duck_rows(tgt, "lb") == duck_rows(src)


def test_null_cursor_rows_load_on_full_loads_or_always(tmp_path):
    src, tgt = str(tmp_path / "src.duckdb"), str(tmp_path / "w.duckdb")
    make_duck_orders(src, 20)
    con = duckdb.connect(src)
    con.execute("INSERT INTO orders VALUES (100, NULL, 1, 'null cursor')")
    con.close()
    urls = {"source_url": f"duckdb:///{src}", "target_url": f"duckdb:///{tgt}"}
    skip = run_pipeline(spec("nskip"), **urls).raise_for_status()
    assert skip.rows_loaded == 21  # the first run is a full load: NULLs included
    con = duckdb.connect(src)
    con.execute("INSERT INTO orders VALUES (101, NULL, 1, 'later null')")
    con.close()
    assert run_pipeline(spec("nskip"), **urls).raise_for_status().rows_extracted == 0
    always = spec("nalways", extract={"null_cursor": "always"})
    run_pipeline(always, **urls).raise_for_status()
    assert run_pipeline(always, **urls).raise_for_status().rows_extracted == 2
    assert len(duck_rows(tgt, "nalways")) == 22


def test_full_refresh_ignores_the_watermark(tmp_path):
    src, tgt = str(tmp_path / "src.duckdb"), str(tmp_path / "w.duckdb")
    make_duck_orders(src, 50)
    urls = {"source_url": f"duckdb:///{src}", "target_url": f"duckdb:///{tgt}"}
    run_pipeline(spec("fr"), **urls).raise_for_status()
    duck_change(src, 51, 5)
    result = run_pipeline(spec("fr"), full_refresh=True, **urls).raise_for_status()
    assert result.rows_extracted == 55
    assert duck_rows(tgt, "fr") == duck_rows(src)
    appended = spec("fr_append", load={"strategy": "append", "primary_key": []})
    run_pipeline(appended, **urls).raise_for_status()
    run_pipeline(appended, full_refresh=True, **urls).raise_for_status()
    assert duck_rows(tgt, "fr_append") == duck_rows(src)  # rebuilt, not appended twice


# -- PostgreSQL: commit-safe bound, custom queries, partitions ---------------------------


@pytest.mark.integration
def test_late_commit_with_older_timestamp_is_not_skipped(pg_schema, duck_url):
    """T1 stamps its row early and commits late; T2 commits a later row first."""
    make_pg_orders(pg_schema, 100)
    append = {"strategy": "append", "primary_key": []}
    pipeline = spec("late", source={"schema": pg_schema}, load=append)
    urls = {"source_url": PG_URL, "target_url": duck_url}
    run_pipeline(pipeline, **urls).raise_for_status()
    t1 = pg()
    t1.autocommit = False
    t1_start = t1.execute("SELECT now()").fetchone()[0]
    t1.execute(f"INSERT INTO \"{pg_schema}\".orders (id, amount, name) VALUES (1001, 1, 't1')")
    time.sleep(0.05)
    with pg() as t2:
        t2.execute(f"INSERT INTO \"{pg_schema}\".orders (id, amount, name) VALUES (1002, 2, 't2')")
    during = run_pipeline(pipeline, **urls).raise_for_status()
    assert during.watermark_after <= t1_start  # held back at T1's start
    t1.commit()
    t1.close()
    after = run_pipeline(pipeline, **urls).raise_for_status()
    target = normalize(duck_rows(duck_url.removeprefix("duckdb:///"), "late"))
    assert target == normalize(pg_rows(pg_schema))  # both late rows present, none twice
    assert during.rows_loaded + after.rows_loaded == 2


@pytest.mark.integration
def test_custom_query_source_incremental(pg_schema, duck_url):
    make_pg_orders(pg_schema, 300)
    query = f'SELECT id, updated_at, amount, upper(name) AS name FROM "{pg_schema}".orders'
    pipeline = spec("q", source={"table": None, "query": query})
    urls = {"source_url": PG_URL, "target_url": duck_url}
    assert run_pipeline(pipeline, **urls).raise_for_status().rows_loaded == 300
    pg_change(pg_schema, 301, 7)
    second = run_pipeline(pipeline, **urls).raise_for_status()
    assert second.rows_extracted == 7 + 3  # 7 new rows; ids 10, 107, 204 updated
    rows = duck_rows(duck_url.removeprefix("duckdb:///"), "q")
    assert len(rows) == 307 and rows[-1][3] == "NEW 307"


@pytest.mark.integration
@pytest.mark.parametrize("source", ["table", "query"])
def test_partitioned_extract_equals_the_source(pg_schema, duck_url, source):
    """A table goes through DuckDB's own parallel scan; a query is split into key
    ranges read by parallel workers into parts that become one staging table."""
    make_pg_orders(pg_schema, 4000)
    with pg() as con:  # a NULL key lands in the first range
        con.execute(f'ALTER TABLE "{pg_schema}".orders DROP CONSTRAINT orders_pkey')
        con.execute(f'ALTER TABLE "{pg_schema}".orders ALTER COLUMN id DROP NOT NULL')
        con.execute(f"INSERT INTO \"{pg_schema}\".orders (id, name) VALUES (NULL, 'null key')")
    urls = {"source_url": PG_URL, "target_url": duck_url}
    query = f'SELECT * FROM "{pg_schema}".orders'
    parted = spec(
        "parted",
        source={"schema": pg_schema} if source == "table" else {"table": None, "query": query},
        extract={"strategy": "partitioned", "partition_column": "id", "partitions": 4},
        load={"strategy": "append", "primary_key": []},
    )
    result = run_pipeline(parted, **urls).raise_for_status()
    assert result.rows_extracted == 4001 and result.window["parts"] == "4"
    key = lambda row: (row[0] is None, row[0] or 0)  # noqa: E731
    target = sorted(normalize(duck_rows(duck_url.removeprefix("duckdb:///"), "parted")), key=key)
    assert target == sorted(normalize(pg_rows(pg_schema)), key=key)
    con = duckdb.connect(duck_url.removeprefix("duckdb:///"), read_only=True)
    leftovers = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = '_crane_staging'"
    ).fetchall()
    con.close()
    assert leftovers == [(0,)]


@pytest.mark.integration
def test_integer_cursor_reads_new_ids_once(pg_schema, duck_url):
    make_pg_orders(pg_schema, 300)
    pipeline = spec(
        "ids",
        source={"schema": pg_schema},
        extract={"cursor": "id"},
        load={"strategy": "append", "primary_key": []},
    )
    urls = {"source_url": PG_URL, "target_url": duck_url}
    first = run_pipeline(pipeline, **urls).raise_for_status()
    assert (first.rows_loaded, first.watermark_after) == (300, 300)
    assert first.window["upper_op"] == "<="  # (watermark, max(id)]
    pg_change(pg_schema, 301, 5)  # the updates keep their ids: an id cursor sees only new rows
    second = run_pipeline(pipeline, **urls).raise_for_status()
    assert (second.rows_loaded, second.watermark_after) == (5, 305)
    assert run_pipeline(pipeline, **urls).raise_for_status().rows_loaded == 0
    ids = [r[0] for r in duck_rows(duck_url.removeprefix("duckdb:///"), "ids")]
    assert ids == list(range(1, 306))


def test_a_margin_is_elapsed_time_across_a_dst_change():
    """The clock arrives in the session's zone; Python subtracts wall-clock time there, so
    in the spring-forward hour a 1h margin (held-back transactions, lag) vanished."""
    from zoneinfo import ZoneInfo

    from crane.pipelines.bounds import instant_minus

    zone = ZoneInfo("America/New_York")
    spring = dt.datetime(2024, 3, 10, 3, 30, tzinfo=zone)  # 07:30 UTC
    autumn = dt.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=zone)  # 06:30 UTC, second 1:30
    hour = dt.timedelta(hours=1)
    assert instant_minus(spring, hour) == dt.datetime(2024, 3, 10, 6, 30, tzinfo=dt.UTC)
    assert instant_minus(autumn, hour) == dt.datetime(2024, 11, 3, 5, 30, tzinfo=dt.UTC)


def test_docstring_examples_run():
    import doctest

    from crane.pipelines import bounds, extract

    for module in (bounds, extract):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


# -- MariaDB and SQLite sources (their connectors register by URL scheme) -------------------


@pytest.mark.integration
def test_a_mariadb_window_is_streamed_into_a_temporary_staging_table(my_db, duck_url):
    """A streamed window (MariaDB, read by connectorx) stages in a temporary table of the
    publishing connection, and the merge gives the source's rows."""
    import pymysql

    def run_sql(*statements: str) -> list[tuple]:
        with (
            pymysql.connect(host="127.0.0.1", user="root", database=my_db, autocommit=True) as con,
            con.cursor() as cur,
        ):
            for statement in statements:
                cur.execute(statement)
            return [tuple(row) for row in cur.fetchall()]

    run_sql(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, updated_at DATETIME(6) NOT NULL,"
        " amount DECIMAL(10,2), name VARCHAR(50))",
        "INSERT INTO orders SELECT seq, NOW(6) - INTERVAL 1 DAY + INTERVAL seq SECOND,"
        " seq * 1.25, CONCAT('name ', seq) FROM seq_1_to_300",
    )
    pipeline = spec("my_merge")
    urls = {"source_url": f"mysql://root@127.0.0.1:3306/{my_db}", "target_url": duck_url}
    assert run_pipeline(pipeline, **urls).raise_for_status().rows_loaded == 300
    time.sleep(0.01)
    source = run_sql(
        "UPDATE orders SET name = 'moved', updated_at = NOW(6) WHERE id % 50 = 7",
        "INSERT INTO orders VALUES (301, NOW(6), 9.99, 'new')",
        "SELECT id, amount, name FROM orders ORDER BY id",
    )
    second = run_pipeline(pipeline, **urls).raise_for_status()
    assert (second.rows_extracted, second.load["updated"], second.load["inserted"]) == (7, 6, 1)
    con = duckdb.connect(duck_url.removeprefix("duckdb:///"), read_only=True)
    target = con.execute("SELECT id, amount, name FROM my_merge ORDER BY id").fetchall()
    staged = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = '_crane_staging'"
    ).fetchall()
    con.close()
    assert target == source and staged == [(0,)]


@pytest.mark.integration
def test_mariadb_late_commit_is_not_skipped(my_db, duck_url):
    import pymysql

    def session(autocommit: bool = True) -> pymysql.connections.Connection:
        return pymysql.connect(host="127.0.0.1", user="root", database=my_db, autocommit=autocommit)

    with session() as con, con.cursor() as cur:
        cur.execute(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, "
            "amount DECIMAL(10,2), name VARCHAR(50)) ENGINE=InnoDB"
        )
        cur.execute(
            "INSERT INTO orders SELECT seq, NOW(6) - INTERVAL 1 DAY + INTERVAL seq SECOND, "
            "seq * 1.25, CONCAT('name ', seq) FROM seq_1_to_100"
        )
    url = f"mysql://root@127.0.0.1:3306/{my_db}"
    pipeline = spec("my_late", load={"strategy": "append", "primary_key": []})
    urls = {"source_url": url, "target_url": duck_url}
    assert run_pipeline(pipeline, **urls).raise_for_status().rows_loaded == 100
    t1 = session(autocommit=False)
    with t1.cursor() as cur:
        cur.execute("START TRANSACTION")
        cur.execute("INSERT INTO orders VALUES (1001, NOW(6), 1, 't1')")
    time.sleep(0.05)
    with session() as t2, t2.cursor() as cur:
        cur.execute("INSERT INTO orders VALUES (1002, NOW(6), 2, 't2')")
    during = run_pipeline(pipeline, **urls).raise_for_status()
    t1.commit()
    t1.close()
    # InnoDB reports transaction starts to the second, and other sessions on a shared server
    # may hold the bound back a little longer: the promise is that the late row arrives in a
    # later run, exactly once (had `during` moved past T1's start, 1001 would never load).
    loaded = during.rows_loaded
    for _ in range(20):
        loaded += run_pipeline(pipeline, **urls).raise_for_status().rows_loaded
        if loaded >= 2:
            break
        time.sleep(0.25)
    assert loaded == 2
    ids = [r[0] for r in duck_rows(duck_url.removeprefix("duckdb:///"), "my_late")]
    assert ids == [*range(1, 101), 1001, 1002]


def test_sqlite_source_incremental(tmp_path, duck_url):
    import sqlite3

    path = tmp_path / "src.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, updated_at TIMESTAMP, name TEXT)")
    con.executemany(
        "INSERT INTO orders VALUES (?, ?, ?)",
        [(i, f"2024-01-01 00:{i:02d}:00", f"n{i}") for i in range(50)],
    )
    con.commit()
    pipeline = spec("lite")
    urls = {"source_url": f"sqlite:///{path}", "target_url": duck_url}
    assert run_pipeline(pipeline, **urls).raise_for_status().rows_loaded == 50
    con.execute("INSERT INTO orders VALUES (50, '2024-01-01 00:59:00', 'late')")
    con.execute("UPDATE orders SET updated_at = '2024-01-02 00:00:00', name = 'x' WHERE id = 3")
    con.commit()
    con.close()
    again = run_pipeline(pipeline, **urls).raise_for_status()
    assert again.rows_extracted == 2
    target = duckdb.connect(duck_url.removeprefix("duckdb:///"), read_only=True)
    rows = target.execute("SELECT count(*), max(name) FILTER (WHERE id = 3) FROM lite").fetchall()
    target.close()
    assert rows == [(51, "x")]


def test_lookback_on_text_timestamps_keeps_their_format():
    hour = "1h"
    assert minus_lookback("2024-01-02 03:00:00", hour, "other") == "2024-01-02 02:00:00"
    assert minus_lookback("2024-01-02T03:00:00Z", hour, "other") == "2024-01-02T02:00:00Z"
    assert minus_lookback("2024-01-02 03:00:00.5", hour, "other") == "2024-01-02 02:00:00.500000"


def column_types(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    query = "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?"
    return dict(con.execute(query, [table]).fetchall())


@pytest.mark.integration
@pytest.mark.parametrize("with_enum", [False, True])
def test_an_incremental_window_into_duckdb_keeps_every_type(pg_schema, duck_url, with_enum):
    """A window is read by one PostgreSQL query (``duckdb_window_scan``) into a temporary
    staging table; an enum column, which that query reads as text, is cast back to its
    ENUM. Both give the source's rows and types."""
    make_pg_orders(pg_schema, 200)
    with pg() as con:
        con.execute(f"CREATE TYPE \"{pg_schema}\".mood AS ENUM ('sad', 'ok')")
        kind = f'"{pg_schema}".mood' if with_enum else "text"
        con.execute(f"ALTER TABLE \"{pg_schema}\".orders ADD COLUMN mood {kind} DEFAULT 'ok'")
        con.execute(f"ALTER TABLE \"{pg_schema}\".orders ADD COLUMN tags int[] DEFAULT '{{1,2}}'")
    pipeline = spec("typed", source={"schema": pg_schema})
    urls = {"source_url": PG_URL, "target_url": duck_url}
    run_pipeline(pipeline, **urls).raise_for_status()
    pg_change(pg_schema, 201, 5)
    with pg() as con:
        con.execute(f"UPDATE \"{pg_schema}\".orders SET mood = 'sad' WHERE id > 200")
    second = run_pipeline(pipeline, **urls).raise_for_status()
    assert second.rows_extracted == 5 + 2 and second.load["updated"] == 2  # ids 7, 104
    path = duck_url.removeprefix("duckdb:///")
    assert normalize(duck_rows(path, "typed")) == normalize(pg_rows(pg_schema))
    con = duckdb.connect(path, read_only=True)
    types = column_types(con, "typed")
    moods = con.execute("SELECT mood, count(*) FROM typed GROUP BY 1 ORDER BY 1").fetchall()
    tags = con.execute("SELECT DISTINCT tags FROM typed").fetchall()
    staged = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = '_crane_staging'"
    ).fetchall()
    con.close()
    assert types["mood"] == ("ENUM('sad', 'ok')" if with_enum else "VARCHAR")
    assert types["amount"] == "DECIMAL(10,2)" and types["tags"] == "INTEGER[]"
    assert moods == [("sad", 5), ("ok", 200)] if with_enum else [("ok", 200), ("sad", 5)]
    assert tags == [([1, 2],)] and staged == [(0,)]


@pytest.mark.integration
def test_the_window_scan_is_declined_for_a_table_with_its_own_types(pg_schema):
    make_pg_orders(pg_schema, 3)
    with connect(PG_URL) as source:
        query = f'SELECT * FROM "{pg_schema}"."orders" WHERE id > 1'
        scan = source.duckdb_window_scan(query, TableRef("orders", pg_schema), "src")
        assert scan is not None and "postgres_query" in scan.lower()
        source.execute(f"CREATE TYPE \"{pg_schema}\".mood AS ENUM ('sad', 'o''k')")
        source.execute(f'ALTER TABLE "{pg_schema}".orders ADD COLUMN mood "{pg_schema}".mood')
        scan = source.duckdb_window_scan(query, TableRef("orders", pg_schema), "src")
        assert scan is not None and "CAST(\"mood\" AS ENUM('sad', 'o''k'))" in scan
        source.execute(f'CREATE DOMAIN "{pg_schema}".positive AS int CHECK (VALUE > 0)')
        source.execute(f'ALTER TABLE "{pg_schema}".orders ADD COLUMN n "{pg_schema}".positive')
        assert source.duckdb_window_scan(query, TableRef("orders", pg_schema), "src") is None


@pytest.mark.integration
def test_a_full_load_declares_mostly_distinct_text_columns_fsst(pg_schema, duck_url):
    """PostgreSQL's statistics name the mostly-distinct text columns (here: set by hand
    on a 3-valued column); the DuckDB staging table declares them ``USING COMPRESSION
    fsst`` instead of trying a dictionary, and every column keeps its type and values."""
    from crane.connectors.postgres import MOSTLY_DISTINCT

    with pg() as con:
        con.execute(f"CREATE TYPE \"{pg_schema}\".mood AS ENUM ('sad', 'ok')")
        con.execute(
            f'CREATE TABLE "{pg_schema}".people (id bigint, email text, status text,'
            f' kind text, mood "{pg_schema}".mood, amount numeric(12, 2), pair bigint[])'
        )
        con.execute(
            f"INSERT INTO \"{pg_schema}\".people SELECT g, 'user' || g || '@example.com',"
            " (ARRAY['new', 'active', 'gone'])[1 + g % 3], (ARRAY['a', 'b'])[1 + g % 2],"
            f" (ARRAY['sad', 'ok'])[1 + g % 2]::\"{pg_schema}\".mood, g * 0.01, ARRAY[g, -g]"
            " FROM generate_series(1, 3000) g"
        )
        con.execute(
            f'ALTER TABLE "{pg_schema}".people ALTER COLUMN status'
            f" SET (n_distinct = {MOSTLY_DISTINCT * 2})"
        )
        con.execute(f'ANALYZE "{pg_schema}".people')
    with connect(PG_URL) as source:
        hinted = source.distinct_text_columns(TableRef("people", pg_schema))
    assert hinted == ["status"]
    pipeline = spec(
        "people",
        source={"table": "people", "schema": pg_schema},
        extract={"strategy": "full"},
        load={"strategy": "replace", "primary_key": ["id"]},
    )
    result = run_pipeline(pipeline, source_url=PG_URL, target_url=duck_url)
    assert result.raise_for_status().rows_loaded == 3000
    con = duckdb.connect(duck_url.removeprefix("duckdb:///"), read_only=True)
    codecs = dict(
        con.execute(
            "SELECT column_name, string_agg(DISTINCT compression, ',') FROM"
            " pragma_storage_info('people') WHERE segment_type = 'VARCHAR' GROUP BY 1"
        ).fetchall()
    )
    types = column_types(con, "people")
    sample = con.execute("SELECT * FROM people WHERE id IN (1, 2999) ORDER BY id").fetchall()
    statuses = con.execute("SELECT status, count(*) FROM people GROUP BY 1 ORDER BY 1").fetchall()
    con.close()
    assert codecs["status"] == "FSST" and codecs["kind"] == "Dictionary"
    assert types == {
        "id": "BIGINT", "email": "VARCHAR", "status": "VARCHAR", "kind": "VARCHAR",
        "mood": "ENUM('sad', 'ok')", "amount": "DECIMAL(12,2)", "pair": "BIGINT[]",
    }  # fmt: skip
    assert sample == [
        (1, "user1@example.com", "active", "b", "ok", Decimal("0.01"), [1, -1]),
        (2999, "user2999@example.com", "gone", "b", "ok", Decimal("29.99"), [2999, -2999]),
    ]
    assert statuses == [("active", 1000), ("gone", 1000), ("new", 1000)]


@pytest.mark.parametrize(
    ("extract", "named"),
    [({"lookback": "30m"}, "lookback"), ({"null_cursor": "always"}, "null_cursor: always")],
)
def test_rereading_windows_refuse_an_append_load(tmp_path, extract, named):
    """A lookback (or NULL cursors read every run) into an append load duplicated the
    re-read rows on every run; it now fails before anything moves, naming the fix."""
    src, tgt = str(tmp_path / "src.duckdb"), str(tmp_path / "w.duckdb")
    make_duck_orders(src, 100)
    urls = {"source_url": f"duckdb:///{src}", "target_url": f"duckdb:///{tgt}"}
    pipeline = spec("rr", extract=extract, load={"strategy": "append", "primary_key": []})
    result = run_pipeline(pipeline, **urls)
    assert result.status == "failed" and named in str(result.error)
    assert "merge" in str(result.error) and result.rows_loaded == 0
    run_pipeline(pipeline, **urls)  # a second attempt adds nothing either
    con = duckdb.connect(tgt, read_only=True)
    assert con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'rr'"
    ).fetchall() == [(0,)]
    con.close()


@pytest.mark.integration
def test_a_missing_source_table_is_named_not_blamed_on_the_cursor(pg_schema, duck_url):
    """An incremental pipeline whose table is missing said "cannot read cursor column"."""
    pipeline = spec("gone", source={"table": "nope", "schema": pg_schema})
    result = run_pipeline(pipeline, source_url=PG_URL, target_url=duck_url)
    assert result.status == "failed" and result.attempts == 1
    error = str(result.error)
    assert error.startswith(f'table "{pg_schema}"."nope": cannot read the source')
    assert "does not exist" in error and "cursor" not in error


def _west_writer(autocommit: bool = True):
    """An app session stamping a naive ``timestamp`` in a zone west of the server's (JDBC
    sets the JVM's zone): its ``now()`` reads hours behind crane's clock."""
    con = pg()
    con.execute("SET TimeZone = 'America/New_York'")
    con.autocommit = autocommit
    return con


def _naive_orders(schema: str) -> None:
    with pg() as con:
        con.execute(
            f'CREATE TABLE "{schema}".orders (id bigint PRIMARY KEY, '
            "updated_at timestamp NOT NULL DEFAULT now(), amount numeric(10,2), name text)"
        )


@pytest.mark.integration
def test_naive_cursor_stamped_west_of_the_server_misses_no_row(pg_schema, duck_url):
    """The clock bound sat hours in the rows' future: every row written after the first
    run fell below the next window and was never loaded."""
    _naive_orders(pg_schema)
    insert = f'INSERT INTO "{pg_schema}".orders (id, amount, name) VALUES (%s, 1, %s)'
    append = {"strategy": "append", "primary_key": []}
    pipeline = spec("west", source={"schema": pg_schema}, load=append)
    urls = {"source_url": PG_URL, "target_url": duck_url}
    with _west_writer() as writer:
        writer.execute(insert, [1, "first"])
        run_pipeline(pipeline, **urls).raise_for_status()
        writer.execute(insert, [2, "second"])
        writer.execute(insert, [3, "third"])
        assert run_pipeline(pipeline, **urls).raise_for_status().rows_loaded == 2
        t1 = _west_writer(autocommit=False)  # stamps early, commits late
        t1.execute(insert, [4, "late"])
        time.sleep(0.05)
        writer.execute(insert, [5, "early"])
        during = run_pipeline(pipeline, **urls).raise_for_status()
        t1.commit()
        t1.close()
    after = run_pipeline(pipeline, **urls).raise_for_status()
    assert during.rows_loaded + after.rows_loaded == 2
    target = duck_rows(duck_url.removeprefix("duckdb:///"), "west")
    assert target == pg_rows(pg_schema)  # every row, none twice


@pytest.mark.integration
@pytest.mark.parametrize(
    ("column", "why"), [("code", "str, which has no ranges"), ("u", "min/max")]
)
def test_a_partition_column_without_ranges_is_a_clear_error(pg_schema, duck_url, column, why):
    """A text partition column failed with "unsupported operand type(s) for -"."""
    with pg() as con:
        con.execute(
            f'CREATE TABLE "{pg_schema}".o AS SELECT g AS id, md5(g::text) AS code, '
            "gen_random_uuid() AS u FROM generate_series(1, 10) g"
        )
    extract = {"strategy": "partitioned", "partition_column": column}
    pipeline = spec("parts", source={"table": "o", "schema": pg_schema}, extract=extract)
    result = run_pipeline(pipeline, source_url=PG_URL, target_url=duck_url)
    assert result.status == "failed" and result.attempts == 1
    error = str(result.error)
    assert error.startswith(f"pipeline parts, column {column}: partition column {column!r}")
    assert why in error and "partition by an integer" in error


@pytest.mark.parametrize("mode", ["delete", "soft"])
def test_hard_deletes_on_an_incremental_window_are_refused(tmp_path, mode):
    """Hard-delete detection only runs on full extracts: configured on an incremental
    pipeline it silently never ran, and deleted source rows stayed in the target."""
    src, tgt = str(tmp_path / "src.duckdb"), str(tmp_path / "w.duckdb")
    make_duck_orders(src, 10)
    urls = {"source_url": f"duckdb:///{src}", "target_url": f"duckdb:///{tgt}"}
    result = run_pipeline(spec("hd", load={"hard_deletes": mode}), **urls)
    assert result.status == "failed" and f"hard_deletes: {mode} needs a full extract" in str(
        result.error
    )


def _late_commit_is_loaded(pipeline, urls, schema: str, late: str, early: str) -> None:
    """A first run; then T1 writes ``late`` and stays open while T2 commits ``early``; a run
    during T1, T1 commits, a run after: both rows land, once each."""
    run_pipeline(pipeline, **urls).raise_for_status()
    t1 = pg()
    t1.autocommit = False
    t1.execute(late)
    time.sleep(0.05)
    with pg() as t2:
        t2.execute(early)
    during = run_pipeline(pipeline, **urls).raise_for_status()
    t1.commit()
    t1.close()
    after = run_pipeline(pipeline, **urls).raise_for_status()
    assert during.rows_loaded + after.rows_loaded == 2
    target = normalize(duck_rows(urls["target_url"].removeprefix("duckdb:///"), pipeline.name))
    assert target == normalize(pg_rows(schema))


@pytest.mark.integration
def test_late_commit_under_a_view_source_is_not_skipped(pg_schema, duck_url):
    """A writer locks the base table, not the view a pipeline reads: the bound did not
    wait for it and the late commit's row was skipped forever."""
    make_pg_orders(pg_schema, 10)
    with pg() as con:  # a view over a view, as reporting schemas stack them
        con.execute(f'CREATE VIEW "{pg_schema}".v1 AS SELECT * FROM "{pg_schema}".orders')
        con.execute(f'CREATE VIEW "{pg_schema}".v2 AS SELECT * FROM "{pg_schema}".v1')
    append = {"strategy": "append", "primary_key": []}
    pipeline = spec("viewed", source={"table": "v2", "schema": pg_schema}, load=append)
    urls = {"source_url": PG_URL, "target_url": duck_url}
    insert = f'INSERT INTO "{pg_schema}".orders (id, amount, name) VALUES'
    late, early = f"{insert} (1001, 1, 't1')", f"{insert} (1002, 1, 't2')"
    _late_commit_is_loaded(pipeline, urls, pg_schema, late, early)


@pytest.mark.integration
def test_late_commit_into_a_partition_of_the_source_is_not_skipped(pg_schema, duck_url):
    """A writer inserting straight into a partition locks that partition only: the bound
    on the partitioned parent did not wait for it."""
    with pg() as con:
        con.execute(
            f'CREATE TABLE "{pg_schema}".orders (id bigint, updated_at timestamptz NOT NULL '
            "DEFAULT now(), amount numeric(10,2), name text) PARTITION BY RANGE (id)"
        )
        for part, (low, high) in {"low": (0, 1000), "high": (1000, 2000)}.items():
            con.execute(
                f'CREATE TABLE "{pg_schema}".orders_{part} PARTITION OF "{pg_schema}".orders '
                f"FOR VALUES FROM ({low}) TO ({high})"
            )
        con.execute(f"INSERT INTO \"{pg_schema}\".orders (id, name) VALUES (1, 'a')")
    append = {"strategy": "append", "primary_key": []}
    pipeline = spec("parted", source={"schema": pg_schema}, load=append)
    urls = {"source_url": PG_URL, "target_url": duck_url}
    late = f"INSERT INTO \"{pg_schema}\".orders_high (id, name) VALUES (1001, 't1')"
    early = f"INSERT INTO \"{pg_schema}\".orders_low (id, name) VALUES (2, 't2')"
    _late_commit_is_loaded(pipeline, urls, pg_schema, late, early)


@pytest.mark.integration
def test_mariadb_late_commit_in_another_database_than_the_urls_is_not_skipped(my_db, duck_url):
    """The source table lives in another database than the URL names (``schema:``):
    writers sitting in that database were not counted as open, so a late commit was
    skipped."""
    import pymysql

    other = f"{my_db}_src"

    def session(autocommit: bool = True) -> pymysql.connections.Connection:
        return pymysql.connect(host="127.0.0.1", user="root", database=other, autocommit=autocommit)

    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{other}`")
    try:
        with session() as con, con.cursor() as cur:
            cur.execute(
                "CREATE TABLE orders (id BIGINT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, "
                "amount DECIMAL(10,2), name VARCHAR(50)) ENGINE=InnoDB"
            )
            cur.execute("INSERT INTO orders VALUES (1, NOW(6) - INTERVAL 1 HOUR, 1, 'a')")
        load = {"strategy": "append", "primary_key": []}
        pipeline = spec("my_other", source={"schema": other}, load=load)
        urls = {"source_url": f"mysql://root@127.0.0.1:3306/{my_db}", "target_url": duck_url}
        run_pipeline(pipeline, **urls).raise_for_status()
        t1 = session(autocommit=False)
        with t1.cursor() as cur:
            cur.execute("START TRANSACTION")
            cur.execute("INSERT INTO orders VALUES (1001, NOW(6), 1, 't1')")
        time.sleep(1.1)  # InnoDB reports transaction starts to the second
        with session() as t2, t2.cursor() as cur:
            cur.execute("INSERT INTO orders VALUES (1002, NOW(6), 2, 't2')")
        loaded = run_pipeline(pipeline, **urls).raise_for_status().rows_loaded
        t1.commit()
        t1.close()
        for _ in range(20):
            loaded += run_pipeline(pipeline, **urls).raise_for_status().rows_loaded
            if loaded >= 2:
                break
            time.sleep(0.25)
        ids = [r[0] for r in duck_rows(duck_url.removeprefix("duckdb:///"), "my_other")]
        assert ids == [1, 1001, 1002]
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE `{other}`")
        admin.close()


@pytest.mark.integration
def test_an_unconstrained_numeric_keeps_one_type_across_windows(pg_schema, duck_url):
    """The type of an unconstrained ``numeric`` followed the values of each read: a first
    load of whole numbers made DECIMAL(38,0), and the first 1.5 was then a type change no
    decimal holds, failing every later run."""
    with pg() as con:
        con.execute(
            f'CREATE TABLE "{pg_schema}".orders (id bigint PRIMARY KEY, '
            "updated_at timestamptz NOT NULL DEFAULT now(), amount numeric, name text)"
        )
        con.execute(f'INSERT INTO "{pg_schema}".orders (id, amount) VALUES (1, 10), (2, NULL)')
    pipeline = spec("loose", source={"schema": pg_schema})
    urls = {"source_url": PG_URL, "target_url": duck_url}
    run_pipeline(pipeline, **urls).raise_for_status()
    with pg() as con:
        con.execute(
            f'INSERT INTO "{pg_schema}".orders (id, amount) VALUES (3, 1.5), (4, 0.0000000001)'
        )
    run_pipeline(pipeline, **urls).raise_for_status()
    got = duck_rows(duck_url.removeprefix("duckdb:///"), "loose")
    assert [row[2] for row in got] == [10, None, Decimal("1.5"), Decimal("1E-10")]


def _rows_written_around_runs(write, run) -> None:
    """Rows stamped in the same second as a run, just before and just after it.

    The last run comes 1.9 s after the last write: a column that rounds to the second
    (PostgreSQL ``timestamp(0)``) may stamp a row up to 0.5 s after it was written, and a
    run reads only the seconds that are over (1.4 s failed now and then)."""
    for _ in range(5):
        write()
        run()
        write()
        time.sleep(0.3)
    time.sleep(1.6)
    run()


@pytest.mark.integration
def test_a_second_precision_postgres_cursor_misses_no_row(pg_schema, duck_url):
    """timestamptz(0) rounds 10:00:00.3 to 10:00:00: a bound of 10:00:00.4 skipped every
    row a later transaction stamped inside the same second."""
    with pg() as con:
        con.execute(
            f'CREATE TABLE "{pg_schema}".orders (id bigint PRIMARY KEY, updated_at '
            "timestamptz(0) NOT NULL DEFAULT clock_timestamp(), amount numeric(10,2), name text)"
        )
    ids = iter(range(1, 100))
    pipeline = spec(
        "coarse", source={"schema": pg_schema}, load={"strategy": "append", "primary_key": []}
    )
    urls = {"source_url": PG_URL, "target_url": duck_url}

    def write() -> None:
        with pg() as con:
            con.execute(f'INSERT INTO "{pg_schema}".orders (id) VALUES (%s)', [next(ids)])

    _rows_written_around_runs(write, lambda: run_pipeline(pipeline, **urls).raise_for_status())
    assert duck_rows(duck_url.removeprefix("duckdb:///"), "coarse") == pg_rows(pg_schema)


@pytest.mark.integration
def test_a_mariadb_datetime_cursor_misses_no_row(my_db, duck_url):
    """MariaDB's DATETIME keeps whole seconds (the fraction is cut): a row written just
    after a run, in the run's second, fell below the next window and never loaded."""
    import pymysql

    con = pymysql.connect(host="127.0.0.1", user="root", database=my_db, autocommit=True)
    with con.cursor() as cur:
        cur.execute(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, updated_at DATETIME NOT NULL, "
            "amount DECIMAL(10,2), name VARCHAR(50))"
        )
    ids = iter(range(1, 100))
    pipeline = spec("my_coarse", load={"strategy": "append", "primary_key": []})
    urls = {"source_url": f"mysql://root@127.0.0.1:3306/{my_db}", "target_url": duck_url}

    def write() -> None:
        with con.cursor() as cur:
            cur.execute("INSERT INTO orders (id, updated_at) VALUES (%s, NOW())", [next(ids)])

    try:
        _rows_written_around_runs(write, lambda: run_pipeline(pipeline, **urls).raise_for_status())
        with con.cursor() as cur:
            cur.execute("SELECT id FROM orders ORDER BY id")
            source = [r[0] for r in cur.fetchall()]
    finally:
        con.close()
    assert [r[0] for r in duck_rows(duck_url.removeprefix("duckdb:///"), "my_coarse")] == source


def test_null_cursor_always_applies_changes_to_null_cursor_rows(tmp_path):
    """NULL-cursor rows are re-read every run so their changes arrive; but the merge of
    a window compared the cursor alone, and NULL equals NULL: the change was dropped."""
    src, tgt = str(tmp_path / "src.duckdb"), str(tmp_path / "w.duckdb")
    make_duck_orders(src, 5)
    con = duckdb.connect(src)
    con.execute("INSERT INTO orders VALUES (100, NULL, 1, 'before')")
    con.close()
    urls = {"source_url": f"duckdb:///{src}", "target_url": f"duckdb:///{tgt}"}
    pipeline = spec("nchange", extract={"null_cursor": "always"})
    run_pipeline(pipeline, **urls).raise_for_status()
    con = duckdb.connect(src)
    con.execute("UPDATE orders SET name = 'after', amount = 2 WHERE id = 100")
    con.close()
    again = run_pipeline(pipeline, **urls).raise_for_status()
    assert again.load["updated"] == 1
    assert duck_rows(tgt, "nchange") == duck_rows(src)


@pytest.mark.integration
def test_an_incremental_window_of_a_two_dimensional_array_column(pg_schema, duck_url):
    """A query result does not carry an array's declared dimensions: the window read
    through ``postgres_query`` refused every ``int[][]`` value, so after the first (full)
    load every run failed. Such a table's windows are read through the catalog."""
    with pg() as con:
        con.execute(
            f'CREATE TABLE "{pg_schema}".orders (id bigint PRIMARY KEY, '
            "updated_at timestamptz NOT NULL DEFAULT now(), grid int[][])"
        )
        con.execute(
            f"INSERT INTO \"{pg_schema}\".orders (id, grid) VALUES (1, '{{{{1,2}},{{3,4}}}}')"
        )
    pipeline = spec("grid", source={"schema": pg_schema})
    urls = {"source_url": PG_URL, "target_url": duck_url}
    run_pipeline(pipeline, **urls).raise_for_status()
    with pg() as con:
        con.execute(
            f"INSERT INTO \"{pg_schema}\".orders (id, grid) VALUES (2, '{{{{5,6}},{{7,8}}}}')"
        )
    assert run_pipeline(pipeline, **urls).raise_for_status().rows_loaded == 1
    con = duckdb.connect(duck_url.removeprefix("duckdb:///"), read_only=True)
    grids = con.execute("SELECT grid FROM grid ORDER BY id").fetchall()
    con.close()
    assert grids == [([[1, 2], [3, 4]],), ([[5, 6], [7, 8]],)]


@pytest.mark.integration
def test_late_commit_under_a_query_naming_tables_through_the_search_path(pg_schema, duck_url):
    """A custom query names ``orders`` unqualified and the role's search_path finds it;
    the bound looked for writers of ``public.orders`` instead and let a late commit by."""
    make_pg_orders(pg_schema, 10)
    url = f"{PG_URL}?options=-c%20search_path%3D{pg_schema}"
    query = "SELECT id, updated_at, amount, name FROM orders"
    append = {"strategy": "append", "primary_key": []}
    pipeline = spec("pathq", source={"table": None, "query": query}, load=append)
    urls = {"source_url": url, "target_url": duck_url}
    insert = f'INSERT INTO "{pg_schema}".orders (id, amount, name) VALUES'
    late, early = f"{insert} (1001, 1, 't1')", f"{insert} (1002, 1, 't2')"
    _late_commit_is_loaded(pipeline, urls, pg_schema, late, early)
