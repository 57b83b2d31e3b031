"""The scheduler with an injected clock: cron intervals, catch-up, no double firing, datasets,
files, max active runs, shutdown and crash recovery — on a real SQLite history."""

import datetime as dt
import os
import subprocess
import sys
import threading
import time

import pytest

from crane.orchestrate.dag import Dag, DagSpec
from crane.orchestrate.history import HistoryStore
from crane.orchestrate.scheduler import Scheduler
from crane.orchestrate.triggers.cron import Schedule
from crane.orchestrate.triggers.state import TriggerState

M = "test_scheduler"
UTC = dt.UTC
_gate = threading.Event()


def note(ctx):
    return {"day": ctx.logical_date.isoformat(), "params": dict(ctx.params)}


def wait_gate(ctx, seconds: float = 5.0):
    _gate.wait(seconds)
    return "done"


def loads(ctx):
    return {"dataset": "warehouse.orders", "rows_loaded": 3}


class Clock:
    def __init__(self, start):
        self.at = start

    def __call__(self):
        return self.at


def day(d, h=0, m=0):
    return dt.datetime(2026, 11, d, h, m, tzinfo=UTC)


@pytest.fixture
def history(tmp_path):
    store = HistoryStore.open(tmp_path / "history.sqlite")
    yield store
    store.close()


def _dag(name, fn="note", **settings):
    dag = Dag(name, **settings)
    dag.add("t", callable=f"{M}:{fn}")
    return dag.spec


def _logical_dates(history, dag):
    return sorted(r["logical_date"] for r in history.runs(dag, limit=100))


def _drain(scheduler):
    """Pass after pass until nothing new starts (catch-up with max_active_runs=1 takes several)."""
    scheduler.run_once(timeout=10)
    assert scheduler.running() == 0


# -- cron ---------------------------------------------------------------------------------
def test_daily_schedule_is_dst_safe_in_both_directions():
    s = Schedule("30 2 * * *", "Europe/Berlin")
    spring = [t.isoformat() for t in s.ticks(dt.datetime(2026, 3, 28, 12, tzinfo=UTC), 3)]
    # 02:30 does not exist on 29 March: fires once, at 03:00 local (01:00 UTC)
    assert spring == [
        "2026-03-29T01:00:00+00:00",
        "2026-03-30T00:30:00+00:00",
        "2026-03-31T00:30:00+00:00",
    ]
    fall = s.intervals(
        dt.datetime(2026, 10, 24, 0, tzinfo=UTC), dt.datetime(2026, 10, 27, tzinfo=UTC)
    )
    # 02:30 happens twice on 25 October: one run that day, and its interval is 25 hours
    assert [(b - a).total_seconds() / 3600 for a, b in fall] == [24, 25]


def test_elapsed_time_schedule_fires_every_real_half_hour_when_clocks_fall_back():
    s = Schedule("*/30 * * * *", "Europe/Berlin")
    got = s.intervals(
        dt.datetime(2026, 10, 25, 0, tzinfo=UTC), dt.datetime(2026, 10, 25, 2, tzinfo=UTC)
    )
    assert len(got) == 4 and all((b - a) == dt.timedelta(minutes=30) for a, b in got)


def test_bad_cron_and_zone_are_config_errors():
    from crane.errors import ConfigError

    with pytest.raises(ConfigError, match="cron"):
        Schedule("61 * * * *")
    with pytest.raises(ConfigError, match="time zone"):
        Schedule("0 2 * * *", "Mars/Base")


# -- schedule state, catch-up ---------------------------------------------------------------
def test_catch_up_fires_each_missed_interval_once_across_restarts(history):
    clock = Clock(day(3, 12))
    spec = _dag("hourly", schedule="0 */6 * * *", catchup=True)
    _drain(Scheduler({"hourly": spec}, history, now=clock))
    assert _logical_dates(history, "hourly") == ["2026-11-03T06:00:00+00:00"]  # latest only
    clock.at = day(4, 7)  # 19 hours later: 3 intervals closed (12-18, 18-24, 0-6)
    restarted = Scheduler({"hourly": spec}, history, now=clock)
    _drain(restarted)
    _drain(restarted)  # a second pass fires nothing new
    _drain(Scheduler({"hourly": spec}, history, now=clock))  # neither does another restart
    assert _logical_dates(history, "hourly") == [
        "2026-11-03T06:00:00+00:00",
        "2026-11-03T12:00:00+00:00",
        "2026-11-03T18:00:00+00:00",
        "2026-11-04T00:00:00+00:00",
    ]
    runs = history.runs("hourly", limit=100)
    assert {r["state"] for r in runs} == {"success"}
    run = history.run(runs[0]["run_id"])
    assert run["data_interval_end"] == "2026-11-04T06:00:00+00:00"
    assert run["attempts"][0]["output"]["day"] == "2026-11-04T00:00:00+00:00"


