"""One no-op Airflow 3 DAG of N @task calls, as a chain or a fan-out (t0 -> t1..tN-1).

The shape and size come from ``CRANE_BENCH_DAG`` (e.g. ``chain:50``) so that each
``airflow dags test`` parses exactly one DAG of the size being measured.
"""

import os
from datetime import datetime

from airflow.sdk import dag, task

SHAPE, _, SIZE = os.environ.get("CRANE_BENCH_DAG", "chain:10").partition(":")
N = int(SIZE)


@task
def noop() -> None:
    return None


@dag(
    dag_id=f"noop_{SHAPE}_{N}",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
)
def noop_dag() -> None:
    first = noop.override(task_id="t0")()
    prev = first
    for i in range(1, N):
        nxt = noop.override(task_id=f"t{i}")()
        (prev if SHAPE == "chain" else first) >> nxt
        prev = nxt


noop_dag()
