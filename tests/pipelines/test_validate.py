"""Staging validation and quarantine on real DuckDB files and a real PostgreSQL server."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pyarrow as pa
import pytest

from crane.config.spec import PipelineSpec
from crane.connectors.base import TableRef, connect
from crane.errors import LoadError, QuarantineLimitError
from crane.pipelines.validate import ValidationResult, check_ratio, validate_staging

PG_DSN = "host=127.0.0.1 user=postgres dbname=test"


@pytest.fixture(scope="module")
def pg_connector():
    """A fresh database: ``_crane.quarantine`` is one fixed table, shared by nobody else."""
    import psycopg

    name = f"q_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    con = connect(f"postgresql://postgres@127.0.0.1:5432/{name}")
    yield con
    con.close()
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.integration)])
def engine(request, tmp_path):
    """(connector, schema) in a fresh DuckDB file, or a fresh schema of a fresh PG database."""
    if request.param == "duckdb":
        con = connect(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
        con.execute('CREATE SCHEMA "w"')
        yield con, "w"
        con.close()
        return
    con, schema = request.getfixturevalue("pg_connector"), f"t_{uuid.uuid4().hex[:10]}"
    con.execute(f'CREATE SCHEMA "{schema}"')
    yield con, schema


def pipeline(schema, **load):
    columns = load.pop("columns", {})
    return PipelineSpec(
        name="orders",
        source={"table": "orders"},
        target={"table": "orders", "schema": schema},
        load={"strategy": "merge", "primary_key": ["id"], **load},
        columns=columns,
    )


def stage(con, schema, data: dict, arrow_schema=None) -> TableRef:
    staging = TableRef("stg", schema)
    con.write(pa.table(data, schema=arrow_schema).to_reader(), staging, "replace")
    return staging


def validate(con, staging, spec, rows_in):
    run_id = f"run-{staging.schema}"
    with con.transaction():
        return validate_staging(
            con, staging, spec, run_id=run_id, source_name="pg.orders", rows_in=rows_in
        )


def quarantined(con, schema):
    return con.execute(
        'SELECT "column_name", "reason", "row_json", "pipeline", "source", "target_table" '
        f'FROM "_crane"."quarantine" WHERE "run_id" = \'run-{schema}\''
    )


def test_a_clean_batch_passes_untouched(engine):
    con, schema = engine
    staging = stage(con, schema, {"id": [1, 2, 3], "v": ["a", None, "c"]})
    result = validate(con, staging, pipeline(schema), 3)
    assert result == ValidationResult(rows_in=3, rows_valid=3, rows_quarantined=0)
    assert con.execute(f'SELECT count(*) FROM "{schema}"."stg"') == [(3,)]


def test_contract_violations_are_quarantined_with_value_and_reason(engine):
    con, schema = engine
    staging = stage(
        con,
        schema,
        {
            "id": [1, 2, 3, 4, 5],
            "price": ["1.50", "abc", "12345678901.00", None, "7"],
            "qty": [1, 2, 3, 4, None],
            "code": ["ab", "abc", "x", "abcd", "y"],
        },
    )
    columns = {
        "price": {"type": "decimal(10,2)"},
        "qty": {"nullable": False},
        "code": {"type": "varchar(3)"},
    }
    result = validate(con, staging, pipeline(schema, columns=columns), 5)
    assert (result.rows_in, result.rows_valid, result.rows_quarantined) == (5, 1, 4)
    assert result.reasons == {
        "price: does not fit DECIMAL(10,2)": 2,
        "qty: NULL in NOT NULL column": 1,
        "code: does not fit VARCHAR(3)": 1,
    }
    rows = sorted(quarantined(con, schema), key=lambda r: json.loads(r[2])["id"])
    assert [(c, r) for c, r, *_ in rows] == [
        ("price", "value 'abc' does not fit DECIMAL(10,2)"),
        ("price", "value '12345678901.00' does not fit DECIMAL(10,2)"),
        ("code", "value 'abcd' does not fit VARCHAR(3)"),
        ("qty", "NULL in NOT NULL column"),
    ]
    assert json.loads(rows[0][2]) == {"id": 2, "price": "abc", "qty": 2, "code": "abc"}
    assert {r[3:] for r in rows} == {("orders", "pg.orders", f"{schema}.orders")}
    # the survivors carry the declared type, so the target is created with it
    assert con.execute(f'SELECT "id", "price", "code" FROM "{schema}"."stg"') == [
        (1, Decimal("1.50"), "ab")
    ]
    assert con.table_schema(staging).field("price").type == pa.decimal128(10, 2)


def test_typed_columns_are_checked_only_where_values_can_fail(engine):
    con, schema = engine
    data = {
        "id": [1, 2],
        "qty": pa.array([1, 3_000_000_000], pa.int64()),  # bigint declared int: range checked
        "price": pa.array([Decimal("1.50"), None], pa.decimal128(10, 2)),  # fits by its type
    }
    staging = stage(con, schema, data)
    columns = {"price": {"type": "decimal(12,2)"}, "qty": {"type": "int"}}
    result = validate(con, staging, pipeline(schema, columns=columns), 2)
    assert result.reasons == {"qty: does not fit INT": 1}
    assert con.table_schema(staging).field("price").type == pa.decimal128(10, 2)
    assert con.table_schema(staging).field("qty").type == pa.int32()


def test_null_primary_key_is_quarantined(engine):
    con, schema = engine
    staging = stage(con, schema, {"id": [1, None, 3], "v": ["a", "b", "c"]})
    result = validate(con, staging, pipeline(schema), 3)
    assert result.reasons == {"id: NULL in primary key column": 1}
    assert result.rows_valid == 2


def test_duplicate_keys_fail_the_run_naming_a_sample_key(engine):
    con, schema = engine
    staging = stage(con, schema, {"id": [1, 2, 2, 3], "v": ["a", "b", "B", "c"]})
    with pytest.raises(LoadError) as caught:
        validate(con, staging, pipeline(schema), 4)
    error = caught.value
    assert (error.pipeline, error.table, error.column) == ("orders", f"{schema}.orders", "id")
    assert "id=2" in str(error) and "1 rows repeat" in str(error)


def test_duplicate_keys_quarantine_all_but_the_last_by_row_ordinal(engine):
    con, schema = engine
    data = {
        "a": [1, 1, 1, 2, 1],
        "b": ["x", "x", "y", "x", "x"],
        "v": ["first", "third", "only", "only", "second"],
        "_crane_row": [1, 3, 4, 5, 2],
    }
    staging = stage(con, schema, data)
    spec = pipeline(schema, primary_key=["a", "b"], duplicate_keys="quarantine")
    result = validate(con, staging, spec, 5)
    assert (result.rows_valid, result.rows_quarantined) == (3, 2)
    assert result.reasons == {"a, b: duplicate key": 2}
    assert con.execute(f'SELECT "a", "b", "v" FROM "{schema}"."stg" ORDER BY "a", "b"') == [
        (1, "x", "third"),
        (1, "y", "only"),
        (2, "x", "only"),
    ]
    kept = sorted(json.loads(r[2])["v"] for r in quarantined(con, schema))
    assert kept == ["first", "second"]


def test_keep_last_drops_earlier_rows_and_counts_them(engine):
    con, schema = engine
    staging = stage(con, schema, {"id": [1, 2, 1, 1], "v": ["old", "b", "mid", "new"]})
    result = validate(con, staging, pipeline(schema, duplicate_keys="keep_last"), 4)
    assert result == ValidationResult(
        rows_in=4,
        rows_valid=2,
        rows_quarantined=0,
        reasons={"id: duplicate key, earlier rows dropped": 2},
        rows_deduplicated=2,
    )
    assert con.execute(f'SELECT "id", "v" FROM "{schema}"."stg" ORDER BY "id"') == [
        (1, "new"),
        (2, "b"),
    ]


def test_staging_must_hold_what_was_extracted(engine):
    con, schema = engine
    staging = stage(con, schema, {"id": [1, 2], "v": ["a", "b"]})
    with pytest.raises(LoadError, match="staging holds 2 rows but 3 were extracted"):
        validate(con, staging, pipeline(schema), 3)


def test_missing_key_or_declared_column_is_a_clear_error(engine):
    con, schema = engine
    staging = stage(con, schema, {"code": [1], "v": ["a"]})
    with pytest.raises(LoadError, match="primary key column is missing") as caught:
        validate(con, staging, pipeline(schema), 1)
    assert caught.value.column == "id"
    spec = pipeline(schema, primary_key=["code"], columns={"w": {"nullable": False}})
    with pytest.raises(LoadError, match="declared column is missing") as caught:
        validate(con, staging, spec, 1)
    assert caught.value.column == "w"


def test_quarantine_ratio_limit():
    spec = pipeline("w", max_quarantine_ratio=0.25)
    check_ratio(ValidationResult(4, 3, 1, {"x: NULL": 1}), spec)  # exactly at the limit
    check_ratio(ValidationResult(0, 0, 0), spec)
    with pytest.raises(QuarantineLimitError, match=r"2 of 4 rows quarantined \(50.0%\)") as e:
        check_ratio(ValidationResult(4, 2, 2, {"x: NULL": 2}), spec)
    assert e.value.pipeline == "orders" and e.value.table == "w.orders"


def test_runner_publishes_valid_rows_and_quarantines_the_rest_end_to_end(tmp_path):
    """Through the real runner: contracts, duplicate keys, schema evolution and the ratio."""
    import duckdb

    from crane.pipelines.runner import run_pipeline

    source_path, target_url = tmp_path / "source.duckdb", f"duckdb:///{tmp_path / 'wh.duckdb'}"
    src = duckdb.connect(str(source_path))
    src.execute(
        "CREATE TABLE orders AS SELECT * FROM (VALUES (1, '1.50', 'a'), (2, 'abc', 'b'), "
        "(3, '3.00', 'c'), (3, '3.50', 'c2'), (4, '4.00', NULL)) t(id, price, name)"
    )
    src.close()
    spec = PipelineSpec(
        name="orders",
        source={"connection": "source", "table": "orders"},
        target={"table": "orders"},
        load={
            "strategy": "merge",
            "primary_key": ["id"],
            "duplicate_keys": "quarantine",
            "max_quarantine_ratio": 0.6,
        },
        columns={"price": {"type": "decimal(10,2)"}, "name": {"nullable": False}},
        max_retries=0,
    )
    urls = {"source_url": f"duckdb:///{source_path}", "target_url": target_url}
    first = run_pipeline(spec, **urls).raise_for_status()
    assert (first.rows_extracted, first.rows_loaded, first.rows_quarantined) == (5, 2, 3)
    with connect(target_url) as con:
        assert con.execute('SELECT "id", "price", "name" FROM "main"."orders" ORDER BY 1') == [
            (1, Decimal("1.50"), "a"),
            (3, Decimal("3.50"), "c2"),
        ]
        reasons = con.execute(
            'SELECT "column_name", "reason" FROM "_crane"."quarantine" WHERE "run_id" = ? '
            "ORDER BY 1, 2",
            [first.run_id],
        )
    assert reasons == [
        ("id", "duplicate key in batch (a later row with this key was kept)"),
        ("name", "NULL in NOT NULL column"),
        ("price", "value 'abc' does not fit DECIMAL(10,2)"),
    ]

    src = duckdb.connect(str(source_path))
    src.execute("ALTER TABLE orders ADD COLUMN qty INTEGER")
    src.execute("DELETE FROM orders WHERE id IN (2, 4) OR name = 'c'")
    src.execute("UPDATE orders SET qty = id * 10")
    src.close()
    second = run_pipeline(spec, **urls).raise_for_status()
    assert [f["column"] for f in second.schema_diff["added"]] == ["qty"]
    with connect(target_url) as con:
        assert con.execute('SELECT "id", "qty" FROM "main"."orders" ORDER BY 1') == [
            (1, 10),
            (3, 30),
        ]

    src = duckdb.connect(str(source_path))
    src.execute("UPDATE orders SET price = 'bad'")
    src.close()
    third = run_pipeline(spec, **urls)
    assert third.status == "failed" and "max_quarantine_ratio" in str(third.error)
    with connect(target_url) as con:  # nothing of the failed run was published
        assert con.execute('SELECT "price" FROM "main"."orders" ORDER BY "id"') == [
            (Decimal("1.50"),),
            (Decimal("3.50"),),
        ]


def test_a_value_with_more_decimals_than_declared_is_quarantined_not_rounded(engine):
    """A cast to decimal(p,s) rounds (1.12345 -> 1.12) on both engines: digits were lost
    silently. An exact value (decimal or text) with a non-zero digit past the declared
    scale does not fit; trailing zeros do."""
    con, schema = engine
    exact = ["1.12345", "1.50000", "-0.00100", "2", "3"]
    data = {
        "id": [1, 2, 3, 4, 5],
        "exact": pa.array([Decimal(v) for v in exact], pa.decimal128(12, 5)),
        "text": ["1", "1.500", "-3", None, "1.505"],
    }
    staging = stage(con, schema, data)
    columns = {n: {"type": "decimal(5,2)"} for n in ("exact", "text")}
    result = validate(con, staging, pipeline(schema, columns=columns), 5)
    assert result.reasons == {
        "exact: does not fit DECIMAL(5,2)": 2,
        "text: does not fit DECIMAL(5,2)": 1,
    }
    assert {r for _, r, *_ in quarantined(con, schema)} == {
        "value '1.12345' does not fit DECIMAL(5,2)",
        "value '-0.00100' does not fit DECIMAL(5,2)",
        "value '1.505' does not fit DECIMAL(5,2)",
    }
    assert con.execute(f'SELECT "id", "exact", "text" FROM "{schema}"."stg" ORDER BY 1') == [
        (2, Decimal("1.50"), Decimal("1.50")),
        (4, Decimal("2.00"), None),
    ]


@pytest.mark.parametrize(
    "target", ["duckdb", pytest.param("postgres", marks=pytest.mark.integration)]
)
def test_a_batch_over_the_quarantine_ratio_keeps_its_quarantined_rows(tmp_path, target, request):
    """The ratio failure says "inspect _crane.quarantine for this run", but the rows were
    rolled back with the refused batch. Now they and the failed run record commit; no row
    is published and the watermark stays."""
    import duckdb

    from crane.pipelines.runner import run_pipeline

    source_path = tmp_path / "source.duckdb"
    src = duckdb.connect(str(source_path))
    src.execute(
        "CREATE TABLE orders AS SELECT * FROM (VALUES (1, TIMESTAMP '2024-01-01', 'a'), "
        "(2, TIMESTAMP '2024-01-02', NULL), (3, TIMESTAMP '2024-01-03', NULL)) t(id, ts, name)"
    )
    src.close()
    if target == "duckdb":
        target_url, schema = f"duckdb:///{tmp_path / 'wh.duckdb'}", "main"
    else:
        target_url = request.getfixturevalue("pg_connector").url.raw
        schema = f"t_{uuid.uuid4().hex[:10]}"
    spec = PipelineSpec(
        name=f"ratio_{uuid.uuid4().hex[:6]}",
        source={"table": "orders"},
        target={"table": "orders", "schema": schema},
        extract={"strategy": "incremental", "cursor": "ts"},
        load={"strategy": "merge", "primary_key": ["id"], "max_quarantine_ratio": 0.5},
        columns={"name": {"nullable": False}},
        max_retries=0,
    )
    result = run_pipeline(spec, source_url=f"duckdb:///{source_path}", target_url=target_url)
    assert result.status == "failed" and "max_quarantine_ratio" in str(result.error)
    assert (result.rows_extracted, result.rows_loaded, result.rows_quarantined) == (3, 0, 2)
    with connect(target_url) as con:
        rows = con.execute(
            'SELECT "reason", "row_json" FROM "_crane"."quarantine" WHERE "run_id" = %s'
            if target == "postgres"
            else 'SELECT "reason", "row_json" FROM "_crane"."quarantine" WHERE "run_id" = ?',
            [result.run_id],
        )
        assert sorted(json.loads(j)["id"] for _, j in rows) == [2, 3]
        assert {r for r, _ in rows} == {"NULL in NOT NULL column"}
        runs = con.execute(
            'SELECT "status", "rows_loaded", "rows_quarantined" FROM "_crane"."runs" '
            f"WHERE \"pipeline\" = '{spec.name}'"
        )
        assert runs == [("failed", 0, 2)]  # recorded once, with what it quarantined
        assert con.table_schema(TableRef("orders", schema)) is None  # nothing published
        marks = con.execute(
            f'SELECT count(*) FROM "_crane"."watermarks" WHERE "pipeline" = \'{spec.name}\''
        )
        assert marks == [(0,)]


@pytest.mark.parametrize("policy", ["evolve", "freeze"])
def test_rows_breaking_the_existing_targets_own_rules_are_quarantined(engine, policy):
    """A NULL for a NOT NULL column of a target the user created failed the whole
    publish with the engine's error. It is quarantined like a contract violation; so is
    text longer than the target's varchar(n) when no ``evolve`` widens the column."""
    con, schema = engine
    columns = "id int PRIMARY KEY, name text NOT NULL, code varchar(3)"
    con.execute(f'CREATE TABLE "{schema}"."orders" ({columns})')
    staging = stage(
        con, schema, {"id": [1, 2, 3], "name": ["a", None, "c"], "code": ["ab", "x", "abcd"]}
    )
    result = validate(con, staging, pipeline(schema, on_schema_change=policy), 3)
    expected = {"name: NULL in NOT NULL column of the target": 1}
    if policy == "freeze" and con.dialect == "postgres":  # DuckDB keeps no varchar length
        expected["code: longer than 3 characters (target)"] = 1
    assert result.reasons == expected
    reasons = {r for _, r, *_ in quarantined(con, schema)}
    assert "NULL in NOT NULL column of the target" in reasons
    if len(expected) == 2:
        assert "value 'abcd' is longer than the target's 3 characters" in reasons


