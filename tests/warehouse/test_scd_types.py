"""Each SCD type and policy on a real engine, one named scenario per test."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from scd_reference import fresh_name, read, stage

from crane.connectors.base import TableRef, connect
from crane.errors import ConfigError, UnknownNameError
from crane.warehouse.scd import ScdConflictError, ScdTable, load_dimension, scd_types
from crane.warehouse.scd.patterns import as_of, current_view, type5_view

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
COLS = [
    ("id", "INT"),
    ("region", "TEXT"),
    ("city", "TEXT"),
    ("email", "TEXT"),
    ("updated_at", "TIMESTAMP"),
    ("seq", "INT"),
    ("_del", "BOOLEAN"),
]


def d(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour)


def row(
    id_: int,
    city: Any,
    day: int,
    *,
    email: Any = None,
    region: Any = "eu",
    seq: int | None = None,
    deleted: bool = False,
) -> tuple:
    return (id_, region, city, email, d(day), seq, deleted)


@pytest.fixture
def con() -> Any:
    with connect("duckdb:///:memory:") as c:
        yield c


def dim(**kw: Any) -> ScdTable:
    base: dict[str, Any] = dict(
        business_key=("id",), type2=("city",), type1=("email",), delete_marker="_del"
    )
    base.update(kw)
    return ScdTable(TableRef(fresh_name("dim")), **base)


def load(con: Any, table: ScdTable, rows: list[tuple]) -> Any:
    stg = TableRef(fresh_name("stg"), table.table.schema)
    stage(con, stg, COLS, rows)
    return load_dimension(con, table, stg, run_id="t")


def history(con: Any, table: ScdTable, *extra: str) -> list[tuple]:
    cols = ["id", "city", "effective_from", "effective_to", "is_current", *extra]
    return sorted(read(con, table.table, cols), key=lambda r: (r[0], r[2]))


# -- Type 2 ---------------------------------------------------------------------------
def test_type2_several_changes_in_one_batch_give_one_version_each(con: Any) -> None:
    t = dim()
    result = load(con, t, [row(1, "C", 3), row(1, "A", 1), row(1, "B", 2)])
    assert result.inserted == 3
    assert history(con, t) == [
        (1, "A", d(1), d(2), False),
        (1, "B", d(2), d(3), False),
        (1, "C", d(3), None, True),
    ]


def test_type2_duplicates_ignored_and_rerun_is_noop(con: Any) -> None:
    t = dim()
    rows = [row(1, "A", 1), row(1, "A", 1), row(2, "B", 1)]
    assert load(con, t, rows).inserted == 2
    again = load(con, t, rows)
    assert (again.inserted, again.updated, again.closed, again.unchanged) == (0, 0, 0, 2)
    assert len(history(con, t)) == 2


def test_type2_equal_timestamps_with_different_values_name_the_key(con: Any) -> None:
    t = dim()
    with pytest.raises(ScdConflictError, match=r"\{'id': 7\}") as info:
        load(con, t, [row(7, "A", 1), row(7, "B", 1)])
    assert "tie_break" in str(info.value)


def test_type2_tie_break_orders_equal_timestamps(con: Any) -> None:
    t = dim(tie_break="seq")
    load(con, t, [row(7, "A", 1, seq=2), row(7, "B", 1, seq=1)])
    assert history(con, t) == [(7, "A", d(1), None, True)]
    load(con, t, [row(7, "C", 1, seq=3)])  # a later correction at the same instant
    assert history(con, t) == [(7, "C", d(1), None, True)]


def test_type2_null_to_value_and_back_are_changes(con: Any) -> None:
    t = dim()
    load(con, t, [row(1, None, 1), row(1, "A", 2), row(1, None, 3)])
    assert [r[1] for r in history(con, t)] == [None, "A", None]


def test_type2_null_inside_composite_key_is_stable(con: Any) -> None:
    t = dim(business_key=("id", "region"))
    rows = [row(1, "A", 1, region=None), row(1, "A", 1, region="eu")]
    load(con, t, rows)
    again = load(con, t, rows)
    assert again.inserted == 0 and again.unchanged == 2
    assert len(read(con, t.table, ["sk"])) == 2


def test_type2_type1_attribute_overwrites_without_new_version(con: Any) -> None:
    t = dim()
    load(con, t, [row(1, "A", 1, email="a@old"), row(1, "B", 2, email="a@old")])
    result = load(con, t, [row(1, "B", 3, email="a@new")])
    assert result.inserted == 0 and result.updated == 2
    assert read(con, t.table, ["city", "email"]) == [("A", "a@new"), ("B", "a@new")]


def test_type2_last_change_declared_on_an_earlier_dimension(con: Any) -> None:
    """A dimension loaded without ``last_change`` gets the column (empty) once it is
    declared; then a late change that moves the start earlier keeps the newer email,
    and a rerun of that batch changes nothing."""
    old = dim()
    load(con, old, [row(1, "A", 8, email="new")])
    t = old.replace(last_change="last_change")
    late = [row(1, "A", 2, email="older"), row(1, "A", 5, email="old")]
    load(con, t, late)
    assert read(con, t.table, ["effective_from", "email", "last_change"]) == [(d(2), "new", d(8))]
    again = load(con, t, late)
    assert (again.inserted, again.updated, again.closed, again.removed) == (0, 0, 0, 0)
    assert read(con, t.table, ["effective_from", "email", "last_change"]) == [(d(2), "new", d(8))]
    on_time = load(con, t, [row(1, "A", 9, email="newest")])  # the on-time path
    assert on_time.updated == 1
    assert read(con, t.table, ["email"]) == [("newest",)]


def test_type2_last_change_is_remembered_before_the_on_time_path(con: Any) -> None:
    """An event between the stored boundaries and the remembered time is late: it goes
    the general way and does not overwrite the newer email."""
    t = dim(last_change="last_change")
    load(con, t, [row(1, "A", 8, email="new")])
    load(con, t, [row(1, "A", 2, email="older")])
    load(con, t, [row(1, "A", 5, email="old")])
    assert read(con, t.table, ["effective_from", "email"]) == [(d(2), "new")]


def test_type2_hard_delete_ignore(con: Any) -> None:
    t = dim(hard_delete="ignore")
    load(con, t, [row(1, "A", 1), row(1, None, 2, deleted=True)])
    assert history(con, t) == [(1, "A", d(1), None, True)]


def test_type2_hard_delete_close_then_reinsert_gets_new_version(con: Any) -> None:
    t = dim(hard_delete="close")
    load(con, t, [row(1, "A", 1)])
    assert load(con, t, [row(1, None, 2, deleted=True)]).closed == 1
    again = load(con, t, [row(1, None, 2, deleted=True), row(5, None, 2, deleted=True)])
    assert (again.inserted, again.closed) == (0, 0)  # no redundant delete rows
    load(con, t, [row(1, "A", 4)])
    assert history(con, t) == [(1, "A", d(1), d(2), False), (1, "A", d(4), None, True)]


def test_type2_hard_delete_close_and_flag_adds_deleted_version(con: Any) -> None:
    t = dim(hard_delete="close_and_flag", deleted_column="is_deleted")
    load(con, t, [row(1, "A", 1), row(1, None, 2, deleted=True)])
    load(con, t, [row(1, None, 3, deleted=True)])  # already deleted: nothing new
    assert history(con, t, "is_deleted") == [
        (1, "A", d(1), d(2), False, False),
        (1, "A", d(2), None, True, True),
    ]


def test_type2_late_change_splits_the_interval(con: Any) -> None:
    t = dim()
    load(con, t, [row(1, "A", 1), row(1, "C", 5)])
    result = load(con, t, [row(1, "B", 3)])
    assert (result.inserted, result.updated) == (1, 1)
    assert history(con, t) == [
        (1, "A", d(1), d(3), False),
        (1, "B", d(3), d(5), False),
        (1, "C", d(5), None, True),
    ]


def test_type2_late_change_quarantined_by_policy(con: Any) -> None:
    t = dim(late_arrival="quarantine")
    load(con, t, [row(1, "A", 1), row(1, "C", 5)])
    result = load(con, t, [row(1, "B", 3), row(1, "A", 2)])  # A@2 is no change: dropped
    assert result.quarantined == 1 and result.inserted == 0
    assert read(con, t.quarantine, ["id", "city", "_crane_reason"]) == [(1, "B", "late_arrival")]
    assert load(con, t, [row(1, "B", 3)]).quarantined == 0  # a rerun adds nothing
    assert len(history(con, t)) == 2


def test_type2_hash_surrogate_keys(con: Any) -> None:
    t = dim(surrogate_strategy="hash")
    load(con, t, [row(1, "A", 1), row(1, "B", 2), row(12, "A", 1)])
    keys = [r[0] for r in read(con, t.table, ["sk"])]
    assert len(set(keys)) == 3 and all(len(k) == 32 for k in keys)


def test_as_of_pattern_query(con: Any) -> None:
    t = dim()
    load(con, t, [row(1, "A", 1), row(1, "B", 3), row(2, "X", 2)])
    from crane.sql.build import timestamp_literal

    assert sorted(con.execute(as_of(t, timestamp_literal(d(2, 12)), ["city"]))) == [
        (1, "A"),
        (2, "X"),
    ]


@pytest.mark.parametrize("on", ["duckdb", pytest.param("postgres", marks=pytest.mark.integration)])
def test_as_of_leaves_out_members_a_flagged_delete_removed(
    on: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """The deleted-flag version carries the values before the delete; as_of listed the
    member as present after it (the reference's as_of does not)."""
    from crane.sql.build import timestamp_literal

    url = f"duckdb:///{tmp_path / 'wh.duckdb'}" if on == "duckdb" else PG_URL
    schema = request.getfixturevalue("pg_schema") if on == "postgres" else None
    with connect(url) as c:
        t = dim(hard_delete="close_and_flag", deleted_column="is_deleted")
        t = t.replace(table=TableRef(t.table.name, schema))
        load(c, t, [row(1, "A", 1), row(2, "B", 1), row(1, None, 3, deleted=True)])
        assert sorted(c.execute(as_of(t, timestamp_literal(d(2)), ["city"]))) == [
            (1, "A"),
            (2, "B"),
        ]
        assert sorted(c.execute(as_of(t, timestamp_literal(d(4)), ["city"]))) == [(2, "B")]


# -- Types 0, 1, 3, 4, 6 --------------------------------------------------------------
def test_type0_retains_the_original(con: Any) -> None:
    t = dim(kind="0", type2=(), type1=("city",))
    load(con, t, [row(1, "B", 2), row(1, "A", 1)])
    result = load(con, t, [row(1, "C", 3), row(2, "Z", 3)])
    assert (result.inserted, result.unchanged) == (1, 1)
    assert read(con, t.table, ["id", "city"]) == [(1, "A"), (2, "Z")]


def test_type1_overwrites_and_ignores_older_changes(con: Any) -> None:
    t = dim(type2=(), type1=("city", "email"))
    load(con, t, [row(1, "A", 1), row(1, "B", 2)])
    assert read(con, t.table, ["id", "city", "updated_at"]) == [(1, "B", d(2))]
    assert load(con, t, [row(1, "OLD", 1, email="x")]).updated == 0
    assert load(con, t, [row(1, None, 3)]).updated == 1  # value → NULL is a change
    assert read(con, t.table, ["city"]) == [(None,)]


def test_type1_close_deletes_and_flag_marks(con: Any) -> None:
    closing = dim(type2=(), type1=("city",), hard_delete="close")
    load(con, closing, [row(1, "A", 1), row(2, "B", 1)])
    assert load(con, closing, [row(1, None, 2, deleted=True)]).closed == 1
    assert read(con, closing.table, ["id"]) == [(2,)]
    flagging = dim(
        type2=(), type1=("city",), hard_delete="close_and_flag", deleted_column="is_deleted"
    )
    load(con, flagging, [row(1, "A", 1)])
    assert load(con, flagging, [row(1, None, 2, deleted=True)]).closed == 1
    assert read(con, flagging.table, ["city", "is_deleted"]) == [("A", True)]
    load(con, flagging, [row(1, "A", 3)])
    assert read(con, flagging.table, ["city", "is_deleted"]) == [("A", False)]


@pytest.mark.parametrize("on", ["duckdb", pytest.param("postgres", marks=pytest.mark.integration)])
def test_type3_flagged_delete_in_the_batch_of_the_change(
    on: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """A key's change and its delete in one batch end as the change loaded, then the delete
    (b1 then b2 equals b1 ∪ b2): a new key is inserted flagged (it was left out), a stored
    one is flagged holding the batch's change, not its older stored values."""
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}" if on == "duckdb" else PG_URL
    schema = request.getfixturevalue("pg_schema") if on == "postgres" else None
    flag = dict(hard_delete="close_and_flag", deleted_column="is_deleted")
    with connect(url) as c:
        tables = []
        for batches in (
            [[row(1, "A", 1), row(2, "P", 1)], [row(1, "B", 2), row(1, None, 3, deleted=True)]],
            [[row(1, "A", 1), row(2, "P", 1)], [row(1, "B", 2)], [row(1, None, 3, deleted=True)]],
        ):
            t = dim(type2=(), type1=("email",), type3={"city": "prev_city"}, **flag)
            t = t.replace(table=TableRef(t.table.name, schema))
            for batch in batches:
                load(c, t, batch)
            tables.append(read(c, t.table, ["id", "city", "prev_city", "is_deleted"]))
        assert tables[0] == tables[1] == [(1, "B", "A", True), (2, "P", None, False)]
        t = dim(type2=(), type1=("city",), **flag)
        t = t.replace(table=TableRef(t.table.name, schema))
        assert load(c, t, [row(1, "A", 1), row(1, None, 2, deleted=True)]).inserted == 1
        assert read(c, t.table, ["id", "city", "updated_at", "is_deleted"]) == [
            (1, "A", d(2), True)
        ]


def test_type3_keeps_the_value_before_the_last_change(con: Any) -> None:
    t = dim(type2=(), type1=("email",), type3={"city": "prev_city"})
    load(con, t, [row(1, "A", 1), row(1, "B", 2), row(1, "C", 3)])
    assert read(con, t.table, ["city", "prev_city"]) == [("C", "B")]
    load(con, t, [row(1, "C", 4, email="new")])  # city unchanged: previous kept
    assert read(con, t.table, ["city", "prev_city", "email"]) == [("C", "B", "new")]
    load(con, t, [row(1, "D", 5)])
    assert read(con, t.table, ["city", "prev_city"]) == [("D", "C")]


def test_type4_current_table_and_history(con: Any) -> None:
    hist = TableRef(fresh_name("dim_hist"))
    t = dim(kind="4", history_table=hist)
    load(con, t, [row(1, "A", 1, email="e1"), row(1, "B", 2, email="e2")])
    assert read(con, t.table, ["id", "city", "email"]) == [(1, "B", "e2")]
    cols = ["id", "city", "email", "is_current"]
    assert read(con, hist, cols) == [(1, "A", "e2", False), (1, "B", "e2", True)]


@pytest.mark.parametrize("on", ["duckdb", pytest.param("postgres", marks=pytest.mark.integration)])
@pytest.mark.parametrize("declared", [False, True])
def test_type4_quarantines_each_row_once(
    on: str, declared: bool, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """A late change (and one without a timestamp) was set aside by both parts, in two
    tables; with a declared quarantine table the history part took it first and the
    result said nothing was quarantined."""
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}" if on == "duckdb" else PG_URL
    schema = request.getfixturevalue("pg_schema") if on == "postgres" else None
    with connect(url) as c:
        hist = TableRef(fresh_name("dim_hist"), schema)
        quarantine = TableRef(fresh_name("rejects"), schema) if declared else None
        t = dim(
            kind="4", history_table=hist, late_arrival="quarantine", quarantine_table=quarantine
        )
        t = t.replace(table=TableRef(t.table.name, schema))
        load(c, t, [row(1, "A", 1), row(1, "C", 5)])
        late = [row(1, "B", 3), (2, "eu", "X", None, None, None, False)]
        assert load(c, t, late).quarantined == 2
        assert load(c, t, late).quarantined == 0
        kept = read(c, t.quarantine, ["id", "city", "_crane_reason"])
        assert kept == [(1, "B", "late_arrival"), (2, "X", "null_change_ts")]
        from crane.warehouse.scd.steps import table_exists

        assert not table_exists(c, TableRef(f"{hist.name}_quarantine", schema))


def test_type6_current_columns_synced_on_every_version(con: Any) -> None:
    t = dim(type1=(), current_of={"current_city": "city"})
    assert t.kind == "6"
    load(con, t, [row(1, "A", 1), row(1, "B", 2)])
    load(con, t, [row(1, "C", 3)])
    assert read(con, t.table, ["city", "current_city"]) == [("A", "C"), ("B", "C"), ("C", "C")]


@pytest.mark.parametrize("policy", ["close", "close_and_flag"])
def test_type6_current_columns_after_delete_reinsert_and_null(con: Any, policy: str) -> None:
    """A hard delete leaves the current columns at the version it closed (under either
    policy); a re-insert makes its value current on every row; NULL is mirrored as NULL."""
    flag = "is_deleted" if policy == "close_and_flag" else None
    t = dim(type1=(), current_of={"current_city": "city"}, hard_delete=policy, deleted_column=flag)
    load(con, t, [row(1, "A", 1), row(1, "B", 2)])
    load(con, t, [row(1, None, 3, deleted=True)])
    before = [("A", "B"), ("B", "B")] + ([("B", "B")] if flag else [])
    assert read(con, t.table, ["city", "current_city"]) == sorted(before, key=repr)
    load(con, t, [row(1, "C", 4)])
    assert {r[0] for r in read(con, t.table, ["current_city"])} == {"C"}
    load(con, t, [row(1, None, 5)])
    assert {r[0] for r in read(con, t.table, ["current_city"])} == {None}


def test_type6_requires_tracked_source(con: Any) -> None:
    t = dim(type2=("city",), type1=(), current_of={"current_email": "email"})
    with pytest.raises(ConfigError, match="not tracked"):
        load(con, t, [row(1, "A", 1)])


def test_type5_and_type7_views(con: Any) -> None:
    t = dim(type1=())
    load(con, t, [row(1, "A", 1), row(1, "B", 2)])
    cur, t5 = TableRef(fresh_name("v")), TableRef(fresh_name("v"))
    con.execute(current_view(t, cur))
    con.execute(type5_view(t, t5, ["city"]))
    assert read(con, cur, ["id", "city"]) == [(1, "B")]
    assert read(con, t5, ["city", "current_city"]) == [("A", "B"), ("B", "B")]


def test_registry_names_and_did_you_mean() -> None:
    assert {"0", "1", "2", "3", "4", "6"} <= set(scd_types.names())
    with pytest.raises(UnknownNameError, match="did you mean"):
        scd_types.get("type22")


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="deleted_column"):
        dim(hard_delete="close_and_flag")
    with pytest.raises(ConfigError, match="business key"):
        ScdTable(TableRef("x"), business_key=())
    with pytest.raises(ConfigError, match="last_change"):
        ScdTable(TableRef("x"), business_key=("id",), type1=("email",), last_change="lc")


