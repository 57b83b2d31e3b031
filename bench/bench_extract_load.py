"""Extract–load benchmark: crane against the psql COPY floor and dlt, in one interleaved run.

Every measurement is a whole process run under `/usr/bin/time -v` (wall time, CPU time, peak
RSS). Cases run interleaved — each repetition runs every case once, in a rotated order — so
the noise of a shared machine spreads over all of them; the summary reports medians and the
ratios the issue sets as goals, both as a ratio of medians and as the median of the ratios
measured within each repetition. Every run's output is checked (row count and sum(amount)
equal to the source's) before its time counts.

Run it with crane's own interpreter (it needs duckdb to check outputs):

    .venv/bin/python bench/bench_extract_load.py            # what `make bench` runs
    .venv/bin/python bench/bench_extract_load.py --quick    # one repetition, 5M tables only

The tables come from bench/make_orders.py and the peers' venvs from bench/setup_peers.sh
(bench/run_all.sh calls both).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CRANE_PY = ROOT / ".venv" / "bin" / "python"
CRANE = ROOT / ".venv" / "bin" / "crane"
DLT_PY = BENCH / ".venvs" / "dlt" / "bin" / "python"
DATA = BENCH / ".data"
RESULTS = BENCH / "results"
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-X", "-q"]
MYSQL = ["mysql", "--protocol=tcp", "-h", "127.0.0.1", "-uroot"]
CHANGED_ROWS_PREDICATE = "id % 100 = 42"  # 1% of the rows, the same ones every repetition


# ---------------------------------------------------------------- measuring one process


@dataclass
class Sample:
    case: str
    rep: int
    wall_s: float
    cpu_s: float
    rss_mb: float
    load_avg: float
    ok: bool
    note: str = ""
    run_record: dict[str, object] = field(default_factory=dict)  # crane's own _crane.runs row


def timed(argv: list[str], cwd: Path, log: Path) -> tuple[float, float, float, int]:
    """Run argv under GNU time; return (wall s, user+sys s, peak RSS MB, exit code)."""
    tfile = log.with_suffix(".time")
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(
            ["/usr/bin/time", "-v", "-o", str(tfile), *argv],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    wall = time.perf_counter() - started
    text = tfile.read_text()

    def field_(name: str) -> float:
        m = re.search(rf"{re.escape(name)}: ([\d.]+)", text)
        return float(m.group(1)) if m else float("nan")

    cpu = field_("User time (seconds)") + field_("System time (seconds)")
    rss = field_("Maximum resident set size (kbytes)") / 1024
    return wall, cpu, rss, proc.returncode


# ---------------------------------------------------------------- sources and checks


def psql(sql: str) -> str:
    out = subprocess.run([*PSQL, "-tA", "-c", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def mysql(sql: str) -> str:
    out = subprocess.run([*MYSQL, "-N", "-e", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


class Truth:
    """What each source table holds (count, sum(amount)); forgotten when a case changes it."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[int, str]] = {}

    def get(self, source: str, table: str) -> tuple[int, str]:
        key = (source, table)
        if key not in self._cache:
            sql = f"select count(*), sum(amount) from bench.{table}"
            row = psql(sql) if source == "pg" else mysql(sql)
            n, total = re.split(r"[|\t]", row)
            self._cache[key] = (int(n), f"{float(total):.2f}")
        return self._cache[key]

    def forget(self, source: str, table: str) -> None:
        self._cache.pop((source, table), None)


def crane_record(path: Path) -> dict[str, object]:
    """The last run crane recorded in the warehouse: its in-process seconds and phases."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(
            "select seconds, phases from _crane.runs order by started_at desc limit 1"
        ).fetchone()
    except duckdb.Error:
        return {}
    finally:
        con.close()
    return {"seconds": row[0], "phases": json.loads(row[1])} if row else {}


def check_duckdb(path: Path, table: str, expected: tuple[int, str]) -> str:
    """'' when the DuckDB table holds exactly the source's rows, else what differs."""
    import duckdb

    if not path.exists():
        return f"no DuckDB file at {path}"
    con = duckdb.connect(str(path), read_only=True)
    try:
        n, total = con.execute(f"select count(*), sum(amount) from {table}").fetchone()
    except duckdb.Error as exc:
        return f"cannot read {table}: {exc}"
    finally:
        con.close()
    got = (int(n), f"{float(total):.2f}")
    return "" if got == expected else f"{table}: got {got}, source has {expected}"


