"""The runner end to end on real engines: metrics, run records, progress, lineage, failures."""

from __future__ import annotations

import json
from decimal import Decimal

import duckdb
import psycopg
import pytest
from _runner_helpers import (
    PG_URL,
    duck_rows,
    make_pg_orders,
    normalize,
    pg,
    pg_change,
    pg_rows,
    spec,
)

from crane.connectors.base import connect
from crane.pipelines.lineage import LineageEmitter
from crane.pipelines.runner import list_runs, run_pipeline


class RecordingConsole:
    """A real Console implementation that remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def info(self, message: str) -> None:
        self.calls.append(("info", message))

    def warn(self, message: str) -> None:
        self.calls.append(("warn", message))

    def start_task(self, name: str, total: int | None = None) -> None:
        self.calls.append(("start", name))

    def advance(self, name: str, rows: int) -> None:
        self.calls.append(("advance", name, rows))

    def finish_task(self, name: str) -> None:
        self.calls.append(("finish", name))


@pytest.mark.integration
def test_run_metrics_record_progress_and_lineage(pg_schema, duck_url, tmp_path):
    make_pg_orders(pg_schema, 2000)
    pipeline = spec("metrics", source={"schema": pg_schema})
    console, lineage = RecordingConsole(), LineageEmitter(file=tmp_path / "lineage.jsonl")
    urls = {"source_url": PG_URL, "target_url": duck_url}
    first = run_pipeline(pipeline, console=console, lineage=lineage, **urls).raise_for_status()
    assert (first.rows_extracted, first.rows_loaded, first.rows_quarantined) == (2000, 2000, 0)
    assert first.bytes > 2000 * 8 and first.throughput > 0 and first.attempts == 1
    assert {"plan", "extract", "validate", "schema", "publish", "state"} <= set(first.phases)
    assert first.watermark_before is None and first.watermark_after is not None
    assert first.schema_diff and first.schema_diff["new_table"] is True
    assert [c[0] for c in console.calls] == ["start", "advance", "finish"]  # in-engine: one step
    assert console.calls[1] == ("advance", "metrics", 2000)

    pg_change(pg_schema, 5000, 10)
    second = run_pipeline(pipeline, lineage=lineage, **urls).raise_for_status()
    assert second.watermark_before == first.watermark_after
    assert second.rows_extracted == 10 + 21  # 10 new rows, 21 updated (id % 97 == 53)
    records = list_runs(duck_url, 10)
    assert [r["run_id"] for r in records] == [second.run_id, first.run_id]
    latest = records[0]
    assert latest["status"] == "success" and latest["rows_in"] == 31
    assert latest["rows_loaded"] == 31 and latest["watermark_after"] is not None
    assert set(latest["phases"]) >= {"plan", "extract", "validate", "publish", "state"}
    events = [json.loads(line) for line in (tmp_path / "lineage.jsonl").read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE", "START", "COMPLETE"]
    # the first run created the target: its COMPLETE event still carries the output schema
    for dataset in (events[1]["outputs"][0], events[-1]["inputs"][0], events[-1]["outputs"][0]):
        fields = [f["name"] for f in dataset["facets"]["schema"]["fields"]]
        assert fields == ["id", "updated_at", "amount", "name"]
    assert normalize(duck_rows(duck_url.removeprefix("duckdb:///"), "metrics")) == normalize(
        pg_rows(pg_schema)
    )


@pytest.mark.integration
def test_streamed_rows_report_progress_per_batch(pg_schema, duck_url):
    make_pg_orders(pg_schema, 2000)
    query = f'SELECT * FROM "{pg_schema}".orders'  # a query source streams Arrow batches
    pipeline = spec("batches", source={"table": None, "query": query}, extract={"strategy": "full"})
    console = RecordingConsole()
    run_pipeline(pipeline, source_url=PG_URL, target_url=duck_url, console=console)
    advances = [c[2] for c in console.calls if c[0] == "advance"]
    assert advances == [500, 500, 500, 500]  # one progress step per batch, never per row
    assert console.calls[0] == ("start", "batches") and console.calls[-1] == ("finish", "batches")


@pytest.mark.integration
def test_postgres_to_postgres_keeps_state_in_the_target(pg_schema, pg_database):
    make_pg_orders(pg_schema, 1500)
    pipeline = spec("pg2pg", source={"schema": pg_schema}, target={"schema": "public"})
    run_pipeline(pipeline, source_url=PG_URL, target_url=pg_database).raise_for_status()
    pg_change(pg_schema, 9000, 25)
    second = run_pipeline(pipeline, source_url=PG_URL, target_url=pg_database)
    assert second.ok, second.error
    with connect(pg_database) as target:
        rows = target.fetch("SELECT id, updated_at, amount, name FROM public.pg2pg ORDER BY id")
        marks = target.fetch("SELECT count(*) FROM _crane.watermarks WHERE pipeline = 'pg2pg'")
        runs = target.fetch("SELECT count(*) FROM _crane.runs WHERE status = 'success'")
    assert normalize(rows) == normalize(pg_rows(pg_schema))
    assert marks == [(1,)] and runs == [(2,)]
    assert [r["run_id"] for r in list_runs(pg_database, 5)][0] == second.run_id


@pytest.mark.integration
def test_sqlite_to_postgres_window_with_nothing_new(tmp_path, pg_database):
    """A streamed window that finds no rows is typed like its table: the second run used to
    fail its schema check ('column id: type changed from int64 to string')."""
    import sqlite3

    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount DECIMAL(10,2),"
                    " updated_at TIMESTAMP)")  # fmt: skip
        con.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)",
            [(i, f"{i}.25", f"2024-01-01 00:00:{i:02d}") for i in range(1, 21)],
        )
    source = f"sqlite:///{path}"
    pipeline = spec("shop", target={"schema": "public"})
    run_pipeline(pipeline, source_url=source, target_url=pg_database).raise_for_status()
    quiet = run_pipeline(pipeline, source_url=source, target_url=pg_database)
    assert quiet.ok, quiet.error
    assert quiet.rows_extracted == 0
    with sqlite3.connect(path) as con:
        con.execute("UPDATE orders SET amount = 1.50, updated_at = '2024-01-02' WHERE id = 7")
    run_pipeline(pipeline, source_url=source, target_url=pg_database).raise_for_status()
    with connect(pg_database) as target:
        rows = target.fetch("SELECT count(*), sum(amount) FROM public.shop")
    assert rows == [(20, Decimal("209.25"))]  # 1.25 + ... + 20.25, with id 7 now 1.50


@pytest.mark.integration
def test_transform_runs_in_the_target_over_source(pg_schema, duck_url):
    make_pg_orders(pg_schema, 100)
    pipeline = spec(
        "shaped",
        source={"schema": pg_schema},
        transform="SELECT id, upper(name) AS name, amount * 2 AS doubled FROM source WHERE id < 11",
    )
    result = run_pipeline(pipeline, source_url=PG_URL, target_url=duck_url).raise_for_status()
    assert result.rows_extracted == 100 and result.rows_loaded == 10
    pg_change(pg_schema, 101, 3)  # ids 101-103 new, id 4 updated: a window of 4 rows
    second = run_pipeline(pipeline, source_url=PG_URL, target_url=duck_url).raise_for_status()
    assert second.rows_extracted == 4 and second.rows_loaded == 1
    con = duckdb.connect(duck_url.removeprefix("duckdb:///"), read_only=True)
    assert con.execute("SELECT id, name, doubled FROM shaped ORDER BY id LIMIT 1").fetchall() == [
        (1, "NAME 1", 2.5)
    ]
    assert con.execute("SELECT name FROM shaped WHERE id = 4").fetchall() == [("NAME 4+",)]
    assert con.execute("SELECT count(*) FROM shaped").fetchall() == [(10,)]
    leftovers = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = '_crane_staging'"
    ).fetchall()
    con.close()
    assert leftovers == [(0,)]


@pytest.mark.integration
def test_failed_run_is_recorded_and_changes_nothing(pg_schema, duck_url):
    make_pg_orders(pg_schema, 200)
    pipeline = spec("strict", source={"schema": pg_schema})
    urls = {"source_url": PG_URL, "target_url": duck_url}
    first = run_pipeline(pipeline, **urls).raise_for_status()
    with pg() as con:  # a new column with a type the target column cannot take
        con.execute(f'ALTER TABLE "{pg_schema}".orders ALTER COLUMN amount TYPE text')
        con.execute(f"UPDATE \"{pg_schema}\".orders SET amount = 'n/a', updated_at = now()")
    failed = run_pipeline(pipeline, **urls)
    assert failed.status == "failed" and "amount" in (failed.error or "")
    records = list_runs(duck_url, 5)
    assert [r["status"] for r in records] == ["failed", "success"]
    assert records[0]["error"] and records[0]["watermark_after"] is None
    # the schema change refused the batch after validation: nothing counts as loaded
    assert failed.rows_loaded == 0 and records[0]["rows_loaded"] == 0
    con = duckdb.connect(duck_url.removeprefix("duckdb:///"), read_only=True)
    mark = con.execute("SELECT value FROM _crane.watermarks").fetchall()
    amounts = con.execute("SELECT count(*) FROM strict WHERE amount IS NOT NULL").fetchall()
    con.close()
    assert amounts == [(200,)]  # the target still holds the first load, untouched
    assert mark == [(first.watermark_after.isoformat(),)]


def test_list_runs_of_a_missing_warehouse_is_empty(tmp_path):
    assert list_runs(f"duckdb:///{tmp_path / 'none.duckdb'}", 5) == []


@pytest.mark.integration
def test_long_pipeline_and_table_names_on_postgres(pg_schema, pg_database):
    """``<pipeline>__<table>`` past 63 bytes: PostgreSQL cut it, and cut a helper name
    (``…__crane_typed``) back to the very same name, so dropping the helper dropped
    staging and every run with a typed column failed."""
    with pg() as con:
        con.execute(f'CREATE TABLE "{pg_schema}".o (id int PRIMARY KEY, price text)')
        con.execute(f"INSERT INTO \"{pg_schema}\".o SELECT g, '1.50' FROM generate_series(1, 20) g")
    table = "customer_addresses_history_snapshot"
    pipeline = spec(
        "customer_addresses_history_daily_load",
        source={"table": "o", "schema": pg_schema},
        target={"table": table},
        extract={"strategy": "full"},
        load={"strategy": "merge", "primary_key": ["id"], "hard_deletes": "delete"},
        columns={"price": {"type": "decimal(10,2)"}},
    )
    urls = {"source_url": PG_URL, "target_url": pg_database}
    run_pipeline(pipeline, **urls).raise_for_status()
    with pg() as con:
        con.execute(f"UPDATE \"{pg_schema}\".o SET price = 'x' WHERE id = 3")
    second = run_pipeline(pipeline, **urls).raise_for_status()
    assert (second.rows_loaded, second.rows_quarantined) == (19, 1)
    with psycopg.connect(pg_database) as con:
        assert con.execute(f'SELECT count(*) FROM "{table}"').fetchall() == [(20,)]


def test_a_source_in_the_warehouse_itself_bronze_to_silver(tmp_path):
    """A medallion step reads a table of the warehouse file it writes: the source was
    opened read-only beside the read-write target ("already open in this process with
    other settings"), then attached a second time. Both now share the one open file."""
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE SCHEMA bronze; CREATE TABLE bronze.orders AS SELECT i AS id, TIMESTAMP "
        "'2024-01-01' + i * INTERVAL 1 MINUTE AS updated_at, i * 1.5 AS amount, 'n' AS name "
        "FROM range(1, 101) t(i)"
    )
    con.close()
    url = f"duckdb:///{path}"
    silver = spec(
        "silver",
        source={"table": "orders", "schema": "bronze"},
        target={"table": "orders", "schema": "silver"},
    )
    assert (
        run_pipeline(silver, source_url=url, target_url=url).raise_for_status().rows_loaded == 100
    )
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO bronze.orders VALUES (101, TIMESTAMP '2025-01-01', 1, 'new')")
    con.close()
    assert run_pipeline(silver, source_url=url, target_url=url).raise_for_status().rows_loaded == 1
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT count(*) FROM silver.orders").fetchall() == [(101,)]
    con.close()
