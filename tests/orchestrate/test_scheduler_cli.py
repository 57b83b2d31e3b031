"""``crane scheduler`` as a real process (schedule + webhook, SIGTERM, a crash) and
``crane dag backfill``."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from crane.cli import run_cli
from crane.orchestrate.history import HistoryStore

TOKEN = "s3cret-token"
DAGS = {
    "tick.yml": 'schedule: "* * * * *"\ntasks:\n  - {name: hello, command: "echo hello"}\n',
    "slow.yml": 'tasks:\n  - {name: nap, command: "sleep {{ params.seconds }}"}\n',
    "daily.yml": (
        'schedule: "0 6 * * *"\ntimezone: Europe/Berlin\nmax_active_runs: 2\n'
        'tasks:\n  - {name: day, command: "echo {{ ds }} {{ data_interval_end }}"}\n'
    ),
}


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("CRANE_DAG_HISTORY", raising=False)
    root = tmp_path / "proj"
    (root / "dags").mkdir(parents=True)
    (root / "crane.yml").write_text("name: proj\nwarehouse: duckdb:///warehouse.duckdb\n")
    for name, text in DAGS.items():
        (root / "dags" / name).write_text(text)
    return root


class Daemon:
    """``crane scheduler`` in a subprocess; collects stderr lines on a thread."""

    def __init__(self, root, *args):
        env = {**os.environ, "CRANE_WEBHOOK_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
        code = "import sys; from crane.cli import main; main(sys.argv[1:])"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, "scheduler", "--project", str(root), *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    def url(self, timeout=20):
        return _until(
            lambda: next((ln.split()[1] for ln in self.lines if "webhook:" in ln), None), timeout
        )


def _until(probe, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def _runs(root, dag):
    store = HistoryStore.open(root / ".crane" / "history.sqlite")
    try:
        return store.runs(dag, limit=50), store
    finally:
        store.close()


def _running(root, dag):
    runs, _ = _runs(root, dag)
    return next((r for r in runs if r["state"] == "running"), None)


def _trigger(url, dag, body):
    endpoint = url.replace("NAME", dag)
    return httpx.post(endpoint, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)


def test_scheduler_process_fires_then_sigterm_interrupts_and_records(project):
    daemon = Daemon(project, "--webhook-port", "0", "--grace", "60", "--file-settle", "0")
    try:
        url = daemon.url()
        assert _trigger(url, "slow", {"seconds": 30}).status_code == 202
        assert _trigger(url, "nope", {}).status_code == 404
        _until(lambda: _running(project, "slow"))
        ticked = _until(lambda: [r for r in _runs(project, "tick")[0] if r["state"] == "success"])
        daemon.proc.send_signal(signal.SIGTERM)  # stop firing; the nap gets 60 s grace...
        # a second signal sent before the first was handled would merge with it
        _until(lambda: any("stopping" in ln for ln in daemon.lines))
        time.sleep(0.3)
        assert daemon.proc.poll() is None  # ...and is waited for
        daemon.proc.send_signal(signal.SIGTERM)  # a second signal: interrupt now
        assert daemon.proc.wait(timeout=15) == 0, "".join(daemon.lines)
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    assert ticked[0]["params"]["trigger"] == "schedule"
    (slow,) = _runs(project, "slow")[0]
    assert slow["state"] == "failed" and slow["error"] == "interrupted: scheduler shut down"
    assert slow["params"] == {"seconds": 30, "trigger": "webhook"}
    store = HistoryStore.open(project / ".crane" / "history.sqlite")
    attempts = store.run(slow["run_id"])["attempts"]
    store.close()
    assert [a["state"] for a in attempts] == ["failed"]


def test_run_of_a_killed_scheduler_is_marked_failed_by_the_next_one(project, capsys):
    for name in ("tick.yml", "daily.yml"):
        (project / "dags" / name).unlink()
    daemon = Daemon(project, "--webhook-port", "0")
    try:
        assert _trigger(daemon.url(), "slow", {"seconds": 2}).status_code == 202
        _until(lambda: _running(project, "slow"))
    finally:
        daemon.proc.kill()  # SIGKILL: no chance to record anything
        daemon.proc.wait()
    assert run_cli(["scheduler", "--project", str(project), "--once"]) == 0
    (slow,) = _runs(project, "slow")[0]
    assert slow["state"] == "failed"
    assert f"pid {daemon.proc.pid}) is gone" in slow["error"]


def test_backfill_runs_each_interval_with_its_dates_then_skips_them(project, capsys):
    args = ["dag", "backfill", "daily", "--start", "2026-11-01", "--end", "2026-11-03"]
    assert run_cli([*args, "--project", str(project), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["logical_date"], r["state"]) for r in rows] == [
        ("2026-11-01T05:00:00+00:00", "success"),  # 06:00 in Berlin (CET)
        ("2026-11-02T05:00:00+00:00", "success"),
        ("2026-11-03T05:00:00+00:00", "success"),
    ]
    store = HistoryStore.open(project / ".crane" / "history.sqlite")
    first = store.run(rows[0]["run_id"])
    store.close()
    assert first["attempts"][0]["output"] == "2026-11-01 2026-11-02T05:00:00+00:00"
    assert run_cli([*args, "--project", str(project), "--json"]) == 0
    assert {r["state"] for r in json.loads(capsys.readouterr().out)} == {"skipped"}
    assert run_cli([*args, "--project", str(project), "--json", "--rerun"]) == 0
    assert {r["state"] for r in json.loads(capsys.readouterr().out)} == {"success"}


def emits(ctx):
    return {"dataset": "warehouse.sales", "rows_loaded": 4}


def test_a_manual_run_that_updated_a_dataset_triggers_the_waiting_dag(project, capsys):
    dags = project / "dags"
    for name in DAGS:
        (dags / name).unlink()
    (dags / "upstream.yml").write_text(
        "tasks:\n  - {name: load, callable: 'test_scheduler_cli:emits'}\n"
    )
    (dags / "downstream.yml").write_text(
        "on_dataset: [warehouse.sales]\ntasks:\n  - {name: use, command: 'echo used'}\n"
    )
    assert run_cli(["dag", "run", "upstream", "--project", str(project), "--json"]) == 0
    assert run_cli(["scheduler", "--project", str(project), "--once"]) == 0
    assert run_cli(["scheduler", "--project", str(project), "--once"]) == 0  # consumed once
    (run,) = _runs(project, "downstream")[0]
    assert run["state"] == "success" and run["params"]["trigger"] == "dataset"


def test_validate_reports_a_bad_schedule(project, capsys):
    (project / "dags" / "tick.yml").write_text(
        'schedule: "0 25 * * *"\ntasks:\n  - {name: hello, command: "echo hello"}\n'
    )
    assert run_cli(["dag", "validate", "--project", str(project)]) != 0
    assert "invalid cron expression '0 25 * * *'" in capsys.readouterr().err


def test_dags_naming_two_histories_are_refused(project, capsys, tmp_path):
    for name, target in (("tick.yml", "a.sqlite"), ("slow.yml", "b.sqlite")):
        path = project / "dags" / name
        path.write_text(f"history: {tmp_path / target}\n" + path.read_text())
    assert run_cli(["scheduler", "--project", str(project), "--once"]) != 0
    assert "different run histories" in capsys.readouterr().err
