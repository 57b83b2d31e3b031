"""``crane model plan`` / ``apply``: the difference between the model and the live target.

`plan` reads the target's catalog (``information_schema.columns``) and what the
last `apply` recorded in ``_crane.model_tables`` (the physical options, which
most catalogs cannot show), and lists what would change: new tables, added
columns, dropped columns, changed types, changed physical options. `apply`
runs the plan in one transaction. Reading the target lives in
`crane.warehouse.catalog`; the changes found, and how a plan reads, in
`crane.warehouse.changes`.

Adding an attribute is ``ALTER TABLE … ADD COLUMN`` (NULL on existing rows),
so a Type 2 dimension keeps every version it has (SQLMesh #5744 lost history
on a model change by rebuilding). A widening (VARCHAR(20) → VARCHAR(50), INT →
BIGINT, more decimal digits; see crane.warehouse.retype) is altered in place where
the engine can. Dropping a column or any other type change may lose data: such a
change is *destructive* and refused unless ``allow_destructive``. A physical
option the engine cannot change in place (e.g. a BigQuery partitioning) is
reported as a rebuild and never applied silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crane.errors import CraneError
from crane.sql.build import col, ident, table
from crane.warehouse import derived, dialects
from crane.warehouse.catalog import (
    Catalog,
    LiveColumn,
    catalog,
    recorded_physical,
    same_type,
    table_key,
    unbounded,
)
from crane.warehouse.changes import Action, Change, Plan
from crane.warehouse.ddl import (
    TableDef,
    create_schema,
    foreign_key,
    table_defs,
    table_statements,
)
from crane.warehouse.helper_tables import helper_statements, model_state
from crane.warehouse.indexes import create_index, index_columns, index_name, partitions
from crane.warehouse.retype import widening
from crane.warehouse.statements import render
from crane.warehouse.views import role_views, sample_views

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef
    from crane.console import Console
    from crane.warehouse.columns import Column
    from crane.warehouse.dialects import WarehouseDialect
    from crane.warehouse.spec import Model


class DestructiveChangeError(CraneError):
    """The plan drops or retypes columns (or needs a rebuild) and that was not allowed."""


# -- reading the target -----------------------------------------------------------------
def live_columns(con: Connector, ref: TableRef) -> list[LiveColumn] | None:
    """The table's columns from ``information_schema``, or None if it does not exist."""
    schema, name = table_key(con, ref)
    return catalog(con, {schema}).get((schema, name))


# -- comparing --------------------------------------------------------------------------
def plan(model: Model, con: Connector, *, state_schema: str = "_crane") -> Plan:
    """The changes that would make ``con``'s warehouse match ``model``.

    ``state_schema`` holds crane's helper tables (default ``_crane``).
    """
    dialect = dialects.get(con.dialect)
    result = Plan(dialect.name, [], [], state_schema=state_schema)
    defs = table_defs(model, dialect.name)
    views = _views(model, dialect)
    refs = [d.ref for d in defs] + [_view_ref(n) for n, _ in views] + [model_state(state_schema)]
    live_all = catalog(con, {table_key(con, r)[0] for r in refs})
    recorded = recorded_physical(con, model_state(state_schema), live_all)
    referenced = {ref for other in defs for _, ref, _ in other.foreign_keys}
    for tdef in defs:
        live = live_all.get(table_key(con, tdef.ref))
        before = len(result.changes)
        if live is None:
            schema = [render(create_schema(tdef.ref.schema), dialect)] if tdef.ref.schema else []
            statements = schema + [st.sql for st in table_statements(tdef, dialect)]
            detail = f"table {tdef.ref} ({tdef.owner}, {len(tdef.columns)} columns)"
            result.changes.append(Change("create_table", str(tdef.ref), detail, statements))
        else:
            versioning = _versioning_change(tdef, live)
            if versioning is not None:
                result.changes.append(versioning)
            else:
                fills = derived.derived_columns(model, tdef.ref, dialect)
                result.changes += _column_changes(
                    tdef, live, dialect, tdef.ref in referenced, fills
                )
                result.changes += _stale_fills(model, tdef, live, fills, con, dialect)
            if str(tdef.ref) in recorded:
                result.changes += _physical_changes(tdef, recorded[str(tdef.ref)], dialect)
            elif tdef.physical:  # built by hand or by `crane model ddl`: nothing to compare
                result.notes.append(
                    f"{tdef.ref}: physical options not recorded yet (apply records them)"
                )
        if len(result.changes) == before:
            result.unchanged.append(str(tdef.ref))
        result.records.append(tdef)
    _views_and_helpers(result, views, con, dialect, live_all)
    return result


