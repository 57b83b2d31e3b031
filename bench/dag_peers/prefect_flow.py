"""A 200-task no-op Prefect 3 flow, as a chain or a fan-out (t0 -> t1..tN-1).

Run by ``bench/bench_dag_peers.py`` in its own venv: ``python prefect_flow.py chain 200``.
Prints one JSON line of in-process marks so the server start-up can be told apart from
the task runs (the ephemeral server starts when the first flow run is created).
"""

import json
import sys
import time

T0 = time.perf_counter()
from prefect import flow, task  # noqa: E402

T_IMPORT = time.perf_counter()
MARKS: dict[str, float] = {}


@task
def noop(i: int) -> None:
    return None


@flow
def chain(n: int) -> None:
    MARKS["body"] = time.perf_counter()
    for i in range(n):
        noop(i)


@flow
def fan(n: int) -> None:
    MARKS["body"] = time.perf_counter()
    first = noop.submit(0)
    noop.map(range(1, n), wait_for=[first]).result()


def main() -> None:
    shape, n = sys.argv[1], int(sys.argv[2])
    began = time.perf_counter()
    state = (chain if shape == "chain" else fan)(n, return_state=True)
    ended = time.perf_counter()
    ok = state.is_completed()
    print(
        json.dumps(
            {
                "ok": ok,
                "import_s": round(T_IMPORT - T0, 3),
                "startup_s": round(MARKS["body"] - began, 3),
                "body_s": round(ended - MARKS["body"], 3),
            }
        )
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
