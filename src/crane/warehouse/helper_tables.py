"""crane's own tables in the warehouse: run history, watermarks, quality metrics, applied models.

`crane model ddl` and `apply` create them beside the model's tables, so state and data
commit together; the run-history tables come from the state store's definitions (one
source of truth), moved to another schema when asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from crane.connectors.base import TableRef
from crane.sql.build import ident, table
from crane.warehouse.statements import Statement, statement

if TYPE_CHECKING:
    from crane.warehouse.dialects import WarehouseDialect

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
    return [statement(dialect, "helper", schema, n) for n in nodes]


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
