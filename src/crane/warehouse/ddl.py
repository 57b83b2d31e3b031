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
analytical views.

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

import hashlib
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlglot import exp
from sqlglot.errors import ErrorLevel

from crane.connectors.base import TableRef
from crane.errors import ConfigError
from crane.sql.build import col, ident, table
from crane.warehouse import dialects
from crane.warehouse.columns import HASH_KEY_TYPE, Column
from crane.warehouse.dialects import WarehouseDialect
from crane.warehouse.spec import (
    DimensionSpec,
    FactSpec,
    Model,
    TableSpec,
    outriggers_first,
)
from crane.warehouse.validate import primary_key

QUALITY_METRICS = [
    ("run_id", "TEXT"),
    ("table_name", "TEXT"),
    ("check_name", "TEXT"),
    ("metric", "TEXT"),
    ("value", "DOUBLE"),
    ("threshold", "DOUBLE"),
    ("passed", "BOOLEAN"),
    ("measured_at", "TIMESTAMPTZ"),
]
# what `crane model apply` last built per table: the physical options (JSON), so a later
# plan sees a changed option on engines whose catalogs cannot show it
MODEL_TABLES = [
    ("table_name", "TEXT"),
    ("owner", "TEXT"),
    ("dialect", "TEXT"),
    ("physical", "TEXT"),
    ("applied_at", "TIMESTAMPTZ"),
]


class DdlError(ConfigError):
    """The model cannot be rendered for an engine (names the object and option at fault)."""


@dataclass(frozen=True)
class Statement:
    """One DDL statement: what it makes, its tree, and its text in the target dialect."""

    kind: str  # schema | sequence | table | comment | index | partition | view | helper
    name: str  # the object it creates or changes
    node: exp.Expr
    sql: str


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


def render(node: exp.Expr, dialect: WarehouseDialect) -> str:
    """Text for ``dialect``; raises instead of dropping anything sqlglot cannot express,
    or of letting the engine cut a name too long for it (PostgreSQL keeps 63 bytes, so
    ``dim_<long>`` and its ``dim_<long>_current`` view became one name)."""
    for name in node.find_all(exp.Identifier):
        size = len(str(name.this).encode())
        if size > dialect.max_identifier:
            raise DdlError(
                f"name {name.this!r} is {size} bytes; {dialect.name} keeps "
                f"{dialect.max_identifier} and would cut it",
                hint="shorten the name, or give the object a shorter `table:`",
            )
    return node.sql(dialect=dialect.sqlglot, unsupported_level=ErrorLevel.RAISE)


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
        out.append(_stmt(dialect, "schema", name, _create_schema(name)))
    for tdef in defs:
        out += table_statements(tdef, dialect)
    out += role_views(model, dialect)
    if helpers:
        out += helper_statements(dialect)
    if samples:
        out += [_stmt(dialect, "sample", n, node) for n, node in sample_views(model)]
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


def _stmt(dialect: WarehouseDialect, kind: str, name: str, node: exp.Expr) -> Statement:
    return Statement(kind, name, node, render(node, dialect))


def _create_schema(name: str) -> exp.Create:
    return exp.Create(this=exp.Table(db=ident(name)), kind="SCHEMA", exists=True)


def table_statements(tdef: TableDef, dialect: WarehouseDialect) -> list[Statement]:
    """Sequence, CREATE TABLE, comments, indexes and partitions of one table."""
    out: list[Statement] = []
    sequence = _sequence(tdef, dialect)
    if sequence is not None:
        out.append(_stmt(dialect, "sequence", sequence.name, _create_sequence(sequence)))
    out.append(_stmt(dialect, "table", str(tdef.ref), create_table(tdef, dialect)))
    if dialect.comments == "statement":
        out += [_stmt(dialect, "comment", str(tdef.ref), n) for n in _comments(tdef)]
    out += [_stmt(dialect, "index", str(tdef.ref), n) for n in _indexes(tdef, dialect)]
    out += [_stmt(dialect, "partition", str(tdef.ref), n) for n in _partitions(tdef, dialect)]
    return out


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
        props.append(exp.ClusterProperty(expressions=[col(c) for c in opts["cluster_by"]]))
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


def _indexes(tdef: TableDef, dialect: WarehouseDialect) -> list[exp.Expr]:
    """Indexes on foreign keys (where the engine wants them) and declared extra indexes."""
    wanted: list[list[str]] = []
    if "indexes" in dialect.options:
        if tdef.physical.get("index_foreign_keys", dialect.index_foreign_keys):
            wanted += [[c] for c, _, _ in tdef.foreign_keys if [c] != list(tdef.primary_key[:1])]
        wanted += [[c] if isinstance(c, str) else list(c) for c in tdef.physical.get("indexes", [])]
    return [_create_index(tdef.ref, cols, dialect) for cols in wanted]


def _create_index(ref: TableRef, columns: list[str], dialect: WarehouseDialect) -> exp.Create:
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


def _partitions(tdef: TableDef, dialect: WarehouseDialect) -> list[exp.Expr]:
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


