"""The ``anomaly`` check: a metric measured in the suite's one scan, judged on its history.

The math lives in `crane.quality.anomaly`; this module only says how each
metric is measured (an aggregate fused into the table's scan) and under which
name it is kept in history, so the next run can train on it.

    - anomaly: {metric: row_count}
    - anomaly: {metric: null_rate, column: email, sensitivity: 4}
    - anomaly: {metric: freshness, column: updated_at, direction: up}
    - anomaly: {metric: revenue, expression: "sum(amount)", seasonality: day_of_week}
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from crane.errors import ConfigError
from crane.quality.anomaly import AnomalyConfig, detect
from crane.quality.checks import check_types
from crane.quality.checks.base import Check, Context, Scan, as_float, count_if, is_null
from crane.quality.checks.timeliness import as_datetime
from crane.quality.model import CheckResult

# metric -> (needs a column, aggregate builder); row_count is the scan's fused COUNT(*)
_AGGREGATES = {
    "row_count": (False, lambda c: exp.Count(this=exp.Star())),
    "null_count": (True, lambda c: count_if(is_null(c))),
    "distinct_count": (True, lambda c: exp.Count(this=exp.Distinct(expressions=[c]))),
    "mean": (True, lambda c: exp.Avg(this=c)),
    "min": (True, lambda c: exp.Min(this=c)),
    "max": (True, lambda c: exp.Max(this=c)),
    "sum": (True, lambda c: exp.Sum(this=c)),
    "stddev": (True, lambda c: exp.StddevSamp(this=c)),
    "freshness": (True, lambda c: exp.Max(this=c)),
    "null_rate": (True, lambda c: count_if(is_null(c))),
}
# stored under these names (row_count is already recorded by the executor per scan)
_HISTORY_NAME = {"freshness": "freshness_seconds", "null_rate": "null_rate"}


@check_types.register("anomaly")
class Anomaly(Check):
    """``metric`` within the robust band of its own history (see `crane.quality.anomaly`)."""

    dimension = "accuracy"

    def validate(self) -> None:
        self.require("metric")
        metric = str(self.options["metric"])
        if metric not in _AGGREGATES and "expression" not in self.options:
            known = ", ".join(sorted(_AGGREGATES))
            raise ConfigError(
                f"anomaly check {self.name!r}: unknown metric {metric!r}",
                hint=f"use one of {known}, or give 'expression: <aggregate SQL>'",
                table=self.spec.table,
            )
        if _AGGREGATES.get(metric, (False,))[0] and not self.spec.column:
            raise ConfigError(f"anomaly metric {metric!r} needs a column", table=self.spec.table)
        try:
            self.config = AnomalyConfig.read(self.options)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"anomaly check {self.name!r}: {error}") from error

    @property
    def metric(self) -> str:
        return str(self.options["metric"])

    @property
    def history_name(self) -> str:
        return _HISTORY_NAME.get(self.metric, self.metric)

    @property
    def name(self) -> str:
        if self.spec.name:
            return self.spec.name
        target = f", {self.spec.column}" if self.spec.column else ""
        return f"{self.spec.table}.anomaly({self.metric}{target})"

    def aggregates(self, ctx: Context) -> dict[str, tuple[Scan, exp.Expr]]:
        if "expression" in self.options:
            dialect = ctx.dialect(self.connection).name
            parsed: Any = exp.maybe_parse(str(self.options["expression"]), dialect=dialect)
            return {"value": (self.scan, parsed)}
        _, build = _AGGREGATES[self.metric]
        column = self.col if self.spec.column else None
        found = {"value": (self.scan, build(column))}
        if self.metric == "null_rate":
            found["rows"] = (self.scan, exp.Count(this=exp.Star()))
        return found

    def measured(self, values: dict[str, Any], ctx: Context) -> float | None:
        raw = values.get("value")
        if self.metric == "freshness":
            latest = as_datetime(raw, self.options.get("timezone_naive") == "local")
            return None if latest is None else (ctx.now - latest).total_seconds()
        if self.metric == "null_rate":
            rows = int(values.get("rows") or 0)
            return (float(raw or 0) / rows) if rows else None
        return as_float(raw)

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        value = self.measured(values, ctx)
        history: list[Any] = []
        if ctx.store is not None:
            depth = self.config.max_history * (24 if self.config.seasonality else 1)
            history = ctx.store.metric_history(
                self.spec.table,
                self.spec.column if self.metric != "row_count" else None,
                self.history_name,
                self.spec.filter,
                depth,
                exclude_run=ctx.run_id,  # the tested value never trains its own band
            )
        self._last_value = value
        verdict = detect(history, value, ctx.now, self.config)
        threshold = f"[{_bound(verdict.lower)}, {_bound(verdict.upper)}]"
        if verdict.status == "not_enough_history":
            threshold = "not enough history"
        result = self.result(not verdict.is_anomaly, value, threshold, verdict.reason)
        result.details.update(verdict.to_dict())
        result.details["metric"] = self.history_name
        return result

    def metrics(self, values: dict[str, Any]) -> dict[str, Any]:
        if self.metric == "row_count":
            return {}  # the executor records every scan's row_count
        return {self.history_name: self._last_value}

    _last_value: float | None = None


def _bound(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"