# ---------------------------------------------------------------- the cases


@dataclass
class Case:
    """One measured command. `argv` gets a fresh empty work directory."""

    name: str
    label: str
    source: str  # pg | my
    table: str  # source table in schema/database `bench`
    argv: Callable[[Path], list[str]]
    out_table: str | None = None  # table to check in <workdir>/warehouse.duckdb
    prepare: Callable[[Path, int], None] | None = None  # untimed, before the run
    changes_source: bool = False
    reps: int | None = None  # fewer repetitions for a very slow case
    samples: list[Sample] = field(default_factory=list)


def floor_pg(table: str) -> Callable[[Path], list[str]]:
    copy = f"\\copy (select * from bench.{table}) to /dev/null with (format binary)"
    return lambda _w: [*PSQL, "-c", copy]


def floor_my(table: str) -> Callable[[Path], list[str]]:
    # --quick streams rows instead of buffering the result; output discarded by a shell
    query = f"select * from bench.{table}"
    cmd = " ".join([*MYSQL, "--quick", "-N", "-e", f"'{query}'"]) + " > /dev/null"
    return lambda _w: ["bash", "-c", cmd]


def scanner(source: str, table: str) -> Callable[[Path], list[str]]:
    script = str(BENCH / "duckdb_scanner.py")
    return lambda w: [
        str(CRANE_PY), script, "--source", source, "--table", table,
        "--out", str(w / "warehouse.duckdb"),
    ]  # fmt: skip


def dlt(source: str, table: str, config: str) -> Callable[[Path], list[str]]:
    script = str(BENCH / "dlt_load.py")
    return lambda w: [
        str(DLT_PY), script, "--source", source, "--table", table,
        "--config", config, "--workdir", str(w),
    ]  # fmt: skip


CRANE_SOURCES = {
    "pg": "postgresql://postgres@127.0.0.1:5432/test",
    "my": "mysql://root@127.0.0.1:3306/bench",
}
CRANE_PROJECT = """\
# written by bench/bench_extract_load.py
name: bench
warehouse: duckdb:///{warehouse}
connections:
  source:
    url: {url}
pipelines:
  orders_full:
    source: {{table: {table}, schema: bench}}
    target: {{table: orders}}
    extract: {{strategy: full}}
    load: {{strategy: replace}}
  orders_incremental:
    source: {{table: {table}, schema: bench}}
    target: {{table: orders}}
    extract: {{strategy: incremental, cursor: updated_at}}
    load: {{strategy: merge, primary_key: [id]}}
"""


def crane(source: str, table: str, mode: str) -> Callable[[Path], list[str]]:
    """`crane run` in a fresh project whose warehouse is <workdir>/warehouse.duckdb."""

    def argv(workdir: Path) -> list[str]:
        project = CRANE_PROJECT.format(
            warehouse=workdir / "warehouse.duckdb", url=CRANE_SOURCES[source], table=table
        )
        (workdir / "crane.yml").write_text(project)
        return [str(CRANE), "run", f"orders_{mode}", "--project", str(workdir)]

    return argv


def change_one_percent(
    truth: Truth, table: str, record: bool = True
) -> Callable[[Path, int], None]:
    """Before an incremental run: a first (full) run of the incremental pipeline, then 1% of
    the source rows get a new updated_at and amount. The first run is recorded too (unless
    ``record`` is false), and the warehouse's watermark goes to <workdir>/watermark.txt for
    the hand-written floor (incremental_floor.py)."""

    def prepare(workdir: Path, rep: int) -> None:
        wall, cpu, rss, rc = timed(
            crane("pg", table, "incremental")(workdir), workdir, workdir / "first.log"
        )
        if record:
            INITIAL.samples.append(
                Sample("pg.crane.incr_initial", rep, wall, cpu, rss, os.getloadavg()[0], rc == 0)
            )
        (workdir / "watermark.txt").write_text(max_updated_at(workdir / "warehouse.duckdb"))
        psql(
            f"update bench.{table} set updated_at = now(), amount = amount + 1"
            f" where {CHANGED_ROWS_PREDICATE}"
        )
        psql(f"vacuum bench.{table}")
        truth.forget("pg", table)

    return prepare


def max_updated_at(path: Path) -> str:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return str(con.execute(f"select max(updated_at) from {CRANE_TABLE}").fetchone()[0])
    finally:
        con.close()


