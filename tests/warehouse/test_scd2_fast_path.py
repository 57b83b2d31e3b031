"""The Type 2 on-time path (crane.warehouse.scd.type2_fast) writes the same history as the
general loader, surrogate keys and load results included, and steps aside for every batch
it cannot take. Each scenario runs twice on real DuckDB files and on PostgreSQL: as
shipped, and with the fast path switched off (no engine declared for it), and the two
tables must be equal; which loads the fast path took is asserted, not assumed.
Its statements come from the SQL cache (crane.warehouse.scd.sql_cache), tested here too."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from scd_reference import fresh_name, stage
from sqlglot import exp

from crane.connectors.base import TableRef, connect
from crane.connectors.postgres import PostgresConnector
from crane.warehouse.scd import (
    ScdConflictError,
    ScdResult,
    ScdTable,
    load_dimension,
    sql_cache,
    type2_fast,
)

PG = os.environ.get("CRANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

COLS = [
    ("id", "INT"),
    ("name", "TEXT"),
    ("city", "TEXT"),
    ("updated_at", "TIMESTAMP"),
    ("seq", "INT"),
    ("_del", "BOOLEAN"),
]


def r(id_: int | None, name: Any, city: Any, day: int, seq: int = 0, gone: bool = False) -> tuple:
    return (id_, name, city, datetime(2024, 1, day), seq, gone)


INITIAL = [
    r(1, "ann", "oslo", 1),
    r(2, "bob", None, 1),
    r(3, "cy", "rome", 1),
    r(4, "di", "nice", 1),
    r(None, "nul", "bern", 1),  # a NULL business key is a key like any other
    r(6, None, None, 1),
]
ON_TIME = [
    [  # changes, NULL -> value, value -> NULL, no change at a later time, new keys
        r(1, "ann", "bergen", 2),
        r(2, "bob", "lima", 3),
        r(3, "cy", None, 2),
        r(4, "di", "nice", 5),
        r(None, "nul", "basel", 2),
        r(7, "eve", "kyiv", 2),
        r(8, None, None, 4),
    ],
    [r(1, "ann", "oslo", 4), r(7, "eve", "lviv", 3), r(9, "flo", "riga", 3)],
]

VARIANTS = {
    "sequence": {},
    "hash": {"surrogate_strategy": "hash"},
    "tie_break": {"tie_break": "seq"},
    "deleted_flag": {"hard_delete": "close_and_flag", "deleted_column": "is_deleted"},
    "row_hash": {"row_hash": "row_hash"},
    "row_hash_deleted_flag": {
        "row_hash": "row_hash",
        "hard_delete": "close_and_flag",
        "deleted_column": "is_deleted",
    },
}


def make_dim(**kw: Any) -> ScdTable:
    spec: dict[str, Any] = dict(
        business_key=("id",), type2=("name", "city"), delete_marker="_del", hard_delete="close"
    )
    spec.update(kw)
    return ScdTable(TableRef("dim_customer"), **spec)


class Target:
    """Where a scenario's dimensions live: a DuckDB file per run, or a PostgreSQL schema
    (one per test) holding each run's dimension under its own name."""

    def __init__(self, engine: str, tmp_path: Path, schema: str | None) -> None:
        self.engine, self.tmp_path, self.schema = engine, tmp_path, schema

    def url(self, run_name: str) -> str:
        return PG if self.engine == "postgres" else f"duckdb:///{self.tmp_path / run_name}.duckdb"

    def dim(self, dim: ScdTable, run_name: str) -> ScdTable:
        name = f"{dim.table.name}_{run_name}" if self.schema else dim.table.name
        return dim.replace(table=TableRef(name, self.schema))


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.integration)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    schema = request.getfixturevalue("pg_schema") if request.param == "postgres" else None
    return Target(request.param, tmp_path, schema)