def _versioning_change(tdef: TableDef, live: list[LiveColumn]) -> Change | None:
    """A dimension that starts keeping history (a Type 1 attribute made Type 2) cannot be
    altered into shape: its UNIQUE business key must become (key, effective_from) and its
    rows need validity. Added columns alone left a table whose next load failed on the
    unique key, with NULL is_current on every row: it is reported as a rebuild instead."""
    have = {c.name for c in live}
    housekeeping = [c.name for c in tdef.columns if c.role == "scd2"]
    starts = [u for u in tdef.unique if u in housekeeping and u not in have]
    if not starts:
        return None
    keys = ", ".join(u for u in tdef.unique if u not in housekeeping)
    detail = (
        f"table {tdef.ref} starts keeping history ({', '.join(housekeeping)}): its unique "
        f"key ({keys}) must include {starts[0]} and its rows need validity dates"
    )
    return Change("versioning", str(tdef.ref), detail, destructive=True, rebuild=True)


def _stale_fills(
    model: Model,
    tdef: TableDef,
    live: list[LiveColumn],
    fills: dict[str, exp.Expr],
    con: Connector,
    dialect: WarehouseDialect,
) -> list[Change]:
    """A derived column already there but NULL on stored rows (an apply before crane
    filled it): filled now, or every such row would load as changed."""
    changes = []
    have = {c.name for c in live}
    for name, value in fills.items():
        if name not in have:
            continue  # added (and filled) by _add_column
        count = derived.count_stale(model, tdef.ref, name, have)
        stale = int(con.fetch(render(count, dialect))[0][0])
        if not stale:
            continue
        where = derived.stale_rows(model, tdef.ref, name, have)
        statement = render(derived.fill(tdef.ref, name, value, where), dialect)
        detail = f"column {tdef.ref}.{name}: filled on {stale} stored row(s) where it is NULL"
        changes.append(Change("fill", str(tdef.ref), detail, [statement]))
    return changes


def _column_changes(
    tdef: TableDef,
    live: list[LiveColumn],
    dialect: WarehouseDialect,
    referenced: bool,
    fills: dict[str, exp.Expr] | None = None,
) -> list[Change]:
    changes = []
    # an engine that cannot alter a referenced table can only rebuild it
    stuck = referenced and not dialect.alter_referenced
    have = {c.name: c for c in live}
    wanted = {c.name for c in tdef.columns}
    for column in tdef.columns:
        current = have.get(column.name)
        if current is None:
            changes.append(_add_column(tdef, column, dialect, (fills or {}).get(column.name)))
        elif not same_type(declared := render(_dtype(column), dialect), current.type) or (
            dialect.text_lengths and unbounded(declared, current.type)
        ):
            changes.append(_retype(tdef, column, current, dialect, stuck))
        elif column.nullable and not current.nullable and column.name not in tdef.primary_key:
            changes.append(_drop_not_null(tdef, column, dialect, stuck))
    for name in have:
        if name not in wanted:
            node = _alter(tdef.ref, exp.Drop(tables=[col(name)], kind="COLUMN"))
            detail = f"column {tdef.ref}.{name} {have[name].type} (not in the model)"
            changes.append(_risky("drop_column", tdef, detail, node, dialect, stuck))
    return changes


