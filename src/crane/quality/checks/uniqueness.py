"""Uniqueness: unique column, compound key, duplicate %, duplicate whole rows.

Definitions (soda-core #1949 counted values and called it rows):

- ``duplicate_rows`` (the check's value) = the number of ROWS whose key appears more
  than once. Keys ``a, a, a, b`` give 3 duplicate rows;
- ``duplicated_values`` (in details) = the number of distinct keys that appear more
  than once (1 in the example);
- ``duplicate_pct`` = duplicate_rows / rows with a non-NULL key × 100.

Rows whose key has a NULL part are not keys and never duplicates (SQL semantics),
except in ``duplicate_rows`` checks, where whole rows are compared and NULLs group
together (GROUP BY semantics).

A passing check costs no extra query: one fused aggregate (non-NULL keys minus
distinct keys) proves there are no duplicates. Only when that is not zero does a
GROUP BY compute the precise figures and a sample of duplicated keys.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from crane.quality.checks import check_types
from crane.quality.checks.base import Check, Context, Probe, Scan, column, count_if, not_null
from crane.quality.model import CheckResult


def _groups(scan: Scan, dialect: str, keys: list[exp.Expr], skip_nulls: bool) -> exp.Select:
    """Keys appearing more than once, with their row count ``n``."""
    n = exp.alias_(exp.Count(this=exp.Star()), "n")
    query = scan.select(dialect, *[k.copy() for k in keys], n)
    if skip_nulls:
        query = query.where(exp.and_(*[not_null(k.copy()) for k in keys]))
    having = exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1))
    return query.group_by(*[k.copy() for k in keys]).having(having)


def _summary(groups: exp.Select, limit: int) -> exp.Select:
    """The most repeated keys, each row also carrying the totals over ALL repeated keys
    (window aggregates run before LIMIT): figures and sample in one GROUP BY."""
    everything = exp.Window(this=exp.Count(this=exp.Star()), partition_by=[])
    rows = exp.Window(this=exp.Sum(this=exp.column("n")), partition_by=[])
    order = exp.Ordered(this=exp.column("n"), desc=True)
    return (
        exp.select(
            exp.Star(),
            exp.alias_(everything, "duplicated_values"),
            exp.alias_(rows, "duplicate_rows"),
        )
        .from_(groups.subquery("d"))
        .order_by(order)
        .limit(limit)
    )


class _Duplicates(Check):
    dimension = "uniqueness"
    skip_nulls = True
    sample_from_detail = True

    def keys(self, ctx: Context) -> list[exp.Expr]:
        names = self.spec.columns or ([self.spec.column] if self.spec.column else [])
        return [column(n) for n in names]

    def detail(self, values: dict[str, Any], ctx: Context) -> Probe | None:
        dialect = ctx.dialect(self.connection).name
        groups = _groups(self.scan, dialect, self.keys(ctx), self.skip_nulls)
        rows = self.spec.sample_rows if self.spec.sample_rows is not None else ctx.sample_rows
        return Probe(self.connection, _summary(groups, max(rows, 1)))

    def judge(self, values: dict[str, Any], base_rows: int) -> CheckResult:
        detail = values.get("detail") or {}
        dup_rows = int(detail.get("duplicate_rows") or 0)
        dup_values = int(detail.get("duplicated_values") or 0)
        pct = 100.0 * dup_rows / base_rows if base_rows else 0.0
        message = f"{dup_rows} rows share {dup_values} duplicated keys" if dup_rows else ""
        details = {"duplicated_values": dup_values, "duplicate_pct": round(pct, 6)}
        if "max_pct" in self.options:
            limit = float(self.options["max_pct"])
            return self.result(pct <= limit, dup_rows, f"<= {limit:g}%", message, **details)
        limit_rows = int(self.options.get("max", 0))
        threshold = "= 0" if limit_rows == 0 else f"<= {limit_rows}"
        return self.result(dup_rows <= limit_rows, dup_rows, threshold, message, **details)


@check_types.register("unique", "duplicate_pct")
class Unique(_Duplicates):
    """``column`` (or the compound key ``columns``) is unique; ``max_pct`` turns it into
    a duplicate-percentage bound."""

    def validate(self) -> None:
        if not self.spec.column and not self.spec.columns:
            self.require("column")
        if self.spec.type == "duplicate_pct":
            self.require("max_pct")

    def aggregates(self, ctx: Context) -> dict[str, tuple[Scan, exp.Expr]]:
        keys = self.keys(ctx)
        dialect = ctx.dialect(self.connection)
        keyed = count_if(exp.and_(*[not_null(k.copy()) for k in keys]))
        found = {"keyed": (self.scan, keyed)}
        if len(keys) == 1:
            found["distinct"] = (self.scan, exp.Count(this=exp.Distinct(expressions=[keys[0]])))
        elif dialect.distinct_multi is not None:
            found["distinct"] = (self.scan, dialect.distinct_multi(keys))
        return found

    def probes(self, ctx: Context) -> dict[str, Probe]:
        """No multi-column DISTINCT on this engine: the GROUP BY figures come at once."""
        if "distinct" in self.aggregates(ctx):
            return {}
        return {"detail": self.detail({}, ctx) or Probe(self.connection, "")}

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        keyed_rows = int(values.get("keyed") or 0)
        if "detail" not in values and int(values.get("distinct") or 0) == keyed_rows:
            return self.judge({"detail": {}}, keyed_rows)  # no key appears twice
        if "detail" not in values:  # some key repeats: the executor fetches the figures
            return self.result(False, None, None, "duplicates found", needs_detail=True)
        return self.judge(values, keyed_rows)

    def metrics(self, values: dict[str, Any]) -> dict[str, Any]:
        detail = values.get("detail") or {}
        return {"duplicate_rows": int(detail.get("duplicate_rows") or 0)}


@check_types.register("duplicate_rows")
class DuplicateRows(_Duplicates):
    """No two rows are identical in every column (NULLs compare equal here)."""

    needs_schema = True
    skip_nulls = False

    def keys(self, ctx: Context) -> list[exp.Expr]:
        return [column(n) for n in ctx.schemas.get((self.connection, self.spec.table), [])]

    def probes(self, ctx: Context) -> dict[str, Probe]:
        return {"detail": self.detail({}, ctx) or Probe(self.connection, "")}

    def aggregates(self, ctx: Context) -> dict[str, tuple[Scan, exp.Expr]]:
        return {"rows": (self.scan, exp.Count(this=exp.Star()))}

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        return self.judge(values, int(values.get("rows") or 0))
