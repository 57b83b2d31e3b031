"""What a plan is made of, and how it reads: the changes `crane model plan` lists.

`crane.warehouse.plan` finds the changes and applies them; a `Change` carries its
statements and whether it may lose data, and a `Plan` renders as the readable diff
(or JSON) that a person reviews before `apply`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from crane.warehouse.ddl import TableDef

Action = Literal[
    "create_table",
    "add_column",
    "drop_column",
    "alter_type",
    "drop_not_null",
    "versioning",
    "physical",
    "views",
    "helpers",
    "fill",
]


@dataclass
class Change:
    """One difference between the model and the target, and the SQL that resolves it."""

    action: Action
    table: str
    detail: str
    statements: list[str] = field(default_factory=list)
    destructive: bool = False
    rebuild: bool = False  # only a rebuild can do it: never applied automatically
    # run before every other change's statements (views are dropped before their
    # tables change: PostgreSQL cannot retype a column a view uses)
    first: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "table": self.table,
            "detail": self.detail,
            "destructive": self.destructive,
            "rebuild": self.rebuild,
            "statements": self.first + self.statements,
        }


@dataclass
class Plan:
    """What `apply` would do on one target; `render` is the readable diff."""

    dialect: str
    changes: list[Change]
    unchanged: list[str]
    records: list[TableDef] = field(default_factory=list)
    state_schema: str = "_crane"
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def destructive(self) -> list[Change]:
        return [c for c in self.changes if c.destructive or c.rebuild]

    def render(self, sql: bool = False) -> str:
        """The diff, one line per change; ``sql`` adds each change's statements under it."""
        marks = {"create_table": "+", "drop_column": "-", "helpers": "+", "views": "~"}
        lines = []
        for change in self.changes:
            mark = marks.get(change.action, "~" if change.action != "add_column" else "+")
            flag = " [destructive]" if change.destructive else ""
            flag += " [needs a rebuild; not applied]" if change.rebuild else ""
            columns = ("add_column", "drop_column", "alter_type", "drop_not_null", "fill")
            indent = "    " if change.action in columns else ""
            lines.append(f"{indent}{mark} {change.detail}{flag}")
            if sql:
                lines += [f"{indent}      {s};" for s in change.first + change.statements]
        if self.unchanged:
            lines.append(f"= {len(self.unchanged)} table(s) unchanged")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines) if lines else "no changes"

    def as_dict(self) -> dict[str, Any]:
        return {
            "dialect": self.dialect,
            "changes": [c.as_dict() for c in self.changes],
            "unchanged": self.unchanged,
            "notes": self.notes,
        }
