"""Timeliness: freshness of the newest timestamp, lag between two timestamp columns.

Timestamps without a time zone are read as UTC (``timezone_naive: local`` reads
them in the checker's local zone instead). SQLite stores text: ISO strings are
parsed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlglot import exp

from crane.quality.checks import check_types
from crane.quality.checks.base import Check, Context, RowCheck, Scan, column, seconds
from crane.quality.model import CheckResult


def as_datetime(value: Any, naive_local: bool = False) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is None:
        return value.astimezone(dt.UTC) if naive_local else value.replace(tzinfo=dt.UTC)
    return value


@check_types.register("freshness")
class Freshness(Check):
    """max(``column``) is at most ``max_age`` (e.g. ``6h``, ``2d``) before now."""

    dimension = "timeliness"

    def validate(self) -> None:
        self.require("column", "max_age")

    def aggregates(self, ctx: Context) -> dict[str, tuple[Scan, exp.Expr]]:
        return {"latest": (self.scan, exp.Max(this=self.col))}

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        limit = seconds(self.options["max_age"], "max_age")
        naive_local = self.options.get("timezone_naive") == "local"
        latest = as_datetime(values.get("latest"), naive_local)
        threshold = f"<= {self.options['max_age']}"
        if latest is None:
            return self.result(False, None, threshold, "no rows with a timestamp")
        age = (ctx.now - latest).total_seconds()
        return self.result(
            age <= limit,
            round(age, 3),
            threshold,
            f"newest {latest.isoformat()} is {_human(age)} old",
            latest=latest.isoformat(),
        )

    def metrics(self, values: dict[str, Any]) -> dict[str, Any]:
        latest = as_datetime(values.get("latest"))
        return {"latest_epoch": latest.timestamp() if latest else None}


@check_types.register("lag")
class Lag(RowCheck):
    """``to_column`` − ``column`` at most ``max_lag`` in every row (e.g. loaded_at vs
    event_at); the value is the number of rows lagging more."""

    dimension = "timeliness"

    def validate(self) -> None:
        self.require("column", "to_column", "max_lag")

    def _lag(self, ctx: Context) -> exp.Expr:
        epoch = ctx.dialect(self.connection).epoch
        later = column(self.options["to_column"])
        return exp.Sub(this=epoch(later), expression=epoch(self.col))

    def predicate(self, ctx: Context) -> exp.Expr:
        limit = seconds(self.options["max_lag"], "max_lag")
        return exp.GT(this=self._lag(ctx), expression=exp.Literal.number(limit))

    def aggregates(self, ctx: Context) -> dict[str, tuple[Scan, exp.Expr]]:
        found = super().aggregates(ctx)
        found["max_lag"] = (self.scan, exp.Max(this=self._lag(ctx)))
        return found

    def metrics(self, values: dict[str, Any]) -> dict[str, Any]:
        return {
            "max_lag_seconds": values.get("max_lag"),
            "lag_violations": values.get("violations"),
        }


def _human(age: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(age) >= size:
            return f"{age / size:.1f}{unit}"
    return f"{age:.0f}s"
