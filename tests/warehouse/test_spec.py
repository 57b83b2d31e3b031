"""The model spec: YAML and Python build the same objects; validation names file, line, field."""

from pathlib import Path

import pytest

from crane.config.loader import SpecError
from crane.errors import UnknownNameError
from crane.warehouse import dialects
from crane.warehouse.model_files import from_model, load_models
from crane.warehouse.spec import DimensionSpec, FactSpec, Model
from crane.warehouse.validate import problems, validate

RETAIL = Path(__file__).parents[2] / "examples" / "retail"

BAD = """\
schema: gold
dimensions:
  - name: customer
    attributes:
      - {name: customer_id, type: INT}
facts:
  - name: sales
    dimensions: [customer, produt]
    measures:
      - {name: amount, type: "DECIMAL(12, 2)"}
      - {name: note, type: VARCHAR(20)}
"""


def write_model(root: Path, text: str, name: str = "bad.yml") -> Path:
    (root / "models").mkdir(exist_ok=True)
    (root / "models" / name).write_text(text)
    return root


def test_retail_model_loads_and_validates():
    loaded = validate(load_models(RETAIL))
    model = loaded.model
    assert [d.name for d in model.dimensions] == [
        "customer",
        "product",
        "store",
        "date",
        "order_profile",
    ]
    assert [f.name for f in model.facts] == ["sales", "inventory"]
    assert loaded.files == ["models/dimensions.yml", "models/facts.yml"]
    assert model.dimension("customer").schema_ == "gold"  # the file's schema applies


def test_yaml_and_python_build_the_same_objects():
    yaml_store = load_models(RETAIL).model.dimension("store")
    python_store = DimensionSpec(
        name="store",
        schema="gold",
        comment="Stores, overwritten in place (SCD Type 1)",
        business_key="store_id",
        scd=1,
        attributes=[
            {"name": "store_id", "type": "INTEGER"},
            {"name": "name", "type": "VARCHAR(100)", "nullable": False},
            {"name": "city", "type": "VARCHAR(100)"},
            {"name": "country", "type": "CHAR(2)", "nullable": False},
            {"name": "opened_on", "type": "DATE"},
        ],
        physical={"bigquery": {"surrogate_key": "hash"}, "redshift": {"diststyle": "all"}},
        source="SELECT store_id, trim(name) AS name, trim(city) AS city,"
        " upper(trim(country)) AS country,\n       opened_on, updated_at\nFROM main.stores\n",
    )
    assert python_store == yaml_store


def test_validation_names_file_line_and_field(tmp_path):
    root = write_model(tmp_path, BAD)
    with pytest.raises(SpecError) as caught:
        validate(load_models(root))
    found = {(p[1], p[2]): p[3] for p in caught.value.problems}
    assert all(p[0] == "models/bad.yml" for p in caught.value.problems)
    # missing business key: the dimension's line (business_key is absent)
    assert "has no business key" in found[(3, "dimensions[0].business_key")]
    # fact with no grain
    assert "declares no grain" in found[(7, "facts[0].grain")]
    # reference to an unknown dimension, with a suggestion
    assert found[(8, "facts[0].dimensions[1].dimension")].startswith("unknown dimension 'produt'")
    # non-numeric additive measure
    assert "is not numeric" in found[(11, "facts[0].measures[1].type")]
    assert len(caught.value.problems) == 4
    text = str(caught.value)
    assert "models/bad.yml, line 7, field facts[0].grain: fact 'sales' declares no grain" in text


def test_pydantic_errors_point_at_lines_too(tmp_path):
    root = write_model(tmp_path, "dimensions:\n  - name: d\n    scd: 5\n    attributes: []\n")
    with pytest.raises(SpecError) as caught:
        load_models(root)
    file, line, field, _ = caught.value.problems[0]
    assert (file, line, field) == ("models/bad.yml", 3, "dimensions[0].scd")


def test_python_models_report_the_field_without_a_line():
    found = problems(from_model(Model(facts=[FactSpec(name="sales")])))
    assert found[0][:3] == ("<python model>", None, "facts[0].grain")


