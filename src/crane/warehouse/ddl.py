"""One model → the complete warehouse schema for DuckDB, PostgreSQL, Snowflake, BigQuery, Redshift.

Every statement is a sqlglot tree built from the model and the engine's data in
`crane.warehouse.dialects`; nothing here branches on an engine's name. Trees are
rendered with ``unsupported_level=RAISE``: where sqlglot would drop a construct
for a dialect with only a warning (``CLUSTER BY`` on DuckDB, column comments on
PostgreSQL, sqlglot #1150/#2887/#7716), rendering fails instead — an option is
never silently dropped.

The script holds, in order: schemas, sequences, dimension tables (surrogate
key, business key, attributes, Type 3/6 columns, SCD2 columns), Type 4 history
tables, facts (foreign keys, degenerate columns, measures, grain as primary
key), bridges, comments, indexes and partitions, role-playing views, crane's
helper tables (watermarks, run history, quality metrics) and sample
analytical views. This module makes the tables (columns, keys, constraints,
physical options, comments) and orders the script; indexes and partitions come
from `crane.warehouse.indexes`, views from `crane.warehouse.views`, crane's own
tables from `crane.warehouse.helper_tables`.

>>> from crane.warehouse.spec import Model, DimensionSpec
>>> m = Model(dimensions=[DimensionSpec(name="store", business_key="id",
...     attributes=[{"name": "id", "type": "INT"}])])
>>> st = build(m, "snowflake", helpers=False, samples=False)
>>> print(st[0].sql)  # doctest: +NORMALIZE_WHITESPACE
CREATE TABLE IF NOT EXISTS "dim_store" ("store_key" BIGINT AUTOINCREMENT NOT NULL COMMENT
'surrogate key', "id" INT NOT NULL, "updated_at" TIMESTAMP COMMENT 'last change',
PRIMARY KEY ("store_key"), UNIQUE ("id"))
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlglot import exp

from crane.connectors.base import TableRef
from crane.sql.build import col, ident, table
from crane.warehouse import dialects
from crane.warehouse.columns import HASH_KEY_TYPE, Column
from crane.warehouse.dialects import WarehouseDialect
from crane.warehouse.helper_tables import helper_statements
from crane.warehouse.indexes import indexes, partitions
from crane.warehouse.spec import DimensionSpec, Model, TableSpec, outriggers_first
from crane.warehouse.statements import DdlError, Statement, render, statement
from crane.warehouse.validate import primary_key
from crane.warehouse.views import role_views, sample_views


@dataclass(frozen=True)
class TableDef:
    """A table as the model declares it: the input of both DDL and plan."""

    ref: TableRef
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    unique: tuple[str, ...]
    foreign_keys: tuple[tuple[str, TableRef, str], ...]  # (column, table, key column)
    physical: dict[str, Any]
    comment: str | None
    key_strategy: str | None
    owner: str  # "dimension store", "fact sales", …


# -- the model as table definitions -----------------------------------------------------
def table_defs(model: Model, engine: str) -> list[TableDef]:
    """Every table of the model, dimensions first (facts reference them), outriggers
    before the dimensions that reference them."""
    schema = model.schema_
    defs: list[TableDef] = []
    for dim in outriggers_first(model.dimensions):
        defs.append(_dimension_def(dim, model, engine, schema, history=False))
        if dim.scd == 4:
            defs.append(_dimension_def(dim, model, engine, schema, history=True))
    for fact in model.facts:
        defs.append(_def(fact, model, engine, schema, f"fact {fact.name}", None))
    for bridge in model.bridges:
        defs.append(_def(bridge, model, engine, schema, f"bridge {bridge.name}", None))
    return defs


def _dimension_def(
    dim: DimensionSpec, model: Model, engine: str, schema: str | None, history: bool
) -> TableDef:
    strategy = key_strategy(dim, engine)
    base = _def(dim, model, engine, schema, f"dimension {dim.name}", strategy)
    if not history:
        return base
    ref = TableRef(dim.history, base.ref.schema)
    return TableDef(
        ref,
        tuple(dim.history_columns()),
        (dim.key_column,),
        (),
        (),
        {},
        f"every version of {dim.table} (SCD type 4)",
        strategy,
        f"dimension {dim.name} history",
    )


def _def(
    obj: TableSpec, model: Model, engine: str, schema: str | None, owner: str, strategy: str | None
) -> TableDef:
    columns = engine_columns(obj, model, engine)
    fks = []
    for c in columns:
        if c.role == "foreign_key":
            target = model.dimension(_ref_dimension(obj, c.name))
            if target is not None:
                fks.append((c.name, target.ref(schema), target.key_column))
    unique = tuple(obj.business_key) if isinstance(obj, DimensionSpec) else ()
    if isinstance(obj, DimensionSpec) and _versioned(obj):
        unique = (*unique, obj.scd2_columns.effective_from)
    return TableDef(
        obj.ref(schema),
        tuple(columns),
        tuple(primary_key(obj)),
        unique,
        tuple(fks),
        dict(obj.physical.get(dialects.get(engine).name, {})),
        obj.comment,
        strategy,
        owner,
    )


def engine_columns(obj: TableSpec, model: Model, engine: str) -> list[Column]:
    """``obj``'s columns with key types as ``engine`` stores them: a dimension whose key
    strategy is switched to ``hash`` there has text keys, and so do references to it."""
    own = obj if isinstance(obj, DimensionSpec) else None
    out = []
    for c in obj.columns(model):
        dim = own if c.role == "surrogate_key" else None
        if c.role == "foreign_key":
            dim = model.dimension(_ref_dimension(obj, c.name))
        if dim is not None and not dim.surrogate_key.type and key_strategy(dim, engine) == "hash":
            c = replace(c, type=HASH_KEY_TYPE)
        out.append(c)
    return out


def _versioned(dim: DimensionSpec) -> bool:
    return dim.scd_columns().has_history


def _ref_dimension(obj: TableSpec, column: str) -> str:
    refs = getattr(obj, "dimensions", None) or getattr(obj, "outriggers", [])
    return next(r.dimension for r in refs if r.key_column == column)


def key_strategy(dim: DimensionSpec, engine: str) -> str:
    """The dimension's key strategy on ``engine`` (a physical override, or the model's)."""
    dialect = dialects.get(engine)
    strategy = str(
        dim.physical.get(dialect.name, {}).get("surrogate_key", dim.surrogate_key.strategy)
    )
    if strategy not in dialect.key_strategies:
        raise DdlError(
            f"{dialect.name} cannot generate {strategy} surrogate keys "
            f"(it can: {', '.join(sorted(dialect.key_strategies))})",
            table=dim.table,
            field=f"dimensions.{dim.name}.surrogate_key.strategy",
            hint=f"set physical.{dialect.name}.surrogate_key: hash on the dimension",
        )
    return strategy


# -- statements -------------------------------------------------------------------------
def build(
    model: Model, engine: str, *, helpers: bool = True, samples: bool = True
) -> list[Statement]:
    """The complete schema script for ``engine``, as rendered statements."""
    dialect = dialects.get(engine)
    defs = table_defs(model, dialect.name)
    out: list[Statement] = []
    for name in sorted({d.ref.schema for d in defs if d.ref.schema}):
        out.append(statement(dialect, "schema", name, create_schema(name)))
    for tdef in defs:
        out += table_statements(tdef, dialect)
    out += role_views(model, dialect)
    if helpers:
        out += helper_statements(dialect)
    if samples:
        out += [statement(dialect, "sample", n, node) for n, node in sample_views(model)]
    return sorted(out, key=lambda st: _ORDER.index(st.kind))  # stable: keeps model order


def script(statements: list[Statement]) -> str:
    """The statements as one SQL script, each section headed by a comment."""
    lines: list[str] = []
    last = None
    for st in statements:
        if st.kind != last:
            lines.append(f"\n-- {_SECTIONS.get(st.kind, st.kind)}")
            last = st.kind
        lines.append(st.sql + ";")
    return "\n".join(lines).lstrip("\n") + "\n"


_SECTIONS = {
    "schema": "schemas",
    "sequence": "surrogate key sequences",
    "table": "dimensions, facts and bridges",
    "partition": "partitions",
    "comment": "comments",
    "index": "indexes",
    "view": "role-playing dimension views",
    "helper": "crane helper tables: run history, watermarks, schema changes, quality metrics",
    "sample": "sample analytical views",
}
_ORDER = list(_SECTIONS)


def create_schema(name: str) -> exp.Create:
    return exp.Create(this=exp.Table(db=ident(name)), kind="SCHEMA", exists=True)


def table_statements(tdef: TableDef, dialect: WarehouseDialect) -> list[Statement]:
    """Sequence, CREATE TABLE, comments, indexes and partitions of one table."""
    _check_physical(tdef, dialect)
    out: list[Statement] = []
    sequence = _sequence(tdef, dialect)
    if sequence is not None:
        out.append(statement(dialect, "sequence", sequence.name, _create_sequence(sequence)))
    out.append(statement(dialect, "table", str(tdef.ref), create_table(tdef, dialect)))
    if dialect.comments == "statement":
        out += [statement(dialect, "comment", str(tdef.ref), n) for n in _comments(tdef)]
    out += [statement(dialect, "index", str(tdef.ref), n) for n in indexes(tdef, dialect)]
    out += [statement(dialect, "partition", str(tdef.ref), n) for n in partitions(tdef, dialect)]
    return out


def _check_physical(tdef: TableDef, dialect: WarehouseDialect) -> None:
    """The options ``crane model validate`` checks, checked again for a model built in
    Python and never validated: ``sortkey: order_day`` rendered letter by letter."""
    columns = {c.name: c.type for c in tdef.columns}
    found = dialects.check_physical(dialect.name, tdef.physical, columns, list(tdef.primary_key))
    if found:
        option, reason = found[0]
        raise DdlError(reason, table=str(tdef.ref), field=f"physical.{dialect.name}.{option}")


def _sequence(tdef: TableDef, dialect: WarehouseDialect) -> TableRef | None:
    by_sequence = tdef.key_strategy == "sequence" or (
        tdef.key_strategy == "identity" and dialect.identity_by_sequence
    )
    if not by_sequence:
        return None
    return TableRef(f"seq_{tdef.ref.name}", tdef.ref.schema)


def _create_sequence(ref: TableRef) -> exp.Create:
    return exp.Create(this=table(ref), kind="SEQUENCE", exists=True)


def create_table(tdef: TableDef, dialect: WarehouseDialect) -> exp.Create:
    """``CREATE TABLE IF NOT EXISTS`` with keys, NOT NULL, comments and physical options."""
    defs: list[exp.Expr] = [column_def(c, tdef, dialect) for c in tdef.columns]
    defs += _constraints(tdef, dialect)
    props = _properties(tdef, dialect)
    return exp.Create(
        this=exp.Schema(this=table(tdef.ref), expressions=defs),
        kind="TABLE",
        exists=True,
        properties=exp.Properties(expressions=props) if props else None,
    )


def column_def(c: Column, tdef: TableDef, dialect: WarehouseDialect) -> exp.ColumnDef:
    constraints: list[exp.ColumnConstraint] = []
    if c.role == "surrogate_key":
        generated = _key_default(tdef, dialect)
        if generated is not None:
            constraints.append(exp.ColumnConstraint(kind=generated))
    if not c.nullable:
        constraints.append(exp.ColumnConstraint(kind=exp.NotNullColumnConstraint()))
    if c.comment and dialect.comments == "inline":
        text = exp.Literal.string(c.comment)
        constraints.append(exp.ColumnConstraint(kind=exp.CommentColumnConstraint(this=text)))
    if c.comment and dialect.comments == "options":
        constraints.append(exp.ColumnConstraint(kind=_description(c.comment)))
    return exp.ColumnDef(
        this=ident(c.name), kind=dialects.column_type(c.type), constraints=constraints
    )


def _description(text: str) -> exp.Properties:
    """BigQuery's ``OPTIONS (description='…')``."""
    prop = exp.Property(this=exp.var("description"), value=exp.Literal.string(text))
    return exp.Properties(expressions=[prop])


