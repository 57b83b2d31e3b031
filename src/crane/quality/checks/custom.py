"""Custom SQL: a query returning violating rows, or a query returning one metric.

The SQL runs as written (plus a COUNT wrapper) on a read-only session: a statement
that would write is refused by the checker's guard and by the database itself.
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp

from crane.quality.checks import check_types
from crane.quality.checks.base import Bounds, Check, Context, Probe, as_float
from crane.quality.model import CheckResult


def _as_query(sql: str, dialect: str) -> exp.Query | None:
    try:
        parsed = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return None
    return parsed if isinstance(parsed, exp.Query) else None


@check_types.register("custom_sql")
class CustomSql(Check):
    """``sql`` returns the violating rows; passes while there are ≤ ``max`` (default 0)."""

    dimension = "validity"

    def validate(self) -> None:
        self.require("sql")

    def probes(self, ctx: Context) -> dict[str, Probe]:
        dialect = ctx.dialect(self.connection).name
        sql = str(self.options["sql"]).strip().rstrip(";")
        query = _as_query(sql, dialect)
        if query is None:  # not a query: sent as written, for the guard/engine to refuse
            return {"count": Probe(self.connection, sql)}
        counted = exp.select(exp.alias_(exp.Count(this=exp.Star()), "violations"))
        return {"count": Probe(self.connection, counted.from_(query.subquery("q")))}

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        row = values.get("count") or {}
        count = int(next(iter(row.values()), 0) or 0) if isinstance(row, dict) else 0
        limit = int(self.options.get("max", 0))
        threshold = "= 0" if limit == 0 else f"<= {limit}"
        return self.result(count <= limit, count, threshold, f"{count} rows returned")

    def sample(
        self, ctx: Context, limit: int, values: dict[str, Any] | None = None
    ) -> Probe | None:
        dialect = ctx.dialect(self.connection).name
        query = _as_query(str(self.options["sql"]).strip().rstrip(";"), dialect)
        if query is None:
            return None
        return Probe(self.connection, exp.select("*").from_(query.subquery("q")).limit(limit))

    def metrics(self, values: dict[str, Any]) -> dict[str, Any]:
        row = values.get("count") or {}
        return {"custom_violations": next(iter(row.values()), None) if row else None}


@check_types.register("custom_metric")
class CustomMetric(Check):
    """``sql`` returns one value (first column of the first row), within bounds."""

    dimension = "accuracy"

    def validate(self) -> None:
        self.require("sql")

    def probes(self, ctx: Context) -> dict[str, Probe]:
        return {"row": Probe(self.connection, str(self.options["sql"]).strip().rstrip(";"))}

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        row = values.get("row") or {}
        value = as_float(next(iter(row.values()), None)) if row else None
        bounds = Bounds.read(self.options)
        return self.result(bounds.holds(value), value, bounds.text())

    def metrics(self, values: dict[str, Any]) -> dict[str, Any]:
        row = values.get("row") or {}
        name = str(self.options.get("metric", self.spec.name or "custom_metric"))
        return {name: as_float(next(iter(row.values()), None)) if row else None}
