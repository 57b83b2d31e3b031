"""`crane model load` on real engines: a small star schema built from raw tables, two days.

The model is applied with its foreign keys (enforced on DuckDB), loaded from
``source:`` SELECTs, changed (a customer moves, a price changes, a stock recount)
and loaded again: versions, as-of fact keys, unknown members, snapshot
replacement, rerun no-ops and run records are checked by value.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from _wh_engines import PG_URL
from typer.testing import CliRunner

from crane.connectors.base import Connector, connect
from crane.errors import ConfigError, LoadError
from crane.warehouse import plan as planner
from crane.warehouse.columns import Attribute
from crane.warehouse.load import load_model, load_order, placeholder
from crane.warehouse.spec import FactSpec, Model


@pytest.fixture(
    params=["duckdb", pytest.param("postgres", marks=pytest.mark.integration)],
)
def wh(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[Connector, str, str]]:
    """(connection, raw schema, model schema)."""
    if request.param == "duckdb":
        with connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as con:
            yield con, "main", "gold"
        return
    schema = request.getfixturevalue("pg_schema")
    with connect(PG_URL) as con:
        yield con, schema, schema


def _model(raw: str, gold: str) -> Model:
    return Model.model_validate(
        {
            "schema": gold,
            "dimensions": [
                {
                    "name": "customer",
                    "business_key": "customer_id",
                    "attributes": [
                        {"name": "customer_id", "type": "INTEGER"},
                        {"name": "email", "type": "VARCHAR(100)", "nullable": False},
                        {"name": "city", "type": "VARCHAR(50)", "scd": 2},
                    ],
                    "source": "SELECT customer_id, lower(trim(email)) AS email, city, updated_at"
                    f" FROM {raw}.customers",
                },
                {
                    "name": "product",
                    "business_key": "product_id",
                    "attributes": [
                        {"name": "product_id", "type": "INTEGER"},
                        {"name": "price", "type": "DECIMAL(10, 2)", "scd": 2},
                    ],
                    "source": f"SELECT product_id, price, updated_at FROM {raw}.products",
                },
                {
                    "name": "date",
                    "kind": "date",
                    "source": "SELECT min(CAST(placed_at AS DATE)), max(CAST(placed_at AS DATE))"
                    f" FROM {raw}.sales",
                },
                {
                    "name": "channel",
                    "business_key": "code",
                    "attributes": [{"name": "code", "type": "VARCHAR(10)"}],
                },
            ],
            "facts": [
                {
                    "name": "sales",
                    "grain": ["order_id"],
                    "dimensions": [
                        {"dimension": "date", "role": "order_date"},
                        "customer",
                        "product",
                    ],
                    "degenerate": [{"name": "order_id", "type": "INTEGER"}],
                    "measures": [{"name": "amount", "type": "DECIMAL(12, 2)"}],
                    "event_time": "placed_at",
                    "source": "SELECT CAST(placed_at AS DATE) AS order_date, placed_at,"
                    f" customer_id, product_id, order_id, amount FROM {raw}.sales",
                },
                {
                    "name": "stock",
                    "type": "periodic_snapshot",
                    "grain": ["snapshot_date", "product"],
                    "period": "snapshot_date",
                    "dimensions": [{"dimension": "date", "role": "snapshot_date"}, "product"],
                    "measures": [{"name": "qty", "type": "INTEGER", "additivity": "semi"}],
                    "event_time": "counted_at",
                    "source": "SELECT day AS snapshot_date, counted_at, product_id, qty"
                    f" FROM {raw}.stock",
                },
            ],
        }
    )


def _ts(text: str) -> str:
    return f"TIMESTAMP '2024-03-{text}'"


def _day1(con: Connector, raw: str) -> None:
    ddl = {
        "customers": "customer_id INT, email VARCHAR(100), city VARCHAR(50), updated_at TIMESTAMP",
        "products": "product_id INT, price DECIMAL(10, 2), updated_at TIMESTAMP",
        "sales": "order_id INT, customer_id INT, product_id INT, placed_at TIMESTAMP,"
        " amount DECIMAL(12, 2)",
        "stock": "day DATE, product_id INT, qty INT, counted_at TIMESTAMP",
    }
    for name, columns in ddl.items():
        con.execute(f"CREATE TABLE {raw}.{name} ({columns})")
    con.execute(
        f"INSERT INTO {raw}.customers VALUES (1, ' Ada@X.com ', 'Berlin', {_ts('01 09:00:00')}),"
        f" (2, 'bo@x.com', 'Paris', {_ts('01 09:00:00')})"
    )
    con.execute(f"INSERT INTO {raw}.products VALUES (1, 10.00, {_ts('01 08:00:00')})")
    con.execute(
        f"INSERT INTO {raw}.sales VALUES (1, 1, 1, {_ts('02 10:00:00')}, 10.00),"
        f" (2, 99, 1, {_ts('02 11:00:00')}, 20.00)"
    )
    con.execute(f"INSERT INTO {raw}.stock VALUES (DATE '2024-03-02', 1, 5, {_ts('02 23:00:00')})")


def _day2(con: Connector, raw: str) -> None:
    con.execute(
        f"UPDATE {raw}.customers SET city = 'Rome', updated_at = {_ts('03 09:00:00')}"
        " WHERE customer_id = 1"
    )
    con.execute(
        f"UPDATE {raw}.products SET price = 12.00, updated_at = {_ts('03 09:00:00')}"
        " WHERE product_id = 1"
    )
    con.execute(
        f"INSERT INTO {raw}.sales VALUES (3, 1, 1, {_ts('03 12:00:00')}, 12.00),"
        f" (4, 2, 1, {_ts('03 08:00:00')}, 10.00)"
    )
    con.execute(f"UPDATE {raw}.stock SET qty = 4")  # a recount of day 1
    con.execute(f"INSERT INTO {raw}.stock VALUES (DATE '2024-03-03', 1, 7, {_ts('03 23:00:00')})")


def _rows(con: Connector, sql: str) -> list[tuple]:
    return [tuple(r) for r in con.fetch(sql)]


def test_star_schema_two_days(wh: tuple[Connector, str, str]) -> None:
    con, raw, gold = wh
    model = _model(raw, gold)
    _day1(con, raw)
    planner.apply(planner.plan(model, con), con)
    first = load_model(con, model)
    assert [o.name for o in first.objects] == ["date", "customer", "product", "sales", "stock"]
    assert first.skipped == ["channel"]
    assert _rows(con, f"SELECT email FROM {gold}.dim_customer WHERE customer_id = 1") == [
        ("ada@x.com",)
    ]
    _day2(con, raw)
    second = load_model(con, model)

    history = _rows(
        con,
        f"SELECT city, is_current, effective_to IS NULL FROM {gold}.dim_customer"
        " WHERE customer_id = 1 ORDER BY effective_from",
    )
    assert history == [("Berlin", False, False), ("Rome", True, True)]
    # each sale points at the version valid when it was placed; customer 99: unknown
    attributed = _rows(
        con,
        f"SELECT f.order_id, d.city, p.price FROM {gold}.fact_sales f"
        f" JOIN {gold}.dim_customer d ON d.customer_key = f.customer_key"
        f" JOIN {gold}.dim_product p ON p.product_key = f.product_key ORDER BY f.order_id",
    )
    assert [(o, c, float(p)) for o, c, p in attributed] == [
        (1, "Berlin", 10.0),
        (2, None, 10.0),  # the unknown member: NOT NULL columns get placeholders only
        (3, "Rome", 12.0),
        (4, "Paris", 10.0),
    ]
    assert _rows(con, f"SELECT customer_key FROM {gold}.fact_sales WHERE order_id = 2") == [(-1,)]
    assert _rows(con, f"SELECT DISTINCT order_date_key FROM {gold}.fact_sales ORDER BY 1") == [
        (20240302,),
        (20240303,),
    ]
    # the snapshot replaced day 1 with the recount
    assert _rows(con, f"SELECT snapshot_date_key, qty FROM {gold}.fact_stock ORDER BY 1") == [
        (20240302, 4),
        (20240303, 7),
    ]
    # two days, and the unknown day (-1) the facts' foreign keys may point at
    assert _rows(con, f"SELECT date_key FROM {gold}.dim_date ORDER BY 1") == [
        (-1,),
        (20240302,),
        (20240303,),
    ]

    again = load_model(con, model)  # a rerun changes nothing
    by_name = {o.name: o for o in again.objects}
    assert all(by_name[n].inserted == 0 for n in ("date", "customer", "product", "sales"))
    assert _rows(con, f"SELECT count(*) FROM {gold}.dim_customer WHERE customer_id = 1") == [(2,)]
    runs = _rows(
        con,
        "SELECT status, count(*) FROM _crane.runs WHERE pipeline = 'model.customer'"
        f" AND run_id IN ('{first.run_id}', '{second.run_id}', '{again.run_id}') GROUP BY status",
    )
    assert runs == [("success", 3)]
    assert _rows(con, f"SELECT count(*) FROM {gold}.fact_sales") == [(4,)]
    assert _stages(con, gold) == [(0,)]


def _stages(con: Connector, schema: str) -> list[tuple]:
    """Staging tables left behind (none: dropped on success, rolled back on failure)."""
    return _rows(
        con,
        "SELECT count(*) FROM information_schema.tables"
        f" WHERE table_schema = '{schema}' AND table_name LIKE '_crane_stage%'",
    )


def test_failed_load_rolls_back_and_is_recorded(wh: tuple[Connector, str, str]) -> None:
    con, raw, gold = wh
    model = _model(raw, gold)
    _day1(con, raw)
    planner.apply(planner.plan(model, con), con)
    broken = model.model_copy(deep=True)
    broken.dimensions[0].source = f"SELECT customer_id FROM {raw}.no_such_table"
    with pytest.raises(LoadError) as failure:
        load_model(con, broken, ["customer"])
    assert failure.value.table == f"{gold}.dim_customer"
    assert _rows(con, f"SELECT count(*) FROM {gold}.dim_customer") == [(0,)]
    assert _stages(con, gold) == [(0,)]
    run = failure.value.run_id  # _crane.runs is shared by every PostgreSQL test
    assert _rows(
        con,
        f"SELECT status FROM _crane.runs WHERE pipeline = 'model.customer' AND run_id = '{run}'",
    ) == [("failed",)]
    with pytest.raises(ConfigError, match="no dimension, fact or bridge named 'custmer'"):
        load_model(con, model, ["custmer"])
    with pytest.raises(ConfigError, match="declares no source"):
        load_model(con, model, ["channel"])
    broken.dimensions[0].source = f"SELECT customer_id, email, city FROM {raw}.customers"
    with pytest.raises(ConfigError, match="source of customer lacks column.s. updated_at"):
        load_model(con, broken, ["customer"])
    broken.facts[0].source = f"SELECT order_id, amount FROM {raw}.sales"
    with pytest.raises(ConfigError, match="order_date, customer_id, product_id, placed_at"):
        load_model(con, broken, ["sales"])


def test_load_order_and_placeholders() -> None:
    model = _model("raw", "gold")
    assert [o.name for o in load_order(model)][:2] == ["date", "customer"]
    assert [o.name for o in load_order(model, ["stock", "product"])] == ["product", "stock"]
    assert (placeholder("DATE"), placeholder("BOOLEAN"), placeholder("DECIMAL(10, 2)")) == (
        datetime(1900, 1, 1),
        False,
        -1,
    )


def test_cli_model_load(tmp_path) -> None:
    """`crane model load` in a project: apply, load, rerun (JSON output)."""
    import json

    from crane.cli.app import build_app

    (tmp_path / "crane.yml").write_text(f"name: t\nwarehouse: duckdb:///{tmp_path / 'wh.duckdb'}\n")
    (tmp_path / "models").mkdir()
    model = _model("main", "gold").model_dump(by_alias=True, exclude_none=True)
    import yaml

    (tmp_path / "models" / "star.yml").write_text(yaml.safe_dump(model, sort_keys=False))
    with connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as con:
        _day1(con, "main")
    runner, app = CliRunner(), build_app()
    args = ["--project", str(tmp_path)]
    assert runner.invoke(app, ["model", "apply", *args]).exit_code == 0
    result = runner.invoke(app, ["model", "load", "sales", "customer", "date", "--json", *args])
    assert result.exit_code == 0, result.output
    loaded = json.loads(result.output)
    assert [(o["name"], o["inserted"], o["quarantined"]) for o in loaded["objects"]] == [
        ("date", 1, 0),
        ("customer", 2, 0),
        ("sales", 2, 0),
    ]
    with connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as con:
        con.execute(f"INSERT INTO main.customers VALUES (-1, 'x', 'y', {_ts('04')})")
    text = runner.invoke(app, ["model", "load", *args])
    assert text.exit_code == 0, text.output
    assert "skipped channel" in text.output and "loaded 5 object(s)" in text.output
    # the reserved-key row is reported where it went, not dropped without a word
    assert "1 quarantined in gold.dim_customer_quarantine" in text.output
    with connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as con:
        con.execute("UPDATE main.sales SET amount = 11.00 WHERE order_id = 1")
    text = runner.invoke(app, ["model", "load", "sales", *args])
    assert text.exit_code == 0, text.output
    # a sale re-delivered with another amount: where it went, and the one that added nothing
    assert "1 quarantined in gold.fact_sales_quarantine, 1 unchanged" in text.output


def test_inferred_member_completed_when_its_row_arrives(wh: tuple[Connector, str, str]) -> None:
    """Customer 99 buys before the customer pipeline knows them: an inferred member
    (placeholders in NOT NULL columns) that the real row completes in place."""
    con, raw, gold = wh
    model = _model(raw, gold)
    model.dimensions[0].attributes.append(Attribute(name="is_inferred", type="BOOLEAN"))
    model.facts[0].dimensions[1].on_missing = "infer"
    _day1(con, raw)
    planner.apply(planner.plan(model, con), con)
    load_model(con, model)
    member = f"SELECT customer_key, email, city, is_inferred FROM {gold}.dim_customer"
    inferred = _rows(con, f"{member} WHERE customer_id = 99")
    assert [r[1:] for r in inferred] == [("unknown", None, True)]
    key = inferred[0][0]
    assert _rows(con, f"SELECT customer_key FROM {gold}.fact_sales WHERE order_id = 2") == [(key,)]

    con.execute(
        f"INSERT INTO {raw}.customers VALUES (99, 'Zoe@X.com', 'Oslo', {_ts('03 07:00:00')})"
    )
    second = load_model(con, model, ["customer"])
    assert second.objects[0].updated >= 1
    assert _rows(con, f"{member} WHERE customer_id = 99") == [(key, "zoe@x.com", "Oslo", False)]
    assert _rows(con, f"SELECT count(*) FROM {gold}.dim_customer WHERE is_inferred") == [(0,)]
    # a NULL for an inferred member's NOT NULL column: the in-place completion wrote it
    # before the load named column and row, and failed with the engine's words
    con.execute(f"INSERT INTO {raw}.customers VALUES (98, NULL, 'Oslo', {_ts('03 07:00:00')})")
    con.execute(f"INSERT INTO {raw}.sales VALUES (5, 98, 1, {_ts('02 12:00:00')}, 5.00)")
    load_model(con, model, ["sales"])  # infers customer 98
    with pytest.raises(LoadError, match="email is NULL in 1 source row") as caught:
        load_model(con, model, ["customer"])
    assert caught.value.row == "customer_id = 98"
    model.facts[0].dimensions[2].on_missing = "infer"  # product has no is_inferred
    with pytest.raises(ConfigError, match="declare an attribute `{name: is_inferred"):
        load_model(con, model, ["sales"])


def test_accumulating_snapshot_milestones(wh: tuple[Connector, str, str]) -> None:
    """One row per order; milestone dates fill in as events arrive, in any order."""
    con, raw, gold = wh
    model = _model(raw, gold)
    model.facts.append(
        FactSpec.model_validate(
            {
                "name": "fulfilment",
                "type": "accumulating_snapshot",
                "grain": ["order_id"],
                "dimensions": [
                    {"dimension": "date", "role": "order_date"},
                    "customer",
                    {"dimension": "date", "role": "shipped_date"},
                    {"dimension": "date", "role": "delivered_date"},
                ],
                "milestones": ["shipped_date", "delivered_date"],
                "degenerate": [{"name": "order_id", "type": "INTEGER"}],
                "measures": [{"name": "amount", "type": "DECIMAL(12, 2)"}],
                "event_time": "placed_at",
                "source": "SELECT s.order_id, CAST(s.placed_at AS DATE) AS order_date,"
                " s.placed_at, s.customer_id, s.amount, e.milestone, e.event_at AS milestone_at"
                f" FROM {raw}.sales s JOIN {raw}.events e ON e.order_id = s.order_id",
            }
        )
    )
    model.dimensions[2].source = (
        "SELECT min(d), max(d) FROM (SELECT CAST(placed_at AS DATE) AS d"
        f" FROM {raw}.sales UNION ALL SELECT CAST(event_at AS DATE) FROM {raw}.events) AS x"
    )
    _day1(con, raw)
    con.execute(
        f"CREATE TABLE {raw}.events (order_id INT, milestone VARCHAR(20), event_at TIMESTAMP)"
    )
    con.execute(f"INSERT INTO {raw}.events VALUES (1, 'shipped_date', {_ts('02 18:00:00')})")
    planner.apply(planner.plan(model, con), con)
    load_model(con, model)
    query = (
        f"SELECT order_id, order_date_key, shipped_date_key, delivered_date_key, amount"
        f" FROM {gold}.fact_fulfilment ORDER BY order_id"
    )
    assert [r[:4] for r in _rows(con, query)] == [(1, 20240302, 20240302, None)]
    # delivered, and a late duplicate "shipped" event dated later: the earliest stays
    con.execute(
        f"INSERT INTO {raw}.events VALUES (1, 'delivered_date', {_ts('04 09:00:00')}),"
        f" (1, 'shipped_date', {_ts('03 09:00:00')}), (2, 'shipped_date', {_ts('05 09:00:00')})"
    )
    fulfilment = load_model(con, model, ["date", "fulfilment"]).objects[-1]
    assert [r[:4] for r in _rows(con, query)] == [
        (1, 20240302, 20240302, 20240304),
        (2, 20240302, 20240305, None),
    ]
    assert _rows(con, f"SELECT customer_key FROM {gold}.fact_fulfilment WHERE order_id = 2") == [
        (-1,)
    ]
    assert fulfilment.unknown == 1  # order 2's event (customer 99), as a fact's rows are
    # a label the fact does not declare: its events were ignored without a word
    con.execute(f"INSERT INTO {raw}.events VALUES (2, 'delivred_date', {_ts('06 09:00:00')})")
    with pytest.raises(LoadError, match="1 source event.s. name milestone 'delivred_date'") as e:
        load_model(con, model, ["fulfilment"])
    assert (e.value.column, e.value.row) == ("milestone", "milestone = 'delivred_date'")
    assert [r[:4] for r in _rows(con, query)][1] == (2, 20240302, 20240305, None)


def _lines_model(raw: str, gold: str, key_strategy: str = "identity") -> Model:
    """Order lines named by (order_id, product): a grain that holds a dimension reference."""
    return Model.model_validate(
        {
            "schema": gold,
            "dimensions": [
                {
                    "name": "product",
                    "business_key": "product_id",
                    "surrogate_key": {"strategy": key_strategy},
                    "attributes": [
                        {"name": "product_id", "type": "INTEGER"},
                        {"name": "name", "type": "VARCHAR(20)", "nullable": False},
                    ],
                    "source": f"SELECT product_id, name, updated_at FROM {raw}.products",
                }
            ],
            "facts": [
                {
                    "name": "lines",
                    "grain": ["order_id", "product"],
                    "dimensions": ["product"],
                    "degenerate": [{"name": "order_id", "type": "INTEGER"}],
                    "measures": [{"name": "qty", "type": "INTEGER"}],
                    "source": f"SELECT order_id, product_id, qty FROM {raw}.lines",
                }
            ],
        }
    )


@pytest.mark.parametrize("key_strategy", ["identity", "hash"])
def test_grain_with_a_reference_keeps_every_line(
    wh: tuple[Connector, str, str], key_strategy: str
) -> None:
    """Two lines of one order (grain order_id + product) are two rows, a rerun adds none,
    and a line whose product is missing points at the unknown member, whatever the key."""
    con, raw, gold = wh
    model = _lines_model(raw, gold, key_strategy)
    columns = "product_id INT, name VARCHAR(20), updated_at TIMESTAMP"
    con.execute(f"CREATE TABLE {raw}.products ({columns})")
    con.execute(f"INSERT INTO {raw}.products VALUES (1, 'a', {_ts('01')}), (2, 'b', {_ts('01')})")
    con.execute(f"CREATE TABLE {raw}.lines (order_id INT, product_id INT, qty INT)")
    con.execute(f"INSERT INTO {raw}.lines VALUES (10, 1, 5), (10, 2, 7), (11, 99, 1), (11, 99, 1)")
    planner.apply(planner.plan(model, con), con)
    load_model(con, model)
    query = (
        f"SELECT f.order_id, d.product_id, f.qty FROM {gold}.fact_lines f"
        f" JOIN {gold}.dim_product d ON d.product_key = f.product_key ORDER BY 1, 2"
    )
    expected = [(10, 1, 5), (10, 2, 7), (11, -1, 1)]
    assert _rows(con, query) == expected
    rerun = load_model(con, model)
    assert rerun.objects[-1].inserted == 0
    assert _rows(con, query) == expected


def test_date_dimension_takes_its_calendar_from_the_model(wh: tuple[Connector, str, str]) -> None:
    """`crane model load` generated every date dimension with fiscal year = calendar year
    and no holidays: the model had no way to say otherwise."""
    con, _, gold = wh
    model = Model.model_validate(
        {
            "schema": gold,
            "dimensions": [
                {
                    "name": "date",
                    "kind": "date",
                    "source": "SELECT DATE '2024-06-29' AS first_day,"
                    " DATE '2024-07-01' AS last_day",
                    "calendar": {
                        "fiscal_year_start_month": 7,
                        "holidays": [{"date": "2024-06-30", "name": "Founders"}],
                        "weekend_days": [5, 6],
                    },
                }
            ],
        }
    )
    planner.apply(planner.plan(model, con), con)
    load_model(con, model)
    assert _rows(
        con,
        "SELECT date_key, fiscal_year, fiscal_month, is_weekend, holiday_name"
        f" FROM {gold}.dim_date ORDER BY 1",
    ) == [
        (20240629, 2024, 12, True, None),  # a Saturday
        (20240630, 2024, 12, False, "Founders"),  # a Sunday, not a weekend day here
        (20240701, 2025, 1, False, None),
    ]


def test_a_missing_date_points_at_the_unknown_day(wh: tuple[Connector, str, str]) -> None:
    """An order not shipped yet (ship_date NULL) failed the whole fact load on the foreign
    key to dim_date (key -1 had no row); as an accumulating snapshot's event its -1 was
    the "earliest" day and held the milestone forever."""
    con, raw, gold = wh
    dates = "SELECT DATE '2024-03-01' AS first_day, DATE '2024-03-31' AS last_day"
    roles = [{"dimension": "date", "role": "ordered"}, {"dimension": "date", "role": "shipped"}]
    events = (
        f"SELECT order_id, 'ordered' AS milestone, ordered_at AS milestone_at FROM {raw}.orders"
        f" UNION ALL SELECT order_id, 'shipped', shipped_at FROM {raw}.orders"
    )
    model = Model.model_validate(
        {
            "schema": gold,
            "dimensions": [{"name": "date", "kind": "date", "source": dates}],
            "facts": [
                {
                    "name": "orders",
                    "grain": ["order_id"],
                    "dimensions": roles,
                    "degenerate": [{"name": "order_id", "type": "INTEGER"}],
                    "source": "SELECT order_id, ordered_at AS ordered, shipped_at AS shipped"
                    f" FROM {raw}.orders",
                },
                {
                    "name": "flow",
                    "type": "accumulating_snapshot",
                    "grain": ["order_id"],
                    "dimensions": roles,
                    "milestones": ["ordered", "shipped"],
                    "degenerate": [{"name": "order_id", "type": "INTEGER"}],
                    "source": events,
                },
            ],
        }
    )
    con.execute(f"CREATE TABLE {raw}.orders (order_id INT, ordered_at TIMESTAMP, shipped_at DATE)")
    con.execute(f"INSERT INTO {raw}.orders VALUES (1, {_ts('02 10:00:00')}, NULL)")
    planner.apply(planner.plan(model, con), con)
    load_model(con, model)
    keys = "SELECT order_id, ordered_key, shipped_key FROM {}.{} ORDER BY 1"
    assert _rows(con, keys.format(gold, "fact_orders")) == [(1, 20240302, -1)]
    assert _rows(con, keys.format(gold, "fact_flow")) == [(1, 20240302, None)]
    con.execute(f"UPDATE {raw}.orders SET shipped_at = DATE '2024-03-05'")
    load_model(con, model)
    assert _rows(con, keys.format(gold, "fact_flow")) == [(1, 20240302, 20240305)]


def test_an_inferred_member_completed_keeps_one_version_with_a_row_hash(
    wh: tuple[Connector, str, str],
) -> None:
    """With `row_hash` declared, the completed inferred member kept a NULL hash: the SCD
    load that followed saw a change and added a second, identical version."""
    con, raw, gold = wh
    attributes = [
        {"name": "customer_id", "type": "INTEGER"},
        {"name": "city", "type": "VARCHAR(20)", "scd": 2},
        {"name": "is_inferred", "type": "BOOLEAN"},
    ]
    model = Model.model_validate(
        {
            "schema": gold,
            "dimensions": [
                {
                    "name": "customer",
                    "business_key": "customer_id",
                    "attributes": attributes,
                    "scd2_columns": {"row_hash": "row_hash"},
                    "source": f"SELECT customer_id, city, updated_at FROM {raw}.customers",
                }
            ],
            "facts": [
                {
                    "name": "sales",
                    "grain": ["order_id"],
                    "event_time": "placed_at",
                    "dimensions": [{"dimension": "customer", "on_missing": "infer"}],
                    "degenerate": [{"name": "order_id", "type": "INTEGER"}],
                    "source": f"SELECT order_id, customer_id, placed_at FROM {raw}.orders",
                }
            ],
        }
    )
    columns = "customer_id INT, city VARCHAR(20), updated_at TIMESTAMP"
    con.execute(f"CREATE TABLE {raw}.customers ({columns})")
    con.execute(f"CREATE TABLE {raw}.orders (order_id INT, customer_id INT, placed_at TIMESTAMP)")
    con.execute(f"INSERT INTO {raw}.orders VALUES (1, 7, {_ts('05 10:00:00')})")
    planner.apply(planner.plan(model, con), con)
    load_model(con, model)  # customer 7 is inferred from the sale
    con.execute(f"INSERT INTO {raw}.customers VALUES (7, 'Oslo', {_ts('01 00:00:00')})")
    load_model(con, model)
    load_model(con, model)
    versions = (
        f"SELECT d.city, d.is_current, d.is_inferred FROM {gold}.dim_customer d"
        f" JOIN {gold}.fact_sales f ON f.customer_key = d.customer_key"
    )
    assert _rows(con, versions) == [("Oslo", True, False)]
    count = f"SELECT count(*) FROM {gold}.dim_customer WHERE customer_id = 7"
    assert _rows(con, count) == [(1,)]


def test_a_date_dimension_over_empty_raw_tables_adds_no_days(
    wh: tuple[Connector, str, str],
) -> None:
    """min()/max() over a raw table with no rows yet is (NULL, NULL): the first load of a
    new project failed with "must return one row", which it had returned."""
    con, raw, gold = wh
    con.execute(f"CREATE TABLE {raw}.orders (order_date DATE)")
    source = f"SELECT min(order_date) AS first_day, max(order_date) AS last_day FROM {raw}.orders"
    model = Model.model_validate(
        {"schema": gold, "dimensions": [{"name": "date", "kind": "date", "source": source}]}
    )
    planner.apply(planner.plan(model, con), con)
    assert load_model(con, model).objects[0].inserted == 0
    con.execute(f"INSERT INTO {raw}.orders VALUES (DATE '2024-03-01'), (DATE '2024-03-02')")
    assert load_model(con, model).objects[0].inserted == 2


def test_a_bridge_with_a_source_is_loaded(wh: tuple[Connector, str, str]) -> None:
    """A bridge's `source:` was accepted by the spec and silently never loaded (and
    `crane model load <bridge>` answered "no dimension or fact named …")."""
    con, raw, gold = wh

    def dim(name: str) -> dict:
        key = f"{name}_id"
        return {
            "name": name,
            "business_key": key,
            "attributes": [{"name": key, "type": "INTEGER"}],
            "source": f"SELECT DISTINCT {key}, {_ts('01')} AS updated_at FROM {raw}.holders",
        }

    model = Model.model_validate(
        {
            "schema": gold,
            "dimensions": [dim("account"), dim("customer")],
            "bridges": [
                {
                    "name": "holder",
                    "dimensions": ["account", "customer"],
                    "source": "SELECT account_id, customer_id, share AS weighting_factor"
                    f" FROM {raw}.holders",
                }
            ],
        }
    )
    columns = "account_id INT, customer_id INT, share DECIMAL(9, 6)"
    con.execute(f"CREATE TABLE {raw}.holders ({columns})")
    con.execute(f"INSERT INTO {raw}.holders VALUES (1, 10, 0.5), (1, 11, 0.5), (2, 10, 1.0)")
    planner.apply(planner.plan(model, con), con)
    first = load_model(con, model)
    assert [(o.name, o.kind, o.inserted) for o in first.objects][-1] == ("holder", "bridge", 3)
    pairs = (
        f"SELECT a.account_id, c.customer_id, b.weighting_factor FROM {gold}.bridge_holder b"
        f" JOIN {gold}.dim_account a ON a.account_key = b.account_key"
        f" JOIN {gold}.dim_customer c ON c.customer_key = b.customer_key ORDER BY 1, 2"
    )
    expected = [(1, 10, 0.5), (1, 11, 0.5), (2, 10, 1.0)]
    assert [(a, c, float(w)) for a, c, w in _rows(con, pairs)] == expected
    assert load_model(con, model, ["holder"]).objects[0].inserted == 0  # a rerun adds none
    # a second, different weight for one pair: one of the two was dropped without a word
    con.execute(f"INSERT INTO {raw}.holders VALUES (2, 10, 0.25)")
    with pytest.raises(LoadError, match="2 different source rows share one grain") as caught:
        load_model(con, model, ["holder"])
    assert caught.value.row == "account_id = 2, customer_id = 10"
    assert [(a, c, float(w)) for a, c, w in _rows(con, pairs)] == expected
    # the pair re-delivered with another weight alone: kept as loaded, quarantined, counted
    con.execute(f"DELETE FROM {raw}.holders WHERE share = 1.0")
    [holder] = load_model(con, model, ["holder"]).objects
    assert (holder.rows_in, holder.inserted, holder.quarantined, holder.unchanged) == (3, 0, 1, 2)
    assert [(a, c, float(w)) for a, c, w in _rows(con, pairs)] == expected
    reason = _rows(con, f"SELECT _crane_reason FROM {gold}.bridge_holder_quarantine")
    assert reason[0][0].startswith("changed_fact_row: bridge holder already holds")


def test_a_time_of_day_dimension_is_generated_by_the_load(
    wh: tuple[Connector, str, str],
) -> None:
    """Without a source it was skipped, with one it failed ("drop `source`"): `crane model
    load` could never fill a declared time-of-day dimension."""
    con, _, gold = wh
    model = Model.model_validate({"schema": gold, "dimensions": [{"name": "time", "kind": "time"}]})
    planner.apply(planner.plan(model, con), con)
    first = load_model(con, model)
    assert (first.skipped, first.objects[0].inserted) == ([], 1440)
    assert _rows(
        con, f"SELECT time_key, time_label, day_part FROM {gold}.dim_time WHERE minute_of_day = 61"
    ) == [(101, "01:01", "night")]
    assert load_model(con, model).objects[0].inserted == 0


def test_a_uuid_business_key_gets_a_typed_unknown_member(
    wh: tuple[Connector, str, str],
) -> None:
    """The unknown member's NOT NULL UUID key was the text 'unknown': the fact load that
    needed it failed on both engines."""
    con, raw, gold = wh
    model = Model.model_validate(
        {
            "schema": gold,
            "dimensions": [
                {
                    "name": "device",
                    "business_key": "device_id",
                    "attributes": [{"name": "device_id", "type": "UUID"}],
                    "source": f"SELECT device_id, {_ts('01')} AS updated_at FROM {raw}.devices",
                }
            ],
            "facts": [
                {
                    "name": "pings",
                    "grain": ["ping_id"],
                    "dimensions": ["device"],
                    "degenerate": [{"name": "ping_id", "type": "INTEGER"}],
                    "source": f"SELECT ping_id, device_id FROM {raw}.pings",
                }
            ],
        }
    )
    known = "11111111-2222-3333-4444-555555555555"
    con.execute(f"CREATE TABLE {raw}.devices (device_id UUID)")
    con.execute(f"INSERT INTO {raw}.devices VALUES ('{known}')")
    con.execute(f"CREATE TABLE {raw}.pings (ping_id INT, device_id UUID)")
    stranger = "99999999-2222-3333-4444-555555555555"
    con.execute(f"INSERT INTO {raw}.pings VALUES (1, '{known}'), (2, '{stranger}')")
    planner.apply(planner.plan(model, con), con)
    load_model(con, model)
    rows = _rows(
        con,
        f"SELECT f.ping_id, CAST(d.device_id AS VARCHAR) FROM {gold}.fact_pings f"
        f" JOIN {gold}.dim_device d ON d.device_key = f.device_key ORDER BY 1",
    )
    assert rows == [(1, known), (2, "00000000-0000-0000-0000-000000000000")]


def test_an_accumulating_grain_with_a_reference_keeps_one_row_per_instance(
    wh: tuple[Connector, str, str],
) -> None:
    """Grain (order_id, product): the instance key was order_id alone, so the lines of
    one order were folded into one row with the largest product key."""
    con, raw, gold = wh
    model = Model.model_validate(
        {
            "schema": gold,
            "dimensions": [
                {
                    "name": "date",
                    "kind": "date",
                    "source": "SELECT DATE '2024-03-01' AS a, DATE '2024-03-31' AS b",
                },
                {
                    "name": "product",
                    "business_key": "product_id",
                    "attributes": [{"name": "product_id", "type": "INTEGER"}],
                    "source": f"SELECT DISTINCT product_id, {_ts('01')} AS updated_at"
                    f" FROM {raw}.events",
                },
            ],
            "facts": [
                {
                    "name": "line_flow",
                    "type": "accumulating_snapshot",
                    "grain": ["order_id", "product"],
                    "dimensions": [
                        "product",
                        {"dimension": "date", "role": "ordered"},
                        {"dimension": "date", "role": "shipped"},
                    ],
                    "milestones": ["ordered", "shipped"],
                    "degenerate": [{"name": "order_id", "type": "INTEGER"}],
                    "source": "SELECT order_id, product_id, milestone, milestone_at"
                    f" FROM {raw}.events",
                }
            ],
        }
    )
    columns = "order_id INT, product_id INT, milestone VARCHAR(10), milestone_at TIMESTAMP"
    con.execute(f"CREATE TABLE {raw}.events ({columns})")
    con.execute(
        f"INSERT INTO {raw}.events VALUES (1, 7, 'ordered', {_ts('02')}),"
        f" (1, 8, 'ordered', {_ts('02')}), (1, 8, 'shipped', {_ts('04')})"
    )
    planner.apply(planner.plan(model, con), con)
    load_model(con, model)
    load_model(con, model)
    rows = _rows(
        con,
        "SELECT f.order_id, p.product_id, f.ordered_key, f.shipped_key"
        f" FROM {gold}.fact_line_flow f JOIN {gold}.dim_product p"
        " ON p.product_key = f.product_key ORDER BY 1, 2",
    )
    assert rows == [(1, 7, 20240302, None), (1, 8, 20240302, 20240304)]


def test_a_calendar_change_reaches_days_already_loaded(wh: tuple[Connector, str, str]) -> None:
    """Only missing days were generated: a holiday or fiscal start added to the calendar
    later never reached the days already in the dimension."""
    con, _, gold = wh

    def model(calendar: dict) -> Model:
        source = "SELECT DATE '2024-12-24' AS first_day, DATE '2024-12-26' AS last_day"
        dim = {"name": "date", "kind": "date", "source": source, "calendar": calendar}
        return Model.model_validate({"schema": gold, "dimensions": [dim]})

    planner.apply(planner.plan(model({}), con), con)
    load_model(con, model({}))
    later = model({"holidays": [{"date": "2024-12-25", "name": "Christmas"}]})
    again = load_model(con, later).objects[0]
    assert (again.inserted, again.updated) == (0, 1)
    query = f"SELECT date_key, is_holiday, holiday_name FROM {gold}.dim_date ORDER BY 1"
    assert _rows(con, query) == [
        (20241224, False, None),
        (20241225, True, "Christmas"),
        (20241226, False, None),
    ]
    assert load_model(con, later).objects[0].updated == 0


def test_a_null_in_a_junk_combination_names_the_column(wh: tuple[Connector, str, str]) -> None:
    """The load failed with the engine's NOT NULL violation on dim_profile.channel."""
    con, raw, gold = wh
    source = f"SELECT DISTINCT status, channel, {_ts('01')} AS updated_at FROM {raw}.orders"
    attributes = [{"name": "status", "type": "VARCHAR(10)"}, {"name": "channel", "type": "TEXT"}]
    junk = {"name": "profile", "kind": "junk", "attributes": attributes, "source": source}
    model = Model.model_validate({"schema": gold, "dimensions": [junk]})
    con.execute(f"CREATE TABLE {raw}.orders (status VARCHAR(10), channel VARCHAR(10))")
    con.execute(f"INSERT INTO {raw}.orders VALUES ('open', 'web'), ('open', NULL)")
    planner.apply(planner.plan(model, con), con)
    with pytest.raises(ConfigError, match="channel is NULL in 1 source row") as caught:
        load_model(con, model)
    assert "COALESCE(channel, 'none')" in str(caught.value)