def _key_default(tdef: TableDef, dialect: WarehouseDialect) -> exp.Expr | None:
    sequence = _sequence(tdef, dialect)
    if sequence is not None:
        if dialect.sequence_default == "dot_nextval":
            value: exp.Expr = exp.Dot(this=table(sequence), expression=exp.var("NEXTVAL"))
        else:
            name = exp.Literal.string(render(table(sequence), dialect))
            value = exp.func("nextval", name)
        return exp.DefaultColumnConstraint(this=value)
    if tdef.key_strategy == "identity" and dialect.identity_text:
        # A documented rendering step for a sqlglot gap: Redshift's "GENERATED BY DEFAULT
        # AS IDENTITY(1, 1)" comes out as "IDENTITY(1, 1)", which refuses explicit keys.
        return exp.var(dialect.identity_text)
    if tdef.key_strategy == "identity":
        # BY DEFAULT: loaders may insert explicit keys (the "unknown" member, -1)
        return exp.GeneratedAsIdentityColumnConstraint(this=False)
    return None


def _constraints(tdef: TableDef, dialect: WarehouseDialect) -> list[exp.Expr]:
    enforced = dialect.constraints != "not_enforced"
    options: list[exp.Expr] | None = None if enforced else [exp.var("NOT ENFORCED")]
    out: list[exp.Expr] = []
    if tdef.primary_key:
        out.append(
            exp.PrimaryKey(expressions=[ident(k) for k in tdef.primary_key], options=options)
        )
    if tdef.unique and dialect.unique_constraints:
        out.append(_unique(tdef.unique, options))
    out += [foreign_key(column, ref, key, dialect) for column, ref, key in tdef.foreign_keys]
    return out


