"""Failing-row samples that cost no second scan, and the tolerated-violations option."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from crane.quality.executor import plan_suite, run_suite
from crane.quality.loader import build_suite
from crane.quality.readonly import ReadOnlySession, ReadOnlyViolation

REF = {"type": "referential", "table": "orders", "column": "customer_id", "to": "customers"}


def test_referential_keys_come_from_the_fused_scan(duck_db: str) -> None:
    # parents 1..3: customer 4 (ids 3+5k), 5 (ids 4+5k) and 999 (id 4) miss
    specs = [
        {"type": "not_null", "table": "orders", "column": "id"},
        {**REF, "to_column": "id", "to_filter": "id < 4", "sample_rows": 2},
    ]
    suite = build_suite(specs, {"db": duck_db}, sample_rows=5)
    plan, ctx = plan_suite(suite)
    assert plan.summary() == "2 checks → 1 query"  # count and first keys in one scan
    fused = plan.statements(ctx)[0][1]
    assert fused.count("customers") == 1 and 'MIN("customer_id", 2) FILTER(WHERE' in fused
    outcome = run_suite(suite)
    passed, ref = outcome.results
    assert passed.status == "pass" and ref.status == "fail" and ref.value == 7
    assert outcome.query_count == 2  # fused scan + rows holding the two smallest keys
    assert "customers" not in (ref.sql or "") and ref.sql == outcome.queries[-1]
    assert sorted(row["customer_id"] for row in ref.sample) == [4, 4]
    assert all(set(row) >= {"id", "email", "amount"} for row in ref.sample)


def test_referential_without_samples_keeps_the_plain_anti_join(duck_db: str) -> None:
    suite = build_suite([{**REF, "to_column": "id"}], {"db": duck_db}, sample_rows=0)
    plan, ctx = plan_suite(suite)
    assert "crane_found" not in plan.statements(ctx)[0][1]
    outcome = run_suite(suite)
    assert outcome.results[0].value == 1 and outcome.results[0].sample == []
    assert outcome.query_count == 1


def test_a_broken_referential_leaves_its_scan_to_the_other_checks(duck_db: str) -> None:
    specs = [
        {"type": "not_null", "table": "orders", "column": "customer_id"},
        {**REF, "to": "no_such_table", "to_column": "id"},
        {"type": "range", "table": "orders", "column": "amount", "min": 0},
    ]
    not_null, broken, ranged = run_suite(build_suite(specs, {"db": duck_db})).results
    assert broken.status == "error" and "no_such_table" in broken.message
    assert (not_null.status, not_null.value) == ("fail", 1)
    assert (ranged.status, ranged.value, len(ranged.sample)) == ("fail", 1, 1)


KEY_TYPES: list[tuple[str, list[Any], list[Any]]] = [
    # (SQL type, parent keys, child keys) — the child's last two keys are missing
    ("VARCHAR", ["a", "b"], ["a", "b", "it's", "zz"]),
    (
        "DATE",
        [dt.date(2026, 1, 1)],
        [dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2027, 1, 1)],
    ),
    (
        "TIMESTAMP",
        [dt.datetime(2026, 1, 1, 1, 2, 3, 4)],
        [
            dt.datetime(2026, 1, 1, 1, 2, 3, 4),
            dt.datetime(2026, 1, 1, 1, 2, 3, 5),
            dt.datetime(2030, 1, 1),
        ],
    ),
    ("DECIMAL(10, 2)", [Decimal("1.10")], [Decimal("1.10"), Decimal("-2.50"), Decimal("3.00")]),
    ("DOUBLE", [0.5], [0.5, 0.1, 1e-7]),
    ("UUID", [uuid.UUID(int=1)], [uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)]),
    ("BLOB", [b"a"], [b"a", b"b", b"\x00c"]),  # no literal: the sample anti-joins itself
]


@pytest.mark.parametrize(("sql_type", "parents", "children"), KEY_TYPES, ids=lambda v: str(v))
def test_referential_sample_keys_of_every_type(
    tmp_path: Path, sql_type: str, parents: list[Any], children: list[Any]
) -> None:
    path = tmp_path / "keys.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE p (k {sql_type})")
        con.execute(f"CREATE TABLE c (id INTEGER, k {sql_type})")
        con.executemany("INSERT INTO p VALUES (?)", [(k,) for k in parents])
        con.executemany("INSERT INTO c VALUES (?, ?)", list(enumerate(children)))
    spec = {"type": "referential", "table": "c", "column": "k", "to": "p", "to_column": "k"}
    outcome = run_suite(build_suite([spec], {"db": f"duckdb:///{path}"}, sample_rows=5))
    result = outcome.results[0]
    missing = [k for k in children if k not in parents]
    assert result.status == "fail" and result.value == len(missing)
    assert sorted(row["id"] for row in result.sample) == [children.index(k) for k in missing]
    assert outcome.query_count == 2


def test_duplicate_sample_breaks_ties_by_key(duck_db: str) -> None:
    # amount 10·i: every amount once, except id 5's twice; status: 'new' ×10, 'paid' ×10
    spec = {"type": "unique", "table": "orders", "column": "status", "sample_rows": 2}
    result = run_suite(build_suite([spec], {"db": duck_db})).results[0]
    assert result.sample == [{"status": "new", "n": 10}, {"status": "paid", "n": 10}]


def _one(duck_db: str, spec: dict[str, Any]) -> Any:
    return run_suite(build_suite([{"table": "orders", **spec}], {"db": duck_db})).results[0]


def test_max_violations_is_the_tolerance_and_range_max_its_bound(duck_db: str) -> None:
    # amounts: -5 (row 8) and 10·i for the others; above 150: ids 16..20 (5 rows)
    ranged = {"type": "range", "column": "amount", "min": 0, "max": 150}
    assert (_one(duck_db, ranged).status, _one(duck_db, ranged).value) == ("fail", 6)
    tolerant = _one(duck_db, {**ranged, "max_violations": 6})
    assert (tolerant.status, tolerant.value, tolerant.threshold) == ("pass", 6, "<= 6")
    assert _one(duck_db, {**ranged, "max_violations": 5}).status == "fail"
    # other row checks keep `max` as the tolerance (files written before max_violations)
    nulls = {"type": "not_null", "column": "customer_id"}
    assert _one(duck_db, {**nulls, "max": 1}).status == "pass"
    assert _one(duck_db, {**nulls, "max_violations": 1}).status == "pass"
    assert _one(duck_db, {**nulls, "max_violations": 0}).status == "fail"
    # unique: the same option counts tolerated duplicate rows
    unique = {"type": "unique", "column": "id"}
    assert _one(duck_db, unique).status == "fail"
    assert _one(duck_db, {**unique, "max_violations": 2}).threshold == "<= 2"
    assert _one(duck_db, {**unique, "max_violations": 2}).status == "pass"


def test_array_grouping_only_for_big_scans_and_never_over_the_url(duck_db: str) -> None:
    setting = "SELECT current_setting('perfect_ht_threshold') AS bits"
    with ReadOnlySession(duck_db) as session:
        assert session.fetch(setting)[1] == [(12,)]  # DuckDB's default
        session.group_keys_in_arrays(2**20)  # big scan: dense keys group in an array
        assert session.fetch(setting)[1] == [(24,)]
        session.group_keys_in_arrays(1000)  # small scan: sparse ids would cost a 2^24 array
        assert session.fetch(setting)[1] == [(12,)]
    with ReadOnlySession(f"{duck_db}?perfect_ht_threshold=16") as session:
        session.group_keys_in_arrays(2**20)
        assert session.fetch(setting)[1] == [(16,)]


def test_built_queries_are_guarded_without_reparsing(duck_db: str) -> None:
    from sqlglot import exp

    with ReadOnlySession(duck_db) as session:
        assert session.fetch(exp.select("1").from_("orders").limit(1))[1] == [(1,)]
        sneaky = exp.insert(exp.select("1"), "orders")  # a built tree that writes
        with pytest.raises(ReadOnlyViolation):
            session.fetch(sneaky)