# -- views and helpers ------------------------------------------------------------------
def role_views(model: Model, dialect: WarehouseDialect) -> list[Statement]:
    """A view per role-playing reference (order_date → date): columns renamed by role."""
    out: list[Statement] = []
    seen: set[str] = set()
    for fact in [*model.facts]:
        for ref in fact.dimensions:
            dim = model.dimension(ref.dimension)
            if not ref.role or ref.role == ref.dimension or dim is None or ref.role in seen:
                continue
            seen.add(ref.role)
            view = dim.role_view(ref.role, model.schema_)
            out.append(_stmt(dialect, "view", str(view), _role_view(dim, ref.role, view, model)))
    return out


def _role_view(dim: DimensionSpec, role: str, view: TableRef, model: Model) -> exp.Create:
    items = []
    for c in dim.columns(model):
        alias = f"{role}_key" if c.name == dim.key_column else f"{role}_{c.name}"
        items.append(exp.alias_(col(c.name), ident(alias)))
    query = exp.select(*items).from_(table(dim.ref(model.schema_)))
    return exp.Create(this=table(view), kind="VIEW", expression=query, replace=True)


def helper_statements(dialect: WarehouseDialect, schema: str = "_crane") -> list[Statement]:
    """crane's own tables: run history, watermarks, schema changes (the state store's
    definitions, one source of truth), quality metrics and applied model tables;
    ``schema`` moves them (tests keep them out of a shared database's ``_crane``)."""
    from crane.state import store

    nodes = [_move(n, store.STATE_SCHEMA, schema) for n in store.ddl()]
    for name, columns in (("quality_metrics", QUALITY_METRICS), ("model_tables", MODEL_TABLES)):
        ref = TableRef(name, schema)
        defs = [exp.ColumnDef(this=ident(n), kind=exp.DataType.build(t)) for n, t in columns]
        shape = exp.Schema(this=table(ref), expressions=defs)
        nodes.append(exp.Create(this=shape, kind="TABLE", exists=True))
    return [_stmt(dialect, "helper", schema, n) for n in nodes]


def _move(node: exp.Expr, old: str, new: str) -> exp.Expr:
    """``node`` with every table of schema ``old`` in schema ``new``."""
    if old == new:
        return node
    node = node.copy()
    for t in node.find_all(exp.Table):
        if t.db == old:
            t.set("db", ident(new))
    if isinstance(node, exp.Create) and node.kind == "SCHEMA" and node.this.name == old:
        node.this.set("this", ident(new))  # CREATE SCHEMA names the schema as its table
    return node


def model_state(schema: str = "_crane") -> TableRef:
    return TableRef("model_tables", schema)


# -- sample analytical views ------------------------------------------------------------
def sample_views(model: Model) -> list[tuple[str, exp.Create]]:
    """Starting points for analysts: current rows of versioned dimensions, and each fact
    summed by its date (additive + semi-additive measures) and by its first other
    dimension (additive measures only: a semi-additive balance must not be summed over
    time)."""
    schema = model.schema_
    out = []
    for dim in model.dimensions:
        if _versioned(dim):
            view = TableRef(f"{dim.table}_current", dim.schema_ or schema)
            where = exp.column(ident(dim.scd2_columns.is_current)).eq(exp.true())
            query = exp.select("*").from_(table(dim.ref(schema))).where(where)
            out.append((str(view), _view(view, query)))
    for fact in model.facts:
        for ref, semi in _summary_refs(fact, model):
            target = model.dimension(ref.dimension)
            assert target is not None
            view = TableRef(f"{fact.table}_by_{ref.label}", fact.schema_ or schema)
            out.append((str(view), _view(view, _summary(fact, ref, target, semi, schema))))
    return out


def _summary_refs(fact: FactSpec, model: Model) -> list[tuple[Any, bool]]:
    dated = [r for r in fact.dimensions if _kind(model, r.dimension) == "date"]
    other = [r for r in fact.dimensions if _kind(model, r.dimension) not in ("date", None)]
    period = fact.reference(fact.period) if fact.period else None
    chosen = [(period or dated[0], True)] if (period or dated) else []
    return chosen + ([(other[0], False)] if other else [])


def _kind(model: Model, name: str) -> str | None:
    dim = model.dimension(name)
    return dim.kind if dim is not None else None


def _summary(
    fact: FactSpec, ref: Any, dim: DimensionSpec, semi: bool, schema: str | None
) -> exp.Select:
    keys = [col(k, "d") for k in dim.business_key]
    allowed = ("additive", "semi") if semi else ("additive",)
    sums = [
        exp.alias_(exp.Sum(this=col(m.name, "f")), ident(m.name))
        for m in fact.measures
        if m.additivity in allowed
    ]
    count = exp.alias_(exp.Count(this=exp.Star()), ident("fact_rows"))
    on = col(ref.key_column, "f").eq(col(dim.key_column, "d"))
    return (
        exp.select(*keys, *sums, count)
        .from_(table(fact.ref(schema), "f"))
        .join(table(dim.ref(schema), "d"), on=on)
        .group_by(*[k.copy() for k in keys])
    )


def _view(ref: TableRef, query: exp.Query) -> exp.Create:
    return exp.Create(this=table(ref), kind="VIEW", expression=query, replace=True)