def _retype(
    tdef: TableDef, column: Column, current: LiveColumn, dialect: WarehouseDialect, stuck: bool
) -> Change:
    """A widening the engine can do in place keeps every row (and every version of a
    Type 2 dimension): it is applied without ``allow_destructive``. Narrowing, or a type
    of another family, may lose values and stays destructive."""
    node = _alter(tdef.ref, exp.AlterColumn(this=ident(column.name), dtype=_dtype(column)))
    detail = f"column {tdef.ref}.{column.name}: {current.type} → {column.type}"
    kind = widening(current.type, render(_dtype(column), dialect))
    keys = {*tdef.primary_key, *tdef.unique, *(name for name, _, _ in tdef.foreign_keys)}
    in_place = kind in dialect.widen_in_place and (dialect.retype_keys or column.name not in keys)
    if kind is None or stuck or not in_place:
        if kind is not None and not stuck:
            detail += f" (widening; {dialect.name} cannot do it in place)"
        return _risky("alter_type", tdef, detail, node, dialect, stuck)
    detail += " (widening, in place)"
    return Change("alter_type", str(tdef.ref), detail, [render(node, dialect)])


def _risky(
    action: Action,
    tdef: TableDef,
    detail: str,
    node: exp.Expr,
    dialect: WarehouseDialect,
    stuck: bool,
) -> Change:
    if stuck:
        detail += f" ({dialect.name} cannot alter a table that foreign keys reference)"
        return Change(action, str(tdef.ref), detail, destructive=True, rebuild=True)
    return Change(action, str(tdef.ref), detail, [render(node, dialect)], destructive=True)


def _drop_not_null(
    tdef: TableDef, column: Column, dialect: WarehouseDialect, stuck: bool
) -> Change:
    """A column the model now lets be NULL: the live NOT NULL would refuse those rows
    (the reverse is not planned: columns added to old rows are NULL there on purpose)."""
    detail = f"column {tdef.ref}.{column.name} may be NULL (was NOT NULL)"
    if stuck or not dialect.drop_not_null:
        detail += f" ({dialect.name} cannot change it in place)"
        return Change("drop_not_null", str(tdef.ref), detail, rebuild=True)
    action = exp.AlterColumn(this=ident(column.name), drop=True, allow_null=True)
    statement = render(_alter(tdef.ref, action), dialect)
    return Change("drop_not_null", str(tdef.ref), detail, [statement])


def _add_column(
    tdef: TableDef, column: Column, dialect: WarehouseDialect, fill: exp.Expr | None = None
) -> Change:
    """Added NULL-able: existing rows (every version of a Type 2 dimension) are kept;
    ``fill`` computes the value of a derived column on them in the same apply."""
    node = _alter(tdef.ref, exp.ColumnDef(this=ident(column.name), kind=_dtype(column)))
    note = "" if column.nullable else " (NULL on existing rows; declared NOT NULL)"
    statements = [render(node, dialect)]
    if fill is not None:
        statements.append(render(derived.fill(tdef.ref, column.name, fill), dialect))
        note = " (filled on the stored rows)"
    for name, ref, key in tdef.foreign_keys:
        if name != column.name:
            continue
        # a new reference (a fact gains a dimension): its key and index, as CREATE has them
        if not dialect.add_foreign_keys:
            note += f" (its foreign key waits for a rebuild: {dialect.name} cannot add one)"
            continue
        fk = exp.AddConstraint(expressions=[foreign_key(name, ref, key, dialect)])
        statements.append(render(_alter(tdef.ref, fk), dialect))
        if (name,) in index_columns(tdef, tdef.physical, dialect) and "indexes" in dialect.options:
            statements.append(render(create_index(tdef.ref, [name], dialect), dialect))
    detail = f"column {tdef.ref}.{column.name} {column.type}{note}"
    return Change("add_column", str(tdef.ref), detail, statements)