def test_keep_last_keeps_the_newest_version_by_the_cursor_not_by_scan_order(engine):
    """Staging holds rows in the order the source was scanned (heap order on PostgreSQL:
    a newer version may sit on an earlier page); the version kept was the one scanned
    last, so an older version could overwrite a newer one."""
    con, schema = engine
    staging = stage(
        con,
        schema,
        {"id": [1, 2, 1, 1], "ts": [30, 5, 10, None], "v": ["newest", "b", "older", "none"]},
    )
    spec = PipelineSpec(
        name="orders",
        source={"table": "orders"},
        target={"table": "orders", "schema": schema},
        extract={"strategy": "incremental", "cursor": "ts"},
        load={"strategy": "merge", "primary_key": ["id"], "duplicate_keys": "keep_last"},
    )
    result = validate(con, staging, spec, 4)
    assert result.rows_deduplicated == 2
    assert con.execute(f'SELECT "id", "v" FROM "{schema}"."stg" ORDER BY "id"') == [
        (1, "newest"),
        (2, "b"),
    ]


@pytest.mark.integration
def test_a_mysql_target_quarantines_without_a_row_identity(tmp_path, my_db):
    """On MySQL staging has no row id: every quarantine failed ("staging needs a _crane_row
    column"), after the quarantine table's DDL had already committed the run's work."""
    import duckdb
    import pymysql

    from crane.pipelines.runner import run_pipeline

    source = tmp_path / "source.duckdb"
    src = duckdb.connect(str(source))
    src.execute("CREATE TABLE o AS SELECT i AS id, 'n' || i AS name FROM range(1, 12) t(i)")
    src.execute("UPDATE o SET name = NULL WHERE id = 5")
    src.close()
    my = pymysql.connect(host="127.0.0.1", user="root", database=my_db, autocommit=True)
    with my.cursor() as cur:
        cur.execute("CREATE TABLE o (id bigint PRIMARY KEY, name varchar(20) NOT NULL)")
    spec = PipelineSpec(
        name=f"my_{uuid.uuid4().hex[:6]}",
        source={"table": "o"},
        target={"table": "o"},
        load={"strategy": "merge", "primary_key": ["id"]},
        max_retries=0,
    )
    urls = {
        "source_url": f"duckdb:///{source}",
        "target_url": f"mysql://root@127.0.0.1:3306/{my_db}",
    }
    result = run_pipeline(spec, **urls).raise_for_status()
    assert (result.rows_loaded, result.rows_quarantined) == (10, 1)
    with my.cursor() as cur:
        cur.execute("SELECT count(*) FROM o")
        assert cur.fetchall() == ((10,),)
        cur.execute(
            "SELECT column_name, reason FROM _crane.quarantine WHERE run_id = %s", [result.run_id]
        )
        assert cur.fetchall() == (("name", "NULL in NOT NULL column of the target"),)
        cur.execute("DELETE FROM _crane.quarantine WHERE run_id = %s", [result.run_id])
    my.close()