def test_a_snowflaked_dimension_gets_its_outrigger_keys(wh: tuple[Connector, str, str]) -> None:
    """dim_store.region_key (NOT NULL) was never filled: every load of a dimension with an
    outrigger failed. Declared before its outrigger, the store now loads after it."""
    con, raw, gold = wh
    model = Model.model_validate(
        {
            "schema": gold,
            "dimensions": [
                {
                    "name": "store",
                    "business_key": "store_id",
                    "attributes": [{"name": "store_id", "type": "INT"}],
                    "outriggers": ["region"],
                    "source": f"SELECT store_id, region_id, updated_at FROM {raw}.stores",
                },
                {
                    "name": "region",
                    "business_key": "region_id",
                    "attributes": [
                        {"name": "region_id", "type": "INT"},
                        {"name": "region_name", "type": "TEXT"},
                    ],
                    "source": f"SELECT region_id, region_name, updated_at FROM {raw}.regions",
                },
            ],
        }
    )
    con.execute(
        f"CREATE TABLE {raw}.regions (region_id INT, region_name TEXT, updated_at TIMESTAMP)"
    )
    con.execute(f"INSERT INTO {raw}.regions VALUES (1, 'North', {_ts('01')})")
    con.execute(f"CREATE TABLE {raw}.stores (store_id INT, region_id INT, updated_at TIMESTAMP)")
    con.execute(f"INSERT INTO {raw}.stores VALUES (10, 1, {_ts('01')}), (11, 9, {_ts('01')})")
    planner.apply(planner.plan(model, con), con)
    first = load_model(con, model)
    assert [o.name for o in first.objects] == ["region", "store"]
    assert first.objects[1].unknown == 1  # reported as a fact's are (it was not)
    query = (
        f"SELECT s.store_id, r.region_name FROM {gold}.dim_store s"
        f" JOIN {gold}.dim_region r ON r.region_key = s.region_key"
        " WHERE s.store_id > 0 ORDER BY 1"
    )
    assert _rows(con, query) == [(10, "North"), (11, None)]  # 9: the unknown region
    con.execute(f"UPDATE {raw}.stores SET region_id = 1, updated_at = {_ts('02')}")
    load_model(con, model)
    assert _rows(con, query) == [(10, "North"), (11, "North")]