def test_no_catchup_runs_only_the_latest_and_max_catchup_runs_keeps_the_most_recent(history):
    clock = Clock(day(2, 1))
    specs = {
        "off": _dag("off", schedule="0 0 * * *", catchup=False),
        "capped": _dag("capped", schedule="0 0 * * *", catchup=True, max_catchup_runs=2),
    }
    _drain(Scheduler(specs, history, now=clock))
    clock.at = day(7, 1)
    _drain(Scheduler(specs, history, now=clock))
    assert _logical_dates(history, "off") == [
        "2026-11-01T00:00:00+00:00",
        "2026-11-06T00:00:00+00:00",
    ]
    assert _logical_dates(history, "capped") == [
        "2026-11-01T00:00:00+00:00",
        "2026-11-05T00:00:00+00:00",
        "2026-11-06T00:00:00+00:00",
    ]


def test_schedule_in_a_time_zone_uses_local_midnight(history):
    spec = _dag("tokyo", schedule="0 0 * * *", timezone="Asia/Tokyo")
    _drain(Scheduler({"tokyo": spec}, history, now=Clock(day(5, 16))))
    run = history.runs("tokyo")[0]
    assert run["logical_date"] == "2026-11-04T15:00:00+00:00"  # 5 Nov 00:00 in Tokyo
    assert run["data_interval_end"] == "2026-11-05T15:00:00+00:00"


def test_two_schedulers_on_one_history_never_fire_the_same_interval(history, tmp_path):
    clock = Clock(day(3, 12))
    spec = _dag("shared", schedule="*/5 * * * *", catchup=True)
    _drain(Scheduler({"shared": spec}, history, now=clock))
    clock.at = day(3, 14)  # 24 intervals closed
    other = HistoryStore.open(tmp_path / "history.sqlite")
    pair = [
        Scheduler({"shared": spec.model_copy(update={"max_active_runs": 30})}, s, now=clock)
        for s in (history, other)
    ]
    threads = [threading.Thread(target=_drain, args=(s,)) for s in pair]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    dates = _logical_dates(history, "shared")
    assert len(dates) == len(set(dates)) == 25
    assert sum(len(s.results) for s in pair) == 24


def test_max_active_runs_holds_intervals_until_a_slot_frees(history):
    _gate.clear()
    clock = Clock(day(3, 0, 1))
    spec = _dag("slow", fn="wait_gate", schedule="0 * * * *", catchup=True, max_active_runs=2)
    TriggerState(history).claim("slow", "schedule", [day(2, 18).isoformat()], day(2, 18))
    scheduler = Scheduler({"slow": spec}, history, now=clock)
    scheduler.tick()  # 5 intervals are due (19..23h): only 2 may run
    scheduler.tick()
    assert scheduler.running() == 2
    _gate.set()
    while len(_logical_dates(history, "slow")) < 5:
        scheduler.tick()
        scheduler.wait(0.02)
    assert scheduler.wait_idle(10)
    assert len(_logical_dates(history, "slow")) == 5


# -- events ------------------------------------------------------------------------------------
def test_dataset_update_by_one_dag_runs_the_downstream_dag_once(history):
    specs = {
        "load": _dag("load", fn="loads"),
        "report": DagSpec.model_validate(
            {
                "name": "report",
                "on_dataset": ["warehouse.orders"],
                "tasks": [{"name": "t", "callable": f"{M}:note"}],
            }
        ),
    }
    scheduler = Scheduler(specs, history, now=Clock(day(3)))
    scheduler.submit("load", {})
    _drain(scheduler)  # load runs and emits warehouse.orders
    _drain(scheduler)  # report sees it
    _drain(scheduler)  # and only once
    runs = history.runs("report")
    assert len(runs) == 1
    assert runs[0]["params"]["trigger"] == "dataset"
    assert list(runs[0]["params"]["datasets"]) == ["warehouse.orders"]


