"""Trigger specs, the cron helper's doctests and its cost after a long outage."""

import datetime as dt
import doctest
import importlib
import time

import pytest

from crane.orchestrate.dag import DagSpec
from crane.orchestrate.triggers.cron import Schedule


@pytest.mark.parametrize(
    "name", ["crane.orchestrate.triggers.cron", "crane.orchestrate.triggers.messages"]
)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def test_trigger_specs_in_yaml_shape_and_their_errors():
    spec = DagSpec.model_validate(
        {
            "name": "d",
            "on_dataset": ["warehouse.orders"],
            "triggers": [
                {"file": "in/*.csv"},
                {"nats": "a.b"},
                {"redis": "c", "url": "redis://h:1"},
            ],
            "tasks": [{"name": "t", "command": "true"}],
        }
    )
    assert [(t.kind, t.target) for t in spec.triggers] == [
        ("file", "in/*.csv"),
        ("nats", "a.b"),
        ("redis", "c"),
    ]
    with pytest.raises(ValueError, match="exactly one of"):
        DagSpec.model_validate({"name": "d", "triggers": [{"file": "x", "nats": "y"}], "tasks": []})
    with pytest.raises(ValueError, match="url"):
        DagSpec.model_validate({"name": "d", "triggers": [{"file": "x", "url": "u"}], "tasks": []})


def test_a_month_of_missed_minutes_costs_only_the_ticks_that_can_run():
    s = Schedule("* * * * *")
    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    last = dt.datetime(2026, 10, 31, tzinfo=dt.UTC)
    began = time.perf_counter()
    first = s.due(now, last, catchup=True, limit=2)
    latest = s.due(now, last, catchup=False)
    capped = s.due(now, last, catchup=True, max_runs=3)
    assert time.perf_counter() - began < 0.1
    assert [a.isoformat() for a, _ in first] == [
        "2026-10-31T00:01:00+00:00",
        "2026-10-31T00:02:00+00:00",
    ]
    assert latest == [(now - dt.timedelta(minutes=1), now)]
    assert [b for _, b in capped] == [now - dt.timedelta(minutes=m) for m in (2, 1, 0)]
