"""Schema diffs (table-driven) and their application on real DuckDB and PostgreSQL."""

from __future__ import annotations

import pyarrow as pa
import pytest

from crane.connectors.base import TableRef, connect
from crane.errors import SchemaChangeError
from crane.pipelines.schema import apply_schema_change, diff_schema, supertype

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

WIDEN = [
    (pa.int64(), pa.int32(), pa.int64()),
    (pa.int32(), pa.int8(), pa.int32()),
    (pa.float64(), pa.float32(), pa.float64()),
    (pa.decimal128(12, 2), pa.decimal128(10, 2), pa.decimal128(12, 2)),
    (pa.decimal128(10, 4), pa.decimal128(10, 2), pa.decimal128(12, 4)),  # both digit kinds kept
    (pa.decimal128(12, 2), pa.int32(), pa.decimal128(12, 2)),  # int into decimal, enough digits
    (pa.int32(), pa.decimal128(9, 0), pa.decimal128(10, 0)),
    (pa.timestamp("us"), pa.date32(), pa.timestamp("us")),
    (pa.float64(), pa.int32(), pa.float64()),
]
FITS = [
    (pa.int32(), pa.int64()),
    (pa.large_string(), pa.string()),
    (pa.timestamp("ns", tz="UTC"), pa.timestamp("us", tz="Europe/Paris")),
    (pa.decimal128(10, 2), pa.decimal128(12, 2)),
    (pa.date32(), pa.timestamp("us")),
    (pa.null(), pa.int64()),
    (pa.dictionary(pa.int32(), pa.string()), pa.string()),
]
INCOMPATIBLE = [
    (pa.int64(), pa.string()),  # text → integer
    (pa.string(), pa.int64()),  # integer → text: a different kind of value, not a widening
    (pa.timestamp("us", tz="UTC"), pa.timestamp("us")),
    (pa.timestamp("us"), pa.timestamp("us", tz="UTC")),
    (pa.int64(), pa.float64()),  # float → int would lose fractions
    (pa.float64(), pa.int64()),  # int64 → double loses digits above 2**53
    (pa.bool_(), pa.int32()),
    (pa.decimal128(38, 10), pa.decimal128(38, 0)),  # no decimal(≤38) holds both
]


@pytest.mark.parametrize(("source", "target", "expected"), WIDEN)
def test_widening_picks_the_narrowest_type_holding_both(source, target, expected):
    assert supertype(source, target) == ("widen", expected)


@pytest.mark.parametrize(("source", "target"), FITS)
def test_a_narrower_or_equal_source_needs_no_change(source, target):
    assert supertype(source, target) == ("fits", None)


@pytest.mark.parametrize(("source", "target"), INCOMPATIBLE)
def test_incompatible_changes_are_recognised(source, target):
    assert supertype(source, target) == ("incompatible", None)


def test_diff_sorts_changes_and_ignores_crane_columns():
    source = pa.schema(
        [
            ("id", pa.int64()),
            ("price", pa.decimal128(12, 2)),
            ("new", pa.string()),
            ("when", pa.string()),
            ("_crane_row", pa.int64()),
        ]
    )
    target = pa.schema(
        [
            ("id", pa.int64()),
            ("price", pa.decimal128(10, 2)),
            ("gone", pa.int32()),
            ("when", pa.timestamp("us")),
            ("_crane_deleted_at", pa.timestamp("us")),
        ]
    )
    diff = diff_schema(source, target)
    assert diff.source_columns == ["id", "price", "new", "when"]
    assert diff.to_dict() == {
        "new_table": False,
        "added": [{"column": "new", "type": "string"}],
        "removed": ["gone"],
        "widened": [{"column": "price", "from": "decimal128(10, 2)", "to": "decimal128(12, 2)"}],
        "incompatible": [{"column": "when", "from": "timestamp[us]", "to": "string"}],
        "applied": [],
    }
    assert diff_schema(source, None).new_table
    assert not diff_schema(target, target)


def test_varchar_widens_to_text_when_the_source_declares_longer_text():
    def text(sql_type):
        return pa.schema([pa.field("s", pa.string(), metadata={"crane.sql_type": sql_type})])

    assert diff_schema(text("character varying(10)"), text("character varying(10)")).widened == []
    assert diff_schema(text("character varying(5)"), text("character varying(10)")).widened == []
    [change] = diff_schema(text("text"), text("character varying(10)")).widened
    assert change.column == "s" and change.new_sql_type().sql("postgres") == "TEXT"