def test_each_new_file_triggers_one_run_remembered_across_restarts(history, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    spec = DagSpec.model_validate(
        {
            "name": "ingest",
            "triggers": [{"file": "inbox/*.csv"}],
            "max_active_runs": 4,
            "tasks": [{"name": "t", "callable": f"{M}:note"}],
        }
    )

    def scheduler():
        return Scheduler({"ingest": spec}, history, root=tmp_path, now=Clock(day(3)), file_settle=0)

    (inbox / "a.csv").write_text("1")
    (inbox / "b.csv").write_text("2")
    (inbox / "ignored.txt").write_text("3")
    first = scheduler()
    _drain(first)
    _drain(first)
    (inbox / "c.csv").write_text("4")
    _drain(scheduler())
    files = sorted(r["params"]["file"] for r in history.runs("ingest"))
    assert [os.path.basename(f) for f in files] == ["a.csv", "b.csv", "c.csv"]


def test_settling_files_wait(history, tmp_path):
    (tmp_path / "x.csv").write_text("1")
    spec = DagSpec.model_validate(
        {"name": "s", "triggers": [{"file": "*.csv"}], "tasks": [{"name": "t", "command": "true"}]}
    )
    _drain(Scheduler({"s": spec}, history, root=tmp_path, file_settle=60))
    assert history.runs("s") == []


# -- shutdown and crash recovery ----------------------------------------------------------------
def test_shutdown_interrupts_runs_after_the_grace_period(history):
    _gate.clear()
    scheduler = Scheduler({"slow": _dag("slow", fn="wait_gate")}, history, now=Clock(day(3)))
    scheduler.submit("slow", {})
    scheduler.tick()
    while not scheduler.active["slow"] or scheduler.active["slow"][0].run_id is None:
        time.sleep(0.01)
    began = time.monotonic()
    stopped = scheduler.shutdown(grace=0.2)
    assert time.monotonic() - began < 1.5
    run = history.run(stopped[0])
    assert run["state"] == "failed" and run["error"] == "interrupted: scheduler shut down"
    assert run["attempts"][0]["state"] == "failed"
    with pytest.raises(RuntimeError):
        scheduler.submit("slow", {})
    _gate.set()


def test_shutdown_lets_a_run_finish_within_the_grace_period(history):
    _gate.clear()
    scheduler = Scheduler({"slow": _dag("slow", fn="wait_gate")}, history, now=Clock(day(3)))
    scheduler.submit("slow", {})
    scheduler.tick()
    threading.Timer(0.2, _gate.set).start()
    assert scheduler.shutdown(grace=10) == []
    (run,) = history.runs("slow")
    assert run["state"] == "success"


def test_runs_left_running_by_a_dead_process_are_marked_failed_at_start_up(history, tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    history.upsert_run({"run_id": "r-dead", "dag": "x", "state": "running", "started_at": day(3)})
    history.upsert_attempt({"run_id": "r-dead", "task": "t", "attempt": 1, "state": "running"})
    history.upsert_run({"run_id": "r-live", "dag": "x", "state": "running", "started_at": day(3)})
    history.flush()
    state = TriggerState(history)
    con = history.connect()
    con.execute("INSERT INTO run_owners VALUES ('r-dead', ?, ?)", (os.uname().nodename, pid))
    con.commit()
    con.close()
    state.own("r-live")  # this process: alive
    lost, started = day(1).isoformat(), day(2).isoformat()
    history.upsert_run({"run_id": "r-old", "dag": "x", "state": "success", "logical_date": day(2)})
    history.flush()
    con = history.connect()
    for key in (lost, started):
        con.execute(
            "INSERT INTO trigger_claims VALUES ('x', 'schedule', ?, ?, ?, '')",
            (key, key, f"{os.uname().nodename}:{pid}"),
        )
    con.commit()
    con.close()
    assert Scheduler({}, history).recover() == ["r-dead"]
    assert state.claimed("x", "schedule") == {started}  # the lost claim is released
    dead_run, live_run = history.run("r-dead"), history.run("r-live")
    assert dead_run["state"] == "failed" and f"pid {pid}" in dead_run["error"]
    assert dead_run["attempts"][0]["state"] == "failed"
    assert live_run["state"] == "running"


@pytest.mark.integration
def test_claims_and_dataset_events_on_a_postgresql_history(pg_schema):
    url = f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{pg_schema}"
    stores = [HistoryStore.open(url), HistoryStore.open(url)]
    try:
        clock = Clock(day(3, 12))
        spec = _dag("pg", schedule="*/10 * * * *", catchup=True, max_active_runs=20)
        _drain(Scheduler({"pg": spec}, stores[0], now=clock))
        clock.at = day(3, 14)
        pair = [Scheduler({"pg": spec}, s, now=clock) for s in stores]
        threads = [threading.Thread(target=_drain, args=(s,)) for s in pair]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dates = _logical_dates(stores[0], "pg")
        assert len(dates) == len(set(dates)) == 13
        state = TriggerState(stores[1])
        state.emit("warehouse.orders", "pg", None, 5)
        state.emit("warehouse.orders", "pg", None, 6)
        latest = state.latest_events(["warehouse.orders", "warehouse.none"])
        assert list(latest) == ["warehouse.orders"]
        assert state.claim("down", "dataset", [f"warehouse.orders#{latest['warehouse.orders']}"])
        assert state.consumed("down") == latest
    finally:
        for s in stores:
            s.close()


def test_a_pipeline_that_loaded_rows_triggers_the_dag_waiting_for_its_table(tmp_path):
    from crane.config.env import Environment
    from crane.project import Project
    from crane.templates import scaffold

    scaffold(tmp_path)
    project = Project.load(tmp_path, env=Environment.of({}))
    load = Dag("load")
    load.pipeline("orders", "orders_etl")
    report = Dag("report", on_dataset=["warehouse.orders"])
    report.sql("count", "CREATE OR REPLACE TABLE n_orders AS SELECT count(*) AS n FROM orders")
    store = HistoryStore.open(tmp_path / "history.sqlite")
    try:
        scheduler = Scheduler({"load": load.spec, "report": report.spec}, store, project=project)
        for _ in range(2):  # the second load finds no new rows: no event, no report
            scheduler.submit("load", {})
            _drain(scheduler)
        loads = sorted(
            r.tasks["orders"].output["rows_loaded"] for r in scheduler.results if r.dag == "load"
        )
        reports = store.runs("report")
    finally:
        store.close()
    assert loads == [0, 1000]
    assert len(reports) == 1 and reports[0]["state"] == "success"


def test_a_daily_run_in_berlin_fires_once_on_the_day_clocks_fall_back(history):
    spec = _dag("berlin", schedule="30 2 * * *", timezone="Europe/Berlin", catchup=True)
    clock = Clock(dt.datetime(2026, 10, 24, 0, 40, tzinfo=UTC))  # 24 Oct 02:40 CEST
    scheduler = Scheduler({"berlin": spec}, history, now=clock)
    for minutes in range(0, 3 * 24 * 60, 20):  # three days, a pass every 20 minutes
        clock.at = dt.datetime(2026, 10, 24, 0, 40, tzinfo=UTC) + dt.timedelta(minutes=minutes)
        _drain(scheduler)
    runs = sorted(history.runs("berlin", limit=10), key=lambda r: r["logical_date"])
    assert [(r["logical_date"], r["data_interval_end"]) for r in runs] == [
        ("2026-10-23T00:30:00+00:00", "2026-10-24T00:30:00+00:00"),
        ("2026-10-24T00:30:00+00:00", "2026-10-25T00:30:00+00:00"),  # 02:30 CEST, first of two
        ("2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"),  # 25 hours long
    ]


def test_manual_runs_record_their_owner_for_crash_recovery(history):
    from crane.orchestrate.executor import run_dag
    from crane.orchestrate.triggers.state import owner_listener

    result = run_dag(_dag("manual"), history=history, on_event=[owner_listener(history)])
    con = history.connect()
    try:
        owners = con.execute("SELECT run_id, pid FROM run_owners").fetchall()
    finally:
        con.close()
    assert owners == [(result.run_id, os.getpid())]
