"""A DAG of real pipelines: SQLite source → DuckDB warehouse through the project API."""

import duckdb
import pytest

from crane.config.env import Environment
from crane.orchestrate.dag import Dag
from crane.orchestrate.executor import run_dag
from crane.orchestrate.history import HistoryStore
from crane.project import Project
from crane.templates import scaffold


@pytest.mark.slow
def test_pipelines_in_threads_and_a_process_share_the_warehouse(tmp_path):
    scaffold(tmp_path)
    project = Project.load(tmp_path, env=Environment.of({}))
    dag = Dag("load", max_workers=4)
    dag.pipeline("orders", "orders_etl")
    dag.pipeline("customers", "customers", isolation="process")
    dag.sql(
        "summary",
        "CREATE OR REPLACE TABLE summary AS SELECT {{ inputs.orders.rows_loaded }} AS loaded, "
        "(SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM customers) AS customers",
        depends_on=["orders", "customers"],
    )
    store = HistoryStore.open(tmp_path / ".crane" / "history.sqlite")
    try:
        result = run_dag(dag.spec, project=project, history=store, log_dir=tmp_path / "logs")
    finally:
        store.close()
    assert result.ok, {n: t.error for n, t in result.tasks.items()}
    assert result.tasks["orders"].output["rows_loaded"] == 1000
    assert result.tasks["customers"].output["rows_loaded"] == 200
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT * FROM summary").fetchall() == [(1000, 1000, 200)]
    finally:
        con.close()
