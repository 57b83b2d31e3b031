"""Message triggers on the real NATS (127.0.0.1:4222) and Redis (127.0.0.1:6379) servers."""

import asyncio
import socket
import time
import uuid

import pytest

from crane.orchestrate.dag import DagSpec
from crane.orchestrate.history import HistoryStore
from crane.orchestrate.scheduler import Scheduler
from crane.orchestrate.triggers.messages import params_of, start_listeners


def _up(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _spec(name, trigger):
    return DagSpec.model_validate(
        {"name": name, "triggers": [trigger], "tasks": [{"name": "t", "command": "true"}]}
    )


def _wait_runs(store, scheduler, dag, count, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        scheduler.tick()
        scheduler.wait_idle(5)
        if len(store.runs(dag)) >= count:
            return store.runs(dag)
        scheduler.wait(0.05)
    raise AssertionError(f"{dag}: fewer than {count} runs")


@pytest.fixture
def store(tmp_path):
    history = HistoryStore.open(tmp_path / "history.sqlite")
    yield history
    history.close()


def test_message_body_becomes_params():
    assert params_of(b'{"a": 1}') == {"a": 1}
    assert params_of(b"[1]") == {"message": "[1]"}


def test_a_nats_message_starts_a_run_with_its_json_as_params(store):
    pytest.importorskip("nats", reason="NATS triggers need the 'events' extra (nats-py)")
    if not _up(4222):
        pytest.skip("no NATS server on 127.0.0.1:4222")
    import nats

    subject = f"crane.test.{uuid.uuid4().hex[:8]}"
    scheduler = Scheduler({"on_nats": _spec("on_nats", {"nats": subject})}, store)
    listeners = start_listeners(scheduler)

    async def publish():
        client = await nats.connect("nats://127.0.0.1:4222")
        await client.publish(subject, b'{"batch": 7}')
        await client.flush()
        await client.close()

    try:
        asyncio.run(publish())
        (run,) = _wait_runs(store, scheduler, "on_nats", 1)
    finally:
        for listener in listeners:
            listener.stop()
    assert run["state"] == "success"
    assert run["params"] == {"batch": 7, "subject": subject, "trigger": "nats"}


def test_a_redis_message_starts_one_run_per_message_id(store):
    redis = pytest.importorskip("redis", reason="Redis triggers need the 'events' extra (redis)")
    if not _up(6379):
        pytest.skip("no Redis server on 127.0.0.1:6379")
    channel = f"crane-test-{uuid.uuid4().hex[:8]}"
    specs = {"on_redis": _spec("on_redis", {"redis": channel, "url": "redis://127.0.0.1:6379"})}
    scheduler = Scheduler(specs, store)
    listeners = start_listeners(scheduler)
    client = redis.Redis.from_url("redis://127.0.0.1:6379")
    try:
        client.publish(channel, '{"id": "m1", "day": "2026-11-01"}')
        client.publish(channel, '{"id": "m1", "day": "2026-11-01"}')  # delivered twice
        client.publish(channel, "plain text")
        runs = _wait_runs(store, scheduler, "on_redis", 2)
        time.sleep(0.3)  # the duplicate would have arrived by now
        scheduler.tick()
        scheduler.wait_idle(5)
        runs = store.runs("on_redis")
    finally:
        client.close()
        for listener in listeners:
            listener.stop()
    params = sorted((r["params"] for r in runs), key=str)
    assert len(runs) == 2 and {r["state"] for r in runs} == {"success"}
    assert {"id": "m1", "day": "2026-11-01", "subject": channel, "trigger": "redis"} in params
    assert {"message": "plain text", "subject": channel, "trigger": "redis"} in params


def test_a_missing_server_is_a_config_error_at_start_up(store):
    pytest.importorskip("redis")
    from crane.errors import ConfigError

    specs = {"x": _spec("x", {"redis": "c", "url": "redis://127.0.0.1:1"})}
    with pytest.raises(ConfigError, match="Redis"):
        start_listeners(Scheduler(specs, store))


def test_an_unreachable_nats_server_is_a_config_error_and_prints_nothing(capfd):
    pytest.importorskip("nats", reason="NATS triggers need the 'events' extra (nats-py)")
    from crane.errors import ConfigError
    from crane.orchestrate.triggers.messages import NatsListener

    with pytest.raises(ConfigError, match="NATS nats://127.0.0.1:1"):
        NatsListener("nats://127.0.0.1:1", ["x"], lambda subject, params: None).start(timeout=1)
    assert capfd.readouterr().err == ""
