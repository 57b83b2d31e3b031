"""Refuse a batch the SCD loaders would misread, before any statement touches the dimension.

Without these checks a batch lacking a declared column failed with the engine's own
words (DuckDB's ``Binder Error: Table "b" does not have a column named "city"``), which
name neither the dimension nor what the column is for; a text change timestamp was
stored as a text ``effective_from`` on a first load and failed every load after it. Each
error here names the dimension table and the column, and says what the column is
declared as. (A row without a change timestamp is data, not shape: the loaders
quarantine it, :func:`crane.warehouse.scd.steps.set_aside_untimed`.)

One catalog read per table (the batch, and the dimension once it exists): small next to
the general loaders' temporary tables.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.errors import LoadError
from crane.sql.build import table
from crane.warehouse.scd.base import ScdTable
from crane.warehouse.scd.steps import HISTORY_KINDS, neg, num

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef

# Type families by the words engines spell types with (DuckDB upper case, PostgreSQL's
# format_type lower case); order matters: "interval" and "point" are not integers.
_FAMILIES = [
    ("other", re.compile(r"interval|point|json|\[\]|struct|map|list")),
    ("temporal", re.compile(r"timestamp|datetime|^date$|^date\b")),
    ("boolean", re.compile(r"bool")),
    ("text", re.compile(r"char|text|string|uuid")),
    (
        "number",
        re.compile(r"\b(tiny|small|big|huge|u)?int(eger)?\d*\b|decimal|numeric|double|float|real"),
    ),
]


def family(sql_type: str) -> str:
    """A coarse family of a catalog type name: temporal, boolean, text, number or other.

    >>> [family(t) for t in ["TIMESTAMP WITH TIME ZONE", "date", "numeric(12,2)", "INTERVAL"]]
    ['temporal', 'temporal', 'number', 'other']
    """
    text = sql_type.strip().lower()
    for name, pattern in _FAMILIES:
        if pattern.search(text):
            return name
    return "other"


def check_batch(con: Connector, dim: ScdTable, batch: TableRef) -> None:
    """Every declared batch column exists and can mean what it is declared as; the
    stored dimension (if any) has the columns the load writes, of the same families."""
    found = columns_of(con, batch)
    if found is None:
        raise LoadError(f"the batch table {batch} does not exist", table=str(dim.table))
    sources = batch_columns(dim)
    for column, role in sources.items():
        if column not in found:
            raise LoadError(
                f"the batch {batch} has no column {column!r} (the {role})",
                table=str(dim.table),
                column=column,
                hint="stage the column, or fix the dimension's declaration",
            )
    _expect(dim, batch, dim.change_ts, found[dim.change_ts], "temporal", "the change timestamp")
    if dim.delete_marker:
        _expect(
            dim, batch, dim.delete_marker, found[dim.delete_marker], "boolean", "the delete marker"
        )
    for part in _stored_parts(dim):
        stored = columns_of(con, part.table)
        if stored is not None:
            _check_stored(con, part, batch, found, stored)


def batch_columns(dim: ScdTable) -> dict[str, str]:
    """Batch column → what it is declared as, for every column a load reads."""
    roles = {k: "business key" for k in dim.business_key}
    roles.update({c: "tracked (type2) attribute" for c in dim.type2})
    roles.update({c: "Type 1 attribute" for c in dim.type1})
    roles.update({c: "Type 3 attribute" for c in dim.type3})
    roles.update({s: f"source of the current column {c!r}" for c, s in dim.current_of.items()})
    roles[dim.change_ts] = "change timestamp"
    if dim.delete_marker:
        roles[dim.delete_marker] = "delete marker"
    if dim.tie_break:
        roles[dim.tie_break] = "tie-break"
    return roles


def _expect(
    dim: ScdTable, batch: TableRef, column: str, sql_type: str, want: str, role: str
) -> None:
    if family(sql_type) != want:
        article = "a date or timestamp" if want == "temporal" else "a boolean"
        raise LoadError(
            f"{role} {column!r} of the batch {batch} is {sql_type}, not {article}",
            table=str(dim.table),
            column=column,
            hint=f"cast it to {article} in the staging query",
        )


def _stored_parts(dim: ScdTable) -> list[ScdTable]:
    if dim.kind == "4":
        from crane.warehouse.scd.type4 import parts

        return list(parts(dim))
    return [dim]


def _written(dim: ScdTable) -> dict[str, str | None]:
    """Dimension column → the batch column it is loaded from (None: crane's own)."""
    from crane.warehouse.scd.steps import value_columns

    out: dict[str, str | None] = {k: k for k in dim.business_key}
    out.update(value_columns(dim))
    out.update({prev: c for c, prev in dim.type3.items()})
    if dim.kind in HISTORY_KINDS:
        out.update({dim.effective_from: dim.change_ts, dim.effective_to: dim.change_ts})
        out[dim.is_current] = None
    else:
        out[dim.change_ts] = dim.change_ts
    if dim.tie_break:
        out[dim.tie_break] = dim.tie_break
    for own in (dim.surrogate_key, dim.deleted_column):
        if own:
            out[own] = None
    return out


# Families an engine compares and assigns by itself, both ways: DuckDB reads 0/1 as
# false/true (a source's tinyint flag into a BOOLEAN column, the retail demo's products).
# PostgreSQL has no implicit cast between families: every other pair fails there.
_ENGINE_CASTS = {"duckdb": {frozenset({"number", "boolean"})}}


def _check_stored(
    con: Connector, dim: ScdTable, batch: TableRef, found: dict[str, str], stored: dict[str, str]
) -> None:
    for column, source in _written(dim).items():
        if column not in stored:
            raise LoadError(
                f"the dimension has no column {column!r}, which the load writes",
                table=str(dim.table),
                column=column,
                hint="add the column to the table (crane model plan shows the change)",
            )
        if source is None:
            continue
        have, want = family(found[source]), family(stored[column])
        if "other" in (have, want) or have == want:
            continue
        if frozenset({have, want}) in _ENGINE_CASTS.get(con.dialect, set()):
            continue
        if _all_null(con, batch, source):  # typed by default (an untyped NULL is INTEGER)
            continue
        raise LoadError(
            f"the batch {batch} has {source!r} as {found[source]}, the dimension's column"
            f" {column!r} is {stored[column]}",
            table=str(dim.table),
            column=column,
            hint="cast the batch column to the dimension's type in the staging query",
        )


def _all_null(con: Connector, batch: TableRef, column: str) -> bool:
    """Whether ``column`` holds no value in ``batch`` (asked only of a mismatched column)."""
    query = exp.select(exp.Count(this=exp.column(column, quoted=True))).from_(table(batch))
    return int(con.execute(query)[0][0]) == 0


def columns_of(con: Connector, ref: TableRef) -> dict[str, str] | None:
    """Column name → the catalog's type name, in table order; None if ``ref`` is missing.
    Works for temporary tables and views too (DuckDB DESCRIBE, PostgreSQL ``to_regclass``)."""
    from crane.warehouse.scd.steps import table_exists

    if con.dialect == "duckdb":
        if not _duckdb_relation_exists(con, ref):
            return None
        return {str(r[0]): str(r[1]) for r in con.execute(exp.Describe(this=table(ref)))}
    if con.dialect == "postgres":
        rows = con.execute(_pg_columns(ref))
        return {str(r[0]): str(r[1]) for r in rows} or None
    if not table_exists(con, ref):
        return None
    schema: exp.Expr = exp.Literal.string(ref.schema) if ref.schema else exp.func("CURRENT_SCHEMA")
    query = (
        exp.select(exp.column("column_name"), exp.column("data_type"))
        .from_(exp.table_("columns", db="information_schema"))
        .where(
            exp.and_(
                exp.column("table_name").eq(exp.Literal.string(ref.name)),
                exp.column("table_schema").eq(schema),
            )
        )
        .order_by(exp.column("ordinal_position"))
    )
    return {str(r[0]): str(r[1]) for r in con.execute(query)}


def _duckdb_relation_exists(con: Connector, ref: TableRef) -> bool:
    """Tables (temporary ones too) and views, by name and, if given, schema (DuckDB's own
    catalog functions: its information_schema views cost tens of milliseconds)."""

    def named(function: str, name_column: str) -> exp.Select:
        cond: exp.Expr = exp.column(name_column).eq(exp.Literal.string(ref.name))
        if ref.schema:
            cond = exp.and_(cond, exp.column("schema_name").eq(exp.Literal.string(ref.schema)))
        return exp.select(num(1)).from_(exp.func(function)).where(cond)

    tables, views = named("duckdb_tables", "table_name"), named("duckdb_views", "view_name")
    probe = exp.select(exp.or_(exp.Exists(this=tables), exp.Exists(this=views)))
    return bool(con.execute(probe)[0][0])


def _pg_columns(ref: TableRef) -> exp.Select:
    oid = exp.func("to_regclass", exp.Literal.string(ref.sql("postgres")))
    attribute = exp.table_("pg_attribute", db="pg_catalog")
    return (
        exp.select(
            exp.column("attname"),
            exp.func("format_type", exp.column("atttypid"), exp.column("atttypmod")),
        )
        .from_(attribute)
        .where(
            exp.and_(
                exp.column("attrelid").eq(oid),
                exp.column("attnum") > num(0),
                neg(exp.column("attisdropped")),
            )
        )
        .order_by(exp.column("attnum"))
    )
