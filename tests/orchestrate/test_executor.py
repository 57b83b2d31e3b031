"""The local executor on real threads, real subprocesses and a real SQLite history."""

import datetime as dt
import time

import _dag_tasks
import duckdb
import pytest

from crane.orchestrate.dag import Dag
from crane.orchestrate.executor import decide, run_dag
from crane.orchestrate.history import HistoryStore

T = "_dag_tasks"


@pytest.fixture
def history(tmp_path):
    store = HistoryStore.open(tmp_path / "history.sqlite")
    yield store
    store.close()


def test_fan_out_fan_in_runs_in_parallel_and_passes_values(tmp_path, history):
    dag = Dag("fan", max_workers=8)
    dag.add("start", callable=f"{T}:value", params={"n": 0})
    for i in range(6):
        dag.add(f"w{i}", callable=f"{T}:value", depends_on=["start"], params={"n": i})
    dag.add("sleepers", callable=f"{T}:sleep", kwargs={"seconds": 0.3}, depends_on=["start"])
    dag.add("sleepers2", callable=f"{T}:sleep", kwargs={"seconds": 0.3}, depends_on=["start"])
    dag.add("total", callable=f"{T}:add", depends_on=[f"w{i}" for i in range(6)])
    began = time.monotonic()
    result = run_dag(dag.spec, history=history, log_dir=tmp_path / "logs")
    assert result.ok, {n: t.error for n, t in result.tasks.items()}
    assert time.monotonic() - began < 0.55  # the two 0.3 s sleepers overlapped
    assert result.tasks["total"].output == sum(range(6))
    assert result.tasks["w3"].output == {"task": "w3", "n": 3}
    stored = history.run(result.run_id)
    assert stored["state"] == "success"
    assert {a["task"]: a["output"] for a in stored["attempts"]}["total"] == 15


def test_pools_limit_concurrency(history):
    dag = Dag("pools", pools={"source_db": 2}, max_workers=8)
    for i in range(6):
        dag.add(f"p{i}", callable=f"{T}:tracked", kwargs={"key": "src"}, pool="source_db")
    for i in range(4):
        dag.add(f"q{i}", callable=f"{T}:tracked", kwargs={"key": "free"})
    assert run_dag(dag.spec, history=history).ok
    assert _dag_tasks.peak["src"] == 2
    assert _dag_tasks.peak["free"] >= 3


def test_duckdb_writers_on_one_file_are_serialized(tmp_path, history):
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    dag = Dag("writers", max_workers=8)
    for i in range(6):
        dag.sql(
            f"w{i}",
            ["CREATE TABLE IF NOT EXISTS t (i INT)", f"INSERT INTO t VALUES ({i})"],
            connection=url,
        )
    dag.sql(
        "read",
        "SELECT count(*) FROM t",
        connection=url,
        read_only=True,
        depends_on=[f"w{i}" for i in range(6)],
    )
    result = run_dag(dag.spec, history=history)
    assert result.ok, {n: t.error for n, t in result.tasks.items()}
    assert result.tasks["read"].output == [[6]]


def test_trigger_rules_and_skips(history):
    dag = Dag("rules")
    dag.add("ok", callable=f"{T}:noop")
    dag.add("bad", callable=f"{T}:broken")
    dag.add("after_bad", callable=f"{T}:noop", depends_on=["bad"])
    dag.add("cleanup", callable=f"{T}:noop", depends_on=["ok", "bad"], trigger_rule="all_done")
    dag.add("alert", callable=f"{T}:noop", depends_on=["ok", "bad"], trigger_rule="one_failed")
    dag.add("no_alert", callable=f"{T}:noop", depends_on=["ok"], trigger_rule="one_failed")
    dag.add("careful", callable=f"{T}:noop", depends_on=["no_alert"], trigger_rule="none_failed")
    dag.add("strict", callable=f"{T}:noop", depends_on=["no_alert"])
    result = run_dag(dag.spec, history=history)
    states = {n: t.state for n, t in result.tasks.items()}
    assert states == {
        "ok": "success",
        "bad": "failed",
        "after_bad": "upstream_failed",
        "cleanup": "success",
        "alert": "success",
        "no_alert": "skipped",
        "careful": "success",
        "strict": "skipped",
    }
    assert result.state == "failed"
    assert result.tasks["bad"].attempts == 1  # a ValueError is terminal: no retry
    recorded = {a["task"]: a["state"] for a in history.run(result.run_id)["attempts"]}
    assert recorded["after_bad"] == "upstream_failed" and recorded["strict"] == "skipped"


