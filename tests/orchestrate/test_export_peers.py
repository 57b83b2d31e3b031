"""Exported DAGs run on the REAL Airflow 3 and Prefect 3, each in its own venv.

The venvs stay out of crane's dependencies: ``scripts/setup_peers_orchestrators.sh``
creates ``bench/.venvs/airflow`` and ``bench/.venvs/prefect`` (each with crane installed
editable, so the exported tasks' ``crane dag run-task`` runs this checkout). Slow
(Airflow: db migrate + ``dags test``; Prefect: its temporary server), so marked slow and
skipped when a venv is missing.
"""

import os
import shlex
import subprocess
from pathlib import Path

import duckdb
import pytest
from _alert_servers import http_recorder

from crane.config.env import Environment
from crane.orchestrate.dag import load_dags
from crane.orchestrate.exporters import ExportSettings, export_dag
from crane.project import Project
from crane.templates import scaffold

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / "bench" / ".venvs"
pytestmark = pytest.mark.slow

DAILY = """\
schedule: "0 2 * * *"
timezone: Europe/Paris
defaults: {retries: 2, retry_delay: 1, timeout: 300}
tasks:
  - {name: extract_orders, pipeline: orders_etl}
  - name: summary
    sql: "CREATE OR REPLACE TABLE summary AS SELECT count(*) AS n, {{ ds }} AS day FROM orders"
    depends_on: [extract_orders]
  - {name: check, command: "test $(echo 1) = 1", depends_on: [summary]}
  - {name: on_fail, command: "echo something failed", depends_on: [check],
     trigger_rule: one_failed}
"""
BROKEN = """\
notifiers:
  hook: {{type: webhook, url: "{url}"}}
on_failure: [hook]
tasks:
  - {{name: doomed, command: "echo about to fail; exit 1", on_failure: [hook], on_retry: [hook],
     retries: 1, retry_delay: 0}}
  - {{name: after, command: "echo never", depends_on: [doomed]}}
"""


def _venv(name: str) -> Path:
    python = VENVS / name / "bin" / "python"
    if not (VENVS / name / ".crane-ready").exists():
        pytest.skip(f"no {name} venv: run scripts/setup_peers_orchestrators.sh {name}")
    return python


@pytest.fixture
def web():
    server = http_recorder()
    yield server
    server.shutdown()
    server.server_close()


def _project(root: Path, web_url: str) -> Project:
    scaffold(root)  # a small real pipeline: SQLite orders -> DuckDB warehouse
    (root / "dags").mkdir(exist_ok=True)
    (root / "dags" / "daily.yml").write_text(DAILY)
    (root / "dags" / "broken.yml").write_text(BROKEN.format(url=web_url))
    return Project.load(root, env=Environment.of({}))


def _export(project: Project, name: str, to: str, out: Path, crane: Path) -> list[str]:
    spec = load_dags(project.root, project.env)[name]
    settings = ExportSettings(project=project.root, crane=str(crane), loaded=project)
    result = export_dag(spec, to, settings)
    out.write_text(result.text)
    return result.notes


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRANE", "PREFECT_API"))}
    return {**env, **extra}


def _day(root: Path) -> list[tuple]:
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT n, day FROM summary").fetchall()
    finally:
        con.close()


def test_airflow_dagbag_imports_and_dags_test_succeeds(tmp_path, web):
    python = _venv("airflow")
    airflow = python.parent / "airflow"
    project = _project(tmp_path / "proj", web.url)
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    notes = _export(
        project, "daily", "airflow", home / "dags" / "daily.py", python.parent / "crane"
    )
    _export(project, "broken", "airflow", home / "dags" / "broken.py", python.parent / "crane")
    env = _env(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)

    assert run(str(airflow), "db", "migrate").returncode == 0
    bag = subprocess.run(
        [
            str(python),
            "-c",
            "from airflow.models.dagbag import DagBag;"
            f"b = DagBag(dag_folder={str(home / 'dags')!r});"
            "print(sorted(b.dags), b.import_errors)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bag.stdout.strip().splitlines()[-1] == "['broken', 'daily'] {}", bag.stderr[-2000:]
    for line in [n for n in notes if n.startswith("setup: airflow pools set")]:
        command = shlex.split(line.removeprefix("setup: airflow "))
        assert run(str(airflow), *command).returncode == 0  # pools set NAME SLOTS DESC
    tested = run(str(airflow), "dags", "test", "daily", "2026-03-04")
    assert "state=success" in tested.stdout + tested.stderr, (tested.stdout + tested.stderr)[-3000:]
    assert _day(project.root) == [(1000, "2026-03-04")]
    # a failing task: Airflow's on_failure_callback -> `crane dag notify` -> the webhook
    run(str(airflow), "dags", "test", "broken", "2026-03-04")
    events = {(p["json"]["event"], p["json"]["task"]) for p in web.wait_for(3, timeout=30)}
    assert events == {("task_retry", "doomed"), ("task_failed", "doomed"), ("run_failed", None)}


def test_prefect_flow_runs_to_completion_and_failure_hooks_alert(tmp_path, web):
    python = _venv("prefect")
    project = _project(tmp_path / "proj", web.url)
    crane = python.parent / "crane"
    _export(project, "daily", "prefect", tmp_path / "daily_flow.py", crane)
    _export(project, "broken", "prefect", tmp_path / "broken_flow.py", crane)
    driver = (
        "import importlib.util, sys\n"
        "def load(path):\n"
        "    spec = importlib.util.spec_from_file_location(path.split('/')[-1][:-3], path)\n"
        "    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "    return module\n"
        "ok = load(sys.argv[1]).daily_flow(return_state=True)\n"
        "bad = load(sys.argv[2]).broken_flow(return_state=True)\n"
        "print('STATES', ok.type.value, bad.type.value)\n"
    )
    env = _env(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    done = subprocess.run(
        [
            str(python),
            "-c",
            driver,
            str(tmp_path / "daily_flow.py"),
            str(tmp_path / "broken_flow.py"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "STATES COMPLETED FAILED" in done.stdout, (done.stdout + done.stderr)[-3000:]
    assert _day(project.root)[0][0] == 1000
    posts = web.wait_for(3, timeout=30)
    events = {(p["json"]["event"], p["json"]["task"]) for p in posts}
    assert events == {("task_retry", "doomed"), ("task_failed", "doomed"), ("run_failed", None)}
