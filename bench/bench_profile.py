"""Profile a 10M-row DuckDB table with crane vs DuckDB's own SUMMARIZE (issue 4 point 7).

crane's profile also produces exact top values, equi-width histograms, pattern
shares, duplicate rows and candidate keys, which SUMMARIZE does not. Goal: within
1.25x of SUMMARIZE, peak RSS <= 1 GB.

    .venv/bin/python bench/bench_profile.py [--rows 10000000] [--db bench/.data/profile.duckdb]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

DEFECTS = """
CREATE OR REPLACE TABLE sales AS
SELECT
  range AS id,
  (range * 7919) % 500000 AS customer_id,
  CASE WHEN range % 97 = 0 THEN NULL
       ELSE round(((range * 31) % 100000) / 100.0, 2)::DECIMAL(12, 2) END AS amount,
  (range % 13) - 1 AS quantity,
  CASE WHEN range % 500 = 0 THEN 'not-an-email'
       ELSE 'user' || (range % 250000) || '@example.com' END AS email,
  ['new', 'paid', 'shipped', 'delivered', 'returned'][1 + range % 5] AS status,
  ['NL', 'DE', 'FR', 'US', 'GB', 'ES', 'IT'][1 + (range * 3) % 7] AS country,
  TIMESTAMP '2024-01-01' + to_seconds(range * 3) AS created_at,
  DATE '2024-01-01' + ((range % 365)::INT) AS order_date,
  range % 3 = 0 AS is_gift
FROM range({rows})
"""


def build(db: Path, rows: int) -> None:
    import duckdb

    db.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(db)) as con:
        have = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'sales'"
        ).fetchone()
        if have and have[0] and con.execute("SELECT count(*) FROM sales").fetchone()[0] == rows:
            return
        con.execute(DEFECTS.format(rows=rows))


def child(db: Path, which: str) -> None:
    """Run one measurement in a fresh process so peak RSS is its own."""
    started = time.perf_counter()
    if which == "summarize":
        import duckdb

        with duckdb.connect(str(db), read_only=True) as con:
            con.execute("SUMMARIZE sales").fetchall()
    else:
        from crane.quality.profile import profile_url

        profile = profile_url(f"duckdb:///{db}", "sales")
        assert profile.rows > 0 and profile.columns[0].histogram
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"which": which, "seconds": seconds, "peak_rss_mb": rss_mb}))


def measure(db: Path, which: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, "--db", str(db)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, default=Path("bench/.data/profile.duckdb"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.db, args.child)
        return
    build(args.db, args.rows)
    results: dict[str, list[dict]] = {"summarize": [], "crane": []}
    for _ in range(args.repeat):  # interleaved so both see the same machine load
        for which in results:
            results[which].append(measure(args.db, which))
    best = {w: min(r["seconds"] for r in rs) for w, rs in results.items()}
    rss = {w: max(r["peak_rss_mb"] for r in rs) for w, rs in results.items()}
    print(f"rows: {args.rows:,}  cpus: {os.cpu_count()}")
    for which in results:
        print(f"{which:10s} best {best[which]:.2f} s  peak RSS {rss[which]:.0f} MB")
    print(f"ratio crane / SUMMARIZE: {best['crane'] / best['summarize']:.2f}x (goal <= 1.25x)")


if __name__ == "__main__":
    main()