def _alter(ref: TableRef, action: exp.Expr) -> exp.Alter:
    return exp.Alter(this=table(ref), kind="TABLE", actions=[action])


def _dtype(column: Column) -> exp.DataType:
    return dialects.column_type(column.type)


def _physical_changes(
    tdef: TableDef, before: dict[str, Any], dialect: WarehouseDialect
) -> list[Change]:
    after = tdef.physical
    changes = []
    for option in sorted(set(before) | set(after)):
        old, new = before.get(option), after.get(option)
        if old == new:
            continue
        detail = f"table {tdef.ref} physical {option}: {_show(old)} → {_show(new)}"
        rule = dialect.options.get(option)
        styles = {str(o.get("sortkey_style", "")).lower() for o in (before, after)}
        if option == "sortkey" and "interleaved" in styles:
            # Redshift alters compound sort keys only: an interleaved one means a rebuild
            changes.append(Change("physical", str(tdef.ref), detail, rebuild=True))
            continue
        if rule is None or not rule.in_place:
            changes.append(Change("physical", str(tdef.ref), detail, rebuild=True))
            continue
        nodes = _alter_physical(tdef, option, before, dialect)
        changes.append(
            Change("physical", str(tdef.ref), detail, [render(n, dialect) for n in nodes])
        )
    return changes


def _show(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value)


def _alter_physical(
    tdef: TableDef, option: str, before: dict[str, Any], dialect: WarehouseDialect
) -> list[exp.Expr]:
    """The in-place statements for one changed option (options are engine-specific names)."""
    opts = tdef.physical
    if option == "cluster_by":
        names = [c.name for c in tdef.columns]
        cols = dialects.cluster_terms(opts.get("cluster_by", []), dialect.name, names)
        if not cols:  # Snowflake: "CLUSTER BY ()" is no statement
            return [_alter(tdef.ref, exp.Command(this="DROP", expression="CLUSTERING KEY"))]
        return [_alter(tdef.ref, exp.ClusterProperty(expressions=cols))]
    if option in ("diststyle", "distkey"):
        style = str(opts.get("diststyle", "key" if "distkey" in opts else "auto")).upper()
        key = ident(opts["distkey"]) if "distkey" in opts else None
        return [_alter(tdef.ref, exp.AlterDistStyle(this=exp.var(style), expression=key))]
    if option == "sortkey":
        keys = [ident(c) for c in opts.get("sortkey", [])]
        if not keys:  # Redshift: a bare "ALTER COMPOUND SORTKEY" is no statement
            return [_alter(tdef.ref, exp.AlterSortKey(this=exp.var("NONE")))]
        return [_alter(tdef.ref, exp.AlterSortKey(expressions=keys, compound=True))]
    if option == "partitions":
        return list(partitions(tdef, dialect))  # IF NOT EXISTS: only new ranges are made
    return _index_changes(tdef, before, dialect)


def _index_changes(
    tdef: TableDef, before: dict[str, Any], dialect: WarehouseDialect
) -> list[exp.Expr]:
    old = index_columns(tdef, before, dialect)
    new = index_columns(tdef, tdef.physical, dialect)
    nodes: list[exp.Expr] = []
    for cols in old:
        if cols not in new:
            name = index_name(tdef.ref.name, list(cols), dialect.max_identifier)
            ref = table(type(tdef.ref)(name, tdef.ref.schema))
            nodes.append(exp.Drop(tables=[ref], kind="INDEX", exists=True))
    nodes += [create_index(tdef.ref, list(c), dialect) for c in new if c not in old]
    return nodes


def _views(model: Model, dialect: WarehouseDialect) -> list[tuple[str, exp.Expr]]:
    return [(st.name, st.node) for st in role_views(model, dialect)] + list(sample_views(model))