def run(
    target: Target, dim: ScdTable, batches: list[list[tuple]], run_name: str = "fast"
) -> tuple[list, list, list[bool]]:
    """Load ``batches`` in order: (table by surrogate key, results, whether the on-time
    path wrote each load)."""
    results: list[ScdResult] = []
    taken: list[bool] = []
    real = type2_fast.try_load
    dim = target.dim(dim, run_name)
    with connect(target.url(run_name)) as con:
        for batch in batches:
            stg = TableRef(fresh_name("stg"), target.schema)
            stage(con, stg, COLS, batch)
            taken.append(False)

            def spy(*args: Any) -> ScdResult | None:
                done = real(*args)
                taken[-1] = done is not None
                return done

            type2_fast.try_load = spy  # type: ignore[assignment]
            try:
                results.append(load_dimension(con, dim, stg, run_id="t"))
            finally:
                type2_fast.try_load = real  # type: ignore[assignment]
        table = con.execute(exp.select("*").from_(dim.table.expression()).order_by("sk"))
    return table, results, taken


def both(target: Target, monkeypatch: pytest.MonkeyPatch, dim: ScdTable, batches: list) -> tuple:
    fast = run(target, dim, batches, "fast")
    monkeypatch.setattr(type2_fast, "DIALECTS", set())
    slow = run(target, dim, batches, "general")
    assert not any(slow[2]), "switched off, the fast path writes nothing"
    return fast, slow


@pytest.mark.parametrize("variant", VARIANTS)
def test_on_time_batches_match_the_general_path(
    target: Target, monkeypatch: pytest.MonkeyPatch, variant: str
) -> None:
    dim = make_dim(**VARIANTS[variant])
    (table, results, taken), (g_table, g_results, _) = both(
        target, monkeypatch, dim, [INITIAL, *ON_TIME]
    )
    assert taken == [False, True, True], "both change batches took the fast path"
    assert table == g_table
    assert results == g_results
    assert results[1] == ScdResult(inserted=6, closed=4, unchanged=1)
    assert len(table) == 6 + 6 + 3


