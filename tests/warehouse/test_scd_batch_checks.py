"""A batch the SCD loaders would misread is refused naming the dimension and the column,
on a DuckDB file and on PostgreSQL (crane.warehouse.scd.checks)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from scd_reference import fresh_name, read, stage

from crane.connectors.base import TableRef
from crane.errors import LoadError
from crane.warehouse.scd import ScdTable, load_dimension
from crane.warehouse.scd.checks import family

COLS = [
    ("id", "INT"),
    ("city", "TEXT"),
    ("email", "TEXT"),
    ("updated_at", "TIMESTAMP"),
    ("seq", "INT"),
    ("_del", "BOOLEAN"),
]


def d(day: int) -> datetime:
    return datetime(2024, 1, day)


KINDS: dict[str, dict[str, Any]] = {
    "0": dict(kind="0", type1=("city", "email")),
    "1": dict(type1=("city", "email")),
    "2": dict(type2=("city",), type1=("email",)),
    "3": dict(type1=("email",), type3={"city": "prev_city"}),
    "4": dict(kind="4", type2=("city",), type1=("email",)),
    "6": dict(type2=("city",), type1=("email",), current_of={"current_city": "city"}),
}


def make(schema: str | None, kind: str, **kw: Any) -> ScdTable:
    spec: dict[str, Any] = dict(business_key=("id",), delete_marker="_del", **KINDS[kind])
    if kind == "4":
        spec["history_table"] = TableRef(fresh_name("hist"), schema)
    spec.update(kw)
    return ScdTable(TableRef(fresh_name("dim"), schema), **spec)


def load(con: Any, dim: ScdTable, rows: list[tuple], cols: list[tuple[str, str]] = COLS) -> Any:
    stg = TableRef(fresh_name("stg"), dim.table.schema)
    stage(con, stg, cols, rows)
    return load_dimension(con, dim, stg, run_id="t")


def without(name: str, rows: list[tuple]) -> tuple[list[tuple[str, str]], list[tuple]]:
    i = [c for c, _ in COLS].index(name)
    return [c for c in COLS if c[0] != name], [r[:i] + r[i + 1 :] for r in rows]


ROW = (1, "A", "a@x", d(1), None, False)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("missing", ["id", "city", "updated_at", "_del"])
def test_a_missing_batch_column_names_the_dimension_and_the_column(
    scd_engine: tuple[Any, str | None], kind: str, missing: str
) -> None:
    """First load: the engine's "column b.city does not exist" named neither."""
    con, schema = scd_engine
    dim = make(schema, kind)
    cols, rows = without(missing, [ROW])
    with pytest.raises(LoadError, match=f"no column '{missing}'") as info:
        load(con, dim, rows, cols)
    assert info.value.table == str(dim.table) and info.value.column == missing


@pytest.mark.parametrize("kind", ["0", "1", "3", "4"])
@pytest.mark.parametrize("missing", ["id", "city", "updated_at", "_del"])
def test_a_missing_batch_column_of_a_stored_dimension_is_named(
    scd_engine: tuple[Any, str | None], kind: str, missing: str
) -> None:
    con, schema = scd_engine
    dim = make(schema, kind)
    load(con, dim, [ROW])
    cols, rows = without(missing, [(1, "B", "b@x", d(2), None, False)])
    with pytest.raises(LoadError, match=f"no column '{missing}'") as info:
        load(con, dim, rows, cols)
    assert info.value.table == str(dim.table) and info.value.column == missing


@pytest.mark.parametrize("kind", ["2", "6"])
def test_a_missing_key_column_of_a_stored_type2_dimension_is_named(
    scd_engine: tuple[Any, str | None], kind: str
) -> None:
    """The on-time path probes the batch before any check: the engine's binder error named
    neither the dimension nor the column."""
    con, schema = scd_engine
    dim = make(schema, kind)
    load(con, dim, [ROW])
    cols, rows = without("id", [(1, "B", "b@x", d(2), None, False)])
    with pytest.raises(LoadError, match="no column 'id'") as info:
        load(con, dim, rows, cols)
    assert info.value.table == str(dim.table)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_text_change_timestamp_is_refused(scd_engine: tuple[Any, str | None], kind: str) -> None:
    """It was stored as a text effective_from on a first load (and every later load failed;
    text orders '2024-1-10' before '2024-1-9')."""
    con, schema = scd_engine
    dim = make(schema, kind)
    cols = [(n, "TEXT" if n == "updated_at" else t) for n, t in COLS]
    with pytest.raises(LoadError, match="not a date or timestamp") as info:
        load(con, dim, [(1, "A", None, "2024-01-01", None, False)], cols)
    assert info.value.table == str(dim.table) and info.value.column == "updated_at"


def test_a_text_delete_marker_is_refused(scd_engine: tuple[Any, str | None]) -> None:
    con, schema = scd_engine
    dim = make(schema, "1")
    cols = [(n, "TEXT" if n == "_del" else t) for n, t in COLS]
    with pytest.raises(LoadError, match="not a boolean") as info:
        load(con, dim, [(1, "A", None, d(1), None, "yes")], cols)
    assert info.value.column == "_del"


@pytest.mark.parametrize("kind", ["1", "3", "4"])
def test_a_batch_column_of_another_type_than_the_dimension_is_named(
    scd_engine: tuple[Any, str | None], kind: str
) -> None:
    con, schema = scd_engine
    dim = make(schema, kind)
    load(con, dim, [ROW])
    cols = [(n, "INT" if n == "email" else t) for n, t in COLS]
    with pytest.raises(LoadError, match="'email'") as info:
        load(con, dim, [(1, "A", 7, d(2), None, False)], cols)
    assert info.value.column == "email"


