"""The result model of the quality checker, shared by checks, reports, scoring and history.

Plain dataclasses (not pydantic) because results are produced in bulk on the hot path
and only serialised at the edges (JSON report, JUnit, the history store). Everything a
report needs is *in* the result: a report never re-queries the checked database
(LESSONS.md: GX re-scans to render results).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

Dimension = Literal[
    "completeness", "validity", "accuracy", "consistency", "uniqueness", "timeliness"
]
Severity = Literal["warn", "error"]
Status = Literal["pass", "warn", "fail", "error"]

DIMENSIONS: tuple[str, ...] = (
    "completeness",
    "validity",
    "accuracy",
    "consistency",
    "uniqueness",
    "timeliness",
)
# worst first: a suite's overall status is the worst of its checks
STATUS_ORDER: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2, "error": 3}


def new_run_id() -> str:
    """A sortable run id: UTC timestamp plus a random suffix."""
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"q-{now}-{uuid.uuid4().hex[:8]}"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def jsonable(value: Any) -> Any:
    """A JSON-safe form of a metric or sample value (dates as ISO text, NaN as None)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


@dataclass
class CheckResult:
    """The verdict of one check on one table (and filter).

    ``value`` is the measured metric (e.g. the number of violating ROWS, a missing
    percentage, a row count); ``threshold`` is its human-readable bound ("= 0",
    "<= 5%", "between 10 and 20"). ``sample`` holds up to N failing rows, fetched only
    when the check did not pass. ``status`` is ``error`` when the check could not be
    evaluated (its SQL failed), with the reason in ``message``.
    """

    check: str  # unique name within the suite, e.g. "orders.not_null(customer_id)"
    table: str
    check_type: str
    dimension: str
    severity: str = "error"
    status: str = "pass"
    column: str | None = None
    filter: str | None = None
    value: Any = None
    threshold: str | None = None
    message: str = ""
    sample: list[dict[str, Any]] = field(default_factory=list)
    sql: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # extra metrics (e.g. distinct dups)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["value"] = jsonable(self.value)
        data["sample"] = jsonable(self.sample)
        data["details"] = jsonable(self.details)
        return data


@dataclass
class MetricRecord:
    """One measured metric, kept in history for trends, row-count deltas and anomalies."""

    dataset: str
    metric: str
    value: float | None
    column: str | None = None
    filter: str | None = None
    measured_at: dt.datetime = field(default_factory=utcnow)
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["measured_at"] = self.measured_at.isoformat()
        data["value"] = jsonable(self.value)
        return data


@dataclass
class SuiteResult:
    """Everything one ``crane check`` run produced: results, metrics, cost."""

    run_id: str = field(default_factory=new_run_id)
    results: list[CheckResult] = field(default_factory=list)
    metrics: list[MetricRecord] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)  # SQL issued against checked databases
    seconds: float = 0.0
    started_at: dt.datetime = field(default_factory=utcnow)
    suite: str | None = None
    error: str | None = None  # set when the run itself failed (exit code 2)

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        worst = max((STATUS_ORDER[r.status] for r in self.results), default=0)
        return next(k for k, v in STATUS_ORDER.items() if v == worst)

    @property
    def query_count(self) -> int:
        return len(self.queries)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUS_ORDER, 0)
        for result in self.results:
            out[result.status] += 1
        return out

    def exit_code(self) -> int:
        """0 all passed (warnings allowed), 1 an error-severity check failed, 2 run failed.

        A check whose own SQL errored counts as a failed error-severity check only if
        its severity is error; the run itself failing (no connection, bad suite) is 2.
        """
        if self.error:
            return 2
        for result in self.results:
            if result.status in ("fail", "error") and result.severity == "error":
                return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "suite": self.suite,
            "status": self.status,
            "exit_code": self.exit_code(),
            "started_at": self.started_at.isoformat(),
            "seconds": self.seconds,
            "counts": self.counts(),
            "query_count": self.query_count,
            "queries": list(self.queries),
            "error": self.error,
            "results": [r.to_dict() for r in self.results],
            "metrics": [m.to_dict() for m in self.metrics],
        }
