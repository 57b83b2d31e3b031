"""``sql``: statements on a named connection (default: the project's warehouse).

Template values become SQL literals of the connection's dialect (``| ident`` for
identifiers), so a parameter can never inject SQL. All statements run in one
transaction. The return value is the last statement's rows (if any, at most
``max_rows``) as lists — small values for downstream tasks.
A DuckDB connection not marked ``read_only`` takes the file's writer lock.
"""

from __future__ import annotations

from typing import Any

from crane.errors import ConfigError
from crane.orchestrate.tasks import Options, TaskContext, TaskType, task_types
from crane.orchestrate.template import render, sql_quote


class SqlOptions(Options):
    sql: str | list[str]
    connection: str = "warehouse"
    read_only: bool = False
    max_rows: int = 100


class SqlTask(TaskType):
    name = "sql"
    Options = SqlOptions

    def run(self, options: SqlOptions, ctx: TaskContext) -> Any:
        url = connection_url(options.connection, ctx.project)
        statements = [options.sql] if isinstance(options.sql, str) else list(options.sql)
        con = _connect_waiting(url, options.read_only, ctx)
        driver = getattr(con, "con", None)
        for how in ("interrupt", "cancel"):  # DuckDB interrupt(), psycopg cancel() the query
            stop = getattr(driver, how, None)
            if callable(stop):
                ctx.on_cancel(stop)
                break
        try:
            quote = sql_quote(con.dialect)
            values = ctx.template_values()
            rows: list[tuple[Any, ...]] = []
            with con.transaction():
                for statement in statements:
                    rows = con.execute(render(statement, values, quote)) or []
        finally:
            con.close()
        return [list(r) for r in rows[: options.max_rows]] or None

    def locks(self, options: SqlOptions, project: Any) -> list[str]:
        if options.read_only:
            return []
        return writer_locks(connection_url(options.connection, project))

    def describe(self, options: SqlOptions) -> str:
        return f"sql on {options.connection}"


def _connect_waiting(url: str, read_only: bool, ctx: TaskContext) -> Any:
    """Open ``url``; a DuckDB file another *process* is writing is waited for (one writer
    process per file), until it is free or the task is cancelled by its timeout."""
    import time

    from crane.connectors.base import connect
    from crane.errors import ConnectorError

    waits = bool(writer_locks(url))
    delay = 0.05
    while True:
        try:
            return connect(url, read_only=read_only)
        except ConnectorError as error:
            if not (waits and error.transient) or ctx.cancelled:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def connection_url(name: str, project: Any) -> str:
    """A URL as given, ``warehouse``, or a connection of the project."""
    if "://" in name:
        return project.resolve_url(name) if project is not None else name
    if project is None:
        raise ConfigError(f"connection {name!r} needs a project (crane.yml), or give a URL")
    return str(project.warehouse_url if name == "warehouse" else project.connection_url(name))


def writer_locks(url: str) -> list[str]:
    """DuckDB allows one writer per file: a lock name for the file, else none."""
    from pathlib import Path

    from crane.connectors.base import ConnectionURL

    parsed = ConnectionURL.parse(url)
    if parsed.scheme == "duckdb" and parsed.database and parsed.database != ":memory:":
        return [f"duckdb:{Path(parsed.database).resolve()}"]
    return []


task_types.register("sql")(SqlTask())
