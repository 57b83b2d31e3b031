"""Process isolation: run one task in a child Python process (``isolation: process``).

For tasks that may crash the interpreter or leak memory. The parent writes a
job file (task spec, run context, upstream outputs), starts
``python -m crane.orchestrate.worker JOB`` in its own process group with
stdout/stderr going to the attempt's log, and reads the result file. A timeout
kills the whole group; a child that dies without a result (SIGKILL, segfault,
out of memory) fails the attempt with `TaskCrashedError` (transient).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from crane.errors import CraneError
from crane.orchestrate.retry import TaskCrashedError
from crane.orchestrate.tasks import TaskContext


def run_in_process(task: Any, ctx: TaskContext) -> Any:
    """Run ``task`` in a child process; returns its output or raises its error."""
    with tempfile.TemporaryDirectory(prefix="crane-task-") as tmp:
        job, result = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job.write_text(json.dumps(_job(task, ctx, result), default=str), encoding="utf-8")
        if ctx.log_path is not None:
            ctx.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(ctx.log_path, "ab") if ctx.log_path else subprocess.DEVNULL  # noqa: SIM115
        path = os.pathsep.join(p for p in sys.path if p)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "crane.orchestrate.worker", str(job)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": path},
                start_new_session=True,
            )
            ctx.on_cancel(lambda: _kill(proc))
            code = proc.wait()
        finally:
            if not isinstance(log, int):
                log.close()
        if not result.exists():
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            raise TaskCrashedError(f"task process died without a result ({how})")
        outcome = json.loads(result.read_text(encoding="utf-8"))
    if outcome["ok"]:
        return outcome["output"]
    raise CraneError(f"{outcome['type']}: {outcome['error']}", transient=outcome["transient"])


def _job(task: Any, ctx: TaskContext, result: Path) -> dict[str, Any]:
    return {
        "task": task.model_dump(),
        "project": str(ctx.project.root) if ctx.project is not None else None,
        "result": str(result),
        "ctx": {
            "dag": ctx.dag,
            "task": ctx.task,
            "run_id": ctx.run_id,
            "attempt": ctx.attempt,
            "logical_date": ctx.logical_date.isoformat(),
            "data_interval_start": ctx.data_interval_start.isoformat(),
            "data_interval_end": ctx.data_interval_end.isoformat(),
            "params": ctx.params,
            "inputs": ctx.inputs,
            "log_path": str(ctx.log_path) if ctx.log_path else None,
        },
    }


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def main(job_path: str) -> int:
    """The child's side: load the project, run the task, write the result file."""
    from crane.orchestrate.dag import TaskSpec
    from crane.orchestrate.tasks import task_types
    from crane.pipelines.retry import is_transient

    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    limit = job["task"].get("max_memory_mb")
    if limit:  # RLIMIT_DATA counts heap and anonymous mmaps (Linux ≥ 4.7): a leak → MemoryError
        import resource

        resource.setrlimit(resource.RLIMIT_DATA, (limit * 1024 * 1024, limit * 1024 * 1024))
    raw = job["ctx"]
    try:
        project = None
        if job["project"]:
            from crane.project import Project

            project = Project.load(job["project"])
        task = TaskSpec.model_validate(job["task"])
        ctx = TaskContext(
            **{k: raw[k] for k in ("dag", "task", "run_id", "attempt", "params", "inputs")},
            logical_date=dt.datetime.fromisoformat(raw["logical_date"]),
            data_interval_start=dt.datetime.fromisoformat(raw["data_interval_start"]),
            data_interval_end=dt.datetime.fromisoformat(raw["data_interval_end"]),
            project=project,
            log_path=Path(raw["log_path"]) if raw["log_path"] else None,
        )
        output = task_types.get(task.type or "").run(task.options(), ctx)
        outcome = {"ok": True, "output": output}
    except Exception as error:
        import traceback

        traceback.print_exc()
        outcome = {
            "ok": False,
            "error": str(error),
            "type": type(error).__name__,
            "transient": is_transient(error),
        }
    sys.stdout.flush()
    Path(job["result"]).write_text(json.dumps(outcome, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