def test_a_fact_references_a_type4_dimension(wh: tuple[Connector, str, str]) -> None:
    """The lookup asked the Type 4 current table for effective_from, which only its
    history table has: no fact referencing a Type 4 dimension could load."""
    con, raw, gold = wh
    attributes = [{"name": "customer_id", "type": "INTEGER"}, {"name": "city", "type": "TEXT"}]
    model = Model.model_validate(
        {
            "schema": gold,
            "dimensions": [
                {
                    "name": "customer",
                    "business_key": "customer_id",
                    "scd": 4,
                    "attributes": attributes,
                    "source": f"SELECT customer_id, city, updated_at FROM {raw}.customers",
                }
            ],
            "facts": [
                {
                    "name": "sales",
                    "grain": ["order_id"],
                    "event_time": "placed_at",
                    "dimensions": ["customer"],
                    "degenerate": [{"name": "order_id", "type": "INTEGER"}],
                    "source": f"SELECT order_id, customer_id, placed_at FROM {raw}.orders",
                }
            ],
        }
    )
    con.execute(f"CREATE TABLE {raw}.customers (customer_id INT, city TEXT, updated_at TIMESTAMP)")
    con.execute(f"INSERT INTO {raw}.customers VALUES (1, 'Oslo', {_ts('01')})")
    con.execute(f"CREATE TABLE {raw}.orders (order_id INT, customer_id INT, placed_at TIMESTAMP)")
    con.execute(f"INSERT INTO {raw}.orders VALUES (1, 1, {_ts('05')}), (2, 9, {_ts('05')})")
    planner.apply(planner.plan(model, con), con)
    load_model(con, model)
    con.execute(f"UPDATE {raw}.customers SET city = 'Rome', updated_at = {_ts('06')}")
    load_model(con, model)
    query = (
        f"SELECT f.order_id, d.city FROM {gold}.fact_sales f"
        f" JOIN {gold}.dim_customer d ON d.customer_key = f.customer_key ORDER BY 1"
    )
    assert _rows(con, query) == [(1, "Rome"), (2, None)]  # Type 4: the current values
    history = f"SELECT city FROM {gold}.dim_customer_history WHERE customer_id = 1 ORDER BY 1"
    assert _rows(con, history) == [("Oslo",), ("Rome",)]