def test_a_newly_declared_column_the_dimension_lacks_is_named(
    scd_engine: tuple[Any, str | None],
) -> None:
    con, schema = scd_engine
    dim = make(schema, "1", type1=("city",))
    load(con, dim, [ROW])
    wider = dim.replace(type1=("city", "email"))
    with pytest.raises(LoadError, match="dimension has no column 'email'") as info:
        load(con, wider, [(1, "B", "b@x", d(2), None, False)])
    assert info.value.table == str(dim.table)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_change_without_timestamp_is_quarantined(
    scd_engine: tuple[Any, str | None], kind: str
) -> None:
    """Type 2 stored a version with no start (NULL effective_from, or a closed one before
    every other), Type 1 a row no later change could be ordered after. Now the row goes
    to the quarantine table (once, however often the batch is rerun) and the rest load;
    an ignored delete without a timestamp is no change at all."""
    con, schema = scd_engine
    dim = make(schema, kind)
    untimed = [(2, "B", None, None, None, False), (1, "C", None, None, None, False)]
    first = load(con, dim, [ROW, untimed[0], (9, None, None, None, None, True)])
    assert (first.inserted, first.quarantined) == (1, 1)
    for _ in range(2):
        again = load(con, dim, untimed)
        assert again.quarantined == (1 if _ == 0 else 0)
        assert (again.inserted, again.updated, again.closed) == (0, 0, 0)
    table = dim.history_table if kind == "4" else dim.table
    assert table is not None
    assert read(con, table, ["id", "city"]) == [(1, "A")]
    reasons = read(con, dim.quarantine, ["id", "city", "_crane_reason"])
    assert reasons == [(1, "C", "null_change_ts"), (2, "B", "null_change_ts")]


@pytest.mark.parametrize("kind", ["2", "6"])
def test_a_clean_first_batch_with_a_change_without_timestamp(
    scd_engine: tuple[Any, str | None], kind: str
) -> None:
    """One row per key and no deletes: the first load's single INSERT took it as is."""
    con, schema = scd_engine
    dim = make(schema, kind)
    result = load(con, dim, [ROW, (2, "B", None, None, None, False)])
    assert (result.inserted, result.quarantined) == (1, 1)
    assert read(con, dim.table, ["id", "effective_from"]) == [(1, d(1))]


def test_a_change_without_timestamp_into_an_empty_stored_type2_dimension(
    scd_engine: tuple[Any, str | None],
) -> None:
    """The on-time path inserted a clean batch into an empty stored dimension (one the
    model DDL created) without looking at the timestamps: a version with no start."""
    con, schema = scd_engine
    dim = make(schema, "2")
    load(con, dim, [ROW])
    con.execute(f"DELETE FROM {dim.table.sql(con.dialect)}")
    assert load(con, dim, [(2, "B", None, None, None, False)]).quarantined == 1
    assert read(con, dim.table, ["id"]) == []


def test_a_text_tie_break_with_last_change(scd_engine: tuple[Any, str | None]) -> None:
    """A text tie-break (a log position, say) beside a Type 1 column and ``last_change``:
    the Type 1 winner query put CAST(NULL AS INT) beside it, which PostgreSQL refused
    (UNION types text and integer cannot be matched)."""
    con, schema = scd_engine
    dim = make(schema, "2", tie_break="seq", last_change="last_change")
    cols = [(n, "TEXT" if n == "seq" else t) for n, t in COLS]
    load(con, dim, [(1, "A", "new", d(8), "0/2", False)], cols)
    late = [(1, "A", "older", d(2), "0/1", False)]
    load(con, dim, late, cols)
    expected = [(d(2), "new", d(8))]
    assert read(con, dim.table, ["effective_from", "email", "last_change"]) == expected
    again = load(con, dim, late, cols)
    assert (again.inserted, again.updated, again.closed, again.removed) == (0, 0, 0, 0)
    assert read(con, dim.table, ["effective_from", "email", "last_change"]) == expected


def test_families() -> None:
    assert family("timestamp without time zone") == "temporal"
    assert family("TIMESTAMP_NS") == "temporal"
    assert family("character varying(20)") == "text"
    assert family("DECIMAL(12,2)") == "number"
    assert family("point") == family("INTEGER[]") == "other"
    assert family("boolean") == "boolean"


def test_a_missing_batch_table_is_named(scd_engine: tuple[Any, str | None]) -> None:
    con, schema = scd_engine
    dim = make(schema, "2")
    nowhere = TableRef(f"stg_{uuid.uuid4().hex[:8]}", schema)
    with pytest.raises(LoadError, match="does not exist") as info:
        load_dimension(con, dim, nowhere)
    assert info.value.table == str(dim.table)


def test_a_quarantine_table_gains_the_columns_its_rows_gained(
    scd_engine: tuple[Any, str | None],
) -> None:
    """The first quarantine fixed the table's columns; once the dimension tracked one more
    attribute, every later quarantine failed on it (and the rows had nowhere to go)."""
    con, schema = scd_engine
    dim = make(schema, "2", late_arrival="quarantine")
    load(con, dim, [(1, "A", "a@x", d(5), None, False)])
    assert load(con, dim, [(1, "B", "a@x", d(2), None, False)]).quarantined == 1
    wider = dim.replace(type2=("city", "phone"))
    con.execute(f"ALTER TABLE {dim.table.sql(con.dialect)} ADD COLUMN phone TEXT")
    cols = [*COLS, ("phone", "TEXT")]
    late = [(1, "C", "a@x", d(3), None, False, "555")]
    assert load(con, wider, late, cols).quarantined == 1
    got = read(con, dim.quarantine, ["city", "phone", "_crane_reason"])
    assert sorted(got, key=str) == sorted(
        [("B", None, "late_arrival"), ("C", "555", "late_arrival")], key=str
    )
