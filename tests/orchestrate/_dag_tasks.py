"""Callables used by the orchestration tests (importable by name, so process isolation works)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from crane.errors import TransientError

_lock = threading.Lock()
running: dict[str, int] = {}
peak: dict[str, int] = {}


def noop() -> None:
    return None


def value(ctx: Any) -> dict[str, Any]:
    return {"task": ctx.task, "n": ctx.params.get("n", 1)}


def add(ctx: Any, **inputs: Any) -> int:
    return sum(v["n"] for k, v in inputs.items() if isinstance(v, dict) and "n" in v)


def tracked(ctx: Any, key: str = "pool", seconds: float = 0.05) -> int:
    """Sleeps while counting how many tasks with the same key run at once."""
    with _lock:
        running[key] = running.get(key, 0) + 1
        peak[key] = max(peak.get(key, 0), running[key])
    time.sleep(seconds)
    with _lock:
        running[key] -= 1
    return 1


def flaky(ctx: Any, counter: str, fail_times: int = 2) -> int:
    """Fails (transiently) ``fail_times`` times, then succeeds; the count lives in a file."""
    path = Path(counter)
    seen = int(path.read_text()) if path.exists() else 0
    path.write_text(str(seen + 1))
    if seen < fail_times:
        raise TransientError(f"flaky failure {seen + 1}")
    return seen + 1


def broken() -> None:
    raise ValueError("a bug, not worth a retry")


def always_transient() -> None:
    raise TransientError("still down")


def sleep(seconds: float = 30.0) -> str:
    time.sleep(seconds)
    return "woke"


def crash() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def pid() -> int:
    print(f"child pid {os.getpid()}")
    return os.getpid()


def choose(ctx: Any) -> str:
    return str(ctx.params["path"])


def when_flag(ctx: Any, flag: str) -> str:
    """Fails until the file ``flag`` exists (for resume tests)."""
    if not Path(flag).exists():
        raise ValueError(f"{flag} is missing")
    return "ok"


def produce_table(ctx: Any, url: str) -> dict[str, str]:
    """Writes 100,000 rows to a table and passes on only its name."""
    from crane.connectors.base import connect

    with connect(url) as con:
        con.execute("CREATE OR REPLACE TABLE big AS SELECT range AS i FROM range(100000)")
    return ctx.table("big", connection=url)


def allocate(mb: int) -> int:
    """A leak in miniature: holds ``mb`` MB."""
    held = bytearray(mb * 1024 * 1024)
    return len(held)
