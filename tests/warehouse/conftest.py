"""Warehouse tests keep crane's SQL cache (crane.warehouse.scd.sql_cache) in a temporary
directory of their own, never in the user's ~/.cache; ``scd_engine`` runs a test on a DuckDB
file and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crane.connectors.base import connect

PG = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.integration)])
def scd_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, str | None]]:
    """(connection, schema): a DuckDB file (no schema) or PostgreSQL in a fresh schema."""
    if request.param == "duckdb":
        with connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as con:
            yield con, None
        return
    schema = request.getfixturevalue("pg_schema")
    with connect(PG) as con:
        yield con, schema


@pytest.fixture(autouse=True)
def sql_cache_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    folder = tmp_path_factory.getbasetemp() / "sql_cache"
    monkeypatch.setenv("CRANE_SQL_CACHE", str(folder))
    return folder
