"""What the live target holds: its tables' columns as the catalog shows them, and what
the last apply recorded of their physical options.

A plan compares the model with this. The catalog's spellings of a type differ by engine
(``CHARACTER VARYING(100)``, ``VARCHAR(100)``, ``INT4``): `same_type` judges two
spellings by family, so an unchanged column never shows up as changed.

>>> same_type("VARCHAR(100)", "CHARACTER VARYING(100)"), same_type("INT", "BIGINT")
(True, False)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crane.sql.build import table

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef

# type families: a change inside one family of spellings is no change
_FAMILIES = {
    "TEXT": "TEXT",
    "VARCHAR": "TEXT",
    "CHAR": "TEXT",
    "NCHAR": "TEXT",
    "NVARCHAR": "TEXT",
    "BPCHAR": "TEXT",
    "STRING": "TEXT",
    "INT": "INT",
    "INTEGER": "INT",
    "INT4": "INT",
    "BIGINT": "BIGINT",
    "INT8": "BIGINT",
    "INT64": "BIGINT",
    "INT128": "HUGEINT",
    "DECIMAL": "DECIMAL",
    "NUMERIC": "DECIMAL",
    "DOUBLE": "DOUBLE",
    "FLOAT8": "DOUBLE",
    "DOUBLE PRECISION": "DOUBLE",
    "BOOLEAN": "BOOLEAN",
    "BOOL": "BOOLEAN",
    "REAL": "FLOAT",
    "FLOAT4": "FLOAT",
    "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
    "TIMESTAMP_S": "TIMESTAMP",  # DuckDB's TIMESTAMP(0), (3) and (9)
    "TIMESTAMP_MS": "TIMESTAMP",
    "TIMESTAMP_NS": "TIMESTAMP",
    "TIME WITHOUT TIME ZONE": "TIME",
    "TIME WITH TIME ZONE": "TIMETZ",
    "CHARACTER VARYING": "TEXT",
    "CHARACTER": "TEXT",
}


@dataclass(frozen=True)
class LiveColumn:
    name: str
    type: str  # normalized: VARCHAR(100), DECIMAL(10,2), INT, …
    nullable: bool


Catalog = dict[tuple[str, str], list[LiveColumn]]
_CATALOG_COLUMNS = [
    "table_schema",
    "table_name",
    "column_name",
    "data_type",
    "is_nullable",
    "character_maximum_length",
    "numeric_precision",
    "numeric_scale",
]


def catalog(con: Connector, schemas: set[str]) -> Catalog:
    """Columns of every table and view in ``schemas``, read in one query (DuckDB answers
    ``information_schema`` in ~50 ms per query, so one per table would dominate a plan)."""
    where = exp.and_(
        exp.column("table_schema").isin(*(exp.Literal.string(s) for s in sorted(schemas))),
        exp.column("table_catalog").eq(exp.func("current_database")),
    )
    query = (
        exp.select(*_CATALOG_COLUMNS)
        .from_(exp.table_("columns", db="information_schema"))
        .where(where)
        .order_by("table_schema", "table_name", "ordinal_position")
    )
    found: Catalog = {}
    for r in con.fetch(query):
        column = LiveColumn(r[2], _live_type(r[3], r[5], r[6], r[7]), r[4] == "YES")
        found.setdefault((r[0], r[1]), []).append(column)
    return found


def table_key(con: Connector, ref: TableRef) -> tuple[str, str]:
    """``ref`` as the catalog names it: a table without a schema is in the default one."""
    return (ref.schema or con.default_schema or "", ref.name)


def _live_type(data_type: str, length: Any, precision: Any, scale: Any) -> str:
    base = str(data_type).upper().split("(")[0].strip()
    if "(" in str(data_type):
        return str(data_type).upper().replace(" ", "")
    if _family(base) == "TEXT" and length:
        return f"{base}({length})"
    if _family(base) == "DECIMAL" and precision is not None:
        return f"{base}({precision},{scale or 0})"
    return base


def recorded_physical(
    con: Connector, state: TableRef, live: Catalog | None = None
) -> dict[str, dict[str, Any]]:
    """Physical options per table as the last apply built them (empty before the first)."""
    live = live if live is not None else catalog(con, {table_key(con, state)[0]})
    if table_key(con, state) not in live:
        return {}
    query = exp.select("table_name", "physical").from_(table(state))
    return {str(name): json.loads(physical or "{}") for name, physical in con.fetch(query)}


def _family(base: str) -> str:
    return _FAMILIES.get(base, base)


def same_type(declared: str, live: str) -> bool:
    """Same family, and same length/precision when both sides state one."""
    (left, left_params), (right, right_params) = _split(declared), _split(live)
    family = _family(left)
    if family != _family(right):
        return False
    if family in ("TEXT", "DECIMAL") and left_params and right_params:
        return left_params == right_params
    return True


def unbounded(declared: str, live: str) -> bool:
    """Text the model declares without a length, stored with one (VARCHAR(20) made TEXT:
    `same_type` calls them alike, for DuckDB, which keeps no length)."""
    (left, left_params), (right, right_params) = _split(declared), _split(live)
    return _family(left) == _family(right) == "TEXT" and not left_params and bool(right_params)


def _split(type_text: str) -> tuple[str, str]:
    """``decimal(10, 2)`` → (``DECIMAL``, ``10,2``)."""
    base, _, params = type_text.upper().partition("(")
    return base.strip(), params.replace(" ", "").rstrip(")")