def test_unconstrained_numeric_target_holds_any_decimal():
    target = pa.schema(
        [pa.field("n", pa.decimal128(38, 0), metadata={"crane.sql_type": "numeric"})]
    )
    assert not diff_schema(pa.schema([("n", pa.decimal128(10, 2))]), target)


@pytest.fixture(scope="module")
def pg_connector():
    con = connect(PG_URL)
    yield con
    con.close()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.integration)])
def engine(request, tmp_path):
    if request.param == "duckdb":
        con = connect(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
        con.execute('CREATE SCHEMA "w"')
        yield con, "w"
        con.close()
    else:
        yield request.getfixturevalue("pg_connector"), request.getfixturevalue("pg_schema")


def _table(con, schema):
    con.execute(
        f'CREATE TABLE "{schema}"."t" ("id" BIGINT PRIMARY KEY, "qty" INTEGER, '
        '"price" DECIMAL(10, 2), "old" TEXT)'
    )
    con.execute(f'INSERT INTO "{schema}"."t" VALUES (1, 2, 3.50, \'x\')')
    return TableRef("t", schema)


SOURCE = pa.schema(
    [
        ("id", pa.int64()),
        ("qty", pa.int64()),
        ("price", pa.decimal128(12, 2)),
        ("note", pa.string()),
    ]
)


def test_evolve_adds_and_widens_columns_and_keeps_removed_ones(engine):
    con, schema = engine
    table = _table(con, schema)
    diff = diff_schema(SOURCE, con.table_schema(table))
    assert [f.name for f in diff.added] == ["note"] and diff.removed == ["old"]
    with con.transaction():
        columns = apply_schema_change(con, table, diff, "evolve", "orders")
    assert columns == ["id", "qty", "price", "note"]
    assert len(diff.applied) == 3 and "ADD COLUMN" in diff.applied[0]
    after = con.table_schema(table)
    assert after.field("qty").type == pa.int64()
    assert after.field("price").type == pa.decimal128(12, 2)
    assert after.names == ["id", "qty", "price", "old", "note"]
    con.execute(f'INSERT INTO "{schema}"."t" VALUES (2, 9000000000, 1234567890.12, NULL, \'n\')')
    assert not diff_schema(SOURCE, con.table_schema(table)).added
    assert con.execute(f'SELECT "qty", "old" FROM "{schema}"."t" ORDER BY "id"') == [
        (2, "x"),
        (9000000000, None),
    ]


def test_freeze_refuses_a_new_column_and_changes_nothing(engine):
    con, schema = engine
    table = _table(con, schema)
    diff = diff_schema(SOURCE, con.table_schema(table))
    with pytest.raises(SchemaChangeError) as caught:
        apply_schema_change(con, table, diff, "freeze", "orders")
    assert caught.value.pipeline == "orders" and caught.value.column == "note"
    assert "frozen" in str(caught.value) and "qty" in str(caught.value)
    assert con.table_schema(table).field("qty").type == pa.int32()


def test_discard_leaves_new_columns_out_of_the_load(engine):
    con, schema = engine
    table = _table(con, schema)
    source = pa.schema([("id", pa.int64()), ("qty", pa.int32()), ("note", pa.string())])
    diff = diff_schema(source, con.table_schema(table))
    assert apply_schema_change(con, table, diff, "discard", "orders") == ["id", "qty"]
    assert "note" not in con.table_schema(table).names


@pytest.mark.parametrize("policy", ["evolve", "freeze", "discard"])
def test_incompatible_change_fails_before_anything_changes(engine, policy):
    con, schema = engine
    table = _table(con, schema)
    source = pa.schema([("id", pa.int64()), ("qty", pa.string()), ("note", pa.string())])
    diff = diff_schema(source, con.table_schema(table))
    with pytest.raises(SchemaChangeError) as caught:
        apply_schema_change(con, table, diff, policy, "orders")
    error = caught.value
    assert (error.pipeline, error.table, error.column) == ("orders", f"{schema}.t", "qty")
    assert "int32" in str(error) and "string" in str(error)
    assert "note" not in con.table_schema(table).names
