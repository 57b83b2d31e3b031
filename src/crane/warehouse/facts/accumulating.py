"""Accumulating snapshot facts: one row per process instance, milestones filled in place.

Events arrive as staged rows ``(instance key…, milestone name, event time,
attributes…)``. One MERGE pivots the batch to one row per instance and folds it
into the fact: a milestone keeps the *earliest* time ever reported for it, so
the result does not depend on arrival order or batching — an out-of-order or
repeated event never erases or moves a later milestone, and a rerun changes
nothing. Lags (whole days between two milestones) are recomputed from the
merged milestones in the same statement; attributes take the batch's non-NULL
value (the largest if the batch disagrees) and keep the stored one otherwise.
Events naming an unknown milestone are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.errors import ConfigError
from crane.sql.build import and_all, col, ident, table
from crane.warehouse.facts.lookup import lock_table

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef

T, S = "_crane_t", "_crane_s"


@dataclass(frozen=True)
class Milestone:
    name: str  # the value of the staged event column
    column: str  # the fact column holding its time


@dataclass(frozen=True)
class Lag:
    column: str  # fact column: whole days from ``start`` to ``end``
    start: str  # milestone names
    end: str


@dataclass(frozen=True)
class AccumulatingSnapshotFact:
    table: TableRef
    instance_key: tuple[str, ...]
    milestones: tuple[Milestone, ...]
    lags: tuple[Lag, ...] = ()
    attributes: tuple[str, ...] = ()  # e.g. dimension keys, measures
    event_column: str = "milestone"
    time_column: str = "event_ts"

    def __post_init__(self) -> None:
        names = {m.name for m in self.milestones}
        for lag in self.lags:
            if {lag.start, lag.end} - names:
                raise ConfigError(
                    f"lag {lag.column} refers to an unknown milestone",
                    field=lag.column,
                    table=str(self.table),
                )

    def milestone(self, name: str) -> Milestone:
        return next(m for m in self.milestones if m.name == name)


def _pivot(fact: AccumulatingSnapshotFact, source: TableRef) -> exp.Select:
    """One row per instance: each milestone's earliest time in the batch."""
    items: list[exp.Expr] = [col(k, "e") for k in fact.instance_key]
    for m in fact.milestones:
        hit = exp.EQ(this=col(fact.event_column, "e"), expression=exp.Literal.string(m.name))
        when = exp.Case(ifs=[exp.If(this=hit, true=col(fact.time_column, "e"))])
        items.append(exp.alias_(exp.Min(this=when), m.column, quoted=True))
    items += [exp.alias_(exp.Max(this=col(a, "e")), a, quoted=True) for a in fact.attributes]
    return (
        exp.select(*items)
        .from_(table(source, "e"))
        .group_by(*(col(k, "e") for k in fact.instance_key))
    )


def _earliest(column: str) -> exp.Expr:
    """The earlier of stored and new, NULL meaning "not yet" (LEAST differs on NULLs)."""
    new, old = col(column, S), col(column, T)
    return exp.Case(
        ifs=[
            exp.If(this=exp.Is(this=new, expression=exp.Null()), true=old),
            exp.If(this=exp.Is(this=old.copy(), expression=exp.Null()), true=new.copy()),
            exp.If(this=exp.LT(this=new.copy(), expression=old.copy()), true=new.copy()),
        ],
        default=old.copy(),
    )


def _days(start: exp.Expr, end: exp.Expr) -> exp.Expr:
    day = exp.DataType.build("DATE")
    diff = exp.DateDiff(
        this=exp.cast(end, day), expression=exp.cast(start, day), unit=exp.var("DAY")
    )
    return exp.cast(diff, exp.DataType.build("INT"))


def build_accumulating_merge(fact: AccumulatingSnapshotFact, source: TableRef) -> exp.Merge:
    merged = {m.name: _earliest(m.column) for m in fact.milestones}
    sets = [exp.EQ(this=col(m.column), expression=merged[m.name]) for m in fact.milestones]
    sets += [
        exp.EQ(
            this=col(lag.column), expression=_days(merged[lag.start].copy(), merged[lag.end].copy())
        )
        for lag in fact.lags
    ]
    sets += [
        exp.EQ(this=col(a), expression=exp.Coalesce(this=col(a, S), expressions=[col(a, T)]))
        for a in fact.attributes
    ]
    fresh = {m.name: col(m.column, S) for m in fact.milestones}
    columns = [
        *fact.instance_key,
        *(m.column for m in fact.milestones),
        *(lag.column for lag in fact.lags),
        *fact.attributes,
    ]
    values = [
        *(col(k, S) for k in fact.instance_key),
        *(fresh[m.name] for m in fact.milestones),
        *(_days(fresh[lag.start].copy(), fresh[lag.end].copy()) for lag in fact.lags),
        *(col(a, S) for a in fact.attributes),
    ]
    insert = exp.Insert(
        this=exp.Tuple(expressions=[col(c) for c in columns]),
        expression=exp.Tuple(expressions=values),
    )
    on = and_all(exp.EQ(this=col(k, T), expression=col(k, S)) for k in fact.instance_key)
    whens = [
        exp.When(matched=True, then=exp.Update(expressions=sets)),
        exp.When(matched=False, source=False, then=insert),
    ]
    return exp.Merge(
        this=table(fact.table, T),
        using=exp.Subquery(this=_pivot(fact, source), alias=ident(S)),
        on=on,
        whens=exp.Whens(expressions=whens),
    )


def load_accumulating_snapshot(
    con: Connector, fact: AccumulatingSnapshotFact, source: TableRef
) -> int:
    """Fold the staged events into the fact; returns the number of instances touched."""
    pivot = _pivot(fact, source)
    counted = exp.select(exp.Count(this=exp.Star())).from_(
        exp.Subquery(this=pivot, alias=ident("_crane_p"))
    )
    with con.transaction():
        lock_table(con, fact.table)  # two MERGEs of one new instance would insert it twice
        touched = int(con.fetch(counted)[0][0])
        if touched:
            con.execute(build_accumulating_merge(fact, source))
    return touched
