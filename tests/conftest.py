"""Shared fixtures: real DuckDB files, and the real PostgreSQL and MariaDB servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_URL = os.environ.get("CRANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MY_URL = os.environ.get("CRANE_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")


@pytest.fixture
def duck_url(tmp_path) -> str:
    """A fresh DuckDB warehouse file."""
    return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


@pytest.fixture
def pg_database() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, dropped afterwards: for tests whose target
    keeps state (``_crane``) or tables in ``public`` that must not meet another test's."""
    import psycopg

    name = f"t_db_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as con:
        con.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped afterwards, so tests never collide."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{name}"')
    yield name
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as con:
        con.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def my_db() -> Iterator[str]:
    """A fresh MariaDB database (MySQL has no schemas inside a database), dropped afterwards."""
    import pymysql

    name = f"t_{uuid.uuid4().hex[:10]}"
    con = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    yield name
    with con.cursor() as cur:
        cur.execute(f"DROP DATABASE `{name}`")
    con.close()
