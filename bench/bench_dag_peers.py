"""Issue 5, performance: crane's DAG overhead against Prefect 3 and Airflow 3, in one run.

Whole process (start to exit) wall time and peak RSS (``/usr/bin/time -v``; the largest
single process of the tree, not a sum) of an N-task no-op DAG, as a chain and as a fan-out
(t0 -> t1..tN-1), interleaved repetition by repetition so that the shared machine's load
hits every tool alike:

- crane: ``crane dag run`` of a YAML DAG of ``callable:`` tasks (a module function);
- Prefect 3.9: a flow of N ``@task`` calls, ephemeral local server in a temp PREFECT_HOME
  (server start-up is reported apart: the time from calling the flow to its body starting);
- Airflow 3.3: ``airflow dags test`` of N ``@task`` calls (temp AIRFLOW_HOME; ``airflow db
  migrate`` once, outside the timing). Airflow is slow per task, so it runs at the sizes of
  ``--airflow-sizes`` and its per-task cost is the slope between them.

The peers live in the venvs built by ``scripts/setup_peers_orchestrators.sh``.
Usage: ``.venv/bin/python bench/bench_dag_peers.py [--reps 2] [--airflow-sizes 50,200]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE / "dag_peers"
VENVS = HERE / ".venvs"
SHAPES = ("chain", "fan")


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd`` under ``/usr/bin/time -v``: (wall seconds, peak RSS MB, stdout+stderr)."""
    report = cwd / "_time.txt"
    began = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", "-o", str(report), *cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - began
    out = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({done.returncode}):\n{out[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read_text())
    return wall, int(rss.group(1)) / 1024 if rss else float("nan"), out


def crane_project(root: Path, n: int) -> None:
    """A crane project with ``chain`` and ``fan`` DAGs of n Python no-op tasks."""
    (root / "dags").mkdir(parents=True, exist_ok=True)
    (root / "crane.yml").write_text("name: bench\n")
    (root / "dags" / "_noop.py").write_text("def noop():\n    return None\n")
    target = f"{root}/dags/_noop.py:noop"
    for shape in SHAPES:
        lines = []
        for i in range(n):
            dep = "" if i == 0 else f", depends_on: [t{i - 1 if shape == 'chain' else 0}]"
            lines.append(f"  - {{name: t{i}, callable: '{target}'{dep}}}")
        body = "\n".join(lines)
        (root / "dags" / f"{shape}.yml").write_text(f"max_workers: 8\ntasks:\n{body}\n")


def run_crane(root: Path, shape: str, n: int) -> dict[str, float]:
    crane = str(Path(sys.executable).parent / "crane")
    wall, rss, out = timed([crane, "dag", "run", shape, "--json"], root, dict(os.environ))
    run = json.loads(out[out.find("{") :])
    assert run["state"] == "success", out[-2000:]
    assert sum(t["state"] == "success" for t in run["tasks"]) == n, "not every task ran"
    return {"wall": wall, "rss": rss}


def run_prefect(home: Path, shape: str, n: int) -> dict[str, float]:
    env = dict(os.environ, PREFECT_HOME=str(home))
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    env.pop("PREFECT_API_URL", None)
    python = str(VENVS / "prefect" / "bin" / "python")
    cmd = [python, str(PEERS / "prefect_flow.py"), shape, str(n)]
    wall, rss, out = timed(cmd, home, env)
    marks = json.loads(next(x for x in out.splitlines() if x.startswith('{"ok"')))
    assert marks["ok"], out[-2000:]
    return {"wall": wall, "rss": rss, "startup": marks["startup_s"], "body": marks["body_s"]}


def airflow_env(home: Path) -> dict[str, str]:
    env = dict(os.environ, AIRFLOW_HOME=str(home))
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(PEERS / "airflow_dags")
    return env


def run_airflow(home: Path, shape: str, n: int) -> dict[str, float]:
    env = airflow_env(home) | {"CRANE_BENCH_DAG": f"{shape}:{n}"}
    cmd = [str(VENVS / "airflow" / "bin" / "airflow"), "dags", "test", f"noop_{shape}_{n}"]
    wall, rss, out = timed(cmd, home, env)
    finished = re.search(r"DagRun Finished: .*?run_duration=([\d.]+), state=(\w+)", out)
    assert finished and finished.group(2) == "success", out[-3000:]
    assert len(re.findall(r"\[DAG TEST\] end task", out)) == n, "not every task ran"
    return {"wall": wall, "rss": rss, "run": float(finished.group(1))}


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares seconds per task (two sizes: the plain difference quotient)."""
    mx = statistics.fmean(n for n, _ in points)
    my = statistics.fmean(t for _, t in points)
    num = sum((n - mx) * (t - my) for n, t in points)
    return num / sum((n - mx) ** 2 for n, _ in points)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--airflow-sizes", default="50,200")
    parser.add_argument("--skip", default="", help="comma list of crane,prefect,airflow")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    af_sizes = [int(x) for x in args.airflow_sizes.split(",")]
    samples: dict[str, list[dict[str, float]]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="crane_peers_") as tmp_s:
        tmp = Path(tmp_s)
        crane_project(tmp / "crane", args.n)
        af_home = tmp / "airflow"
        af_home.mkdir()
        if "airflow" not in skip:
            airflow = str(VENVS / "airflow" / "bin" / "airflow")
            subprocess.run(
                [airflow, "db", "migrate"], env=airflow_env(af_home), check=True,
                capture_output=True,
            )  # fmt: skip
        for rep in range(args.reps):
            for shape in SHAPES:
                if "crane" not in skip:
                    samples[f"crane {shape} {args.n}"].append(
                        run_crane(tmp / "crane", shape, args.n)
                    )
                if "prefect" not in skip:
                    home = tmp / f"prefect_{rep}_{shape}"  # fresh: no state carried over
                    home.mkdir()
                    samples[f"prefect {shape} {args.n}"].append(run_prefect(home, shape, args.n))
                for n in [] if "airflow" in skip else af_sizes:
                    samples[f"airflow {shape} {n}"].append(run_airflow(af_home, shape, n))
                print(f"rep {rep} {shape} done", file=sys.stderr, flush=True)
    report(samples, args.n, af_sizes)


def report(samples: dict[str, list[dict[str, float]]], n: int, af_sizes: list[int]) -> None:
    print("| case | runs | wall median (s) | walls (s) | peak RSS (MB) | split (median s) |")
    print("|---|---|---|---|---|---|")
    for case, runs in samples.items():
        walls = [r["wall"] for r in runs]
        split = {
            k: statistics.median(r[k] for r in runs) for k in runs[0] if k not in ("wall", "rss")
        }
        print(
            f"| {case} | {len(runs)} | {statistics.median(walls):.2f} | "
            + " / ".join(f"{w:.2f}" for w in walls)
            + f" | {max(r['rss'] for r in runs):.0f} | "
            + ", ".join(f"{k} {v:.2f}" for k, v in split.items())
            + " |"
        )
    for shape in SHAPES:
        pre = samples.get(f"prefect {shape} {n}")
        if pre:
            body = statistics.median(r["body"] for r in pre)
            print(f"prefect {shape}: {1000 * body / n:.1f} ms/task (flow body / {n})")
        pts = [(m, r["wall"]) for m in af_sizes for r in samples.get(f"airflow {shape} {m}", [])]
        if len({m for m, _ in pts}) > 1:
            print(f"airflow {shape}: {1000 * slope(pts):.0f} ms/task (slope of wall over N)")


if __name__ == "__main__":
    main()
