"""``crane dag``: list, validate, show (text and Mermaid), run (params, --from), runs (--json)."""

import json
import textwrap

import pytest

from crane.cli import run_cli

DAILY = """\
description: orders, then a summary and a report
params: {who: world}
pools: {source_db: 1}
tasks:
  - {name: load_orders, pipeline: orders_etl, pool: source_db}
  - name: summary
    sql: "CREATE OR REPLACE TABLE summary AS SELECT count(*) AS n FROM orders"
    depends_on: [load_orders]
groups:
  report:
    depends_on: [summary]
    tasks:
      - {name: hello, command: "echo hello {{ params.who }}"}
      - {name: gate, command: "test -f gate.flag"}
      - {name: done, command: "echo done", depends_on: [gate]}
"""


def crane(capsys, *args):
    code = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path, capsys, monkeypatch):
    for var in ("SOURCE_DB_HOST", "SOURCE_DB_NAME", "CRANE_WAREHOUSE", "CRANE_DAG_HISTORY"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "shop"
    assert crane(capsys, "init", root)[0] == 0
    (root / "dags").mkdir()
    (root / "dags" / "daily.yml").write_text(DAILY)
    monkeypatch.chdir(root)
    return root


def test_list_validate_show(project, capsys):
    code, out, _ = crane(capsys, "dag", "list", "--json")
    assert code == 0
    assert json.loads(out) == [
        {
            "dag": "daily",
            "tasks": 5,
            "schedule": None,
            "description": "orders, then a summary and a report",
        }
    ]
    code, out, _ = crane(capsys, "dag", "validate")
    assert code == 0 and out.startswith("ok: 1 DAG(s), 5 task(s), parsed in ")
    code, out, _ = crane(capsys, "dag", "show", "daily")
    assert code == 0 and "layer 3" in out
    assert "● hello  [shell: echo hello {{ params.who }}; group report]  ← summary" in out
    code, out, _ = crane(capsys, "dag", "show", "daily", "--mermaid")
    assert out.startswith("---\ntitle: daily\n---\nflowchart TD\n")
    assert 'subgraph g_report["report"]' in out and "t0 --> t1" in out


def test_validate_reports_cycles_and_unknown_pipelines(project, capsys):
    (project / "dags" / "bad.yml").write_text(
        textwrap.dedent("""\
            tasks:
              - {name: a, command: x, depends_on: [b]}
              - {name: b, command: x, depends_on: [a]}
            """)
    )
    code, _, err = crane(capsys, "dag", "validate")
    assert code == 1 and "dags/bad.yml" in err and "dependency cycle: a → b → a" in err
    (project / "dags" / "bad.yml").write_text("tasks: [{name: a, pipeline: order_etl}]\n")
    code, _, err = crane(capsys, "dag", "validate", "bad")
    assert code == 1 and "unknown pipeline 'order_etl'" in err


def test_run_fail_resume_and_history(project, capsys):
    code, out, err = crane(
        capsys, "dag", "run", "daily", "--param", "who=crane", "--date", "2024-01-02", "--json"
    )
    assert code == 1, err
    first = json.loads(out)
    states = {t["task"]: t["state"] for t in first["tasks"]}
    assert states == {
        "load_orders": "success",
        "summary": "success",
        "hello": "success",
        "gate": "failed",
        "done": "upstream_failed",
    }
    assert {t["task"]: t["output"] for t in first["tasks"]}["hello"] == "hello crane"

    (project / "gate.flag").write_text("")
    code, out, err = crane(capsys, "dag", "run", "daily", "--from", "gate", "--json")
    assert code == 0, err
    second = json.loads(out)
    assert second["resumed_from"] == first["run_id"]
    states = {t["task"]: t["state"] for t in second["tasks"]}
    assert states["load_orders"] == "success (kept)" and states["done"] == "success"

    code, out, _ = crane(capsys, "dag", "runs", "--json")
    runs = json.loads(out)
    assert [r["state"] for r in runs] == ["success", "failed"]
    assert runs[0]["params"] == {"who": "crane"}  # the resumed run keeps the first run's params
    for run in runs:
        assert run["logical_date"].startswith("2024-01-02T00:00:00")
        assert run["data_interval_end"].startswith("2024-01-03T00:00:00")
    code, out, _ = crane(capsys, "dag", "runs", first["run_id"][:10], "--json")
    attempts = {a["task"]: a for a in json.loads(out)["attempts"]}
    assert (
        attempts["gate"]["state"] == "failed" and "exited with code 1" in attempts["gate"]["error"]
    )
    assert attempts["hello"]["log_path"].endswith("hello.1.log")
    code, out, _ = crane(capsys, "dag", "runs")
    assert code == 0 and "DAG runs" in out and first["run_id"][:12] in out
