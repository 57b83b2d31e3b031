"""Engines for the facts, date-dimension and vault tests: DuckDB in memory and PostgreSQL.

Each test body runs on both (PostgreSQL marked ``integration``); tables live in
a schema of their own so parallel helpers' tests never collide.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from crane.connectors.base import Connector, TableRef, connect
from crane.sql.build import create_table, drop_table, insert_select

PG_URL = os.environ.get("CRANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
RENDER_ONLY = ["snowflake", "bigquery", "redshift"]


class Engine:
    def __init__(self, con: Connector, schema: str) -> None:
        self.con, self.schema = con, schema

    def ref(self, name: str) -> TableRef:
        return TableRef(name, self.schema)

    def stage(
        self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple]
    ) -> TableRef:
        """(Re)create a staging table holding ``rows`` exactly."""
        ref = self.ref(name)
        self.con.execute(drop_table(ref))
        self.con.execute(create_table(ref, [(c, exp.DataType.build(t)) for c, t in columns]))
        if rows:
            values = exp.values(
                [tuple(_lit(v, t) for v, (_, t) in zip(r, columns, strict=True)) for r in rows]
            )
            query = exp.select("*").from_(values.as_("v"))
            self.con.execute(insert_select(ref, [c for c, _ in columns], query))
        return ref

    def rows(self, sql: str) -> list[tuple]:
        """A test query written in PostgreSQL syntax, ``{s}`` being the schema."""
        text = sql.replace("{s}", f'"{self.schema}"')
        return [
            tuple(r)
            for r in self.con.fetch(
                sqlglot.transpile(text, read="postgres", write=self.con.dialect)[0]
            )
        ]


def _lit(value: Any, kind: str) -> exp.Expr:
    if value is None:
        return exp.cast(exp.Null(), exp.DataType.build(kind))
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.cast(exp.Literal.number(value), exp.DataType.build(kind))
    return exp.cast(exp.Literal.string(str(value)), exp.DataType.build(kind))


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "duckdb":
        con = connect("duckdb:///:memory:")
        con.execute('CREATE SCHEMA "w"')
        schema = "w"
    else:
        schema = request.getfixturevalue("pg_schema")
        con = connect(PG_URL)
    try:
        yield Engine(con, schema)
    finally:
        con.close()


def parses_back(statement: exp.Expr, dialect: str) -> None:
    """Rendered for ``dialect``, the SQL parses again in that dialect (no dropped parts)."""
    text = statement.sql(dialect)
    again = sqlglot.parse_one(text, read=dialect)
    assert again is not None and again.sql(dialect)
