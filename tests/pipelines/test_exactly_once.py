"""Exactly-once: SIGKILL a run at each named point, rerun, and the target equals the source.

Each kill happens in a real child process (``CRANE_TEST_KILL_AT=<point>`` makes the
runner SIGKILL itself there); the rerun happens here. Between points the source
keeps changing (new rows, updated rows), so every kill interrupts a load that
has real work to do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import duckdb
import pytest
from _runner_helpers import (
    COLUMNS,
    PG_URL,
    duck_change,
    duck_rows,
    make_duck_orders,
    make_pg_orders,
    normalize,
    pg_change,
    pg_rows,
    spec,
)

from crane.pipelines.runner import CRASH_ENV, CRASH_POINTS, run_pipeline

CHILD = """
import sys
from crane.config.spec import PipelineSpec
from crane.pipelines.runner import run_pipeline
spec = PipelineSpec.model_validate_json(sys.argv[1])
result = run_pipeline(spec, source_url=sys.argv[2], target_url=sys.argv[3])
sys.exit(0 if result.ok else 1)
"""

# the streaming route (PostgreSQL window query -> Arrow batches -> DuckDB), with a transform
STREAM_POINTS = [
    "lock:acquired",
    "extract:planned",
    "stage:batch",
    "stage:done",
    "transform:done",
    "validate:before",
    "validate:after",
    "schema:after",
    "publish:after",
    "state:watermark",
    "commit:before",
    "commit:after",
]
# the in-engine route (DuckDB attaches the source; rows never enter Python)
PG_IN_ENGINE_POINTS = ["stage:created", "validate:after", "publish:after", "commit:before"]
IN_ENGINE_POINTS = [
    "stage:created",
    "schema:after",
    "publish:after",
    "commit:before",
    "commit:after",
]


def _kill_at(point: str, pipeline, source_url: str, target_url: str) -> None:
    env = {**os.environ, CRASH_ENV: point}
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            pipeline.model_dump_json(by_alias=True),
            source_url,
            target_url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, (point, child.returncode, child.stderr[-2000:])


def _state(target_path: str, pipeline: str) -> tuple[list, list]:
    con = duckdb.connect(target_path, read_only=True)
    try:
        marks = con.execute(
            "SELECT value, run_id FROM _crane.watermarks WHERE pipeline = ?", [pipeline]
        ).fetchall()
        runs = con.execute(
            "SELECT run_id, status, watermark_after, rows_in, rows_loaded + rows_quarantined "
            "FROM _crane.runs WHERE pipeline = ? ORDER BY started_at",
            [pipeline],
        ).fetchall()
        return marks, runs
    finally:
        con.close()


def _pg_pipeline(schema: str, route: str):
    if route == "in-engine":  # DuckDB attaches PostgreSQL and pushes the window down
        return spec("eo_pg", source={"schema": schema}, target={"table": "orders"})
    query = f'SELECT id, updated_at, amount, name FROM "{schema}".orders'
    return spec(
        "eo_pg",
        source={"table": None, "query": query},  # a query source streams Arrow batches
        target={"table": "orders"},
        transform="SELECT id, updated_at, amount, name FROM source",
    )


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize(
    ("route", "points"), [("streaming", STREAM_POINTS), ("in-engine", PG_IN_ENGINE_POINTS)]
)
def test_kill_anywhere_then_rerun_equals_postgres_source(pg_schema, tmp_path, route, points):
    target_path = str(tmp_path / "w.duckdb")
    target_url = f"duckdb:///{target_path}"
    make_pg_orders(pg_schema, 3000)
    pipeline = _pg_pipeline(pg_schema, route)
    committed = 0
    for number, point in enumerate(points):
        pg_change(pg_schema, 10_000 + number * 1000, 600)  # > 1 batch of 500 every time
        _kill_at(point, pipeline, PG_URL, target_url)
        committed += point == "commit:after"
        rerun = run_pipeline(pipeline, source_url=PG_URL, target_url=target_url)
        assert rerun.ok, (point, rerun.error)
        committed += 1
        assert normalize(duck_rows(target_path)) == normalize(pg_rows(pg_schema)), point
        marks, runs = _state(target_path, "eo_pg")
        assert len(marks) == 1 and marks[0][1] == runs[-1][0], point  # state of the last run
        assert [r[1] for r in runs] == ["success"] * committed, point
        assert all(r[3] == r[4] for r in runs)  # rows_in = loaded + quarantined


@pytest.mark.slow
def test_kill_anywhere_then_rerun_equals_duckdb_source(tmp_path):
    source_path, target_path = str(tmp_path / "src.duckdb"), str(tmp_path / "w.duckdb")
    source_url, target_url = f"duckdb:///{source_path}", f"duckdb:///{target_path}"
    make_duck_orders(source_path, 2000)
    pipeline = spec("eo_duck", target={"table": "orders"}, extract={"strategy": "full"})
    for number, point in enumerate(IN_ENGINE_POINTS):
        duck_change(source_path, 10_000 + number * 100, 50)
        _kill_at(point, pipeline, source_url, target_url)
        rerun = run_pipeline(pipeline, source_url=source_url, target_url=target_url)
        assert rerun.ok, (point, rerun.error)
        assert duck_rows(target_path) == duck_rows(source_path), point
        _, runs = _state(target_path, "eo_duck")
        assert runs[-1][1] == "success"


@pytest.mark.slow
def test_kill_anywhere_then_rerun_equals_source_with_replace_by_rename(tmp_path):
    """``replace`` into DuckDB stages beside the target and renames it at publish."""
    source_path, target_path = str(tmp_path / "src.duckdb"), str(tmp_path / "w.duckdb")
    source_url, target_url = f"duckdb:///{source_path}", f"duckdb:///{target_path}"
    make_duck_orders(source_path, 2000)
    pipeline = spec(
        "eo_rep",
        target={"table": "orders"},
        extract={"strategy": "full"},
        load={"strategy": "replace", "primary_key": ["id"]},
    )
    for number, point in enumerate(IN_ENGINE_POINTS):
        duck_change(source_path, 10_000 + number * 100, 50)
        _kill_at(point, pipeline, source_url, target_url)
        rerun = run_pipeline(pipeline, source_url=source_url, target_url=target_url)
        assert rerun.ok, (point, rerun.error)
        assert duck_rows(target_path) == duck_rows(source_path), point
        con = duckdb.connect(target_path, read_only=True)
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('_crane') ORDER BY 1, 2"
        ).fetchall()
        con.close()
        assert tables == [("main", "orders")], point  # staged table renamed, nothing left


@pytest.mark.integration
@pytest.mark.slow
def test_kill_then_rerun_with_a_postgres_target(pg_schema):
    """State lives in the target's ``_crane`` schema: a killed session's work rolls back."""
    import uuid

    import psycopg

    from crane.connectors.base import connect

    name = f"t_eo_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    target_url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        make_pg_orders(pg_schema, 2000)
        pipeline = spec("eo_pgt", source={"schema": pg_schema}, target={"table": "orders"})
        for number, point in enumerate(["stage:batch", "publish:after", "commit:before"]):
            pg_change(pg_schema, 10_000 + number * 1000, 300)
            _kill_at(point, pipeline, PG_URL, target_url)
            rerun = run_pipeline(pipeline, source_url=PG_URL, target_url=target_url, wait=True)
            assert rerun.ok, (point, rerun.error)
            with connect(target_url) as target:
                rows = target.fetch(f"SELECT {COLUMNS} FROM public.orders ORDER BY id")
                runs = target.fetch("SELECT status FROM _crane.runs")
            assert normalize(rows) == normalize(pg_rows(pg_schema)), point
            assert runs == [("success",)] * (number + 1), point
    finally:
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_every_tested_point_exists_in_the_runner():
    tested = set(STREAM_POINTS) | set(PG_IN_ENGINE_POINTS) | set(IN_ENGINE_POINTS)
    assert tested <= set(CRASH_POINTS) and len(tested) >= 10
