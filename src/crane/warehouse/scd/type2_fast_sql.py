"""The statements of the Type 2 on-time path (:mod:`crane.warehouse.scd.type2_fast`),
built as sqlglot trees and rendered for the connector's dialect.

:func:`statements` returns them as text so the runtime module can keep them in the SQL
cache and run them later without importing sqlglot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from crane.sql.build import and_all, col, ident, table
from crane.warehouse.scd.base import ScdTable
from crane.warehouse.scd.steps import (
    case,
    differ,
    eq,
    is_null,
    is_true,
    keys_same,
    neg,
    num,
    subquery,
    surrogate_key,
    table_exists_query,
)

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef


def statements(con: Connector, dim: ScdTable, batch: TableRef) -> dict[str, str]:
    """Every statement the on-time path may run, rendered for ``con``."""
    from crane.warehouse.scd.type2 import initial_insert

    render = con.render
    return {
        "exists": render(table_exists_query(con, dim.table)),
        "probe": render(probe_query(dim, batch, fast=True)),
        "initial": render(initial_insert(con, dim, batch)),
        "close": render(_close(dim, batch)),
        "insert": render(_insert(dim, batch)),
    }


def probe_query(dim: ScdTable, batch: TableRef, *, fast: bool) -> exp.Select:
    """Batch shape, whether the dimension is empty, and (``fast``) the keys the fast path
    cannot take (:class:`~crane.warehouse.scd.type2_fast.Probe`, in its field order) —
    one statement; the dimension is read only for its narrow columns."""
    keys = exp.select(*(col(k) for k in dim.business_key)).from_(table(batch)).distinct()
    deletes: exp.Expr = num(0)
    if dim.delete_marker:
        deletes = exp.Sum(this=case(is_true(col(dim.delete_marker)), 1, 0))
    items: list[exp.Expr] = [
        exp.Count(this=exp.Star()),
        _count(keys),
        deletes,
        exp.Sum(this=case(is_null(col(dim.change_ts)), 1, 0)),
        exp.Exists(this=exp.select(num(1)).from_(table(dim.table)).limit(1)),
    ]
    if fast:
        items.append(_count(_unsafe_keys(dim, batch)))
    return exp.select(*items).from_(table(batch))


def _count(query: exp.Select) -> exp.Subquery:
    return exp.Subquery(this=exp.select(exp.Count(this=exp.Star())).from_(subquery(query, "_c")))


def _unsafe_keys(dim: ScdTable, batch: TableRef) -> exp.Select:
    """Batch keys with stored rows but no live current version older than the event, or
    with any stored row starting or ending after it (a late event)."""
    b, d = "b", "d"
    ts = col(dim.change_ts, b)
    older = exp.LT(this=col(dim.effective_from, d), expression=ts)
    current = [is_true(col(dim.is_current, d)), older]
    if dim.deleted_column:
        current.append(neg(is_true(col(dim.deleted_column, d))))
    late = exp.or_(
        exp.GTE(this=col(dim.effective_from, d), expression=ts.copy()),
        exp.GT(this=col(dim.effective_to, d), expression=ts.copy()),
    )
    per_key = (
        exp.select(
            *(col(k, b) for k in dim.business_key),
            exp.alias_(exp.Sum(this=case(and_all(current), 1, 0)), ident("_crane_ok")),
            exp.alias_(exp.Sum(this=case(late, 1, 0)), ident("_crane_late")),
        )
        .from_(table(batch, b))
        .join(table(dim.table, d), on=keys_same(dim, b, d))
        .group_by(*(col(k, b) for k in dim.business_key))
    )
    bad = exp.or_(
        exp.NEQ(this=col("_crane_ok"), expression=num(1)),
        exp.GT(this=col("_crane_late"), expression=num(0)),
    )
    return exp.select(num(1)).from_(subquery(per_key, "k")).where(bad)


def _close(dim: ScdTable, batch: TableRef) -> exp.Update:
    d, b = "d", "b"
    cond = and_all(
        [
            keys_same(dim, d, b),
            is_true(col(dim.is_current, d)),
            differ(dim.type2, d, b),
        ]
    )
    update = exp.Update(
        this=table(dim.table, d),
        expressions=[
            eq(col(dim.effective_to), col(dim.change_ts, b)),
            eq(col(dim.is_current), exp.false()),
        ],
        where=exp.Where(this=cond),
    )
    update.set("from_", exp.From(this=table(batch, b)))
    return update


def _insert(dim: ScdTable, batch: TableRef) -> exp.Insert:
    b = "b"
    assert dim.surrogate_key
    sk = surrogate_key(dim, dim.table, b, [*dim.business_key, dim.change_ts], dim.change_ts)
    items: list[exp.Expr] = [sk, *(col(c, b) for c in [*dim.business_key, *dim.type2])]
    items += [col(dim.change_ts, b), exp.Null(), exp.true()]
    names = [dim.surrogate_key, *dim.business_key, *dim.type2]
    names += [dim.effective_from, dim.effective_to, dim.is_current]
    if dim.tie_break:
        items.append(col(dim.tie_break, b))
        names.append(dim.tie_break)
    if dim.deleted_column:
        items.append(exp.false())
        names.append(dim.deleted_column)
    live = exp.select(num(1)).from_(table(dim.table, "d"))
    live = live.where(exp.and_(keys_same(dim, "d", b), is_true(col(dim.is_current, "d"))))
    query = exp.select(*items).from_(table(batch, b)).where(neg(exp.Exists(this=live)))
    schema = exp.Schema(this=table(dim.table), expressions=[ident(n) for n in names])
    return exp.Insert(this=schema, expression=query)
