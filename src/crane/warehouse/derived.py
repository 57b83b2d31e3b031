"""Columns whose stored values follow from the others: a Type 2 dimension's ``row_hash``.

The SCD loader fills ``row_hash`` (crane.warehouse.scd.row_hash) on the rows it writes,
and on stored rows only when it adds the column itself. A column that `crane model
apply` added was NULL on every stored version, and a NULL stored hash differs from
every batch hash: the next load saw each unchanged row as changed and added a new
version of it. So `plan` fills the column on the stored rows in the same apply that
adds it, and fills the rows an earlier apply left NULL.

The synthetic members keep no hash: the unknown member (its key is never loaded, see
crane.warehouse.load) and inferred members (completing one sets its hash).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.sql.build import col, table

if TYPE_CHECKING:
    from crane.connectors.base import TableRef
    from crane.warehouse.dialects import WarehouseDialect
    from crane.warehouse.spec import DimensionSpec, Model


def derived_columns(model: Model, ref: TableRef, dialect: WarehouseDialect) -> dict[str, exp.Expr]:
    """Column → the expression of its value, for the table ``ref`` of ``model``."""
    from crane.config.loader import SpecError
    from crane.warehouse.scd.row_hash import DIGEST, row_hash_expr

    dim = _dimension(model, ref)
    name = dim.scd2_columns.row_hash if dim is not None else None
    if dim is None or not name or dialect.name not in DIGEST:
        return {}
    try:
        tracked = dim.scd_table(ref.schema).type2  # the loader's columns, in its order
    except SpecError:  # not loadable as declared: validate and load say why
        return {}
    return {name: row_hash_expr(tracked, None, dialect.name)} if tracked else {}


def stale_rows(model: Model, ref: TableRef, column: str, live: Collection[str]) -> exp.Expr:
    """The stored rows of a real member whose derived ``column`` is NULL (``live``: the
    table's columns now; an inferred flag the same apply adds marks no row yet)."""
    from crane.warehouse.load import lookup_dimension

    dim = _dimension(model, ref)
    assert dim is not None
    member = lookup_dimension(model, dim)
    key = exp.Literal.string(member.unknown_key) if isinstance(member.unknown_key, str) else None
    unknown = key or exp.Literal.number(member.unknown_key)
    conditions: list[exp.Expr] = [
        exp.Is(this=col(column), expression=exp.Null()),
        exp.NEQ(this=col(member.surrogate_key), expression=unknown),
    ]
    if member.inferred_flag and member.inferred_flag in live:
        flag = exp.Coalesce(this=col(member.inferred_flag), expressions=[exp.false()])
        conditions.append(exp.Not(this=flag))
    return exp.and_(*conditions)


def count_stale(model: Model, ref: TableRef, column: str, live: Collection[str]) -> exp.Select:
    where = stale_rows(model, ref, column, live)
    return exp.select(exp.Count(this=exp.Star())).from_(table(ref)).where(where)


def fill(ref: TableRef, column: str, value: exp.Expr, where: exp.Expr | None = None) -> exp.Update:
    """``UPDATE ref SET column = value [WHERE where]``."""
    update = exp.Update(this=table(ref), expressions=[col(column).eq(value)])
    return update.where(where) if where is not None else update


def _dimension(model: Model, ref: TableRef) -> DimensionSpec | None:
    return next((d for d in model.dimensions if d.ref(model.schema_) == ref), None)