@pytest.mark.parametrize(
    ("engine", "options", "expected"),
    [
        ("bigquery", {"cluster_by": ["a", "b", "c", "d", "e"]}, "at most 4 cluster_by columns"),
        ("duckdb", {"cluster_by": ["a"]}, "duckdb cannot do physical option 'cluster_by'"),
        ("postgres", {"cluster_by": ["a"]}, "postgres cannot do physical option 'cluster_by'"),
        ("snowflake", {"distkey": "a"}, "snowflake cannot do physical option 'distkey'"),
        ("snowflake", {"cluster_by": ["zz"]}, "unknown column 'zz'"),
        ("redshift", {"diststyle": "even", "distkey": "a"}, "distkey needs diststyle key"),
        ("redshift", {"diststyle": "sideways"}, "must be one of auto, even, key, all"),
        ("bigquery", {"partition_by": "e"}, "needs one of DATE"),
        ("bigquery", {"partition_by": "a"}, "add partition_range"),
        ("postgres", {"partition_by": "d"}, "partition column 'd' in the primary key"),
        ("snowflak", {"cluster_by": ["a"]}, "did you mean 'snowflake'"),
        # these two passed validate and crashed `crane model ddl` with a bare ValueError
        (
            "postgres",
            {"partition_by": "a", "partitions": {"from": "2024-13-01", "to": "2025-01-01"}},
            "partitions.from must be a date (YYYY-MM-DD), not '2024-13-01'",
        ),
        (
            "postgres",
            {"partition_by": "a", "partitions": {"from": "2025-01-01", "to": "2024-01-01"}},
            "partitions.to (2024-01-01) must come after partitions.from (2025-01-01)",
        ),
        ("redshift", {"sortkey": ["a", "a"]}, "sortkey names column 'a' twice"),
        # BigQuery refuses more than 10,000 partitions, and an empty or backward range
        (
            "bigquery",
            {"partition_by": "a", "partition_range": [20200101, 20310101, 1]},
            "partition_range makes 110000 partitions; bigquery allows 10000",
        ),
        (
            "bigquery",
            {"partition_by": "a", "partition_range": [10, 0, 1]},
            "needs start < end and a positive interval",
        ),
    ],
)
def test_physical_options_are_checked_per_engine(engine, options, expected):
    columns = {"a": "INT", "b": "INT", "c": "INT", "d": "DATE", "e": "TEXT"}
    found = dialects.check_physical(engine, options, columns, primary_key=["a"])
    assert any(expected in reason for _, reason in found), found


def test_physical_problems_name_the_option_field(tmp_path):
    text = (
        "dimensions:\n"
        "  - name: d\n"
        "    business_key: k\n"
        "    attributes: [{name: k, type: INT}]\n"
        "    physical:\n"
        "      bigquery:\n"
        "        cluster_by: [k, k, k, k, k]\n"
    )
    with pytest.raises(SpecError) as caught:
        validate(load_models(write_model(tmp_path, text)))
    where = [p[1:3] for p in caught.value.problems]
    assert (7, "dimensions[0].physical.bigquery.cluster_by") in where
    # the identity keys BigQuery cannot make are reported on the engine's options
    assert (6, "dimensions[0].physical.bigquery") in where
    reasons = [p[3] for p in caught.value.problems]
    assert "cluster_by names column 'k' twice" in reasons


def test_scd_columns_group_attributes_by_type():
    dim = DimensionSpec(
        name="customer",
        business_key=["tenant", "customer_id"],
        scd=1,
        attributes=[
            {"name": "tenant", "type": "INT"},
            {"name": "customer_id", "type": "INT"},
            {"name": "birth_date", "type": "DATE", "scd": 0},
            {"name": "email", "type": "TEXT"},
            {"name": "city", "type": "TEXT", "scd": 2},
            {"name": "segment", "type": "TEXT", "scd": 3},
            {"name": "tier", "type": "TEXT", "scd": 6, "current": "tier_now"},
        ],
        scd2_columns={"effective_from": "valid_from", "is_current": "current_flag"},
    )
    groups = dim.scd_columns()
    assert groups.business_key == ("tenant", "customer_id")
    assert (groups.type0, groups.type1, groups.type2) == (("birth_date",), ("email",), ("city",))
    assert groups.type3 == (("segment", "previous_segment"),)
    assert groups.type6 == (("tier", "tier_now"),)
    assert (groups.effective_from, groups.effective_to, groups.is_current) == (
        "valid_from",
        "effective_to",
        "current_flag",
    )
    names = [c.name for c in dim.columns()]
    assert names[:2] == ["customer_key", "tenant"]
    assert {"previous_segment", "tier_now", "valid_from", "current_flag"} <= set(names)