def test_a_source_row_with_the_unknown_members_key_is_quarantined(
    wh: tuple[Connector, str, str],
) -> None:
    """A source row whose business key was the unknown member's placeholder (-1) reached
    the SCD loader as a change of the unknown member: it was closed (is_current false,
    Type 1 email overwritten) and a second member with key -1 started, so the facts
    pointing at "unknown" joined a closed row carrying the source's values. Then it was
    set aside with only a count: the row itself was lost. It now goes to the dimension's
    quarantine table (the SCD loaders' late rows' table) with the reason and run id."""
    con, raw, gold = wh
    model = _model(raw, gold)
    _day1(con, raw)
    planner.apply(planner.plan(model, con), con)
    load_model(con, model)  # sale 2 (customer 99) makes the unknown member
    unknown = f"SELECT customer_id, email, city, effective_to, is_current FROM {gold}.dim_customer"
    assert _rows(con, f"{unknown} WHERE customer_key = -1") == [(-1, "unknown", None, None, True)]
    con.execute(
        f"INSERT INTO {raw}.customers VALUES (-1, 'NA@x.com', 'Nowhere', {_ts('04 09:00:00')})"
    )
    load = load_model(con, model, ["customer"])
    [customer] = load.objects
    assert (customer.rows_in, customer.inserted, customer.updated) == (3, 0, 0)
    assert customer.quarantined == 1
    assert customer.quarantine_table == f"{gold}.dim_customer_quarantine"
    assert _rows(con, f"{unknown} WHERE customer_id = -1") == [(-1, "unknown", None, None, True)]
    joined = _rows(
        con,
        f"SELECT d.email, d.is_current FROM {gold}.fact_sales f"
        f" JOIN {gold}.dim_customer d ON d.customer_key = f.customer_key WHERE f.order_id = 2",
    )
    assert joined == [("unknown", True)]
    quarantine = (
        "SELECT customer_id, email, city, _crane_ts, _crane_reason, _crane_run_id"
        f" FROM {gold}.dim_customer_quarantine"
    )
    reason = (
        "unknown_member_key: dimension customer reserves business key customer_id = -1"
        " for its unknown member"
    )
    stamp = datetime(2024, 3, 4, 9)
    expected = [(-1, "na@x.com", "Nowhere", stamp, reason, load.run_id)]
    assert _rows(con, quarantine) == expected
    assert _run_counts(con, "customer", load.run_id) == [(3, 0, 1)]

    rerun = load_model(con, model, ["customer"])  # as for late rows: nothing added twice
    assert (rerun.objects[0].quarantined, rerun.objects[0].inserted) == (0, 0)
    assert _rows(con, quarantine) == expected
    assert _rows(con, f"{unknown} WHERE customer_id = -1") == [(-1, "unknown", None, None, True)]
    assert _run_counts(con, "customer", rerun.run_id) == [(3, 0, 0)]

    con.execute(f"UPDATE {raw}.customers SET city = 'Elsewhere' WHERE customer_id = -1")
    changed = load_model(con, model, ["customer"]).objects[0]
    assert changed.quarantined == 1  # a different row with the reserved key: quarantined too
    assert _rows(con, f"SELECT count(*) FROM {gold}.dim_customer_quarantine") == [(2,)]


