"""Shared helpers for the runner tests: real sources, and "target equals source" checks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import duckdb
import psycopg

from crane.config.spec import PipelineSpec

PG_DSN = "host=127.0.0.1 user=postgres dbname=test"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
COLUMNS = "id, updated_at, amount, name"


def pg() -> psycopg.Connection:
    return psycopg.connect(PG_DSN, autocommit=True)


def make_pg_orders(schema: str, rows: int = 3000, table: str = "orders") -> None:
    """An ``orders`` table with a timestamptz cursor stamped by ``now()`` like an app would."""
    with pg() as con:
        con.execute(
            f'CREATE TABLE "{schema}"."{table}" (id bigint PRIMARY KEY, '
            "updated_at timestamptz NOT NULL DEFAULT now(), amount numeric(10,2), name text)"
        )
        con.execute(
            f'INSERT INTO "{schema}"."{table}" SELECT g, now() - interval \'1 day\' + g * '
            "interval '1 second', g * 1.25, 'name ' || g FROM generate_series(1, %s::int) g",
            [rows],
        )


def pg_change(schema: str, start: int, count: int, table: str = "orders") -> None:
    """New rows and updated rows, both stamped ``now()`` (one transaction)."""
    with pg() as con, con.transaction():
        con.execute(
            f'INSERT INTO "{schema}"."{table}" (id, amount, name) '
            "SELECT g, g * 1.25, 'new ' || g FROM generate_series(%s::int, %s::int) g",
            [start, start + count - 1],
        )
        con.execute(
            f'UPDATE "{schema}"."{table}" SET updated_at = now(), name = name || \'+\' '
            "WHERE id %% 97 = %s",
            [start % 97],
        )


def pg_rows(schema: str, table: str = "orders") -> list[tuple[Any, ...]]:
    with pg() as con:
        return con.execute(f'SELECT {COLUMNS} FROM "{schema}"."{table}" ORDER BY id').fetchall()


def duck_rows(path: str, table: str = "orders", schema: str = "main") -> list[tuple[Any, ...]]:
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(f'SELECT {COLUMNS} FROM "{schema}"."{table}" ORDER BY id').fetchall()
    finally:
        con.close()


def normalize(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Compare instants as instants and numbers as exact decimals."""
    out = []
    for row in rows:
        values = []
        for v in row:
            if isinstance(v, dt.datetime) and v.tzinfo is not None:
                v = v.astimezone(dt.UTC)
            elif isinstance(v, float):
                v = Decimal(str(v))
            values.append(v)
        out.append(tuple(values))
    return out


def make_duck_orders(path: str, rows: int = 2000) -> None:
    con = duckdb.connect(path)
    con.execute(
        "CREATE TABLE orders AS SELECT i::BIGINT AS id, TIMESTAMP '2024-01-01' + i * INTERVAL 1 "
        "MINUTE AS updated_at, (i * 1.25)::DECIMAL(10,2) AS amount, 'name ' || i AS name "
        f"FROM range(1, {rows + 1}) t(i)"
    )
    con.close()


def duck_change(path: str, start: int, count: int) -> None:
    con = duckdb.connect(path)
    con.execute(
        "INSERT INTO orders SELECT i, TIMESTAMP '2025-01-01' + i * INTERVAL 1 MINUTE, i * 1.25, "
        f"'new ' || i FROM range({start}, {start + count}) t(i)"
    )
    con.execute(
        "UPDATE orders SET updated_at = TIMESTAMP '2025-01-01' + ? * INTERVAL 1 MINUTE, "
        "name = name || '+' WHERE id % 97 = ?",
        [start + count, start % 97],
    )
    con.close()


def spec(name: str, **overrides: Any) -> PipelineSpec:
    data: dict[str, Any] = {
        "name": name,
        "source": {"table": "orders"},
        "target": {"table": name},
        "extract": {"strategy": "incremental", "cursor": "updated_at"},
        "load": {"strategy": "merge", "primary_key": ["id"]},
        "batch_size": 500,
        "max_retries": 0,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return PipelineSpec.model_validate(data)