def test_type4_dimension_has_a_history_table_with_every_version():
    dim = DimensionSpec(
        name="account",
        business_key="id",
        scd=4,
        attributes=[{"name": "id", "type": "INT"}, {"name": "balance_band", "type": "TEXT"}],
    )
    groups = dim.scd_columns()
    assert groups.history_table == "dim_account_history" and groups.type1 == ("balance_band",)
    assert "effective_from" not in [c.name for c in dim.columns()]
    assert "effective_from" in [c.name for c in dim.history_columns()]
    # the loader versions them in the history table (as Type 1 the history kept one row)
    loader = dim.scd_table()
    assert (loader.kind, loader.type1, loader.type2) == ("4", (), ("balance_band",))


def test_date_and_junk_dimensions_fill_their_defaults():
    date_dim = DimensionSpec(name="date", kind="date")
    assert (date_dim.key_column, date_dim.surrogate_key.strategy) == ("date_key", "natural")
    assert date_dim.business_key == ["full_date"]
    assert "iso_week" in [a.name for a in date_dim.attributes]
    junk = DimensionSpec(
        name="flags",
        kind="junk",
        attributes=[{"name": "a", "type": "BOOLEAN"}, {"name": "b", "type": "TEXT"}],
    )
    assert junk.business_key == ["a", "b"] and junk.scd_columns().type0 == ()


def test_two_unroled_references_to_one_dimension_are_an_error():
    model = Model(
        dimensions=[DimensionSpec(name="date", kind="date")],
        facts=[FactSpec(name="orders", grain=["date"], dimensions=["date", "date"])],
    )
    reasons = [p[3] for p in problems(from_model(model))]
    assert any("reference (give a role) 'date' appears twice" in r for r in reasons)


def test_unknown_dialect_suggests_the_closest():
    with pytest.raises(UnknownNameError) as caught:
        dialects.get("redshfit")
    assert "redshift" in str(caught.value)


def test_scd_loader_fills_a_dimension_the_ddl_created():
    """The contract with crane.warehouse.scd: `scd_table()` describes the DDL's table."""
    from crane.connectors.base import TableRef, connect
    from crane.warehouse import ddl
    from crane.warehouse.scd.base import load_dimension

    model = load_models(RETAIL).model
    with connect("duckdb:///:memory:") as con:
        for statement in ddl.build(model, "duckdb", helpers=False, samples=False):
            con.execute(statement.sql)
        con.execute(
            "CREATE TABLE gold.stg AS SELECT * FROM (VALUES"
            " (1, 'a@x', 'Ada', 'L', NULL, 'London', 'GB', TIMESTAMP '2024-01-01'),"
            " (1, 'a@x', 'Ada', 'L', NULL, 'Paris', 'FR', TIMESTAMP '2024-06-01'))"
            " t(customer_id, email, first_name, last_name, phone, city, country, updated_at)"
        )
        load_dimension(con, model.dimension("customer").scd_table(), TableRef("stg", "gold"))
        rows = con.fetch(
            "SELECT customer_key, city, effective_to IS NULL, is_current"
            " FROM gold.dim_customer ORDER BY 1"
        )
    assert rows == [(1, "London", False, False), (2, "Paris", True, True)]


