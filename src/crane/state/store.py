"""The state store: runs, watermarks and schema changes, in the target's ``_crane`` schema.

State lives *beside the data it describes* so that a load, its new watermark and
its run record commit in one transaction (DESIGN.md "exactly-once"). Every
statement here is a sqlglot expression rendered by the target connector, so the
same store works on DuckDB and PostgreSQL targets. Values are literals made by
the builder (no driver-specific parameter styles), and a watermark is ONE value
with its kind: state never grows with the data (LESSONS.md, dlt #2580).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crane.connectors.base import TableRef

if TYPE_CHECKING:
    from crane.connectors.base import Connector

STATE_SCHEMA = "_crane"
RUNS = TableRef("runs", STATE_SCHEMA)
WATERMARKS = TableRef("watermarks", STATE_SCHEMA)
SCHEMA_CHANGES = TableRef("schema_changes", STATE_SCHEMA)

# column name -> sqlglot type; one definition, rendered for every target dialect
_COLUMNS: dict[TableRef, list[tuple[str, str]]] = {
    RUNS: [
        ("run_id", "text"),
        ("pipeline", "text"),
        ("status", "text"),
        ("started_at", "timestamptz"),
        ("finished_at", "timestamptz"),
        ("rows_extracted", "bigint"),
        ("rows_loaded", "bigint"),
        ("rows_quarantined", "bigint"),
        ("rows_deduplicated", "bigint"),
        ("rows_in", "bigint"),
        ("bytes", "bigint"),
        ("seconds", "double"),
        ("phases", "text"),  # JSON: phase -> seconds
        ("throughput", "double"),  # rows/s over the whole run
        ("watermark_before", "text"),
        ("watermark_after", "text"),
        ("schema_diff", "text"),  # JSON
        ("attempts", "int"),
        ("source", "text"),  # masked URL
        ("target_table", "text"),
        ("error", "text"),
    ],
    WATERMARKS: [
        ("pipeline", "text"),
        ("cursor_column", "text"),
        ("value", "text"),
        ("kind", "text"),  # int | timestamp | timestamptz | date | decimal | text
        # "ge": the next window starts AT value (half-open bound); "gt": just after it
        ("next_op", "text"),
        ("run_id", "text"),
        ("updated_at", "timestamptz"),
    ],
    SCHEMA_CHANGES: [
        ("run_id", "text"),
        ("pipeline", "text"),
        ("target_table", "text"),
        ("diff", "text"),  # JSON
        ("statements", "text"),  # JSON list of applied DDL
        ("changed_at", "timestamptz"),
    ],
}


def ddl() -> list[exp.Expression]:
    """The statements that create the state schema; idempotent (IF NOT EXISTS)."""
    statements: list[exp.Expression] = [
        exp.Create(
            this=exp.Table(this=exp.to_identifier(STATE_SCHEMA, quoted=True)),
            kind="SCHEMA",
            exists=True,
        )
    ]
    for table, columns in _COLUMNS.items():
        defs = [
            exp.ColumnDef(this=exp.to_identifier(name, quoted=True), kind=exp.DataType.build(kind))
            for name, kind in columns
        ]
        statements.append(
            exp.Create(
                this=exp.Schema(this=table.expression(), expressions=defs),
                kind="TABLE",
                exists=True,
            )
        )
    return statements


def ensure_state(target: Connector) -> None:
    """Create ``_crane`` and its tables if missing, and add columns a newer crane records.

    State written by an older crane stays readable: its tables gain the new columns
    (NULL for old runs) instead of failing the next run's insert.
    """
    schemas = {table: target.table_schema(table) for table in _COLUMNS}
    if any(schema is None for schema in schemas.values()):
        for statement in ddl():
            target.execute(statement)
    for table, schema in schemas.items():
        if schema is None:
            continue
        for name, kind in _COLUMNS[table]:
            if name not in schema.names:
                column = exp.ColumnDef(
                    this=exp.to_identifier(name, quoted=True), kind=exp.DataType.build(kind)
                )
                target.execute(exp.Alter(this=table.expression(), kind="TABLE", actions=[column]))


# -- values -------------------------------------------------------------------


def literal(value: Any, dialect: str | None = None) -> exp.Expr:
    """A sqlglot literal for a Python value (None, bool, numbers, text, dates, times).

    For ``dialect="mysql"`` an aware datetime is written as its UTC wall time: MySQL and
    MariaDB take no offset in a datetime literal (strict mode refuses it), and crane's
    sessions there run in UTC (`crane.connectors.mysql`)."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo and dialect == "mysql":
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        # microsecond precision spelled out: MySQL's bare DATETIME cast drops the fraction,
        # which would turn a window bound of 12:00:00.7 into 12:00:00 and skip rows
        kind = "timestamptz(6)" if value.tzinfo else "timestamp(6)"
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.build(kind))
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "date")
    return exp.Literal.string(str(value))


def value_kind(value: Any) -> str:
    """The kind a watermark value is stored as, so it reads back as the same type."""
    if isinstance(value, bool):
        return "text"
    if isinstance(value, int):
        return "int"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, dt.datetime):
        return "timestamptz" if value.tzinfo else "timestamp"
    if isinstance(value, dt.date):
        return "date"
    return "text"


