"""Type 2 on-time batches: close the changed current rows and insert their new versions.

Most change loads are a clean batch that only moves history forward: one row per key, no
deletes, every event newer than its key's current version. For such a batch the general
loader's re-derivation of history (temporary tables, window passes, delta join) always
ends in two writes — close the current row of each changed key, insert the new
versions — so this path issues just those two, plus one probe that proves the batch is
of that kind. Anything else (late or same-time events, a key whose history ends in a
delete, a deleted-flag current row, Type 1 / Type 6 columns) goes the general way.

The result is the same history, surrogate keys included: new versions are numbered in
(business key, effective_from) order, as the general path numbers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.sql.build import and_all, col, ident, table
from crane.warehouse.scd.base import ScdResult, ScdTable
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
)

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef

# Engines whose connector answers an INSERT or UPDATE with its row count as the one
# result row (the counts of the result come from the writes, not from another scan).
ROW_COUNTS = {"duckdb"}


@dataclass(frozen=True)
class Probe:
    """What one statement learns about a batch before a Type 2 load."""

    rows: int  # batch rows
    keys: int  # distinct business keys in the batch
    deletes: int  # rows marked as hard deletes
    null_ts: int  # rows without a change timestamp
    stored: bool  # the dimension has rows
    unsafe: int | None  # batch keys whose stored history is not "current, older" (fast only)

    @property
    def clean(self) -> bool:
        """One live row per key: nothing to deduplicate or order."""
        return bool(self.rows) and self.rows == self.keys and not self.deletes

    @property
    def on_time(self) -> bool:
        """Clean, timestamped, and every key's history ends in an older current version."""
        return self.clean and not self.null_ts and self.unsafe == 0


def applies(con: Connector, dim: ScdTable) -> bool:
    """Dimensions whose change load can be two writes: pure Type 2 with sequence or hash
    keys, on an engine that reports row counts."""
    return (
        con.dialect in ROW_COUNTS
        and dim.kind == "2"
        and not dim.overwrite
        and not dim.type3
        and dim.surrogate_key is not None
    )


def probe(con: Connector, dim: ScdTable, batch: TableRef, *, fast: bool) -> Probe:
    """Batch shape, whether the dimension is empty, and (``fast``) the keys the fast path
    cannot take — one statement; the dimension is read only for its narrow columns."""
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
    row = con.execute(exp.select(*items).from_(table(batch)))[0]
    rows, distinct, deleted, null_ts, stored = (int(v or 0) for v in row[:5])
    unsafe = int(row[5] or 0) if fast else None
    return Probe(rows, distinct, deleted, null_ts, bool(stored), unsafe)


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


def load(con: Connector, dim: ScdTable, batch: TableRef, rows: int) -> ScdResult:
    """Close each changed current row at its event's time, then insert a current version
    for every batch key left without one (changed and new keys)."""
    closed = _row_count(con.execute(_close(dim, batch)))
    inserted = _row_count(con.execute(_insert(dim, batch)))
    return ScdResult(inserted=inserted, closed=closed, unchanged=rows - inserted)


def _row_count(result: list[tuple]) -> int:
    return int(result[0][0]) if result else 0


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
