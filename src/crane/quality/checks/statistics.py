"""Statistics within bounds: min, max, mean, stddev, sum, percentiles, distinct count.

``type: statistic`` with ``stat: mean`` or the stat as the type (``type: mean``);
bounds are ``min``/``max``/``between``/``equals`` on the statistic's value.
Percentiles need ``p`` (0..1; ``median`` is p = 0.5) and an engine that computes
them in an aggregate (DuckDB, PostgreSQL); elsewhere the check reports an error
saying so rather than passing silently. SQLite has no STDDEV: it is computed from
count, sum and sum of squares fetched in the same scan.
"""

from __future__ import annotations

import math
from typing import Any

from sqlglot import exp

from crane.errors import ConfigError
from crane.quality.checks import check_types
from crane.quality.checks.base import Bounds, Check, Context, Scan, as_float
from crane.quality.model import CheckResult

STATS = ("min", "max", "mean", "stddev", "sum", "percentile", "median", "distinct_count")


@check_types.register("statistic", *STATS)
class Statistic(Check):
    """One statistic of ``column`` within bounds."""

    dimension = "accuracy"

    @property
    def stat(self) -> str:
        stat = self.options.get("stat") if self.spec.type == "statistic" else self.spec.type
        return str(stat or "")

    def validate(self) -> None:
        self.require("column")
        if self.stat not in STATS:
            raise ConfigError(f"check {self.name!r}: stat must be one of {', '.join(STATS)}")
        if self.stat == "percentile":
            self.require("p")

    @property
    def fraction(self) -> float:
        return 0.5 if self.stat == "median" else float(self.options.get("p", 0.5))

    def aggregates(self, ctx: Context) -> dict[str, tuple[Scan, exp.Expr]]:
        dialect = ctx.dialect(self.connection)
        c = self.col
        if self.stat in ("percentile", "median"):
            if dialect.percentile is None:
                return {}
            return {"value": (self.scan, dialect.percentile(c, self.fraction))}
        if self.stat == "stddev" and not dialect.native_stddev:
            square = exp.Mul(this=c.copy(), expression=c.copy())
            return {
                "n": (self.scan, exp.Count(this=c.copy())),
                "s": (self.scan, exp.Sum(this=c.copy())),
                "ss": (self.scan, exp.Sum(this=square)),
            }
        build: dict[str, exp.Expr] = {
            "min": exp.Min(this=c),
            "max": exp.Max(this=c),
            "mean": exp.Avg(this=c),
            "stddev": exp.Stddev(this=c),
            "sum": exp.Sum(this=c),
            "distinct_count": exp.Count(this=exp.Distinct(expressions=[c])),
        }
        return {"value": (self.scan, build[self.stat])}

    def value(self, values: dict[str, Any]) -> float | None:
        if "n" in values:
            n, s, ss = (as_float(values.get(k)) or 0.0 for k in ("n", "s", "ss"))
            return math.sqrt(max(ss - s * s / n, 0.0) / (n - 1)) if n > 1 else None
        return as_float(values.get("value"))

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        bounds = Bounds.read(self.options)
        if "value" not in values and "n" not in values:
            name = ctx.dialect(self.connection).name
            return self.errored(f"{self.stat} is not computable in one aggregate on {name}")
        value = self.value(values)
        label = f"{self.stat}({self.spec.column})"
        if value is None:
            return self.result(bounds.empty, None, bounds.text(), f"{label} is NULL (no values)")
        return self.result(bounds.holds(value), value, bounds.text(), f"{label} = {value:g}")

    def metrics(self, values: dict[str, Any]) -> dict[str, Any]:
        name = f"p{self.fraction * 100:g}" if self.stat in ("percentile", "median") else self.stat
        return {name: self.value(values)}