def _views_and_helpers(
    result: Plan,
    views: list[tuple[str, exp.Expr]],
    con: Connector,
    dialect: WarehouseDialect,
    live: Catalog,
) -> None:
    if table_key(con, model_state(result.state_schema)) not in live:
        statements = [st.sql for st in helper_statements(dialect, result.state_schema)]
        detail = (
            f"crane helper tables ({result.state_schema}: runs, watermarks, quality metrics,"
            " model tables)"
        )
        result.changes.append(Change("helpers", result.state_schema, detail, statements))
    # a view over a table left for a rebuild keeps its old definition until then
    waiting = {c.table for c in result.changes if c.rebuild}
    views = [(n, node) for n, node in views if not _reads(node, waiting)]
    missing = [name for name, _ in views if table_key(con, _view_ref(name)) not in live]
    # a fill rewrites values, not a table's shape: its views stay as they are
    shaped = [c for c in result.changes if c.action not in ("helpers", "fill")]
    tables_change = any(not c.rebuild for c in shaped)
    if not views or not (missing or tables_change):
        return
    drops = [
        render(exp.Drop(tables=[table(_view_ref(name))], kind="VIEW", exists=True), dialect)
        for name, _ in views
    ]
    creates = [render(node, dialect) for _, node in views]
    detail = f"{len(views)} view(s) (re)created" + (f", {len(missing)} new" if missing else "")
    result.changes.append(Change("views", "", detail, creates, first=drops))


def _reads(view: exp.Expr, tables: set[str]) -> bool:
    return any(".".join(p for p in (t.db, t.name) if p) in tables for t in view.find_all(exp.Table))


def _view_ref(name: str) -> TableRef:
    from crane.connectors.base import TableRef

    return TableRef.parse(name)


# -- applying ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ApplyResult:
    applied: int  # changes applied
    statements: int  # statements run
    skipped: list[str]  # rebuild-only changes left for a person


def apply(
    result: Plan,
    con: Connector,
    *,
    allow_destructive: bool = False,
    console: Console | None = None,
) -> ApplyResult:
    """Run the plan in one transaction; destructive changes need ``allow_destructive``."""
    risky = [c for c in result.changes if c.destructive]
    if risky and not allow_destructive:
        raise DestructiveChangeError(
            f"{len(risky)} destructive change(s) refused: " + "; ".join(c.detail for c in risky),
            hint="review `crane model plan`, then rerun with --allow-destructive",
        )
    todo = [c for c in result.changes if not c.rebuild]
    count = 0
    with con.transaction():
        for statement in (s for change in todo for s in change.first):
            con.execute(statement)
            count += 1
        for change in todo:
            if console is not None:
                console.info(change.detail)
            for statement in change.statements:
                con.execute(statement)
                count += 1
        _record(con, result)
    skipped = [c.detail for c in result.changes if c.rebuild]
    return ApplyResult(len(todo), count, skipped)


def _record(con: Connector, result: Plan) -> None:
    """Remember each table's physical options (the catalog of most engines cannot tell)."""
    rebuild = {c.table for c in result.changes if c.rebuild}
    dialect = dialects.get(con.dialect)
    state = model_state(result.state_schema)
    for statement in helper_statements(dialect, result.state_schema)[-1:]:  # model_tables
        con.execute(statement.sql)
    now = datetime.now(UTC).replace(tzinfo=None)
    for tdef in result.records:
        name = str(tdef.ref)
        if name in rebuild:
            continue  # still built the old way
        where = exp.column("table_name").eq(exp.Literal.string(name))
        delete = exp.Delete(this=table(state), where=exp.Where(this=where))
        con.execute(render(delete, dialect))
        values = [name, tdef.owner, dialect.name, json.dumps(tdef.physical, sort_keys=True)]
        stamp = exp.cast(
            exp.Literal.string(now.isoformat(sep=" ")), exp.DataType.build("TIMESTAMP")
        )
        row = exp.Tuple(expressions=[*(exp.Literal.string(v) for v in values), stamp])
        insert = exp.Insert(this=table(state), expression=exp.Values(expressions=[row]))
        con.execute(render(insert, dialect))
