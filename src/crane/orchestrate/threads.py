"""Reusable daemon threads for thread-mode tasks."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class ThreadPool:
    """Daemon threads reused by every task of every run (starting a thread costs ~0.1 ms).

    The pool grows whenever no thread is idle, so a task stuck past its timeout never
    delays another; the executor's own worker count is what limits concurrency.
    """

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]]] = (
            queue.SimpleQueue()
        )
        self.idle = 0
        self.lock = threading.Lock()

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        with self.lock:
            spawn = self.idle == 0
            if not spawn:
                self.idle -= 1  # that idle thread will take this job
        self.jobs.put((fn, args))
        if spawn:
            threading.Thread(target=self._serve, name="crane-task", daemon=True).start()

    def _serve(self) -> None:
        while True:
            fn, args = self.jobs.get()
            fn(*args)  # _work catches everything and reports to its run's queue
            with self.lock:
                self.idle += 1
