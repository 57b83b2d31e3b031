"""SCD loads of a dimension that facts reference by foreign key, as crane's DDL declares it
(primary key on the surrogate key, unique business key and effective_from), on a DuckDB
file and on PostgreSQL: a write the engine refuses names the dimension and the key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from scd_reference import fresh_name, read, stage

from crane.connectors.base import TableRef
from crane.errors import LoadError
from crane.warehouse.scd import ScdTable, load_dimension

COLS = [("id", "INT"), ("city", "TEXT"), ("updated_at", "TIMESTAMP"), ("_del", "BOOLEAN")]


def d(day: int) -> datetime:
    return datetime(2024, 1, day)


def load(con: Any, dim: ScdTable, rows: list[tuple]) -> Any:
    stg = TableRef(fresh_name("stg"), dim.table.schema)
    stage(con, stg, COLS, rows)
    return load_dimension(con, dim, stg, run_id="t")


def referenced(con: Any, dim: ScdTable, history: bool) -> TableRef:
    """Create the dimension as crane's DDL does and a fact referencing it; answers the fact."""
    q = dim.table.sql(con.dialect)
    if history:
        columns = "effective_from TIMESTAMP, effective_to TIMESTAMP, is_current BOOLEAN"
        unique = "UNIQUE (id, effective_from)"
    else:
        columns, unique = "updated_at TIMESTAMP", "UNIQUE (id)"
    flag = f", {dim.deleted_column} BOOLEAN" if dim.deleted_column else ""
    con.execute(
        f"CREATE TABLE {q} (sk BIGINT PRIMARY KEY, id INT, city TEXT, {columns}{flag}, {unique})"
    )
    fact = TableRef(fresh_name("fact"), dim.table.schema)
    con.execute(f"CREATE TABLE {fact.sql(con.dialect)} (sk BIGINT REFERENCES {q} (sk), amount INT)")
    return fact


def test_a_late_change_that_moves_a_referenced_version_start(
    scd_engine: tuple[Any, str | None],
) -> None:
    """A late change equal to the first version moves its start earlier. DuckDB rewrites
    the row (effective_from is indexed) and its foreign key check refused that with
    "Violates foreign key constraint because key "sk: 1" is still referenced", naming
    neither dimension nor key; PostgreSQL moves the start."""
    con, schema = scd_engine
    dim = ScdTable(TableRef(fresh_name("dim"), schema), ("id",), type2=("city",))
    fact = referenced(con, dim, history=True)
    load(con, dim, [(1, "A", d(3), False)])
    con.execute(f"INSERT INTO {fact.sql(con.dialect)} VALUES (1, 10)")
    late = [(1, "A", d(2), False)]
    if con.dialect == "duckdb":
        with pytest.raises(LoadError, match=r"business key \{'id': 1\}") as info:
            load(con, dim, late)
        assert info.value.table == str(dim.table)
        assert "late_arrival: quarantine" in str(info.value)
        assert read(con, dim.table, ["sk", "effective_from"]) == [(1, d(3))]
    else:
        load(con, dim, late)
        assert read(con, dim.table, ["sk", "effective_from"]) == [(1, d(2))]
    quarantining = dim.replace(late_arrival="quarantine")
    assert load(con, quarantining, late).quarantined == (1 if con.dialect == "duckdb" else 0)


@pytest.mark.parametrize("policy", ["close", "close_and_flag"])
def test_type1_hard_delete_of_a_referenced_member(
    scd_engine: tuple[Any, str | None], policy: str
) -> None:
    """``close`` deletes the row; a fact referencing it made the engine refuse with its
    own words. ``close_and_flag`` keeps the row, flagged."""
    con, schema = scd_engine
    flag = "is_deleted" if policy == "close_and_flag" else None
    dim = ScdTable(
        TableRef(fresh_name("dim"), schema),
        ("id",),
        type1=("city",),
        delete_marker="_del",
        hard_delete=policy,  # type: ignore[arg-type]
        deleted_column=flag,
    )
    fact = referenced(con, dim, history=False)
    load(con, dim, [(1, "A", d(1), False), (2, "B", d(1), False)])
    con.execute(f"INSERT INTO {fact.sql(con.dialect)} VALUES (2, 10)")
    gone = [(2, None, d(2), True)]
    if flag is None:
        with pytest.raises(LoadError, match=r"business key \{'id': 2\}") as info:
            load(con, dim, gone)
        assert info.value.table == str(dim.table) and "close_and_flag" in str(info.value)
        assert read(con, dim.table, ["id"]) == [(1,), (2,)]
    else:
        assert load(con, dim, gone).closed == 1
        assert read(con, dim.table, ["id", flag]) == [(1, False), (2, True)]


def test_a_correction_that_merges_away_a_referenced_version(
    scd_engine: tuple[Any, str | None],
) -> None:
    """A higher tie-break at day 5 returns the key to its day-1 state: the day-5 version
    merges into the day-1 one and its row is removed, which the fact's key refuses."""
    con, schema = scd_engine
    dim = ScdTable(TableRef(fresh_name("dim"), schema), ("id",), type2=("city",), tie_break="seq")
    fact = referenced(con, dim, history=True)
    con.execute(f"ALTER TABLE {dim.table.sql(con.dialect)} ADD COLUMN seq INT")
    cols = [("id", "INT"), ("city", "TEXT"), ("updated_at", "TIMESTAMP"), ("seq", "INT")]

    def tied(rows: list[tuple]) -> Any:
        stg = TableRef(fresh_name("stg"), schema)
        stage(con, stg, cols, rows)
        return load_dimension(con, dim, stg)

    tied([(1, "A", d(1), 0), (1, "B", d(5), 0)])
    con.execute(f"INSERT INTO {fact.sql(con.dialect)} VALUES (2, 10)")
    with pytest.raises(LoadError, match=r"merges away the version of business key \{'id': 1\}"):
        tied([(1, "A", d(5), 1)])
    assert read(con, dim.table, ["sk", "city"]) == [(1, "A"), (2, "B")]
