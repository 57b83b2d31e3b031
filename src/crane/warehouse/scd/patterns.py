"""Types 5 and 7 are not loaders but views over the tables the other types load.

* **Type 5** (4 + 1): the Type 2 dimension plus a "current profile" outrigger — a view
  giving, per durable key, the current values of the mini-dimension attributes, so a
  fact can join to today's profile without a reload of the fact.
* **Type 7** (dual Type 1 and Type 2): facts carry both the surrogate key (as-was) and
  the durable business key; a view of current rows serves the as-is join by business
  key while the base table serves the as-was join by surrogate key.

Both are built as sqlglot trees and rendered for any dialect.

>>> from crane.connectors.base import TableRef
>>> from crane.warehouse.scd.base import ScdTable
>>> dim = ScdTable(TableRef("dim_customer", "gold"), business_key=("customer_id",),
...                type2=("city", "segment"))
>>> print(current_view(dim, TableRef("dim_customer_current", "gold")).sql("postgres"))
CREATE OR REPLACE VIEW "gold"."dim_customer_current" AS SELECT "d"."customer_id", "d"."city", \
"d"."segment" FROM "gold"."dim_customer" AS "d" WHERE "d"."is_current" = TRUE
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.sql.build import col, ident, table

if TYPE_CHECKING:
    from crane.connectors.base import TableRef
    from crane.warehouse.scd.base import ScdTable


def _view(name: TableRef, query: exp.Query) -> exp.Create:
    return exp.Create(this=table(name), kind="VIEW", expression=query, replace=True)


def current_view(dim: ScdTable, name: TableRef, columns: Sequence[str] | None = None) -> exp.Create:
    """Type 7's as-is side: the current row per durable key, joinable by business key."""
    names = list(columns) if columns is not None else [*dim.type2, *dim.overwrite]
    query = exp.select(*(col(c, "d") for c in [*dim.business_key, *names]))
    query = query.from_(table(dim.table, "d"))
    return _view(name, query.where(exp.EQ(this=col(dim.is_current, "d"), expression=exp.true())))


def type5_view(
    dim: ScdTable, name: TableRef, profile: Sequence[str], prefix: str = "current_"
) -> exp.Create:
    """Type 5: every version of ``dim`` plus the key's *current* value of each ``profile``
    attribute as ``current_<attr>`` (a Type 1 outrigger), computed at query time."""
    keys = list(dim.business_key)
    on = exp.and_(
        *(exp.NullSafeEQ(this=col(k, "d"), expression=col(k, "c")) for k in keys),
        exp.EQ(this=col(dim.is_current, "c"), expression=exp.true()),
    )
    items: list[exp.Expr] = [exp.Column(this=exp.Star(), table=ident("d"))]
    items += [exp.alias_(col(p, "c"), ident(f"{prefix}{p}")) for p in profile]
    query = exp.select(*items).from_(table(dim.table, "d"))
    query = query.join(table(dim.table, "c"), on=on, join_type="LEFT")
    return _view(name, query)


def as_of(dim: ScdTable, at: exp.Expr, columns: Sequence[str] | None = None) -> exp.Select:
    """The members as they were at ``at``: the versions in force then (effective_from ≤
    at < effective_to), less the ones a ``close_and_flag`` delete flagged — that version
    records that the member was gone (it carries the values it had before)."""
    names = list(columns) if columns is not None else [*dim.type2, *dim.overwrite]
    started = exp.LTE(this=col(dim.effective_from, "d"), expression=at)
    open_end = exp.Is(this=col(dim.effective_to, "d"), expression=exp.Null())
    not_ended = exp.or_(open_end, exp.GT(this=col(dim.effective_to, "d"), expression=at))
    cond = exp.and_(started, exp.Paren(this=not_ended))
    if dim.deleted_column:
        deleted = exp.Is(this=col(dim.deleted_column, "d"), expression=exp.true())
        cond = exp.and_(cond, exp.Not(this=exp.Paren(this=deleted)))
    query = exp.select(*(col(c, "d") for c in [*dim.business_key, *names]))
    return query.from_(table(dim.table, "d")).where(cond)
