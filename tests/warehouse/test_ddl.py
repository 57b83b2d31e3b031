"""DDL from one model for five engines: golden files, parse-back, and real execution.

DuckDB and PostgreSQL run every statement. Snowflake runs on fakesnow when a
Python that has it is named by ``CRANE_FAKESNOW_PYTHON`` (fakesnow 0.12 needs
DuckDB 2.0, which conflicts with crane's pinned DuckDB 1.5.5, so it lives in
its own virtualenv: ``python -m venv /tmp/fsvenv && /tmp/fsvenv/bin/pip install
"fakesnow>=0.12" "snowflake-connector-python>=3.12,<4"``). BigQuery and Redshift
are checked by golden files and by parsing every statement back in their dialect.
Regenerate the golden files with ``CRANE_UPDATE_GOLDEN=1``.
"""

import os
import subprocess
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from crane.connectors.base import connect
from crane.warehouse import ddl, dialects
from crane.warehouse.model_files import load_models
from crane.warehouse.spec import DimensionSpec, Model

RETAIL = Path(__file__).parents[2] / "examples" / "retail"
GOLDEN = Path(__file__).parent / "golden"
ENGINES = ["duckdb", "postgres", "snowflake", "bigquery", "redshift"]
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def retail() -> Model:
    return load_models(RETAIL).model


def in_schema(model: Model, schema: str) -> Model:
    """The model with every object moved to ``schema`` (tests never share one)."""
    update = {
        kind: [o.model_copy(update={"schema_": schema}) for o in getattr(model, kind)]
        for kind in ("dimensions", "facts", "bridges")
    }
    return model.model_copy(update={**update, "schema_": schema})


def features_model() -> Model:
    """Every table shape: SCD 2/3/4/6, junk, outrigger, role-playing, bridge, all fact types."""
    return Model.model_validate(
        {
            "dimensions": [
                {
                    "name": "geo",
                    "business_key": "zip",
                    "attributes": [
                        {"name": "zip", "type": "VARCHAR(10)"},
                        {"name": "region", "type": "TEXT"},
                    ],
                },
                {
                    "name": "customer",
                    "business_key": "id",
                    "scd": 2,
                    "outriggers": ["geo"],
                    "hard_delete": "close_and_flag",
                    "attributes": [
                        {"name": "id", "type": "INT"},
                        {"name": "email", "type": "TEXT", "scd": 1},
                        {"name": "segment", "type": "TEXT", "scd": 3},
                        {"name": "tier", "type": "TEXT", "scd": 6},
                    ],
                },
                {
                    "name": "account",
                    "business_key": "no",
                    "scd": 4,
                    "surrogate_key": {"strategy": "hash"},
                    "attributes": [
                        {"name": "no", "type": "TEXT"},
                        {"name": "band", "type": "TEXT"},
                    ],
                },
                {
                    "name": "flags",
                    "kind": "junk",
                    "surrogate_key": {"strategy": "sequence"},
                    "attributes": [
                        {"name": "gift", "type": "BOOLEAN"},
                        {"name": "rush", "type": "BOOLEAN"},
                    ],
                },
                {"name": "date", "kind": "date"},
            ],
            "facts": [
                {
                    "name": "orders",
                    "type": "accumulating_snapshot",
                    "grain": ["order_no"],
                    "milestones": ["ship_date"],
                    "dimensions": [
                        {"dimension": "date", "role": "order_date"},
                        {"dimension": "date", "role": "ship_date"},
                        "customer",
                        "flags",
                    ],
                    "degenerate": [{"name": "order_no", "type": "INT"}],
                    "measures": [
                        {"name": "amount", "type": "DECIMAL(12, 2)"},
                        {"name": "days_to_ship", "type": "INT", "additivity": "non"},
                    ],
                },
            ],
            "bridges": [{"name": "account_customer", "dimensions": ["account", "customer"]}],
        }
    )


def test_golden_files(retail):
    """The retail star schema for every engine, as reviewed text."""
    for engine in ENGINES:
        text = ddl.script(ddl.build(retail, engine))
        path = GOLDEN / f"retail.{engine}.sql"
        if os.environ.get("CRANE_UPDATE_GOLDEN"):
            path.write_text(text)
        assert text == path.read_text(), f"{engine} DDL changed; CRANE_UPDATE_GOLDEN=1 to accept"