# Mixed dimensions: ``name`` overwritten in place (Type 1), ``city`` tracked; Type 6 also
# keeps ``current_city`` (the key's latest city) on every version.
MIXED = {
    "type1": {"type2": ("city",), "type1": ("name",)},
    "type6": {"type2": ("city",), "type1": ("name",), "current_of": {"current_city": "city"}},
    "type6_only": {"type2": ("name", "city"), "current_of": {"current_city": "city"}},
}
IN_PLACE = [  # after ON_TIME: keys with several versions change only in place, or both
    r(1, "anna", "oslo", 6),  # Type 1 only, on all three versions
    r(7, "eva", "tartu", 6),  # Type 1 and Type 2: closed row and older one take "eva"
    r(3, "cy", None, 6),  # no change
    r(None, "nils", "basel", 6),  # Type 1 only, NULL key
    r(2, None, "lima", 6),  # Type 1 value -> NULL
    r(10, "gus", "graz", 6),  # new key
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mixed", MIXED)
def test_mixed_dimensions_take_the_on_time_path(
    target: Target, monkeypatch: pytest.MonkeyPatch, mixed: str, variant: str
) -> None:
    """Type 1 and Type 6 current columns: the on-time path writes the general path's
    history, surrogate keys and counts (a key changed only in place is ``updated`` once
    per row, not ``unchanged``; a closed row's overwrite is part of its close)."""
    dim = make_dim(**{**VARIANTS[variant], **MIXED[mixed]})
    batches = [INITIAL, *ON_TIME, IN_PLACE]
    (table, results, taken), (g_table, g_results, _) = both(target, monkeypatch, dim, batches)
    assert taken == [False, True, True, True]
    assert table == g_table
    assert results == g_results
    assert results[3].updated > 0 and results[3].inserted > 0


def test_mixed_key_whose_older_rows_alone_differ_goes_the_general_way(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older version out of step with its current row in a Type 1 column (written by
    hand) cannot be counted per key by the on-time path: the probe sends it on."""
    dim = make_dim(**MIXED["type1"])
    runs = []
    for name in ("fast", "general"):
        if name == "general":
            monkeypatch.setattr(type2_fast, "DIALECTS", set())
        table, _, _ = run(target, dim, [INITIAL, [r(1, "ann", "bergen", 2)]], name)
        ref = target.dim(dim, name).table
        with connect(target.url(name)) as con:
            stale = exp.update(ref.expression(), {"name": exp.Literal.string("old")})
            con.execute(stale.where("NOT is_current"))
        runs.append(run(target, dim, [[r(1, "ann", "bergen", 3), r(2, "bo", None, 3)]], name))
    (table, results, taken), (g_table, g_results, _) = runs
    assert taken == [False] and table == g_table and results == g_results
    assert results[0].updated == 2


def test_keys_without_nulls_are_joined_with_plain_equality(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no NULL key part in the batch or the dimension, the statements PostgreSQL gets
    compare keys with ``=`` (which it hash-joins; ``IS NOT DISTINCT FROM`` is a nested
    loop), as the general path's do; the history is the general path's."""
    sent: list[str] = []
    for method in ("execute", "execute_count"):
        real = getattr(PostgresConnector, method)

        def record(self: Any, sql: Any, params: Any = (), real: Any = real) -> Any:
            sent.append(self.render(sql))
            return real(self, sql, params)

        monkeypatch.setattr(PostgresConnector, method, record)
    no_nulls = [[row for row in batch if row[0] is not None] for batch in [INITIAL, *ON_TIME]]
    (table, results, taken), (g_table, g_results, _) = both(
        target, monkeypatch, make_dim(), no_nulls
    )
    assert taken == [False, True, True]
    assert table == g_table
    assert results == g_results
    if target.engine == "postgres":
        assert any(s.startswith("UPDATE") for s in sent)
        assert not [s for s in sent if re.search(r'"id" IS NOT DISTINCT FROM', s)]


def test_a_percent_sign_in_a_name_beside_bound_parameters(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row-hash path binds parameters; psycopg then reads every ``%`` of the statement,
    so a dimension called ``dim%cust`` must still load (the connector escapes them)."""
    dim = make_dim(row_hash="row_hash").replace(table=TableRef("dim%cust"))
    (table, results, taken), (g_table, g_results, _) = both(
        target, monkeypatch, dim, [INITIAL, *ON_TIME]
    )
    assert taken == [False, True, True]
    assert table == g_table and results == g_results


def test_rerun_of_an_on_time_batch_is_a_no_op(target: Target) -> None:
    dim = make_dim()
    table, results, taken = run(target, dim, [INITIAL, ON_TIME[0], ON_TIME[0]])
    assert taken == [False, True, False]  # same timestamps as the current rows: general path
    assert (results[2].inserted, results[2].closed, results[2].unchanged) == (0, 0, 7)
    assert len(table) == 6 + 6


@pytest.mark.parametrize(
    "batches",
    [
        pytest.param([INITIAL, [r(1, "ann", "paris", 3)], [r(1, "ann", "lyon", 2)]], id="late"),
        pytest.param([INITIAL, [r(1, "ann", "a", 5), r(1, "ann", "b", 6)]], id="two_per_key"),
        pytest.param([INITIAL, [r(2, "bob", None, 5, gone=True)]], id="delete"),
        pytest.param([INITIAL, [(3, "cy", "x", None, 0, False)]], id="null_timestamp"),
        pytest.param(
            [INITIAL, [r(4, "di", None, 3, gone=True)], [r(4, "di", "back", 4)]],
            id="reinsert_after_close",
        ),
    ],
)
def test_batches_the_fast_path_declines_load_as_before(
    target: Target, monkeypatch: pytest.MonkeyPatch, batches: list
) -> None:
    dim = make_dim()
    (table, results, taken), (g_table, g_results, _) = both(target, monkeypatch, dim, batches)
    assert taken[-1] is False
    assert table == g_table
    assert results == g_results


def test_deleted_flag_version_is_not_taken_as_current(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    dim = make_dim(hard_delete="close_and_flag", deleted_column="is_deleted")
    batches = [INITIAL, [r(4, "di", None, 3, gone=True)], [r(4, "di", "back", 4)]]
    (table, results, taken), (g_table, g_results, _) = both(target, monkeypatch, dim, batches)
    assert taken == [False, False, False]
    assert table == g_table
    assert results == g_results


def test_same_time_different_value_is_still_a_conflict(target: Target) -> None:
    dim = make_dim()
    with pytest.raises(ScdConflictError, match="same timestamp"):
        run(target, dim, [INITIAL, [r(1, "ann", "other", 1)]])


# -- the SQL cache --------------------------------------------------------------------
def test_cache_builds_once_per_input_and_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRANE_SQL_CACHE", str(tmp_path / "c"))
    built: list[str] = []

    def build(text: str) -> Any:
        return lambda: built.append(text) or {"q": text}

    assert sql_cache.statements("t", "a", build("SELECT 1")) == {"q": "SELECT 1"}
    assert sql_cache.statements("t", "a", build("SELECT 2")) == {"q": "SELECT 1"}  # kept
    assert sql_cache.statements("t", "b", build("SELECT 3")) == {"q": "SELECT 3"}
    assert built == ["SELECT 1", "SELECT 3"]
    monkeypatch.setattr(sql_cache, "fingerprint", lambda: (("edited.py", 1, 2),))
    assert sql_cache.statements("t", "a", build("SELECT 4")) == {"q": "SELECT 4"}  # code changed
    monkeypatch.setattr(sql_cache, "LIMIT", 2)
    sql_cache.statements("t", "c", build("SELECT 5"))
    assert len(list((tmp_path / "c").glob("*.json"))) == 2


def test_cache_off_and_unreadable_entries_are_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRANE_SQL_CACHE", "")
    assert sql_cache.directory() is None
    assert sql_cache.statements("t", "a", lambda: {"q": "x"}) == {"q": "x"}
    folder = tmp_path / "c"
    monkeypatch.setenv("CRANE_SQL_CACHE", str(folder))
    sql_cache.statements("t", "a", lambda: {"q": "x"})
    (entry,) = folder.glob("*.json")
    entry.write_text("{not json")
    assert sql_cache.statements("t", "a", lambda: {"q": "y"}) == {"q": "y"}


REPEAT = """
import sys
from crane.connectors.base import TableRef, connect
from crane.warehouse.scd import ScdTable, load_dimension
dim = ScdTable(TableRef({name!r}, {schema!r}), business_key=("id",), type2=("name", "city"),
               delete_marker="_del", hard_delete="close")
with connect({url!r}) as con:
    result = load_dimension(con, dim, TableRef("stg", {schema!r}))
print(result.inserted, result.closed, "sqlglot" in sys.modules)
"""


def test_repeated_load_in_a_new_process_runs_without_sqlglot(
    target: Target, tmp_path: Path
) -> None:
    """A later process finds the statements (the engine's lock included) in the cache and
    never imports sqlglot; the history is the one the in-process loads write."""
    import subprocess
    import sys

    url, dim = target.url("w"), target.dim(make_dim(), "w")
    script = REPEAT.format(name=dim.table.name, schema=target.schema, url=url)
    env = {**os.environ, "CRANE_SQL_CACHE": str(tmp_path / "cache")}
    runs = []
    for batch in [INITIAL, *ON_TIME]:
        with connect(url) as con:
            stage(con, TableRef("stg", target.schema), COLS, batch)
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
        )
        runs.append(out.stdout.split())
    # first: the table is created by the general path (sqlglot); then two cached loads
    assert runs == [["6", "0", "True"], ["6", "4", "False"], ["3", "2", "False"]]
    with connect(url) as con:
        table = con.execute(exp.select("*").from_(dim.table.expression()).order_by("sk"))
    assert table == run(target, make_dim(), [INITIAL, *ON_TIME], "ref")[0]
