"""Load strategies executed on real DuckDB files and a real PostgreSQL server."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crane.config.spec import LoadSpec
from crane.connectors.base import TableRef, connect
from crane.errors import LoadError
from crane.pipelines.load import LoadResult, load_strategies, replace_staging

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
RUN_1 = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
RUN_2 = datetime(2026, 1, 2, 2, 0, tzinfo=UTC)


def open_pg():
    return connect(PG_URL)


@pytest.fixture(scope="module")
def pg_connector():
    con = open_pg()
    yield con
    con.close()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.integration)])
def engine(request, tmp_path):
    """(connector, schema) on a fresh DuckDB file or a fresh PostgreSQL schema."""
    if request.param == "duckdb":
        con = connect(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
        con.execute('CREATE SCHEMA "w"')
        yield con, "w"
        con.close()
    else:
        yield request.getfixturevalue("pg_connector"), request.getfixturevalue("pg_schema")


def run(
    con,
    schema,
    strategy,
    rows,
    *,
    full=False,
    run_at=RUN_1,
    columns=None,
    staging=None,
    changed_by=None,
    **load,
) -> LoadResult:
    """Stage ``rows`` and publish them with ``strategy`` in one transaction."""
    data = pa.Table.from_pylist(rows, schema=load.pop("arrow_schema", None))
    staging = staging or TableRef("stg", schema)
    con.write(data.to_reader(), staging, "replace")
    spec = LoadSpec(strategy=strategy, **load)
    with con.transaction():
        return load_strategies.get(strategy)(
            con,
            staging,
            TableRef("t", schema),
            spec,
            columns=columns or data.schema.names,
            full_extract=full,
            run_at=run_at,
            changed_by=changed_by,
        )


def rows_of(con, schema, order="id", columns="*"):
    return con.execute(f'SELECT {columns} FROM "{schema}"."t" ORDER BY {order}')


def test_append_creates_the_target_and_adds_rows(engine):
    con, schema = engine
    batch = [{"id": 1, "v": "a"}, {"id": 2, "v": None}]
    assert run(con, schema, "append", batch) == LoadResult(inserted=2)
    assert run(con, schema, "append", batch) == LoadResult(inserted=2)
    assert rows_of(con, schema) == [(1, "a"), (1, "a"), (2, None), (2, None)]


def test_merge_inserts_new_keys_and_updates_only_changed_rows(engine):
    con, schema = engine
    first = [
        {"id": 1, "v": "a", "n": 1},
        {"id": 2, "v": "b", "n": None},
        {"id": 3, "v": "c", "n": 3},
    ]
    assert run(con, schema, "merge", first, primary_key=["id"]) == LoadResult(inserted=3)
    second = [
        {"id": 1, "v": "a", "n": 1},  # unchanged
        {"id": 2, "v": "b", "n": 20},  # NULL -> value
        {"id": 3, "v": "c", "n": None},  # value -> NULL
        {"id": 4, "v": "d", "n": 4},  # new
    ]
    result = run(con, schema, "merge", second, primary_key=["id"])
    assert result == LoadResult(inserted=1, updated=2)
    assert rows_of(con, schema) == [(1, "a", 1), (2, "b", 20), (3, "c", None), (4, "d", 4)]


def assert_key_enforced(con, schema, enforced, row):
    """A second row with an existing key is refused exactly when the key is a constraint."""
    duplicate = f'INSERT INTO "{schema}"."t" VALUES {row}'
    if enforced:
        refused = pytest.raises(Exception, match="(?i)duplicate|unique|constraint")
        with refused, con.transaction():
            con.execute(duplicate)
        return
    with con.transaction():
        con.execute(duplicate)
    key = row[0]
    assert con.execute(f'SELECT count(*) FROM "{schema}"."t" WHERE id = {key}') == [(2,)]


@pytest.mark.parametrize("wanted", [None, True, False])
def test_merge_created_target_gets_the_key_constraint_asked_for(engine, wanted):
    con, schema = engine
    run(con, schema, "merge", [{"id": 1, "v": "a"}], primary_key=["id"], key_constraint=wanted)
    enforced = con.capabilities.key_constraints if wanted is None else wanted
    assert_key_enforced(con, schema, enforced, (1, "again"))


def test_duckdb_targets_keep_no_key_constraint_by_default_postgres_does():
    from crane.connectors.duckdb import DuckDBConnector
    from crane.connectors.postgres import PostgresConnector

    assert DuckDBConnector.capabilities.key_constraints is False
    assert PostgresConnector.capabilities.key_constraints is True


def test_merge_of_an_incremental_window_takes_a_moved_cursor_as_the_change(engine):
    con, schema = engine
    first = [{"id": 1, "ts": 10, "v": "a"}, {"id": 2, "ts": 10, "v": "b"}]
    run(con, schema, "merge", first, primary_key=["id"])
    window = [
        {"id": 1, "ts": 10, "v": "a"},  # re-read at the window's boundary: unchanged
        {"id": 2, "ts": 20, "v": "B"},  # rewritten by the source: its cursor moved
        {"id": 3, "ts": 20, "v": "c"},  # new
    ]
    result = run(con, schema, "merge", window, primary_key=["id"], changed_by="ts")
    assert result == LoadResult(inserted=1, updated=1)
    assert rows_of(con, schema) == [(1, 10, "a"), (2, 20, "B"), (3, 20, "c")]
    # the cursor alone decides: a value change under an unmoved cursor is not a change
    stale = [{"id": 3, "ts": 20, "v": "other"}]
    result = run(con, schema, "merge", stale, primary_key=["id"], changed_by="ts")
    assert result == LoadResult()
    assert rows_of(con, schema)[-1] == (3, 20, "c")
    # without a cursor (full extracts, backfills) every column is compared
    assert run(con, schema, "merge", stale, primary_key=["id"]) == LoadResult(updated=1)
    assert rows_of(con, schema)[-1] == (3, 20, "other")


@pytest.mark.parametrize(
    ("batch", "expected", "counts"),
    [
        # every key beyond the target's range: new rows, no join with the target
        ([(10, 5, "n"), (11, 5, "m")], [(1, 1, "a"), (2, 1, "b"), (3, 1, "c"), (10, 5, "n"),
                                         (11, 5, "m")], LoadResult(inserted=2)),
        # every key changed: the DELETE's count says so, a plain INSERT follows
        ([(1, 5, "A"), (3, 5, "C")], [(1, 5, "A"), (2, 1, "b"), (3, 5, "C")],
         LoadResult(updated=2)),
        # changed + new inside the range, nothing unchanged
        ([(1, 5, "A"), (0, 5, "z")], [(0, 5, "z"), (1, 5, "A"), (2, 1, "b"), (3, 1, "c")],
         LoadResult(inserted=1, updated=1)),
        # changed + unchanged + new: the unchanged row is left alone
        ([(1, 5, "A"), (2, 1, "ignored"), (0, 5, "z")],
         [(0, 5, "z"), (1, 5, "A"), (2, 1, "b"), (3, 1, "c")],
         LoadResult(inserted=1, updated=1)),
        # only unchanged rows
        ([(2, 1, "ignored")], [(1, 1, "a"), (2, 1, "b"), (3, 1, "c")], LoadResult()),
    ],
)  # fmt: skip
def test_merge_of_a_window_by_batch_shape(engine, batch, expected, counts):
    """Each order of statements the merge may take gives the same rows and counts."""
    con, schema = engine
    first = [{"id": i, "ts": 1, "v": v} for i, v in ((1, "a"), (2, "b"), (3, "c"))]
    run(con, schema, "merge", first, primary_key=["id"])
    window = [{"id": i, "ts": ts, "v": v} for i, ts, v in batch]
    assert run(con, schema, "merge", window, primary_key=["id"], changed_by="ts") == counts
    assert rows_of(con, schema) == expected


def test_merge_composite_key_is_compared_column_by_column(engine):
    con, schema = engine
    # Concatenated, (1, '23') and (12, '3') would both read '123' and collide.
    first = [{"a": 1, "b": "23", "v": "x"}, {"a": 12, "b": "3", "v": "y"}]
    assert run(con, schema, "merge", first, primary_key=["a", "b"]) == LoadResult(inserted=2)
    second = [{"a": 12, "b": "3", "v": "Y"}, {"a": 1, "b": "3", "v": "z"}]
    assert run(con, schema, "merge", second, primary_key=["a", "b"]) == LoadResult(
        inserted=1, updated=1
    )
    assert rows_of(con, schema, order="a, b") == [(1, "23", "x"), (1, "3", "z"), (12, "3", "Y")]


def test_delete_insert_replaces_rows_by_key(engine):
    con, schema = engine
    first = [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]
    run(con, schema, "delete_insert", first, primary_key=["id"])
    result = run(
        con, schema, "delete_insert", [{"id": 2, "v": "B"}, {"id": 3, "v": "c"}], primary_key=["id"]
    )
    assert result == LoadResult(inserted=1, updated=1)
    assert rows_of(con, schema) == [(1, "a"), (2, "B"), (3, "c")]


def test_replace_swaps_in_new_rows_and_keeps_the_key(engine):
    con, schema = engine
    run(con, schema, "replace", [{"id": i, "v": str(i)} for i in range(5)], primary_key=["id"])
    result = run(con, schema, "replace", [{"id": 7, "v": "seven"}], primary_key=["id"])
    assert result == LoadResult(inserted=1)
    assert rows_of(con, schema) == [(7, "seven")]
    tables = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = "
        f"'{schema}' ORDER BY table_name"
    )
    assert tables == [("stg",), ("t",)]  # no leftover swap table
    assert_key_enforced(con, schema, con.capabilities.key_constraints, (7, "again"))


def _tables(con, schema):
    return con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = "
        f"'{schema}' ORDER BY table_name"
    )


def test_replace_staged_beside_the_target_is_renamed_not_copied(engine):
    con, schema = engine
    beside = replace_staging(TableRef("t", schema))
    first = [{"id": i, "v": str(i)} for i in range(5)]
    assert run(con, schema, "replace", first, staging=beside, primary_key=["id"]).inserted == 5
    result = run(con, schema, "replace", [{"id": 7, "v": "x"}], staging=beside, primary_key=["id"])
    assert result == LoadResult(inserted=1)
    assert rows_of(con, schema) == [(7, "x")]
    renamed = con.capabilities.replace_by_rename  # else staged rows were copied
    assert _tables(con, schema) == ([("t",)] if renamed else [("t",), ("t__crane_staged",)])
    assert_key_enforced(con, schema, con.capabilities.key_constraints, (7, "again"))


def test_replace_staged_beside_a_differently_shaped_target_copies_into_its_shape(engine):
    con, schema = engine
    beside = replace_staging(TableRef("t", schema))
    run(con, schema, "replace", [{"id": 1, "v": "a", "old": 5}], staging=beside)
    run(con, schema, "replace", [{"id": 2, "v": "b"}], staging=beside)  # "old" not staged
    assert rows_of(con, schema) == [(2, "b", None)]
    run(con, schema, "replace", [{"id": 3, "v": 4, "old": 1}], staging=beside)  # v: int now
    assert rows_of(con, schema) == [(3, "4", 1)]  # the target keeps its text column


def test_replace_keeps_target_columns_the_source_dropped(engine):
    con, schema = engine
    run(con, schema, "replace", [{"id": 1, "v": "a", "old": 5}])
    run(con, schema, "replace", [{"id": 2, "v": "b"}])
    assert rows_of(con, schema) == [(2, "b", None)]


def test_failed_load_leaves_the_target_untouched(engine):
    con, schema = engine
    run(con, schema, "merge", [{"id": 1, "v": "a"}], primary_key=["id"])
    with pytest.raises(LoadError, match="no column 'w2'"):
        run(con, schema, "merge", [{"id": 1, "w2": "x"}], primary_key=["id"])
    assert rows_of(con, schema) == [(1, "a")]


@pytest.mark.parametrize("strategy", ["merge", "delete_insert", "append"])
def test_hard_deletes_remove_rows_missing_from_a_full_extract(engine, strategy):
    con, schema = engine
    first = [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 3, "v": "c"}]
    run(con, schema, strategy, first, primary_key=["id"], hard_deletes="delete", full=True)
    # an incremental batch never deletes
    partial = run(
        con,
        schema,
        strategy,
        [{"id": 3, "v": "c"}],
        primary_key=["id"],
        hard_deletes="delete",
        full=False,
    )
    assert partial.deleted == 0
    batch = [{"id": 1, "v": "a"}, {"id": 3, "v": "c"}]
    if strategy == "append":
        con.execute(f'DELETE FROM "{schema}"."t" WHERE "id" IN (1, 3)')
    result = run(con, schema, strategy, batch, primary_key=["id"], hard_deletes="delete", full=True)
    assert result.deleted == 1
    assert rows_of(con, schema) == [(1, "a"), (3, "c")]


@pytest.mark.parametrize("strategy", ["merge", "delete_insert", "replace"])
def test_soft_deletes_stamp_missing_rows_and_clear_reappearing_ones(engine, strategy):
    con, schema = engine
    load = {"primary_key": ["id"], "hard_deletes": "soft", "full": True}
    run(con, schema, strategy, [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], **load)
    gone = run(con, schema, strategy, [{"id": 1, "v": "a"}], run_at=RUN_1, **load)
    assert gone.soft_deleted == 1
    again = run(con, schema, strategy, [{"id": 1, "v": "a"}], run_at=RUN_2, **load)
    assert again.soft_deleted == 0  # already stamped: no redundant delete every run
    stamped = rows_of(con, schema, columns='"id", "_crane_deleted_at"')
    assert [(i, d is not None and d.astimezone(UTC)) for i, d in stamped] == [
        (1, False),
        (2, RUN_1),
    ]
    back = run(
        con, schema, strategy, [{"id": 1, "v": "a"}, {"id": 2, "v": "B"}], run_at=RUN_2, **load
    )
    assert back.soft_deleted == 0
    assert rows_of(con, schema) == [(1, "a", None), (2, "B", None)]


def test_soft_deletes_added_to_an_existing_target(engine):
    con, schema = engine
    run(con, schema, "merge", [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], primary_key=["id"])
    load = {"primary_key": ["id"], "hard_deletes": "soft", "full": True}
    assert run(con, schema, "merge", [{"id": 2, "v": "B"}], **load) == LoadResult(
        updated=1, soft_deleted=1
    )
    rows = rows_of(con, schema, columns='"id", "v", "_crane_deleted_at" IS NOT NULL')
    assert rows == [(1, "a", True), (2, "B", False)]


def test_merge_updates_a_row_that_only_reappears(engine):
    con, schema = engine
    load = {"primary_key": ["id"], "hard_deletes": "soft", "full": True}
    run(con, schema, "merge", [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], **load)
    run(con, schema, "merge", [{"id": 1, "v": "a"}], **load)
    back = run(con, schema, "merge", [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], **load)
    assert back == LoadResult(updated=1)  # same values, but the soft delete is cleared
    assert rows_of(con, schema) == [(1, "a", None), (2, "b", None)]


def test_replace_is_atomic_for_another_duckdb_connection(tmp_path):
    con = connect(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    run(con, "main", "replace", [{"id": i, "v": "old"} for i in range(3)], primary_key=["id"])
    con.write(pa.table({"id": [7], "v": ["new"]}).to_reader(), TableRef("stg", "main"), "replace")
    reader = con.cursor()  # a second connection to the same database
    spec = LoadSpec(strategy="replace", primary_key=["id"])
    with con.transaction():
        load_strategies.get("replace")(
            con,
            TableRef("stg", "main"),
            TableRef("t", "main"),
            spec,
            columns=["id", "v"],
            full_extract=True,
            run_at=RUN_1,
        )
        assert reader.execute('SELECT count(*), min("v") FROM "main"."t"').fetchall() == [
            (3, "old")
        ]
    assert reader.execute('SELECT count(*), min("v") FROM "main"."t"').fetchall() == [(1, "new")]
    reader.close()
    con.close()


def test_replace_by_rename_is_atomic_for_another_duckdb_connection(tmp_path):
    con = connect(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    table = TableRef("t", "main")
    run(con, "main", "replace", [{"id": i, "v": "old"} for i in range(3)], primary_key=["id"])
    beside = replace_staging(table)
    con.write(pa.table({"id": [7], "v": ["new"]}).to_reader(), beside, "replace")
    reader = con.cursor()  # a second connection to the same database
    spec = LoadSpec(strategy="replace", primary_key=["id"])
    with con.transaction():
        load_strategies.get("replace")(
            con, beside, table, spec, columns=["id", "v"], full_extract=True, run_at=RUN_1
        )
        assert reader.execute('SELECT count(*), min("v") FROM "main"."t"').fetchall() == [
            (3, "old")
        ]
    assert reader.execute('SELECT count(*), min("v") FROM "main"."t"').fetchall() == [(1, "new")]
    assert con.table_schema(beside) is None  # renamed: the rows were written once
    reader.close()
    con.close()


@pytest.mark.integration
@pytest.mark.slow
def test_replace_is_atomic_for_a_concurrent_reader_on_postgres(pg_schema):
    import psycopg

    con = open_pg()
    old, new = 20_000, 30_000
    run(con, pg_schema, "replace", [{"id": i, "v": "old"} for i in range(old)], primary_key=["id"])
    data = pa.table({"id": range(new), "v": ["new"] * new})
    con.write(data.to_reader(), TableRef("stg", pg_schema), "replace")
    seen: list[int] = []
    errors: list[Exception] = []
    done = threading.Event()

    def reader() -> None:
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as r:
            while not done.is_set():
                try:
                    seen.append(r.execute(f'SELECT count(*) FROM "{pg_schema}"."t"').fetchone()[0])
                except Exception as error:  # pragma: no cover - the failure we test against
                    errors.append(error)

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.05)
    spec = LoadSpec(strategy="replace", primary_key=["id"])
    with con.transaction():
        load_strategies.get("replace")(
            con,
            TableRef("stg", pg_schema),
            TableRef("t", pg_schema),
            spec,
            columns=["id", "v"],
            full_extract=True,
            run_at=RUN_1,
        )
        time.sleep(0.2)  # readers keep polling while the swap is uncommitted
    time.sleep(0.05)
    done.set()
    thread.join()
    con.close()
    assert not errors
    assert set(seen) == {old, new}


def _reference_merge(state: dict, batch: dict, full: bool) -> dict:
    """What a merge must do: upsert every batch row; a full extract also drops absent keys."""
    merged = {k: v for k, v in state.items() if k in batch or not full}
    merged.update(batch)
    return merged


_key = st.tuples(st.integers(0, 4), st.sampled_from(["x", "y", "xy"]))
_batch = st.dictionaries(_key, st.one_of(st.none(), st.integers(-3, 3)), max_size=8)
_strategy = st.sampled_from(["merge", "delete_insert"])


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    strategy=_strategy, batches=st.lists(st.tuples(_batch, st.booleans()), min_size=1, max_size=4)
)
def test_merge_of_random_batches_equals_a_dict_reference(tmp_path, strategy, batches):
    con = connect("duckdb:///:memory:")
    expected: dict = {}
    schema_ = pa.schema([("a", pa.int64()), ("b", pa.string()), ("v", pa.int64())])
    load = {"primary_key": ["a", "b"], "hard_deletes": "delete", "arrow_schema": schema_}
    load["allow_empty_extract"] = True  # the reference deletes everything on an empty full batch
    for batch, full in batches:
        rows = [{"a": a, "b": b, "v": v} for (a, b), v in batch.items()]
        before, expected = expected, _reference_merge(expected, batch, full)
        result = run(con, "main", strategy, rows, full=full, **load)
        assert result.inserted == sum(1 for k in batch if k not in before)
        assert result.deleted == len(before) + result.inserted - len(expected)
        if strategy == "merge":  # only changed rows count as updated
            changed = sum(1 for k, v in batch.items() if k in before and before[k] != v)
            assert result.updated == changed
        got = {(a, b): v for a, b, v in con.execute('SELECT "a", "b", "v" FROM "main"."t"')}
        assert got == expected
    con.close()


@pytest.mark.integration
def test_merge_compares_json_columns_as_text_on_postgres(pg_connector, pg_schema):
    """PostgreSQL's json type has no equality operator; the merge must still work."""
    con, stg = pg_connector, f'"{pg_schema}"."stg"'
    spec = LoadSpec(strategy="merge", primary_key=["id"])
    results = []
    for docs in (["{}", '{"a": 1}'], ["{}", '{"a": 2}']):
        con.execute(f"DROP TABLE IF EXISTS {stg}")
        con.execute(f"CREATE TABLE {stg} (id bigint, doc json)")
        con.execute(f"INSERT INTO {stg} VALUES (1, %s), (2, %s)", docs)
        with con.transaction():
            results.append(
                load_strategies.get("merge")(
                    con,
                    TableRef("stg", pg_schema),
                    TableRef("t", pg_schema),
                    spec,
                    columns=["id", "doc"],
                    full_extract=False,
                    run_at=RUN_1,
                )
            )
    assert results == [LoadResult(inserted=2), LoadResult(updated=1)]
    assert rows_of(con, pg_schema, columns='"id", "doc"::text') == [(1, "{}"), (2, '{"a": 2}')]


