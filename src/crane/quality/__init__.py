"""The data quality checker: read-only checks fused into one scan per table, with history.

The Python API builds the same suites as ``checks/*.yml``::

    from crane.quality import build_suite, run_suite, QualityStore

    suite = build_suite(
        [{"type": "not_null", "table": "orders", "columns": ["id", "customer_id"]},
         {"type": "unique", "table": "orders", "column": "id"}],
        {"warehouse": "duckdb:///warehouse.duckdb"},
    )
    outcome = run_suite(suite, QualityStore("sqlite:///.crane/state.sqlite"))
    outcome.exit_code()   # 0 passed, 1 an error-severity check failed, 2 the run failed

Names resolve lazily so ``import crane.quality`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_suite": "crane.quality.loader",
    "load_suite": "crane.quality.loader",
    "Suite": "crane.quality.loader",
    "run_suite": "crane.quality.executor",
    "plan_suite": "crane.quality.executor",
    "CheckSpec": "crane.quality.checks.base",
    "check_types": "crane.quality.checks",
    "CheckResult": "crane.quality.model",
    "MetricRecord": "crane.quality.model",
    "SuiteResult": "crane.quality.model",
    "QualityStore": "crane.state.quality",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'crane.quality' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
