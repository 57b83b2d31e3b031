"""``crane dag export`` (Airflow 3 / Prefect 3 code), ``run-task`` and ``notify`` — fast.

The exported files are proven against the real Airflow and Prefect in test_export_peers.py.
"""

import ast
import json

import duckdb
import pytest
from _alert_servers import http_recorder

from crane.cli import run_cli
from crane.errors import UnknownNameError
from crane.orchestrate.dag import Dag
from crane.orchestrate.exporters import ExportSettings, export_dag

HOOK = {"type": "webhook", "url": "http://127.0.0.1:9/"}


def _dag():
    dag = Dag(
        "daily",
        schedule="0 2 * * *",
        timezone="Europe/Paris",
        pools={"source_db": 2},
        max_workers=3,
        on_failure=[HOOK],
        deadline={"within": "2h"},
    )
    dag.shell(
        "extract",
        "echo e",
        retries=3,
        retry_delay=60,
        timeout=600,
        pool="source_db",
        retry_on="any",
    )
    dag.shell("route", "echo load", depends_on=["extract"], branch=True)
    dag.shell("load", "echo l", depends_on=["route"], on_failure=[HOOK], on_retry=[HOOK], retries=1)
    dag.shell("cleanup", "echo c", depends_on=["load"], trigger_rule="all_done")
    dag.shell("alert", "echo a", depends_on=["load"], trigger_rule="one_failed")
    dag.shell("report", "echo r", depends_on=["cleanup"])
    return dag.spec


def _export(to, tmp_path):
    return export_dag(_dag(), to, ExportSettings(project=tmp_path))


def _calls(text):
    """keyword arguments of every call in the file, by function name and first kwarg."""
    found = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call) and node.keywords:
            kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
            found[kw.get("task_id") or kw.get("name") or kw.get("dag_id")] = kw
    return found


def test_airflow_file_maps_schedule_retries_timeouts_pools_rules_and_callbacks(tmp_path):
    export = _export("airflow", tmp_path)
    calls = _calls(export.text)
    dag = calls["DAG_NAME"]
    assert dag["schedule"] == "'0 2 * * *'" and "Europe/Paris" in dag["start_date"]
    assert dag["max_active_tasks"] == "3" and dag["on_failure_callback"] == "notify('run_failed')"
    extract = calls["'extract'"]
    assert extract["retries"] == "3"
    assert extract["retry_delay"] == "dt.timedelta(seconds=60)"
    assert extract["retry_exponential_backoff"] == "2.0"
    assert extract["max_retry_delay"] == "dt.timedelta(seconds=300)"
    assert extract["execution_timeout"] == "dt.timedelta(seconds=600)"
    assert extract["pool"] == "'source_db'"
    assert calls["'cleanup'"]["trigger_rule"] == "TriggerRule.ALL_DONE"
    assert calls["'alert'"]["trigger_rule"] == "TriggerRule.ONE_FAILED"
    assert calls["'load'"]["on_failure_callback"] == "notify('task_failed')"
    assert calls["'load'"]["on_retry_callback"] == "notify('task_retry')"
    assert "extract >> route" in export.text and "load >> alert" in export.text
    assert "crane_task('extract')" in ast.unparse(ast.parse(export.text))


def test_untranslatable_features_are_reported_in_output_and_header(tmp_path):
    export = _export("airflow", tmp_path)
    header = ast.get_docstring(ast.parse(export.text))
    wanted = ["DAG deadline (within 7200s)", "task route: branching not translated"]
    for text in wanted:
        assert any(text in note for note in export.notes), export.notes
        assert text in header
    assert "airflow pools set source_db 2" in header


def test_prefect_flow_maps_retries_hooks_and_emulates_trigger_rules(tmp_path):
    export = _export("prefect", tmp_path)
    calls = _calls(export.text)
    extract = calls["'extract'"]
    assert extract["retries"] == "3"
    assert extract["retry_delay_seconds"] == "[60.0, 120.0, 240.0]"
    assert calls["'load'"]["on_failure"] == "[notify('task_failed')]"
    tree = ast.unparse(ast.parse(export.text))
    assert "decide('all_done', ['load'], runs)" in tree
    assert "decide('one_failed', ['load'], runs)" in tree
    assert "decide('all_success', ['cleanup'], runs)" in tree  # may follow a skipped task
    assert "runs['load'] = load.submit(wait_for=[runs['route']])" in tree
    assert "Cron('0 2 * * *', timezone='Europe/Paris')" in tree
    assert "'pool:source_db': threading.BoundedSemaphore(2)" in tree
    notes = " ".join(export.notes)
    assert "trigger rules emulated" in notes
    assert calls["'load'"]["retry_condition_fn"] == "notify_then_retry"  # alert, then retry


