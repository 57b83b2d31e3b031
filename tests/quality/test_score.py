"""Scorecards: per-dimension and overall scores, weights, history and degradation."""

from __future__ import annotations

import datetime as dt

from crane.quality.model import CheckResult, SuiteResult
from crane.quality.score import ScoreWeights, record_scores, scorecard
from crane.state.quality import QualityStore


def r(name, status, dimension, table="orders", severity="error"):
    return CheckResult(name, table, "x", dimension, severity=severity, status=status)


RESULTS = [
    r("a", "pass", "completeness"),
    r("b", "pass", "completeness"),
    r("c", "fail", "completeness"),
    r("d", "warn", "validity", severity="warn"),
    r("e", "pass", "validity"),
    r("f", "error", "uniqueness"),
    r("g", "pass", "completeness", table="customers"),
]


def test_scores_per_dimension_and_overall():
    card = scorecard(RESULTS)
    orders = card.dataset("orders")
    assert orders.dimensions == {"completeness": 66.67, "validity": 75.0, "uniqueness": 0.0}
    assert orders.score == round((66.67 + 75.0 + 0.0) / 3, 2)
    assert orders.counts == {"pass": 3, "warn": 1, "fail": 1, "error": 1}
    assert card.dataset("customers").score == 100.0 and not card.degraded


def test_weights_are_configurable():
    weights = ScoreWeights.read({"dimensions": {"uniqueness": 0}, "credit": {"warn": 0}})
    orders = scorecard(RESULTS, weights).dataset("orders")
    assert orders.dimensions["validity"] == 50.0
    assert orders.score == round((66.67 + 50.0) / 2, 2)


def test_history_and_degradation(tmp_path):
    store = QualityStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    good = [r("a", "pass", "completeness"), r("b", "pass", "validity")]
    first = SuiteResult(run_id="run1", started_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    store.record(first)
    card1 = scorecard(good, store=store, run_id="run1")
    assert card1.dataset("orders").previous is None
    record_scores(store, card1, "run1")
    bad = [r("a", "pass", "completeness"), r("b", "fail", "validity")]
    store.record(SuiteResult(run_id="run2"))
    card2 = scorecard(bad, store=store, run_id="run2")
    orders = card2.dataset("orders")
    assert orders.previous == 100.0 and orders.change == -50.0
    assert orders.degraded and orders.degraded_dimensions == ["validity"] and card2.degraded
    record_scores(store, card2, "run2")
    history = store.metric_history("orders", None, "quality_score")
    assert [v for _, v in history] == [100.0, 50.0]
    # a small drop under the threshold is not a degradation
    weights = ScoreWeights(degradation_threshold=60)
    assert not scorecard(bad, weights, store=store, run_id="run3").degraded
    assert card2.to_dict()["datasets"][0]["change"] == -50.0


def test_docstring_examples_of_scoring_anomaly_distribution():
    import doctest
    import importlib

    for name in ("crane.quality.score", "crane.quality.anomaly", "crane.quality.distribution"):
        result = doctest.testmod(importlib.import_module(name))
        assert result.attempted > 0 and result.failed == 0, name
