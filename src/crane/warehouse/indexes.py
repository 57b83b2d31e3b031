"""Indexes and range partitions: the statements that follow a table's CREATE TABLE.

Indexes on foreign keys (where the engine wants them) and declared extra indexes, and
PostgreSQL's range partitions. `crane.warehouse.ddl` emits them with the table;
`crane.warehouse.plan` reruns them on their own when a table's options change (all are
``IF NOT EXISTS``, so only new ones are made).

>>> index_name("fact_sales", ["customer_key"], 63)
'ix_fact_sales_customer_key'
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crane.connectors.base import TableRef
from crane.sql.build import col, ident, table
from crane.warehouse import dialects

if TYPE_CHECKING:
    from crane.warehouse.ddl import TableDef
    from crane.warehouse.dialects import WarehouseDialect


def indexes(tdef: TableDef, dialect: WarehouseDialect) -> list[exp.Expr]:
    """Indexes on foreign keys (where the engine wants them) and declared extra indexes."""
    if "indexes" not in dialect.options:
        return []
    wanted = index_columns(tdef, tdef.physical, dialect)
    return [create_index(tdef.ref, list(cols), dialect) for cols in wanted]


def index_columns(
    tdef: TableDef, physical: dict[str, Any], dialect: WarehouseDialect
) -> list[tuple[str, ...]]:
    """The column lists ``physical`` asks indexes for, each once: an index declared on a
    foreign key is the one made for it (two equal ``CREATE INDEX`` statements before).
    ``crane model plan`` compares them before and after an option change."""
    out: list[tuple[str, ...]] = []
    if physical.get("index_foreign_keys", dialect.index_foreign_keys):
        out += [(c,) for c, _, _ in tdef.foreign_keys if [c] != list(tdef.primary_key[:1])]
    out += [(c,) if isinstance(c, str) else tuple(c) for c in physical.get("indexes", [])]
    return list(dict.fromkeys(out))


def create_index(ref: TableRef, columns: list[str], dialect: WarehouseDialect) -> exp.Create:
    name = index_name(ref.name, columns, dialect.max_identifier)
    index = exp.Index(
        this=ident(name),
        table=table(ref),
        params=exp.IndexParameters(columns=[col(c) for c in columns]),
    )
    return exp.Create(this=index, kind="INDEX", exists=True)


def index_name(table_name: str, columns: list[str], limit: int) -> str:
    """``ix_<table>_<cols>``, shortened with a stable hash past the engine's limit."""
    name = f"ix_{table_name}_{'_'.join(columns)}"
    if len(name) <= limit:
        return name
    digest = hashlib.md5(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9]}_{digest}"


def partitions(tdef: TableDef, dialect: WarehouseDialect) -> list[exp.Expr]:
    """PostgreSQL range partitions (yearly or monthly) plus a DEFAULT partition; the
    DEFAULT one alone when no ranges are given (a partitioned table without any
    partition refuses every row)."""
    if "partitions" not in dialect.options or "partition_by" not in tdef.physical:
        return []
    spec = tdef.physical.get("partitions")
    if not spec:
        return [_partition_of(tdef.ref, "default", exp.var("DEFAULT"))]
    column = tdef.physical["partition_by"]
    integer = (
        dialects.base_type({c.name: c.type for c in tdef.columns}[column]) in dialects.INT_TYPES
    )
    bounds = _ranges(_day(spec["from"]), _day(spec["to"]), str(spec.get("every", "year")))
    out: list[exp.Expr] = []
    for low, high in bounds:
        suffix = f"{low:%Y}" if spec.get("every", "year") == "year" else f"{low:%Y%m}"
        bound = exp.PartitionBoundSpec(
            from_expressions=[_bound(low, integer)], to_expressions=[_bound(high, integer)]
        )
        out.append(_partition_of(tdef.ref, suffix, bound))
    out.append(_partition_of(tdef.ref, "default", exp.var("DEFAULT")))
    return out


def _partition_of(ref: TableRef, suffix: str, bound: exp.Expr) -> exp.Create:
    part = TableRef(f"{ref.name}_{suffix}", ref.schema)
    prop = exp.PartitionedOfProperty(this=table(ref), expression=bound)
    return exp.Create(
        this=table(part), kind="TABLE", exists=True, properties=exp.Properties(expressions=[prop])
    )


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _ranges(start: date, end: date, every: str) -> list[tuple[date, date]]:
    out = []
    low = date(start.year, 1 if every == "year" else start.month, 1)
    while low < end:
        if every == "year":
            high = date(low.year + 1, 1, 1)
        else:
            high = date(low.year + low.month // 12, low.month % 12 + 1, 1)
        out.append((low, high))
        low = high
    return out


def _bound(day: date, integer: bool) -> exp.Expr:
    if integer:  # a yyyymmdd date key
        return exp.Literal.number(day.year * 10000 + day.month * 100 + day.day)
    return exp.Literal.string(day.isoformat())
