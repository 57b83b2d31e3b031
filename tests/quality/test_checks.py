"""Every check type on real engines: statuses, values, samples, query counts."""

from __future__ import annotations

import pytest
from tests.quality.suite_data import every_check

from crane.quality.executor import run_suite
from crane.quality.loader import build_suite

ENGINES = [
    "duck_db",
    "sqlite_db",
    pytest.param("pg_db", marks=pytest.mark.integration),
    pytest.param("my_url", marks=pytest.mark.integration),
]


@pytest.mark.parametrize("engine_url", ENGINES, indirect=True)
def test_every_check_type(engine_url: str) -> None:
    cases = every_check()
    suite = build_suite([c[0] for c in cases], {"db": engine_url})
    outcome = run_suite(suite)
    assert outcome.error is None
    by_name = {r.check: r for r in outcome.results}
    problems = []
    for check, (_spec, status, value) in zip(suite.checks, cases, strict=True):
        result = by_name[check.name]
        if result.status != status or (value is not None and result.value != pytest.approx(value)):
            problems.append((check.name, result.status, result.value, result.message))
    assert not problems, "\n".join(map(str, problems))
