"""Type 2: a new row per change, with surrogate key, effective_from/to and is_current.

The loader re-derives the history of *only the keys in the batch* from their stored
versions plus the new events, then writes the difference. That one idea covers
what hand-written MERGEs get wrong:

* several changes to one key in one batch become one version each, in timestamp order;
* a late (out-of-order) change splits the interval it falls into (or is quarantined);
* a change equal to the version in force at its time is no change, so a rerun is a no-op;
* hard deletes are tombstone events: ``close`` ends the current row, ``close_and_flag``
  adds a version with the deleted flag; a key that comes back gets a new version;
* Type 1 columns (and Type 6 "current" columns) take the latest event's value on every
  row of the key without starting a version.
* a late change that moves a version's start earlier, or a tie-break correction that
  merges the latest version away, removes a boundary the next load would need; with
  ``last_change`` declared the key remembers that live change time (:func:`_last_change`),
  so a rerun judges Type 1 values and lateness as the first run did. Without it such a
  rerun may overwrite a Type 1 column with an older value, or apply a change it first
  quarantined as late.

Stored rows keep their surrogate key; only their validity (and overwritten columns)
change. Change detection is NULL-safe (``IS NOT DISTINCT FROM``), never COALESCE
placeholders that collide with real values (SQLMesh #5332).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.connectors.base import TableRef
from crane.errors import ConfigError
from crane.sql.build import col, ident, table
from crane.warehouse.scd.base import ScdResult, ScdTable, scd_types
from crane.warehouse.scd.row_hash import row_hash_expr
from crane.warehouse.scd.steps import (
    DEL,
    NEW,
    SK,
    TIE,
    TS,
    Work,
    as_,
    check_conflicts,
    conflicts_query,
    count_of,
    differ,
    eq,
    events_query,
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
    surrogate_key,
    window,
    work,
)
from crane.warehouse.scd.type2_fast import Probe
from crane.warehouse.scd.type2_fast_sql import probe_query

if TYPE_CHECKING:
    from crane.connectors.base import Connector

FROM, TO, CUR = "_crane_from", "_crane_to", "_crane_cur"
CHG, RUN, LATE, ROWN = "_crane_chg", "_crane_run", "_crane_late", "_crane_rn"
UPD, VALS, NEXT, MOVED = "_crane_upd", "_crane_vals", "_crane_next", "_crane_moved"
LC = "_crane_lc"  # ScdTable.last_change: a live change time no longer a version boundary
ORDER = [(TS, False), (NEW, False)]  # time order; at equal times stored events first
_REWRITE = (
    "late_arrival: quarantine sets late changes aside instead of rewriting history (on"
    " DuckDB, a version's start cannot move while a foreign key references it)"
)


@scd_types.register("2", "type2")
def load_type2(
    con: Connector, dim: ScdTable, batch: TableRef, *, load_ts: datetime, run_id: str
) -> ScdResult:
    if not dim.surrogate_key:
        raise ConfigError("a Type 2 dimension needs a surrogate key", table=str(dim.table))
    # the on-time fast path (type2_fast) ran before, from load_dimension, if it applies
    shape = Probe.of(con.execute(probe_query(dim, batch, fast=False))[0])
    if shape.clean and not shape.stored and not shape.null_ts:
        con.execute(initial_insert(con, dim, batch))
        return ScdResult(inserted=shape.rows)
    with work(con) as w:
        events = w.temp("ev", events_query(dim, batch))
        events, untimed = set_aside_untimed(w, dim, events, run_id=run_id, load_ts=load_ts)
        old = w.temp("old", _old_rows(dim, events))
        stored = _stored_events(dim, old)
        quarantined = untimed
        if dim.late_arrival == "quarantine" and w.count(old):
            check_conflicts(con, dim, events)
            events, late = _late(w, dim, events, stored, old, load_ts=load_ts, run_id=run_id)
            quarantined += late
        # conflicts are counted with the plan (one statement) and named only if found
        # materialised steps: DuckDB plans these joins badly over window subqueries
        merged = _merged(dim, events, stored)
        runs = w.temp("rn", _runs(dim, merged))
        delta = w.temp("dt", _delta(dim, _finish(dim, merged, runs, old), old))
        result = _apply(w, dim, events, old, delta, stored)
    return ScdResult(**{**result.__dict__, "quarantined": quarantined})


def initial_insert(con: Connector, dim: ScdTable, batch: TableRef) -> exp.Insert:
    """First load of an empty dimension from a clean batch (one row per key, no deletes):
    every row is a current version, inserted in one statement with no window work."""
    sk = surrogate_key(dim, dim.table, "b", [], dim.change_ts, con.dialect)
    items: list[exp.Expr] = [sk]
    items += [col(c, "b") for c in [*dim.business_key, *dim.type2]]
    items += [col(source, "b") for source in dim.overwrite.values()]
    items += [col(dim.change_ts, "b"), exp.Null(), exp.true()]
    names = [dim.surrogate_key or "", *dim.business_key, *dim.type2, *dim.overwrite]
    names += [dim.effective_from, dim.effective_to, dim.is_current]
    if dim.tie_break:
        items.append(col(dim.tie_break, "b"))
        names.append(dim.tie_break)
    if dim.deleted_column:
        items.append(exp.false())
        names.append(dim.deleted_column)
    if dim.row_hash:
        items.append(row_hash_expr(dim.type2, "b", con.dialect))
        names.append(dim.row_hash)
    schema = exp.Schema(this=table(dim.table), expressions=[ident(n) for n in names])
    return exp.Insert(this=schema, expression=exp.select(*items).from_(table(batch, "b")))


def _values(dim: ScdTable) -> list[str]:
    return [*dim.type2, *dim.overwrite]


def _event_columns(dim: ScdTable) -> list[str]:
    return [*dim.business_key, *_values(dim), TS, TIE, DEL]


def _old_rows(dim: ScdTable, events: TableRef) -> exp.Select:
    """Every stored version of the keys in the batch, under canonical names."""
    d = "d"
    items: list[exp.Expr] = [as_(col(dim.surrogate_key or "", d), SK)]
    items += [col(c, d) for c in [*dim.business_key, *_values(dim)]]
    items += [as_(col(dim.effective_from, d), FROM), as_(col(dim.effective_to, d), TO)]
    items.append(as_(col(dim.is_current, d), CUR))
    items.append(as_(col(dim.tie_break, d), TIE) if dim.tie_break else null_as(TIE, "INT"))
    flag = is_true(col(dim.deleted_column, d)) if dim.deleted_column else exp.false()
    items.append(as_(_case(flag, 1, 0), DEL))
    if dim.last_change:
        items.append(as_(col(dim.last_change, d), LC))
    touched = exp.select(exp.Literal.number(1)).from_(table(events, "e"))
    touched = touched.where(keys_same(dim, "e", d))
    return exp.select(*items).from_(table(dim.table, d)).where(exp.Exists(this=touched))


def _case(cond: exp.Expr, yes: int | exp.Expr, no: int | exp.Expr) -> exp.Case:
    def lit(v: int | exp.Expr) -> exp.Expr:
        return exp.Literal.number(v) if isinstance(v, int) else v

    return exp.Case(ifs=[exp.If(this=cond, true=lit(yes))], default=lit(no))


def _stored_events(dim: ScdTable, old: TableRef) -> exp.Query:
    """Stored versions as events, plus the implicit tombstone where a closed row is not
    followed by another version (hard delete by ``close``)."""
    o = "o"
    live = exp.EQ(this=col(DEL, o), expression=exp.Literal.number(0))
    items: list[exp.Expr] = [col(k, o) for k in dim.business_key]
    items += [as_(_case(live, col(c, o), exp.Null()), c) for c in dim.type2]
    items += [col(c, o) for c in dim.overwrite]
    items += [as_(col(FROM, o), TS), col(TIE, o), col(DEL, o), col(SK, o)]
    versions = exp.select(*items, as_(exp.Literal.number(0), NEW)).from_(table(old, o))
    follower = exp.select(exp.Literal.number(1)).from_(table(old, "n"))
    follower = follower.where(
        exp.and_(keys_same(dim, "n", o), exp.EQ(this=col(FROM, "n"), expression=col(TO, o)))
    )
    gap = exp.and_(
        neg(exp.Is(this=col(TO, o), expression=exp.Null())),
        neg(exp.Exists(this=follower)),
    )
    tomb: list[exp.Expr] = [col(k, o) for k in dim.business_key]
    tomb += [null_as(c) for c in _values(dim)]
    tomb += [as_(col(TO, o), TS), null_as(TIE), as_(exp.Literal.number(1), DEL), null_as(SK)]
    tombstones = exp.select(*tomb, as_(exp.Literal.number(0), NEW)).from_(table(old, o)).where(gap)
    return exp.union(versions, tombstones, distinct=False)


def _subquery(query: exp.Query, alias: str) -> exp.Subquery:
    return exp.Subquery(this=query, alias=exp.TableAlias(this=ident(alias)))


def _late(
    w: Work,
    dim: ScdTable,
    events: TableRef,
    stored: exp.Query,
    old: TableRef,
    *,
    load_ts: datetime,
    run_id: str,
) -> tuple[TableRef, int]:
    """Quarantine policy: an event older than the key's latest stored change (a version
    boundary, or the remembered ``last_change``) is set aside unless it is no change at
    its place in history; either way it is not applied."""
    if dim.late_arrival != "quarantine":
        return events, 0
    keys = dim.business_key
    times: exp.Query = exp.select(*(col(k) for k in keys), col(TS)).from_(_subquery(stored, "s"))
    if dim.last_change:
        remembered = exp.select(*(col(k) for k in keys), as_(col(LC), TS)).from_(table(old))
        times = exp.union(times, remembered, distinct=False)
    latest = exp.select(*(col(k) for k in keys), as_(exp.Max(this=col(TS)), "_crane_max"))
    latest = latest.from_(_subquery(times, "s")).group_by(*(col(k) for k in keys))
    is_late = exp.LT(this=col(TS, "e"), expression=col("_crane_max", "m"))
    every = exp.Column(this=exp.Star(), table=ident("e"))
    marked = exp.select(every, as_(_case(is_late, 1, 0), LATE)).from_(table(events, "e"))
    marked = marked.join(_subquery(latest, "m"), on=keys_same(dim, "e", "m"), join_type="LEFT")
    marked_ref = w.temp("evx", marked)
    columns = _event_columns(dim)
    candidates = _as_of(dim, marked_ref, stored, columns)
    count = quarantine(
        w.con, dim, candidates, columns, reason="late_arrival", run_id=run_id, load_ts=load_ts
    )
    on_time = exp.select(*(col(c) for c in columns)).from_(table(marked_ref))
    on_time = on_time.where(exp.EQ(this=col(LATE), expression=exp.Literal.number(0)))
    return w.temp("evok", on_time), count


def _as_of(dim: ScdTable, marked: TableRef, stored: exp.Query, columns: list[str]) -> exp.Select:
    """Late events that differ from the stored version in force at their timestamp."""
    on = exp.and_(keys_same(dim, "e", "s"), exp.LTE(this=col(TS, "s"), expression=col(TS, "e")))
    rank = window(exp.RowNumber(), columns, [(TS, True)])
    rank.set("partition_by", [col(c, "e") for c in columns])
    rank.set("order", exp.Order(expressions=[exp.Ordered(this=col(TS, "s"), desc=True)]))
    prev_del = exp.Coalesce(this=col(DEL, "s"), expressions=[exp.Literal.number(1)])
    items: list[exp.Expr] = [col(c, "e") for c in columns]
    items += [as_(col(c, "s"), f"_crane_s_{i}") for i, c in enumerate(dim.type2)]
    items += [as_(prev_del, "_crane_s_del"), as_(rank, ROWN)]
    joined = (
        exp.select(*items)
        .from_(table(marked, "e"))
        .join(_subquery(stored, "s"), on=on, join_type="LEFT")
    )
    joined = joined.where(exp.EQ(this=col(LATE, "e"), expression=exp.Literal.number(1)))
    state_same = exp.and_(
        exp.EQ(this=col(DEL, "x"), expression=col("_crane_s_del", "x")),
        exp.or_(
            exp.EQ(this=col(DEL, "x"), expression=exp.Literal.number(1)),
            same_pairs([(c, f"_crane_s_{i}") for i, c in enumerate(dim.type2)], "x"),
        ),
    )
    first = exp.EQ(this=col(ROWN, "x"), expression=exp.Literal.number(1))
    return (
        exp.select(*(col(c, "x") for c in columns))
        .from_(_subquery(joined, "x"))
        .where(exp.and_(first, neg(state_same)))
    )


def same_pairs(pairs: list[tuple[str, str]], alias: str) -> exp.Expr:
    from crane.sql.build import and_all

    return and_all(exp.NullSafeEQ(this=col(a, alias), expression=col(b, alias)) for a, b in pairs)


def _check_stored_conflicts(
    con: Connector, dim: ScdTable, events: TableRef, stored: exp.Query
) -> None:
    """A new event at the same key, timestamp and tie-break as a stored version but with
    different tracked values is a conflict too (a correction needs a tie-break)."""
    rows = con.execute(_stored_conflicts(dim, events, stored).limit(1))
    if rows:
        raise_conflict(dim, rows[0])


def _stored_conflicts(dim: ScdTable, events: TableRef, stored: exp.Query) -> exp.Select:
    on = exp.and_(
        keys_same(dim, "e", "s"),
        exp.EQ(this=col(TS, "e"), expression=col(TS, "s")),
        exp.NullSafeEQ(this=col(TIE, "e"), expression=col(TIE, "s")),
    )
    state: exp.Expr = exp.NEQ(this=col(DEL, "e"), expression=col(DEL, "s"))
    if dim.type2:
        live_differ = exp.and_(eq(col(DEL, "e"), num(0)), differ(dim.type2, "e", "s"))
        state = exp.or_(state, live_differ)
    query = exp.select(*(col(k, "e") for k in dim.business_key), col(TS, "e"))
    query = query.from_(table(events, "e")).join(_subquery(stored.copy(), "s"), on=on)
    return query.where(state)


def _merged(dim: ScdTable, events: TableRef, stored: exp.Query) -> exp.Query:
    columns = [*_event_columns(dim)]
    new = exp.select(*(col(c) for c in columns), null_as(SK), as_(exp.Literal.number(1), NEW))
    new = new.from_(table(events))
    return exp.union(stored, new, distinct=False)


def _runs(dim: ScdTable, merged: exp.Query) -> exp.Select:
    """Change flags and runs: each event says whether it changes the state, which run
    (version) it belongs to and when the next version starts — two window passes.

    Without a tie-break, events sharing a key and timestamp have the same state (else
    the load fails as a conflict), so they need no winner: ordered stored-first, the
    later ones are simply "no change". Each window pass costs DuckDB a sort.
    """
    keys = list(dim.business_key)
    columns = [*keys, *_values(dim), TS, TIE, DEL, NEW]
    winners = exp.select(*(col(c) for c in [*columns, SK])).from_(_subquery(merged.copy(), "m"))
    if dim.tie_break:
        at = [*keys, TS]
        rank = window(exp.RowNumber(), at, [(TIE, True), (NEW, False)])
        carried = window(exp.Max(this=col(SK)), at)
        base = exp.select(*(col(c) for c in columns), as_(carried, SK), as_(rank, ROWN))
        winners = exp.select(exp.Star()).from_(
            _subquery(base.from_(_subquery(merged.copy(), "m")), "a")
        )
        winners = winners.where(exp.EQ(this=col(ROWN), expression=exp.Literal.number(1)))
    flagged = _change_flags(dim, winners)
    run = window(exp.Sum(this=col(CHG)), keys, ORDER, frame=True)
    next_start = window(exp.Min(this=_case(eq(col(CHG), num(1)), col(TS), exp.Null())), keys, ORDER)
    next_start.set(
        "spec",
        exp.WindowSpec(
            kind="ROWS", start="1", start_side="FOLLOWING", end="UNBOUNDED", end_side="FOLLOWING"
        ),
    )
    return exp.select(exp.Star(), as_(run, RUN), as_(next_start, NEXT)).from_(
        _subquery(flagged, "c")
    )


def _change_flags(dim: ScdTable, winners: exp.Select) -> exp.Select:
    """1 where the state (tracked values, deleted) differs from the previous event."""
    keys = list(dim.business_key)
    lag_del = exp.Coalesce(
        this=window(exp.func("LAG", col(DEL)), keys, ORDER),
        expressions=[exp.Literal.number(1)],
    )
    lags = [
        as_(window(exp.func("LAG", col(c)), keys, ORDER), f"_crane_p_{i}")
        for i, c in enumerate(dim.type2)
    ]
    inner = exp.select(exp.Star(), as_(lag_del, "_crane_pdel"), *lags).from_(
        _subquery(winners, "w")
    )
    both_deleted = exp.and_(
        exp.EQ(this=col(DEL), expression=exp.Literal.number(1)),
        exp.EQ(this=col("_crane_pdel"), expression=exp.Literal.number(1)),
    )
    both_live_same = exp.and_(
        exp.EQ(this=col(DEL), expression=exp.Literal.number(0)),
        exp.EQ(this=col("_crane_pdel"), expression=exp.Literal.number(0)),
        same_pairs([(c, f"_crane_p_{i}") for i, c in enumerate(dim.type2)], "l"),
    )
    flag = _case(exp.or_(both_deleted, both_live_same), 0, 1)
    return exp.select(exp.Star(), as_(flag, CHG)).from_(_subquery(inner, "l"))


def _finish(dim: ScdTable, merged: exp.Query, runs: TableRef, old: TableRef) -> exp.Select:
    """One row per version: run starts with their run's stored surrogate key, validity up
    to the next start; tombstones kept only for ``close_and_flag`` (carrying the previous
    version's values); Type 1 columns from the key's latest live event, Type 6 current
    columns from its latest live version."""
    keys = list(dim.business_key)
    run_keys = [*keys, RUN]
    run_sk = exp.select(*(col(c) for c in run_keys), as_(exp.Min(this=col(SK)), "_crane_run_sk"))
    run_sk = run_sk.from_(table(runs)).group_by(*(col(c) for c in run_keys))
    on = exp.and_(keys_same(dim, "r", "k"), eq(col(RUN, "r"), col(RUN, "k")))
    is_del = eq(col(DEL, "r"), num(1))
    items: list[exp.Expr] = [as_(col("_crane_run_sk", "k"), SK), *(col(k, "r") for k in keys)]
    items += [
        as_(_case(is_del, col(f"_crane_p_{i}", "r"), col(c, "r")), c)
        for i, c in enumerate(dim.type2)
    ]
    items += [col(c, "o") for c in dim.type1]
    items += [col(c, "c") for c in dim.current_of]
    items += [as_(col(TS, "r"), FROM), as_(col(NEXT, "r"), TO)]
    items += [as_(exp.Is(this=col(NEXT, "r"), expression=exp.Null()), CUR)]
    items += [col(TIE, "r"), col(DEL, "r")]
    if dim.last_change:
        items.append(col(LC, "l"))
    keep = exp.and_(eq(col(CHG, "r"), num(1)), exp.GT(this=col(RUN, "r"), expression=num(0)))
    if dim.hard_delete != "close_and_flag":
        keep = exp.and_(keep, eq(col(DEL, "r"), num(0)))
    query = exp.select(*items).from_(table(runs, "r")).join(_subquery(run_sk, "k"), on=on)
    if dim.last_change:
        query = query.join(
            _subquery(_last_change(dim, merged, runs, old), "l"),
            on=keys_same(dim, "r", "l"),
            join_type="LEFT",
        )
    if dim.type1:
        query = query.join(
            _subquery(_latest_overwrite(dim, merged, old), "o"),
            on=keys_same(dim, "r", "o"),
            join_type="LEFT",
        )
    if dim.current_of:
        query = query.join(
            _subquery(_latest_current(dim, runs), "c"),
            on=keys_same(dim, "r", "c"),
            join_type="LEFT",
        )
    return query.where(keep)


def _latest_overwrite(dim: ScdTable, merged: exp.Query, old: TableRef) -> exp.Select:
    """Type 1 columns: the key's latest live event (by timestamp, then tie-break), even one
    a delete outranked at its timestamp — the change did happen before the delete. With
    ``last_change``, the stored values count as a live change at that time too (a stored
    event, with no tie-break: any new event at that instant that has one outranks it)."""
    keys = list(dim.business_key)
    rank = window(exp.RowNumber(), keys, [(TS, True), (TIE, True), (NEW, False)])
    source: exp.Query = merged.copy()
    if dim.last_change:
        names = [*keys, *dim.type1, TS, TIE, DEL, NEW]
        live = exp.select(*(col(c) for c in names)).from_(_subquery(source, "m"))
        items: list[exp.Expr] = [col(c) for c in [*keys, *dim.type1]]
        # an untyped NULL takes the tie-break's type from the first branch (a text
        # tie-break beside CAST(NULL AS INT) failed on PostgreSQL: UNION types differ)
        items += [as_(col(LC), TS), as_(exp.Null(), TIE), as_(num(0), DEL)]
        items.append(as_(num(0), NEW))
        remembered = exp.select(*items).from_(table(old)).where(not_null(col(LC)))
        source = exp.union(live, remembered, distinct=False)
    inner = exp.select(*(col(c) for c in [*keys, *dim.type1]), as_(rank, ROWN))
    inner = inner.from_(_subquery(source, "m")).where(
        exp.EQ(this=col(DEL), expression=exp.Literal.number(0))
    )
    query = exp.select(*(col(c) for c in [*keys, *dim.type1])).from_(_subquery(inner, "i"))
    return query.where(exp.EQ(this=col(ROWN), expression=exp.Literal.number(1)))


def _last_change(dim: ScdTable, merged: exp.Query, runs: TableRef, old: TableRef) -> exp.Select:
    """Per key, the stored ``last_change`` or, if later, the latest time that was a version
    boundary before this load, is not one after it, and has a live event (stored or new):
    a late change moved a start earlier, or a tie-break correction merged a version away.
    Only the latest such time matters, and only while no boundary follows it; the on-time
    path adds boundaries, never removes one, so it need not write the column."""
    keys = list(dim.business_key)
    group = [*keys, TS]
    marks = exp.select(
        *(col(c) for c in group),
        as_(exp.Max(this=_case(eq(col(NEW), num(0)), 1, 0)), "_crane_was"),
        as_(exp.Max(this=_case(eq(col(DEL), num(0)), 1, 0)), "_crane_live"),
    )
    marks = marks.from_(_subquery(merged.copy(), "m")).group_by(*(col(c) for c in group))
    now = exp.select(*(col(c) for c in group), as_(exp.Max(this=col(CHG)), "_crane_is"))
    now = now.from_(table(runs)).group_by(*(col(c) for c in group))
    on = exp.and_(keys_same(dim, "a", "b"), eq(col(TS, "a"), col(TS, "b")))
    lost = exp.select(*(col(k, "a") for k in keys), as_(col(TS, "a"), LC))
    lost = lost.from_(_subquery(marks, "a")).join(_subquery(now, "b"), on=on)
    lost = lost.where(
        exp.and_(
            eq(col("_crane_was", "a"), num(1)),
            eq(col("_crane_live", "a"), num(1)),
            eq(col("_crane_is", "b"), num(0)),
        )
    )
    stored = exp.select(*(col(k) for k in keys), col(LC)).from_(table(old))
    times = exp.union(stored, lost, distinct=False)
    query = exp.select(*(col(k) for k in keys), as_(exp.Max(this=col(LC)), LC))
    return query.from_(_subquery(times, "t")).group_by(*(col(k) for k in keys))


def _latest_current(dim: ScdTable, runs: TableRef) -> exp.Select:
    """Type 6 current columns: the tracked values of the key's latest live version, i.e.
    of the latest live event that won its timestamp. A change that a higher tie-break
    delete outranked at the same instant started no version, so it is not mirrored (the
    current columns would name a value no row of the key ever held)."""
    keys = list(dim.business_key)
    rank = as_(window(exp.RowNumber(), keys, [(TS, True)]), "_crane_rc")
    sources = [as_(col(source), current) for current, source in dim.current_of.items()]
    inner = exp.select(*(col(k) for k in keys), *sources, rank).from_(table(runs))
    inner = inner.where(eq(col(DEL), num(0)))
    query = exp.select(*(col(c) for c in [*keys, *dim.current_of])).from_(_subquery(inner, "i"))
    return query.where(eq(col("_crane_rc"), num(1)))


def _delta(dim: ScdTable, versions: exp.Select, old: TableRef) -> exp.Select:
    """Derived versions joined to the stored rows they continue, with what changed."""
    validity = [FROM, TO, CUR, TIE, DEL, *([LC] if dim.last_change else [])]
    on = exp.EQ(this=col(SK, "n"), expression=col(SK, "o"))
    found = neg(exp.Is(this=col(SK, "o"), expression=exp.Null()))
    values_changed = exp.and_(found, differ(_values(dim), "n", "o"))
    changed = exp.and_(found, differ([*_values(dim), *validity], "n", "o"))
    closed = exp.and_(changed, is_true(col(CUR, "o")), neg(is_true(col(CUR, "n"))))
    items: list[exp.Expr] = [col(c, "n") for c in [SK, *dim.business_key, *_values(dim)]]
    items += [col(c, "n") for c in validity]
    items += [as_(_case(changed, 1, 0), UPD), as_(_case(closed, 1, 0), "_crane_closed")]
    items.append(as_(_case(values_changed, 1, 0), VALS))
    moved = exp.and_(found, differ([FROM], "n", "o"))
    items.append(as_(_case(moved, 1, 0), MOVED))
    return (
        exp.select(*items)
        .from_(_subquery(versions, "n"))
        .join(table(old, "o"), on=on, join_type="LEFT")
    )


def _apply(
    w: Work, dim: ScdTable, events: TableRef, old: TableRef, delta: TableRef, stored: exp.Query
) -> ScdResult:
    """Count the plan (and any conflict) in one query, then write the difference."""
    keys = [col(k) for k in dim.business_key]
    touched = exp.or_(exp.Is(this=col(SK), expression=exp.Null()), eq(col(UPD), num(1)))
    plan = exp.select(
        *(
            exp.Sum(this=c)
            for c in [
                _case(exp.Is(this=col(SK), expression=exp.Null()), 1, 0),
                col(UPD),
                col("_crane_closed"),
                col(VALS),
                col(MOVED),
            ]
        ),
        count_of(_gone(old, delta)),
        count_of(exp.select(*keys).from_(table(events)).distinct()),
        count_of(
            exp.select(*(k.copy() for k in keys)).from_(table(delta)).where(touched).distinct()
        ),
        count_of(conflicts_query(dim, events)),
        count_of(_stored_conflicts(dim, events, stored)),
    ).from_(table(delta))
    row = [int(v or 0) for v in w.con.execute(plan)[0]]
    inserted, updated, closed_n, values_n, moved_n, removed, batch_keys, touched_keys = row[:8]
    if row[8]:
        check_conflicts(w.con, dim, events)
    if row[9]:
        _check_stored_conflicts(w.con, dim, events, stored)
    if removed:
        cond = exp.In(this=col(dim.surrogate_key or ""), query=exp.Subquery(this=_gone(old, delta)))
        merged = exp.In(this=col(SK), query=exp.Subquery(this=_gone(old, delta)))
        gone = exp.select(*(k.copy() for k in keys)).from_(table(old)).where(merged)
        delete = exp.Delete(this=table(dim.table), where=exp.Where(this=cond))
        referenced_write(w.con, dim, delete, gone, "merges away the version", hint=_REWRITE)
    if updated > values_n:
        w.con.execute(_update(dim, delta, values=False))
    if values_n:
        w.con.execute(_update(dim, delta, values=True, dialect=w.con.dialect))
    if moved_n:
        moved = (
            exp.select(*(k.copy() for k in keys)).from_(table(delta)).where(eq(col(MOVED), num(1)))
        )
        update = _update(dim, delta, values=False, moved=True)
        referenced_write(w.con, dim, update, moved, "moves the start of the version", hint=_REWRITE)
    if inserted:
        w.con.execute(_insert(dim, delta, w.con.dialect))
    unchanged = batch_keys - touched_keys
    return ScdResult(inserted, updated - closed_n, closed_n, unchanged, 0, removed)


def _targets(dim: ScdTable) -> list[tuple[str, str]]:
    """(dimension column, canonical column) for every column a version writes."""
    pairs = [(c, c) for c in [*dim.business_key, *_values(dim)]]
    pairs += [(dim.effective_from, FROM), (dim.effective_to, TO), (dim.is_current, CUR)]
    if dim.tie_break:
        pairs.append((dim.tie_break, TIE))
    if dim.last_change:
        pairs.append((dim.last_change, LC))
    return pairs


def _deleted_value(alias: str) -> exp.Expr:
    return exp.EQ(this=col(DEL, alias), expression=exp.Literal.number(1))


def _update(
    dim: ScdTable, delta: TableRef, *, values: bool, moved: bool = False, dialect: str = ""
) -> exp.Update:
    """Validity-only updates (the common case: closing a row) set only those columns;
    DuckDB rewrites every column an UPDATE names.

    ``effective_from`` is indexed (unique with the business key): DuckDB turns an
    UPDATE naming it into delete + insert, which fails on a row a fact references
    ("still referenced by a foreign key"). It is written only by the ``moved``
    update, for the rare rows whose start really moved (a late change of the same state).
    """
    written = set(_values(dim)) if values else set()
    sets = [
        exp.EQ(this=col(t), expression=col(s, "x"))
        for t, s in _targets(dim)
        if t not in dim.business_key
        and t != dim.effective_from
        and (s not in _values(dim) or s in written)
    ]
    if moved:
        sets = [exp.EQ(this=col(dim.effective_from), expression=col(FROM, "x"))]
    if dim.deleted_column and not moved:
        sets.append(exp.EQ(this=col(dim.deleted_column), expression=_deleted_value("x")))
    if dim.row_hash and values:  # the values it hashes are rewritten (``dialect`` given)
        sets.append(eq(col(dim.row_hash), row_hash_expr(dim.type2, "x", dialect)))
    target_sk = exp.Column(this=ident(dim.surrogate_key or ""), table=ident(dim.table.name))
    if dim.table.schema:
        target_sk.set("db", ident(dim.table.schema))
    cond = exp.and_(
        exp.EQ(this=target_sk, expression=col(SK, "x")),
        exp.EQ(this=col(UPD, "x"), expression=exp.Literal.number(1)),
        exp.EQ(this=col(VALS, "x"), expression=exp.Literal.number(1 if values else 0)),
    )
    if moved:
        stored_from = target_sk.copy()
        stored_from.set("this", ident(dim.effective_from))
        cond = exp.and_(
            exp.EQ(this=target_sk, expression=col(SK, "x")),
            exp.EQ(this=col(UPD, "x"), expression=exp.Literal.number(1)),
            exp.NullSafeNEQ(this=stored_from, expression=col(FROM, "x")),
        )
    update = exp.Update(this=table(dim.table), expressions=sets, where=exp.Where(this=cond))
    update.set("from_", exp.From(this=table(delta, "x")))
    return update


def _insert(dim: ScdTable, delta: TableRef, dialect: str) -> exp.Insert:
    pairs = _targets(dim)
    sk = surrogate_key(dim, dim.table, "x", [*dim.business_key, FROM], FROM)
    items: list[exp.Expr] = [sk, *(col(s, "x") for _, s in pairs)]
    names = [dim.surrogate_key or "", *(t for t, _ in pairs)]
    if dim.deleted_column:
        items.append(_deleted_value("x"))
        names.append(dim.deleted_column)
    if dim.row_hash:
        items.append(row_hash_expr(dim.type2, "x", dialect))
        names.append(dim.row_hash)
    query = (
        exp.select(*items)
        .from_(table(delta, "x"))
        .where(exp.Is(this=col(SK, "x"), expression=exp.Null()))
    )
    schema = exp.Schema(this=table(dim.table), expressions=[ident(n) for n in names])
    return exp.Insert(this=schema, expression=query)


def _distinct_keys(keys: list[exp.Column], delta: TableRef, where: exp.Expr) -> exp.Select:
    return exp.select(*(k.copy() for k in keys)).from_(table(delta)).where(where).distinct()


def _gone(old: TableRef, delta: TableRef) -> exp.Select:
    """Stored rows merged into another version (a same-timestamp correction won by the
    tie-break, or two versions joined by a late change): they are removed."""
    kept = exp.select(num(1)).from_(table(delta, "n")).where(eq(col(SK, "n"), col(SK, "o")))
    return exp.select(col(SK, "o")).from_(table(old, "o")).where(neg(exp.Exists(this=kept)))
