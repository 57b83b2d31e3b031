"""The check contract: a check declares SQL *metrics*, then judges their values.

A check never runs SQL itself. It declares

- ``aggregates``: named aggregate expressions over one scan (connection, table,
  filter). The compiler fuses the aggregates of every check on the same scan into
  ONE ``SELECT`` (duplicates such as ``COUNT(*)`` are computed once);
- ``probes``: stand-alone queries for what no aggregate can express (a GROUP BY,
  custom SQL), each returning one row;
- ``detail``/``sample``: queries run only when the check did not pass (precise
  duplicate counts, failing rows), so a passing suite pays for none of them.

``evaluate`` turns the values into a `CheckResult`. Checks are registered by type
name in ``crane.quality.checks.check_types``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from crane.connectors.base import TableRef
from crane.errors import ConfigError
from crane.quality.model import CheckResult

if TYPE_CHECKING:
    from crane.quality.dialects import QualityDialect
    from crane.quality.readonly import ReadOnlySession
    from crane.state.quality import QualityStore


class CheckSpec(BaseModel):
    """One check as written in YAML or Python; type-specific options stay as extras."""

    model_config = ConfigDict(extra="allow")

    type: str
    table: str
    connection: str | None = None
    name: str | None = None
    column: str | None = None
    columns: list[str] | None = None
    filter: str | None = None
    severity: str = Field(default="error", pattern="^(warn|error)$")
    dimension: str | None = None
    sample_rows: int | None = None

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


@dataclass(frozen=True)
class Scan:
    """One pass over one table with one filter, on one connection."""

    connection: str
    table: str
    filter: str | None = None

    def source(self, dialect: str) -> exp.Table:
        return TableRef.parse(self.table).expression()

    def where(self, dialect: str) -> exp.Expr | None:
        return exp.condition(self.filter, dialect=dialect) if self.filter else None

    def select(self, dialect: str, *projections: exp.Expr) -> exp.Select:
        # copy=False: the builders would otherwise deep-copy the whole new SELECT at
        # each step (a third of the checker's Python time on a 30-check fused scan)
        query = exp.select(*projections).from_(self.source(dialect), copy=False)
        where = self.where(dialect)
        return query.where(where, copy=False) if where is not None else query

    def __str__(self) -> str:
        return f"{self.table} [{self.filter}]" if self.filter else self.table


@dataclass(frozen=True)
class Probe:
    """A stand-alone query returning one row of named values."""

    connection: str
    query: exp.Expr | str


class Context:
    """What checks may consult: dialects per connection, history, the clock, schemas."""

    def __init__(
        self,
        dialects: dict[str, QualityDialect],
        *,
        store: QualityStore | None = None,
        run_id: str = "",
        now: dt.datetime | None = None,
        sample_rows: int = 5,
    ) -> None:
        self.dialects = dialects
        self.store = store
        self.run_id = run_id
        self.now = now or dt.datetime.now(dt.UTC)
        self.sample_rows = sample_rows
        self.schemas: dict[tuple[str, str], list[str]] = {}
        self.scanned: dict[Scan, int] = {}  # rows each fused scan counted
        self.sessions: dict[str, ReadOnlySession] = {}

    def dialect(self, connection: str) -> QualityDialect:
        try:
            return self.dialects[connection]
        except KeyError:
            known = ", ".join(sorted(self.dialects))
            raise ConfigError(f"unknown connection {connection!r}; known: {known}") from None

    def session(self, connection: str) -> ReadOnlySession:
        return self.sessions[connection]


def column(name: str) -> exp.Column:
    """A quoted column reference (``a.b`` stays one name: columns are not qualified)."""
    return exp.column(exp.to_identifier(name, quoted=True))


def count_if(predicate: exp.Expr) -> exp.Expr:
    """COUNT(CASE WHEN p THEN 1 END): 0 on an empty table, NULL predicates not counted."""
    return exp.Count(this=exp.Case(ifs=[exp.If(this=predicate, true=exp.Literal.number(1))]))


def is_null(value: exp.Expr) -> exp.Expr:
    return exp.Is(this=value, expression=exp.null())


def not_null(value: exp.Expr) -> exp.Expr:
    return exp.Not(this=is_null(value))


def literal(value: Any) -> exp.Expr:
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$")
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(value: Any, field_name: str = "duration") -> float:
    """'90s', '15m', '6h', '2d', '1w' or a number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(f"{field_name}: cannot read {value!r} as a duration (e.g. 6h, 30m, 2d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def as_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Bounds:
    """``min``/``max``/``between``/``equals`` thresholds, read from check options."""

    low: float | None = None
    high: float | None = None

    @classmethod
    def read(cls, params: dict[str, Any], prefix: str = "") -> Bounds:
        between = params.get(f"{prefix}between")
        if between is not None:
            if not isinstance(between, list | tuple) or len(between) != 2:
                raise ConfigError(f"{prefix}between needs [low, high], got {between!r}")
            return cls(as_float(between[0]), as_float(between[1]))
        if f"{prefix}equals" in params:
            value = as_float(params[f"{prefix}equals"])
            return cls(value, value)
        return cls(as_float(params.get(f"{prefix}min")), as_float(params.get(f"{prefix}max")))

    @property
    def empty(self) -> bool:
        return self.low is None and self.high is None

    def holds(self, value: Any) -> bool:
        number = as_float(value)
        if number is None:
            return False
        return (self.low is None or number >= self.low) and (
            self.high is None or number <= self.high
        )

    def text(self, unit: str = "") -> str:
        if self.low is not None and self.low == self.high:
            return f"= {_fmt(self.low)}{unit}"
        if self.low is not None and self.high is not None:
            return f"between {_fmt(self.low)}{unit} and {_fmt(self.high)}{unit}"
        if self.low is not None:
            return f">= {_fmt(self.low)}{unit}"
        if self.high is not None:
            return f"<= {_fmt(self.high)}{unit}"
        return "any"


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


@dataclass
class Check:
    """Base class of every check type (see the module docstring)."""

    spec: CheckSpec
    connection: str
    type: ClassVar[str] = "check"
    dimension: ClassVar[str] = "validity"
    needs_schema: ClassVar[bool] = False
    # the detail query's rows ARE the failing sample (no separate sample query)
    sample_from_detail: ClassVar[bool] = False
    options: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.options = self.spec.params
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError for missing or wrong options (at load time, not at run time)."""

    def require(self, *names: str) -> None:
        for name in names:
            if name not in self.options and getattr(self.spec, name, None) is None:
                raise ConfigError(
                    f"check {self.name!r} ({self.spec.type}) needs {name!r}", table=self.spec.table
                )

    # -- identity --------------------------------------------------------------
    @property
    def name(self) -> str:
        if self.spec.name:
            return self.spec.name
        target = self.spec.column or ",".join(self.spec.columns or [])
        return f"{self.spec.table}.{self.spec.type}({target})"

    @property
    def scan(self) -> Scan:
        return Scan(self.connection, self.spec.table, self.spec.filter)

    @property
    def col(self) -> exp.Column:
        if not self.spec.column:
            raise ConfigError(f"check {self.name!r} needs a column", table=self.spec.table)
        return column(self.spec.column)

    # -- planning --------------------------------------------------------------
    def aggregates(self, ctx: Context) -> dict[str, tuple[Scan, exp.Expr]]:
        """Local name -> (scan, aggregate expression); fused by the compiler."""
        return {}

    def row_columns(self, ctx: Context) -> dict[str, tuple[Scan, exp.Expr]]:
        """Column name -> (scan, row-level expression) that this check's aggregates read
        by that name. The compiler computes each once per row of the scan, so two
        aggregates over one ``IN (subquery)`` build its hash table once, not twice.
        Names must be unique to the expression (identical ones are computed once)."""
        return {}

    def probes(self, ctx: Context) -> dict[str, Probe]:
        """Local name -> stand-alone one-row query (its row arrives as a dict)."""
        return {}

    def local(self, ctx: Context) -> dict[str, Any]:
        """Values computed outside the checked databases (cross-connection checks)."""
        return {}

    def local_queries(self, ctx: Context) -> list[tuple[str, exp.Expr]]:
        """(connection, query) that ``local`` sends, for ``crane check --plan``."""
        return []

    def detail(self, values: dict[str, Any], ctx: Context) -> Probe | None:
        """A query for precise figures, run only when ``evaluate`` did not pass."""
        return None

    def sample(
        self, ctx: Context, limit: int, values: dict[str, Any] | None = None
    ) -> Probe | None:
        """A query for up to ``limit`` failing rows, run only when the check did not pass.
        ``values`` are the check's figures, when a fused aggregate already pinned the
        failing rows down (see `Referential`)."""
        return None

    # -- judging ---------------------------------------------------------------
    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        raise NotImplementedError

    def metrics(self, values: dict[str, Any]) -> dict[str, Any]:
        """Metric name -> value to keep in history (column-level unless named otherwise)."""
        return {}

    def result(
        self, passed: bool, value: Any, threshold: str | None, message: str = "", **details: Any
    ) -> CheckResult:
        status = "pass" if passed else ("fail" if self.spec.severity == "error" else "warn")
        return CheckResult(
            check=self.name,
            table=self.spec.table,
            check_type=self.spec.type,
            dimension=self.spec.dimension or self.dimension,
            severity=self.spec.severity,
            status=status,
            column=self.spec.column or (",".join(self.spec.columns) if self.spec.columns else None),
            filter=self.spec.filter,
            value=value,
            threshold=threshold,
            message=message,
            details=details,
        )

    def errored(self, message: str, sql: str | None = None) -> CheckResult:
        result = self.result(False, None, None, message)
        result.status = "error"
        result.sql = sql
        return result


class RowCheck(Check):
    """A check that counts violating rows: passes while count ≤ ``max_violations`` (default 0).

    ``max`` is accepted for ``max_violations`` except by checks whose own bounds are
    called ``max`` (``range``): there it is the bound, never a tolerance. ``max_pct``
    bounds the violating share of the scanned rows instead. The value reported is the
    number of violating ROWS; failing rows are sampled on failure.
    """

    # option names this check uses as its own bounds; never read as the tolerated count
    bound_options: ClassVar[tuple[str, ...]] = ()

    def tolerated(self) -> int:
        if "max_violations" in self.options:
            return int(self.options["max_violations"])
        if "max" in self.options and "max" not in self.bound_options:
            return int(self.options["max"])
        return 0

    def predicate(self, ctx: Context) -> exp.Expr:
        """The row-level condition that makes a row violate the check."""
        raise NotImplementedError

    def aggregates(self, ctx: Context) -> dict[str, tuple[Scan, exp.Expr]]:
        return {
            "violations": (self.scan, count_if(self.predicate(ctx))),
            "rows": (self.scan, exp.Count(this=exp.Star())),
        }

    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        count = int(values.get("violations") or 0)
        rows = int(values.get("rows") or 0)
        pct = 100.0 * count / rows if rows else 0.0
        if "max_pct" in self.options:
            limit = float(self.options["max_pct"])
            return self.result(
                pct <= limit, count, f"<= {limit:g}%", f"{count} of {rows} rows ({pct:.3g}%)"
            )
        limit = self.tolerated()
        text = "= 0" if limit == 0 else f"<= {limit}"
        message = f"{count} of {rows} rows violate" if count else ""
        return self.result(count <= limit, count, text, message, rows=rows, pct=round(pct, 6))

    def metrics(self, values: dict[str, Any]) -> dict[str, Any]:
        return {f"{self.spec.type}_violations": values.get("violations")}

    def sample(
        self, ctx: Context, limit: int, values: dict[str, Any] | None = None
    ) -> Probe | None:
        dialect = ctx.dialect(self.connection).name
        query = self.scan.select(dialect, exp.Star()).where(self.predicate(ctx)).limit(limit)
        return Probe(self.connection, query)
