"""Values at the edges of their types, through whole runs on the real engines.

Each of these once failed a run with a driver error or changed a value silently; each
must now load exactly (or, where it cannot, be quarantined naming column and reason).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from _runner_helpers import PG_DSN, PG_URL, spec

from crane.connectors.base import connect
from crane.pipelines.runner import run_pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_database() -> Iterator[str]:
    name = f"t_edge_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


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
