"""Values at the edges of their types, through whole runs on the real engines.

Each of these once failed a run with a driver error or changed a value silently; each
must now load exactly (or, where it cannot, be quarantined naming column and reason).
"""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from _runner_helpers import PG_DSN, PG_URL, make_pg_orders, spec

from crane.connectors.base import connect
from crane.pipelines.runner import run_pipeline

pytestmark = pytest.mark.integration


def _source(schema: str, ddl: str, rows: str) -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(f'CREATE TABLE "{schema}".edges ({ddl})')
        con.execute(f'INSERT INTO "{schema}".edges VALUES {rows}')


def _as_text(url: str, table: str, columns: str) -> list[tuple]:
    with connect(url) as con:
        return con.fetch(f"SELECT {columns} FROM {table} ORDER BY id")


def _full(name: str, schema: str) -> object:
    return spec(
        name,
        source={"schema": schema, "table": "edges"},
        target={"schema": "public"},
        extract={"strategy": "full", "cursor": None},
        load={"strategy": "replace", "primary_key": ["id"]},
    )


def test_two_dimensional_arrays_postgres_to_postgres(pg_schema, pg_database):
    """``int[][]`` failed the whole run: the scanner expected every value of the declared
    depth ('Expected an array with 2 dimensions'), and refused 2-D values through its query
    route. Now each value arrives exactly, in a column of the same type."""
    _source(
        pg_schema,
        "id int PRIMARY KEY, m int[][], t text[][]",
        "(1, '{{1,2},{3,4}}', '{{a,\"b c\"},{NULL,d}}'), (2, '{5,6}', '{x}'), (3, NULL, NULL),"
        " (4, '{}', '{{\"q\\\"\",e}}')",
    )
    run = run_pipeline(_full("grid", pg_schema), source_url=PG_URL, target_url=pg_database)
    assert run.ok, run.error
    columns = "id, m::text, t::text, pg_typeof(m)::text"
    source = _as_text(PG_URL, f'"{pg_schema}".edges', columns)
    assert _as_text(pg_database, "public.grid", columns) == source
    assert source[0] == (1, "{{1,2},{3,4}}", '{{a,"b c"},{NULL,d}}', "integer[]")


def test_infinite_timestamps_and_dates_postgres_to_postgres(pg_schema, pg_database):
    """'infinity' and '-infinity' in timestamp, timestamptz and date columns failed the
    whole run with the bulk loader's bare 'Error occurred writing COPY data'. They load
    exactly, beside the finite values of the same batch."""
    _source(
        pg_schema,
        "id int PRIMARY KEY, ts timestamp, tz timestamptz, d date",
        "(1, 'infinity', '-infinity', 'infinity'), (2, '2024-02-29 10:00:00.123456',"
        " '2024-01-01 00:00+05', '2024-02-29'), (3, '-infinity', 'infinity', '-infinity'),"
        " (4, NULL, NULL, NULL), (5, '1999-12-31 23:59:59.999999', '0001-01-01 00:00+00',"
        " '0001-01-01')",
    )
    pipeline = _full("ends", pg_schema)
    for _ in range(2):  # a new table, then the same table replaced
        run = run_pipeline(pipeline, source_url=PG_URL, target_url=pg_database)
        assert run.ok, run.error
        assert run.rows_loaded == 5
        columns = "id, ts::text, tz::text, d::text"
        assert _as_text(pg_database, "public.ends", columns) == _as_text(
            PG_URL, f'"{pg_schema}".edges', columns
        )


def _nan_orders(schema: str) -> None:
    """``orders`` (the helpers' shape: numeric(10,2) amount), one row of them NaN."""
    make_pg_orders(schema, 300)
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(f"UPDATE \"{schema}\".orders SET amount = 'NaN' WHERE id = 7")


def _warehouse_amounts(duck_url: str) -> list[tuple]:
    with connect(duck_url) as con:
        return con.fetch("SELECT id, amount FROM main.nan ORDER BY id LIMIT 8")


def test_nan_in_a_bounded_numeric_fails_a_window_naming_the_column(pg_schema, duck_url):
    """DuckDB's scanner reads a NaN into a decimal as 0: an incremental window loaded
    numeric(10,2) 'NaN' as 0.00 without a word. The window's own query refuses it."""
    make_pg_orders(pg_schema, 300)
    pipeline = spec("nan", source={"schema": pg_schema})
    run_pipeline(pipeline, source_url=PG_URL, target_url=duck_url).raise_for_status()
    before = _warehouse_amounts(duck_url)
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(
            f"UPDATE \"{pg_schema}\".orders SET amount = 'NaN', updated_at = now() WHERE id = 7"
        )
    second = run_pipeline(pipeline, source_url=PG_URL, target_url=duck_url)
    assert not second.ok
    assert "column amount of" in str(second.error) and "orders" in str(second.error)
    assert "holds NaN" in str(second.error)
    assert _warehouse_amounts(duck_url) == before  # nothing published


def test_nan_seen_by_statistics_fails_a_full_load_naming_the_column(pg_schema, duck_url):
    """A full load reads through the attached catalog (the fast route, which cannot check
    values): when ANALYZE saw a NaN in a numeric(p,s) column, it fails before loading."""
    _nan_orders(pg_schema)
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(f'ANALYZE "{pg_schema}".orders')
    pipeline = spec("nan", source={"schema": pg_schema}, extract={"strategy": "full"})
    run = run_pipeline(pipeline, source_url=PG_URL, target_url=duck_url)
    assert not run.ok
    assert "column amount of" in str(run.error) and "holds NaN" in str(run.error)


def test_nan_unseen_by_statistics_loads_as_zero_in_a_full_load(pg_schema, duck_url):
    """Pins the limit written in crane.connectors.postgres's docstring: a full load into
    DuckDB checks no value, so a NaN that the statistics do not show arrives as 0.00."""
    _nan_orders(pg_schema)
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(f'ALTER TABLE "{pg_schema}".orders ALTER COLUMN amount SET STATISTICS 0')
        con.execute(f'ANALYZE "{pg_schema}".orders')
    pipeline = spec("nan", source={"schema": pg_schema}, extract={"strategy": "full"})
    run_pipeline(pipeline, source_url=PG_URL, target_url=duck_url).raise_for_status()
    assert _warehouse_amounts(duck_url)[6] == (7, Decimal("0.00"))
