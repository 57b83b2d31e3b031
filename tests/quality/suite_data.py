"""The every-check-type suite over the conftest data set, with expected outcomes."""

from __future__ import annotations

from typing import Any

from tests.quality.conftest import orders_rows

AMOUNTS = [r[4] for r in orders_rows()]


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * p
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


MEDIAN, P90 = _percentile(AMOUNTS, 0.5), _percentile(AMOUNTS, 0.9)


def every_check() -> list[tuple[dict[str, Any], str, Any]]:
    """(spec, expected status, expected value or None to skip the value)."""
    t = "orders"
    return [
        ({"type": "row_count", "table": t, "min": 1}, "pass", 21),
        ({"type": "row_count", "table": t, "between": [1, 10], "name": "rc_small"}, "fail", 21),
        ({"type": "row_count_compare", "table": t, "to": "customers"}, "fail", 21),
        ({"type": "not_null", "table": t, "column": "id"}, "pass", 0),
        ({"type": "not_null", "table": t, "column": "customer_id"}, "fail", 1),
        ({"type": "missing_pct", "table": t, "column": "customer_id", "max": 10}, "pass", None),
        ({"type": "required_columns", "table": t, "columns": ["id", "nope"]}, "fail", 1),
        (
            {"type": "accepted_values", "table": t, "column": "status", "values": ["paid", "new"]},
            "fail",
            1,
        ),
        ({"type": "range", "table": t, "column": "amount", "min": 0}, "fail", 1),
        # `max` is range's upper bound here, never a tolerated number of violations
        (
            {"type": "range", "table": t, "column": "amount", "max": 100, "name": "range_max"},
            "fail",
            sum(1 for a in AMOUNTS if a is not None and a > 100),
        ),
        ({"type": "length", "table": t, "column": "email", "max_length": 30}, "pass", 0),
        ({"type": "regex", "table": t, "column": "phone", "pattern": "^[+]44"}, "pass", 0),
        ({"type": "format", "table": t, "column": "email", "format": "email"}, "fail", 1),
        (
            {"type": "format", "table": t, "column": "phone", "format": "e164", "name": "e164"},
            "pass",
            0,
        ),
        ({"type": "castable", "table": t, "column": "email", "to": "date"}, "fail", 21),
        (
            {
                "type": "referential",
                "table": t,
                "column": "customer_id",
                "to": "customers",
                "to_column": "id",
            },
            "fail",
            1,
        ),
        ({"type": "rule", "table": t, "expression": "updated_at >= created_at"}, "fail", 1),
        (
            {
                "type": "reconcile",
                "table": t,
                "column": "amount",
                "metric": "sum",
                "to": "orders",
                "to_filter": "id > 0",
                "name": "recon",
            },
            "pass",
            sum(AMOUNTS),
        ),
        ({"type": "unique", "table": t, "column": "id"}, "fail", 2),
        ({"type": "unique", "table": t, "columns": ["id", "email"], "name": "ck"}, "fail", 2),
        ({"type": "duplicate_pct", "table": t, "column": "id", "max_pct": 10}, "pass", 2),
        ({"type": "duplicate_rows", "table": t}, "fail", 2),
        (
            {"type": "freshness", "table": t, "column": "created_at", "max_age": "36500d"},
            "pass",
            None,
        ),
        ({"type": "freshness", "table": t, "column": "updated_at", "max_age": "1h"}, "fail", None),
        (
            {
                "type": "lag",
                "table": t,
                "column": "created_at",
                "to_column": "updated_at",
                "max_lag": "10m",
            },
            "fail",
            20,
        ),
        (
            {"type": "mean", "table": t, "column": "amount", "between": [0, 1000]},
            "pass",
            sum(AMOUNTS) / len(AMOUNTS),
        ),
        ({"type": "stddev", "table": t, "column": "amount", "max": 1000}, "pass", None),
        ({"type": "sum", "table": t, "column": "amount", "max": 10}, "fail", sum(AMOUNTS)),
        ({"type": "distinct_count", "table": t, "column": "status", "equals": 3}, "pass", 3),
        ({"type": "min", "table": t, "column": "amount", "min": 0}, "fail", -5),
        ({"type": "median", "table": t, "column": "amount", "max": 1000}, "pass", MEDIAN),
        ({"type": "percentile", "table": t, "column": "amount", "p": 0.9, "max": 100}, "fail", P90),
        (
            {"type": "custom_sql", "table": t, "sql": "SELECT * FROM orders WHERE amount < 0"},
            "fail",
            1,
        ),
        (
            {
                "type": "custom_metric",
                "table": t,
                "sql": "SELECT COUNT(*) FROM customers",
                "equals": 5,
            },
            "pass",
            5,
        ),
    ]