@pytest.mark.integration
def test_types_0_4_6_on_postgres(pg_schema: str) -> None:
    """The types the property tests do not cover on PostgreSQL, end to end."""
    with connect("postgresql://postgres@127.0.0.1:5432/test") as pg:

        def make(**kw: Any) -> ScdTable:
            t = dim(**kw)
            return t.replace(table=TableRef(t.table.name, pg_schema))

        zero = make(kind="0", type2=(), type1=("city",))
        load(pg, zero, [row(1, "B", 2), row(1, "A", 1)])
        load(pg, zero, [row(1, "C", 3)])
        assert read(pg, zero.table, ["id", "city"]) == [(1, "A")]
        four = make(kind="4", history_table=TableRef(fresh_name("hist"), pg_schema))
        load(pg, four, [row(1, "A", 1, email="e1"), row(1, "B", 2, email="e2")])
        assert read(pg, four.table, ["id", "city", "email"]) == [(1, "B", "e2")]
        assert four.history_table is not None
        assert len(read(pg, four.history_table, ["sk"])) == 2
        six = make(type1=(), current_of={"current_city": "city"}, surrogate_strategy="hash")
        load(pg, six, [row(1, "A", 1), row(1, "B", 2)])
        load(pg, six, [row(1, "C", 3)])
        assert read(pg, six.table, ["city", "current_city"]) == [
            ("A", "C"),
            ("B", "C"),
            ("C", "C"),
        ]


@pytest.mark.integration
def test_postgres_key_join_is_plain_equality_only_without_null_key_parts(pg_schema: str) -> None:
    from crane.warehouse.scd.steps import ensure_tables, without_null_keys

    with connect("postgresql://postgres@127.0.0.1:5432/test") as pg:
        t = dim(business_key=("id", "region"))
        t = t.replace(table=TableRef(t.table.name, pg_schema))
        clean, holey = TableRef("clean", pg_schema), TableRef("holey", pg_schema)
        stage(pg, clean, COLS, [row(1, "A", 1)])
        stage(pg, holey, COLS, [row(1, "A", 1, region=None)])
        ensure_tables(pg, t, clean)
        assert without_null_keys(pg, t, clean).key_nulls is False
        assert without_null_keys(pg, t, holey).key_nulls is True
