"""SQL steps every SCD loader shares, built as sqlglot trees and rendered per engine.

A loader first turns the staged batch into canonical *events* (business key,
attribute values, change timestamp, tie-break, delete flag), removes exact
duplicates, refuses two different changes at one timestamp, and then runs its
own set-based statements over small temporary tables. Nothing here loops over
rows in Python.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.errors import LoadError
from crane.sql.build import and_all, col, ident, table, timestamp_literal
from crane.warehouse.scd.base import ScdConflictError, ScdTable

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef

TS = "_crane_ts"
TIE = "_crane_tie"
DEL = "_crane_del"
SK = "_crane_sk"
NEW = "_crane_new"
HISTORY_KINDS = ("2", "6")


# -- small expression helpers -------------------------------------------------------
def window(
    func: exp.Expr,
    partition: Sequence[str] = (),
    order: Sequence[tuple[str, bool]] = (),
    alias: str | None = None,
    frame: bool = False,
) -> exp.Window:
    """``func OVER (PARTITION BY … ORDER BY …)``; ``order`` is (column, descending)."""
    ordered = [
        exp.Ordered(this=col(c, alias), desc=desc, nulls_first=not desc) for c, desc in order
    ]
    spec = None
    if frame:
        spec = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING")
    return exp.Window(
        this=func,
        partition_by=[col(c, alias) for c in partition] or None,
        order=exp.Order(expressions=ordered) if ordered else None,
        spec=spec,
    )


def same(columns: Iterable[str], left: str | None, right: str | None) -> exp.Expr:
    """NULL-safe equality of ``columns`` between two aliases (NULL = NULL, NULL ≠ 1)."""
    return and_all(exp.NullSafeEQ(this=col(c, left), expression=col(c, right)) for c in columns)


def differ(columns: Iterable[str], left: str | None, right: str | None) -> exp.Expr:
    return neg(same(columns, left, right))


def keys_same(dim: ScdTable, left: str, right: str) -> exp.Expr:
    """Business keys compared NULL-safely, so a NULL part never makes a key new every run
    (dbt #11950); column by column, never concatenated (dlt #4244). When the load found
    no NULL key part (``key_nulls`` false), plain ``=``, which every engine hash-joins."""
    if dim.key_nulls:
        return same(dim.business_key, left, right)
    return and_all(eq(col(k, left), col(k, right)) for k in dim.business_key)


# Engines that hash-join on IS NOT DISTINCT FROM; elsewhere (PostgreSQL) a NULL-safe key
# join is a nested loop, so the load first checks whether any key part is NULL at all.
NULL_SAFE_HASH_JOIN = {"duckdb"}


def without_null_keys(con: Connector, dim: ScdTable, batch: TableRef) -> ScdTable:
    """``dim`` with ``key_nulls=False`` when neither the batch nor the dimension has a
    NULL business-key part (checked under the dimension lock, so it stays true)."""
    if not dim.key_nulls or con.dialect in NULL_SAFE_HASH_JOIN:
        return dim
    found = con.execute(null_keys_query(dim, batch))[0]
    return dim if any(found) else dim.replace(key_nulls=False)


def null_keys_query(dim: ScdTable, batch: TableRef) -> exp.Select:
    """One row: for the batch, the dimension (and a history table), whether any of its
    rows has a NULL business-key part."""
    any_null = exp.or_(*(is_null(col(k)) for k in dim.business_key))
    tables = [batch, dim.table, *([dim.history_table] if dim.history_table else [])]
    probes = [exp.select(num(1)).from_(table(t)).where(any_null.copy()).limit(1) for t in tables]
    return exp.select(*(exp.Exists(this=p) for p in probes))


def is_true(expr: exp.Expr) -> exp.Expr:
    return exp.Is(this=expr, expression=exp.true())


def lit_ts(value: datetime) -> exp.Expr:
    return timestamp_literal(value)


def as_(expr: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(expr, ident(name))


def neg(expr: exp.Expr) -> exp.Not:
    """``NOT (expr)``: always parenthesised, sqlglot does not add them for AND/OR."""
    return exp.Not(this=exp.Paren(this=expr))


def num(value: int) -> exp.Expr:
    return exp.Literal.number(value)


def eq(left: exp.Expr, right: exp.Expr) -> exp.EQ:
    return exp.EQ(this=left, expression=right)


def is_null(expr: exp.Expr) -> exp.Expr:
    return exp.Is(this=expr, expression=exp.Null())


def not_null(expr: exp.Expr) -> exp.Expr:
    return neg(is_null(expr))


def case(cond: exp.Expr, yes: int | exp.Expr, no: int | exp.Expr) -> exp.Case:
    """``CASE WHEN cond THEN yes ELSE no END``; ints become number literals."""

    def lit(v: int | exp.Expr) -> exp.Expr:
        return num(v) if isinstance(v, int) else v

    return exp.Case(ifs=[exp.If(this=cond, true=lit(yes))], default=lit(no))


def subquery(query: exp.Query, alias: str) -> exp.Subquery:
    return exp.Subquery(this=query, alias=exp.TableAlias(this=ident(alias)))


def null_as(name: str, type_name: str | None = None) -> exp.Expr:
    value: exp.Expr = exp.Null()
    if type_name:
        value = exp.cast(value, exp.DataType.build(type_name))
    return as_(value, name)


# -- temporary work tables ----------------------------------------------------------
class Work:
    """Temporary tables of one load, dropped when it ends (inside its transaction)."""

    def __init__(self, con: Connector) -> None:
        self.con = con
        self.tag = uuid.uuid4().hex[:10]
        self.tables: list[TableRef] = []

    def temp(self, name: str, query: exp.Query) -> TableRef:
        from crane.connectors.base import TableRef

        ref = TableRef(f"_crane_{name}_{self.tag}")
        props = exp.Properties(expressions=[exp.TemporaryProperty()])
        create = exp.Create(this=table(ref), kind="TABLE", expression=query, properties=props)
        self.con.execute(create)
        self.tables.append(ref)
        return ref

    def scalar(self, query: exp.Select) -> int:
        rows = self.con.execute(query)
        return int(rows[0][0] or 0) if rows else 0

    def count(self, ref: TableRef, where: exp.Expr | None = None) -> int:
        query = exp.select(exp.Count(this=exp.Star())).from_(table(ref))
        return self.scalar(query.where(where) if where is not None else query)

    def drop_all(self) -> None:
        for ref in self.tables:
            self.con.execute(exp.Drop(tables=[table(ref)], kind="TABLE", exists=True))


@contextmanager
def work(con: Connector) -> Iterator[Work]:
    """On error the caller's transaction rolls back, which removes the tables too."""
    w = Work(con)
    yield w
    w.drop_all()


# -- canonical events ---------------------------------------------------------------
def value_columns(dim: ScdTable) -> dict[str, str]:
    """Dimension attribute → batch column, for every attribute the batch carries."""
    values = {c: c for c in dim.type2}
    values.update({c: c for c in dim.type3})
    values.update(dim.overwrite)
    return values


def events_query(dim: ScdTable, batch: TableRef) -> exp.Select:
    """The batch as distinct events; a delete keeps only its key and timestamp, so
    duplicate deletes with different payloads are still one event."""
    marker = col(dim.delete_marker, "b") if dim.delete_marker else None
    deleted = is_true(marker) if marker is not None else exp.false()
    items: list[exp.Expr] = [col(k, "b") for k in dim.business_key]
    for target, source in value_columns(dim).items():
        value: exp.Expr = col(source, "b")
        if marker is not None:
            value = exp.Case(ifs=[exp.If(this=deleted, true=exp.Null())], default=value)
        items.append(as_(value, target))
    items.append(as_(col(dim.change_ts, "b"), TS))
    items.append(as_(col(dim.tie_break, "b"), TIE) if dim.tie_break else null_as(TIE, "INT"))
    flag = exp.Case(
        ifs=[exp.If(this=deleted, true=exp.Literal.number(1))], default=exp.Literal.number(0)
    )
    items.append(as_(flag, DEL))
    query = exp.select(*items).from_(table(batch, "b")).distinct()
    if marker is not None and dim.hard_delete == "ignore":
        query = query.where(neg(deleted))
    return query


def event_columns(dim: ScdTable) -> list[str]:
    """The canonical event columns, in the order a quarantine table keeps them."""
    return [*dim.business_key, *value_columns(dim), TS, TIE, DEL]


def set_aside_untimed(
    w: Work, dim: ScdTable, events: TableRef, *, run_id: str, load_ts: datetime
) -> tuple[TableRef, int]:
    """Events without a change timestamp have no place in history (Type 2 made a version
    with no start, Type 1 a row no later change could be ordered after): they go to the
    quarantine table (reason ``null_change_ts``, once however often the batch is rerun)
    and the rest load. Answers the events left and how many were set aside."""
    untimed = is_null(col(TS))
    if not w.count(events, untimed):
        return events, 0
    columns = event_columns(dim)
    rows = exp.select(*(col(c) for c in columns)).from_(table(events)).where(untimed)
    count = quarantine(
        w.con, dim, rows, columns, reason="null_change_ts", run_id=run_id, load_ts=load_ts
    )
    timed = exp.select(exp.Star()).from_(table(events)).where(not_null(col(TS)))
    return w.temp("evts", timed), count


def check_conflicts(con: Connector, dim: ScdTable, events: TableRef) -> None:
    """Two different events for one key at one timestamp (and one tie-break) is an error:
    which one is "latest" would be a guess."""
    rows = con.execute(conflicts_query(dim, events).limit(1))
    if rows:
        raise_conflict(dim, rows[0])


def conflicts_query(dim: ScdTable, events: TableRef) -> exp.Select:
    group = [*dim.business_key, TS, TIE]
    return (
        exp.select(*(col(c) for c in group))
        .from_(table(events))
        .group_by(*(col(c) for c in group))
        .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
    )


def count_of(query: exp.Select) -> exp.Subquery:
    """``(SELECT COUNT(*) FROM (query))`` as a scalar subquery."""
    return exp.Subquery(this=exp.select(exp.Count(this=exp.Star())).from_(subquery(query, "_c")))


def raise_conflict(dim: ScdTable, row: Sequence[object]) -> None:
    key = dict(zip(dim.business_key, row, strict=False))
    ts = row[len(dim.business_key)]
    raise ScdConflictError(
        f"business key {key} has different changes at the same timestamp {ts}",
        table=str(dim.table),
        hint=(
            "declare a tie_break column (e.g. a sequence number) or deduplicate the batch"
            if not dim.tie_break
            else "the tie-break column has equal values for these changes too"
        ),
    )


def referenced_write(
    con: Connector, dim: ScdTable, statement: exp.Expression, keys: exp.Select, what: str, hint: str
) -> None:
    """Run a write that rewrites or removes stored rows, which facts may reference.

    Any engine refuses to delete a referenced row; DuckDB also runs an UPDATE of an
    indexed column (``effective_from``: unique with the business key in crane's DDL) as
    delete + insert, and refuses it when a foreign key references the row although its
    surrogate key stays
    (https://duckdb.org/docs/stable/sql/indexes#over-eager-constraint-checking-in-foreign-keys).
    The engine's words name neither the dimension nor the key (``keys``: the rows'
    business keys, one of which is named), so this error does, with the remedy."""
    key = con.execute(keys.limit(1))
    try:
        con.execute(statement)
    except Exception as error:
        if "foreign key" not in str(error).lower():
            raise
        named = dict(zip(dim.business_key, key[0], strict=True)) if key else {}
        raise LoadError(
            f"the load {what} of business key {named}, which a fact references",
            table=str(dim.table),
            hint=hint,
        ) from error


# -- surrogate keys -----------------------------------------------------------------
# A per-row number the engine already has: numbering a million rows with
# ROW_NUMBER() OVER () is a single-threaded window pass in DuckDB (~2x an INSERT).
_ROW_ID = {"duckdb": "rowid"}


def surrogate_key(
    dim: ScdTable,
    target: TableRef,
    alias: str,
    order: Sequence[str],
    stamp: str | None,
    dialect: str | None = None,
) -> exp.Expr:
    """A new surrogate key: max + row number under the dimension lock, or a hash of the
    business key (and version start) with a collision-free encoding of each part.

    With no ``order`` and a ``dialect`` that has row ids, the source table's row id
    (unique within that table) numbers the rows."""
    assert dim.surrogate_key
    if dim.surrogate_strategy == "hash":
        parts = [*dim.business_key, *([stamp] if stamp else [])]
        return exp.func("MD5", exp.Concat(expressions=[_encode(p, alias) for p in parts]))
    current = exp.select(exp.Max(this=col(dim.surrogate_key))).from_(table(target))
    base = exp.Coalesce(this=exp.Subquery(this=current), expressions=[exp.Literal.number(0)])
    if not order and dialect in _ROW_ID:
        one = exp.Literal.number(1)
        return exp.Add(
            this=base, expression=exp.Add(this=col(_ROW_ID[dialect], alias), expression=one)
        )
    ordered = [exp.Ordered(this=col(c, alias), nulls_first=True) for c in order]
    number = exp.Window(
        this=exp.RowNumber(), order=exp.Order(expressions=ordered) if ordered else None
    )
    return exp.Add(this=base, expression=number)


def _encode(name: str, alias: str) -> exp.Expr:
    """``length:text|`` per part, ``~|`` for NULL: no two key tuples encode alike."""
    text = exp.cast(col(name, alias), exp.DataType.build("TEXT"))
    length = exp.cast(exp.Length(this=text), exp.DataType.build("TEXT"))
    encoded = exp.Concat(expressions=[length, exp.Literal.string(":"), text])
    return exp.Concat(
        expressions=[
            exp.Coalesce(this=encoded, expressions=[exp.Literal.string("~")]),
            exp.Literal.string("|"),
        ]
    )


# -- creating the tables ------------------------------------------------------------
# Catalog probes per engine: DuckDB's information_schema is a view over many joins
# (tens of ms), PostgreSQL resolves a name with to_regclass in microseconds.
_CATALOG = {
    "duckdb": ("duckdb_tables", "schema_name"),
}


def table_exists(con: Connector, ref: TableRef) -> bool:
    return bool(con.execute(table_exists_query(con, ref))[0][0])


def table_exists_query(con: Connector, ref: TableRef) -> exp.Select:
    """One row, one column: true (non-zero) when ``ref`` exists."""
    schema: exp.Expr = exp.Literal.string(ref.schema) if ref.schema else exp.func("CURRENT_SCHEMA")
    if con.dialect == "postgres":
        regclass = exp.func("to_regclass", exp.Literal.string(ref.sql("postgres")))
        return exp.select(not_null(regclass))
    source: exp.Expr = exp.table_("tables", db="information_schema")
    schema_column = "table_schema"
    if con.dialect in _CATALOG:
        function, schema_column = _CATALOG[con.dialect]
        source = exp.func(function)
    return (
        exp.select(exp.Count(this=exp.Star()))
        .from_(source)
        .where(
            exp.and_(
                exp.column("table_name").eq(exp.Literal.string(ref.name)),
                exp.column(schema_column).eq(schema),
            )
        )
    )


def column_exists_query(con: Connector, ref: TableRef, column: str) -> exp.Select:
    """One row, one column: non-zero when the existing table ``ref`` has ``column``."""
    if con.dialect == "duckdb":  # its catalog views load every table's columns (~5 ms)
        info = exp.func("pragma_table_info", exp.Literal.string(ref.sql("duckdb")))
        named = exp.column("name").eq(exp.Literal.string(column))
        return exp.select(exp.Count(this=exp.Star())).from_(info).where(named)
    schema: exp.Expr = exp.Literal.string(ref.schema) if ref.schema else exp.func("CURRENT_SCHEMA")
    source, schema_column = exp.table_("columns", db="information_schema"), "table_schema"
    return (
        exp.select(exp.Count(this=exp.Star()))
        .from_(source)
        .where(
            and_all(
                [
                    exp.column("table_name").eq(exp.Literal.string(ref.name)),
                    exp.column(schema_column).eq(schema),
                    exp.column("column_name").eq(exp.Literal.string(column)),
                ]
            )
        )
    )


def ensure_tables(con: Connector, dim: ScdTable, batch: TableRef) -> None:
    """Refuse a batch the loader would misread (:mod:`crane.warehouse.scd.checks`), then
    create a missing dimension (and Type 4 history table) typed from the batch; add and
    fill a newly declared ``row_hash`` column."""
    from crane.warehouse.scd.checks import check_batch

    check_batch(con, dim, batch)
    if dim.kind == "4":
        from crane.warehouse.scd.type4 import parts

        for part in parts(dim):
            _create(con, part, batch)
        return
    _create(con, dim, batch)
    if dim.row_hash and not con.execute(column_exists_query(con, dim.table, dim.row_hash))[0][0]:
        _add_row_hash(con, dim)
    if dim.last_change and not _has_column(con, dim, dim.last_change):
        _add_last_change(con, dim)


def _has_column(con: Connector, dim: ScdTable, column: str) -> bool:
    return bool(con.execute(column_exists_query(con, dim.table, column))[0][0])


def _add_last_change(con: Connector, dim: ScdTable) -> None:
    """The dimension was loaded before ``last_change`` was declared: the column starts
    empty, which means "no time beyond the version boundaries" (the earlier behaviour)."""
    assert dim.last_change
    kind = exp.DataType.build("TIMESTAMP")
    column = exp.ColumnDef(this=ident(dim.last_change), kind=kind)
    con.execute(exp.Alter(this=table(dim.table), kind="TABLE", actions=[column]))


def _add_row_hash(con: Connector, dim: ScdTable) -> None:
    """The dimension was loaded before ``row_hash`` was declared: hash its stored rows."""
    from crane.warehouse.scd.row_hash import SQL_TYPE, row_hash_expr

    assert dim.row_hash
    column = exp.ColumnDef(this=ident(dim.row_hash), kind=exp.DataType.build(SQL_TYPE))
    add = exp.Alter(this=table(dim.table), kind="TABLE", actions=[column])
    con.execute(add)
    fill = eq(col(dim.row_hash), row_hash_expr(dim.type2, None, con.dialect))
    con.execute(exp.Update(this=table(dim.table), expressions=[fill]))


def _create(con: Connector, dim: ScdTable, batch: TableRef) -> None:
    if table_exists(con, dim.table):
        return
    items: list[exp.Expr] = []
    if dim.surrogate_key:
        kind = "TEXT" if dim.surrogate_strategy == "hash" else "BIGINT"
        items.append(null_as(dim.surrogate_key, kind))
    items += [col(k, "b") for k in dim.business_key]
    items += [as_(col(s, "b"), t) for t, s in value_columns(dim).items()]
    items += [as_(col(c, "b"), prev) for c, prev in dim.type3.items()]
    if dim.kind in HISTORY_KINDS:
        items += [as_(col(dim.change_ts, "b"), dim.effective_from)]
        items += [as_(col(dim.change_ts, "b"), dim.effective_to)]
        items.append(null_as(dim.is_current, "BOOLEAN"))
        if dim.last_change:
            items += [as_(col(dim.change_ts, "b"), dim.last_change)]
    else:
        items.append(col(dim.change_ts, "b"))
    if dim.tie_break:
        items.append(col(dim.tie_break, "b"))
    if dim.deleted_column:
        items.append(null_as(dim.deleted_column, "BOOLEAN"))
    if dim.row_hash:
        from crane.warehouse.scd.row_hash import SQL_TYPE

        items.append(null_as(dim.row_hash, SQL_TYPE))
    query = exp.select(*items).from_(table(batch, "b")).where(exp.false())
    if dim.table.schema:
        con.execute(
            exp.Create(this=exp.Table(db=ident(dim.table.schema)), kind="SCHEMA", exists=True)
        )
    con.execute(exp.Create(this=table(dim.table), kind="TABLE", expression=query))


def _widen_quarantine(con: Connector, target: TableRef, source: exp.Select) -> None:
    """Add to a quarantine table the columns its rows have gained since it was made (an
    attribute added to the dimension, a new fact column): the first quarantine fixed its
    shape, and every later one failed on the missing column."""
    from crane.warehouse.scd.checks import columns_of

    have = columns_of(con, target) or {}
    if set(source.named_selects) <= set(have):
        return
    with work(con) as w:
        shape = columns_of(con, w.temp("qshape", source.where(exp.false()))) or {}
    for name, sql_type in shape.items():
        if name not in have:
            kind = exp.DataType.build(sql_type, dialect=con.dialect, udt=True)
            add = exp.ColumnDef(this=ident(name), kind=kind)
            con.execute(exp.Alter(this=table(target), kind="TABLE", actions=[add]))


def quarantine(
    con: Connector,
    dim: ScdTable,
    rows: exp.Select,
    columns: Sequence[str],
    *,
    reason: str,
    run_id: str,
    load_ts: datetime,
) -> int:
    """Append ``rows`` (canonical event columns) to the quarantine table with the reason,
    skipping events already quarantined, so a rerun adds nothing."""
    target = dim.quarantine
    meta = [
        as_(exp.Literal.string(reason), "_crane_reason"),
        as_(exp.Literal.string(run_id), "_crane_run_id"),
        as_(lit_ts(load_ts), "_crane_load_ts"),
    ]
    source = exp.select(*(col(c, "q") for c in columns), *meta).from_(
        exp.Subquery(this=rows, alias=exp.TableAlias(this=ident("q")))
    )
    if not table_exists(con, target):
        con.execute(
            exp.Create(this=table(target), kind="TABLE", expression=source.where(exp.false()))
        )
    else:
        _widen_quarantine(con, target, source)
    seen = (
        exp.select(exp.Literal.number(1)).from_(table(target, "o")).where(same(columns, "o", "q"))
    )
    source = source.where(neg(exp.Exists(this=seen)))
    temp = exp.select(exp.Count(this=exp.Star())).from_(subquery(source, "x"))
    count = int(con.execute(temp)[0][0])
    if count:
        names = [*columns, "_crane_reason", "_crane_run_id", "_crane_load_ts"]
        schema = exp.Schema(this=table(target), expressions=[ident(c) for c in names])
        con.execute(exp.Insert(this=schema, expression=source))
    return count
