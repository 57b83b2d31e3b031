"""What ``crane model load`` refuses in a staged source before it writes anything.

Each check is a query over the stage (:mod:`crane.warehouse.load`), run inside the
load's transaction. Without them the engine refused the rows later with its own words
(``NOT NULL constraint failed: dim_customer.email``: no source row, no remedy), or the
loaders dropped rows without a word: a transaction fact keeps one row per grain, and
an accumulating snapshot ignores events of a milestone it does not declare. The
errors name the object, the column and the first offending row.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crane.errors import ConfigError, LoadError
from crane.sql.build import and_all, col, count_where, ident, table

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef
    from crane.warehouse.facts import TransactionFact
    from crane.warehouse.spec import BridgeSpec, DimensionSpec, FactSpec, Model


def _is_null(name: str) -> exp.Expr:
    return exp.Is(this=col(name), expression=exp.Null())


def _where(names: Sequence[str], row: Sequence[Any]) -> str:
    """``customer_id = 2, region = 'N'``: a row named by its values, as SQL writes them."""
    shown = [
        "NULL" if v is None else str(v) if isinstance(v, int | float | Decimal) else f"'{v}'"
        for v in row
    ]
    return ", ".join(f"{n} = {v}" for n, v in zip(names, shown, strict=True))


def no_null_combination(con: Connector, dim: DimensionSpec, stage: TableRef) -> None:
    """A junk row is keyed by its whole combination, so no part may be NULL: say which
    column and what to do, not the engine's NOT NULL violation."""
    for name in dim.business_key:
        nulls = exp.select(exp.Count(this=exp.Star())).from_(table(stage)).where(_is_null(name))
        found = int(con.fetch(nulls)[0][0])
        if found:
            raise ConfigError(
                f"junk dimension {dim.name}: {name} is NULL in {found} source row(s), and a"
                " junk combination is its key",
                table=dim.table,
                field="source",
                hint=f"COALESCE({name}, 'none') in its source and in the facts' sources",
            )


def no_nulls(con: Connector, model: Model, dim: DimensionSpec, stage: TableRef) -> None:
    """The dimension's NOT NULL columns (business key, attributes not declared
    ``nullable``) are filled in every source row: one scan counts the NULLs of each."""
    required = [
        c.name
        for c in dim.columns(model)
        if not c.nullable and c.role in ("business_key", "attribute")
    ]
    if not required:
        return
    counts = exp.select(*(count_where(_is_null(n)) for n in required)).from_(table(stage))
    found = [int(v) for v in con.fetch(counts)[0]]
    for name, nulls in zip(required, found, strict=True):
        if not nulls:
            continue
        keys = [k for k in dim.business_key if k != name]
        row = None
        if keys:
            first = exp.select(*(col(k) for k in keys)).from_(table(stage)).where(_is_null(name))
            first = first.order_by(*(col(k) for k in keys)).limit(1)
            row = _where(keys, con.fetch(first)[0])
        raise LoadError(
            f"dimension {dim.name}: {name} is NULL in {nulls} source row(s), and the"
            " dimension declares it NOT NULL",
            table=dim.table,
            column=name,
            row=row,
            hint=(
                f"filter the rows out of the source or COALESCE {name}: a business key is"
                " never NULL"
                if name in dim.business_key
                else f"fill {name} in the source (COALESCE) or declare it `nullable: true`"
            ),
        )


def one_row_per_grain(
    con: Connector,
    owner: FactSpec | BridgeSpec,
    stage: TableRef,
    grain: Sequence[str],
    payload: Sequence[str],
) -> None:
    """No grain value (source columns ``grain``) comes with two different source rows
    (over ``payload``, the columns the rows are built from), and no degenerate grain
    column is NULL. The transaction loader keeps one row per grain so that a repeated
    delivery loads once; a second, *different* row was dropped without a word (which one
    stayed was up to the engine)."""
    from crane.warehouse.spec import BridgeSpec

    kind = "bridge" if isinstance(owner, BridgeSpec) else "fact"
    degenerate = [g for g in getattr(owner, "grain", []) if g in grain]
    if degenerate:
        nulls = exp.select(exp.Count(this=exp.Star())).from_(table(stage))
        nulls = nulls.where(exp.or_(*(_is_null(g) for g in degenerate)))
        found = int(con.fetch(nulls)[0][0])
        if found:
            raise LoadError(
                f"{kind} {owner.name}: {found} source row(s) have a NULL in the grain"
                f" ({', '.join(degenerate)})",
                table=owner.table,
                column=degenerate[0] if len(degenerate) == 1 else None,
            )
    distinct = exp.select(*(col(c) for c in dict.fromkeys([*grain, *payload])))
    rows = con.fetch(_first_clash(distinct.distinct().from_(table(stage)), grain))
    if rows:
        *key, count = rows[0]
        raise LoadError(
            f"{kind} {owner.name}: {count} different source rows share one grain value, and"
            f" the {kind} holds one row per grain",
            table=owner.table,
            row=_where(grain, key),
            hint="deduplicate or aggregate the source to the grain, or widen the grain",
        )


def _first_clash(distinct: exp.Select, grain: Sequence[str]) -> exp.Select:
    """The first grain value that more than one of the ``distinct`` rows holds, with how
    many (ordered, so the error names the same row on every run)."""
    keys = [col(g, "d") for g in grain]
    return (
        exp.select(*keys, exp.Count(this=exp.Star()))
        .from_(exp.Subquery(this=distinct, alias=exp.TableAlias(this=ident("d"))))
        .group_by(*(k.copy() for k in keys))
        .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
        .order_by(*(k.copy() for k in keys))
        .limit(1)
    )


