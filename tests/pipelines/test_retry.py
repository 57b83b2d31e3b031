"""Retries: backoff that never overflows, classification by code, a killed backend mid-load."""

from __future__ import annotations

import doctest
import random
import threading
import time

import psycopg
import pytest
from _runner_helpers import PG_DSN, PG_URL, duck_rows, make_pg_orders, normalize, pg_rows, spec

from crane.errors import ConnectorError, ExtractError, TransientError
from crane.pipelines import retry
from crane.pipelines.retry import RetryPolicy, call_with_retries, is_transient
from crane.pipelines.runner import run_pipeline


def test_backoff_grows_by_multiplier_caps_and_never_overflows():
    policy = RetryPolicy(initial=0.5, multiplier=3, max_delay=20, jitter=0)
    assert [policy.delay(n) for n in (1, 2, 3)] == [0.5, 1.5, 4.5]
    assert policy.delay(4) == 13.5 and policy.delay(5) == 20
    assert policy.delay(10**9) == 20  # 3**1e9 would overflow a float
    jittered = RetryPolicy(initial=1, multiplier=2, max_delay=8, jitter=1)
    rng = random.Random(7)
    samples = [jittered.delay(3, rng) for _ in range(200)]
    assert all(0 <= s <= 4 for s in samples) and len(set(samples)) > 100
    assert doctest.testmod(retry).failed == 0


def test_transient_and_terminal_errors_are_told_apart_by_code():
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        with pytest.raises(psycopg.Error) as terminal:
            con.execute("SELECT 1/0")
        with pytest.raises(psycopg.Error) as missing:
            con.execute("SELECT * FROM no_such_table_anywhere")
        with pytest.raises(psycopg.Error) as serialization:
            con.execute("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$")
    assert not is_transient(terminal.value) and not is_transient(missing.value)
    assert is_transient(serialization.value)
    wrapped = ConnectorError("read failed")
    wrapped.__cause__ = serialization.value
    assert is_transient(wrapped)  # a non-transient wrapper defers to its cause
    judged = ConnectorError("cannot connect: database does not exist", transient=False)
    judged.__cause__ = psycopg.OperationalError("connection failed")  # no SQLSTATE
    assert not is_transient(judged)  # ... unless its connector judged the cause terminal
    assert is_transient(TransientError("deadlock")) and not is_transient(ExtractError("no"))


def test_call_with_retries_retries_transient_and_stops_on_terminal():
    calls: list[int] = []

    def flaky(number: int) -> str:
        calls.append(number)
        if number < 3:
            raise TransientError("connection dropped")
        return "done"

    policy = RetryPolicy(max_retries=5, initial=0.001, max_delay=0.01)
    assert call_with_retries(flaky, policy) == "done" and calls == [1, 2, 3]

    def broken(number: int) -> None:
        calls.append(number)
        raise ExtractError("missing table")

    calls.clear()
    with pytest.raises(ExtractError):
        call_with_retries(broken, policy)
    assert calls == [1]
    calls.clear()
    with pytest.raises(TransientError):
        call_with_retries(flaky, RetryPolicy(max_retries=1, initial=0.001))
    assert calls == [1, 2]


@pytest.mark.integration
def test_backend_terminated_mid_load_is_retried_without_duplicates(pg_schema, duck_url):
    """pg_terminate_backend on the extracting session; the run retries and equals the source."""
    make_pg_orders(pg_schema, 2000)
    marker = f"crane_retry_{pg_schema}"
    query = (
        f'SELECT o.id, o.updated_at, o.amount, o.name FROM "{pg_schema}".orders o, '
        f"pg_sleep(0.6) AS {marker}"
    )
    pipeline = spec(
        "retry",
        source={"table": None, "query": query},
        extract={"strategy": "full"},
        load={"strategy": "append", "primary_key": []},
        max_retries=3,
    )
    killed: list[int] = []

    def killer() -> None:
        with psycopg.connect(PG_DSN, autocommit=True) as con:
            deadline = time.monotonic() + 20
            while not killed and time.monotonic() < deadline:
                rows = con.execute(
                    "SELECT pg_terminate_backend(pid), pid FROM pg_stat_activity "
                    "WHERE state = 'active' AND query LIKE %s AND query LIKE '%%COPY%%' "
                    "AND pid <> pg_backend_pid()",
                    [f"%{marker}%"],
                ).fetchall()
                killed.extend(pid for ok, pid in rows if ok)
                time.sleep(0.02)

    thread = threading.Thread(target=killer)
    thread.start()
    result = run_pipeline(
        pipeline,
        source_url=PG_URL,
        target_url=duck_url,
        retry_policy=RetryPolicy(max_retries=3, initial=0.05),
    )
    thread.join()
    assert killed, "the extracting backend was never seen"
    assert result.ok, result.error
    assert result.attempts == 2
    target = normalize(duck_rows(duck_url.removeprefix("duckdb:///"), "retry"))
    assert target == normalize(pg_rows(pg_schema))  # append after a retry: still no duplicate


@pytest.mark.integration
def test_a_missing_database_or_unknown_user_fails_at_once(duck_url):
    """Connection refusals the server explains (no such database, no such role) are terminal:
    they used to be retried like a dropped connection, 4 attempts and ~6 s for a typo."""
    pipeline = spec("no_db", max_retries=3)
    for url in (
        "postgresql://postgres@127.0.0.1:5432/no_such_database_here",
        "postgresql://no_such_role_here@127.0.0.1:5432/test",
    ):
        result = run_pipeline(pipeline, source_url=url, target_url=duck_url)
        assert result.status == "failed" and result.attempts == 1, result.error


@pytest.mark.integration
def test_terminal_error_fails_at_once_and_is_recorded(pg_schema, duck_url):
    pipeline = spec("terminal", source={"schema": pg_schema, "table": "missing"}, max_retries=3)
    url = "postgresql://postgres:s3cret-pw@127.0.0.1:5432/test"
    result = run_pipeline(pipeline, source_url=url, target_url=duck_url)
    assert result.status == "failed" and result.attempts == 1
    assert "missing" in (result.error or "") and "s3cret-pw" not in (result.error or "")
    from crane.pipelines.runner import list_runs

    [record] = list_runs(duck_url, 5)
    assert record["status"] == "failed" and "s3cret-pw" not in record["error"]
    assert "s3cret-pw" not in record["source"]