def test_scd_table_maps_every_attribute_type():
    dim = DimensionSpec(
        name="c",
        business_key="id",
        hard_delete="close_and_flag",
        attributes=[
            {"name": "id", "type": "INT"},
            {"name": "email", "type": "TEXT"},
            {"name": "seg", "type": "TEXT", "scd": 3},
            {"name": "tier", "type": "TEXT", "scd": 6},
        ],
    )
    table = dim.scd_table("gold", late_arrival="quarantine")
    assert (table.kind, table.type1, table.type2) == ("6", ("email",), ("tier",))
    assert table.type3 == {"seg": "previous_seg"} and table.current_of == {"current_tier": "tier"}
    assert table.deleted_column == "is_deleted" and table.late_arrival == "quarantine"
    assert str(table.table) == "gold.dim_c"


def test_python_model_files_build_the_same_objects(tmp_path):
    """``models/*.py`` sits beside YAML files; both merge into one model."""
    write_model(
        tmp_path,
        "schema: gold\ndimensions:\n  - name: store\n    business_key: id\n"
        "    attributes: [{name: id, type: INT}]\n",
        "a.yml",
    )
    (tmp_path / "models" / "b.py").write_text(
        "from crane.warehouse.spec import FactSpec\n"
        "facts = [FactSpec(name='visits', grain=['store'], dimensions=['store', 'shelf'],\n"
        "                  measures=[{'name': 'n', 'type': 'INT'}])]\n"
    )
    loaded = load_models(tmp_path)
    assert loaded.files == ["models/a.yml", "models/b.py"]
    assert loaded.model.fact("visits").dimensions[0].dimension == "store"
    found = problems(loaded)
    assert found == [
        ("models/b.py", None, "facts[0].dimensions[1].dimension", "unknown dimension 'shelf'")
    ]


def test_a_role_view_may_not_shadow_a_table():
    model = Model(
        dimensions=[
            DimensionSpec(name="date", kind="date"),
            DimensionSpec(name="ship", business_key="k", attributes=[{"name": "k", "type": "INT"}]),
        ],
        facts=[
            FactSpec(
                name="f",
                grain=["d"],
                dimensions=[{"dimension": "date", "role": "ship"}],
                degenerate=[{"name": "d", "type": "INT"}],
            )
        ],
    )
    [problem] = problems(from_model(model))
    assert problem[2] == "facts[0].dimensions[0].role"
    assert "role view 'dim_ship'" in problem[3] and "dimension 'ship'" in problem[3]


def test_a_type_that_is_no_sql_type_names_file_line_and_field(tmp_path):
    """``INTEGR`` used to pass validate and crash `crane model ddl` with a bare ParseError."""
    text = (
        "dimensions:\n"
        "  - name: d\n"
        "    business_key: id\n"
        "    attributes:\n"
        "      - {name: id, type: INTEGR}\n"
        "facts:\n"
        "  - name: f\n"
        "    grain: [d]\n"
        "    dimensions: [d]\n"
        "    degenerate: [{name: ref, type: 'VARCHAR(10'}]\n"
        "    measures: [{name: amount, type: FLOAT64}]\n"
    )
    with pytest.raises(SpecError) as caught:
        validate(load_models(write_model(tmp_path, text)))
    found = {(p[1], p[2]): p[3] for p in caught.value.problems}
    assert found == {
        (5, "dimensions[0].attributes[0].type"): "type 'INTEGR' is not a SQL type crane can "
        "render (did you mean 'INTEGER', 'INT'?)",
        (10, "facts[0].degenerate[0].type"): "type 'VARCHAR(10' is not a SQL type crane can "
        "render (did you mean 'VARCHAR', 'CHAR'?)",
        (11, "facts[0].measures[0].type"): "type 'FLOAT64' is not a SQL type crane can render "
        "(did you mean 'FLOAT'?)",
    }


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "redshift"])
def test_int8_is_the_eight_byte_integer(engine):
    """sqlglot's dialect-free reader takes INT8 for ClickHouse's one-byte Int8: a column
    declared INT8 became TINYINT on DuckDB and SMALLINT on PostgreSQL."""
    assert dialects.column_type("int8").sql(engine) == "BIGINT"