def one_row_per_key(
    con: Connector, owner: FactSpec | BridgeSpec, stage: TableRef, spec: TransactionFact
) -> None:
    """No two different source rows fall on one grain once their dimension keys are
    looked up (run after the load, in its transaction, so inferred members exist). Two
    business keys a dimension lacks both point at its unknown member: in a grain that
    holds the reference, the loader kept one of the rows and dropped the other without
    a word. Only a grain holding looked-up keys can collide so."""
    from crane.warehouse.facts.transaction import fact_rows
    from crane.warehouse.spec import BridgeSpec

    grain = [*spec.grain, *spec.grain_keys]
    if not spec.grain_keys:
        return
    staged = exp.select(exp.Star()).from_(table(stage))
    rows, _, _ = fact_rows(staged, spec.columns, spec.lookups, spec.date_keys)
    distinct = exp.select(exp.Star()).distinct()
    distinct = distinct.from_(exp.Subquery(this=rows, alias=exp.TableAlias(this=ident("r"))))
    found = con.fetch(_first_clash(distinct, grain))
    if found:
        *key, count = found[0]
        kind = "bridge" if isinstance(owner, BridgeSpec) else "fact"
        raise LoadError(
            f"{kind} {owner.name}: {count} different source rows fall on one grain once"
            " their dimension keys are looked up: business keys a dimension lacks all"
            " point at its unknown member",
            table=owner.table,
            row=_where(grain, key),
            hint="declare `on_missing: infer` on the reference (each missing key gets its"
            " own member), or load the dimension's rows first",
        )


def known_milestones(
    con: Connector, fact: FactSpec, stage: TableRef, column: str, time_column: str
) -> None:
    """Every event names a milestone the fact declares: the accumulating loader ignores
    the others, so a misspelt label in the source lost its events without a word. An
    event without a time is not checked: it has not happened (the loader skips it)."""
    labels = [exp.Literal.string(m) for m in fact.milestones]
    unknown = and_all(
        [
            exp.Not(this=exp.Is(this=col(time_column), expression=exp.Null())),
            exp.or_(_is_null(column), exp.Not(this=col(column).isin(*labels))),
        ]
    )
    query = (
        exp.select(col(column), exp.Count(this=exp.Star()))
        .from_(table(stage))
        .where(unknown)
        .group_by(col(column))
        .order_by(col(column))
        .limit(1)
    )
    rows = con.fetch(query)
    if rows:
        label, count = rows[0]
        raise LoadError(
            f"fact {fact.name}: {count} source event(s) name milestone {label!r}, which the"
            f" fact does not declare (milestones: {', '.join(fact.milestones)})",
            table=fact.table,
            column=column,
            row=f"{column} = {'NULL' if label is None else repr(label)}",
            hint="correct the label in the source, filter the event out, or declare it",
        )


def dates_in_calendar(
    con: Connector,
    model: Model,
    owner: FactSpec | BridgeSpec,
    stage: TableRef,
    events: tuple[str, str] | None = None,
) -> None:
    """Every date a source row names is a day of the date dimension it references.

    A date key is computed from the date (``yyyymmdd``), not looked up, so a date
    outside the dimension's range made a key with no row: DuckDB and PostgreSQL refused
    the load with the foreign key's words, naming neither the date nor the remedy, and
    engines whose foreign keys are not enforced (Snowflake, BigQuery, Redshift) kept a
    fact pointing nowhere. A NULL date is not checked: it points at the unknown day.
    ``events`` (milestone column, time column): an accumulating snapshot's events,
    each milestone checked against its own role."""
    from crane.warehouse.spec import BridgeSpec

    kind = "bridge" if isinstance(owner, BridgeSpec) else "fact"
    milestones = set(getattr(owner, "milestones", []))
    for ref in owner.dimensions:
        dim = model.dimension(ref.dimension)
        if dim is None or dim.kind != "date":
            continue
        source = ref.label
        rows: exp.Expr | None = None
        if ref.label in milestones and events is not None:
            source = events[1]
            rows = exp.EQ(this=col(events[0], "s"), expression=exp.Literal.string(ref.label))
        _in_calendar(con, model, owner, kind, stage, dim, ref.key_column, source, rows)


def _in_calendar(
    con: Connector,
    model: Model,
    owner: FactSpec | BridgeSpec,
    kind: str,
    stage: TableRef,
    dim: DimensionSpec,
    key_column: str,
    source: str,
    rows: exp.Expr | None,
) -> None:
    from crane.warehouse.facts import DateKey
    from crane.warehouse.facts.lookup import date_key_expr

    day = date_key_expr(DateKey(key_column, source), "s", null_is_unknown=False)
    known = exp.select(exp.Literal.number(1)).from_(table(dim.ref(model.schema_), "d"))
    known = known.where(exp.EQ(this=col(dim.key_column, "d"), expression=day))
    outside: list[exp.Expr] = [exp.Not(this=exp.Is(this=col(source, "s"), expression=exp.Null()))]
    outside += [rows] if rows is not None else []
    outside.append(exp.Not(this=exp.Exists(this=known)))
    query = exp.select(
        exp.Count(this=exp.Star()), exp.Min(this=col(source, "s")), exp.Max(this=col(source, "s"))
    )
    query = query.from_(table(stage, "s")).where(and_all(outside))
    count, first, last = con.fetch(query)[0]
    if not count:
        return
    raise LoadError(
        f"{kind} {owner.name}: {count} source row(s) have {source} outside the days of"
        f" date dimension {dim.name} (from {first} to {last}): their {key_column} would"
        " name no day",
        table=owner.table,
        column=key_column,
        row=_where([source], [first]),
        hint=f"widen the range the source of {dim.name} returns (or filter the rows out)",
    )
