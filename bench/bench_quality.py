"""A 30-check suite on a 10M-row DuckDB table: crane vs a hand-written floor and the peers.

Issue 4 (performance): crane's checker, failing-row samples on, within 1.1x of a
hand-written two-query floor (one aggregate query for every metric + one for the foreign
key and duplicates), faster than Soda Core 4, Soda Core 3 and Great Expectations 1.x in
the same run, and at most 1 GB peak RSS.

Every tool runs in its own process under ``/usr/bin/time -v`` (whole-process wall time
and peak RSS, start-up included), interleaved, ``--repeat`` times; the peers run from
their virtualenvs under bench/.venvs/ (``bash bench/setup_peers.sh`` builds them).

    .venv/bin/python bench/bench_quality.py [--rows 10000000] [--repeat 2]
        [--tools floor,crane,soda4,gx,soda3]
        (also: crane_uncapped, crane_ht12, floor_ht24 — see VARIANTS)

The table has injected defects (duplicate ids, NULLs, unknown statuses, negative
amounts, bad emails, orphan customer ids, updated_at < created_at), so checks fail and
the tools that sample failing rows do fetch them. Soda Core 3.5 pins DuckDB < 1.1, so it
reads a copy of the data in DuckDB 1.0 storage format.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / "quality_peers"
VENVS = BENCH / ".venvs"
SUITE = PEERS / "crane_suite.yml"

ORDERS = """
CREATE OR REPLACE TABLE orders AS
SELECT
  CASE WHEN range % 100000 = 7 THEN range - 1 ELSE range END AS id,
  CASE WHEN range % 1000 = 0 THEN NULL
       WHEN range % 50000 = 1 THEN 2000000 + range
       ELSE (range * 7919) % 1000000 END AS customer_id,
  CASE WHEN range % 20000 = 3 THEN 'unknown'
       ELSE ['new', 'paid', 'shipped', 'delivered', 'returned'][1 + range % 5] END AS status,
  CASE WHEN range % 99991 = 0 THEN NULL
       WHEN range % 10007 = 0 THEN -1.00
       ELSE round(((range * 31) % 100000) / 100.0, 2) END::DECIMAL(12, 2) AS amount,
  CASE WHEN range % 30011 = 0 THEN 0 ELSE 1 + range % 20 END::INTEGER AS quantity,
  CASE WHEN range % 500 = 0 THEN 'not-an-email'
       ELSE 'user' || (range % 250000) || '@example.com' END AS email,
  ['NL', 'DE', 'FR', 'US', 'GB', 'ES', 'IT'][1 + (range * 3) % 7] AS country,
  TIMESTAMP '2026-01-01' + to_seconds(range) AS created_at,
  CASE WHEN range % 40009 = 0 THEN TIMESTAMP '2026-01-01' + to_seconds(range) - INTERVAL 1 HOUR
       ELSE TIMESTAMP '2026-01-01' + to_seconds(range + range % 3600) END AS updated_at,
  CASE WHEN range % 10 < 3 THEN NULL ELSE (range % 50) / 100.0 END::DOUBLE AS discount
FROM range({rows})
"""
CUSTOMERS = "CREATE OR REPLACE TABLE customers AS SELECT range AS id FROM range(1000000)"

EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"  # crane's pattern

# The floor: every metric of the suite in one scan, then the foreign key and duplicates.
FLOOR_AGGREGATE = f"""
SELECT count(*), count(id), count(customer_id), count(status), count(amount), count(email),
  count(country), count(created_at), count(updated_at),
  count(*) FILTER (WHERE status NOT IN ('new', 'paid', 'shipped', 'delivered', 'returned')),
  count(*) FILTER (WHERE country NOT IN ('NL', 'DE', 'FR', 'US', 'GB', 'ES', 'IT')),
  count(*) FILTER (WHERE amount < 0 OR amount > 100000),
  count(*) FILTER (WHERE quantity < 1 OR quantity > 20),
  count(*) FILTER (WHERE NOT regexp_full_match(email, '{EMAIL}')),
  count(*) FILTER (WHERE NOT (updated_at >= created_at)),
  max(created_at), avg(amount), stddev_samp(amount), count(DISTINCT country),
  count(discount), min(quantity), max(amount), sum(quantity),
  count(*) FILTER (WHERE length(country) < 2 OR length(country) > 2),
  count(DISTINCT status), avg(quantity),
  count(*) FILTER (WHERE updated_at - created_at > INTERVAL 30 DAY)
FROM orders
"""
FLOOR_KEYS = """
SELECT
  (SELECT count(*) FROM orders o WHERE o.customer_id IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id)),
  (SELECT count(*) FROM (SELECT id FROM orders WHERE id IS NOT NULL
     GROUP BY id HAVING count(*) > 1))