def incremental_floor(table: str) -> Callable[[Path], list[str]]:
    script = str(BENCH / "incremental_floor.py")
    return lambda w: [
        str(CRANE_PY), script, "--warehouse", str(w / "warehouse.duckdb"), "--table", table,
        "--watermark", (w / "watermark.txt").read_text(),
    ]  # fmt: skip


INITIAL = Case("pg.crane.incr_initial", "crane incremental pipeline, first run", "pg",
               "orders", lambda _w: [])  # fmt: skip


def build_cases(args: argparse.Namespace, truth: Truth) -> list[Case]:
    t = args.table
    cases = [
        Case("pg.floor", "psql \\copy binary → /dev/null (floor)", "pg", t, floor_pg(t)),
        Case("pg.scanner", "DuckDB postgres scanner CTAS (reference)", "pg", t,
             scanner("pg", t), "main.orders"),
        Case("pg.crane.full", "crane full load", "pg", t, crane("pg", t, "full"), CRANE_TABLE),
        Case("pg.dlt.fast", "dlt pyarrow+parquet (fastest)", "pg", t, dlt("pg", t, "fast"),
             DLT_TABLE),
        Case("pg.crane.incr", "crane incremental, 1% changed", "pg", t,
             crane("pg", t, "incremental"), CRANE_TABLE,
             prepare=change_one_percent(truth, t), changes_source=True),
        Case("pg.floor.incr", "hand-written window + DELETE/INSERT (floor)", "pg", t,
             incremental_floor(t), CRANE_TABLE,
             prepare=change_one_percent(truth, t, record=False), changes_source=True),
    ]  # fmt: skip
    if not args.no_mariadb:
        cases += [
            Case("my.floor", "mysql --quick → /dev/null (floor)", "my", t, floor_my(t)),
            Case("my.scanner", "DuckDB mysql scanner CTAS (reference)", "my", t,
                 scanner("my", t), "main.orders", reps=1),
            Case("my.crane.full", "crane full load", "my", t, crane("my", t, "full"),
                 CRANE_TABLE),
            Case("my.dlt.fast", "dlt pyarrow+parquet (fastest)", "my", t, dlt("my", t, "fast"),
                 DLT_TABLE),
        ]  # fmt: skip
    if args.big:
        b = args.big_table
        cases += [
            Case("pg10m.floor", "psql \\copy binary → /dev/null (floor)", "pg", b,
                 floor_pg(b)),
            Case("pg10m.crane.full", "crane full load", "pg", b, crane("pg", b, "full"),
                 CRANE_TABLE),
        ]  # fmt: skip
    if args.small:
        s = args.small_table
        cases += [
            Case("pg100k.floor", "psql \\copy binary → /dev/null (floor)", "pg", s,
                 floor_pg(s)),
            Case("pg100k.crane.full", "crane full load", "pg", s, crane("pg", s, "full"),
                 CRANE_TABLE),
            Case("pg100k.dlt.fast", "dlt pyarrow+parquet (fastest)", "pg", s,
                 dlt("pg", s, "fast"), DLT_TABLE),
            Case("pg100k.dlt.default", "dlt default (sqlalchemy backend)", "pg", s,
                 dlt("pg", s, "default"), DLT_TABLE),
        ]  # fmt: skip
    if args.only:
        cases = [c for c in cases if re.search(args.only, c.name)]
    return cases


CRANE_TABLE = "main.orders"
DLT_TABLE = "orders_data.{table}"  # dlt names the table after the source table


# ---------------------------------------------------------------- running


def run_case(case: Case, rep: int, truth: Truth, keep: bool) -> Sample:
    workdir = DATA / "runs" / f"{case.name}-{rep}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    if case.prepare:
        case.prepare(workdir, rep)
    load = os.getloadavg()[0]
    wall, cpu, rss, rc = timed(case.argv(workdir), workdir, workdir / "run.log")
    note = "" if rc == 0 else f"exit {rc}: " + tail(workdir / "run.log")
    if rc == 0 and case.out_table:
        note = check_duckdb(
            workdir / "warehouse.duckdb",
            case.out_table.format(table=case.table),
            truth.get(case.source, case.table),
        )
    sample = Sample(case.name, rep, wall, cpu, rss, load, not note, note)
    if sample.ok and ".crane." in case.name:
        sample.run_record = crane_record(workdir / "warehouse.duckdb")
    if sample.ok and not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return sample


def tail(log: Path, lines: int = 3) -> str:
    text = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return " | ".join(text[-lines:])


