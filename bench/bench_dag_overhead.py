"""Per-task overhead of crane's local executor: chains and fan-outs of no-op tasks.

The overhead per task is the *slope* of wall time over the number of tasks (a
least-squares fit over several sizes), so the fixed cost of a run (history
row, log directory) does not flatter or hurt it. Floors printed beside it:

- a plain Python loop calling the same no-op function (what Python alone costs);
- one thread started and joined per call (what "a task on its own thread" costs).

crane is measured with and without the SQLite run history (WAL, one writer thread).
Cases are interleaved and repeated; medians are reported.

    .venv/bin/python bench/bench_dag_overhead.py            # sizes 1..500, 5 repetitions
    .venv/bin/python bench/bench_dag_overhead.py --quick    # 3 repetitions, up to 200
    .venv/bin/python bench/bench_dag_overhead.py --peers    # vs Prefect 3 and Airflow 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from crane.orchestrate.dag import Dag, DagSpec  # noqa: E402
from crane.orchestrate.executor import run_dag  # noqa: E402
from crane.orchestrate.history import HistoryStore  # noqa: E402


def noop() -> None:
    return None


def chain(n: int) -> DagSpec:
    dag = Dag(f"chain{n}", max_workers=8)
    for i in range(n):
        dag.add(f"t{i}", callable="__main__:noop", depends_on=[f"t{i - 1}"] if i else [])
    return dag.spec


def fan(n: int) -> DagSpec:
    dag = Dag(f"fan{n}", max_workers=8)
    dag.add("start", callable="__main__:noop")
    for i in range(n):
        dag.add(f"t{i}", callable="__main__:noop", depends_on=["start"])
    dag.add("end", callable="__main__:noop", depends_on=[f"t{i}" for i in range(n)])
    return dag.spec


def python_loop(n: int) -> float:
    began = time.perf_counter()
    for _ in range(n):
        noop()
    return time.perf_counter() - began


def thread_per_call(n: int) -> float:
    began = time.perf_counter()
    for _ in range(n):
        worker = threading.Thread(target=noop)
        worker.start()
        worker.join()
    return time.perf_counter() - began


def crane_run(spec: DagSpec, history: HistoryStore | None) -> float:
    began = time.perf_counter()
    result = run_dag(spec, history=history)
    elapsed = time.perf_counter() - began
    assert result.ok
    return elapsed


def whole_process(tmp: Path, n: int, reps: int) -> dict[str, float]:
    """``crane dag run`` from process start to exit, on a project with an n-task fan-out."""
    import subprocess

    root = tmp / "project"
    (root / "dags").mkdir(parents=True, exist_ok=True)
    (root / "crane.yml").write_text("name: bench\n")
    (root / "dags" / "_noop.py").write_text("def noop():\n    return None\n")
    tasks = "\n".join(
        f"  - {{name: t{i}, callable: '{root}/dags/_noop.py:noop'"
        + (", depends_on: [t0]}" if i else "}")
        for i in range(n)
    )
    (root / "dags" / "wide.yml").write_text(f"max_workers: 8\ntasks:\n{tasks}\n")
    crane = str(Path(sys.executable).parent / "crane")
    walls = []
    for _ in range(reps):
        began = time.perf_counter()
        done = subprocess.run(
            [crane, "dag", "run", "wide", "--json"], cwd=root, capture_output=True
        )
        walls.append(time.perf_counter() - began)
        assert done.returncode == 0, done.stderr
    began = time.perf_counter()
    subprocess.run([crane, "--help"], capture_output=True, check=True)
    return {
        "median_seconds": round(statistics.median(walls), 3),
        "crane --help seconds": round(time.perf_counter() - began, 3),
    }


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares seconds per task."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--peers", action="store_true", help="vs Prefect 3 / Airflow 3")
    args, rest = parser.parse_known_args()
    if args.peers:  # the peer comparison lives beside this file; extra flags pass through
        import subprocess

        peers = Path(__file__).resolve().parent / "bench_dag_peers.py"
        raise SystemExit(subprocess.call([sys.executable, str(peers), *rest]))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    sizes = [1, 10, 50, 100, 200] + ([] if args.quick else [500])
    reps = 3 if args.quick else 5
    tmp = Path(tempfile.mkdtemp(prefix="crane-bench-dag-"))
    history = HistoryStore.open(tmp / "history.sqlite")
    specs = {n: (chain(n), fan(n)) for n in sizes}
    cases: dict[str, Callable[[int], float]] = {
        "python loop": python_loop,
        "thread per call": thread_per_call,
        "crane chain, no history": lambda n: crane_run(specs[n][0], None),
        "crane chain, SQLite history": lambda n: crane_run(specs[n][0], history),
        "crane fan-out, SQLite history": lambda n: crane_run(specs[n][1], history),
    }
    crane_run(specs[sizes[-1]][0], history)  # warm up imports and the history file
    times: dict[str, dict[int, list[float]]] = {c: {n: [] for n in sizes} for c in cases}
    for rep in range(reps):
        for name, case in (
            list(cases.items())[rep % len(cases) :] + list(cases.items())[: rep % len(cases)]
        ):
            for n in sizes:
                times[name][n].append(case(n))
    history.close()
    report: dict[str, object] = {}
    for name in cases:
        medians = {n: statistics.median(v) for n, v in times[name].items()}
        report[name] = {
            "per_task_us": round(slope(list(medians.items())) * 1e6, 2),
            "median_seconds": {n: round(s, 6) for n, s in medians.items()},
        }
    report["crane dag run (whole process), 200 tasks"] = whole_process(tmp, 200, reps)
    print(json.dumps(report, indent=2))
    out = (
        Path(__file__).parent
        / "results"
        / f"dag_overhead-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    )
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"sizes": sizes, "reps": reps, "report": report}, indent=2))


if __name__ == "__main__":
    main()
