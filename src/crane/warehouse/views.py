"""The views a model script ends with: role-playing dimension views and sample analytics.

A role-playing reference (``order_date`` → ``date``) gets a view with the columns
renamed by role; versioned dimensions get a ``_current`` view, and each fact a summary
by its date and by its first other dimension, as starting points for analysts. Kept
apart from the tables because a plan recreates views whenever the tables under them change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crane.connectors.base import TableRef
from crane.sql.build import col, ident, table
from crane.warehouse.statements import Statement, statement

if TYPE_CHECKING:
    from crane.warehouse.dialects import WarehouseDialect
    from crane.warehouse.spec import DimensionSpec, FactSpec, Model


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
            out.append(
                statement(dialect, "view", str(view), _role_view(dim, ref.role, view, model))
            )
    return out


def _role_view(dim: DimensionSpec, role: str, view: TableRef, model: Model) -> exp.Create:
    items = []
    for c in dim.columns(model):
        alias = f"{role}_key" if c.name == dim.key_column else f"{role}_{c.name}"
        items.append(exp.alias_(col(c.name), ident(alias)))
    query = exp.select(*items).from_(table(dim.ref(model.schema_)))
    return exp.Create(this=table(view), kind="VIEW", expression=query, replace=True)


def sample_views(model: Model) -> list[tuple[str, exp.Create]]:
    """Starting points for analysts: current rows of versioned dimensions, and each fact
    summed by its date (additive + semi-additive measures) and by its first other
    dimension (additive measures only: a semi-additive balance must not be summed over
    time)."""
    schema = model.schema_
    out = []
    for dim in model.dimensions:
        if dim.scd_columns().has_history:
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