"""


def build(db: Path, rows: int) -> None:
    """The 10M-row table (skipped when present with the right size) and its 1.0-format copy."""
    import duckdb

    db.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(db)) as con:
        have = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'orders'"
        ).fetchone()
        if not (have and have[0] and _count(con) == rows):
            con.execute(ORDERS.format(rows=rows))
            con.execute(CUSTOMERS)
    old = v10_path(db)
    if old.exists():
        return
    with duckdb.connect() as con:  # a copy Soda Core 3.5's DuckDB (< 1.1) can open
        con.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
        con.execute(f"ATTACH '{old}' AS dst (STORAGE_VERSION 'v1.0.0')")
        con.execute("COPY FROM DATABASE src TO dst")


def _count(con: object) -> int:
    row = con.execute("SELECT count(*) FROM orders").fetchone()  # type: ignore[attr-defined]
    return int(row[0])


def v10_path(db: Path) -> Path:
    return db.with_name(db.stem + "_v10.duckdb")


# Variants that isolate one setting. crane's DuckDB session caps memory at 640MB and
# raises perfect_ht_threshold to 24 bits (GROUP BY on dense integer keys in an array);
# crane_ht12 is crane with DuckDB's default 12 bits, floor_ht24 the floor with 24 bits.
VARIANTS = {
    "crane_uncapped": "?memory_limit=4GB",
    "crane_ht12": "?perfect_ht_threshold=12",
    "floor_ht24": {"perfect_ht_threshold": 24},
}
CHILDREN = ("floor", "crane", *VARIANTS)


def child(which: str, db: Path) -> None:
    """Floor or crane in this process (the peers have their own scripts and venvs)."""
    started = time.perf_counter()
    if which.startswith("floor"):
        import duckdb

        config = VARIANTS.get(which) or {}
        with duckdb.connect(str(db), read_only=True, config=config) as con:
            metrics = con.execute(FLOOR_AGGREGATE).fetchone()
            keys = con.execute(FLOOR_KEYS).fetchone()
        summary = {"queries": 2, "rows": metrics[0], "orphans": keys[0], "dup_ids": keys[1]}
    else:
        from crane.quality.executor import run_suite
        from crane.quality.loader import load_suite

        url = f"duckdb:///{db}" + str(VARIANTS.get(which, ""))
        suite = load_suite(SUITE, lambda _name: url, "warehouse")
        outcome = run_suite(suite, None)
        statuses = [r.status for r in outcome.results]
        summary = {
            "checks": len(statuses),
            "failed": sum(s == "fail" for s in statuses),
            "errors": sum(s == "error" for s in statuses),
            "sampled": sum(bool(getattr(r, "sample", None)) for r in outcome.results),
        }
    summary["inner_seconds"] = round(time.perf_counter() - started, 3)
    print(json.dumps(summary))


def command(which: str, db: Path) -> list[str]:
    if which in CHILDREN:
        return [sys.executable, str(Path(__file__).resolve()), "--child", which, "--db", str(db)]
    script = PEERS / f"{which}_run.py"
    data = v10_path(db) if which == "soda3" else db
    return [str(VENVS / which / "bin" / "python"), str(script), str(data)]


def measure(which: str, db: Path, timeout: float) -> dict:
    """Whole-process wall time and peak RSS from GNU time; the tool's JSON summary line."""
    timing = db.parent / f"quality.{which}.time"
    cmd = ["/usr/bin/time", "-v", "-o", str(timing), *command(which, db)]
    started = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"which": which, "error": f"timeout after {timeout:.0f} s"}
    wall = time.perf_counter() - started
    text = timing.read_text() if timing.exists() else ""
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    result: dict = {"which": which, "seconds": round(wall, 2)}
    result["peak_rss_mb"] = round(int(rss.group(1)) / 1024) if rss else None
    # CPU seconds (user + system, all threads): less sensitive than wall time to other
    # processes on a shared machine, so the ratios are reported for both
    cpu = [re.search(rf"{kind} time \(seconds\): ([\d.]+)", text) for kind in ("User", "System")]
    result["cpu_seconds"] = round(sum(float(m.group(1)) for m in cpu if m), 2)
    lines = [ln for ln in out.stdout.strip().splitlines() if ln.startswith("{")]
    if out.returncode not in (0, 1) or not lines:
        result["error"] = (out.stderr or out.stdout)[-800:]
    else:
        result.update(json.loads(lines[-1]))
    return result


def report(results: dict[str, list[dict]], rows: int) -> None:
    ok = {w: [r for r in rs if "error" not in r] for w, rs in results.items()}
    med = {w: statistics.median(r["seconds"] for r in rs) for w, rs in ok.items() if rs}
    cpu = {w: statistics.median(r["cpu_seconds"] for r in rs) for w, rs in ok.items() if rs}
    floor = med.get("floor")
    print(f"\nrows: {rows:,}  cpus: {os.cpu_count()}  load: {os.getloadavg()[0]:.1f}")
    for which, runs in results.items():
        if which not in med:
            error = runs[-1].get("error", "") if runs else "not run"
            print(f"{which:6s} FAILED: {error[-300:]}")
            continue
        times = ", ".join(f"{r['seconds']:.2f}" for r in ok[which])
        rss = max(r["peak_rss_mb"] or 0 for r in ok[which])
        ratio = f"{med[which] / floor:.2f}x floor" if floor else ""
        if floor and cpu.get("floor"):
            ratio += f", CPU {cpu[which]:.2f} s = {cpu[which] / cpu['floor']:.2f}x"
        skip = ("which", "seconds", "cpu_seconds")
        extra = {k: v for k, v in ok[which][-1].items() if k not in skip}
        print(f"{which:6s} median {med[which]:.2f} s ({times})  {ratio}  RSS {rss} MB  {extra}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tools", default="floor,crane,soda4,gx,soda3")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--child")
    args = parser.parse_args()
    db = args.db or BENCH / ".data" / f"quality_{args.rows}.duckdb"
    if args.child:
        child(args.child, db)
        return
    build(db, args.rows)
    tools = args.tools.split(",")
    results: dict[str, list[dict]] = {w: [] for w in tools}
    for _ in range(args.repeat):  # interleaved so every tool sees the same machine load
        for which in tools:
            results[which].append(measure(which, db, args.timeout))
            print(json.dumps(results[which][-1])[:400], flush=True)
    report(results, args.rows)


if __name__ == "__main__":
    main()
