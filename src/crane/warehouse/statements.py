"""A rendered DDL statement, and the one strict way the warehouse modules render SQL.

`crane.warehouse.ddl`, its views and helper tables, and `crane.warehouse.plan` all
render through `render`: a construct sqlglot cannot express for a dialect, or a name
the engine would cut, fails here instead of being dropped or shortened silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.errors import ErrorLevel

from crane.errors import ConfigError

if TYPE_CHECKING:
    from crane.warehouse.dialects import WarehouseDialect


class DdlError(ConfigError):
    """The model cannot be rendered for an engine (names the object and option at fault)."""


@dataclass(frozen=True)
class Statement:
    """One DDL statement: what it makes, its tree, and its text in the target dialect."""

    kind: str  # schema | sequence | table | comment | index | partition | view | helper
    name: str  # the object it creates or changes
    node: exp.Expr
    sql: str


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


def statement(dialect: WarehouseDialect, kind: str, name: str, node: exp.Expr) -> Statement:
    return Statement(kind, name, node, render(node, dialect))
