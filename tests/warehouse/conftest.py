"""Warehouse tests keep crane's SQL cache (crane.warehouse.scd.sql_cache) in a temporary
directory of their own, never in the user's ~/.cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def sql_cache_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    folder = tmp_path_factory.getbasetemp() / "sql_cache"
    monkeypatch.setenv("CRANE_SQL_CACHE", str(folder))
    return folder
