"""What each engine can compute inside one aggregate scan, declared as data.

sqlglot renders most functions for every engine; where engines really differ
(regex matching, percentiles, epoch seconds, multi-column DISTINCT, native
stddev) the difference is a field here, never an ``if dialect == …`` branch in a
check. A capability set to ``None`` means "not expressible in an aggregate on this
engine": the check then says so in its result instead of silently passing.

Regex syntax also differs (RE2 in DuckDB, POSIX ERE in PostgreSQL, PCRE/ICU in
MySQL/MariaDB, Python ``re`` in SQLite), so built-in formats only use the common
subset: character classes like ``[0-9]``, no ``\\d``, no lookarounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from crane.errors import ConfigError

Build = Callable[..., exp.Expr]


def _regex_function(name: str) -> Build:
    return lambda value, pattern: exp.Anonymous(this=name, expressions=[value, pattern])


def _regex_like(value: exp.Expr, pattern: exp.Expr) -> exp.Expr:
    return exp.RegexpLike(this=value, expression=pattern)


def _regex_instr(value: exp.Expr, pattern: exp.Expr) -> exp.Expr:
    # MariaDB has no REGEXP_LIKE; REGEXP_INSTR exists in MariaDB ≥ 10.0.5 and MySQL 8.
    call = exp.Anonymous(this="REGEXP_INSTR", expressions=[value, pattern])
    return exp.GT(this=call, expression=exp.Literal.number(0))


def _epoch_function(name: str) -> Build:
    return lambda value: exp.Anonymous(this=name, expressions=[value])


def _pg_epoch(value: exp.Expr) -> exp.Expr:
    return exp.Extract(this=exp.var("EPOCH"), expression=value)


def _sqlite_epoch(value: exp.Expr) -> exp.Expr:
    # Fractional seconds: julianday() keeps them, strftime('%s') does not.
    days = exp.Anonymous(this="julianday", expressions=[value])
    return exp.Mul(
        this=exp.paren(exp.Sub(this=days, expression=exp.Literal.number(2440587.5))),
        expression=exp.Literal.number(86400),
    )


def _quantile_cont(value: exp.Expr, fraction: float) -> exp.Expr:
    return exp.Anonymous(this="quantile_cont", expressions=[value, exp.Literal.number(fraction)])


def _within_group(value: exp.Expr, fraction: float) -> exp.Expr:
    return exp.WithinGroup(
        this=exp.PercentileCont(this=exp.Literal.number(fraction)),
        expression=exp.Order(expressions=[exp.Ordered(this=value)]),
    )


Base = Callable[..., exp.Select]  # (*projections) -> SELECT … FROM the scan WHERE its filter


def _window_percentile(base: Base, value: exp.Expr, fraction: float) -> exp.Select:
    """MariaDB: PERCENTILE_CONT exists only as a window function; one row is enough."""
    order = exp.Order(expressions=[exp.Ordered(this=value, nulls_first=True)])
    within = exp.WithinGroup(
        this=exp.PercentileCont(this=exp.Literal.number(fraction)), expression=order
    )
    return base(exp.alias_(exp.Window(this=within, partition_by=[]), "value")).limit(1)


def _offset_percentile(base: Base, value: exp.Expr, fraction: float) -> exp.Select:
    """SQLite: the two rows around the position (n-1)·p, for linear interpolation."""
    present = exp.Not(this=exp.Is(this=value.copy(), expression=exp.null()))
    count = exp.Count(this=value.copy())
    position = exp.cast(
        exp.Mul(
            this=exp.paren(exp.Sub(this=count, expression=exp.Literal.number(1))),
            expression=exp.Literal.number(fraction),
        ),
        "INTEGER",
    )

    def at(step: int) -> exp.Expr:
        offset = base(exp.Add(this=position.copy(), expression=exp.Literal.number(step)))
        row = base(value.copy()).where(present.copy()).order_by(value.copy()).limit(1)
        return row.offset(offset.subquery()).subquery()

    n = base(count.copy()).subquery()
    return exp.select(exp.alias_(at(0), "lo"), exp.alias_(at(1), "hi"), exp.alias_(n, "n"))


def _distinct_tuple(columns: list[exp.Expr]) -> exp.Expr:
    """COUNT(DISTINCT (a, b)) over rows with no NULL key part (a row value)."""
    all_set = exp.and_(*[exp.Not(this=exp.Is(this=c, expression=exp.null())) for c in columns])
    row = exp.Tuple(expressions=columns)
    case = exp.Case(ifs=[exp.If(this=all_set, true=row)])
    return exp.Count(this=exp.Distinct(expressions=[case]))


def _distinct_list(columns: list[exp.Expr]) -> exp.Expr:
    """MySQL's COUNT(DISTINCT a, b): rows with a NULL key part are skipped natively."""
    return exp.Count(this=exp.Distinct(expressions=columns))