def _run_counts(con: Connector, name: str, run_id: str) -> list[tuple]:
    return _rows(
        con,
        "SELECT rows_in, rows_loaded, rows_quarantined FROM _crane.runs"
        f" WHERE pipeline = 'model.{name}' AND run_id = '{run_id}'",
    )


def test_reserved_key_rows_add_up_on_a_first_load(wh: tuple[Connector, str, str]) -> None:
    """A first load, before any fact made the unknown member: the key is reserved all the
    same, and rows in = rows loaded + rows quarantined, in the result and the run record.
    A text key's placeholder is 'unknown'."""
    con, raw, gold = wh
    model = _lines_model(raw, gold)
    model.dimensions[0].attributes[0].type = "VARCHAR(20)"
    columns = "product_id VARCHAR(20), name VARCHAR(20), updated_at TIMESTAMP"
    con.execute(f"CREATE TABLE {raw}.products ({columns})")
    con.execute(
        f"INSERT INTO {raw}.products VALUES ('p1', 'a', {_ts('01')}), ('p2', 'b', {_ts('01')}),"
        f" ('unknown', 'c', {_ts('01')})"
    )
    con.execute(f"CREATE TABLE {raw}.lines (order_id INT, product_id VARCHAR(20), qty INT)")
    planner.apply(planner.plan(model, con), con)
    load = load_model(con, model, ["product"])
    [product] = load.objects
    assert (product.rows_in, product.inserted, product.quarantined) == (3, 2, 1)
    assert _run_counts(con, "product", load.run_id) == [(3, 2, 1)]
    assert _rows(con, f"SELECT product_id FROM {gold}.dim_product ORDER BY 1") == [
        ("p1",),
        ("p2",),
    ]
    assert _rows(
        con, f"SELECT product_id, name, _crane_reason FROM {gold}.dim_product_quarantine"
    ) == [
        (
            "unknown",
            "c",
            "unknown_member_key: dimension product reserves business key"
            " product_id = 'unknown' for its unknown member",
        )
    ]


