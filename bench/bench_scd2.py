"""SCD Type 2 benchmark on DuckDB: crane's loader against hand-written SQL floors.

A 1,000,000-row customer dimension with 6 tracked columns:

* **initial load** — crane's ``load_dimension`` into an empty dimension vs a plain
  ``CREATE TABLE AS SELECT`` of the same rows (goal: ≤ 2×);
* **1% changed** — 10,000 customers change one tracked column: crane's loader vs the
  floor, a hand-written UPDATE (close the current row) + INSERT (new version) that
  knows the change set is clean (goal: ≤ 1.5×).

Cases run interleaved (each repetition runs every case once, in rotated order) on
fresh copies of the same tables, so machine noise spreads over all of them; every
result is checked (row counts, one current row per key) before its time counts.

    .venv/bin/python bench/bench_scd2.py              # 3 repetitions, 1M rows
    .venv/bin/python bench/bench_scd2.py --rows 100000 --reps 1

Peers (dbt snapshot with dbt-duckdb, dlt's ``scd2`` merge) plug in through
``PEERS``: a function that receives the DuckDB file, the dimension table name and the
staged-changes table name and returns its wall time; see ``peer_hook`` below.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from crane.connectors.base import TableRef, connect  # noqa: E402
from crane.warehouse.scd import ScdTable, load_dimension  # noqa: E402

TRACKED = ("name", "email", "city", "state", "segment", "phone")
LOAD_TS = datetime(2024, 6, 1)


def dimension(table: str) -> ScdTable:
    return ScdTable(
        TableRef(table), business_key=("customer_id",), type2=TRACKED, change_ts="updated_at"
    )


def make_sources(con: object, rows: int) -> None:
    """``src`` (all customers, day 1) and ``chg`` (1% of them with a new city, day 2)."""
    run = con.execute  # type: ignore[attr-defined]
    run(
        "CREATE OR REPLACE TABLE src AS SELECT i::BIGINT AS customer_id,"
        " 'name ' || i AS name, 'c' || i || '@example.com' AS email,"
        " 'city ' || (i % 5000) AS city, 'state ' || (i % 50) AS state,"
        " CASE i % 4 WHEN 0 THEN 'retail' WHEN 1 THEN 'smb' WHEN 2 THEN 'corp' ELSE 'gov' END"
        " AS segment, '+1-555-' || lpad((i % 10000000)::TEXT, 7, '0') AS phone,"
        " TIMESTAMP '2024-01-01' AS updated_at"
        f" FROM range({rows}) t(i)"
    )
    run(
        "CREATE OR REPLACE TABLE chg AS SELECT customer_id, name, email,"
        " city || ' (moved)' AS city, state, segment, phone,"
        " TIMESTAMP '2024-01-02' AS updated_at FROM src WHERE customer_id % 100 = 42"
    )


# ------------------------------------------------------------------------ cases


def crane_initial(con: object) -> float:
    con.execute("DROP TABLE IF EXISTS dim_crane")  # type: ignore[attr-defined]
    t = time.perf_counter()
    load_dimension(con, dimension("dim_crane"), TableRef("src"), load_ts=LOAD_TS)  # type: ignore[arg-type]
    return time.perf_counter() - t


def ctas_initial(con: object) -> float:
    con.execute("DROP TABLE IF EXISTS dim_ctas")  # type: ignore[attr-defined]
    t = time.perf_counter()
    con.execute("CREATE TABLE dim_ctas AS SELECT * FROM src")  # type: ignore[attr-defined]
    return time.perf_counter() - t


def prepare_change(con: object, name: str, base: str) -> None:
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {base}")  # type: ignore[attr-defined]
    con.execute("CHECKPOINT")  # type: ignore[attr-defined]


def crane_change(con: object) -> float:
    prepare_change(con, "dim_c2", "dim_base")
    t = time.perf_counter()
    load_dimension(con, dimension("dim_c2"), TableRef("chg"), load_ts=LOAD_TS)  # type: ignore[arg-type]
    return time.perf_counter() - t


FLOOR_SQL = [
    # close the current row of every changed customer ...
    "UPDATE dim_f2 SET effective_to = c.updated_at, is_current = FALSE FROM chg c"
    " WHERE dim_f2.customer_id = c.customer_id AND dim_f2.is_current"
    " AND (dim_f2.name, dim_f2.email, dim_f2.city, dim_f2.state, dim_f2.segment, dim_f2.phone)"
    " IS DISTINCT FROM (c.name, c.email, c.city, c.state, c.segment, c.phone)",
    # ... and insert its new version (keys continue after the current maximum)
    "INSERT INTO dim_f2 SELECT (SELECT max(sk) FROM dim_f2) + row_number() OVER (), c.customer_id,"
    " c.name, c.email, c.city, c.state, c.segment, c.phone, c.updated_at, NULL, TRUE"
    " FROM chg c JOIN dim_f2 d ON d.customer_id = c.customer_id"
    " AND d.effective_to = c.updated_at AND NOT d.is_current",
]


def floor_change(con: object) -> float:
    prepare_change(con, "dim_f2", "dim_base")
    t = time.perf_counter()
    con.execute("BEGIN")  # type: ignore[attr-defined]
    for sql in FLOOR_SQL:
        con.execute(sql)  # type: ignore[attr-defined]
    con.execute("COMMIT")  # type: ignore[attr-defined]
    return time.perf_counter() - t


def peer_hook(con: object) -> float:  # pragma: no cover - filled in by the peer helpers
    """Template for a peer: reset its copy of ``dim_base``, time its load of ``chg``."""
    raise NotImplementedError


# name -> (case, check) ; peers (dbt snapshot, dlt scd2) are added here by their owners
CASES: dict[str, Callable[[object], float]] = {
    "crane_initial": crane_initial,
    "ctas_initial": ctas_initial,
    "crane_change": crane_change,
    "floor_change": floor_change,
}
PEERS: dict[str, Callable[[object], float]] = {}


def check(con: object, rows: int) -> None:
    """Both change loads produce the same history: rows + 1% versions, one current per key."""
    q = con.execute  # type: ignore[attr-defined]
    changed = q("SELECT count(*) FROM chg").fetchone()[0]
    for name in ("dim_c2", "dim_f2"):
        total, current = q(f"SELECT count(*), count(*) FILTER (is_current) FROM {name}").fetchone()
        assert (total, current) == (rows + changed, rows), (name, total, current)
    cols = "customer_id, name, email, city, state, segment, phone, effective_from, effective_to"
    diff = q(
        f"SELECT count(*) FROM (SELECT {cols} FROM dim_c2 EXCEPT SELECT {cols} FROM dim_f2)"
    ).fetchone()[0]
    assert diff == 0, f"crane and the floor disagree on {diff} rows"
    assert q("SELECT count(*) FROM dim_crane").fetchone()[0] == rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        con = connect(f"duckdb:///{os.path.join(tmp, 'scd.duckdb')}")
        make_sources(con.con, args.rows)  # type: ignore[attr-defined]
        load_dimension(con, dimension("dim_base"), TableRef("src"), load_ts=LOAD_TS)
        times: dict[str, list[float]] = {name: [] for name in [*CASES, *PEERS]}
        cases = {**CASES, **PEERS}
        names = list(cases)
        for rep in range(args.reps):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                target = con if name.startswith("crane") else con.con  # type: ignore[attr-defined]
                times[name].append(cases[name](target))
            check(con.con, args.rows)  # type: ignore[attr-defined]
        report(times, args)
        con.close()


def report(times: dict[str, list[float]], args: argparse.Namespace) -> None:
    med = {k: statistics.median(v) for k, v in times.items()}
    load = os.getloadavg()[0]
    print(f"rows={args.rows:,} reps={args.reps} load_avg={load:.1f} (medians, seconds)")
    for name, value in med.items():
        print(f"  {name:16s} {value:8.3f}   runs: {', '.join(f'{t:.3f}' for t in times[name])}")
    for label, ours, floor, goal in (
        ("initial: crane / CTAS", "crane_initial", "ctas_initial", 2.0),
        ("1% change: crane / UPDATE+INSERT", "crane_change", "floor_change", 1.5),
    ):
        within = statistics.median(a / b for a, b in zip(times[ours], times[floor], strict=True))
        print(
            f"  {label:34s} {med[ours] / med[floor]:.2f}x of medians,"
            f" {within:.2f}x median within-rep ratio (goal <= {goal})"
        )


if __name__ == "__main__":
    main()
