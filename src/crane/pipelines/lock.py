"""The per-pipeline lock: one run of a pipeline at a time, so nothing is ever double-loaded.

Where the lock lives depends on the target, declared as data in `LOCK_KINDS`:

* file targets (DuckDB, SQLite): an ``flock`` on ``<db>.<pipeline>.lock`` beside the
  database file. ``flock`` locks belong to an open file description, so two runs in
  one process (threads) exclude each other as two processes do; the kernel drops
  the lock when its holder dies, even by SIGKILL. The holder writes its pid into
  the file so a refused run can name it.
* PostgreSQL: ``pg_advisory_lock`` on a key hashed from the pipeline name, held by a
  dedicated session whose ``application_name`` carries the holder's host pid; the
  server drops it when that session ends.
* MySQL/MariaDB: ``GET_LOCK`` on the pipeline name, also session-scoped.

``wait=False`` refuses at once with `PipelineLockedError`; ``wait=True`` blocks.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crane.connectors.base import ConnectionURL
from crane.errors import PipelineLockedError

LOCK_KINDS = {
    "duckdb": "file",
    "sqlite": "file",
    "postgresql": "pg_advisory",
    "postgres": "pg_advisory",
    "mysql": "mysql_get_lock",
    "mariadb": "mysql_get_lock",
}


def advisory_key(pipeline: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` (same on every host)."""
    digest = hashlib.blake2b(f"crane:{pipeline}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def pipeline_lock(pipeline: str, target_url: str, *, wait: bool = False) -> Iterator[None]:
    """Hold the pipeline's lock for the duration of the block.

    >>> import tempfile, os
    >>> url = f"duckdb:///{tempfile.mkdtemp()}/w.duckdb"
    >>> with pipeline_lock("orders", url):
    ...     with pipeline_lock("orders", url):
    ...         pass
    Traceback (most recent call last):
    crane.errors.PipelineLockedError: pipeline orders: ...
    """
    url = ConnectionURL.parse(target_url)
    kind = LOCK_KINDS.get(url.scheme)
    if kind == "file":
        with _file_lock(pipeline, url, wait):
            yield
    elif kind == "pg_advisory":
        with _pg_lock(pipeline, url, wait):
            yield
    elif kind == "mysql_get_lock":
        with _mysql_lock(pipeline, url, wait):
            yield
    else:  # a target we cannot lock: say so rather than pretend
        raise PipelineLockedError(
            f"no lock implementation for target scheme {url.scheme!r}", pipeline=pipeline
        )


def lock_path(pipeline: str, url: ConnectionURL) -> Path:
    database = url.database or ":memory:"
    if database == ":memory:":
        # an in-memory target lives in this process only; a per-process file suffices
        return Path(os.environ.get("TMPDIR", "/tmp")) / f"crane-mem-{os.getpid()}.{pipeline}.lock"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in pipeline)
    return Path(f"{database}.{safe}.lock")


@contextmanager
def _file_lock(pipeline: str, url: ConnectionURL, wait: bool) -> Iterator[None]:
    path = lock_path(pipeline, url)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:  # the lock sits beside the warehouse file
        from crane.errors import ConnectorError

        folder = path.parent
        why = "does not exist" if not folder.is_dir() else f"is not writable ({error.strerror})"
        raise ConnectorError(
            f"the warehouse's folder {folder} {why}",
            hint="create the folder, or point the warehouse at a file in an existing one",
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise PipelineLockedError(
                f"another run holds its lock (pid {holder}, lock file {path})",
                pipeline=pipeline,
                hint="wait for it to finish, or run with --wait to queue behind it",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _pg_lock(pipeline: str, url: ConnectionURL, wait: bool) -> Iterator[None]:
    import psycopg

    key = advisory_key(pipeline)
    conninfo = _pg_conninfo(url)
    with psycopg.connect(
        conninfo, autocommit=True, application_name=f"crane lock {pipeline} pid={os.getpid()}"
    ) as con:
        if wait:
            con.execute("SELECT pg_advisory_lock(%s)", [key])
        else:
            got = con.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
            if not got or not got[0]:
                holder = _pg_holder(con, key)
                raise PipelineLockedError(
                    f"another run holds its lock ({holder})",
                    pipeline=pipeline,
                    hint="wait for it to finish, or run with --wait to queue behind it",
                )
        try:
            yield
        finally:
            if not con.closed:
                con.execute("SELECT pg_advisory_unlock(%s)", [key])


def _pg_conninfo(url: ConnectionURL) -> str:
    from psycopg.conninfo import make_conninfo

    parts: dict[str, str | int | None] = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "dbname": url.database,
        "user": url.user,
        "password": url.password,
        **{k: v for k, v in url.params.items() if k in ("sslmode", "connect_timeout")},
    }
    return make_conninfo("", **{k: v for k, v in parts.items() if v})


def _pg_holder(con: Any, key: int) -> str:
    # a bigint advisory key is stored as classid (high 32 bits) / objid (low 32 bits)
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = con.execute(
        "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
        "AND l.objsubid = 1",
        [unsigned >> 32, unsigned & 0xFFFFFFFF],
    ).fetchone()
    return f"server pid {row[0]}, {row[1]}" if row else "holder unknown"


@contextmanager
def _mysql_lock(pipeline: str, url: ConnectionURL, wait: bool) -> Iterator[None]:
    import pymysql

    name = f"crane:{pipeline}"[:64]
    con = pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.user or "root",
        password=url.password or "",
        autocommit=True,
    )
    try:
        with con.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s)", [name, 31_536_000 if wait else 0])
            got = cur.fetchone()
            if not got or got[0] != 1:
                cur.execute("SELECT IS_USED_LOCK(%s)", [name])
                row = cur.fetchone()
                holder = row[0] if row else "?"
                raise PipelineLockedError(
                    f"another run holds its lock (server connection {holder})",
                    pipeline=pipeline,
                    hint="wait for it to finish, or run with --wait to queue behind it",
                )
        try:
            yield
        finally:
            with con.cursor() as cur:
                cur.execute("SELECT RELEASE_LOCK(%s)", [name])
    finally:
        con.close()
