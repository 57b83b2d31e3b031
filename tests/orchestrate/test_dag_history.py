"""Run history: parallel tasks in two processes never meet "database is locked"; PostgreSQL too."""

import subprocess
import sys
import textwrap

import pytest

from crane.orchestrate.dag import Dag
from crane.orchestrate.executor import run_dag
from crane.orchestrate.history import HistoryStore, final_states

TASKS, RETRIES = 12, 20


def _stress_dag(name):
    dag = Dag(name, max_workers=TASKS)
    for i in range(TASKS):
        dag.add(
            f"t{i}", callable="_dag_tasks:broken", retries=RETRIES, retry_delay=0, retry_on="any"
        )
    return dag.spec


def _check(store, run_id):
    run = store.run(run_id)
    assert run["state"] == "failed"
    assert len(run["attempts"]) == TASKS * (RETRIES + 1)
    assert {a["state"] for a in run["attempts"]} == {"up_for_retry", "failed"}
    assert all("ValueError: a bug" in a["error"] for a in run["attempts"])


def test_parallel_tasks_in_two_processes_share_one_sqlite_history(tmp_path):
    path = tmp_path / "history.sqlite"
    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""\
            import sys
            sys.path[:0] = {sys.path!r}
            from test_dag_history import _stress_dag
            from crane.orchestrate.executor import run_dag
            from crane.orchestrate.history import HistoryStore
            store = HistoryStore.open({str(path)!r})
            for _ in range(2):
                print(run_dag(_stress_dag("other"), history=store).run_id)
            store.close()
            """),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = HistoryStore.open(path)
    try:
        mine = [run_dag(_stress_dag("mine"), history=store).run_id for _ in range(2)]
        out, err = other.communicate(timeout=60)
        assert other.returncode == 0, err
        for run_id in mine + out.split():
            _check(store, run_id)
        assert [r["dag"] for r in store.runs(limit=10)].count("other") == 2
        assert (tmp_path / "history.sqlite-wal").exists()  # WAL mode
    finally:
        store.close()


@pytest.mark.integration
def test_postgresql_history(pg_schema):
    url = f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{pg_schema}"
    store = HistoryStore.open(url)
    try:
        dag = Dag("pg")
        dag.add("a", callable="_dag_tasks:value", params={"n": 2})
        dag.add("b", callable="_dag_tasks:add", depends_on=["a"])
        result = run_dag(dag.spec, history=store)
        assert result.ok
        states = final_states(store.run(result.run_id[:8]))
        assert states["b"]["output"] == 2 and states["a"]["state"] == "success"
        _check(store, run_dag(_stress_dag("pg_stress"), history=store).run_id)
    finally:
        store.close()


def test_a_failing_history_write_is_reported_not_hung(tmp_path):
    import sqlite3

    from crane.orchestrate.history import HistoryError

    store = HistoryStore.open(tmp_path / "h.sqlite")
    con = sqlite3.connect(tmp_path / "h.sqlite")
    con.execute("DROP TABLE task_attempts")
    con.commit()
    con.close()
    store.upsert_attempt({"run_id": "r", "task": "t", "attempt": 1, "state": "running"})
    with pytest.raises(HistoryError, match="no such table: task_attempts"):
        store.flush()
    store.upsert_run({"run_id": "r", "dag": "d", "state": "success"})
    store.close()
    assert store.runs()[0]["state"] == "success"  # later writes still land


def test_secrets_in_params_and_outputs_are_masked_in_history(tmp_path):
    from crane.config import secrets

    secrets.register("hunter2-secret")
    try:
        store = HistoryStore.open(tmp_path / "h.sqlite")
        dag = Dag("secret", params={"password": "hunter2-secret"})
        dag.add("echo", command="echo {{ params.password }}")
        result = run_dag(dag.spec, history=store, log_dir=tmp_path / "logs")
        store.close()
        assert result.ok
        stored = store.run(result.run_id)
        assert stored["params"] == {"password": "***"}
        assert stored["attempts"][0]["output"] == "***"
    finally:
        secrets.forget_all()
