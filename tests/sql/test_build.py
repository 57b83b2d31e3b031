"""The SQL builders, rendered for every dialect (table-driven), and their doctests."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest
from sqlglot import exp

from crane.connectors.base import TableRef
from crane.sql import build as b
from crane.sql import merge as m

T, S = TableRef("orders", "w"), TableRef("stg", "_crane_staging")
DIALECTS = ("duckdb", "postgres", "mysql")


def rendered(node, dialect):
    return " ".join(node.sql(dialect=dialect).split())


CASES = {
    "merge composite key": (
        m.build_merge(T, S, keys=["a", "b"], columns=["a", "b", "v"], native=True),
        {
            "duckdb": 'MERGE INTO "w"."orders" AS "_crane_t" USING "_crane_staging"."stg" AS '
            '"_crane_s" ON "_crane_t"."a" = "_crane_s"."a" AND "_crane_t"."b" = "_crane_s"."b" '
            'WHEN MATCHED AND NOT ("_crane_t"."v" IS NOT DISTINCT FROM "_crane_s"."v") THEN '
            'UPDATE SET "v" = "_crane_s"."v" WHEN NOT MATCHED THEN INSERT ("a", "b", "v") '
            'VALUES ("_crane_s"."a", "_crane_s"."b", "_crane_s"."v")',
            "postgres": 'MERGE INTO "w"."orders" AS "_crane_t" USING "_crane_staging"."stg" AS '
            '"_crane_s" ON "_crane_t"."a" = "_crane_s"."a" AND "_crane_t"."b" = "_crane_s"."b" '
            'WHEN MATCHED AND NOT ("_crane_t"."v" IS NOT DISTINCT FROM "_crane_s"."v") THEN '
            'UPDATE SET "v" = "_crane_s"."v" WHEN NOT MATCHED THEN INSERT ("a", "b", "v") '
            'VALUES ("_crane_s"."a", "_crane_s"."b", "_crane_s"."v")',
        },
    ),
    "upsert without MERGE": (
        m.build_merge(T, S, keys=["a", "b"], columns=["a", "b", "v"], native=False),
        {
            "mysql": "INSERT INTO `w`.`orders` (`a`, `b`, `v`) SELECT `_crane_s`.`a`, "
            "`_crane_s`.`b`, `_crane_s`.`v` FROM `_crane_staging`.`stg` AS `_crane_s` "
            "ON DUPLICATE KEY UPDATE `v` = VALUES(`v`)",
        },
    ),
    "merge clearing a soft delete": (
        m.build_merge(
            T,
            S,
            keys=["id"],
            columns=["id", "v"],
            native=True,
            on_update={"_crane_deleted_at": exp.Null()},
            changed_extra=[m.not_null("_crane_deleted_at", m.T)],
        ),
        {
            "postgres": 'MERGE INTO "w"."orders" AS "_crane_t" USING "_crane_staging"."stg" AS '
            '"_crane_s" ON "_crane_t"."id" = "_crane_s"."id" WHEN MATCHED AND NOT '
            '("_crane_t"."v" IS NOT DISTINCT FROM "_crane_s"."v") OR NOT '
            '"_crane_t"."_crane_deleted_at" IS NULL THEN UPDATE SET "v" = "_crane_s"."v", '
            '"_crane_deleted_at" = NULL WHEN NOT MATCHED THEN INSERT ("id", "v") VALUES '
            '("_crane_s"."id", "_crane_s"."v")',
        },
    ),
    "merge of key columns only inserts": (
        m.build_merge(T, S, keys=["id"], columns=["id"], native=True),
        {
            "duckdb": 'MERGE INTO "w"."orders" AS "_crane_t" USING "_crane_staging"."stg" AS '
            '"_crane_s" ON "_crane_t"."id" = "_crane_s"."id" WHEN NOT MATCHED THEN INSERT '
            '("id") VALUES ("_crane_s"."id")',
        },
    ),
    "merge plan counts": (
        m.build_merge_counts(T, S, keys=["id"], columns=["id", "v"]),
        {
            "postgres": 'SELECT COUNT(*), COUNT("_crane_t"."id"), COUNT(CASE WHEN NOT '
            '"_crane_t"."id" IS NULL AND (NOT ("_crane_t"."v" IS NOT DISTINCT FROM '
            '"_crane_s"."v")) THEN 1 END) FROM "_crane_staging"."stg" AS "_crane_s" LEFT JOIN '
            '"w"."orders" AS "_crane_t" ON "_crane_s"."id" = "_crane_t"."id"',
            "mysql": "SELECT COUNT(*), COUNT(`_crane_t`.`id`), COUNT(CASE WHEN NOT "
            "`_crane_t`.`id` IS NULL AND (NOT (`_crane_t`.`v` <=> `_crane_s`.`v`)) THEN 1 END) "
            "FROM `_crane_staging`.`stg` AS `_crane_s` LEFT JOIN `w`.`orders` AS `_crane_t` "
            "ON `_crane_s`.`id` = `_crane_t`.`id`",
        },
    ),
    "delete by staged key": (
        m.build_delete_matching(T, S, ["a", "b"]),
        {
            "duckdb": 'DELETE FROM "w"."orders" WHERE EXISTS(SELECT 1 FROM '
            '"_crane_staging"."stg" AS "_crane_s" WHERE "_crane_s"."a" = "w"."orders"."a" AND '
            '"_crane_s"."b" = "w"."orders"."b")',
            "mysql": "DELETE FROM `w`.`orders` WHERE EXISTS(SELECT 1 FROM "
            "`_crane_staging`.`stg` AS `_crane_s` WHERE `_crane_s`.`a` = `w`.`orders`.`a` AND "
            "`_crane_s`.`b` = `w`.`orders`.`b`)",
        },
    ),
    "hard delete of missing keys": (
        m.build_delete_missing(T, S, ["id"]),
        {
            "postgres": 'DELETE FROM "w"."orders" WHERE NOT EXISTS(SELECT 1 FROM '
            '"_crane_staging"."stg" AS "_crane_s" WHERE "_crane_s"."id" = "w"."orders"."id")',
        },
    ),
    "soft delete of missing keys": (
        m.build_soft_delete_missing(
            T, S, ["id"], "gone_at", b.timestamp_literal(datetime(2026, 1, 2, tzinfo=UTC))
        ),
        {
            "postgres": 'UPDATE "w"."orders" SET "gone_at" = CAST(\'2026-01-02 '
            '00:00:00+00:00\' AS TIMESTAMPTZ) WHERE "w"."orders"."gone_at" IS NULL AND NOT '
            'EXISTS(SELECT 1 FROM "_crane_staging"."stg" AS "_crane_s" WHERE "_crane_s"."id" = '
            '"w"."orders"."id")',
        },
    ),
    "swap rename": (
        b.rename_table(TableRef("orders__crane_new", "w"), "orders"),
        {
            "duckdb": 'ALTER TABLE "w"."orders__crane_new" RENAME TO "orders"',
            "postgres": 'ALTER TABLE "w"."orders__crane_new" RENAME TO "orders"',
        },
    ),
    "primary key": (
        b.add_primary_key(T, ["a", "b"]),
        {"postgres": 'ALTER TABLE "w"."orders" ADD PRIMARY KEY ("a", "b")'},
    ),
    "widen a column": (
        b.alter_column_type(T, "qty", b.arrow_to_sql(pa.int64())),
        {
            "postgres": 'ALTER TABLE "w"."orders" ALTER COLUMN "qty" SET DATA TYPE BIGINT',
            "mysql": "ALTER TABLE `w`.`orders` MODIFY COLUMN `qty` BIGINT",
        },
    ),
    "new table from staging": (
        b.create_table_as(T, b.select_from(["id", "select"], S).limit(0)),
        {
            "duckdb": 'CREATE TABLE "w"."orders" AS SELECT "id", "select" FROM '
            '"_crane_staging"."stg" LIMIT 0',
        },
    ),
}


@pytest.mark.parametrize(
    ("node", "dialect", "expected"),
    [
        pytest.param(node, dialect, sql, id=f"{name}-{dialect}")
        for name, (node, by_dialect) in CASES.items()
        for dialect, sql in by_dialect.items()
    ],
)
def test_builders_render_per_dialect(node, dialect, expected):
    assert rendered(node, dialect) == expected


@pytest.mark.parametrize("dialect", DIALECTS)
def test_merge_action_condition_is_never_dropped(dialect):
    # sqlglot #8093: a WHERE on a MERGE action can be dropped with only a warning.
    node = m.build_merge(T, S, keys=["id"], columns=["id", "v"], native=True)
    assert "WHEN MATCHED AND NOT" in rendered(node, dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_keys_are_never_concatenated_or_or_joined(dialect):
    node = m.build_merge_counts(T, S, keys=["a", "b", "c"], columns=["a", "b", "c", "v"])
    on = node.find(exp.Join).args["on"]
    assert not list(on.find_all(exp.Or)) and not list(on.find_all(exp.DPipe, exp.Concat))
    assert len(list(on.find_all(exp.EQ))) == 3


ARROW_TYPES = [
    (pa.int8(), "SMALLINT", "SMALLINT"),
    (pa.int32(), "INT", "INT"),
    (pa.int64(), "BIGINT", "BIGINT"),
    (pa.uint64(), "DECIMAL(20, 0)", "DECIMAL(20, 0)"),
    (pa.float64(), "DOUBLE", "DOUBLE PRECISION"),
    (pa.decimal128(12, 2), "DECIMAL(12, 2)", "DECIMAL(12, 2)"),
    (pa.string(), "TEXT", "TEXT"),
    (pa.large_string(), "TEXT", "TEXT"),
    (pa.binary(), "BLOB", "BYTEA"),
    (pa.bool_(), "BOOLEAN", "BOOLEAN"),
    (pa.date32(), "DATE", "DATE"),
    (pa.timestamp("us"), "TIMESTAMP", "TIMESTAMP"),
    (pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ", "TIMESTAMPTZ"),
    (pa.list_(pa.int64()), "BIGINT[]", "BIGINT[]"),
    (pa.dictionary(pa.int32(), pa.string()), "TEXT", "TEXT"),
]


@pytest.mark.parametrize(("arrow_type", "duckdb", "postgres"), ARROW_TYPES)
def test_arrow_types_map_to_engine_types(arrow_type, duckdb, postgres):
    dtype = b.arrow_to_sql(arrow_type)
    assert (dtype.sql("duckdb"), dtype.sql("postgres")) == (duckdb, postgres)


def test_declared_types_keep_their_length():
    assert b.sql_type("varchar(20)").sql("postgres") == "VARCHAR(20)"


@pytest.mark.integration
def test_mysql_upsert_and_deletes_execute_on_mariadb(my_db):
    import pymysql

    target, staging = TableRef("t", my_db), TableRef("stg", my_db)
    con = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with con.cursor() as cur:
        cur.execute(f"CREATE TABLE `{my_db}`.t (a INT, b VARCHAR(5), v INT, PRIMARY KEY (a, b))")
        cur.execute(f"CREATE TABLE `{my_db}`.stg (a INT, b VARCHAR(5), v INT)")
        cur.execute(f"INSERT INTO `{my_db}`.t VALUES (1, '23', 1), (12, '3', 2), (5, 'x', 5)")
        cur.execute(f"INSERT INTO `{my_db}`.stg VALUES (12, '3', 20), (1, '3', 3), (1, '23', 1)")
        counts = m.build_merge_counts(target, staging, keys=["a", "b"], columns=["a", "b", "v"])
        cur.execute(counts.sql("mysql"))
        assert cur.fetchone() == (3, 2, 1)  # rows, matched, changed
        cur.execute(m.build_delete_missing(target, staging, ["a", "b"]).sql("mysql"))
        upsert = m.build_merge(
            target, staging, keys=["a", "b"], columns=["a", "b", "v"], native=False
        )
        cur.execute(upsert.sql("mysql"))
        cur.execute(f"SELECT a, b, v FROM `{my_db}`.t ORDER BY a, b")
        assert cur.fetchall() == ((1, "23", 1), (1, "3", 3), (12, "3", 20))
    con.close()