@pytest.mark.parametrize(
    ("path", "ran", "skipped"), [("left", "left", "right"), ("right", "right", "left")]
)
def test_branching_skips_the_other_path(history, path, ran, skipped):
    dag = Dag("branch", params={"path": path})
    dag.add("choose", callable=f"{T}:choose", branch=True)
    dag.add("left", callable=f"{T}:noop", depends_on=["choose"])
    dag.add("right", callable=f"{T}:noop", depends_on=["choose"])
    dag.add("after_right", callable=f"{T}:noop", depends_on=["right"])
    dag.add("join", callable=f"{T}:noop", depends_on=["left", "right"], trigger_rule="none_failed")
    result = run_dag(dag.spec, history=history)
    assert result.ok
    assert result.tasks[ran].state == "success" and result.tasks[skipped].state == "skipped"
    assert result.tasks["after_right"].state == ("success" if path == "right" else "skipped")
    assert result.tasks["join"].state == "success"


def test_retries_with_backoff_only_for_transient_errors(tmp_path, history):
    dag = Dag("retry")
    counter = tmp_path / "count"
    dag.add(
        "flaky",
        callable=f"{T}:flaky",
        kwargs={"counter": str(counter), "fail_times": 2},
        retries=3,
        retry_delay=0.05,
        retry_multiplier=2,
    )
    dag.add("bug", callable=f"{T}:broken", retries=3, retry_delay=0)
    dag.add("bug_any", callable=f"{T}:broken", retries=2, retry_delay=0, retry_on="any")
    dag.add("down", callable=f"{T}:always_transient", retries=2, retry_delay=0)
    began = time.monotonic()
    result = run_dag(dag.spec, history=history)
    assert time.monotonic() - began >= 0.05 + 0.1  # waited 0.05 then 0.1 before the 3rd try
    assert result.tasks["flaky"].state == "success" and result.tasks["flaky"].output == 3
    assert [result.tasks[n].attempts for n in ("flaky", "bug", "bug_any", "down")] == [3, 1, 3, 3]
    attempts = [a for a in history.run(result.run_id)["attempts"] if a["task"] == "flaky"]
    assert [a["state"] for a in attempts] == ["up_for_retry", "up_for_retry", "success"]
    assert "flaky failure 1" in attempts[0]["error"]


def test_timeouts_kill_shell_and_process_tasks(tmp_path, history):
    dag = Dag("timeouts", max_workers=4)
    dag.shell("shell", "sleep 30 & sleep 30; wait", timeout=0.5)
    dag.add("proc", callable=f"{T}:sleep", isolation="process", timeout=1.5)
    dag.add("thread", callable=f"{T}:sleep", kwargs={"seconds": 0.8}, timeout=0.2)
    began = time.monotonic()
    result = run_dag(dag.spec, history=history, log_dir=tmp_path / "logs")
    assert time.monotonic() - began < 5
    for name in ("shell", "proc", "thread"):
        assert result.tasks[name].state == "failed"
        assert "TaskTimeoutError: timed out" in result.tasks[name].error


def test_process_isolation_survives_a_crash_and_returns_values(tmp_path, history):
    import os

    dag = Dag("iso")
    dag.add("crash", callable=f"{T}:crash", isolation="process")
    dag.add("pid", callable=f"{T}:pid", isolation="process")
    dag.add("after", callable=f"{T}:add", isolation="process", depends_on=["pid"])
    result = run_dag(dag.spec, history=history, log_dir=tmp_path / "logs")
    assert result.tasks["crash"].state == "failed"
    assert "died without a result (signal SIGKILL)" in result.tasks["crash"].error
    child = result.tasks["pid"].output
    assert isinstance(child, int) and child != os.getpid()
    assert f"child pid {child}" in result.tasks["pid"].log_path.read_text()
    assert result.tasks["after"].state == "success"