@pytest.mark.parametrize("strategy", ["merge", "delete_insert"])
def test_an_empty_full_extract_never_wipes_the_target_unless_allowed(engine, strategy):
    con, schema = engine
    load = {"primary_key": ["id"], "hard_deletes": "delete", "full": True}
    run(con, schema, strategy, [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], **load)
    empty = {"arrow_schema": pa.schema([("id", pa.int64()), ("v", pa.string())])}
    with pytest.raises(LoadError, match="full extract is empty; hard_deletes would remove all 2"):
        run(con, schema, strategy, [], **load, **empty)
    assert rows_of(con, schema) == [(1, "a"), (2, "b")]
    allowed = run(con, schema, strategy, [], allow_empty_extract=True, **load, **empty)
    assert allowed.deleted == 2 and rows_of(con, schema) == []


@pytest.mark.integration
def test_mysql_merge_of_an_incremental_window_leaves_unmoved_rows_alone(my_db):
    """MySQL's upsert (ON DUPLICATE KEY UPDATE) would rewrite every matched row: the rows
    whose cursor did not move are filtered out before it."""
    con = connect(f"mysql://root@127.0.0.1:3306/{my_db}")
    try:
        run(con, my_db, "merge", [{"id": 1, "ts": 10, "v": "a"}], primary_key=["id"])
        window = [{"id": 1, "ts": 10, "v": "stale"}, {"id": 2, "ts": 20, "v": "b"}]
        result = run(con, my_db, "merge", window, primary_key=["id"], changed_by="ts")
        assert result == LoadResult(inserted=1)
        query = f"SELECT id, ts, v FROM `{my_db}`.`t` ORDER BY id"
        assert [tuple(r) for r in con.execute(query)] == [(1, 10, "a"), (2, 20, "b")]
        moved = [{"id": 1, "ts": 30, "v": "A"}]
        result = run(con, my_db, "merge", moved, primary_key=["id"], changed_by="ts")
        assert result == LoadResult(updated=1)
        assert [tuple(r) for r in con.execute(query)] == [(1, 30, "A"), (2, 20, "b")]
    finally:
        con.close()