def foreign_key(column: str, ref: TableRef, key: str, dialect: WarehouseDialect) -> exp.Expr:
    """``FOREIGN KEY (column) REFERENCES ref (key)``, ``NOT ENFORCED`` where the engine
    needs it (in CREATE TABLE, and in the ALTER TABLE of a plan)."""
    enforced = dialect.constraints != "not_enforced"
    options: list[exp.Expr] | None = None if enforced else [exp.var("NOT ENFORCED")]
    target = exp.Schema(this=table(ref), expressions=[ident(key)])
    return exp.ForeignKey(
        expressions=[ident(column)], reference=exp.Reference(this=target, options=options)
    )


def _unique(columns: tuple[str, ...], options: list[exp.Expr] | None) -> exp.Expr:
    schema = exp.Schema(expressions=[ident(c) for c in columns])
    return exp.UniqueColumnConstraint(this=schema, options=options)


def _properties(tdef: TableDef, dialect: WarehouseDialect) -> list[exp.Expr]:
    """Physical options (already validated) as table properties, by option name."""
    props: list[exp.Expr] = []
    opts = tdef.physical
    cols = {c.name: c.type for c in tdef.columns}
    if "partition_by" in opts and "partitions" in dialect.options:  # range partitioning
        props.append(exp.PartitionedByProperty(this=exp.func("RANGE", col(opts["partition_by"]))))
    elif "partition_by" in opts:
        props.append(exp.PartitionedByProperty(this=_bucket(opts, cols)))
    if "cluster_by" in opts:
        terms = dialects.cluster_terms(opts["cluster_by"], dialect.name, cols)
        props.append(exp.ClusterProperty(expressions=terms))
    if "diststyle" in opts or "distkey" in opts:
        style = str(opts.get("diststyle", "key")).upper()
        props.append(exp.DistStyleProperty(this=exp.var(style)))
    if "distkey" in opts:
        props.append(exp.DistKeyProperty(this=ident(opts["distkey"])))
    if "sortkey" in opts:
        compound = str(opts.get("sortkey_style", "compound")).lower() == "compound"
        keys = [ident(c) for c in opts["sortkey"]]
        props.append(exp.SortKeyProperty(this=keys, compound=compound))
    if tdef.comment and dialect.comments == "inline":
        props.append(exp.SchemaCommentProperty(this=exp.Literal.string(tdef.comment)))
    if tdef.comment and dialect.comments == "options":
        props.extend(_description(tdef.comment).expressions)
    return props


def _bucket(opts: dict[str, Any], cols: dict[str, str]) -> exp.Expr:
    """BigQuery's partition expression for a DATE, TIMESTAMP or integer column."""
    column = col(opts["partition_by"])
    kind = dialects.base_type(cols.get(opts["partition_by"], "DATE"))
    if "partition_range" in opts:
        start, end, step = (exp.Literal.number(v) for v in opts["partition_range"])
        return exp.func("RANGE_BUCKET", column, exp.func("GENERATE_ARRAY", start, end, step))
    return column if kind == "DATE" else exp.func("DATE", column)


def _comments(tdef: TableDef) -> list[exp.Expr]:
    out: list[exp.Expr] = []
    if tdef.comment:
        out.append(
            exp.Comment(
                this=table(tdef.ref), kind="TABLE", expression=exp.Literal.string(tdef.comment)
            )
        )
    for c in tdef.columns:
        if c.comment:
            target = exp.Column(
                this=ident(c.name),
                table=ident(tdef.ref.name),
                db=ident(tdef.ref.schema) if tdef.ref.schema else None,
            )
            out.append(
                exp.Comment(this=target, kind="COLUMN", expression=exp.Literal.string(c.comment))
            )
    return out
