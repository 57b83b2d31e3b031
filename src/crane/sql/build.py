"""Small sqlglot builders every SQL-emitting module shares.

Identifiers are always quoted here, so a column called ``order`` or ``Name``
survives every dialect; values become literals made by sqlglot, never by string
formatting. Statements stay syntax trees until :func:`render` turns them into
one dialect's text, so the same builder serves DuckDB, PostgreSQL and MySQL.

>>> render(select_from(["id", "Name"], table_ref("t", "raw"), alias="s"), "duckdb")
'SELECT "s"."id", "s"."Name" FROM "raw"."t" AS "s"'
>>> render(keys_match(["a", "b"], "t", "s"), "postgres")
'"t"."a" = "s"."a" AND "t"."b" = "s"."b"'
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

from sqlglot import exp

if TYPE_CHECKING:
    import pyarrow as pa

    from crane.connectors.base import TableRef


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: case and reserved words are kept as written."""
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column reference, optionally qualified by a table alias."""
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def table_ref(name: str, schema: str | None = None) -> TableRef:
    from crane.connectors.base import TableRef

    return TableRef(name, schema)


def table(ref: TableRef, alias: str | None = None) -> exp.Table:
    """``ref`` as a quoted table expression, with an optional quoted alias."""
    node = ref.expression()
    if alias:
        node.set("alias", exp.TableAlias(this=ident(alias)))
    return node


def qualified_col(name: str, ref: TableRef) -> exp.Column:
    """``"schema"."table"."name"``: for statements that cannot alias their target."""
    return exp.Column(
        this=ident(name),
        table=ident(ref.name),
        db=ident(ref.schema) if ref.schema else None,
    )


def render(node: exp.Expr, dialect: str) -> str:
    return node.sql(dialect=dialect)


def and_all(conditions: Iterable[exp.Expr]) -> exp.Expr:
    """AND of ``conditions``; TRUE when there are none."""
    items = list(conditions)
    if not items:
        return exp.true()
    return exp.and_(*items) if len(items) > 1 else items[0]


def keys_match(keys: Sequence[str], left: str | TableRef, right: str | TableRef) -> exp.Expr:
    """Key columns compared one by one (never concatenated, so (1,'23') ≠ (12,'3')).

    Plain ``=`` on purpose: key columns are NOT NULL after validation, and engines
    hash- or index-join on ``=`` but not on ``IS NOT DISTINCT FROM``.
    """
    return and_all(exp.EQ(this=_side(k, left), expression=_side(k, right)) for k in keys)


def all_same(
    columns: Sequence[str], left: str, right: str, as_text: Collection[str] = ()
) -> exp.Expr:
    """NULL-safe equality of every column: NULL equals NULL, NULL differs from 1.

    Columns in ``as_text`` are compared as text: some types (PostgreSQL ``json``)
    have no equality operator at all.
    """

    def side(name: str, alias: str) -> exp.Expr:
        ref = col(name, alias)
        return exp.cast(ref, exp.DataType.build("TEXT")) if name in as_text else ref

    return and_all(exp.NullSafeEQ(this=side(c, left), expression=side(c, right)) for c in columns)


def _side(name: str, side: str | TableRef) -> exp.Column:
    return col(name, side) if isinstance(side, str) else qualified_col(name, side)


def select_from(columns: Sequence[str], source: TableRef, alias: str | None = None) -> exp.Select:
    return exp.select(*(col(c, alias) for c in columns)).from_(table(source, alias))


def count_where(condition: exp.Expr) -> exp.Expr:
    """``COUNT(CASE WHEN cond THEN 1 END)``: FILTER is not portable to MySQL."""
    return exp.Count(this=exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))]))


def exists(query: exp.Select) -> exp.Exists:
    return exp.Exists(this=query)


def timestamp_literal(value: datetime) -> exp.Expr:
    """A typed timestamp literal; aware values keep their instant (TIMESTAMPTZ)."""
    kind = "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
    return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.build(kind))


def create_schema(name: str) -> exp.Create:
    return exp.Create(this=exp.Table(db=ident(name)), kind="SCHEMA", exists=True)


def drop_table(ref: TableRef, if_exists: bool = True) -> exp.Drop:
    return exp.Drop(tables=[table(ref)], kind="TABLE", exists=if_exists)


def create_table_as(ref: TableRef, query: exp.Query) -> exp.Create:
    return exp.Create(this=table(ref), kind="TABLE", expression=query)


def create_table(ref: TableRef, columns: Sequence[tuple[str, exp.DataType]]) -> exp.Create:
    defs = [exp.ColumnDef(this=ident(name), kind=dtype) for name, dtype in columns]
    schema = exp.Schema(this=table(ref), expressions=defs)
    return exp.Create(this=schema, kind="TABLE", exists=True)


def add_primary_key(ref: TableRef, keys: Sequence[str]) -> exp.Alter:
    pk = exp.PrimaryKey(expressions=[ident(k) for k in keys])
    return _alter(ref, exp.AddConstraint(expressions=[pk]))


def add_column(ref: TableRef, name: str, dtype: exp.DataType) -> exp.Alter:
    return _alter(ref, exp.ColumnDef(this=ident(name), kind=dtype))


def alter_column_type(ref: TableRef, name: str, dtype: exp.DataType) -> exp.Alter:
    return _alter(ref, exp.AlterColumn(this=ident(name), dtype=dtype))


def rename_table(ref: TableRef, new_name: str) -> exp.Alter:
    """Rename within the same schema (the new name is never schema-qualified)."""
    return _alter(ref, exp.AlterRename(this=exp.Table(this=ident(new_name))))


def _alter(ref: TableRef, action: exp.Expr) -> exp.Alter:
    return exp.Alter(this=table(ref), kind="TABLE", actions=[action])


def insert_select(target: TableRef, columns: Sequence[str], query: exp.Query) -> exp.Insert:
    schema = exp.Schema(this=table(target), expressions=[ident(c) for c in columns])
    return exp.Insert(this=schema, expression=query)


def sql_type(type_text: str) -> exp.DataType:
    """Parse a user-declared type (``DECIMAL(10,2)``, ``varchar(20)``, ``bigint``).

    Parsed without a dialect so lengths survive (DuckDB's reader drops them).
    """
    return exp.DataType.build(type_text)


def arrow_to_sql(arrow_type: pa.DataType) -> exp.DataType:
    """The engine-neutral SQL type for an Arrow type; sqlglot renders it per dialect.

    Unsigned integers widen to the next signed type (PostgreSQL has none);
    nested types fall back to JSON text where no engine-neutral form exists.
    """
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_dictionary(t):
        return arrow_to_sql(t.value_type)
    if isinstance(t, pa.ExtensionType):
        name = t.extension_name
        if name.endswith("uuid"):
            return exp.DataType.build("UUID")
        if name.endswith("json"):
            return exp.DataType.build("JSON")
        return arrow_to_sql(t.storage_type)
    if pa.types.is_decimal(t):
        return exp.DataType.build(f"DECIMAL({t.precision}, {t.scale})")
    if pa.types.is_timestamp(t):
        return exp.DataType.build("TIMESTAMPTZ" if t.tz else "TIMESTAMP")
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = arrow_to_sql(t.value_type)
        return exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[inner], nested=True)
    for check, name in _arrow_table():
        if check(t):
            return exp.DataType.build(name)
    return exp.DataType.build("TEXT")


@cache
def _arrow_table() -> list[tuple[Callable[[pa.DataType], bool], str]]:
    import pyarrow.types as pt

    return [
        (pt.is_boolean, "BOOLEAN"),
        (pt.is_int8, "SMALLINT"),
        (pt.is_int16, "SMALLINT"),
        (pt.is_int32, "INT"),
        (pt.is_int64, "BIGINT"),
        (pt.is_uint8, "SMALLINT"),
        (pt.is_uint16, "INT"),
        (pt.is_uint32, "BIGINT"),
        (pt.is_uint64, "DECIMAL(20, 0)"),
        (pt.is_float16, "REAL"),
        (pt.is_float32, "REAL"),
        (pt.is_float64, "DOUBLE"),
        (pt.is_string, "TEXT"),
        (pt.is_large_string, "TEXT"),
        (pt.is_binary, "BLOB"),
        (pt.is_large_binary, "BLOB"),
        (pt.is_fixed_size_binary, "BLOB"),
        (pt.is_date, "DATE"),
        (pt.is_time, "TIME"),
        (pt.is_duration, "INTERVAL"),
        (pt.is_interval, "INTERVAL"),
        (pt.is_struct, "JSON"),
        (pt.is_map, "JSON"),
    ]
