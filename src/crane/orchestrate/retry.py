"""Task retries: the pipelines' overflow-safe backoff, decided per task.

`crane.pipelines.retry.RetryPolicy` already computes ``initial * multiplier**(n-1)``
capped at ``max_delay`` with jitter and no overflow at any attempt number
(LESSONS.md: Airflow #56537, #47971), and `is_transient` classifies errors by
type and code. The executor does not block a thread while it waits: it asks
`next_delay` and schedules the next attempt itself.
"""

from __future__ import annotations

import random

from crane.errors import CraneError
from crane.orchestrate.dag import TaskSpec
from crane.pipelines.retry import RetryPolicy, is_transient


class TaskTimeoutError(CraneError):
    """A task ran past its timeout and was stopped. Worth a retry (the next try may be fast)."""

    transient = True


class TaskCrashedError(CraneError):
    """A process-isolated task died without reporting (killed, segfault, out of memory)."""

    transient = True


def policy(task: TaskSpec) -> RetryPolicy:
    return RetryPolicy(
        max_retries=task.retries,
        initial=task.retry_delay,
        multiplier=task.retry_multiplier,
        max_delay=task.max_retry_delay,
        jitter=task.retry_jitter,
    )


def next_delay(
    task: TaskSpec, attempt: int, error: BaseException, rng: random.Random | None = None
) -> float | None:
    """Seconds until attempt ``attempt + 1``, or None when the task must fail now.

    >>> t = TaskSpec(name="t", command="x", retries=2, retry_delay=1, retry_multiplier=3)
    >>> [next_delay(t, n, TimeoutError()) for n in (1, 2, 3)]
    [1.0, 3.0, None]
    >>> next_delay(t, 1, ValueError("a bug"))  # terminal: no retry unless retry_on: any
    """
    if attempt > task.retries:
        return None
    if task.retry_on == "transient" and not is_transient(error):
        return None
    return policy(task).delay(attempt, rng)