def test_duckdb_writers_share_a_one_slot_pool(tmp_path):
    dag = Dag("w")
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    dag.sql("a", "SELECT 1", connection=url)
    dag.sql("b", "SELECT 2", connection=url)
    airflow = export_dag(dag.spec, "airflow", ExportSettings(project=tmp_path))
    pools = {v["pool"] for k, v in _calls(airflow.text).items() if k in ("'a'", "'b'")}
    assert len(pools) == 1 and pools.pop().startswith("'crane_writer_")
    prefect = export_dag(dag.spec, "prefect", ExportSettings(project=tmp_path))
    assert f"'duckdb:{tmp_path / 'wh.duckdb'}': threading.BoundedSemaphore(1)" in (
        ast.unparse(ast.parse(prefect.text))
    )


def test_unknown_exporter_suggests(tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean 'airflow'"):
        export_dag(_dag(), "airflwo", ExportSettings(project=tmp_path))


# -- the CLI: export, run-task, notify on a real project ---------------------------------------
@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("CRANE_DAG_HISTORY", raising=False)
    root = tmp_path / "proj"
    (root / "dags").mkdir(parents=True)
    (root / "crane.yml").write_text("name: proj\nwarehouse: duckdb:///warehouse.duckdb\n")
    return root


def _write_dag(root, url):
    (root / "dags" / "nightly.yml").write_text(
        "notifiers:\n"
        f"  hook: {{type: webhook, url: '{url}'}}\n"
        "on_failure: [hook]\n"
        "tasks:\n"
        "  - {name: first, sql: 'CREATE TABLE day AS SELECT {{ ds }} AS ds, "
        "{{ run_id }} AS run', retries: 2}\n"
        "  - {name: second, command: 'exit 3', depends_on: [first], on_failure: [hook]}\n"
    )


def test_cli_export_writes_the_file_and_lists_notes(project, tmp_path, capsys):
    _write_dag(project, "http://127.0.0.1:9/")
    out = tmp_path / "out" / "nightly_dag.py"
    args = ["dag", "export", "nightly", "--to", "airflow", "--out", str(out)]
    assert run_cli([*args, "--project", str(project), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["out"] == str(out) and any("retry_on transient" in n for n in shown["notes"])
    compile(out.read_text(), str(out), "exec")


def test_run_task_runs_exactly_one_task_with_the_peers_run_id_and_date(project):
    _write_dag(project, "http://127.0.0.1:9/")
    args = ["dag", "run-task", "nightly", "first", "--project", str(project)]
    when = ["--run-id", "manual__1", "--logical-date", "2026-03-04 00:00:00+00:00"]
    assert run_cli([*args, *when, "--start", "None", "--end", "None"]) == 0
    con = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT * FROM day").fetchall() == [("2026-03-04", "manual__1")]
    finally:
        con.close()
    failing = ["dag", "run-task", "nightly", "second", "--project", str(project)]
    assert run_cli(failing) == 1  # ran alone although 'first' is upstream; failed once


def test_notify_sends_to_the_dags_notifiers(project):
    web = http_recorder()
    try:
        _write_dag(project, web.url)
        args = ["dag", "notify", "nightly", "--event", "task_failed", "--task", "second"]
        more = ["--run-id", "r9", "--error", "exit 3", "--project", str(project)]
        assert run_cli([*args, *more]) == 0
        (post,) = web.wait_for(1)
        body = post["json"]
        assert (body["event"], body["task"], body["run_id"], body["error"]) == (
            "task_failed",
            "second",
            "r9",
            "exit 3",
        )
        web.status = 500  # a failing notifier does not fail the caller
        assert (
            run_cli(
                ["dag", "notify", "nightly", "--event", "run_failed", "--project", str(project)]
            )
            == 0
        )
    finally:
        web.shutdown()
        web.server_close()