# sqlglot gaps crane renders around (dialect data `identity_text`): what sqlglot writes
# back → what crane wrote. Redshift's BY DEFAULT identity is read but written as a plain
# IDENTITY, which refuses the explicit keys loaders insert.
GAPS = {"redshift": [("IDENTITY(1, 1)", "GENERATED BY DEFAULT AS IDENTITY(1, 1)")]}


@pytest.mark.parametrize("engine", ["postgres", "snowflake", "bigquery", "redshift"])
def test_every_statement_parses_back_unchanged(retail, engine):
    """sqlglot reads each statement in the engine's dialect as a real statement (never a
    raw Command) and writes it back identically: nothing the engine would not parse."""
    statements = ddl.build(retail, engine)
    for statement in statements:
        back = sqlglot.parse_one(statement.sql, read=engine, error_level=ErrorLevel.RAISE)
        assert not isinstance(back, exp.Command), statement.sql
        again = back.sql(engine, unsupported_level=ErrorLevel.RAISE)
        for sqlglot_text, crane_text in GAPS.get(engine, []):
            again = again.replace(sqlglot_text, crane_text)
        assert again == statement.sql


def test_the_redshift_identity_gap_is_still_there():
    """When sqlglot keeps BY DEFAULT itself, the dialect's identity_text can go."""
    sql = "CREATE TABLE t (a BIGINT GENERATED BY DEFAULT AS IDENTITY(1, 1))"
    assert "BY DEFAULT" not in sqlglot.parse_one(sql, read="redshift").sql("redshift")
    assert dialects.get("redshift").identity_text == "GENERATED BY DEFAULT AS IDENTITY(1, 1)"


def _table(retail: Model, engine: str, name: str) -> exp.Create:
    sql = next(s.sql for s in ddl.build(retail, engine) if s.kind == "table" and s.name == name)
    return sqlglot.parse_one(sql, read=engine)


def test_physical_options_reach_each_engine(retail):
    sales = "gold.fact_sales"
    snow = _table(retail, "snowflake", sales).find(exp.ClusterProperty)
    assert [c.name for c in snow.expressions] == ["order_date_key", "store_key"]
    big = _table(retail, "bigquery", sales)
    assert big.find(exp.PartitionedByProperty).this.sql("bigquery").startswith("RANGE_BUCKET(")
    assert len(big.find(exp.ClusterProperty).expressions) == 3
    red = _table(retail, "redshift", sales)
    assert red.find(exp.DistKeyProperty).this.name == "customer_key"
    assert [k.name for k in red.find(exp.SortKeyProperty).this] == ["order_date_key"]
    pg = [s.sql for s in ddl.build(retail, "postgres")]
    assert any('PARTITION BY RANGE("snapshot_date_key")' in s for s in pg)
    assert any("FOR VALUES FROM (20260101) TO (20270101)" in s for s in pg)
    assert any('"ix_fact_sales_customer_key"' in s for s in pg)  # FK index
    # keys: informational on Redshift/Snowflake, NOT ENFORCED on BigQuery, enforced elsewhere
    assert "NOT ENFORCED" in big.sql("bigquery") and "NOT ENFORCED" not in red.sql("redshift")


def test_bigquery_keys_follow_the_physical_override(retail):
    dim = _table(retail, "bigquery", "gold.dim_customer")
    key = dim.this.expressions[0]
    assert key.name == "customer_key" and key.kind.sql("bigquery") == "STRING(32)"  # hash
    fact = _table(retail, "bigquery", "gold.fact_sales")
    fk = next(c for c in fact.this.expressions if c.name == "customer_key")
    assert fk.kind.sql("bigquery") == "STRING(32)"


def test_an_engine_that_cannot_generate_keys_is_an_error_naming_the_field():
    model = Model(
        dimensions=[
            DimensionSpec(name="s", business_key="k", attributes=[{"name": "k", "type": "INT"}])
        ]
    )
    with pytest.raises(ddl.DdlError) as caught:
        ddl.build(model, "bigquery")
    assert caught.value.field == "dimensions.s.surrogate_key.strategy"
    assert "physical.bigquery.surrogate_key: hash" in str(caught.value)