def test_templates_reach_sql_and_shell_as_quoted_values(tmp_path, history):
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    dag = Dag("tmpl", params={"name": "O'Brien; DROP TABLE x", "table": "my table"})
    dag.sql(
        "make",
        "CREATE TABLE {{ params.table | ident }} AS SELECT {{ params.name }} AS name, "
        "{{ ds }} AS day, {{ data_interval_end }} AS until",
        connection=url,
    )
    dag.shell(
        "echo",
        "printf '%s|' {{ params.name }} {{ inputs.make.0.0 }} {{ run_id }}",
        depends_on=["make"],
    )
    day = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    result = run_dag(
        dag.spec,
        history=history,
        logical_date=day,
        interval=(day, day + dt.timedelta(days=1)),
        log_dir=tmp_path / "logs",
    )
    assert result.ok, {n: t.error for n, t in result.tasks.items()}
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    assert con.execute('SELECT * FROM "my table"').fetchall() == [
        ("O'Brien; DROP TABLE x", "2024-03-01", "2024-03-02T00:00:00+00:00")
    ]
    con.close()
    assert result.tasks["echo"].output == f"O'Brien; DROP TABLE x|1|{result.run_id}|"


def test_print_in_a_thread_task_goes_to_its_attempt_log(tmp_path, history, capsys):
    dag = Dag("logs", max_workers=4)
    for i in range(4):
        dag.add(f"p{i}", callable=f"{T}:pid")
    result = run_dag(dag.spec, history=history, log_dir=tmp_path / "logs")
    for i in range(4):
        log = result.tasks[f"p{i}"].log_path
        assert log.name == f"p{i}.1.log" and log.read_text().startswith("child pid")
    assert "child pid" not in capsys.readouterr().out


def test_resume_from_a_task_reruns_failed_and_downstream_only(tmp_path, history):
    flag = tmp_path / "flag"
    counter = tmp_path / "count"
    dag = Dag("resume")
    dag.add("first", callable=f"{T}:flaky", kwargs={"counter": str(counter), "fail_times": 0})
    dag.add("other", callable=f"{T}:noop")
    dag.add("fragile", callable=f"{T}:when_flag", kwargs={"flag": str(flag)}, depends_on=["first"])
    dag.add("last", callable=f"{T}:value", depends_on=["fragile", "other"])
    failed = run_dag(dag.spec, history=history, params={"n": 5})
    assert (
        failed.tasks["fragile"].state == "failed"
        and failed.tasks["last"].state == "upstream_failed"
    )
    flag.write_text("here")
    resumed = run_dag(dag.spec, history=history, from_task="fragile")
    assert resumed.ok and resumed.resumed_from == failed.run_id
    assert resumed.tasks["first"].reused and resumed.tasks["other"].reused
    assert resumed.tasks["first"].output == 1 and counter.read_text() == "1"  # not run again
    assert resumed.tasks["last"].output == {"task": "last", "n": 5}  # the run's params kept


def test_decide():
    assert decide("all_success", ["success", "failed"]) == "upstream_failed"
    assert decide("none_failed", ["skipped", "skipped"]) == "run"
    assert decide("one_failed", ["success"]) == "skipped"
    assert decide("all_done", ["failed", "skipped"]) == "run"


def test_output_must_be_small(history):
    dag = Dag("big")
    dag.sql("huge", "SELECT repeat('x', 100000)", connection="duckdb:///:memory:")
    result = run_dag(dag.spec, history=history)
    assert result.tasks["huge"].state == "failed"
    assert "return its name" in result.tasks["huge"].error
    assert "limit is 65,536" in result.tasks["huge"].error


