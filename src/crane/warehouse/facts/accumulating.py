"""Accumulating snapshot facts: one row per process instance, milestones filled in place.

Events arrive as staged rows ``(instance key…, milestone name, event time,
attributes…)``. One MERGE pivots the batch to one row per instance and folds it
into the fact: a milestone keeps the *earliest* time ever reported for it, so
the result does not depend on arrival order or batching — an out-of-order or
repeated event never erases or moves a later milestone, and a rerun changes
nothing. Lags (whole days between two milestones) are recomputed from the
merged milestones in the same statement. An attribute takes the value of the latest
event (by event time) that carries one: the batch's, unless the stored row has reached
a milestone later than that event (an event arriving late never overwrites what a later
one said). The stored row keeps no time for its value, so "later" is judged against its
milestones: exact when each event carries the attribute; an event carrying none still
counts as a later milestone. A value listed in ``unknown_values`` (a dimension's unknown member, the
unknown day) carries nothing: it fills the column only until an event names a real
one, so an event without the customer never erases the customer an earlier one named.
Events naming an unknown milestone are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.errors import ConfigError
from crane.sql.build import and_all, col, ident, table
from crane.warehouse.facts.lookup import _literal, lock_table

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
    # attribute → the value that says "not known" (-1: the unknown member or day)
    unknown_values: Mapping[str, int | str] = field(default_factory=dict)

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


def _known(fact: AccumulatingSnapshotFact, name: str, alias: str) -> exp.Expr:
    """The attribute, NULL when it holds the value that says "not known"."""
    value: exp.Expr = col(name, alias)
    if name in fact.unknown_values:
        value = exp.Nullif(this=value, expression=_literal(fact.unknown_values[name]))
    return value


def _at(i: int) -> str:
    return f"_crane_at{i}"


def _events(fact: AccumulatingSnapshotFact, source: TableRef) -> exp.Select:
    """The staged events, each attribute's "not known" as NULL, and per instance the
    time of the latest event carrying each attribute."""
    keys = [col(k, "x") for k in fact.instance_key]
    items: list[exp.Expr] = [*keys, col(fact.event_column, "x"), col(fact.time_column, "x")]
    for i, a in enumerate(fact.attributes):
        carried = exp.Not(this=exp.Is(this=_known(fact, a, "x"), expression=exp.Null()))
        latest = exp.Max(this=exp.Case(ifs=[exp.If(this=carried, true=col(fact.time_column, "x"))]))
        over = exp.Window(this=latest, partition_by=[k.copy() for k in keys])
        items += [exp.alias_(_known(fact, a, "x"), a, quoted=True)]
        items += [exp.alias_(over, _at(i), quoted=True)]
    return exp.select(*items).from_(table(source, "x"))


def _pivot(fact: AccumulatingSnapshotFact, source: TableRef) -> exp.Select:
    """One row per instance: each milestone's earliest time in the batch, each
    attribute's value in the latest event carrying one (the largest on a tie) and the
    time of that event."""
    items: list[exp.Expr] = [col(k, "e") for k in fact.instance_key]
    for m in fact.milestones:
        hit = exp.EQ(this=col(fact.event_column, "e"), expression=exp.Literal.string(m.name))
        when = exp.Case(ifs=[exp.If(this=hit, true=col(fact.time_column, "e"))])
        items.append(exp.alias_(exp.Min(this=when), m.column, quoted=True))
    for i, a in enumerate(fact.attributes):
        at, time = col(_at(i), "e"), col(fact.time_column, "e")
        latest = exp.or_(
            exp.Is(this=at, expression=exp.Null()), exp.EQ(this=time, expression=at.copy())
        )
        value = exp.Case(ifs=[exp.If(this=latest, true=col(a, "e"))])
        items.append(exp.alias_(exp.Max(this=value), a, quoted=True))
        items.append(exp.alias_(exp.Max(this=at.copy()), _at(i), quoted=True))
    return (
        exp.select(*items)
        .from_(exp.Subquery(this=_events(fact, source), alias=ident("e")))
        .group_by(*(col(k, "e") for k in fact.instance_key))
    )


def _attribute(fact: AccumulatingSnapshotFact, i: int, name: str) -> exp.Expr:
    """The batch's value when it has one and no stored milestone is later than its
    event (or the stored value says nothing); else the stored one."""
    new, old, at = col(name, S), col(name, T), col(_at(i), S)
    not_later = [
        exp.or_(
            exp.Is(this=col(m.column, T), expression=exp.Null()),
            exp.LTE(this=col(m.column, T), expression=at.copy()),
        )
        for m in fact.milestones
    ]
    newer = and_all([exp.Not(this=exp.Is(this=at, expression=exp.Null())), *not_later])
    silent = exp.or_(exp.Is(this=old, expression=exp.Null()), newer)
    if name in fact.unknown_values:
        # literal first: sqlglot's PostgreSQL MERGE unqualifies a target column left of "="
        # (reading it as a SET target), which then is ambiguous
        silent = exp.or_(silent, exp.EQ(this=_known_literal(fact, name), expression=old.copy()))
    takes = and_all([exp.Not(this=exp.Is(this=new, expression=exp.Null())), silent])
    return exp.Case(ifs=[exp.If(this=takes, true=new.copy())], default=old.copy())


def _known_literal(fact: AccumulatingSnapshotFact, name: str) -> exp.Expr:
    return _literal(fact.unknown_values[name])


def _fresh(fact: AccumulatingSnapshotFact, name: str) -> exp.Expr:
    """A new instance's attribute: "not known" when no event named it."""
    if name not in fact.unknown_values:
        return col(name, S)
    return exp.Coalesce(this=col(name, S), expressions=[_known_literal(fact, name)])


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
        exp.EQ(this=col(a), expression=_attribute(fact, i, a))
        for i, a in enumerate(fact.attributes)
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
        *(_fresh(fact, a) for a in fact.attributes),
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
    _no_null_instance(con, fact, source)
    with con.transaction():
        lock_table(con, fact.table)  # two MERGEs of one new instance would insert it twice
        touched = int(con.fetch(counted)[0][0])
        if touched:
            con.execute(build_accumulating_merge(fact, source))
    return touched


def _no_null_instance(con: Connector, fact: AccumulatingSnapshotFact, source: TableRef) -> None:
    """An event whose instance key has a NULL part matches no row (NULL = NULL is not
    true in the MERGE), so each load inserted its instance again: refuse it."""
    from crane.warehouse.facts.transaction import FactLoadError

    null = exp.or_(*(exp.Is(this=col(k), expression=exp.Null()) for k in fact.instance_key))
    query = exp.select(exp.Count(this=exp.Star())).from_(table(source)).where(null)
    found = int(con.fetch(query)[0][0])
    if found:
        raise FactLoadError(
            f"{found} event(s) of {fact.table.name} have a NULL in the instance key"
            f" ({', '.join(fact.instance_key)})",
            table=str(fact.table),
            column=fact.instance_key[0] if len(fact.instance_key) == 1 else None,
            hint="filter them out of the source or fill the key: an instance needs a name",
        )
