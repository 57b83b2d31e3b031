"""Statistics within bounds: min, max, mean, stddev, sum, percentiles, distinct count.

``type: statistic`` with ``stat: mean`` or the stat as the type (``type: mean``);
bounds are ``min``/``max``/``between``/``equals`` on the statistic's value.
Percentiles need ``p`` (0..1; ``median`` is p = 0.5). DuckDB and PostgreSQL
compute them in the fused aggregate; MariaDB (window function) and SQLite (the two
rows around the position, interpolated) need one extra query each. An engine that
can do neither gets an error result saying so rather than a silent pass. SQLite
has no STDDEV: it is computed from count, sum and sum of squares in the same scan.
"""

from __future__ import annotations

import math
from typing import Any

from sqlglot import exp

from crane.errors import ConfigError
from crane.quality.checks import check_types
from crane.quality.checks.base import Bounds, Check, Context, Probe, Scan, as_float
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
                return {}  # a probe, or an error saying the engine cannot
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

    def probes(self, ctx: Context) -> dict[str, Probe]:
        dialect = ctx.dialect(self.connection)
        if self.stat not in ("percentile", "median") or dialect.percentile is not None:
            return {}
        if dialect.percentile_probe is None:
            return {}

        def base(*projections: exp.Expr) -> exp.Select:
            return self.scan.select(dialect.name, *projections)

        return {
            "probe": Probe(self.connection, dialect.percentile_probe(base, self.col, self.fraction))
        }

    def value(self, values: dict[str, Any]) -> float | None:
        probe = values.get("probe")
        if isinstance(probe, dict):
            if "value" in probe:
                return as_float(probe["value"])
            return _interpolate(probe, self.fraction)
        if "n" in values:
            n, s, ss = (as_float(values.get(k)) or 0.0 for k in ("n", "s", "ss"))
            return math.sqrt(max(ss - s * s / n, 0.0) / (n - 1)) if n > 1 else None
        return as_float(values.get("value"))

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        bounds = Bounds.read(self.options)
        if not {"value", "n", "probe"} & set(values):
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


def _interpolate(row: dict[str, Any], fraction: float) -> float | None:
    """percentile_cont from the two values around position (n-1)·p."""
    low, high, n = as_float(row.get("lo")), as_float(row.get("hi")), as_float(row.get("n"))
    if low is None or not n:
        return None
    position = (n - 1) * fraction
    weight = position - math.floor(position)
    return low if high is None else low + (high - low) * weight