def run_all(cases: list[Case], reps: int, truth: Truth, keep: bool) -> None:
    for rep in range(reps):
        order = cases[rep % len(cases) :] + cases[: rep % len(cases)]
        for case in order:
            if case.reps is not None and rep >= case.reps:
                continue
            s = run_case(case, rep, truth, keep)
            case.samples.append(s)
            status = "ok" if s.ok else f"FAILED {s.note}"
            print(
                f"  rep {rep + 1}/{reps}  {case.name:<20} {s.wall_s:8.2f} s  "
                f"{s.rss_mb:7.0f} MB  load {s.load_avg:4.1f}  {status}",
                flush=True,
            )


# ---------------------------------------------------------------- summary


def med(case: Case | None, attr: str) -> float | None:
    if case is None:
        return None
    values = [getattr(s, attr) for s in case.samples if s.ok]
    return statistics.median(values) if values else None


def med_run(case: Case | None, phase: str | None = None) -> float | None:
    """Median of crane's own recorded seconds (whole run, or one phase) over ok samples."""
    if case is None:
        return None
    values: list[float] = []
    for s in case.samples:
        rec = s.run_record
        value = rec.get("seconds") if phase is None else rec.get("phases", {}).get(phase)  # type: ignore[union-attr]
        if s.ok and isinstance(value, int | float):
            values.append(float(value))
    return statistics.median(values) if values else None


def per_rep_ratio(num: Case | None, den: Case | None) -> float | None:
    """Median over repetitions of num/den measured in the same repetition."""
    if num is None or den is None:
        return None
    d = {s.rep: s.wall_s for s in den.samples if s.ok}
    ratios = [s.wall_s / d[s.rep] for s in num.samples if s.ok and s.rep in d]
    return statistics.median(ratios) if ratios else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def goals(by: dict[str, Case]) -> list[dict[str, object]]:
    g = by.get

    def wall_goal(name: str, num: str, den: str, op: str, limit: float) -> dict[str, object]:
        r = ratio(med(g(num), "wall_s"), med(g(den), "wall_s"))
        met = None if r is None else (r <= limit if op == "<=" else r >= limit)
        return {
            "goal": name,
            "ratio_of_medians": r,
            "median_of_rep_ratios": per_rep_ratio(g(num), g(den)),
            "limit": f"{op} {limit}",
            "met": met,
        }

    rss5, rss10 = med(g("pg.crane.full"), "rss_mb"), med(g("pg10m.crane.full"), "rss_mb")
    growth = ratio(rss10, rss5)
    inrun = ratio(med_run(g("pg.crane.incr")), med_run(g("pg.crane.full")))
    return [
        wall_goal("PG full: crane / psql COPY floor", "pg.crane.full", "pg.floor", "<=", 1.3),
        wall_goal("PG full: dlt fastest / crane", "pg.dlt.fast", "pg.crane.full", ">=", 6.0),
        wall_goal("PG incremental 1%: crane incr / crane full", "pg.crane.incr",
                  "pg.crane.full", "<=", 0.05),
        {"goal": "  same, crane's in-process seconds", "ratio_of_medians": inrun,
         "limit": "<= 0.05", "met": None if inrun is None else inrun <= 0.05},
        wall_goal("  the floor: hand-written incr / crane full", "pg.floor.incr",
                  "pg.crane.full", "<=", 0.05),
        {"goal": "  crane incr / hand-written incr", "limit": "(info)", "met": None,
         "ratio_of_medians": ratio(med(g("pg.crane.incr"), "wall_s"),
                                   med(g("pg.floor.incr"), "wall_s")),
         "median_of_rep_ratios": per_rep_ratio(g("pg.crane.incr"), g("pg.floor.incr"))},
        {"goal": "crane peak RSS at 5M (MB)", "ratio_of_medians": rss5, "limit": "<= 600",
         "met": None if rss5 is None else rss5 <= 600},
        {"goal": "crane peak RSS 10M / 5M", "ratio_of_medians": growth, "limit": "<= 1.10",
         "met": None if growth is None else growth <= 1.10},
        wall_goal("MariaDB full: crane / mysql floor", "my.crane.full", "my.floor", "<=", 1.3),
        wall_goal("MariaDB full: dlt fastest / crane", "my.dlt.fast", "my.crane.full", ">=", 6.0),
    ]  # fmt: skip


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def print_summary(cases: list[Case], goal_rows: list[dict[str, object]]) -> None:
    print("\ncase                  what                                        runs"
          "  wall med (s)  min (s)  CPU med (s)  RSS med (MB)  in-run (s)")  # fmt: skip
    for c in cases:
        ok = [s for s in c.samples if s.ok]
        mn = min((s.wall_s for s in ok), default=None)
        print(
            f"{c.name:<21} {c.label:<43} {len(ok)}/{len(c.samples)}"
            f"  {fmt(med(c, 'wall_s')):>12}  {fmt(mn):>7}  {fmt(med(c, 'cpu_s')):>11}"
            f"  {fmt(med(c, 'rss_mb'), '.0f'):>12}  {fmt(med_run(c)):>10}"
        )
        phases = sorted({p for s in ok for p in s.run_record.get("phases", {})})  # type: ignore[union-attr]
        if phases:
            text = ", ".join(f"{p} {fmt(med_run(c, p))}" for p in phases)
            print(f"{'':<21}   crane phases (median s): {text}")
    print("\ngoal                                         ratio of medians  median of "
          "per-rep ratios  limit      met")  # fmt: skip
    for row in goal_rows:
        met = {True: "yes", False: "NO", None: "—"}[row["met"]]  # type: ignore[index]
        print(
            f"{row['goal']:<44} {fmt(row['ratio_of_medians'], '.3f'):>16}"  # type: ignore[arg-type]
            f"  {fmt(row.get('median_of_rep_ratios'), '.3f'):>24}"  # type: ignore[arg-type]
            f"  {row['limit']:<9}  {met}"
        )