def _min_n(value: exp.Expr, n: int, where: exp.Expr) -> exp.Expr:
    """DuckDB's ``MIN(x, n) FILTER (WHERE p)``: the n smallest values among the rows
    where p holds, as a sorted list (FILTER: other rows never reach the aggregate)."""
    smallest = exp.Anonymous(this="MIN", expressions=[value, exp.Literal.number(n)])
    return exp.Filter(this=smallest, expression=exp.Where(this=where))


@dataclass(frozen=True)
class QualityDialect:
    """One engine's way of computing quality metrics (see the module docstring)."""

    name: str  # the sqlglot dialect
    regex: Build  # (value, pattern) -> boolean
    epoch: Build  # (timestamp) -> seconds since 1970
    percentile: Callable[[exp.Expr, float], exp.Expr] | None
    distinct_multi: Callable[[list[exp.Expr]], exp.Expr] | None
    # a stand-alone query for percentiles where no aggregate computes them
    percentile_probe: Callable[[Base, exp.Expr, float], exp.Select] | None = None
    native_stddev: bool = True
    try_cast: bool = False  # TRY_CAST exists: "castable" checks any type in-engine
    # (value, n, condition) -> a bounded aggregate of the n smallest values where the
    # condition holds (failing keys taken by the fused scan itself); None: the sample
    # is a query of its own
    smallest: Callable[[exp.Expr, int, exp.Expr], exp.Expr] | None = None
    text_type: str = "TEXT"

    def render(self, expression: exp.Expr) -> str:
        return expression.sql(dialect=self.name)


DIALECTS: dict[str, QualityDialect] = {
    "duckdb": QualityDialect(
        "duckdb",
        regex=_regex_function("regexp_matches"),
        epoch=_epoch_function("epoch"),
        percentile=_quantile_cont,
        distinct_multi=_distinct_tuple,
        try_cast=True,
        smallest=_min_n,
    ),
    "postgres": QualityDialect(
        "postgres",
        regex=_regex_like,
        epoch=_pg_epoch,
        percentile=_within_group,
        distinct_multi=_distinct_tuple,
    ),
    "mysql": QualityDialect(
        "mysql",
        regex=_regex_instr,
        epoch=_epoch_function("UNIX_TIMESTAMP"),
        percentile=None,  # MariaDB's PERCENTILE_CONT is a window function only
        percentile_probe=_window_percentile,
        distinct_multi=_distinct_list,
        text_type="CHAR",
    ),
    "sqlite": QualityDialect(
        "sqlite",
        regex=_regex_like,  # renders `x REGEXP p`; the session registers regexp()
        epoch=_sqlite_epoch,
        percentile=None,
        percentile_probe=_offset_percentile,
        distinct_multi=None,
        native_stddev=False,
    ),
}

SCHEME_DIALECT = {
    "duckdb": "duckdb",
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}


def dialect_for(scheme: str) -> QualityDialect:
    """The quality dialect of a connection URL scheme."""
    try:
        return DIALECTS[SCHEME_DIALECT[scheme.split("+")[0].lower()]]
    except KeyError:
        raise ConfigError(
            f"the quality checker does not support {scheme!r} connections",
            hint=f"supported: {', '.join(sorted(SCHEME_DIALECT))}",
        ) from None
