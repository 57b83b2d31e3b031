"""Completeness: row counts (absolute, against another table, against the last run),
NULLs, missing percentages and required columns."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from crane.quality.checks import check_types
from crane.quality.checks.base import (
    Bounds,
    Check,
    Context,
    RowCheck,
    Scan,
    as_float,
    count_if,
    is_null,
)
from crane.quality.model import CheckResult

ROWS = exp.Count(this=exp.Star())


@check_types.register("row_count")
class RowCount(Check):
    """Rows in the scan within ``min``/``max``/``between``/``equals`` (default ≥ 1)."""

    dimension = "completeness"

    def aggregates(self, ctx: Context) -> dict[str, tuple[Scan, exp.Expr]]:
        return {"rows": (self.scan, ROWS.copy())}

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        bounds = Bounds.read(self.options)
        bounds = Bounds(low=1) if bounds.empty else bounds
        rows = int(values.get("rows") or 0)
        return self.result(bounds.holds(rows), rows, bounds.text())


@check_types.register("row_count_compare")
class RowCountCompare(Check):
    """Rows equal to another table's (``to``, ``to_filter``, ``to_connection``)
    within ``tolerance_pct`` (default 0) — e.g. target vs source after a load."""

    dimension = "completeness"

    def validate(self) -> None:
        self.require("to")

    @property
    def other(self) -> Scan:
        o = self.options
        return Scan(o.get("to_connection") or self.connection, o["to"], o.get("to_filter"))

    def aggregates(self, ctx: Context) -> dict[str, tuple[Scan, exp.Expr]]:
        return {"rows": (self.scan, ROWS.copy()), "other": (self.other, ROWS.copy())}

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        rows, other = int(values.get("rows") or 0), int(values.get("other") or 0)
        tolerance = float(self.options.get("tolerance_pct", 0))
        diff = 100.0 * abs(rows - other) / other if other else (0.0 if rows == 0 else 100.0)
        return self.result(
            diff <= tolerance,
            rows,
            f"{other} ± {tolerance:g}%",
            f"{rows} rows vs {other} in {self.options['to']} ({diff:.3g}% apart)",
            other=other,
            diff_pct=diff,
        )


@check_types.register("row_count_change")
class RowCountChange(Check):
    """Rows within ± ``max_change_pct`` of the previous run's count (from history)."""

    dimension = "completeness"

    def validate(self) -> None:
        self.require("max_change_pct")

    def aggregates(self, ctx: Context) -> dict[str, tuple[Scan, exp.Expr]]:
        return {"rows": (self.scan, ROWS.copy())}

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        rows = int(values.get("rows") or 0)
        limit = float(self.options["max_change_pct"])
        history = []
        if ctx.store is not None:
            history = ctx.store.metric_history(
                self.spec.table, None, "row_count", self.spec.filter, 1, exclude_run=ctx.run_id
            )
        if not history or history[-1][1] is None:
            return self.result(True, rows, f"± {limit:g}%", "no previous run: baseline recorded")
        previous = float(history[-1][1] or 0)
        change = 100.0 * (rows - previous) / previous if previous else (0.0 if not rows else 100.0)
        return self.result(
            abs(change) <= limit,
            rows,
            f"{previous:g} ± {limit:g}%",
            f"{change:+.3g}% vs previous run ({previous:g} rows)",
            previous=previous,
            change_pct=change,
        )


@check_types.register("not_null")
class NotNull(RowCheck):
    """No NULL in ``column`` (or at most ``max`` / ``max_pct``)."""

    dimension = "completeness"

    def predicate(self, ctx: Context) -> exp.Expr:
        return is_null(self.col)

    def metrics(self, values: dict[str, Any]) -> dict[str, Any]:
        return {"null_count": values.get("violations")}


@check_types.register("missing_pct")
class MissingPct(Check):
    """Share of missing values ≤ ``max`` percent; ``empty_is_missing`` counts ''."""

    dimension = "completeness"

    def validate(self) -> None:
        self.require("max")

    def missing(self, ctx: Context) -> exp.Expr:
        condition = is_null(self.col)
        if self.options.get("empty_is_missing"):
            text = exp.cast(self.col, ctx.dialect(self.connection).text_type)
            blank = exp.EQ(this=exp.Trim(this=text), expression=exp.Literal.string(""))
            condition = exp.or_(condition, blank)
        return condition

    def aggregates(self, ctx: Context) -> dict[str, tuple[Scan, exp.Expr]]:
        return {
            "missing": (self.scan, count_if(self.missing(ctx))),
            "rows": (self.scan, ROWS.copy()),
        }

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        missing, rows = int(values.get("missing") or 0), int(values.get("rows") or 0)
        pct = 100.0 * missing / rows if rows else 0.0
        limit = as_float(self.options["max"]) or 0.0
        return self.result(
            pct <= limit, round(pct, 6), f"<= {limit:g}%", f"{missing} of {rows} rows missing"
        )

    def metrics(self, values: dict[str, Any]) -> dict[str, Any]:
        rows = int(values.get("rows") or 0)
        return {"missing_pct": 100.0 * int(values.get("missing") or 0) / rows if rows else 0.0}

    def sample(self, ctx: Context, limit: int, values: dict[str, Any] | None = None) -> Any:
        from crane.quality.checks.base import Probe

        dialect = ctx.dialect(self.connection).name
        query = self.scan.select(dialect, exp.Star()).where(self.missing(ctx)).limit(limit)
        return Probe(self.connection, query)


@check_types.register("required_columns")
class RequiredColumns(Check):
    """The table has every column in ``columns`` (a schema check)."""

    dimension = "completeness"
    needs_schema = True

    def validate(self) -> None:
        self.require("columns")

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        present = ctx.schemas.get((self.connection, self.spec.table), [])
        lowered = {c.lower() for c in present}
        missing = [c for c in self.spec.columns or [] if c.lower() not in lowered]
        message = f"missing: {', '.join(missing)}" if missing else ""
        return self.result(not missing, len(missing), "= 0 missing", message, missing=missing)
