"""Retries of whole pipeline runs: transient errors back off and retry, terminal ones fail.

A retry restarts the *whole* run attempt (new connections, new staging, new
transaction); since nothing of a failed attempt was committed, a retry can never
duplicate rows. Which errors are transient is decided by type and error code
(SQLSTATE, MySQL errno, `CraneError.transient`), never by the wording of a
message, except for errors DuckDB's scanners re-raise as plain text: for those
the server's own message is the only evidence and is matched against
`DUCKDB_TRANSIENT_MESSAGES`.

The backoff is exponential with a configurable multiplier, full jitter and a
maximum delay, computed without overflow at any attempt number (LESSONS.md:
Airflow #56537, #47971).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# SQLSTATE classes/codes worth a retry (PostgreSQL appendix A)
PG_TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (lock_timeout)
        "57P01",  # admin_shutdown (pg_terminate_backend)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (server starting)
        "53300",  # too_many_connections
        "57014",  # query_canceled (statement_timeout)
    }
)
PG_TRANSIENT_CLASSES = ("08",)  # connection exceptions

# MySQL/MariaDB client and server error numbers worth a retry
MYSQL_TRANSIENT_ERRNOS = frozenset(
    {
        1040,  # too many connections
        1053,  # server shutdown in progress
        1205,  # lock wait timeout
        1213,  # deadlock
        1927,  # connection killed (MariaDB)
        2003,  # can't connect
        2006,  # server has gone away
        2013,  # lost connection during query
    }
)

# DuckDB's postgres/mysql scanners surface server errors as text only
DUCKDB_TRANSIENT_MESSAGES = (
    "terminating connection due to administrator command",
    "server closed the connection unexpectedly",
    "connection to server",
    "the database system is starting up",
    "the database system is shutting down",
    "could not serialize access",
    "deadlock detected",
    "lock timeout",
    "canceling statement due to lock timeout",
    "lost connection to mysql server",
    "mysql server has gone away",
    "could not set lock on file",  # another process briefly holds a DuckDB file
)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) is worth a retry."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        verdict = _classify_one(current)
        if verdict is not None:
            return verdict
        current = current.__cause__ or current.__context__
    return False


def _classify_one(error: BaseException) -> bool | None:
    from crane.errors import CraneError

    if isinstance(error, CraneError) and (
        error.transient or error.classified or error.__cause__ is None
    ):
        return error.transient
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate in PG_TRANSIENT_SQLSTATES or sqlstate.startswith(PG_TRANSIENT_CLASSES)
    module = type(error).__module__
    if module.startswith("pymysql") and error.args and isinstance(error.args[0], int):
        return error.args[0] in MYSQL_TRANSIENT_ERRNOS
    if module.startswith("psycopg") and type(error).__name__ == "OperationalError":
        return True  # connection-level failure without a SQLSTATE (server went away)
    if module.startswith(("duckdb", "_duckdb")):
        text = str(error).lower()
        return any(pattern in text for pattern in DUCKDB_TRANSIENT_MESSAGES)
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait between attempts: ``initial * multiplier**(n-1)``, capped, jittered."""

    max_retries: int = 3
    initial: float = 0.5  # seconds before the first retry
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: float = 1.0  # 0 = none; 1 = "full jitter" (uniform in [0, delay])

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); never overflows.

        >>> RetryPolicy(initial=1, multiplier=2, max_delay=30, jitter=0).delay(3)
        4.0
        >>> RetryPolicy(initial=1, multiplier=2, max_delay=30, jitter=0).delay(10_000)
        30.0
        """
        if self.initial <= 0:
            return 0.0
        exponent = max(attempt - 1, 0)
        # compare in log space so a huge attempt number cannot overflow a float
        growth = exponent * math.log(max(self.multiplier, 1.0))
        if growth >= math.log(max(self.max_delay / self.initial, 1.0)):
            base = float(self.max_delay)
        else:
            base = float(self.initial * max(self.multiplier, 1.0) ** exponent)
        if self.jitter <= 0:
            return base
        spread = base * min(self.jitter, 1.0)
        return base - spread + (rng or random).uniform(0, spread)


def call_with_retries(
    attempt: Callable[[int], T],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[int, BaseException, float], Any] | None = None,
) -> T:
    """Call ``attempt(n)`` until it succeeds, a terminal error occurs, or retries run out.

    Built on tenacity so the retry loop itself is a well-tested library; crane only
    supplies the classification and the overflow-safe wait.
    """
    import tenacity

    def wait(state: tenacity.RetryCallState) -> float:
        return policy.delay(state.attempt_number)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry and state.outcome is not None:
            error = state.outcome.exception()
            assert error is not None
            on_retry(state.attempt_number, error, state.upcoming_sleep)

    counter = iter(range(1, policy.max_retries + 2))
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_retries + 1),
        wait=wait,
        retry=tenacity.retry_if_exception(is_transient),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(lambda: attempt(next(counter)))
