"""Type 1: one row per key, overwritten by the latest change (no history).

Shared with Type 3, which additionally keeps each declared column's previous value.
The latest change per key wins by (change timestamp, tie-break); a change older than
the stored row is ignored (``late_arrival: insert`` has no history to insert into)
or quarantined when it differs from the row. A winning delete removes the row
(``close``) or flags it (``close_and_flag``); a key that comes back is re-inserted or
un-flagged. Comparisons are NULL-safe, so NULL→value and value→NULL are changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.sql.build import col, ident, qualified_col, table
from crane.warehouse.scd.base import ScdResult, ScdTable, scd_types
from crane.warehouse.scd.steps import (
    DEL,
    NEW,
    TIE,
    TS,
    Work,
    as_,
    case,
    check_conflicts,
    differ,
    eq,
    events_query,
    is_null,
    is_true,
    keys_same,
    neg,
    not_null,
    null_as,
    num,
    quarantine,
    raise_conflict,
    referenced_write,
    set_aside_untimed,
    subquery,
    surrogate_key,
    value_columns,
    window,
    work,
)

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef

OLD = "_crane_has_old"
LIVE = "_crane_live"  # the key has a live change in the batch (type1._latest_live)
ORD = "_crane_ord"


@scd_types.register("1", "type1")
def load_type1(
    con: Connector, dim: ScdTable, batch: TableRef, *, load_ts: datetime, run_id: str
) -> ScdResult:
    return load_rows(con, dim, batch, load_ts=load_ts, run_id=run_id)


def load_rows(
    con: Connector, dim: ScdTable, batch: TableRef, *, load_ts: datetime, run_id: str
) -> ScdResult:
    """The Type 1 / Type 3 loader: winners per key, previous values, then the diff."""
    values = list(value_columns(dim))
    with work(con) as w:
        events = w.temp("ev", events_query(dim, batch))
        events, quarantined = set_aside_untimed(w, dim, events, run_id=run_id, load_ts=load_ts)
        check_conflicts(con, dim, events)
        old = w.temp("old", _old(dim, events))
        if dim.late_arrival == "quarantine":
            late = _late(dim, events, old, values)
            columns = [*dim.business_key, *values, TS, TIE, DEL]
            quarantined += quarantine(
                con, dim, late, columns, reason="late_arrival", run_id=run_id, load_ts=load_ts
            )
        on_time = w.temp("evok", _on_time(dim, events, old))
        _check_stored(con, dim, on_time, old, values)
        final = w.temp("nw", _final(dim, on_time, old, values))
        result = _apply(w, dim, events, final)
    return ScdResult(**{**result.__dict__, "quarantined": quarantined})


def _prev(dim: ScdTable) -> list[str]:
    return list(dim.type3.values())


def _old(dim: ScdTable, events: TableRef) -> exp.Select:
    d = "d"
    items: list[exp.Expr] = [col(c, d) for c in [*dim.business_key, *value_columns(dim)]]
    items += [col(c, d) for c in _prev(dim)]
    items.append(as_(col(dim.change_ts, d), TS))
    items.append(as_(col(dim.tie_break, d), TIE) if dim.tie_break else null_as(TIE, "INT"))
    flag = is_true(col(dim.deleted_column, d)) if dim.deleted_column else exp.false()
    items.append(as_(case(flag, 1, 0), DEL))
    touched = exp.select(num(1)).from_(table(events, "e"))
    touched = touched.where(keys_same(dim, "e", d))
    return exp.select(*items).from_(table(dim.table, d)).where(exp.Exists(this=touched))


def _state_differs(values: list[str], left: str, right: str) -> exp.Expr:
    """Deleted flag differs, or both live and some value differs (NULL-safe)."""
    both_live = exp.and_(eq(col(DEL, left), num(0)), eq(col(DEL, right), num(0)))
    values_differ = exp.and_(both_live, differ(values, left, right)) if values else exp.false()
    return exp.or_(exp.NEQ(this=col(DEL, left), expression=col(DEL, right)), values_differ)


def _late(dim: ScdTable, events: TableRef, old: TableRef, values: list[str]) -> exp.Select:
    cols = [*dim.business_key, *values, TS, TIE, DEL]
    on = keys_same(dim, "e", "o")
    older = exp.LT(this=col(TS, "e"), expression=col(TS, "o"))
    query = exp.select(*(col(c, "e") for c in cols)).from_(table(events, "e"))
    return query.join(table(old, "o"), on=on).where(
        exp.and_(older, _state_differs(values, "e", "o"))
    )


def _on_time(dim: ScdTable, events: TableRef, old: TableRef) -> exp.Select:
    on = keys_same(dim, "e", "o")
    every = exp.Column(this=exp.Star(), table=ident("e"))
    found = as_(case(not_null(col(TS, "o")), 1, 0), OLD)
    query = exp.select(every, found).from_(table(events, "e"))
    query = query.join(table(old, "o"), on=on, join_type="LEFT")
    fresh = exp.or_(is_null(col(TS, "o")), exp.GTE(this=col(TS, "e"), expression=col(TS, "o")))
    return query.where(fresh)


def _check_stored(
    con: Connector, dim: ScdTable, events: TableRef, old: TableRef, values: list[str]
) -> None:
    on = exp.and_(
        keys_same(dim, "e", "o"),
        eq(col(TS, "e"), col(TS, "o")),
        exp.NullSafeEQ(this=col(TIE, "e"), expression=col(TIE, "o")),
    )
    query = exp.select(*(col(k, "e") for k in dim.business_key), col(TS, "e"))
    query = query.from_(table(events, "e")).join(table(old, "o"), on=on)
    rows = con.execute(query.where(_state_differs(values, "e", "o")).limit(1))
    if rows:
        raise_conflict(dim, rows[0])


def _winners(dim: ScdTable, events: TableRef) -> exp.Select:
    keys = list(dim.business_key)
    rank = window(exp.RowNumber(), keys, [(TS, True), (TIE, True)])
    inner = exp.select(exp.Star(), as_(rank, "_crane_rn")).from_(table(events))
    return exp.select(exp.Star()).from_(subquery(inner, "r")).where(eq(col("_crane_rn"), num(1)))


def _tie_less(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    """``a < b`` with NULL lowest (the order ``TIE DESC NULLS LAST`` picks winners by)."""
    return exp.or_(
        exp.and_(
            exp.Is(this=a, expression=exp.Null()),
            exp.Not(this=exp.Is(this=b, expression=exp.Null())),
        ),
        exp.LT(this=a, expression=b),
    )


def _final(dim: ScdTable, events: TableRef, old: TableRef, values: list[str]) -> exp.Select:
    """One row per key to write: the winner's values, previous values for Type 3, and
    whether a stored row exists. A winning delete keeps the values of the key's latest
    live change in the batch (else the stored ones), as loading that change first and
    the delete after would: under ``close_and_flag`` a key new to the dimension whose
    change and delete come in one batch is inserted flagged (it was left out, so
    loading b1 then b2 differed from loading b1 ∪ b2)."""
    keys = list(dim.business_key)
    is_del = eq(col(DEL, "w"), num(1))
    has_live = not_null(col(LIVE, "l"))
    kept = {c: case(has_live, col(c, "l"), col(c, "o")) for c in values}
    final = {c: case(is_del, kept[c], col(c, "w")) for c in values}
    items: list[exp.Expr] = [col(k, "w") for k in keys]
    items += [as_(final[c].copy(), c) for c in values]
    for c, prev in dim.type3.items():
        stored = exp.and_(is_del.copy(), neg(has_live.copy()))
        previous = _previous(dim, events, old, c, final[c].copy())
        items.append(as_(case(stored, col(prev, "o"), previous), prev))
    items += [col(TS, "w"), col(TIE, "w"), col(DEL, "w"), col(OLD, "w")]
    query = exp.select(*items).from_(subquery(_winners(dim, events), "w"))
    query = query.join(table(old, "o"), on=keys_same(dim, "w", "o"), join_type="LEFT")
    query = query.join(
        subquery(_latest_live(dim, events, values), "l"),
        on=keys_same(dim, "w", "l"),
        join_type="LEFT",
    )
    stale = exp.and_(
        eq(col(OLD, "w"), num(1)),
        eq(col(TS, "w"), col(TS, "o")),
        _tie_less(col(TIE, "w"), col(TIE, "o")),
    )
    nothing = exp.and_(is_del, eq(col(OLD, "w"), num(0)))
    if dim.hard_delete == "close_and_flag":
        nothing = exp.and_(nothing, neg(has_live))
    return query.where(exp.and_(neg(stale), neg(nothing)))


def _latest_live(dim: ScdTable, events: TableRef, values: list[str]) -> exp.Select:
    """Per key, the values of its latest live change in the batch, marked by ``LIVE``."""
    keys = list(dim.business_key)
    rank = window(exp.RowNumber(), keys, [(TS, True), (TIE, True)])
    inner = exp.select(*(col(c) for c in [*keys, *values]), as_(rank, "_crane_rn"))
    inner = inner.from_(table(events)).where(eq(col(DEL), num(0)))
    query = exp.select(*(col(c) for c in [*keys, *values]), as_(num(1), LIVE))
    return query.from_(subquery(inner, "r")).where(eq(col("_crane_rn"), num(1)))


def _previous(
    dim: ScdTable, events: TableRef, old: TableRef, column: str, final: exp.Expr
) -> exp.Expr:
    """The value before the last change of ``column``: the last value in the key's
    sequence (stored row, then live changes in time order) that differs from the
    ``final`` value; the stored previous value if there is none."""
    keys = list(dim.business_key)
    stored = exp.select(*(col(c) for c in [*keys, column, TS, TIE]), as_(num(0), NEW))
    stored = stored.from_(table(old))
    live = exp.select(*(col(c) for c in [*keys, column, TS, TIE]), as_(num(1), NEW))
    live = live.from_(table(events)).where(eq(col(DEL), num(0)))
    seq = exp.union(stored, live, distinct=False)
    rank = window(exp.RowNumber(), keys, [(NEW, False), (TS, False), (TIE, False)])
    ranked = exp.select(exp.Star(), as_(rank, ORD)).from_(subquery(seq, "q"))
    differing = exp.and_(
        keys_same(dim, "s", "w"),
        neg(exp.NullSafeEQ(this=col(column, "s"), expression=final)),
    )
    position = exp.select(exp.Max(this=col(ORD, "s"))).from_(subquery(ranked, "s"))
    position = position.where(differing)
    at = (
        exp.select(col(column, "s2"))
        .from_(subquery(ranked.copy(), "s2"))
        .where(exp.and_(keys_same(dim, "s2", "w"), eq(col(ORD, "s2"), exp.Subquery(this=position))))
    )
    fallback = col(dim.type3[column], "o")
    return case(is_null(exp.Subquery(this=position)), fallback, exp.Subquery(this=at))


def _apply(w: Work, dim: ScdTable, events: TableRef, final: TableRef) -> ScdResult:
    counts = _counts(w, dim, final)
    inserted, updated, closed = counts
    if dim.hard_delete == "close" and closed:
        gone = (
            exp.select(num(1))
            .from_(table(final, "x"))
            .where(exp.and_(_key_is_target(dim, "x"), eq(col(DEL, "x"), num(1))))
        )
        delete = exp.Delete(this=table(dim.table), where=exp.Where(this=exp.Exists(this=gone)))
        deleted = exp.select(*(col(k) for k in dim.business_key)).from_(table(final))
        deleted = deleted.where(exp.and_(eq(col(DEL), num(1)), eq(col(OLD), num(1))))
        hint = "hard_delete: close_and_flag keeps a deleted member's row, flagged, for its facts"
        referenced_write(w.con, dim, delete, deleted, "deletes the row", hint=hint)
    if updated or (closed and dim.hard_delete == "close_and_flag"):
        w.con.execute(_update(dim, final))
    if inserted:
        w.con.execute(_insert(dim, final))
    touched = updated + closed + inserted
    keys = exp.select(*(col(k) for k in dim.business_key)).from_(table(events)).distinct()
    distinct = w.scalar(exp.select(exp.Count(this=exp.Star())).from_(subquery(keys, "k")))
    return ScdResult(inserted, updated, closed, max(distinct - touched, 0), 0, 0)


def _written(dim: ScdTable) -> list[tuple[str, str]]:
    """(dimension column, canonical column) written for a key."""
    pairs = [(c, c) for c in [*value_columns(dim), *_prev(dim)]]
    pairs.append((dim.change_ts, TS))
    if dim.tie_break:
        pairs.append((dim.tie_break, TIE))
    return pairs


def _stored_row(dim: ScdTable, alias: str) -> exp.Expr:
    """The target row of this key differs from ``alias`` in some written column."""
    checks: list[exp.Expr] = [
        exp.Not(this=exp.NullSafeEQ(this=qualified_col(t, dim.table), expression=col(s, alias)))
        for t, s in _written(dim)
    ]
    if dim.deleted_column:
        flag = exp.Coalesce(
            this=qualified_col(dim.deleted_column, dim.table), expressions=[exp.false()]
        )
        checks.append(exp.NEQ(this=flag, expression=exp.Paren(this=eq(col(DEL, alias), num(1)))))
    return exp.Paren(this=exp.or_(*checks)) if len(checks) > 1 else checks[0]


def _key_is_target(dim: ScdTable, alias: str) -> exp.Expr:
    from crane.sql.build import and_all

    return and_all(
        exp.NullSafeEQ(this=qualified_col(k, dim.table), expression=col(k, alias))
        for k in dim.business_key
    )


def _counts(w: Work, dim: ScdTable, final: TableRef) -> tuple[int, int, int]:
    """(inserted, updated, closed): closed rows are winning deletes of stored rows."""
    probe = (
        exp.select(num(1))
        .from_(table(dim.table))
        .where(exp.and_(_key_is_target(dim, "x"), _stored_row(dim, "x")))
    )
    changed = exp.and_(eq(col(OLD, "x"), num(1)), exp.Exists(this=probe))
    live = eq(col(DEL, "x"), num(0))
    query = exp.select(
        exp.Sum(this=case(eq(col(OLD, "x"), num(0)), 1, 0)),
        exp.Sum(this=case(exp.and_(changed, live), 1, 0)),
        exp.Sum(this=case(exp.and_(changed, neg(live)), 1, 0)),
    ).from_(table(final, "x"))
    row = w.con.execute(query)[0]
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def _update(dim: ScdTable, final: TableRef) -> exp.Update:
    sets = [exp.EQ(this=col(t), expression=col(s, "x")) for t, s in _written(dim)]
    if dim.deleted_column:
        sets.append(exp.EQ(this=col(dim.deleted_column), expression=eq(col(DEL, "x"), num(1))))
    cond = exp.and_(_key_is_target(dim, "x"), eq(col(OLD, "x"), num(1)), _stored_row(dim, "x"))
    update = exp.Update(this=table(dim.table), expressions=sets, where=exp.Where(this=cond))
    update.set("from_", exp.From(this=table(final, "x")))
    return update


def _insert(dim: ScdTable, final: TableRef) -> exp.Insert:
    pairs = [(k, k) for k in dim.business_key] + _written(dim)
    items: list[exp.Expr] = [col(s, "x") for _, s in pairs]
    names = [t for t, _ in pairs]
    if dim.surrogate_key:
        items.insert(0, surrogate_key(dim, dim.table, "x", list(dim.business_key), None))
        names.insert(0, dim.surrogate_key)
    if dim.deleted_column:  # a key new to the dimension may arrive deleted (``_final``)
        items.append(eq(col(DEL, "x"), num(1)))
        names.append(dim.deleted_column)
    query = exp.select(*items).from_(table(final, "x")).where(eq(col(OLD, "x"), num(0)))
    schema = exp.Schema(this=table(dim.table), expressions=[ident(n) for n in names])
    return exp.Insert(this=schema, expression=query)