def encode(value: Any) -> str | None:
    """Text form of a watermark value (ISO for dates and times, exact for numbers)."""
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def decode(text: str | None, kind: str) -> Any:
    """Inverse of `encode`: ``decode(encode(v), value_kind(v)) == v``."""
    if text is None:
        return None
    if kind == "int":
        return int(text)
    if kind == "decimal":
        return Decimal(text)
    if kind in ("timestamp", "timestamptz"):
        return dt.datetime.fromisoformat(text)
    if kind == "date":
        return dt.date.fromisoformat(text)
    return text


# -- watermarks -----------------------------------------------------------------


@dataclass(frozen=True)
class Watermark:
    """A pipeline's saved position: one value, and whether the next window includes it."""

    value: Any
    cursor_column: str | None = None
    next_op: str = "ge"  # "ge": next window is value <= c; "gt": value < c


def _where_pipeline(pipeline: str) -> exp.Expr:
    return exp.column("pipeline", quoted=True).eq(exp.Literal.string(pipeline))


def read_watermark(target: Connector, pipeline: str) -> Watermark | None:
    """The watermark saved by the last successful run of ``pipeline``, or None."""
    query = (
        exp.select(
            *(exp.column(c, quoted=True) for c in ("value", "kind", "cursor_column", "next_op"))
        )
        .from_(WATERMARKS.expression())
        .where(_where_pipeline(pipeline))
    )
    rows = target.fetch(query)
    if not rows:
        return None
    value, kind, cursor_column, next_op = rows[0]
    return Watermark(decode(value, kind), cursor_column, next_op or "ge")


def write_watermark(target: Connector, pipeline: str, mark: Watermark, run_id: str) -> None:
    """Replace the pipeline's watermark; call inside the run's transaction."""
    target.execute(exp.delete(WATERMARKS.expression(), where=_where_pipeline(pipeline)))
    values = [
        pipeline,
        mark.cursor_column,
        encode(mark.value),
        value_kind(mark.value),
        mark.next_op,
        run_id,
        dt.datetime.now(dt.UTC),
    ]
    _insert(target, WATERMARKS, values)


def clear_watermark(target: Connector, pipeline: str) -> None:
    """Forget a pipeline's position (a full refresh starts from the beginning)."""
    target.execute(exp.delete(WATERMARKS.expression(), where=_where_pipeline(pipeline)))


def _insert(target: Connector, table: TableRef, values: list[Any]) -> None:
    names = [name for name, _ in _COLUMNS[table]]
    assert len(names) == len(values), (table, names, values)
    statement = exp.insert(
        exp.values([exp.tuple_(*(literal(v, target.dialect) for v in values))]),
        table.expression(),
        columns=[exp.to_identifier(n, quoted=True) for n in names],
    )
    target.execute(statement)


# -- runs and schema changes ----------------------------------------------------


def record_run(target: Connector, record: dict[str, Any]) -> None:
    """Insert one run record; keys are the ``runs`` columns (JSON fields given as objects)."""
    row = dict(record)
    for key in ("phases", "schema_diff"):
        if row.get(key) is not None and not isinstance(row[key], str):
            row[key] = json.dumps(row[key], default=str, sort_keys=True)
    _insert(target, RUNS, [row.get(name) for name, _ in _COLUMNS[RUNS]])


def record_schema_change(
    target: Connector,
    *,
    run_id: str,
    pipeline: str,
    table: str,
    diff: dict[str, Any],
    statements: list[str],
) -> None:
    """Remember what changed in the target's shape and the DDL that did it."""
    values = [
        run_id,
        pipeline,
        table,
        json.dumps(diff, default=str, sort_keys=True),
        json.dumps(statements),
        dt.datetime.now(dt.UTC),
    ]
    _insert(target, SCHEMA_CHANGES, values)


def read_runs(
    target: Connector, *, pipeline: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """The most recent runs, newest first, as dicts (JSON fields decoded)."""
    if target.table_schema(RUNS) is None:
        return []
    names = [name for name, _ in _COLUMNS[RUNS]]
    query = (
        exp.select(*(exp.column(n, quoted=True) for n in names))
        .from_(RUNS.expression())
        .order_by(exp.Ordered(this=exp.column("started_at", quoted=True), desc=True))
        .limit(limit)
    )
    if pipeline:
        query = query.where(_where_pipeline(pipeline))
    runs = []
    for row in target.fetch(query):
        run = dict(zip(names, row, strict=True))
        for key in ("phases", "schema_diff"):
            if isinstance(run[key], str):
                run[key] = json.loads(run[key])
        runs.append(run)
    return runs


def list_runs(
    target_url: str, limit: int = 20, *, pipeline: str | None = None
) -> list[dict[str, Any]]:
    """The most recent runs recorded in the target's ``_crane.runs``, newest first (what
    ``crane runs`` shows: it needs no pipeline machinery)."""
    from crane.connectors.base import ConnectionURL, connect

    url = ConnectionURL.parse(target_url)
    is_file = url.scheme in ("duckdb", "sqlite") and url.database != ":memory:"
    if is_file and not (url.database and os.path.exists(url.database)):
        return []
    with connect(target_url, read_only=url.scheme == "duckdb") as target:
        runs = read_runs(target, limit=limit, pipeline=pipeline)
    for record in runs:
        record["duration"] = record.get("seconds")
    return runs
