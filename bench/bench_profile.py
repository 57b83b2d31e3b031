"""Profile a 10M-row DuckDB table with crane vs DuckDB's own SUMMARIZE (issue 4 point 7).

crane's profile also produces exact top values, equi-width histograms, pattern
shares, duplicate rows and candidate keys, which SUMMARIZE does not. Goal: within
1.25x of SUMMARIZE, peak RSS <= 1 GB.

With ``--ydata`` it also runs ydata-profiling 4.18 (``minimal=True``, its own venv
from bench/setup_peers.sh) on a 1M-row sample of the same table — 10M rows do not
fit in memory — interleaved with crane on the same 1M rows and on the 10M, and
reports the per-row speed ratio (rows/s of crane over rows/s of ydata). ydata is
timed favourably: its statistics only (``get_description()``, no HTML), and its
import and the load into pandas are reported apart.

    .venv/bin/python bench/bench_profile.py [--rows 10000000] [--repeat 3] [--ydata]
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
from typing import Any

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

# the same 1M rows every time: the first million by a hash of the key, in key order
SAMPLE = """
CREATE OR REPLACE TABLE sales AS
SELECT * FROM (SELECT * FROM src.sales ORDER BY hash(id) LIMIT {rows}) ORDER BY id
"""

YDATA_PYTHON = Path("bench/.venvs/ydata/bin/python")


def _rows(con: Any) -> int:
    """Rows of the ``sales`` table in ``con``'s database, 0 when it does not exist yet."""
    have = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'sales'"
    ).fetchone()
    return int(con.execute("SELECT count(*) FROM sales").fetchone()[0]) if have[0] else 0


def build(db: Path, rows: int) -> None:
    import duckdb

    db.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(db)) as con:
        con.execute("SET enable_progress_bar = false")
        if _rows(con) != rows:
            con.execute(DEFECTS.format(rows=rows))


def build_sample(db: Path, sample: Path, rows: int) -> None:
    import duckdb

    with duckdb.connect(str(sample)) as con:
        con.execute("SET enable_progress_bar = false")
        if _rows(con) != rows:
            con.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
            con.execute(SAMPLE.format(rows=rows))


def child(db: Path, which: str) -> None:
    """Run one measurement in a fresh process so peak RSS is its own."""
    started = time.perf_counter()
    detail: dict[str, float] = {}
    if which == "summarize":
        import duckdb

        with duckdb.connect(str(db), read_only=True) as con:
            con.execute("SUMMARIZE sales").fetchall()
    elif which == "ydata":
        detail = _ydata(db)
    else:
        from crane.quality.profile import profile_url

        imported = time.perf_counter()
        profile = profile_url(f"duckdb:///{db}", "sales")
        assert profile.rows > 0 and profile.columns[0].histogram
        detail = {"profile": time.perf_counter() - imported}
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss_mb, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    result = {"which": which, "seconds": seconds, "cpu": cpu, "peak_rss_mb": rss_mb}
    print(json.dumps({**result, **detail}))


def _ydata(db: Path) -> dict[str, float]:
    """ydata-profiling's statistics of the table: import, load into pandas, describe."""
    started = time.perf_counter()
    import duckdb
    from ydata_profiling import ProfileReport

    imported = time.perf_counter()
    with duckdb.connect(str(db), read_only=True) as con:
        frame = con.execute("SELECT * FROM sales").df()
    loaded = time.perf_counter()
    description = ProfileReport(frame, minimal=True, progress_bar=False).get_description()
    assert len(description.variables) == len(frame.columns)
    return {
        "import": imported - started,
        "load": loaded - imported,
        "profile": time.perf_counter() - loaded,
    }


def _sample_db(db: Path) -> Path:
    return db.with_name(db.stem + "_sample.duckdb")


def measure(db: Path, which: str, python: Path | None = None, extra: tuple[str, ...] = ()) -> dict:
    """Run ``--child which`` in a fresh process; its last output line is its JSON result."""
    out = subprocess.run(
        [str(python or sys.executable), __file__, "--child", which, "--db", str(db), *extra],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, default=Path("bench/.data/profile.duckdb"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ydata", action="store_true", help="also ydata-profiling on 1M rows")
    parser.add_argument("--sample-rows", type=int, default=1_000_000)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child == "build":  # in a child: the parent's peak RSS is inherited by the runs
        build(args.db, args.rows)
        if args.ydata:
            build_sample(args.db, _sample_db(args.db), args.sample_rows)
        print("{}")
        return
    if args.child:
        child(args.db, args.child)
        return
    if args.ydata and not YDATA_PYTHON.exists():
        sys.exit("no ydata-profiling venv: run bash bench/setup_peers.sh")
    build_args = ["--rows", str(args.rows), "--sample-rows", str(args.sample_rows)]
    measure(args.db, "build", extra=(*build_args, *(["--ydata"] if args.ydata else [])))
    # (name, database, python): every run is its own process, interleaved per repetition
    runs: list[tuple[str, Path, Path | None]] = [
        ("summarize", args.db, None),
        ("crane", args.db, None),
    ]
    sample = _sample_db(args.db)
    if args.ydata:
        runs += [("ydata_sample", sample, YDATA_PYTHON), ("crane_sample", sample, None)]
    results: dict[str, list[dict]] = {name: [] for name, _, _ in runs}
    for _ in range(args.repeat):  # interleaved so all see the same machine load
        for name, db, python in runs:
            which = "ydata" if name == "ydata_sample" else name.removesuffix("_sample")
            results[name].append(measure(db, which, python))
    report(results, args.rows, args.sample_rows)


def report(results: dict[str, list[dict]], rows: int, sample_rows: int) -> None:
    best = {w: min(rs, key=lambda r: r["seconds"]) for w, rs in results.items()}
    rss = {w: max(r["peak_rss_mb"] for r in rs) for w, rs in results.items()}
    print(f"rows: {rows:,}  cpus: {os.cpu_count()}  repetitions: {len(results['crane'])}")
    for which, r in best.items():
        n = sample_rows if which.endswith("_sample") else rows
        parts = "  ".join(f"{k} {r[k]:.2f} s" for k in ("import", "load", "profile") if k in r)
        print(
            f"{which:13s} {n:>10,} rows  best {r['seconds']:7.2f} s  (CPU {r['cpu']:6.2f} s)"
            f"  peak RSS {rss[which]:5.0f} MB  {n / r['seconds']:>10,.0f} rows/s  {parts}"
        )
    crane, summarize = best["crane"], best["summarize"]
    print(
        f"ratio crane / SUMMARIZE: {crane['seconds'] / summarize['seconds']:.2f}x (goal <= 1.25x)"
        f"; in CPU seconds {crane['cpu'] / summarize['cpu']:.2f}x"
    )
    if "ydata_sample" not in best:
        return
    ydata = best["ydata_sample"]
    for label, key in (("whole process", "seconds"), ("statistics only", "profile")):
        ydata_speed = sample_rows / ydata[key]
        on_sample = sample_rows / best["crane_sample"][key] / ydata_speed
        on_full = rows / best["crane"][key] / ydata_speed
        print(
            f"per-row speed vs ydata-profiling minimal on {sample_rows:,} rows ({label}): "
            f"crane on the same rows {on_sample:.0f}x, crane on {rows:,} rows {on_full:.0f}x"
            " (goal >= 20x)"
        )


if __name__ == "__main__":
    main()