def test_rendering_raises_instead_of_dropping_an_option():
    """sqlglot drops CLUSTER BY for DuckDB with only a warning; crane's render raises."""
    node = sqlglot.parse_one("CREATE TABLE t (a INT) CLUSTER BY (a)", read="snowflake")
    assert "CLUSTER" not in node.sql("duckdb")  # the silent drop crane guards against
    with pytest.raises(UnsupportedError):
        ddl.render(node, dialects.get("duckdb"))


def test_retail_ddl_runs_on_duckdb_and_answers_queries(retail):
    with connect("duckdb:///:memory:") as con:
        for statement in ddl.build(retail, "duckdb"):
            con.execute(statement.sql)
        con.execute(
            "INSERT INTO gold.dim_customer (customer_id, first_name, last_name, city, country,"
            " effective_from, effective_to, is_current) VALUES"
            " (1, 'Ada', 'L', 'London', 'GB', '2024-01-01', '2024-06-01', false),"
            " (1, 'Ada', 'L', 'Paris', 'FR', '2024-06-01', NULL, true)"
        )
        rows = con.fetch("SELECT customer_key, city FROM gold.dim_customer_current")
        assert rows == [(2, "Paris")]  # the sequence numbered both versions


@pytest.mark.integration
def test_retail_ddl_runs_on_postgres(retail, pg_schema):
    model = in_schema(retail, pg_schema)
    with connect(PG_URL) as con, con.transaction():
        for statement in ddl.build(model, "postgres", helpers=False):
            con.execute(statement.sql)
        parts = con.fetch(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent"
            " WHERE c.relname = 'fact_inventory'"
        )
        indexes = con.fetch(f"SELECT count(*) FROM pg_indexes WHERE schemaname = '{pg_schema}'")
        comment = con.fetch(f"SELECT col_description('\"{pg_schema}\".dim_product'::regclass, 6)")
    assert parts == [(4,)]  # 2024, 2025, 2026 and DEFAULT
    assert indexes[0][0] >= 8 + 7  # FK indexes + primary/unique keys
    assert comment == [("list price - history kept",)]


def test_every_table_shape_runs_on_duckdb():
    model = features_model()
    with connect("duckdb:///:memory:") as con:
        for statement in ddl.build(model, "duckdb", helpers=False):
            con.execute(statement.sql)
        tables = {r[0] for r in con.fetch("SELECT table_name FROM information_schema.tables")}
    assert {"dim_account_history", "bridge_account_customer", "dim_ship_date"} <= tables


@pytest.mark.integration
def test_every_table_shape_runs_on_postgres(pg_schema):
    model = in_schema(features_model(), pg_schema)
    with connect(PG_URL) as con, con.transaction():
        for statement in ddl.build(model, "postgres", helpers=False):
            con.execute(statement.sql)


@pytest.mark.parametrize("engine", ["snowflake", "bigquery", "redshift"])
def test_every_table_shape_renders_for_warehouses(engine):
    model = features_model()
    physical = {"bigquery": {"surrogate_key": "hash"}, "redshift": {"surrogate_key": "hash"}}
    model.dimensions = [
        d.model_copy(update={"physical": physical}) if d.kind != "date" else d
        for d in model.dimensions
    ]
    for statement in ddl.build(model, engine):
        back = sqlglot.parse_one(statement.sql, read=engine, error_level=ErrorLevel.RAISE)
        assert not isinstance(back, exp.Command)


FAKESNOW = os.environ.get("CRANE_FAKESNOW_PYTHON")
RUNNER = """
import sys, fakesnow, snowflake.connector
with fakesnow.patch():
    cur = snowflake.connector.connect(database="db", schema="public").cursor()
    for sql in sys.stdin.read().split("\\n;;\\n"):
        cur.execute(sql)
print("ran", sql.count("") and len(sys.argv))
"""