def machine() -> dict[str, object]:
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                .splitlines() if ln.startswith("model name")), platform.processor())  # fmt: skip
    freeze = DLT_PY.parent.parent / ".installed"
    pins = freeze.read_text().splitlines() if freeze.exists() else []

    def run(cmd: list[str]) -> str:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()

    import duckdb

    return {
        "nproc": os.cpu_count(),
        "ram_gb": round(int(mem) / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "postgres": psql("show server_version"),
        "mariadb": mysql("select version()"),
        "dlt_venv": [p for p in pins if re.match(r"(?i)(dlt|duckdb|pyarrow|sqlalchemy)==", p)],
        "crane_commit": run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        # a snapshot of crane's sources put first on PYTHONPATH overrides the work tree
        "pythonpath": os.environ.get("PYTHONPATH", ""),
        "crane_snapshot": os.environ.get("CRANE_SNAPSHOT", ""),
        # the benchmark runs the work tree: say whether crane's sources differed from HEAD
        "crane_src_uncommitted_files": len(
            run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"]).splitlines()
        ),
    }


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 repetition, 5M tables only")
    ap.add_argument("--table", default="orders")
    ap.add_argument("--no-mariadb", action="store_true")
    ap.add_argument("--big", action=argparse.BooleanOptionalAction, default=True,
                    help="also crane at 10M rows (RSS growth)")  # fmt: skip
    ap.add_argument("--big-table", default="orders_10m")
    ap.add_argument("--small", action=argparse.BooleanOptionalAction, default=True,
                    help="also dlt's default config, at 100k rows")  # fmt: skip
    ap.add_argument("--small-table", default="orders_100k")
    ap.add_argument("--only", help="regex on case names (development)")
    ap.add_argument("--keep", action="store_true", help="keep every work directory")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.big, args.small = 1, False, False

    truth = Truth()
    cases = build_cases(args, truth)
    print(f"extract_load: {len(cases)} cases x {args.reps} repetitions, interleaved", flush=True)
    started, meta = time.time(), machine()  # the commit and sources as they were at the start
    run_all(cases, args.reps, truth, args.keep)
    if INITIAL.samples:  # filled by pg.crane.incr's preparation, never run on its own
        cases.insert(0, INITIAL)
    goal_rows = goals({c.name: c for c in cases})
    print_summary(cases, goal_rows)

    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    out = RESULTS / f"extract_load-{stamp}.json"
    out.write_text(json.dumps({
        "started_utc": stamp, "duration_s": round(time.time() - started, 1),
        "command": " ".join(["bench/bench_extract_load.py", *argv]), "reps": args.reps,
        "machine": meta, "goals": goal_rows,
        "cases": [{"name": c.name, "label": c.label, "source_table": f"bench.{c.table}",
                   "samples": [s.__dict__ for s in c.samples]} for c in cases],
    }, indent=2))  # fmt: skip
    print(f"\nextract_load: results in {out.relative_to(ROOT)}")
    if any(not s.ok for c in cases for s in c.samples):
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
