"""Callbacks and deadlines through the real executor, to a real HTTP server on loopback."""

import time

import pytest
from _alert_servers import free_port, http_recorder

from crane.orchestrate.alerts import AlertManager, Deadline, parse_duration
from crane.orchestrate.dag import Dag
from crane.orchestrate.executor import run_dag


@pytest.fixture
def web():
    server = http_recorder()
    yield server
    server.shutdown()
    server.server_close()


def _events(web, count):
    return [(p["json"]["event"], p["json"]["task"]) for p in web.wait_for(count)]


def test_failure_stops_downstream_and_alerts_with_log_tail(tmp_path, web):
    dag = Dag("nightly", notifiers={"hook": {"type": "webhook", "url": web.url}})
    dag.settings["on_failure"] = ["hook"]
    dag.shell("check", "echo checking orders; echo 'error severity: 3 nulls'; exit 1")
    dag.shell("load", "echo loading", depends_on=["check"], on_failure=["hook"])
    result = run_dag(dag.spec, log_dir=tmp_path)
    assert result.tasks["check"].state == "failed"
    assert result.tasks["load"].state == "upstream_failed"  # downstream stopped
    (post,) = web.wait_for(1)
    body = post["json"]
    assert body["event"] == "run_failed" and body["failed_tasks"] == ["check"]
    assert body["run_id"] == result.run_id and body["state"] == "failed"
    assert "exit" in body["error"]
    assert "error severity: 3 nulls" in body["log_tail"]


def test_retry_and_success_callbacks(tmp_path, web):
    marker = tmp_path / "tried"
    hook = {"type": "webhook", "url": web.url}
    dag = Dag("flaky", on_success=[hook])
    # fails the first time, succeeds the second
    command = f"test -f {marker} || (touch {marker}; exit 1)"
    dag.shell(
        "t", command, retries=1, retry_delay=0, retry_on="any", on_retry=[hook], on_success=[hook]
    )
    assert run_dag(dag.spec, log_dir=tmp_path).ok
    assert sorted(_events(web, 3)) == [
        ("run_success", None),
        ("task_retry", "t"),
        ("task_success", "t"),
    ]


def test_task_deadline_alerts_while_the_task_still_runs(tmp_path, web):
    dag = Dag("slow")
    dag.shell(
        "sleepy",
        "sleep 1.2",
        deadline={"within": "0.3s", "notify": [{"type": "webhook", "url": web.url}]},
    )
    manager_events = []
    began = time.monotonic()
    result = run_dag(dag.spec, on_event=[manager_events.append])
    took = time.monotonic() - began
    assert result.ok
    (post,) = web.posts
    assert post["json"]["event"] == "deadline_missed" and post["json"]["task"] == "sleepy"
    assert post["json"]["state"] == "running"
    assert post["received"] - began < took - 0.5  # sent well before the task finished
    kinds = [e["event"] for e in manager_events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"


def test_dag_deadline_at_a_wall_clock_time(tmp_path, web):
    import datetime as dt

    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.3)).isoformat()
    dag = Dag("clock", deadline={"at": soon}, on_failure=[{"type": "webhook", "url": web.url}])
    dag.shell("a", "sleep 0.8")
    assert run_dag(dag.spec).ok
    assert _events(web, 1) == [("deadline_missed", None)]


def test_finished_in_time_sends_no_deadline_alert(web):
    dag = Dag("quick", deadline={"within": 5}, on_failure=[{"type": "webhook", "url": web.url}])
    dag.shell("a", "true")
    assert run_dag(dag.spec).ok
    time.sleep(0.05)
    assert web.posts == []


def test_a_failing_notifier_never_fails_the_run_and_is_recorded(web):
    dead = {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/"}
    dag = Dag("deadhook", on_success=[dead, {"type": "webhook", "url": web.url}])
    dag.shell("a", "true")
    manager = AlertManager(dag.spec)
    assert run_dag(dag.spec, on_event=[manager]).ok
    assert [(d.ok, d.event) for d in manager.deliveries] == [
        (False, "run_success"),
        (True, "run_success"),
    ]
    assert "failed" in (manager.deliveries[0].error or "")
    assert len(web.posts) == 1  # the next notifier still got it


def test_unknown_notifier_fails_validation():
    dag = Dag("typo", notifiers={"ops": {"type": "slack", "url": "http://x"}}, on_failure=["opz"])
    dag.shell("a", "true")
    with pytest.raises(Exception, match="did you mean 'ops'"):
        run_dag(dag.spec)


def test_deadline_spec():
    assert parse_duration("2h") == 7200
    assert Deadline.model_validate({"within": "15m"}).within == 900
    with pytest.raises(ValueError, match="needs 'within'"):
        Deadline.model_validate({})
    with pytest.raises(ValueError):
        Deadline.model_validate({"at": "tomorrow-ish"})


@pytest.mark.parametrize("name", ["crane.orchestrate.alerts", "crane.orchestrate.exporters"])
def test_docstring_examples_run(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_yaml_dag_alerts_through_crane_dag_run(tmp_path, web, monkeypatch):
    from crane.cli import run_cli

    monkeypatch.delenv("CRANE_DAG_HISTORY", raising=False)
    (tmp_path / "dags").mkdir()
    (tmp_path / "crane.yml").write_text("name: p\nwarehouse: duckdb:///warehouse.duckdb\n")
    (tmp_path / "dags" / "nightly.yml").write_text(
        f"notifiers:\n  ops: {{type: slack, url: '{web.url}/slack'}}\n"
        "on_failure: [ops]\n"
        "tasks:\n"
        "  - {name: slow, command: 'sleep 0.6; exit 1', deadline: {within: 0.2s}}\n"
    )
    assert run_cli(["dag", "run", "nightly", "--project", str(tmp_path), "--json"]) == 1
    texts = [p["json"]["text"] for p in web.wait_for(2)]  # "[crane] nightly.slow: deadline …"
    events = [text.split(": ", 1)[1].split(" (")[0] for text in texts]
    assert events == ["deadline missed", "run failed"]
    assert '"ok": true' in (tmp_path / ".crane" / "alerts.jsonl").read_text()
