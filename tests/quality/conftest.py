"""A small orders/customers data set with known defects, on every engine.

Defects (each check below knows its expected figure):
- id 5 appears twice (2 duplicate rows, 1 duplicated value); one whole row is duplicated;
- customer_id NULL in row 3, and 999 (no such customer) in row 4;
- email invalid in row 6; status 'bogus' in row 7; amount -5 in row 8;
- updated_at before created_at in row 9.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

NOW = dt.datetime(2026, 1, 10, 12, 0, 0)
T0 = dt.datetime(2026, 1, 1, 0, 0, 0)


def orders_rows() -> list[tuple]:
    rows = []
    for i in range(1, 21):
        created = T0 + dt.timedelta(hours=i)
        rows.append(
            [
                i,
                (i % 5) + 1,
                f"user{i}@example.com",
                "paid" if i % 2 else "new",
                float(10 * i),
                created,
                created + dt.timedelta(minutes=30),
                f"+4420700{i:05d}",
            ]
        )
    rows[2][1] = None
    rows[3][1] = 999
    rows[5][2] = "not-an-email"
    rows[6][3] = "bogus"
    rows[7][4] = -5.0
    rows[8][6] = rows[8][5] - dt.timedelta(hours=1)
    rows.append(list(rows[4]))  # id 5 again: a duplicate id AND a whole duplicate row
    return [tuple(r) for r in rows]


ORDER_COLUMNS = (
    "id",
    "customer_id",
    "email",
    "status",
    "amount",
    "created_at",
    "updated_at",
    "phone",
)
CUSTOMERS = [(i, f"c{i}") for i in range(1, 6)]

_TYPES = {
    "duckdb": ("INTEGER", "VARCHAR", "DOUBLE", "TIMESTAMP"),
    "postgres": ("INTEGER", "VARCHAR(100)", "DOUBLE PRECISION", "TIMESTAMP"),
    "mysql": ("INTEGER", "VARCHAR(100)", "DOUBLE", "DATETIME"),
    "sqlite": ("INTEGER", "TEXT", "REAL", "TEXT"),
}


def ddl(dialect: str, quote: str = '"') -> list[str]:
    i, s, f, t = _TYPES[dialect]
    q = quote
    cols = [
        ("id", i),
        ("customer_id", i),
        ("email", s),
        ("status", s),
        ("amount", f),
        ("created_at", t),
        ("updated_at", t),
        ("phone", s),
    ]
    body = ", ".join(f"{q}{n}{q} {ty}" for n, ty in cols)
    return [
        f"CREATE TABLE {q}orders{q} ({body})",
        f"CREATE TABLE {q}customers{q} ({q}id{q} {i}, {q}name{q} {s})",
    ]


def _sqlite_rows(rows: list[tuple]) -> list[tuple]:
    return [
        tuple(v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v for v in r) for r in rows
    ]


@pytest.fixture
def duck_db(tmp_path: Path) -> str:
    import duckdb

    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        for statement in ddl("duckdb"):
            con.execute(statement)
        con.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?)", orders_rows())
        con.executemany("INSERT INTO customers VALUES (?,?)", CUSTOMERS)
    return f"duckdb:///{path}"


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    path = tmp_path / "src.sqlite"
    con = sqlite3.connect(path)
    for statement in ddl("sqlite"):
        con.execute(statement)
    con.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?)", _sqlite_rows(orders_rows()))
    con.executemany("INSERT INTO customers VALUES (?,?)", CUSTOMERS)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


@pytest.fixture
def pg_db(pg_schema: str) -> Iterator[str]:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as con:
        con.execute(f'SET search_path TO "{pg_schema}"')
        for statement in ddl("postgres"):
            con.execute(statement)
        with con.cursor() as cur:
            cur.executemany("INSERT INTO orders VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", orders_rows())
            cur.executemany("INSERT INTO customers VALUES (%s,%s)", CUSTOMERS)
    yield f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{pg_schema}"


@pytest.fixture
def my_url(my_db: str) -> str:
    import pymysql

    con = pymysql.connect(host="127.0.0.1", user="root", database=my_db, autocommit=True)
    with con.cursor() as cur:
        for statement in ddl("mysql", "`"):
            cur.execute(statement)
        cur.executemany("INSERT INTO orders VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", orders_rows())
        cur.executemany("INSERT INTO customers VALUES (%s,%s)", CUSTOMERS)
    con.close()
    return f"mysql://root@127.0.0.1:3306/{my_db}"


@pytest.fixture
def engine_url(request: pytest.FixtureRequest) -> str:
    """Parametrize with indirect=True over duck_db / sqlite_db / pg_db / my_url."""
    return str(request.getfixturevalue(request.param))


def unique_name() -> str:
    return f"q_{uuid.uuid4().hex[:8]}"


Factory = Callable[..., str]
