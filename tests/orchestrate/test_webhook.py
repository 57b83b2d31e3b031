"""The webhook on 127.0.0.1 with httpx: token, body → params, unknown DAG, shutdown."""

import httpx
import pytest

from crane.errors import ConfigError
from crane.orchestrate.dag import Dag
from crane.orchestrate.history import HistoryStore
from crane.orchestrate.scheduler import Scheduler
from crane.orchestrate.webhook import WebhookServer

TOKEN = "t0ken"


def echo(ctx):
    return dict(ctx.params)


@pytest.fixture
def served(tmp_path):
    store = HistoryStore.open(tmp_path / "history.sqlite")
    dag = Dag("daily")
    dag.add("t", callable="test_webhook:echo")
    scheduler = Scheduler({"daily": dag.spec}, store)
    server = WebhookServer(scheduler.submit, TOKEN).start()
    yield scheduler, f"http://127.0.0.1:{server.port}", store
    server.stop()
    scheduler.shutdown(grace=5)
    store.close()


def _post(base, path, token=TOKEN, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(base + path, headers=headers, timeout=5, **kwargs)


def test_token_protected_trigger_runs_the_dag_with_the_json_body_as_params(served):
    scheduler, base, store = served
    assert _post(base, "/dags/daily/trigger", token=None).status_code == 401
    assert _post(base, "/dags/daily/trigger", token="wrong").status_code == 401
    answer = _post(base, "/dags/daily/trigger", json={"region": "eu", "n": 2})
    assert answer.status_code == 202 and answer.json() == {"queued": True, "dag": "daily"}
    scheduler.tick()
    assert scheduler.wait_idle(10)
    (run,) = store.runs("daily")
    assert run["state"] == "success"
    assert run["params"] == {"region": "eu", "n": 2, "trigger": "webhook"}
    assert store.run(run["run_id"])["attempts"][0]["output"]["region"] == "eu"


def test_bad_requests_are_refused_and_nothing_runs(served):
    scheduler, base, store = served
    assert _post(base, "/dags/nope/trigger", json={}).status_code == 404
    assert _post(base, "/dags/daily/trigger", content=b"{not json").status_code == 400
    assert _post(base, "/dags/daily/trigger", json=[1, 2]).status_code == 400
    assert _post(base, "/elsewhere", json={}).status_code == 404
    assert _post(base, "/dags/daily/trigger").status_code == 202  # no body: no params
    scheduler.shutdown(grace=5)
    assert _post(base, "/dags/daily/trigger", json={}).status_code == 503


def test_the_webhook_refuses_to_start_without_a_token():
    with pytest.raises(ConfigError, match="token"):
        WebhookServer(lambda dag, params: None, "")
