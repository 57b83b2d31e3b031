"""The check catalogue: one module per check family, registered by type name.

Adding a check type is one module that subclasses `Check` (or `RowCheck`) and
registers itself with ``@check_types.register("name")``, plus a line in
``_BUILTINS`` so it is imported lazily. Distribution-change and anomaly checks
(``distribution``, ``anomaly``) live in their own modules (slots reserved below).
"""

from __future__ import annotations

from crane.quality.checks.base import Check
from crane.registry import Registry

_FAMILIES = {
    "crane.quality.checks.completeness": (
        "row_count",
        "row_count_compare",
        "row_count_change",
        "not_null",
        "missing_pct",
        "required_columns",
    ),
    "crane.quality.checks.validity": (
        "accepted_values",
        "range",
        "length",
        "regex",
        "format",
        "castable",
    ),
    "crane.quality.checks.consistency": ("referential", "rule", "reconcile"),
    "crane.quality.checks.uniqueness": ("unique", "duplicate_pct", "duplicate_rows"),
    "crane.quality.checks.timeliness": ("freshness", "lag"),
    "crane.quality.checks.statistics": (
        "statistic",
        "min",
        "max",
        "mean",
        "stddev",
        "sum",
        "percentile",
        "median",
        "distinct_count",
    ),
    "crane.quality.checks.custom": ("custom_sql", "custom_metric"),
    # reserved for the distribution and anomaly families (issue 4, points 1 and 5)
    "crane.quality.checks.distribution": ("distribution",),
    "crane.quality.checks.anomaly": ("anomaly",),
}

check_types: Registry[type[Check]] = Registry(
    "check type", builtins={name: module for module, names in _FAMILIES.items() for name in names}
)

# Checks that take ``columns: [a, b]`` as shorthand for one check per column.
PER_COLUMN = frozenset(
    {
        "not_null",
        "missing_pct",
        "accepted_values",
        "range",
        "length",
        "regex",
        "format",
        "castable",
        "freshness",
        "statistic",
        "min",
        "max",
        "mean",
        "stddev",
        "sum",
        "percentile",
        "median",
        "distinct_count",
    }
)

__all__ = ["PER_COLUMN", "Check", "check_types"]