def test_a_dimension_nothing_references_keeps_a_source_row_keyed_minus_one(
    wh: tuple[Connector, str, str],
) -> None:
    """Only a referenced dimension gets an unknown member, so only there is its key
    reserved: elsewhere -1 is a business key like any other."""
    con, raw, gold = wh
    con.execute(
        f"CREATE TABLE {raw}.regions (region_id INT, name VARCHAR(20), updated_at TIMESTAMP)"
    )
    con.execute(f"INSERT INTO {raw}.regions VALUES (-1, 'n/a', {_ts('01 09:00:00')})")
    dim = {
        "name": "region",
        "business_key": "region_id",
        "attributes": [{"name": "region_id", "type": "INT"}, {"name": "name", "type": "TEXT"}],
        "source": f"SELECT region_id, name, updated_at FROM {raw}.regions",
    }
    model = Model.model_validate({"schema": gold, "dimensions": [dim]})
    planner.apply(planner.plan(model, con), con)
    [region] = load_model(con, model).objects
    assert (region.quarantined, region.inserted) == (0, 1)
    assert _rows(con, f"SELECT region_id, name FROM {gold}.dim_region") == [(-1, "n/a")]


def test_a_null_in_a_not_null_dimension_column_names_column_and_row(
    wh: tuple[Connector, str, str],
) -> None:
    """The load failed with the engine's words (``NOT NULL constraint failed:
    dim_customer.email``, PostgreSQL's ``null value in column "email"``): no source row,
    no remedy."""
    con, raw, gold = wh
    model = _model(raw, gold)
    _day1(con, raw)
    planner.apply(planner.plan(model, con), con)
    con.execute(f"INSERT INTO {raw}.customers VALUES (3, NULL, 'Oslo', {_ts('01 09:00:00')})")
    with pytest.raises(LoadError, match="email is NULL in 1 source row") as caught:
        load_model(con, model, ["customer"])
    assert (caught.value.column, caught.value.row) == ("email", "customer_id = 3")
    assert "nullable: true" in str(caught.value)
    con.execute(f"UPDATE {raw}.customers SET email = 'c@x.com', customer_id = NULL")
    with pytest.raises(LoadError, match="customer_id is NULL in 3 source row") as caught:
        load_model(con, model, ["customer"])
    assert caught.value.column == "customer_id"
    assert "a business key is never NULL" in str(caught.value)
    assert _rows(con, f"SELECT count(*) FROM {gold}.dim_customer") == [(0,)]


