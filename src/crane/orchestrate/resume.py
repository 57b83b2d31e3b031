"""Resuming a run (``crane dag run NAME --from TASK``): what is kept, what runs again.

The task named, everything downstream of it, and every task that did not end in
success or skipped run again (and what is downstream of those); the others keep
their state and output from the resumed run, so downstream tasks see the same inputs.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crane.errors import CraneError

if TYPE_CHECKING:
    from crane.orchestrate.dag import DagSpec
    from crane.orchestrate.history import HistoryStore


def run_to_resume(
    spec: DagSpec, history: HistoryStore | None, run_id: str | None
) -> dict[str, Any]:
    if history is None:
        raise CraneError("resuming a run (--from) needs the run history")
    old = history.run(run_id) if run_id else history.latest_run(spec.name)
    if old is None or old["dag"] != spec.name:
        raise CraneError(f"no run of DAG {spec.name} to resume", run_id=run_id)
    return old


def reusable(spec: DagSpec, old: dict[str, Any], from_task: str) -> dict[str, dict[str, Any]]:
    from crane.orchestrate.history import final_states

    states = final_states(old)
    graph = spec.graph()
    not_done = [n for n in graph.upstream if states.get(n, {}).get("state") not in ("success",)]
    not_done = [n for n in not_done if states.get(n, {}).get("state") != "skipped"]
    rerun = graph.descendants([from_task, *not_done])
    return {n: states[n] for n in graph.upstream if n not in rerun and n in states}


def parse_time(text: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if isinstance(text, str) and text else None
