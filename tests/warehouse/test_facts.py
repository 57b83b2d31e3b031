"""Fact loaders on real engines: as-of keys, unknown/inferred members, reruns, snapshots."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

import _wh_engines
import pytest
from _wh_engines import RENDER_ONLY, parses_back

from crane.connectors.base import TableRef
from crane.errors import ConfigError
from crane.warehouse.facts import (
    AccumulatingSnapshotFact,
    DateKey,
    Dimension,
    FactLoadError,
    Lag,
    Lookup,
    Milestone,
    PeriodicSnapshotFact,
    TransactionFact,
    build_accumulating_merge,
    build_complete_inferred,
    build_inferred_members,
    build_periodic_load,
    build_transaction_load,
    build_unknown_member,
    complete_inferred,
    load_accumulating_snapshot,
    load_periodic_snapshot,
    load_transaction_fact,
)

engine = _wh_engines.engine

CUSTOMER_COLS = [
    ("sk", "BIGINT"),
    ("customer_id", "TEXT"),
    ("city", "TEXT"),
    ("effective_from", "TIMESTAMP"),
    ("effective_to", "TIMESTAMP"),
    ("is_current", "BOOLEAN"),
    ("is_inferred", "BOOLEAN"),
]
PRODUCT_COLS = [("sk", "BIGINT"), ("sku", "TEXT"), ("name", "TEXT")]
SALES_COLS = [
    ("order_id", "INT"),
    ("line_no", "INT"),
    ("customer_id", "TEXT"),
    ("sku", "TEXT"),
    ("order_ts", "TIMESTAMP"),
    ("ship_date", "DATE"),
    ("amount", "DECIMAL(10,2)"),
]


def _star(e):
    """A customer SCD2 dimension (c1 moved Oslo → Rome on Feb 1), a Type 1 product dimension."""
    e.stage(
        "dim_customer",
        CUSTOMER_COLS,
        [
            (1, "c1", "Oslo", "2024-01-01 00:00:00", "2024-02-01 00:00:00", False, False),
            (2, "c1", "Rome", "2024-02-01 00:00:00", None, True, False),
            (3, "c2", "Nice", "2024-01-15 00:00:00", None, True, False),
        ],
    )
    e.stage("dim_product", PRODUCT_COLS, [(1, "p1", "Pen"), (2, "p2", "Ink")])
    customer = Dimension(e.ref("dim_customer"), ("customer_id",))
    product = Dimension(
        e.ref("dim_product"),
        ("sku",),
        effective_from=None,
        effective_to=None,
        is_current=None,
        inferred_flag=None,
        unknown_values={"name": "Unknown"},
    )
    fact = TransactionFact(
        e.ref("fact_sales"),
        measures=("amount",),
        grain=("order_id", "line_no"),
        lookups=(
            Lookup("customer_key", customer, ("customer_id",), "order_ts", on_missing="infer"),
            Lookup("product_key", product, ("sku",)),
        ),
        date_keys=(DateKey("order_date_key", "order_ts"), DateKey("ship_date_key", "ship_date")),
    )
    e.stage(
        "fact_sales",
        [
            ("order_id", "INT"),
            ("line_no", "INT"),
            ("amount", "DECIMAL(10,2)"),
            ("customer_key", "BIGINT"),
            ("product_key", "BIGINT"),
            ("order_date_key", "INT"),
            ("ship_date_key", "INT"),
        ],
        [],
    )
    return customer, product, fact


def _sales(e):
    return e.rows(
        "SELECT order_id, customer_key, product_key, order_date_key, ship_date_key, amount "
        'FROM {s}."fact_sales" ORDER BY order_id, line_no'
    )


def test_transaction_fact_keys_as_of_event_unknown_and_inferred(engine):
    e = engine
    customer, _, fact = _star(e)
    batch = e.stage(
        "stg_sales",
        SALES_COLS,
        [
            (1, 1, "c1", "p1", "2024-01-10 09:00:00", "2024-01-12", "10.00"),  # Oslo version
            (2, 1, "c1", "p1", "2024-02-01 00:00:00", None, "20.00"),  # Rome from Feb 1 on
            (3, 1, "c2", "p2", "2024-01-02 00:00:00", "2024-01-03", "30.00"),  # before 1st version
            (4, 1, "c9", "p1", "2024-03-01 00:00:00", "2024-03-02", "40.00"),  # new: inferred
            (5, 1, None, "p9", "2024-03-01 00:00:00", "2024-03-02", "50.00"),  # NULL / unknown
            (1, 1, "c1", "p1", "2024-01-10 09:00:00", "2024-01-12", "10.00"),  # repeated in batch
        ],
    )
    result = load_transaction_fact(e.con, fact, batch)
    assert (result.rows_in, result.inserted, result.unknown) == (6, 5, 2)
    assert result.inferred == {str(customer.table): 1}
    assert _sales(e) == [
        (1, 1, 1, 20240110, 20240112, Decimal("10.00")),
        (2, 2, 1, 20240201, -1, Decimal("20.00")),
        (3, 3, 2, 20240102, 20240103, Decimal("30.00")),
        (4, 4, 1, 20240301, 20240302, Decimal("40.00")),
        (5, -1, -1, 20240301, 20240302, Decimal("50.00")),
    ]
    # unknown members exist exactly once; the inferred one carries the business key
    assert e.rows(
        'SELECT sk, customer_id, is_current, is_inferred FROM {s}."dim_customer" '
        "WHERE sk IN (-1, 4) ORDER BY sk"
    ) == [(-1, None, True, False), (4, "c9", True, True)]
    assert e.rows('SELECT name FROM {s}."dim_product" WHERE sk = -1') == [("Unknown",)]
    # rerun: nothing twice, no second inferred member, no second unknown member
    again = load_transaction_fact(e.con, fact, batch)
    assert (again.inserted, again.inferred) == (0, {str(customer.table): 0})
    assert len(_sales(e)) == 5
    assert e.rows('SELECT COUNT(*) FROM {s}."dim_customer"') == [(5,)]


def test_inferred_member_completed_in_place(engine):
    e = engine
    customer, _, fact = _star(e)
    first = e.stage("stg_sales", SALES_COLS, [(7, 1, "c9", "p1", "2024-03-01", None, "1")])
    load_transaction_fact(e.con, fact, first)
    later = e.stage(
        "stg_sales2", SALES_COLS, [(8, 1, "c9", "p2", "2024-03-05 00:00:00", None, "2")]
    )
    assert load_transaction_fact(e.con, fact, later).inferred == {str(customer.table): 0}
    real = e.stage(
        "stg_customer",
        [("customer_id", "TEXT"), ("city", "TEXT"), ("updated_at", "TIMESTAMP")],
        [
            ("c9", "Lima", "2024-03-10 00:00:00"),
            ("c9", "Paris", "2024-03-03 00:00:00"),
            ("c1", "Bonn", "2024-03-03 00:00:00"),
        ],
    )
    assert complete_inferred(e.con, customer, real, ["city"], order_by="updated_at") == 1
    assert complete_inferred(e.con, customer, real, ["city"], order_by="updated_at") == 0
    # same surrogate key (facts unchanged), earliest real row, flag cleared; c1 untouched
    assert e.rows(
        "SELECT sk, city, is_inferred FROM {s}.\"dim_customer\" WHERE customer_id = 'c9'"
    ) == [(4, "Paris", False)]
    assert e.rows('SELECT city FROM {s}."dim_customer" WHERE sk = 2') == [("Rome",)]
    assert [r[1] for r in _sales(e)] == [4, 4]


def test_batch_id_dedupe_without_degenerate_key(engine):
    e = engine
    _, product, _ = _star(e)
    fact = TransactionFact(
        e.ref("fact_clicks"),
        measures=("n",),
        lookups=(Lookup("product_key", product, ("sku",)),),
        batch_column="batch_id",
    )
    e.stage("fact_clicks", [("n", "INT"), ("product_key", "BIGINT"), ("batch_id", "TEXT")], [])
    batch = e.stage(
        "stg_clicks", [("sku", "TEXT"), ("n", "INT")], [("p1", 1), ("p1", 1), ("p2", 5)]
    )
    assert load_transaction_fact(e.con, fact, batch, batch_id="b1").inserted == 3
    assert load_transaction_fact(e.con, fact, batch, batch_id="b1").inserted == 0
    assert load_transaction_fact(e.con, fact, batch, batch_id="b2").inserted == 3
    assert e.rows('SELECT batch_id, COUNT(*) FROM {s}."fact_clicks" GROUP BY 1 ORDER BY 1') == [
        ("b1", 3),
        ("b2", 3),
    ]
    with pytest.raises(ConfigError):
        load_transaction_fact(e.con, fact, batch)
    with pytest.raises(ConfigError):
        TransactionFact(TableRef("f"), measures=("n",))


def test_periodic_snapshot_rerun_replaces_the_period(engine):
    e = engine
    _, product, _ = _star(e)
    fact = PeriodicSnapshotFact(
        e.ref("fact_inventory"),
        period_column="snapshot_date_key",
        grain=("product_key",),
        measures=("qty",),
        lookups=(Lookup("product_key", product, ("sku",)),),
        date_keys=(DateKey("snapshot_date_key", "snapshot_date"),),
    )
    e.stage(
        "fact_inventory",
        [("qty", "INT"), ("product_key", "BIGINT"), ("snapshot_date_key", "INT")],
        [],
    )
    cols = [("snapshot_date", "DATE"), ("sku", "TEXT"), ("qty", "INT")]
    day1 = e.stage("stg_inv", cols, [("2024-01-01", "p1", 5), ("2024-01-01", "p2", 7)])
    assert load_periodic_snapshot(e.con, fact, day1).inserted == 2
    day2 = e.stage("stg_inv", cols, [("2024-01-02", "p1", 4), ("2024-01-02", "p2", 7)])
    load_periodic_snapshot(e.con, fact, day2)
    day2b = e.stage("stg_inv", cols, [("2024-01-02", "p1", 3)])
    result = load_periodic_snapshot(e.con, fact, day2b)
    assert (result.deleted, result.inserted) == (2, 1)
    query = 'SELECT snapshot_date_key, product_key, qty FROM {s}."fact_inventory" ORDER BY 1, 2'
    expected = [(20240101, 1, 5), (20240101, 2, 7), (20240102, 1, 3)]
    assert e.rows(query) == expected
    bad = e.stage("stg_inv", cols, [("2024-01-02", "p1", 1), ("2024-01-02", "p1", 2)])
    with pytest.raises(FactLoadError, match="two rows for one grain"):
        load_periodic_snapshot(e.con, fact, bad)
    assert e.rows(query) == expected  # the failed rerun changed nothing
    empty = e.stage("stg_inv", cols, [])
    assert load_periodic_snapshot(e.con, fact, empty, periods=[20240102]).deleted == 1


ORDER_FLOW = AccumulatingSnapshotFact(
    TableRef("fact_order_flow"),
    instance_key=("order_id",),
    milestones=(
        Milestone("ordered", "ordered_at"),
        Milestone("shipped", "shipped_at"),
        Milestone("delivered", "delivered_at"),
    ),
    lags=(
        Lag("days_to_ship", "ordered", "shipped"),
        Lag("days_to_deliver", "ordered", "delivered"),
    ),
    attributes=("customer_key",),
)
EVENT_COLS = [
    ("order_id", "INT"),
    ("milestone", "TEXT"),
    ("event_ts", "TIMESTAMP"),
    ("customer_key", "BIGINT"),
]
EVENTS = [
    (1, "ordered", "2024-01-01 10:00:00", 7),
    (1, "delivered", "2024-01-09 08:00:00", None),
    (2, "ordered", "2024-01-02 00:00:00", 8),
    (1, "shipped", "2024-01-03 23:00:00", None),
    (1, "delivered", "2024-01-20 00:00:00", None),  # a late repeat never moves the milestone
    (2, "lost", "2024-01-05 00:00:00", None),  # unknown milestone: ignored
]


def _flow(e, batches, **changes):
    fact = AccumulatingSnapshotFact(
        **{**ORDER_FLOW.__dict__, "table": e.ref("fact_order_flow"), **changes}
    )
    e.stage(
        "fact_order_flow",
        [
            ("order_id", "INT"),
            ("ordered_at", "TIMESTAMP"),
            ("shipped_at", "TIMESTAMP"),
            ("delivered_at", "TIMESTAMP"),
            ("days_to_ship", "INT"),
            ("days_to_deliver", "INT"),
            ("customer_key", "BIGINT"),
        ],
        [],
    )
    for batch in batches:
        load_accumulating_snapshot(e.con, fact, e.stage("stg_events", EVENT_COLS, batch))
    return e.rows('SELECT * FROM {s}."fact_order_flow" ORDER BY order_id')


def test_accumulating_snapshot_milestones_and_lags(engine):
    e = engine
    expected = [
        (1, datetime(2024, 1, 1, 10), datetime(2024, 1, 3, 23), datetime(2024, 1, 9, 8), 2, 8, 7),
        (2, datetime(2024, 1, 2), None, None, None, None, 8),
    ]
    assert _flow(e, [EVENTS[:3], EVENTS[3:], EVENTS[3:]]) == expected  # incl. a rerun
    # any arrival order and batching gives the same rows
    for order in itertools.islice(itertools.permutations(EVENTS), 0, 720, 97):
        assert _flow(e, [order[:2], order[2:4], order[4:]]) == expected


@pytest.mark.parametrize("dialect", RENDER_ONLY)
def test_fact_sql_renders_for_other_engines(dialect):
    customer = Dimension(TableRef("dim_customer", "w"), ("customer_id",))
    lookup = Lookup("customer_key", customer, ("customer_id",), "order_ts", "infer")
    fact = TransactionFact(
        TableRef("fact_sales", "w"),
        measures=("amount",),
        grain=("order_id",),
        lookups=(lookup,),
        date_keys=(DateKey("order_date_key", "order_ts"),),
    )
    snap = PeriodicSnapshotFact(
        TableRef("fact_inv", "w"),
        "snapshot_date_key",
        ("customer_key",),
        ("qty",),
        (lookup,),
        (DateKey("snapshot_date_key", "d"),),
    )
    stg = TableRef("stg", "w")
    from sqlglot import exp

    statements = [
        *build_transaction_load(fact, stg)[:2],
        *build_periodic_load(snap, stg, [20240101])[:5],
        build_accumulating_merge(ORDER_FLOW, stg),
        build_unknown_member(customer),
        build_inferred_members(lookup, exp.select("*").from_(stg.expression())),
        build_complete_inferred(customer, stg, ["city"], "updated_at"),
    ]
    for statement in statements:
        parses_back(statement, dialect)


def test_inferred_member_with_the_scd2_loader(engine):
    """Fact infers c9; its real rows complete it in place, then the SCD2 loader versions it."""
    from crane.warehouse.scd import ScdTable, load_dimension

    e = engine
    changes = [("customer_id", "TEXT"), ("city", "TEXT"), ("updated_at", "TIMESTAMP")]
    stage = e.stage("stg_c", changes, [("c1", "Oslo", "2024-01-01"), ("c1", "Rome", "2024-02-01")])
    scd = ScdTable(
        e.ref("dim_customer"),
        business_key=("customer_id",),
        type2=("city",),
        change_ts="updated_at",
    )
    load_dimension(e.con, scd, stage, run_id="r1")
    # the model's DDL declares the flag on dimensions that facts may infer into
    e.con.execute(
        f'ALTER TABLE "{e.schema}"."dim_customer" ADD COLUMN is_inferred BOOLEAN DEFAULT FALSE'
    )
    dim = Dimension.from_scd(scd)
    fact = TransactionFact(
        e.ref("fact_f"),
        measures=(),
        grain=("order_id",),
        lookups=(Lookup("customer_key", dim, ("customer_id",), "ts", "infer"),),
    )
    e.stage("fact_f", [("order_id", "INT"), ("customer_key", "BIGINT")], [])
    sales = e.stage(
        "stg_f",
        [("order_id", "INT"), ("customer_id", "TEXT"), ("ts", "TIMESTAMP")],
        [
            (1, "c1", "2024-01-15"),
            (2, "c1", "2024-03-01"),
            (3, "c9", "2024-03-01"),
            (4, "c1", "2023-06-01"),  # before the first version: first version
        ],
    )
    load_transaction_fact(e.con, fact, sales)
    assert e.rows('SELECT order_id, customer_key FROM {s}."fact_f" ORDER BY 1') == [
        (1, 1),
        (2, 2),
        (3, 3),
        (4, 1),
    ]
    stage = e.stage("stg_c", changes, [("c9", "Paris", "2024-03-05"), ("c9", "Lima", "2024-04-01")])
    assert complete_inferred(e.con, dim, stage, ["city"], order_by="updated_at") == 1
    load_dimension(e.con, scd, stage, run_id="r2")
    got = e.rows(
        'SELECT sk, city, effective_to, is_current FROM {s}."dim_customer" '
        "WHERE customer_id = 'c9' ORDER BY sk"
    )
    assert got == [(3, "Paris", datetime(2024, 4, 1), False), (4, "Lima", None, True)]


def test_role_playing_lookups_into_the_generated_date_dimension(engine):
    """order_date_key and ship_date_key both look up one date dimension table."""
    from datetime import date

    from crane.warehouse.datedim import DateDimension, load_date_dimension

    e = engine
    load_date_dimension(e.con, DateDimension(date(2024, 1, 1), date(2024, 12, 31)), e.ref("d"))
    dates = Dimension(
        e.ref("d"),
        ("full_date",),
        surrogate_key="date_key",
        effective_from=None,
        effective_to=None,
        is_current=None,
        inferred_flag=None,
    )
    fact = TransactionFact(
        e.ref("fact_ship"),
        measures=("qty",),
        grain=("order_id",),
        lookups=(
            Lookup("order_date_key", dates, ("order_date",)),
            Lookup("ship_date_key", dates, ("ship_date",)),
        ),
    )
    e.stage(
        "fact_ship",
        [("order_id", "INT"), ("qty", "INT"), ("order_date_key", "INT"), ("ship_date_key", "INT")],
        [],
    )
    cols = [("order_id", "INT"), ("qty", "INT"), ("order_date", "DATE"), ("ship_date", "DATE")]
    rows = [(1, 2, "2024-03-01", "2024-03-04"), (2, 1, "2024-12-31", "2025-01-02")]
    result = load_transaction_fact(e.con, fact, e.stage("stg_ship", cols, rows))
    assert (result.inserted, result.unknown) == (2, 1)  # 2025 is outside the dimension
    got = e.rows(
        'SELECT f.order_id, o.day_name, s.day_name FROM {s}."fact_ship" f '
        'JOIN {s}."d" o ON o.date_key = f.order_date_key '
        'JOIN {s}."d" s ON s.date_key = f.ship_date_key ORDER BY 1'
    )
    assert got == [(1, "Friday", "Monday"), (2, "Tuesday", None)]


def test_inferred_members_refuse_hash_surrogate_keys():
    from sqlglot import exp

    dim = Dimension(TableRef("dim_c"), ("customer_id",), key_strategy="hash", unknown_key="-1")
    lookup = Lookup("customer_key", dim, ("customer_id",), on_missing="infer")
    with pytest.raises(ConfigError, match="sequence surrogate keys"):
        build_inferred_members(lookup, exp.select("*").from_("stg"))
    assert "'-1'" in build_unknown_member(dim).sql("duckdb")


@pytest.mark.integration
def test_concurrent_loads_of_one_batch_insert_it_once(pg_schema):
    """Two sessions load the same batch at once: the fact lock makes the second a rerun."""
    import threading

    from crane.connectors.base import connect

    def session():
        return _wh_engines.Engine(connect(_wh_engines.PG_URL), pg_schema)

    e = session()
    _, _, fact = _star(e)
    rows = [(i, 1, "c9", "p1", "2024-03-01", None, "1") for i in range(200)]
    batch = e.stage("stg_sales", SALES_COLS, rows)
    results, barrier = [], threading.Barrier(2)

    def run():
        other = session()
        barrier.wait()
        results.append(load_transaction_fact(other.con, fact, batch))
        other.con.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.inserted for r in results) == [0, 200]
    assert sorted(sum(r.inferred.values()) for r in results) == [0, 1]
    assert e.rows('SELECT COUNT(*), COUNT(DISTINCT order_id) FROM {s}."fact_sales"') == [(200, 200)]
    assert e.rows("SELECT COUNT(*) FROM {s}.\"dim_customer\" WHERE customer_id = 'c9'") == [(1,)]
    e.con.close()


def _quarantined(e):
    return e.rows(
        "SELECT order_id, line_no, amount, customer_key, _crane_run_id"
        ' FROM {s}."fact_sales_quarantine" ORDER BY order_id, line_no'
    )


def test_a_rerun_row_with_changed_values_is_quarantined_not_dropped(engine):
    """A transaction is never updated: a loaded grain re-delivered with another amount
    or another customer goes to the quarantine table, once, and is counted; an exact
    re-delivery, or a key that moved to another version of the same member or found a
    member that was unknown, is a no-op counted as unchanged."""
    e = engine
    _, _, fact = _star(e)
    first = [
        (1, 1, "c1", "p1", "2024-01-10 09:00:00", "2024-01-12", "10.00"),
        (2, 1, "c2", "p1", "2024-02-10 00:00:00", None, "20.00"),
        (3, 1, "c1", "p9", "2024-02-10 00:00:00", None, "30.00"),  # product unknown
    ]
    batch = e.stage("stg_sales", SALES_COLS, first)
    assert load_transaction_fact(e.con, fact, batch, run_id="r1").inserted == 3
    e.con.execute(f"INSERT INTO {e.ref('dim_product').sql(e.con.dialect)} VALUES (9, 'p9', 'Cap')")
    again = [
        first[0],  # exactly as loaded
        (2, 1, "c2", "p1", "2024-02-10 00:00:00", None, "25.00"),  # amount corrected
        (3, 1, "c1", "p9", "2024-02-10 00:00:00", None, "30.00"),  # p9 found now
        (4, 1, "c2", "p2", "2024-02-11 00:00:00", None, "40.00"),  # new
        (1, 2, "c9", "p1", "2024-02-11 00:00:00", None, "1.00"),  # new line of order 1
    ]
    # a late change of c1 (Rome from Jan 5): order 1 now finds another version of c1
    dim = e.ref("dim_customer").sql(e.con.dialect)
    e.con.execute(f"UPDATE {dim} SET effective_to = TIMESTAMP '2024-01-05' WHERE sk = 1")
    e.con.execute(f"UPDATE {dim} SET effective_from = TIMESTAMP '2024-01-05' WHERE sk = 2")
    batch = e.stage("stg_sales", SALES_COLS, again)
    result = load_transaction_fact(e.con, fact, batch, run_id="r2")
    assert (result.rows_in, result.inserted, result.quarantined, result.unchanged) == (5, 2, 1, 2)
    assert result.quarantine_table == str(e.ref("fact_sales_quarantine"))
    assert _quarantined(e) == [(2, 1, Decimal("25.00"), 3, "r2")]
    reason = e.rows('SELECT _crane_reason FROM {s}."fact_sales_quarantine"')[0][0]
    assert "fact_sales" in reason and "order_id, line_no" in reason and "run r2" in reason
    # the loaded rows are untouched: order 2 keeps 20.00, order 3 keeps the unknown product
    assert [(r[0], r[2], r[5]) for r in _sales(e)][:4] == [
        (1, 1, Decimal("10.00")),
        (1, 1, Decimal("1.00")),
        (2, 1, Decimal("20.00")),
        (3, -1, Decimal("30.00")),
    ]
    # the same batch again: nothing inserted, nothing quarantined twice
    rerun = load_transaction_fact(e.con, fact, batch, run_id="r3")
    assert (rerun.inserted, rerun.quarantined, rerun.unchanged) == (0, 0, 5)
    assert len(_quarantined(e)) == 1
    # another customer for order 2 (c1 instead of c2) is a change; c1's version is not
    changed_customer = (2, 1, "c1", "p1", "2024-02-10 00:00:00", None, "20.00")
    batch = e.stage("stg_sales", SALES_COLS, [changed_customer])
    moved = load_transaction_fact(e.con, fact, batch, run_id="r4")
    assert (moved.inserted, moved.quarantined) == (0, 1)
    assert _quarantined(e)[1] == (2, 1, Decimal("20.00"), 2, "r4")


def test_an_accumulating_attribute_is_the_latest_events_whatever_the_arrival_order(engine):
    """The attribute took the value of whichever batch came last: a late "ordered" event
    (customer 7) overwrote the customer the later "shipped" event named (9), and an event
    naming the unknown member (-1) erased a known customer."""
    e = engine
    ordered = (1, "ordered", "2024-01-01 10:00:00", 7)
    shipped = (1, "shipped", "2024-01-03 10:00:00", 9)
    delivered = (1, "delivered", "2024-01-05 10:00:00", 9)
    expected = (1, datetime(2024, 1, 1, 10), datetime(2024, 1, 3, 10), datetime(2024, 1, 5, 10))
    for batches in itertools.permutations([[ordered], [shipped], [delivered]]):
        assert _flow(e, [*batches, [ordered]]) == [(*expected, 2, 4, 9)], batches
    assert _flow(e, [[ordered, shipped, delivered]]) == [(*expected, 2, 4, 9)]
    # an event naming the unknown member says nothing: it never erases the customer
    unknown = (1, "delivered", "2024-01-05 10:00:00", -1)
    for batches in ([[ordered], [shipped], [unknown]], [[unknown], [shipped], [ordered]]):
        rows = _flow(e, batches, unknown_values={"customer_key": -1})
        assert rows == [(*expected, 2, 4, 9)], batches
    # only events naming nobody: the unknown member, not NULL
    only = [(2, "ordered", "2024-01-01 00:00:00", -1)]
    assert _flow(e, [only], unknown_values={"customer_key": -1})[0][-1] == -1


def test_accumulating_lags_count_calendar_days_across_dst_and_month_ends(engine):
    """Whole days between the milestones' dates: a DST change (Europe, 2024-03-31) or a
    month end (February of a leap year) neither adds nor loses a day; a milestone dated
    before the one it is measured from gives a negative lag, as reported."""
    e = engine
    events = [
        (1, "ordered", "2024-03-30 23:30:00", 1),
        (1, "shipped", "2024-03-31 02:30:00", 1),
        (1, "delivered", "2024-04-01 00:10:00", 1),
        (2, "ordered", "2024-01-31 23:59:59", 1),
        (2, "shipped", "2024-02-01 00:00:00", 1),
        (2, "delivered", "2024-03-01 00:00:00", 1),
        (3, "shipped", "2024-01-01 00:00:00", 1),
        (3, "ordered", "2024-01-05 00:00:00", 1),
    ]
    rows = _flow(e, [events[::2], events[1::2]])
    assert [(r[0], r[4], r[5]) for r in rows] == [(1, 1, 2), (2, 1, 30), (3, -4, None)]


def test_an_accumulating_event_without_an_instance_key_is_refused(engine):
    """A NULL order id matched no row in the MERGE, so every load inserted it again."""
    e = engine
    events = [(None, "ordered", "2024-01-01 10:00:00", 7), (1, "ordered", "2024-01-01", 7)]
    with pytest.raises(FactLoadError, match=r"1 event\(s\) of fact_order_flow have a NULL"):
        _flow(e, [events])
    assert e.rows('SELECT COUNT(*) FROM {s}."fact_order_flow"') == [(0,)]


def test_two_different_rows_for_one_degenerate_key_are_refused(engine):
    """The loader keeps one row per key of a batch that repeats it; of two different rows
    it kept whichever the engine ranked first and dropped the other without a word."""
    e = engine
    _, _, fact = _star(e)
    rows = [
        (1, 1, "c1", "p1", "2024-01-10 09:00:00", None, "10.00"),
        (1, 1, "c1", "p1", "2024-01-10 09:00:00", None, "10.00"),  # a repeat: one row
        (2, 1, "c2", "p1", "2024-02-10 00:00:00", None, "20.00"),
    ]
    result = load_transaction_fact(e.con, fact, e.stage("stg_sales", SALES_COLS, rows))
    assert (result.rows_in, result.inserted, result.unchanged) == (3, 2, 1)
    new = (3, 1, "c2", "p1", "2024-02-10 00:00:00", None, "30.00")
    clash = [new, (*new[:-1], "31.00")]
    with pytest.raises(FactLoadError, match=r"two different rows for one grain \(order_id = 3"):
        load_transaction_fact(e.con, fact, e.stage("stg_sales", SALES_COLS, clash))
    assert [r[5] for r in _sales(e)] == [Decimal("10.00"), Decimal("20.00")]