def test_a_calendar_is_checked_and_only_for_date_dimensions(tmp_path):
    text = (
        "dimensions:\n  - name: date\n    kind: date\n    calendar: {fiscal_year_start_month: 13}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_models(write_model(tmp_path, text))
    assert caught.value.problems[0][1:3] == (4, "dimensions[0].calendar.fiscal_year_start_month")
    text = (
        "dimensions:\n"
        "  - name: store\n"
        "    business_key: id\n"
        "    attributes: [{name: id, type: INT}]\n"
        "    calendar: {fiscal_year_start_month: 4}\n"
    )
    found = problems(load_models(write_model(tmp_path, text)))
    assert [p[1:] for p in found] == [
        (5, "dimensions[0].calendar", "a calendar belongs to a date dimension (kind: date)")
    ]


def test_a_holiday_name_too_long_for_its_column_is_refused_at_its_line(tmp_path):
    """holiday_name is VARCHAR(100): a longer name passed validate and failed the load
    (PostgreSQL) or was stored whole against the declared type (DuckDB)."""
    text = (
        "dimensions:\n  - name: date\n    kind: date\n    calendar:\n      holidays:\n"
        f"        - {{date: 2024-12-25, name: {'x' * 101}}}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_models(write_model(tmp_path, text))
    assert caught.value.problems[0][1:3] == (6, "dimensions[0].calendar.holidays[0].name")


def test_bigquery_options_are_checked_against_bigquery_columns(tmp_path):
    """Passed validate, failed in BigQuery: clustering by a FLOAT64 measure, partitioning by
    a key that is text there (hash keys), identity keys BigQuery cannot make."""
    text = (
        "dimensions:\n"
        "  - name: customer\n"
        "    business_key: customer_id\n"
        "    attributes: [{name: customer_id, type: INTEGER}]\n"
        "    physical: {bigquery: {surrogate_key: hash}}\n"
        "  - name: store\n"
        "    business_key: store_id\n"
        "    attributes: [{name: store_id, type: INTEGER}]\n"
        "    physical: {bigquery: {cluster_by: [store_id]}}\n"
        "facts:\n"
        "  - name: sales\n"
        "    grain: [customer]\n"
        "    dimensions: [customer]\n"
        "    measures: [{name: amount, type: DOUBLE}]\n"
        "    physical:\n"
        "      bigquery: {cluster_by: [amount], partition_by: customer_key}\n"
    )
    found = {(p[1], p[2]): p[3] for p in problems(load_models(write_model(tmp_path, text)))}
    assert set(found) == {
        (9, "dimensions[1].physical.bigquery"),
        (16, "facts[0].physical.bigquery.cluster_by"),
        (16, "facts[0].physical.bigquery.partition_by"),
    }
    assert found[(9, "dimensions[1].physical.bigquery")].startswith(
        "bigquery cannot generate identity surrogate keys"
    )
    assert (
        "'amount' is DOUBLE; bigquery needs one of"
        in found[(16, "facts[0].physical.bigquery.cluster_by")]
    )
    assert "'customer_key' is VARCHAR(32)" in found[(16, "facts[0].physical.bigquery.partition_by")]


def test_inferred_members_and_milestones_are_checked_before_a_load(tmp_path):
    """Both passed `crane model validate` and failed only in `crane model load`."""
    text = (
        "dimensions:\n"
        "  - name: customer\n"
        "    business_key: customer_id\n"
        "    surrogate_key: {strategy: hash}\n"
        "    attributes: [{name: customer_id, type: INTEGER}]\n"
        "facts:\n"
        "  - name: flow\n"
        "    type: accumulating_snapshot\n"
        "    grain: [order_id]\n"
        "    dimensions: [{dimension: customer, on_missing: infer}]\n"
        "    degenerate: [{name: order_id, type: INT}]\n"
        "    milestones: [customer]\n"
    )
    found = [p[1:] for p in problems(load_models(write_model(tmp_path, text)))]
    assert found == [
        (
            12,
            "facts[0].milestones[0]",
            "milestone 'customer' must reference a date dimension, not 'customer'",
        ),
        (
            10,
            "facts[0].dimensions[0].on_missing",
            "inferring customer members needs an "
            "attribute {name: is_inferred, type: BOOLEAN} on dimension 'customer'",
        ),
        (
            10,
            "facts[0].dimensions[0].on_missing",
            "inferred members need sequence keys; 'customer' has hash",
        ),
    ]


def test_a_type_split_at_its_comma_by_yaml_says_to_quote_it(tmp_path):
    """``{type: DECIMAL(10,2)}`` in a flow mapping is ``type: DECIMAL(10`` plus a key
    ``2)``: the error used to be "unknown field '2)'"."""
    text = (
        "dimensions:\n"
        "  - name: d\n"
        "    business_key: id\n"
        "    attributes:\n"
        "      - {name: id, type: INT}\n"
        "      - {name: price, type: DECIMAL(10,2), scd: 2}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_models(write_model(tmp_path, text))
    assert [p[1:] for p in caught.value.problems] == [
        (
            6,
            "dimensions[0].attributes[1]",
            "YAML split the type 'DECIMAL(10,2)' at its comma: quote it (type: \"DECIMAL(10,2)\")",
        )
    ]


def test_a_time_dimension_with_a_source_is_reported():
    model = Model(dimensions=[DimensionSpec(name="time", kind="time", source="SELECT 1")])
    assert [p[2:] for p in problems(from_model(model))] == [
        (
            "dimensions[0].source",
            "a time-of-day dimension is generated whole (1,440 minutes): drop `source`",
        )
    ]


def test_one_role_name_on_two_dimensions_is_reported():
    """dim_date and dim_day in role 'due' both want the view dim_due: only the first was
    created, the other reference silently had no view."""
    model = Model.model_validate(
        {
            "dimensions": [
                {"name": "date", "kind": "date"},
                {"name": "day", "kind": "date"},
            ],
            "facts": [
                {"name": n, "grain": ["due"], "dimensions": [{"dimension": d, "role": "due"}]}
                for n, d in (("a", "date"), ("b", "day"))
            ],
        }
    )
    assert [p[2:] for p in problems(from_model(model))] == [
        (
            "facts[1].dimensions[0].role",
            "the role view 'dim_due' of role 'due' is also role view of 'date'",
        )
    ]


def test_misspelt_milestone_and_tie_break_suggest_the_name():
    model = Model.model_validate(
        {
            "dimensions": [
                {"name": "date", "kind": "date"},
                {
                    "name": "c",
                    "business_key": "id",
                    "tie_break": "seqno",
                    "attributes": [
                        {"name": "id", "type": "INT"},
                        {"name": "seq_no", "type": "INT"},
                    ],
                },
            ],
            "facts": [
                {
                    "name": "flow",
                    "type": "accumulating_snapshot",
                    "grain": ["order_id"],
                    "degenerate": [{"name": "order_id", "type": "INT"}],
                    "dimensions": [{"dimension": "date", "role": "shipped"}],
                    "milestones": ["shiped"],
                }
            ],
        }
    )
    reasons = [p[3] for p in problems(from_model(model))]
    assert "tie_break 'seqno' is not an attribute (did you mean 'seq_no'?)" in reasons
    assert "milestone 'shiped' is not a reference (did you mean 'shipped'?)" in reasons


def test_a_snapshot_period_must_be_a_date_reference():
    """A period on another dimension passed validate; crane model load then looked for
    its key column in the source."""
    model = Model.model_validate(
        {
            "dimensions": [
                {
                    "name": "store",
                    "business_key": "id",
                    "attributes": [{"name": "id", "type": "INT"}],
                }
            ],
            "facts": [
                {
                    "name": "stock",
                    "type": "periodic_snapshot",
                    "grain": ["store"],
                    "dimensions": ["store"],
                    "period": "store",
                }
            ],
        }
    )
    assert [p[2:] for p in problems(from_model(model))] == [
        ("facts[0].period", "period 'store' must reference a date dimension, not 'store'")
    ]


@pytest.mark.parametrize("kind", ["INT8", "INT4", "INT2", "BIGNUMERIC", "NUMBER(12, 2)"])
def test_numeric_spellings_are_additive(kind):
    """An additive INT8 or INT4 measure was reported as "not numeric"."""
    fact = FactSpec(
        name="f",
        grain=["id"],
        degenerate=[{"name": "id", "type": "INT"}],
        measures=[{"name": "m", "type": kind}],
    )
    assert problems(from_model(Model(facts=[fact]))) == []