@pytest.mark.parametrize(
    ("strategy", "mode"), [("merge", "delete"), ("merge", "soft"), ("replace", "soft")]
)
def test_a_quarantined_row_is_not_taken_for_a_deleted_one(tmp_path, strategy, mode):
    """Hard-delete detection compared the target with staging after bad rows had left it:
    a row quarantined for a NULL was deleted (or flagged deleted) from the target although
    it is still in the source."""
    import duckdb

    from crane.pipelines.runner import run_pipeline

    source = tmp_path / "source.duckdb"
    src = duckdb.connect(str(source))
    src.execute("CREATE TABLE o AS SELECT i AS id, 'n' || i AS name FROM range(1, 21) t(i)")
    src.close()
    spec = PipelineSpec(
        name="hd",
        source={"table": "o"},
        target={"table": "o"},
        extract={"strategy": "full"},
        load={"strategy": strategy, "primary_key": ["id"], "hard_deletes": mode},
        columns={"name": {"nullable": False}},
        max_retries=0,
    )
    urls = {"source_url": f"duckdb:///{source}", "target_url": f"duckdb:///{tmp_path / 'w.duckdb'}"}
    run_pipeline(spec, **urls).raise_for_status()
    src = duckdb.connect(str(source))
    src.execute("UPDATE o SET name = NULL WHERE id = 5")
    src.execute("DELETE FROM o WHERE id = 7")  # a real delete still counts
    src.close()
    second = run_pipeline(spec, **urls).raise_for_status()
    assert second.rows_quarantined == 1
    assert second.load["deleted"] + second.load["soft_deleted"] == 1
    with connect(urls["target_url"]) as con:
        kept = con.execute('SELECT * FROM "main"."o" WHERE "id" IN (5, 7) ORDER BY 1')
        tables = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '%present'"
        )
    assert kept[0][:2] == (5, "n5") and (mode == "soft" or len(kept) == 1)
    if mode == "soft":
        assert kept[0][2] is None and kept[1][2] is not None  # only 7 is flagged
    assert tables == [(0,)]
