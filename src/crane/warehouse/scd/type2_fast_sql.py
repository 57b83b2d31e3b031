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
from crane.warehouse.scd.row_hash import row_hash_expr
from crane.warehouse.scd.steps import (
    NULL_SAFE_HASH_JOIN,
    as_,
    case,
    column_exists_query,
    differ,
    eq,
    is_null,
    is_true,
    keys_same,
    neg,
    null_keys_query,
    num,
    subquery,
    surrogate_key,
    table_exists_query,
)

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef

BATCH_HASH = "_crane_hash"  # the batch row's hash, computed once by the insert-first INSERT
UNSAFE, STALE_OLDER = "_crane_unsafe", "_crane_stale_older"  # the fast probe's key checks


def statements(con: Connector, dim: ScdTable, batch: TableRef) -> dict[str, str]:
    """Every statement the on-time path may run, rendered for ``con``."""
    from crane.warehouse.scd.type2 import initial_insert

    render = con.render
    found = {
        "exists": render(table_exists_query(con, dim.table)),
        "probe": render(probe_query(dim, batch, fast=True)),
        "initial": render(initial_insert(con, dim, batch)),
    }
    if dim.key_nulls and con.dialect not in NULL_SAFE_HASH_JOIN:  # see type2_fast.try_load
        found["null_keys"] = render(null_keys_query(dim, batch))
    if dim.row_hash:  # a dimension from before row_hash was declared: the general path adds it
        found["hash_column"] = render(column_exists_query(con, dim.table, dim.row_hash))
    if dim.last_change:  # likewise a newly declared last_change column
        found["last_change_column"] = render(column_exists_query(con, dim.table, dim.last_change))
    if inserts_first(dim):
        found["max_sk"] = render(_max_sk(dim))
        found["insert_first"] = render(_insert(dim, batch, con.dialect, first=True))
        found["close_after"] = render(_close_after(dim))
    else:
        found["close"] = render(_close(dim, batch, con.dialect))
        found["insert"] = render(_insert(dim, batch, con.dialect))
    if dim.overwrite:  # Type 1 / Type 6 current columns, after the versions are written
        found["overwrite"] = render(_overwrite(dim, batch))
    return found


def inserts_first(dim: ScdTable) -> bool:
    """With a stored row hash and sequence keys, new versions go in first: the INSERT's
    anti-join compares one hash column (computing the batch's hashes once), and the
    UPDATE then closes the older current row of each key that got a new version — found
    by surrogate key above the previous maximum, with no hash or value compared again.
    Otherwise the UPDATE closes changed rows first and the INSERT follows."""
    return bool(dim.row_hash) and dim.surrogate_strategy == "sequence"


def probe_query(dim: ScdTable, batch: TableRef, *, fast: bool) -> exp.Select:
    """Batch shape, whether the dimension is empty, and (``fast``) the keys the fast path
    cannot take and the older versions its overwrite will reach (:func:`_key_checks`;
    :class:`~crane.warehouse.scd.type2_fast.Probe`, in its field order) — one statement;
    the dimension is read only for the columns the checks compare."""
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
    query = exp.select(*items).from_(table(batch))
    if fast:  # one row of per-key checks beside the batch's own aggregates
        items = [exp.Max(this=col(UNSAFE, "u"))]
        if dim.overwrite:
            items.append(exp.Max(this=col(STALE_OLDER, "u")))
        query = query.select(*items).join(subquery(_key_checks(dim, batch), "u"), join_type="CROSS")
    return query


def _count(query: exp.Select) -> exp.Subquery:
    return exp.Subquery(this=exp.select(exp.Count(this=exp.Star())).from_(subquery(query, "_c")))