@pytest.mark.skipif(not FAKESNOW, reason="CRANE_FAKESNOW_PYTHON names no Python with fakesnow")
def test_snowflake_ddl_runs_on_fakesnow(retail):
    statements = [s.sql for s in ddl.build(retail, "snowflake")]
    done = subprocess.run(
        [FAKESNOW, "-W", "ignore", "-c", RUNNER],
        input="\n;;\n".join(statements),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_name_the_engine_would_cut_is_refused():
    """PostgreSQL cuts names to 63 bytes without an error: a long dimension and its
    ``_current`` view became one name, and apply failed with '… is not a view'."""
    name = "customer_order_line_item_fulfillment_shipment_events"  # dim_…_current: 64
    model = Model(
        dimensions=[
            DimensionSpec(
                name=name,
                business_key="id",
                surrogate_key={"name": "sk"},
                attributes=[
                    {"name": "id", "type": "INT"},
                    {"name": "city", "type": "TEXT", "scd": 2},
                ],
            )
        ]
    )
    with pytest.raises(
        ddl.DdlError, match=f"name 'dim_{name}_current' is 64 bytes; postgres keeps 63"
    ):
        ddl.build(model, "postgres")
    assert ddl.build(model, "duckdb") and ddl.build(model, "redshift")


@pytest.mark.integration
def test_a_postgres_partition_without_ranges_takes_rows(pg_schema):
    """`partition_by` without `partitions` made a partitioned table with no partition at
    all: PostgreSQL refused every row ("no partition of relation found for row")."""
    model = Model.model_validate(
        {
            "schema": pg_schema,
            "dimensions": [{"name": "date", "kind": "date"}],
            "facts": [
                {
                    "name": "sales",
                    "grain": ["order_date", "order_id"],
                    "dimensions": [{"dimension": "date", "role": "order_date"}],
                    "degenerate": [{"name": "order_id", "type": "INT"}],
                    "physical": {"postgres": {"partition_by": "order_date_key"}},
                }
            ],
        }
    )
    statements = ddl.build(model, "postgres", helpers=False, samples=False)
    assert [s.name for s in statements if s.kind == "partition"] == [f"{pg_schema}.fact_sales"]
    assert not [s for s in ddl.build(model, "bigquery", helpers=False) if s.kind == "partition"]
    with connect(PG_URL) as con:
        for statement in statements:
            con.execute(statement.sql)
        con.execute(
            f'INSERT INTO "{pg_schema}".dim_date (date_key, full_date, year, quarter, month,'
            " month_name, month_short, day_of_month, day_of_year, day_of_week, day_name,"
            " day_short, iso_week, iso_year, is_weekend, fiscal_year, fiscal_quarter,"
            " fiscal_month, is_holiday) VALUES (20240102, DATE '2024-01-02', 2024, 1, 1,"
            " 'January', 'Jan', 2, 2, 2, 'Tuesday', 'Tue', 1, 2024, false, 2024, 1, 1, false)"
        )
        con.execute(f'INSERT INTO "{pg_schema}".fact_sales VALUES (20240102, 1)')
        assert con.fetch(f'SELECT count(*) FROM "{pg_schema}".fact_sales_default') == [(1,)]


def test_an_outrigger_declared_after_its_dimension_is_created_first():
    """dim_store (FOREIGN KEY → dim_region) came first in the script when declared first:
    `crane model apply` and the printed DDL failed on the missing referenced table."""
    model = Model.model_validate(
        {
            "dimensions": [
                {
                    "name": "store",
                    "business_key": "id",
                    "attributes": [{"name": "id", "type": "INT"}],
                    "outriggers": ["region"],
                },
                {
                    "name": "region",
                    "business_key": "id",
                    "attributes": [{"name": "id", "type": "INT"}],
                },
            ]
        }
    )
    tables = [s.name for s in ddl.build(model, "duckdb", helpers=False) if s.kind == "table"]
    assert tables == ["dim_region", "dim_store"]
    with connect("duckdb:///:memory:") as con:
        for statement in ddl.build(model, "duckdb", helpers=False):
            con.execute(statement.sql)


# -- physical options: refused by name, never misrendered or dropped ----------------------


def _fact_with(physical: dict) -> Model:
    return Model.model_validate(
        {
            "facts": [
                {
                    "name": "s",
                    "grain": ["order_no"],
                    "degenerate": [
                        {"name": "order_no", "type": "INT"},
                        {"name": "order_day", "type": "DATE"},
                    ],
                    "measures": [{"name": "amount", "type": "DECIMAL(12, 2)"}],
                    "physical": physical,
                }
            ]
        }
    )


@pytest.mark.parametrize(
    ("engine", "options", "field", "expected"),
    [
        # a bare column name was iterated letter by letter: CLUSTER BY ("o", "r", "d", …)
        ("snowflake", {"cluster_by": "order_day"}, "cluster_by", "write [order_day]"),
        ("bigquery", {"cluster_by": "order_day"}, "cluster_by", "write [order_day]"),
        ("redshift", {"sortkey": "order_day"}, "sortkey", "write [order_day]"),
        # the style is written only before SORTKEY(…): alone it vanished from the DDL
        ("redshift", {"sortkey_style": "interleaved"}, "sortkey_style", "needs sortkey"),
        # RANGE_BUCKET over a DATE: BigQuery refused the table at creation
        (
            "bigquery",
            {"partition_by": "order_day", "partition_range": [0, 100, 10]},
            "partition_range",
            "buckets an integer column; 'order_day' is DATE",
        ),
        # a YAML true passed as an integer: GENERATE_ARRAY(0, 100, True)
        (
            "bigquery",
            {"partition_by": "order_no", "partition_range": [0, 100, True]},
            "partition_range",
            "[start, end, interval] integers",
        ),
        # a list where one column belongs crashed validation with a TypeError
        ("bigquery", {"partition_by": ["order_day"]}, "partition_by", "one column name"),
        # BigQuery clusters by columns only
        (
            "bigquery",
            {"cluster_by": ["DATE_TRUNC(order_day, MONTH)"]},
            "cluster_by",
            "is an expression, which crane does not render",
        ),
        # Snowflake takes expressions, over existing columns only
        (
            "snowflake",
            {"cluster_by": ["DATE_TRUNC('month', order_dy)"]},
            "cluster_by",
            "names unknown column 'order_dy'",
        ),
        ("snowflake", {"cluster_by": ["TO_DATE("]}, "cluster_by", "neither a column nor"),
        # written as a name and as a list, one index was created twice under one name
        ("postgres", {"indexes": ["order_day", ["order_day"]]}, "indexes", "(order_day) twice"),
        # [0, 20001, 2] is 10,001 ranges (the last one short); it was counted as 10,000
        (
            "bigquery",
            {"partition_by": "order_no", "partition_range": [0, 20001, 2]},
            "partition_range",
            "makes 10001 partitions",
        ),
    ],
)
def test_physical_options_that_would_misrender_are_refused(engine, options, field, expected):
    columns = {"order_no": "INT", "order_day": "DATE", "amount": "DECIMAL(12, 2)"}
    found = dialects.check_physical(engine, options, columns, ["order_no"])
    assert any(f == field and expected in reason for f, reason in found), found


def test_a_bare_column_name_is_refused_at_its_file_line_and_field(tmp_path):
    from crane.config.loader import SpecError
    from crane.warehouse.validate import validate

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "facts.yml").write_text(
        "facts:\n"
        "  - name: s\n"
        "    grain: [order_no]\n"
        "    degenerate: [{name: order_no, type: INT}, {name: order_day, type: DATE}]\n"
        "    physical:\n"
        "      redshift:\n"
        "        sortkey: order_day\n"
        "        sortkey_style: interleaved\n"
    )
    with pytest.raises(SpecError) as caught:
        validate(load_models(tmp_path))
    where = [(Path(p[0]).name, p[1], p[2]) for p in caught.value.problems]
    assert ("facts.yml", 7, "facts[0].physical.redshift.sortkey") in where
    assert ("facts.yml", 8, "facts[0].physical.redshift.sortkey_style") in where
    reasons = " ".join(p[3] for p in caught.value.problems)
    assert "does not render INTERLEAVED" in reasons  # it came out as a compound SORTKEY
    # the list form renders the whole column, and parses back as Redshift
    model = _fact_with({"redshift": {"sortkey": ["order_day"], "sortkey_style": "compound"}})
    (table,) = [
        s.sql
        for s in ddl.build(model, "redshift", helpers=False, samples=False)
        if s.kind == "table"
    ]
    assert 'COMPOUND SORTKEY("order_day")' in table
    assert sqlglot.parse_one(table, read="redshift").find(exp.SortKeyProperty) is not None


