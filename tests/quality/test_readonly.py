"""Read-only by construction: writes fail with a clear error and the data is unchanged.

Twice per engine: through a custom check (the checker's guard refuses the statement
before it is sent), and with the guard switched off (the DATABASE refuses it,
because the session is read-only at the database level).
"""

from __future__ import annotations

import pytest

from crane.quality.executor import run_suite
from crane.quality.loader import build_suite
from crane.quality.readonly import QueryError, ReadOnlySession, ReadOnlyViolation

ENGINES = [
    "duck_db",
    "sqlite_db",
    pytest.param("pg_db", marks=pytest.mark.integration),
    pytest.param("my_url", marks=pytest.mark.integration),
]

WRITES = [
    "INSERT INTO orders (id) VALUES (1000)",
    "UPDATE orders SET amount = 0",
    "DELETE FROM orders",
    "DROP TABLE customers",
    "CREATE TABLE sneaky (a INTEGER)",
]
# what each engine says when a read-only session is asked to write
REFUSALS = ("read-only", "read only", "readonly", "read_only")


def _state(url: str) -> tuple:
    with ReadOnlySession(url) as session:
        _, rows = session.fetch("SELECT COUNT(*), SUM(amount) FROM orders")
        _, customers = session.fetch("SELECT COUNT(*) FROM customers")
    return rows[0] + customers[0]


@pytest.mark.parametrize("engine_url", ENGINES, indirect=True)
def test_custom_checks_cannot_write(engine_url: str) -> None:
    before = _state(engine_url)
    specs = [
        {"type": "custom_sql", "table": "orders", "sql": sql, "name": sql.split()[0]}
        for sql in WRITES
    ]
    specs.append(
        {
            "type": "custom_sql",
            "table": "orders",
            "name": "cte",
            "sql": "WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone",
        }
    )
    outcome = run_suite(build_suite(specs, {"db": engine_url}))
    for result in outcome.results:
        assert result.status == "error", result
        assert "only runs read queries" in result.message
    assert outcome.exit_code() == 1
    assert _state(engine_url) == before


@pytest.mark.parametrize("engine_url", ENGINES, indirect=True)
def test_the_database_itself_refuses_writes(engine_url: str) -> None:
    before = _state(engine_url)
    with ReadOnlySession(engine_url, guard_statements=False) as session:
        for sql in WRITES:
            with pytest.raises(QueryError) as refused:
                session.fetch(sql)
            message = str(refused.value).lower()
            assert any(word in message for word in REFUSALS), message
        # the session still answers read queries after the refusals
        assert session.fetch("SELECT COUNT(*) FROM orders")[1][0][0] == before[0]
    assert _state(engine_url) == before


def test_guard_accepts_reads_and_refuses_tricks() -> None:
    from crane.quality.readonly import guard

    guard("SELECT 1", "duckdb")
    guard("WITH a AS (SELECT 1 AS x) SELECT x FROM a", "postgres")
    for sql in (
        "SELECT * INTO t2 FROM orders",
        "ATTACH 'x.db' AS x",
        "SET x = 1",
        "COPY orders TO 'out.csv'",
        "SELECT 1; DELETE FROM orders",
    ):
        with pytest.raises(ReadOnlyViolation):
            guard(sql, "duckdb")


def test_duckdb_session_settings_from_the_url(duck_db: str) -> None:
    with ReadOnlySession(f"{duck_db}?threads=1&memory_limit=256MB") as session:
        _, rows = session.fetch(
            "SELECT current_setting('threads'), current_setting('memory_limit')"
        )
    assert rows[0][0] == 1 and rows[0][1] == "244.1 MiB"  # 256 MB in MiB
    with ReadOnlySession(duck_db) as session:  # the default cap keeps the checker < 1 GB
        _, rows = session.fetch("SELECT current_setting('memory_limit')")
    assert rows[0][0] == "610.3 MiB"  # 640 MB


def test_a_duckdb_file_named_like_its_schema_is_checked_without_ambiguity(tmp_path) -> None:
    """DuckDB names a file's catalog after its stem: analytics.duckdb with a schema
    analytics made ``analytics.orders`` ambiguous; the checker attaches it by another name."""
    import duckdb

    path = tmp_path / "analytics.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA analytics")
        con.execute("CREATE TABLE analytics.analytics.orders AS SELECT range AS id FROM range(10)")
    session = ReadOnlySession(f"duckdb:///{path}")
    try:
        assert session.fetch("SELECT count(*) FROM analytics.orders")[1] == [(10,)]
        with pytest.raises(Exception, match="(?i)read.only"):  # the file is attached READ_ONLY
            session._con.execute("CREATE TABLE analytics.x (i INT)")
    finally:
        session.close()