def test_a_transaction_fact_refuses_two_different_rows_for_one_grain(
    wh: tuple[Connector, str, str],
) -> None:
    """Two different source rows for order 1 loaded as one: the loader kept one row per
    grain (so a repeated delivery loads once) and dropped the other without a word, the
    engine choosing which. A NULL order id failed with the engine's NOT NULL words."""
    con, raw, gold = wh
    model = _model(raw, gold)
    _day1(con, raw)
    planner.apply(planner.plan(model, con), con)
    con.execute(f"INSERT INTO {raw}.sales VALUES (1, 2, 1, {_ts('02 10:00:00')}, 99.00)")
    with pytest.raises(LoadError, match="2 different source rows share one grain") as caught:
        load_model(con, model)
    assert caught.value.row == "order_id = 1"
    assert _rows(con, f"SELECT count(*) FROM {gold}.fact_sales") == [(0,)]
    con.execute(f"UPDATE {raw}.sales SET order_id = NULL WHERE amount = 99.00")
    with pytest.raises(LoadError, match="1 source row.s. have a NULL in the grain") as caught:
        load_model(con, model, ["sales"])
    assert caught.value.column == "order_id"
    # the same row delivered twice is still one event
    con.execute(f"DELETE FROM {raw}.sales WHERE order_id IS NULL")
    con.execute(f"INSERT INTO {raw}.sales SELECT * FROM {raw}.sales WHERE order_id = 1")
    sales = {o.name: o for o in load_model(con, model).objects}["sales"]
    assert (sales.rows_in, sales.inserted) == (3, 2)


def test_cli_load_errors_name_the_model_file_and_line(tmp_path) -> None:
    """`crane model load` errors named the table and field but not the model file, so
    with several files under models/ a user searched for the `source:` at fault."""
    import yaml

    from crane.cli.app import build_app

    (tmp_path / "crane.yml").write_text(f"name: t\nwarehouse: duckdb:///{tmp_path / 'wh.duckdb'}\n")
    (tmp_path / "models").mkdir()
    model = _model("main", "gold")
    model.dimensions[0].source = "SELECT customer_id, email, city FROM main.customers"
    text = yaml.safe_dump(model.model_dump(by_alias=True, exclude_none=True), sort_keys=False)
    (tmp_path / "models" / "star.yml").write_text(text)
    lines = text.splitlines()
    customer = lines.index("- name: customer")
    source = next(i for i, t in enumerate(lines) if i > customer and "source:" in t) + 1
    with connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as con:
        _day1(con, "main")
        con.execute(f"INSERT INTO main.sales VALUES (1, 2, 1, {_ts('02 10:00:00')}, 99.00)")
    runner, app = CliRunner(), build_app()
    args = ["--project", str(tmp_path)]
    assert runner.invoke(app, ["model", "apply", *args]).exit_code == 0
    failed = runner.invoke(app, ["model", "load", "customer", *args])
    assert isinstance(failed.exception, ConfigError)
    assert (failed.exception.file, failed.exception.line) == ("models/star.yml", source)
    assert f"file models/star.yml, line {source}, field source:" in str(failed.exception)
    # a data error: the object's own line
    clash = runner.invoke(app, ["model", "load", "sales", *args])
    assert isinstance(clash.exception, LoadError)
    sales = lines.index("- name: sales") + 1
    assert (clash.exception.file, clash.exception.line) == ("models/star.yml", sales)
    assert clash.exception.row == "order_id = 1"


@pytest.mark.integration
def test_a_load_that_loses_its_connection_names_the_object(pg_schema: str) -> None:
    """Recording the failed run failed too, and its "the connection is closed" replaced
    the load's error: neither the dimension nor the cause was named."""
    source = (
        "SELECT id, CAST(now() AS TIMESTAMP) AS updated_at"
        " FROM (SELECT 1 AS id, pg_terminate_backend(pg_backend_pid()) AS gone) AS x"
    )
    dim = {
        "name": "account",
        "business_key": "id",
        "attributes": [{"name": "id", "type": "INT"}],
        "source": source,
    }
    model = Model.model_validate({"schema": pg_schema, "dimensions": [dim]})
    with connect(PG_URL) as con:
        planner.apply(planner.plan(model, con), con)
        with pytest.raises(LoadError, match="loading account failed: .*terminat") as caught:
            load_model(con, model)
    assert caught.value.table == f"{pg_schema}.dim_account"
    assert any("not recorded in _crane.runs" in n for n in caught.value.__notes__)


def test_a_date_range_that_ends_before_it_starts_names_the_dimension(
    wh: tuple[Connector, str, str],
) -> None:
    """The calendar's own error named neither the date dimension nor its table, so
    `crane model load` could not point at the model file either."""
    con, _, gold = wh
    source = "SELECT DATE '2024-07-01' AS first_day, DATE '2024-06-01' AS last_day"
    dim = {"name": "date", "kind": "date", "source": source}
    model = Model.model_validate({"schema": gold, "dimensions": [dim]})
    planner.apply(planner.plan(model, con), con)
    with pytest.raises(ConfigError, match="date dimension date: .* ends .* before") as caught:
        load_model(con, model)
    assert (caught.value.table, caught.value.field) == ("dim_date", "source")


def test_two_missing_members_on_one_grain_are_refused(wh: tuple[Connector, str, str]) -> None:
    """Order 11 names products 98 and 99, neither in the dimension: both lines point at the
    unknown product, so on the grain (order_id, product) they were one, and the loader
    kept one of them (3 rows in, 2 loaded) without a word."""
    con, raw, gold = wh
    model = _lines_model(raw, gold)
    columns = "product_id INT, name VARCHAR(20), updated_at TIMESTAMP"
    con.execute(f"CREATE TABLE {raw}.products ({columns})")
    con.execute(f"INSERT INTO {raw}.products VALUES (1, 'a', {_ts('01')})")
    con.execute(f"CREATE TABLE {raw}.lines (order_id INT, product_id INT, qty INT)")
    con.execute(f"INSERT INTO {raw}.lines VALUES (10, 1, 5), (11, 98, 1), (11, 99, 2)")
    planner.apply(planner.plan(model, con), con)
    with pytest.raises(LoadError, match="2 different source rows fall on one grain") as caught:
        load_model(con, model)
    assert caught.value.row == "order_id = 11, product_key = -1"
    assert "on_missing: infer" in str(caught.value)
    assert _rows(con, f"SELECT count(*) FROM {gold}.fact_lines") == [(0,)]


@pytest.mark.integration
def test_concurrent_loads_quarantine_a_reserved_key_row_once(pg_schema: str) -> None:
    """Two `crane model load` runs at once each quarantined the reserved-key row before
    taking the dimension's lock, neither seeing the other's uncommitted row: two copies.
    A third session holds the dimension's lock until both loads wait for it."""
    import threading
    import time

    model = _model(pg_schema, pg_schema)
    with connect(PG_URL) as con:
        _day1(con, pg_schema)
        con.execute(
            f"INSERT INTO {pg_schema}.customers VALUES (-1, 'x', 'y', {_ts('01 09:00:00')})"
        )
        planner.apply(planner.plan(model, con), con)
    errors: list[BaseException] = []

    def load() -> None:
        try:
            with connect(PG_URL) as own:
                load_model(own, model, ["customer"])
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    with connect(PG_URL) as holder, connect(PG_URL) as monitor:
        with holder.transaction():
            holder.execute(f"LOCK TABLE {pg_schema}.dim_customer IN SHARE ROW EXCLUSIVE MODE")
            threads = [threading.Thread(target=load) for _ in range(2)]
            for thread in threads:
                thread.start()
            waiting = (
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                f" AND query LIKE '%{pg_schema}%'"
            )
            deadline = time.monotonic() + 20  # the holder's own view is a snapshot
            while monitor.fetch(waiting)[0][0] < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        count = f"SELECT count(*) FROM {pg_schema}.dim_customer_quarantine"
        assert _rows(holder, count) == [(1,)]