@pytest.mark.parametrize(
    ("live", "declared", "kind"),
    [
        # Redshift's VARCHAR(MAX) failed `crane model plan` with a bare ValueError
        ("VARCHAR(20)", "VARCHAR(MAX)", "text"),
        ("varchar(max)", "VARCHAR(20)", None),
        ("VARCHAR(MAX)", "TEXT", "text"),
        # lengths and precisions crane cannot read are no widening, never a crash
        ("VARCHAR(20 CHAR)", "VARCHAR(30 CHAR)", None),
        ("NUMBER(*, 2)", "NUMBER(38, 2)", None),
        ("VARCHAR(20)", "VARCHAR(50)", "text"),
    ],
)
def test_type_widening_reads_every_length_spelling(live, declared, kind):
    from crane.warehouse.retype import widening

    assert widening(live, declared) == kind


def test_snowflake_clusters_by_an_expression_over_quoted_columns():
    """A Snowflake clustering expression was refused as an unknown column (and before
    that would have been quoted whole as one); its columns are quoted as crane creates
    them, since Snowflake folds an unquoted order_day to ORDER_DAY."""
    from crane.warehouse import plan as planner

    options = {"cluster_by": ["DATE_TRUNC('month', order_day)", "order_no"]}
    columns = {"order_no": "INT", "order_day": "DATE", "amount": "DECIMAL(12, 2)"}
    assert dialects.check_physical("snowflake", options, columns, ["order_no"]) == []
    model = _fact_with({"snowflake": options})
    (table,) = [
        s.sql
        for s in ddl.build(model, "snowflake", helpers=False, samples=False)
        if s.kind == "table"
    ]
    assert """CLUSTER BY (DATE_TRUNC('MONTH', "order_day"), "order_no")""" in table
    parsed = sqlglot.parse_one(table, read="snowflake").find(exp.ClusterProperty)
    assert sorted(c.name for c in parsed.find_all(exp.Column)) == ["order_day", "order_no"]
    (tdef,) = ddl.table_defs(model, "snowflake")
    (change,) = planner._physical_changes(
        tdef, {"cluster_by": ["order_no"]}, dialects.get("snowflake")
    )
    assert change.statements == [
        """ALTER TABLE "fact_s" CLUSTER BY (DATE_TRUNC('MONTH', "order_day"), "order_no")"""
    ]