def test_sql_timeouts_interrupt_the_query(tmp_path, history):
    dag = Dag("slow_sql")
    dag.sql(
        "slow",
        "SELECT count(*) FROM range(100000000000) a",
        connection="duckdb:///:memory:",
        timeout=0.5,
    )
    began = time.monotonic()
    result = run_dag(dag.spec, history=history)
    assert result.tasks["slow"].state == "failed" and "timed out" in result.tasks["slow"].error
    assert time.monotonic() - began < 5


def test_interrupting_a_run_stops_its_tasks_and_records_it(tmp_path, history):
    import signal
    import threading

    dag = Dag("interrupted")
    dag.shell("long", "sleep 30")
    timer = threading.Timer(0.5, lambda: signal.raise_signal(signal.SIGINT))
    timer.start()
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_dag(dag.spec, history=history, log_dir=tmp_path / "logs")
    assert time.monotonic() - began < 5
    run = history.runs("interrupted")[0]
    assert run["state"] == "failed"
    attempt = history.run(run["run_id"])["attempts"][0]
    assert attempt["state"] == "failed" and "interrupted" in attempt["error"]


def test_large_data_moves_by_table_reference(tmp_path, history):
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    dag = Dag("by_ref")
    dag.add("produce", callable=f"{T}:produce_table", kwargs={"url": url})
    dag.sql(
        "consume",
        "SELECT count(*) FROM {{ inputs.produce.table | ident }}",
        connection=url,
        read_only=True,
        depends_on=["produce"],
    )
    result = run_dag(dag.spec, history=history)
    assert result.tasks["produce"].output == {"table": "big", "connection": url}
    assert result.tasks["consume"].output == [[100000]]


def test_sql_task_waits_for_another_process_writing_the_duckdb_file(tmp_path, history):
    import subprocess
    import sys

    path = tmp_path / "wh.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
            "c.execute('CREATE TABLE t AS SELECT 1 AS i'); c.commit(); "
            "print('open', flush=True); time.sleep(1.0)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "open"
    dag = Dag("waits")
    dag.sql(
        "insert",
        ["INSERT INTO t VALUES (2)", "SELECT count(*) FROM t"],
        connection=f"duckdb:///{path}",
    )
    result = run_dag(dag.spec, history=history)
    holder.wait(timeout=10)
    assert result.ok, result.tasks["insert"].error
    assert result.tasks["insert"].output == [[2]]


def test_a_timed_out_thread_keeps_its_writer_lock_until_it_returns(tmp_path, history):
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    dag = Dag("zombie", max_workers=4)
    dag.add("stuck", callable=f"{T}:sleep", kwargs={"seconds": 0.8}, timeout=0.1, writes=url)
    dag.sql("next_writer", "CREATE TABLE t AS SELECT 1 AS i", connection=url)
    result = run_dag(dag.spec, history=history)
    stuck, writer = result.tasks["stuck"], result.tasks["next_writer"]
    assert stuck.state == "failed" and writer.state == "success"
    # "stuck" starts first (declaration order); the writer waits for its thread to return
    assert (writer.started_at - stuck.started_at).total_seconds() >= 0.7


def test_a_process_task_over_its_memory_limit_fails_alone(tmp_path, history):
    dag = Dag("leak")
    dag.add(
        "leaky",
        callable=f"{T}:allocate",
        kwargs={"mb": 600},
        isolation="process",
        max_memory_mb=300,
    )
    dag.add(
        "fine", callable=f"{T}:allocate", kwargs={"mb": 10}, isolation="process", max_memory_mb=300
    )
    result = run_dag(dag.spec, history=history, log_dir=tmp_path / "logs")
    assert result.tasks["leaky"].state == "failed" and "MemoryError" in result.tasks["leaky"].error
    assert result.tasks["leaky"].attempts == 1  # not transient: no retry
    assert result.tasks["fine"].output == 10 * 1024 * 1024
    bad = Dag("bad")
    bad.add("x", command="true", max_memory_mb=10)
    with pytest.raises(ValueError, match="max_memory_mb needs isolation: process"):
        _ = bad.spec
