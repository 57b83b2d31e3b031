"""Anomaly detection: the robust-z math, and the ``anomaly`` check on a real store and engine."""

from __future__ import annotations

import datetime as dt

import pytest

from crane.connectors.base import connect
from crane.quality.anomaly import AnomalyConfig, detect, monitor_specs, robust_scale
from crane.quality.executor import run_suite
from crane.quality.loader import build_suite
from crane.quality.model import MetricRecord, SuiteResult
from crane.state.quality import QualityStore

DAY = dt.timedelta(days=1)
T0 = dt.datetime(2024, 1, 1)  # a Monday


def series(values, start=T0, step=DAY):
    return [(start + i * step, float(v)) for i, v in enumerate(values)]


def test_flags_a_spike_and_explains_the_band():
    history = series([100, 102, 98, 101, 99, 100, 103, 97, 100, 101])
    r = detect(history, 150.0, T0 + 10 * DAY)
    assert r.status == "anomaly" and r.z > 3 and r.training_size == 10
    assert r.median == 100.0
    # MAD of the history is 1 -> sigma 1.4826, band = 100 ± 3 * 1.4826
    assert r.lower == pytest.approx(100 - 3 * 1.4826) and r.upper == pytest.approx(100 + 3 * 1.4826)
    assert "outside expected" in r.reason
    assert detect(history, 101.0, T0 + 10 * DAY).status == "ok"


def test_not_enough_history_below_minimum():
    r = detect(series([1, 2, 3]), 100.0, T0 + 3 * DAY, AnomalyConfig(min_history=5))
    assert r.status == "not_enough_history" and "3 of 5" in r.reason and not r.is_anomaly


def test_tested_value_is_excluded_from_its_own_training():
    history = series([10, 11, 10, 9, 10, 11, 10, 9, 10])
    at = T0 + 9 * DAY
    leaked = [*history, (at, 500.0)]  # the value under test already in the store
    r = detect(leaked, 500.0, at)
    assert r.training_size == 9 and r.status == "anomaly"


def test_mad_zero_falls_back_then_any_change_is_anomalous():
    # more than half equal -> MAD 0 -> mean absolute deviation fallback
    vals = [5, 5, 5, 5, 5, 6, 9]
    assert robust_scale(vals, 5.0) == pytest.approx(1.2533 * (1 + 4) / 7)
    flat = series([7] * 8)
    assert detect(flat, 7.0, T0 + 8 * DAY).status == "ok"
    r = detect(flat, 8.0, T0 + 8 * DAY)
    assert r.status == "anomaly" and r.z == float("inf")
    # a minimum relative change of 20 % tolerates it
    assert detect(flat, 8.0, T0 + 8 * DAY, AnomalyConfig(min_relative_change=0.2)).status == "ok"


def test_sensitivity_and_direction():
    history = series([100, 104, 96, 102, 98, 100, 101, 99])
    at = T0 + 8 * DAY
    # median 100, MAD 1.5 -> sigma 2.22: 105 is inside 3 sigma, outside 2 sigma
    assert detect(history, 105.0, at, AnomalyConfig(sensitivity=3)).status == "ok"
    assert detect(history, 105.0, at, AnomalyConfig(sensitivity=2)).status == "anomaly"
    up = detect(history, 50.0, at, AnomalyConfig(direction="up"))
    assert up.status == "ok" and up.lower is None
    assert detect(history, 50.0, at, AnomalyConfig(direction="down")).status == "anomaly"


