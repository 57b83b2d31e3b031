"""Plan and execution: fused queries, bisection, failure-only samples, history."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from crane.quality.executor import plan_suite, run_suite
from crane.quality.loader import build_suite
from crane.state.quality import QualityStore

# 30 checks that all pass on the conftest orders table (filter excludes the defects).
CLEAN = "id > 9"


def thirty_checks() -> list[dict]:
    t, f = "orders", CLEAN
    checks: list[dict] = [
        {"type": "row_count", "min": 1},
        {
            "type": "not_null",
            "columns": [
                "id",
                "customer_id",
                "email",
                "status",
                "amount",
                "created_at",
                "updated_at",
                "phone",
            ],
        },
        {"type": "missing_pct", "column": "email", "max": 1},
        {"type": "unique", "column": "email"},
        {"type": "accepted_values", "column": "status", "values": ["new", "paid"]},
        {"type": "range", "column": "amount", "min": 0, "max": 1000},
        {"type": "range", "column": "customer_id", "min": 1, "max": 5},
        {"type": "format", "column": "email", "format": "email"},
        {"type": "format", "column": "phone", "format": "e164"},
        {"type": "referential", "column": "customer_id", "to": "customers", "to_column": "id"},
        {"type": "rule", "expression": "updated_at >= created_at"},
        {"type": "freshness", "column": "created_at", "max_age": "36500d"},
        {"type": "mean", "column": "amount", "between": [0, 1000]},
        {"type": "stddev", "column": "amount", "max": 1000},
        {"type": "distinct_count", "column": "status", "equals": 2},
        {"type": "length", "column": "email", "max_length": 40},
        {"type": "regex", "column": "email", "pattern": "@example[.]com$"},
        {"type": "lag", "column": "created_at", "to_column": "updated_at", "max_lag": "1h"},
        {"type": "sum", "column": "amount", "min": 0},
        {"type": "min", "column": "amount", "min": 0},
        {"type": "max", "column": "amount", "max": 1000},
        {"type": "median", "column": "amount", "between": [0, 1000]},
        {"type": "castable", "column": "phone", "to": "bigint"},
    ]
    return [{"table": t, "filter": f, **c} for c in checks]


def test_thirty_passing_checks_take_one_query(duck_db: str) -> None:
    suite = build_suite(thirty_checks(), {"db": duck_db}, sample_rows=0)
    assert len(suite.checks) == 30
    plan, _ = plan_suite(suite)
    assert plan.summary() == "30 checks → 1 query"
    outcome = run_suite(suite)
    assert [r.check for r in outcome.results if r.status != "pass"] == []
    assert outcome.query_count == 1  # no samples, no detail queries for passing checks
    assert outcome.exit_code() == 0
    # samples on, DuckDB: unique's GROUP BY is planned instead of its COUNT(DISTINCT)
    sampled = build_suite(thirty_checks(), {"db": duck_db}, sample_rows=5)
    plan, _ = plan_suite(sampled)
    assert plan.summary() == "30 checks → 2 queries"
    outcome = run_suite(sampled)
    assert [r.check for r in outcome.results if r.status != "pass"] == []
    unique = next(r for r in outcome.results if r.check_type == "unique")
    assert outcome.query_count == 2 and unique.value == 0 and unique.sample == []


def test_samples_only_for_failed_checks_and_bounded(duck_db: str) -> None:
    specs = [
        {"type": "not_null", "table": "orders", "column": "id"},
        {"type": "range", "table": "orders", "column": "amount", "min": 100},  # 10 rows fail
        {"type": "unique", "table": "orders", "column": "id", "sample_rows": 2},
    ]
    outcome = run_suite(build_suite(specs, {"db": duck_db}, sample_rows=3))
    passed, ranged, unique = outcome.results
    assert passed.status == "pass" and passed.sample == []
    assert ranged.status == "fail" and ranged.value == 10 and len(ranged.sample) == 3
    assert all(row["amount"] < 100 for row in ranged.sample)
    # unique: the value counts ROWS (2), details count distinct duplicated values (1)
    assert unique.value == 2 and unique.details["duplicated_values"] == 1
    assert unique.sample == [{"id": 5, "n": 2}]
    # 1 fused scan + 1 range sample + 1 GROUP BY giving duplicate figures AND sample
    assert outcome.query_count == 3
    assert outcome.exit_code() == 1


def test_a_broken_check_does_not_take_its_bundle_down(duck_db: str) -> None:
    specs = [{"type": "not_null", "table": "orders", "column": c} for c in ("id", "email")]
    specs.insert(1, {"type": "rule", "table": "orders", "expression": "no_such_column > 1"})
    specs.append({"type": "mean", "table": "orders", "column": "amount", "min": 0})
    outcome = run_suite(build_suite(specs, {"db": duck_db}))
    statuses = [r.status for r in outcome.results]
    assert statuses == ["pass", "error", "pass", "pass"]
    assert "no_such_column" in outcome.results[1].message
    assert "no_such_column" in (outcome.results[1].sql or "")
    assert outcome.exit_code() == 1


def test_a_missing_table_errors_its_checks_only(duck_db: str) -> None:
    specs = [
        {"type": "row_count", "table": "nope"},
        {"type": "not_null", "table": "nope", "column": "x"},
        {"type": "row_count", "table": "orders"},
    ]
    outcome = run_suite(build_suite(specs, {"db": duck_db}))
    assert [r.status for r in outcome.results] == ["error", "error", "pass"]
    assert outcome.query_count == 3  # nope fails, nope's COUNT(*) confirms, orders
    assert outcome.error is None


def test_unreachable_database_is_a_run_failure(tmp_path: Path) -> None:
    missing = f"duckdb:///{tmp_path / 'missing.duckdb'}"
    outcome = run_suite(build_suite([{"type": "row_count", "table": "t"}], {"db": missing}))
    assert outcome.error and outcome.exit_code() == 2
    assert not (tmp_path / "missing.duckdb").exists()  # read-only: nothing created


def test_percentile_without_any_engine_support_says_so(sqlite_db: str) -> None:
    from dataclasses import replace

    from crane.quality import dialects

    spec = {"type": "median", "table": "orders", "column": "amount", "max": 1}
    original = dialects.DIALECTS["sqlite"]
    dialects.DIALECTS["sqlite"] = replace(original, percentile_probe=None)
    try:
        result = run_suite(build_suite([spec], {"db": sqlite_db})).results[0]
    finally:
        dialects.DIALECTS["sqlite"] = original
    assert result.status == "error" and "not computable" in result.message


def test_warn_severity_keeps_exit_code_zero(duck_db: str) -> None:
    spec = {"type": "not_null", "table": "orders", "column": "customer_id", "severity": "warn"}
    outcome = run_suite(build_suite([spec], {"db": duck_db}))
    assert outcome.results[0].status == "warn" and outcome.exit_code() == 0


def test_history_row_count_change_and_store(duck_db: str, tmp_path: Path) -> None:
    store = QualityStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    spec = {"type": "row_count_change", "table": "orders", "max_change_pct": 10}
    first = run_suite(build_suite([spec], {"db": duck_db}), store)
    assert first.results[0].status == "pass" and "baseline" in first.results[0].message
    path = duck_db.removeprefix("duckdb:///")
    with duckdb.connect(path) as con:  # +5 rows: 21 -> 26 is +23.8%
        con.execute("INSERT INTO orders SELECT * FROM orders LIMIT 5")
    second = run_suite(build_suite([spec], {"db": duck_db}), store)
    result = second.results[0]
    assert result.status == "fail" and result.value == 26
    assert result.details["previous"] == 21
    history = store.metric_history("orders", None, "row_count")
    assert [v for _, v in history] == [21.0, 26.0]
    assert [
        v for _, v in store.metric_history("orders", None, "row_count", exclude_run=second.run_id)
    ] == [21.0]
    stored = store.results(second.run_id)
    assert stored[0].status == "fail" and stored[0].value == 26
    runs = store.runs()
    assert [r["run_id"] for r in runs] == [second.run_id, first.run_id]
    assert runs[0]["exit_code"] == 1


def test_every_metric_is_recorded(duck_db: str, tmp_path: Path) -> None:
    store = QualityStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    specs = [
        {"type": "not_null", "table": "orders", "column": "customer_id"},
        {"type": "mean", "table": "orders", "column": "amount", "min": 0},
        {
            "type": "missing_pct",
            "table": "orders",
            "column": "customer_id",
            "max": 50,
            "filter": "id < 5",
        },
    ]
    outcome = run_suite(build_suite(specs, {"db": duck_db}), store)
    got = {(m.dataset, m.column, m.metric, m.filter): m.value for m in outcome.metrics}
    assert got[("orders", None, "row_count", None)] == 21
    assert got[("orders", None, "row_count", "id < 5")] == 4
    assert got[("orders", "customer_id", "null_count", None)] == 1
    assert got[("orders", "customer_id", "missing_pct", "id < 5")] == 25.0
    assert store.metric_history("orders", "amount", "mean")[0][1] == pytest.approx(
        outcome.results[1].value
    )


def test_cross_connection_referential_integrity(duck_db: str, sqlite_db: str) -> None:
    import sqlite3

    con = sqlite3.connect(sqlite_db.removeprefix("sqlite:///"))
    con.execute("DELETE FROM customers WHERE id = 2")  # parent side lives in SQLite
    con.commit()
    con.close()
    spec = {
        "type": "referential",
        "table": "orders",
        "column": "customer_id",
        "to": "customers",
        "to_column": "id",
        "to_connection": "src",
    }
    count = {
        "type": "row_count_compare",
        "table": "orders",
        "to": "orders",
        "to_connection": "src",
        "to_filter": "id <> 5",
    }
    outcome = run_suite(build_suite([spec, count], {"wh": duck_db, "src": sqlite_db}))
    result, compared = outcome.results
    assert compared.status == "fail" and compared.details["other"] == 19  # 21 vs 19
    # distinct child keys missing in the other database: 2 and 999
    assert result.status == "fail" and result.value == 2
    assert sorted(r["customer_id"] for r in result.sample) == ["2", "999"]
    assert outcome.query_count == 4  # 2 key streams + 1 scan per database for the counts


def test_cross_engine_keys_compare_by_value() -> None:
    from decimal import Decimal

    from crane.quality.checks.consistency import _key

    assert {_key(7), _key(7.0), _key(Decimal("7.00"))} == {"7"}
    assert _key(Decimal("7.50")) == "7.5" and _key("a") == "a"


def test_fused_duplicate_and_referential_checks_on_postgres_shapes(duck_db: str) -> None:
    specs = [
        {"type": "unique", "table": "orders", "columns": ["id", "email"]},
        {
            "type": "referential",
            "table": "orders",
            "column": "customer_id",
            "to": "customers",
            "to_column": "id",
            "filter": "customer_id <> 999",
        },
        {
            "type": "referential",
            "table": "orders",
            "column": "customer_id",
            "to": "customers",
            "to_column": "id",
            "to_filter": "id < 3",
            "name": "ref_filtered_parent",
        },
    ]
    suite = build_suite(specs, {"db": duck_db}, sample_rows=0)  # samples on: see above
    plan, _ = plan_suite(suite)
    assert plan.query_count == 2  # two scans (different filters), no probes
    outcome = run_suite(suite)
    unique, ref, ref_parent = outcome.results
    assert unique.value == 2 and ref.status == "pass"
    # parent filter honoured: only customers 1 and 2 count; 12 rows point at 3..5,
    # one of them is NULL (not a violation), one points at 999 (still one)
    assert ref_parent.value == 11


def test_every_result_carries_its_own_sql(duck_db: str) -> None:
    specs = [
        {"type": "mean", "table": "orders", "column": "amount", "min": 0},
        {"type": "not_null", "table": "orders", "column": "id"},
        {"type": "unique", "table": "orders", "column": "id"},
        {"type": "custom_metric", "table": "orders", "sql": "SELECT 1", "equals": 1},
    ]
    mean, not_null, unique, custom = run_suite(build_suite(specs, {"db": duck_db})).results
    assert mean.sql == 'SELECT AVG("amount") AS value FROM "orders"'
    assert not_null.sql == 'SELECT * FROM "orders" WHERE "id" IS NULL LIMIT 5'
    assert "GROUP BY" in (unique.sql or "") and custom.sql == "SELECT 1"


def test_plan_lists_every_query_it_counts(duck_db: str, sqlite_db: str) -> None:
    specs = [
        {"type": "duplicate_rows", "table": "orders"},  # schema probe + GROUP BY probe
        {"type": "not_null", "table": "orders", "column": "id"},  # fused scan
        {
            "type": "referential",
            "table": "orders",
            "column": "customer_id",
            "to": "customers",
            "to_column": "id",
            "to_connection": "src",
        },  # two key streams
    ]
    suite = build_suite(specs, {"db": duck_db, "src": sqlite_db})
    plan, ctx = plan_suite(suite)
    statements = plan.statements(ctx)
    assert plan.summary() == "3 checks → 5 queries" and len(statements) == 5
    assert statements[0] == ("db", 'SELECT * FROM "orders" LIMIT 0')
    assert statements[-1][0] == "src" and 'SELECT DISTINCT "id"' in statements[-1][1]
    outcome = run_suite(suite)
    assert outcome.query_count == 5  # the GROUP BY probe also carried the failing sample
    assert outcome.results[0].value == 2


@pytest.mark.integration
def test_cross_connection_keys_postgres_to_mariadb(pg_db: str, my_url: str) -> None:
    import pymysql

    con = pymysql.connect(host="127.0.0.1", user="root", database=my_url.rsplit("/", 1)[1])
    with con.cursor() as cur:
        cur.execute("DELETE FROM customers WHERE id = 3")
    con.commit()
    con.close()
    spec = {
        "type": "referential",
        "table": "orders",
        "column": "customer_id",
        "to": "customers",
        "to_column": "id",
        "to_connection": "my",
    }
    outcome = run_suite(build_suite([spec], {"pg": pg_db, "my": my_url}))
    result = outcome.results[0]
    assert result.status == "fail" and result.value == 2  # 3 and 999
    assert sorted(r["customer_id"] for r in result.sample) == ["3", "999"]


def test_failing_unique_without_samples_takes_figures_from_the_fused_scan(duck_db: str) -> None:
    # status: 21 keys, 3 distinct -> 18 extra rows; exactly 20 rows share 2 repeated keys
    specs = [
        {"type": "unique", "table": "orders", "column": "status", "name": "bounded"},
        {"type": "unique", "table": "orders", "column": "status", "exact": True, "name": "exact"},
        {"type": "unique", "table": "orders", "column": "status", "max": 25, "name": "undecided"},
        {"type": "unique", "table": "orders", "column": "id", "name": "one_extra"},
    ]
    alone = run_suite(build_suite(specs[:1] + specs[3:], {"db": duck_db}, sample_rows=0))
    bounded, one_extra = alone.results
    assert alone.query_count == 1  # no GROUP BY: the fused aggregate decided both
    assert bounded.status == "fail" and bounded.value is None and bounded.sample == []
    assert bounded.details["extra_rows"] == 18 and bounded.details["exact"] is False
    assert (bounded.details["duplicate_rows_min"], bounded.details["duplicate_rows_max"]) == (
        19,
        36,
    )
    assert "exact: true" in bounded.message and "19 to 36 rows" in bounded.message
    # one key twice is exact without a GROUP BY: 2 rows, 1 duplicated value
    assert one_extra.value == 2 and one_extra.details["duplicated_values"] == 1
    metrics = {(m.column, m.metric): m.value for m in alone.metrics}
    assert metrics[("status", "duplicate_extra_rows")] == 18
    assert ("status", "duplicate_rows") not in metrics  # unknown: not recorded as 0
    assert metrics[("id", "duplicate_rows")] == 2

    outcome = run_suite(build_suite(specs[1:3], {"db": duck_db}, sample_rows=0))
    exact, undecided = outcome.results
    assert outcome.query_count == 3  # fused scan + one GROUP BY each (opt-in; 19..36 vs 25)
    assert exact.status == "fail" and exact.value == 20 and exact.sample == []
    assert exact.details["duplicated_values"] == 2
    assert undecided.status == "pass" and undecided.value == 20


def test_failing_unique_with_samples_is_one_bounded_group_by(duck_db: str) -> None:
    spec = {"type": "unique", "table": "orders", "column": "status", "sample_rows": 1}
    outcome = run_suite(build_suite([spec], {"db": duck_db}))
    result = outcome.results[0]
    assert outcome.query_count == 2  # fused scan + one GROUP BY giving figures and sample
    assert result.value == 20 and result.details["duplicated_values"] == 2
    assert len(result.sample) == 1 and result.sample[0]["n"] == 10  # paid and new tie at 10
    assert result.sample[0]["status"] in ("paid", "new")


def test_referential_sample_is_one_query_of_violating_rows(duck_db: str) -> None:
    spec = {
        "type": "referential",
        "table": "orders",
        "column": "customer_id",
        "to": "customers",
        "to_column": "id",
        "to_filter": "id < 4",
        "filter": "id > 1",
    }
    outcome = run_suite(build_suite([spec], {"db": duck_db}, sample_rows=3))
    result = outcome.results[0]
    assert outcome.query_count == 2  # fused scan + the sample
    # parents 1..3: customer 4 (ids 8, 13, 18), 5 (9, 14, 19) and 999 (id 4) miss;
    # id 3's customer is NULL (no violation), id 1 is outside the filter
    assert result.status == "fail" and result.value == 7 and len(result.sample) == 3
    assert all(row["customer_id"] not in (1, 2, 3, None) for row in result.sample)
    assert all(row["id"] > 1 for row in result.sample)  # the scan filter holds outside too
    assert result.sql == outcome.queries[-1]
