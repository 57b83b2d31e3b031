"""SCD Type 2 benchmark on DuckDB: crane's loader against hand-written SQL floors.

A 1,000,000-row customer dimension with 6 tracked columns:

* **initial load** — crane's ``load_dimension`` into an empty dimension vs a plain
  ``CREATE TABLE AS SELECT`` of the same rows (goal: ≤ 2×);
* **1% changed** — 10,000 customers change one tracked column: crane's loader vs the
  floor, a hand-written UPDATE (close the current row) + INSERT (new version) that
  knows the change set is clean (goal: ≤ 1.5×). crane's dimension stores a hash of the
  tracked columns (``ScdTable.row_hash``; ``crane_change_values``: the same load on a
  copy without it, comparing values, like ``floor_change``; ``floor_change_hash``: the
  hand-written pair on crane's table, comparing the hash). ``crane_change`` finds its
  statements in the SQL cache (crane.warehouse.scd.sql_cache; warmed once in setup, as by
  the previous day's load); ``crane_change_cold`` runs with the cache off, building and
  rendering them (importing sqlglot) in the timed process.

and the peers on the same 1% change (goals: crane >= 4x faster than ``dbt snapshot``
with dbt-duckdb, timestamp strategy; >= 8x faster than dlt's ``scd2`` merge strategy).

Every case is a separate process (crane and the floors: bench/scd2_crane.py; dlt:
bench/scd2_dlt.py; dbt: ``dbt snapshot``) timed whole (wall by the driver's clock; CPU and peak RSS
by ``/usr/bin/time -v``) on a fresh copy of a prepared DuckDB file, flushed to disk
first; each process also reports its load-only time (dbt: the snapshot node's own
execution time from run_results.json, so dbt's start-up shows separately). Cases run
interleaved, rotated per repetition, and every result is checked: current rows = N, and
exactly the changed 1% of keys have two versions.
The peers' initial loads (dbt snapshot / dlt scd2 of all N rows) build their templates
and are timed once, for information. Peers come from bench/setup_peers.sh
(bench/.venvs/dbt, bench/.venvs/dlt); a missing venv skips that peer.

    .venv/bin/python bench/bench_scd2.py              # 2 repetitions, 1M rows
    .venv/bin/python bench/bench_scd2.py --rows 200000 --reps 3
    .venv/bin/python bench/bench_scd2.py --no-peers   # crane and the floors only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scd2_crane import CHANGED_TABLE, CRANE_CASES, LOAD_TS, dimension

from crane.connectors.base import TableRef, connect
from crane.warehouse.scd import load_dimension

ROOT = Path(__file__).resolve().parent.parent


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


# ------------------------------------------------------------------------ driver

BENCH = ROOT / "bench"
DBT = BENCH / ".venvs" / "dbt" / "bin" / "dbt"
DLT_PY = BENCH / ".venvs" / "dlt" / "bin" / "python"


@dataclass
class Run:
    wall_s: float
    rss_mb: float
    load_s: float
    cpu_s: float  # user + system CPU of the whole process: steadier than wall on a busy machine


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """Run ``cmd`` under ``/usr/bin/time -v``: (wall s, peak RSS MB, user+system CPU s, stdout).

    Wall time is the parent's clock around the run (microseconds; /usr/bin/time prints
    hundredths, 7% of a 0.15 s case); it includes starting /usr/bin/time itself (~1 ms)."""

    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env, check=False
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    cpu = re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", proc.stderr)
    assert rss and len(cpu) == 2, proc.stderr[-2000:]
    return seconds, int(rss.group(1)) / 1024, sum(map(float, cpu)), proc.stdout


def last_json(stdout: str) -> dict[str, float]:
    return json.loads([ln for ln in stdout.splitlines() if ln.startswith("{")][-1])


def verify(db: Path, table: str, current: str, rows: int, changed: int, initial: bool) -> None:
    """Current rows = ``rows``; after a change load, exactly the changed keys have 2 versions."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        total, cur = con.execute(
            f"SELECT count(*), count(*) FILTER ({current}) FROM {table}"
        ).fetchone()
        want = rows if initial else rows + changed
        assert (total, cur) == (want, rows), (db, table, total, cur)
        if not initial:
            two = con.execute(
                f"SELECT count(*), count(*) FILTER (customer_id % 100 = 42) FROM"
                f" (SELECT customer_id FROM {table} GROUP BY 1 HAVING count(*) = 2)"
            ).fetchone()
            assert two == (changed, changed), (db, table, two)


def dbt_env(db: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SCD2_DUCKDB_PATH": str(db),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PROFILES_DIR": str(BENCH / "scd2_dbt"),
        "DBT_PROJECT_DIR": str(BENCH / "scd2_dbt"),
    }