def test_day_of_week_seasonality_trains_on_the_same_weekday():
    # weekdays ~1000 rows, Sundays ~100: a Sunday of 100 is normal only with seasonality
    values = [(100 if (T0 + i * DAY).weekday() == 6 else 1000) + i % 3 for i in range(8 * 7)]
    history = series(values)
    sunday = T0 + 8 * 7 * DAY + 6 * DAY
    assert sunday.weekday() == 6
    seasonal = detect(history, 101.0, sunday, AnomalyConfig(seasonality="day_of_week"))
    assert seasonal.status == "ok" and seasonal.training_size == 8
    assert detect(history, 1000.0, sunday, AnomalyConfig(seasonality="day_of_week")).is_anomaly
    hourly = series([5 + (i % 24 == 3) * 50 for i in range(24 * 8)], step=dt.timedelta(hours=1))
    at = T0 + 24 * 8 * dt.timedelta(hours=1) + dt.timedelta(hours=3)
    assert detect(hourly, 55.0, at, AnomalyConfig(seasonality="hour_of_day")).status == "ok"


def test_monitor_specs_cover_volume_freshness_null_rate():
    specs = monitor_specs(
        {"orders": {"columns": ["a", "b"], "timestamp": "ts"}}, {"sensitivity": 4}
    )
    metrics = [(s["metric"], s.get("column")) for s in specs]
    assert metrics == [
        ("row_count", None),
        ("freshness", "ts"),
        ("null_rate", "a"),
        ("null_rate", "b"),
    ]
    assert all(s["sensitivity"] == 4 for s in specs)


def test_anomaly_check_on_duckdb_with_history(duck_url, tmp_path):
    with connect(duck_url) as con:
        con.execute(
            "CREATE TABLE orders AS SELECT range AS id, "
            "CASE WHEN range % 2 = 0 THEN NULL ELSE 'x' END AS email, "
            "TIMESTAMP '2024-01-01' + to_seconds(range) AS ts FROM range(5000)"
        )
    store = QualityStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    now = dt.datetime.now(dt.UTC)
    past = SuiteResult(run_id="history")
    for i in range(10):  # ten days of ~1000 rows and 1 % nulls
        at = now - (10 - i) * DAY
        past.metrics.append(MetricRecord("orders", "row_count", 1000.0 + i, measured_at=at))
        past.metrics.append(MetricRecord("orders", "null_rate", 0.01, "email", measured_at=at))
    store.record(past)
    specs = monitor_specs({"orders": {"columns": ["email"], "timestamp": "ts"}}, {"min_history": 5})
    outcome = run_suite(build_suite(specs, {"db": duck_url}), store)
    by_metric = {r.details["metric"]: r for r in outcome.results}
    volume = by_metric["row_count"]
    assert volume.status == "fail" and volume.value == 5000
    assert volume.details["lower"] < 1005 < volume.details["upper"]
    nulls = by_metric["null_rate"]
    assert nulls.status == "fail" and nulls.value == pytest.approx(0.5)
    fresh = by_metric["freshness_seconds"]
    assert fresh.status == "pass" and fresh.threshold == "not enough history"
    # the run's own values went to history: next run trains on one more point
    assert len(store.metric_history("orders", "email", "null_rate")) == 11
    assert len(store.metric_history("orders", "ts", "freshness_seconds")) == 1


def test_unknown_metric_is_a_config_error(duck_url):
    from crane.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown metric"):
        build_suite([{"type": "anomaly", "table": "t", "metric": "nope"}], {"db": duck_url})


def test_suite_monitors_read_the_tables(duck_url):
    from crane.quality.anomaly import suite_monitors

    with connect(duck_url) as con:
        con.execute(
            "CREATE TABLE t AS SELECT 1 AS id, 'a' AS name, "
            "TIMESTAMP '2024-01-01' AS created_at, TIMESTAMP '2024-01-02' AS updated_at"
        )
    suite = build_suite([{"type": "row_count", "table": "t"}], {"db": duck_url})
    specs = suite_monitors(suite, {"min_history": 3})
    got = [(s["metric"], s.get("column")) for s in specs]
    assert got[:2] == [("row_count", None), ("freshness", "updated_at")]
    assert [c for m, c in got if m == "null_rate"] == ["id", "name", "created_at", "updated_at"]
    outcome = run_suite(build_suite(specs, suite.connections))
    assert outcome.error is None and {r.status for r in outcome.results} == {"pass"}