def _key_checks(dim: ScdTable, batch: TableRef) -> exp.Select:
    """One row: the batch keys the fast path cannot take (``UNSAFE``) and, with
    overwritten columns, the older versions that lack the batch's values there
    (``STALE_OLDER``: the one overwrite UPDATE's count less these is the keys it changed
    in place).

    Unsafe: keys with stored rows but no live current version older than the event, or
    with any stored row starting or ending after it (a late event), or remembering a
    ``last_change``; with overwritten
    columns, also keys whose current row already has the batch's values there but an
    older row does not (such a key is changed in place with no current row to count)."""
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
    if dim.last_change:
        # a key that remembers a change time (type2._last_change) goes the general way:
        # its new version must carry that time, which the two writes here do not copy
        late = exp.or_(
            late, exp.Not(this=exp.Is(this=col(dim.last_change, d), expression=exp.Null()))
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
    if dim.overwrite:
        stale = overwrite_differs(dim, d, b)
        stale_current = exp.and_(is_true(col(dim.is_current, d)), stale.copy())
        per_key = per_key.select(
            exp.alias_(exp.Sum(this=case(stale, 1, 0)), ident("_crane_ow")),
            exp.alias_(exp.Sum(this=case(stale_current, 1, 0)), ident("_crane_owc")),
        )
        only_older = exp.and_(
            exp.GT(this=col("_crane_ow"), expression=num(0)),
            eq(col("_crane_owc"), num(0)),
        )
        bad = exp.or_(bad, only_older)
    checks = [exp.alias_(exp.Sum(this=case(bad, 1, 0)), ident(UNSAFE))]
    if dim.overwrite:
        stale_older = exp.Sub(this=col("_crane_ow"), expression=col("_crane_owc"))
        checks.append(exp.alias_(exp.Sum(this=stale_older), ident(STALE_OLDER)))
    return exp.select(*checks).from_(subquery(per_key, "k"))


def overwrite_differs(dim: ScdTable, stored: str, batch: str) -> exp.Expr:
    """Whether stored row ``stored`` lacks the batch row's value in any overwritten column
    (Type 1, Type 6 current), NULL-safely; a current column reads its tracked source."""
    pairs = [
        exp.NullSafeEQ(this=col(target, stored), expression=col(source, batch))
        for target, source in dim.overwrite.items()
    ]
    return neg(and_all(pairs))


def _overwrite(dim: ScdTable, batch: TableRef) -> exp.Update:
    """Bring the batch keys' rows that still differ to the batch's overwritten values.
    Rows the load just closed or inserted already carry them, so this reaches the
    current rows of keys changed only in place (one each) and the older versions the
    probe counted (``STALE_OLDER``)."""
    d, b = "d", "b"
    cond = and_all([keys_same(dim, d, b), overwrite_differs(dim, d, b)])
    update = exp.Update(
        this=table(dim.table, d), expressions=_overwrite_sets(dim, b), where=exp.Where(this=cond)
    )
    update.set("from_", exp.From(this=table(batch, b)))
    return update


def _overwrite_sets(dim: ScdTable, source: str, *, by_target: bool = False) -> list[exp.Expr]:
    """``column = source.value`` for every overwritten column (``by_target``: the source
    row is a dimension row, so it is read by the dimension's column name)."""
    return [eq(col(t), col(t if by_target else s, source)) for t, s in dim.overwrite.items()]


def _close(dim: ScdTable, batch: TableRef, dialect: str) -> exp.Update:
    d, b = "d", "b"
    changed = differ(dim.type2, d, b)
    if dim.row_hash:  # one stored column read instead of every tracked one
        stored = col(dim.row_hash, d)
        changed = exp.NullSafeNEQ(this=stored, expression=row_hash_expr(dim.type2, b, dialect))
    cond = and_all([keys_same(dim, d, b), is_true(col(dim.is_current, d)), changed])
    sets = _overwrite_sets(dim, b)
    return _closing(dim, d, col(dim.change_ts, b), cond, table(batch, b), sets)


def _max_sk(dim: ScdTable) -> exp.Select:
    """The largest surrogate key before the load (DuckDB reads it from the statistics)."""
    top = exp.Max(this=col(dim.surrogate_key or ""))
    return exp.select(exp.Coalesce(this=top, expressions=[num(0)])).from_(table(dim.table))


def _close_after(dim: ScdTable) -> exp.Update:
    """Close each current row ``d`` whose key got a new version ``n`` (surrogate key above
    the previous maximum, the parameter ``?`` given twice): it ends where ``n`` starts."""
    d, n, sk = "d", "n", dim.surrogate_key or ""
    carried = [col(c) for c in [*dim.business_key, dim.effective_from, *dim.overwrite]]
    new = exp.select(*carried)
    new = new.from_(table(dim.table)).where(exp.GT(this=col(sk), expression=exp.Placeholder()))
    older = exp.LTE(this=col(sk, d), expression=exp.Placeholder())
    cond = and_all([keys_same(dim, d, n), is_true(col(dim.is_current, d)), older])
    sets = _overwrite_sets(dim, n, by_target=True)
    return _closing(dim, d, col(dim.effective_from, n), cond, subquery(new, n), sets)


def _closing(
    dim: ScdTable,
    alias: str,
    ends: exp.Expr,
    cond: exp.Expr,
    source: exp.Expr,
    also: list[exp.Expr],
) -> exp.Update:
    """``UPDATE dim AS alias SET effective_to = ends, is_current = FALSE[, also] FROM
    source WHERE cond``: how both orders of the on-time path close current rows (``also``
    gives the closed row the batch's overwritten values, as the general path does)."""
    update = exp.Update(
        this=table(dim.table, alias),
        expressions=[eq(col(dim.effective_to), ends), eq(col(dim.is_current), exp.false()), *also],
        where=exp.Where(this=cond),
    )
    update.set("from_", exp.From(this=source))
    return update


def _insert(dim: ScdTable, batch: TableRef, dialect: str, *, first: bool = False) -> exp.Insert:
    """New versions of the batch keys without a live current row (``first``: or whose
    current row's stored hash differs; surrogate keys continue from the parameter)."""
    b = "b"
    assert dim.surrogate_key
    sk = surrogate_key(dim, dim.table, b, [*dim.business_key, dim.change_ts], dim.change_ts)
    if first:
        order = [exp.Ordered(this=col(c, b), nulls_first=True) for c in [*dim.business_key]]
        order.append(exp.Ordered(this=col(dim.change_ts, b), nulls_first=True))
        number = exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=order))
        sk = exp.Add(this=exp.Placeholder(), expression=number)
    items: list[exp.Expr] = [sk, *(col(c, b) for c in [*dim.business_key, *dim.type2])]
    items += [col(source, b) for source in dim.overwrite.values()]
    items += [col(dim.change_ts, b), exp.Null(), exp.true()]
    names = [dim.surrogate_key, *dim.business_key, *dim.type2, *dim.overwrite]
    names += [dim.effective_from, dim.effective_to, dim.is_current]
    if dim.tie_break:
        items.append(col(dim.tie_break, b))
        names.append(dim.tie_break)
    if dim.deleted_column:
        items.append(exp.false())
        names.append(dim.deleted_column)
    source: exp.Expr = table(batch, b)
    if dim.row_hash:
        items.append(col(BATCH_HASH, b) if first else row_hash_expr(dim.type2, b, dialect))
        names.append(dim.row_hash)
    live_if = [keys_same(dim, "d", b), is_true(col(dim.is_current, "d"))]
    if first:  # each batch row's hash computed once, compared and stored
        assert dim.row_hash
        hashed = exp.select(exp.Star(), as_(row_hash_expr(dim.type2, None, dialect), BATCH_HASH))
        source = subquery(hashed.from_(table(batch)), b)
        live_if.append(eq(col(dim.row_hash, "d"), col(BATCH_HASH, b)))
    live = exp.select(num(1)).from_(table(dim.table, "d")).where(and_all(live_if))
    query = exp.select(*items).from_(source).where(neg(exp.Exists(this=live)))
    schema = exp.Schema(this=table(dim.table), expressions=[ident(n) for n in names])
    return exp.Insert(this=schema, expression=query)