def dbt_snapshot(run_dir: Path) -> Run:
    """One ``dbt snapshot``; load_s is dbt's own node execution time (start-up excluded)."""
    target = run_dir / "target"
    cmd = [str(DBT), "snapshot", "--target-path", str(target), "--log-path", str(run_dir)]
    wall, rss, cpu, _ = timed(cmd, dbt_env(run_dir / "dbt.duckdb"))
    results = json.loads((target / "run_results.json").read_text())
    node = sum(r["execution_time"] for r in results["results"])
    return Run(wall, rss, node, cpu)


def dlt_load(run_dir: Path, source: Path, table: str, full: bool = False) -> Run:
    cmd = [str(DLT_PY), str(BENCH / "scd2_dlt.py"), "--source", str(source)]
    cmd += ["--full-snapshot"] if full else []
    wall, rss, cpu, out = timed([*cmd, "--table", table, "--workdir", str(run_dir)])
    return Run(wall, rss, last_json(out)["load_s"], cpu)


def crane_run(name: str, db: Path) -> Run:
    """crane's cases use the run's SQL cache (warmed in ``prepare``, as by yesterday's load);
    ``*_cold`` runs without it, so it builds and renders every statement (imports sqlglot)."""
    cmd = [sys.executable, str(BENCH / "scd2_crane.py"), "--case", name, "--db", str(db)]
    env = {**os.environ, **({"CRANE_SQL_CACHE": ""} if name.endswith("_cold") else {})}
    wall, rss, cpu, out = timed(cmd, env)
    return Run(wall, rss, last_json(out)["load_s"], cpu)


def prepare(work: Path, rows: int, peers: list[str]) -> dict[str, Run]:
    """Template files: crane's (src, chg, dim_base), dbt's and dlt's after their initial load.

    Returns the peers' initial loads (timed once, for information)."""

    import duckdb

    base = work / "base.duckdb"
    con = connect(f"duckdb:///{base}")
    make_sources(con.con, rows)  # type: ignore[attr-defined]
    load_dimension(con, dimension("dim_base"), TableRef("src"), load_ts=LOAD_TS)
    plain = dimension("dim_plain", row_hash=None)
    load_dimension(con, plain, TableRef("src"), load_ts=LOAD_TS)
    con.con.execute("CHECKPOINT")  # type: ignore[attr-defined]
    con.close()
    warm = work / "warm.duckdb"  # one change load fills the SQL cache, as a previous day would
    shutil.copy(base, warm)
    crane_run("crane_change", warm)
    crane_run("crane_change_values", warm)
    warm.unlink()
    initial: dict[str, Run] = {}
    if "dbt_change" in peers:
        tpl = work / "run"  # built where the runs run: same paths, so dbt can partial-parse
        tpl.mkdir()
        with duckdb.connect(str(tpl / "dbt.duckdb")) as d:
            d.execute(f"ATTACH '{base}' AS b (READ_ONLY)")
            d.execute("CREATE TABLE main.customers AS SELECT * FROM b.src")
        initial["dbt_initial"] = dbt_snapshot(tpl)
        verify(tpl / "dbt.duckdb", DBT_TABLE, DBT_CURRENT, rows, 0, True)
        with duckdb.connect(str(tpl / "dbt.duckdb")) as d:  # day 2: 1% of customers changed
            d.execute(f"ATTACH '{base}' AS b (READ_ONLY)")
            d.execute(
                "UPDATE main.customers SET city = c.city, updated_at = c.updated_at"
                " FROM b.chg c WHERE customers.customer_id = c.customer_id"
            )
            d.execute("CHECKPOINT")
        tpl.rename(work / "dbt_tpl")
    if "dlt_change" in peers:
        tpl = work / "run"
        initial["dlt_initial"] = dlt_load(tpl, base, "src")
        verify(tpl / "warehouse.duckdb", DLT_TABLE, DLT_CURRENT, rows, 0, True)
        tpl.rename(work / "dlt_tpl")
    if "dlt_full" in peers:  # dlt's default scd2: the whole day-2 table, no merge key
        with duckdb.connect(str(base)) as d:
            d.execute("CREATE TABLE src_day2 AS SELECT * FROM src")
            d.execute(
                "UPDATE src_day2 SET city = c.city, updated_at = c.updated_at"
                " FROM chg c WHERE src_day2.customer_id = c.customer_id"
            )
        tpl = work / "run"
        initial["dlt_full_initial"] = dlt_load(tpl, base, "src", full=True)
        verify(tpl / "warehouse.duckdb", DLT_TABLE, DLT_CURRENT, rows, 0, True)
        tpl.rename(work / "dlt_full_tpl")
    return initial


DBT_TABLE, DBT_CURRENT = "main.customers_snapshot", "dbt_valid_to IS NULL"
DLT_TABLE, DLT_CURRENT = "dim.customers", "_dlt_valid_to IS NULL"