def test_a_sale_reloaded_with_another_amount_is_quarantined_and_counted(
    wh: tuple[Connector, str, str],
) -> None:
    """A transaction fact is never updated, and its changed row is not dropped either:
    it goes to ``<fact>_quarantine`` with the reason and run id, once however often the
    batch is rerun, and rows in = inserted + quarantined + unchanged, in the result and
    (inserted, quarantined) in the run record."""
    con, raw, gold = wh
    model = _model(raw, gold)
    _day1(con, raw)
    planner.apply(planner.plan(model, con), con)
    load_model(con, model)
    con.execute(f"UPDATE {raw}.sales SET amount = 11.00 WHERE order_id = 1")
    con.execute(f"INSERT INTO {raw}.sales VALUES (3, 1, 1, {_ts('02 12:00:00')}, 5.00)")
    load = load_model(con, model, ["sales"])
    [sales] = load.objects
    assert (sales.rows_in, sales.inserted, sales.quarantined, sales.unchanged) == (3, 1, 1, 1)
    assert sales.quarantine_table == f"{gold}.fact_sales_quarantine"
    assert _run_counts(con, "sales", load.run_id) == [(3, 1, 1)]
    assert _rows(con, f"SELECT amount FROM {gold}.fact_sales WHERE order_id = 1") == [(10,)]
    [(order, amount, reason, run)] = _rows(
        con,
        f"SELECT order_id, amount, _crane_reason, _crane_run_id FROM {gold}.fact_sales_quarantine",
    )
    assert (order, amount, run) == (1, 11, load.run_id)
    assert reason.startswith("changed_fact_row: fact sales already holds this row's grain")
    assert "(order_id) with other values" in reason and f"run {load.run_id}" in reason
    again = load_model(con, model, ["sales"])
    [rerun] = again.objects
    assert (rerun.inserted, rerun.quarantined, rerun.unchanged) == (0, 0, 3)
    assert _rows(con, f"SELECT count(*) FROM {gold}.fact_sales_quarantine") == [(1,)]


def test_an_accumulating_event_without_the_customer_keeps_the_customer(
    wh: tuple[Connector, str, str],
) -> None:
    """A "shipped" event whose source row lacks the customer looked up the unknown member
    (-1), and the next load overwrote the customer the "ordered" event had named."""
    con, raw, gold = wh
    model = Model.model_validate(
        {
            "schema": gold,
            "dimensions": [
                {
                    "name": "date",
                    "kind": "date",
                    "source": "SELECT DATE '2024-03-01' AS a, DATE '2024-03-31' AS b",
                },
                {
                    "name": "customer",
                    "business_key": "customer_id",
                    "attributes": [{"name": "customer_id", "type": "INTEGER"}],
                    "source": f"SELECT 5 AS customer_id, {_ts('01')} AS updated_at",
                },
            ],
            "facts": [
                {
                    "name": "flow",
                    "type": "accumulating_snapshot",
                    "grain": ["order_id"],
                    "dimensions": [
                        "customer",
                        {"dimension": "date", "role": "ordered"},
                        {"dimension": "date", "role": "shipped"},
                    ],
                    "milestones": ["ordered", "shipped"],
                    "degenerate": [{"name": "order_id", "type": "INTEGER"}],
                    "source": "SELECT order_id, customer_id, milestone, milestone_at"
                    f" FROM {raw}.events",
                }
            ],
        }
    )
    columns = "order_id INT, customer_id INT, milestone VARCHAR(10), milestone_at TIMESTAMP"
    con.execute(f"CREATE TABLE {raw}.events ({columns})")
    con.execute(f"INSERT INTO {raw}.events VALUES (1, 5, 'ordered', {_ts('02')})")
    planner.apply(planner.plan(model, con), con)
    load_model(con, model)
    con.execute(f"DELETE FROM {raw}.events")
    con.execute(f"INSERT INTO {raw}.events VALUES (1, NULL, 'shipped', {_ts('04')})")
    load_model(con, model, ["flow"])
    rows = _rows(
        con,
        f"SELECT d.customer_id, f.ordered_key, f.shipped_key FROM {gold}.fact_flow f"
        f" JOIN {gold}.dim_customer d ON d.customer_key = f.customer_key",
    )
    assert rows == [(5, 20240302, 20240304)]


def test_a_date_outside_the_date_dimension_is_refused_naming_it(
    wh: tuple[Connector, str, str],
) -> None:
    """A date key is computed from the date, not looked up: an order dated after the
    date dimension's last day failed on the foreign key in the engine's words (PostgreSQL:
    "violates foreign key constraint"), naming neither the date nor the remedy, and on
    engines that do not enforce foreign keys it pointed at no day. A NULL date points at
    the unknown day and is loaded; an accumulating snapshot's events are checked too."""
    con, raw, gold = wh
    roles = [{"dimension": "date", "role": "ordered"}, {"dimension": "date", "role": "shipped"}]
    model = Model.model_validate(
        {
            "schema": gold,
            "dimensions": [
                {
                    "name": "date",
                    "kind": "date",
                    "source": "SELECT DATE '2024-03-01' AS a, DATE '2024-03-31' AS b",
                }
            ],
            "facts": [
                {
                    "name": "orders",
                    "grain": ["order_id"],
                    "dimensions": roles,
                    "degenerate": [{"name": "order_id", "type": "INTEGER"}],
                    "source": f"SELECT order_id, ordered, shipped FROM {raw}.orders",
                },
                {
                    "name": "flow",
                    "type": "accumulating_snapshot",
                    "grain": ["order_id"],
                    "dimensions": roles,
                    "milestones": ["ordered", "shipped"],
                    "degenerate": [{"name": "order_id", "type": "INTEGER"}],
                    "source": f"SELECT order_id, 'ordered' AS milestone, ordered AS milestone_at"
                    f" FROM {raw}.orders UNION ALL SELECT order_id, 'shipped', shipped"
                    f" FROM {raw}.orders",
                },
            ],
        }
    )
    con.execute(f"CREATE TABLE {raw}.orders (order_id INT, ordered TIMESTAMP, shipped DATE)")
    con.execute(
        f"INSERT INTO {raw}.orders VALUES (1, {_ts('02 10:00:00')}, NULL),"
        f" (2, {_ts('31 23:59:59')}, DATE '2024-04-02')"
    )
    planner.apply(planner.plan(model, con), con)
    load_model(con, model, ["date"])
    rows = {"orders": "shipped = '2024-04-02'", "flow": "milestone_at = '2024-04-02 00:00:00'"}
    for name, row in rows.items():
        with pytest.raises(LoadError, match="outside the days of date dimension date") as caught:
            load_model(con, model, [name])
        assert (caught.value.column, caught.value.row) == ("shipped_key", row)
        assert "widen the range the source of date returns" in (caught.value.hint or "")
    assert _rows(con, f"SELECT count(*) FROM {gold}.fact_orders") == [(0,)]
    con.execute(f"UPDATE {raw}.orders SET shipped = NULL WHERE order_id = 2")
    load_model(con, model, ["orders", "flow"])
    keys = f"SELECT order_id, ordered_key, shipped_key FROM {gold}.fact_orders ORDER BY 1"
    assert _rows(con, keys) == [(1, 20240302, -1), (2, 20240331, -1)]


def test_a_snapshot_rerun_with_fewer_rows_removes_the_missing_ones(
    wh: tuple[Connector, str, str],
) -> None:
    """A period reloaded from a source that lost a product keeps no stale row for it;
    other periods are left alone."""
    con, raw, gold = wh
    model = _model(raw, gold)
    _day1(con, raw)
    con.execute(f"INSERT INTO {raw}.products VALUES (2, 3.00, {_ts('01 08:00:00')})")
    con.execute(
        f"INSERT INTO {raw}.stock VALUES (DATE '2024-03-02', 2, 9, {_ts('02 23:00:00')}),"
        f" (DATE '2024-03-03', 2, 1, {_ts('03 23:00:00')})"
    )
    model.dimensions[2].source = f"SELECT min(day), max(day) FROM {raw}.stock"
    planner.apply(planner.plan(model, con), con)
    load_model(con, model)
    con.execute(f"DELETE FROM {raw}.stock WHERE product_id = 2 AND day = DATE '2024-03-02'")
    [stock] = load_model(con, model, ["stock"]).objects
    assert (stock.rows_in, stock.inserted, stock.deleted) == (2, 2, 3)
    query = (
        f"SELECT f.snapshot_date_key, p.product_id, f.qty FROM {gold}.fact_stock f"
        f" JOIN {gold}.dim_product p ON p.product_key = f.product_key ORDER BY 1, 2"
    )
    assert _rows(con, query) == [(20240302, 1, 5), (20240303, 2, 1)]
