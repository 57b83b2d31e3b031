"""Type 0: retain the original. A key's first row is never changed afterwards.

Only keys the dimension does not hold yet are inserted, each with its earliest change
in the batch; deletes and later changes are ignored by definition.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.sql.build import col, ident, table
from crane.warehouse.scd.base import ScdResult, ScdTable, scd_types
from crane.warehouse.scd.steps import (
    DEL,
    TIE,
    TS,
    as_,
    check_conflicts,
    eq,
    events_query,
    keys_same,
    neg,
    num,
    set_aside_untimed,
    subquery,
    surrogate_key,
    value_columns,
    window,
    work,
)

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef


@scd_types.register("0", "type0")
def load_type0(
    con: Connector, dim: ScdTable, batch: TableRef, *, load_ts: datetime, run_id: str
) -> ScdResult:
    keys = list(dim.business_key)
    with work(con) as w:
        events = w.temp("ev", events_query(dim.replace(hard_delete="ignore"), batch))
        events, untimed = set_aside_untimed(w, dim, events, run_id=run_id, load_ts=load_ts)
        check_conflicts(con, dim, events)
        rank = window(exp.RowNumber(), keys, [(TS, False), (TIE, False)])
        ranked = exp.select(exp.Star(), as_(rank, "_crane_rn")).from_(table(events))
        present = exp.select(num(1)).from_(table(dim.table, "d")).where(keys_same(dim, "d", "f"))
        first = (
            exp.select(exp.Star())
            .from_(subquery(ranked, "f"))
            .where(exp.and_(eq(col("_crane_rn", "f"), num(1)), neg(exp.Exists(this=present))))
        )
        new = w.temp("nw", first)
        inserted = w.count(new)
        if inserted:
            con.execute(_insert(dim, new))
        distinct = exp.select(*(col(k) for k in keys)).from_(table(events)).distinct()
        total = w.scalar(exp.select(exp.Count(this=exp.Star())).from_(subquery(distinct, "k")))
    return ScdResult(inserted=inserted, unchanged=total - inserted, quarantined=untimed)


def _insert(dim: ScdTable, new: TableRef) -> exp.Insert:
    pairs = [(c, c) for c in [*dim.business_key, *value_columns(dim)]] + [(dim.change_ts, TS)]
    if dim.tie_break:
        pairs.append((dim.tie_break, TIE))
    items: list[exp.Expr] = [col(s, "x") for _, s in pairs]
    names = [t for t, _ in pairs]
    if dim.surrogate_key:
        items.insert(0, surrogate_key(dim, dim.table, "x", list(dim.business_key), None))
        names.insert(0, dim.surrogate_key)
    if dim.deleted_column:
        items.append(eq(col(DEL, "x"), num(1)))
        names.append(dim.deleted_column)
    query = exp.select(*items).from_(table(new, "x"))
    return exp.Insert(
        this=exp.Schema(this=table(dim.table), expressions=[ident(n) for n in names]),
        expression=query,
    )
