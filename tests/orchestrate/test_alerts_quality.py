"""A quality task failing at error severity stops downstream tasks and alerts (real DuckDB,
real HTTP server)."""

import json

import pytest
from _alert_servers import http_recorder

from crane.config.env import Environment
from crane.orchestrate.dag import Dag
from crane.orchestrate.executor import run_dag
from crane.project import Project

SUITE = """\
connection: warehouse
tables:
  orders:
    checks:
      - row_count: {min: 1}
      - not_null: [id]
      - unique: {column: id, severity: %s}
      - rule: {expression: "amount >= 0", severity: warn}
"""


@pytest.fixture
def project(tmp_path):
    import duckdb

    (tmp_path / "checks").mkdir()
    (tmp_path / "crane.yml").write_text("name: q\nwarehouse: duckdb:///warehouse.duckdb\n")
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute(
        "CREATE TABLE orders AS SELECT * FROM (VALUES (1, 5), (2, -1), (2, 3)) t(id, amount)"
    )
    con.close()
    return tmp_path


def _dag(url, project_root):
    dag = Dag("q", on_failure=[{"type": "webhook", "url": url}])
    dag.add("validate", check="orders", table="orders")
    dag.shell("publish", "echo published", depends_on=["validate"])
    dag.shell("page", "echo paging", depends_on=["validate"], trigger_rule="one_failed")
    return dag.spec


def test_error_severity_failure_stops_downstream_and_alerts(project, tmp_path):
    (project / "checks" / "orders.yml").write_text(SUITE % "error")
    web = http_recorder()
    try:
        loaded = Project.load(project, env=Environment.of({}))
        result = run_dag(_dag(web.url, project), project=loaded, log_dir=tmp_path / "logs")
        validate = result.tasks["validate"]
        assert validate.state == "failed" and validate.attempts == 1  # data errors: no retry
        assert "1 check(s) failed at error severity" in validate.error
        assert result.tasks["publish"].state == "upstream_failed"
        assert result.tasks["page"].state == "success"
        (post,) = web.wait_for(1)
        body = post["json"]
        assert body["event"] == "run_failed" and body["failed_tasks"] == ["validate"]
        assert any("fail" in line and "unique" in line for line in body["log_tail"])
        records = [
            json.loads(x) for x in (project / ".crane" / "alerts.jsonl").read_text().splitlines()
        ]
        assert [(r["event"], r["ok"], r["run_id"]) for r in records] == [
            ("run_failed", True, result.run_id)
        ]
    finally:
        web.shutdown()
        web.server_close()


def test_warnings_pass_unless_fail_on_warn(project):
    (project / "checks" / "orders.yml").write_text(SUITE % "warn")
    loaded = Project.load(project, env=Environment.of({}))
    dag = Dag("q2")
    dag.add("validate", check="orders")
    result = run_dag(dag.spec, project=loaded)
    assert result.ok, result.tasks["validate"].error
    assert result.tasks["validate"].output["warn"] == 2
    strict = Dag("q3")
    strict.add("validate", check="orders", fail_on="warn")
    assert run_dag(strict.spec, project=loaded).tasks["validate"].state == "failed"