def test_an_index_declared_on_a_foreign_key_is_made_once(retail, pg_schema):
    """The foreign-key index and a declared index on the same column were two equal
    CREATE INDEX statements (harmless, IF NOT EXISTS, but not the schema one declared)."""
    sales = next(f for f in retail.facts if f.name == "sales")
    indexes = ["customer_key", ["store_key", "order_date_key"]]
    physical = {**sales.physical, "postgres": {"indexes": indexes}}
    facts = [f.model_copy(update={"physical": physical}) if f is sales else f for f in retail.facts]
    model = retail.model_copy(update={"facts": facts})
    made = [s.sql for s in ddl.build(model, "postgres") if "CREATE INDEX" in s.sql]
    assert sum('"ix_fact_sales_customer_key"' in s for s in made) == 1
    assert sum('"ix_fact_sales_store_key_order_date_key"' in s for s in made) == 1
    with connect(PG_URL) as con, con.transaction():
        for statement in ddl.build(in_schema(model, pg_schema), "postgres", helpers=False):
            con.execute(statement.sql)
        found = con.fetch(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'fact_sales'"
            f" AND schemaname = '{pg_schema}' AND indexname LIKE 'ix_%'"
        )
    defs = [str(row[0]).split(" USING btree ")[1] for row in found]
    assert "(customer_key)" in defs and "(store_key, order_date_key)" in defs


def test_a_model_built_in_python_gets_its_options_checked_by_the_ddl():
    """``crane model validate`` refuses ``sortkey: order_day``; a model built in Python and
    never validated went straight to the DDL, which wrote SORTKEY("o","r","d",…)."""
    model = _fact_with({"redshift": {"sortkey": "order_day"}})
    with pytest.raises(ddl.DdlError) as caught:
        ddl.build(model, "redshift")
    assert caught.value.field == "physical.redshift.sortkey"
    assert "[order_day]" in str(caught.value)
    assert ddl.build(_fact_with({"redshift": {"sortkey": ["order_day"]}}), "redshift")