def one_case(name: str, work: Path, rows: int, changed: int) -> Run:
    """A fresh copy of the case's template, then the timed process, then the check.

    The copy is flushed to disk first (``os.sync``): else the case's first fsync (its commit)
    also writes back the just-copied file, ~12 ms per 40 MB here, which no real load pays."""

    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    if name.startswith("dbt"):
        shutil.copytree(work / "dbt_tpl", run_dir)
        os.sync()
        result = dbt_snapshot(run_dir)
        verify(run_dir / "dbt.duckdb", DBT_TABLE, DBT_CURRENT, rows, changed, False)
    elif name.startswith("dlt"):
        full = name == "dlt_full"
        shutil.copytree(work / ("dlt_full_tpl" if full else "dlt_tpl"), run_dir)
        os.sync()
        result = dlt_load(run_dir, work / "base.duckdb", "src_day2" if full else "chg", full)
        verify(run_dir / "warehouse.duckdb", DLT_TABLE, DLT_CURRENT, rows, changed, False)
    else:
        run_dir.mkdir()
        db = run_dir / "case.duckdb"
        shutil.copy(work / "base.duckdb", db)
        os.sync()
        result = crane_run(name, db)
        initial = name.endswith("initial")
        verify(
            db,
            "dim_new" if initial else CHANGED_TABLE.get(name, "dim_base"),
            "is_current" if not initial else "TRUE",
            rows,
            changed,
            initial,
        )
    return result


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    names = list(CRANE_CASES)
    if not args.no_peers:
        names += [
            n
            for n, exe in (("dbt_change", DBT), ("dlt_change", DLT_PY), ("dlt_full", DLT_PY))
            if exe.exists()
        ]
    (BENCH / ".data").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BENCH / ".data") as tmp:
        work = Path(tmp)
        os.environ["CRANE_SQL_CACHE"] = str(work / "sql_cache")  # this run's own SQL cache
        initial = prepare(work, args.rows, names)
        changed = args.rows // 100
        runs: dict[str, list[Run]] = {name: [] for name in names}
        for rep in range(args.reps):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                runs[name].append(one_case(name, work, args.rows, changed))
                print(f"rep {rep + 1} {name}: {runs[name][-1]}", flush=True)
        report(runs, initial, args)


GOALS = (  # label, numerator, denominator, goal text
    ("initial: crane / CTAS", "crane_initial", "ctas_initial", "<= 2"),
    ("1% change: crane / UPDATE+INSERT", "crane_change", "floor_change", "<= 1.5"),
    ("  crane, no SQL cache / UPDATE+INSERT", "crane_change_cold", "floor_change", "(cold)"),
    ("  crane / UPDATE+INSERT on the hash", "crane_change", "floor_change_hash", "(same table)"),
    (
        "  crane, values compared / UPDATE+INSERT",
        "crane_change_values",
        "floor_change",
        "(no hash)",
    ),
    ("1% change: dbt snapshot / crane", "dbt_change", "crane_change", ">= 4"),
    ("1% change: dlt scd2 / crane", "dlt_change", "crane_change", ">= 8"),
    ("  dlt scd2 / crane, values compared", "dlt_change", "crane_change_values", "(no hash)"),
    ("  dlt scd2 full snapshot / crane", "dlt_full", "crane_change", "(dlt default usage)"),
)


def report(runs: dict[str, list[Run]], initial: dict[str, Run], args: argparse.Namespace) -> None:

    med = {
        name: Run(*(statistics.median(getattr(r, f) for r in rs) for f in Run.__annotations__))
        for name, rs in runs.items()
    }
    print(
        f"\nrows={args.rows:,} reps={args.reps} load_avg={os.getloadavg()[0]:.1f}"
        " (medians; whole process: wall by perf_counter, CPU and RSS by /usr/bin/time -v;"
        " load = the load only)"
    )
    head = f"  {'case':18s} {'wall s':>8s} {'load s':>8s} {'CPU s':>8s} {'RSS MB':>8s}   wall runs"
    print(head)
    for name, m in med.items():
        walls = ", ".join(f"{r.wall_s:.2f}" for r in runs[name])
        print(
            f"  {name:18s} {m.wall_s:8.2f} {m.load_s:8.2f} {m.cpu_s:8.2f} {m.rss_mb:8.0f}   {walls}"
        )
    for name, r in initial.items():
        print(
            f"  {name:18s} {r.wall_s:8.2f} {r.load_s:8.2f} {r.cpu_s:8.2f} {r.rss_mb:8.0f}"
            "   (once, setup)"
        )
    if "dbt_change" in med:
        m = med["dbt_change"]
        print(f"  dbt start-up and overhead outside the snapshot node: {m.wall_s - m.load_s:.2f} s")
    for label, num, den, goal in GOALS:
        if num in med and den in med:
            pairs = list(zip(runs[num], runs[den], strict=True))
            within = statistics.median(a.wall_s / b.wall_s for a, b in pairs)
            print(
                f"  {label:38s} whole process {med[num].wall_s / med[den].wall_s:6.2f}x"
                f" (within-rep {within:5.2f}x),"
                f" load only {med[num].load_s / med[den].load_s:6.2f}x,"
                f" CPU {med[num].cpu_s / med[den].cpu_s:5.2f}x   (goal {goal})"
            )


if __name__ == "__main__":
    main()