@pytest.mark.parametrize("strategy", ["merge", "delete_insert", "append"])
def test_a_first_load_staged_beside_the_missing_target_is_renamed_into_place(engine, strategy):
    con, schema = engine
    beside = replace_staging(TableRef("t", schema))
    first = [{"id": i, "v": str(i)} for i in range(3)]
    result = run(con, schema, strategy, first, staging=beside, primary_key=["id"])
    assert result == LoadResult(inserted=3)
    renamed = con.capabilities.replace_by_rename  # else staged rows were copied
    assert _tables(con, schema) == ([("t",)] if renamed else [("t",), ("t__crane_staged",)])
    again = [{"id": 2, "v": "two"}, {"id": 3, "v": "3"}]
    result = run(con, schema, strategy, again, primary_key=["id"])
    expected = LoadResult(inserted=2) if strategy == "append" else LoadResult(1, 1)
    assert result == expected
    if strategy != "append":
        assert rows_of(con, schema) == [(0, "0"), (1, "1"), (2, "two"), (3, "3")]
        keyed = con.capabilities.key_constraints
        assert_key_enforced(con, schema, keyed, (0, "again"))
    else:  # an appended log may repeat keys: never a key constraint
        assert len(rows_of(con, schema)) == 5
        assert_key_enforced(con, schema, False, (0, "again"))
