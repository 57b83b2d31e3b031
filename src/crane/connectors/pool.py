"""A tiny thread-safe pool of idle driver connections, shared by the SQL connectors.

Why: a run opens many short-lived connectors (extract, state, checks) against the
same server; reconnecting costs a TLS/auth round trip each time. Connections are
keyed by the full URL plus mode (the key is never logged) and handed back only
when healthy and outside a transaction, so a reused session is always clean.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Callable
from typing import Any

MAX_IDLE_PER_KEY = 4


class Pool:
    """Idle connections per key; ``acquire`` reuses one or opens a new one."""

    def __init__(self, close: Callable[[Any], None]) -> None:
        self._idle: dict[tuple[str, ...], list[Any]] = {}
        self._lock = threading.Lock()
        self._close = close
        self._exit_hook = False

    def acquire(
        self,
        key: tuple[str, ...],
        open_: Callable[[], Any],
        alive: Callable[[Any], bool] = lambda con: True,
    ) -> Any:
        """An idle connection that passes ``alive`` (dead ones are closed), else a new one."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                con = idle.pop() if idle else None
            if con is None:
                return open_()
            if alive(con):
                return con
            self._safe_close(con)

    def release(self, key: tuple[str, ...], con: Any, *, healthy: bool) -> None:
        if healthy:
            with self._lock:
                idle = self._idle.setdefault(key, [])
                if len(idle) < MAX_IDLE_PER_KEY:
                    idle.append(con)
                    if not self._exit_hook:
                        # close before interpreter teardown, while drivers can still run
                        atexit.register(self.clear)
                        self._exit_hook = True
                    return
        self._safe_close(con)

    def clear(self) -> None:
        """Close every idle connection (tests, and before a process forks)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for cons in idle.values():
            for con in cons:
                self._safe_close(con)

    def _safe_close(self, con: Any) -> None:
        with contextlib.suppress(Exception):  # already broken; nothing to release
            self._close(con)
