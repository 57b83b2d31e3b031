"""Rendered statements kept on disk between processes, so a load that ran before does not
import sqlglot again.

Building and rendering SQL needs sqlglot, whose import costs a one-shot process
0.1-0.2 s: for a 1% change of a 1M-row dimension, half as much again as the statements
themselves (BENCHMARKS.md, SCD2). An entry holds the text of a fixed set of statements
for one purpose and input (dimension spec, batch table, dialect). Its key includes a
fingerprint of the code that builds them (size and mtime of crane's SCD, SQL-builder and
TableRef modules, and sqlglot's version file), so an edit or an upgrade misses the cache
instead of reading stale SQL.

The directory is ``$CRANE_SQL_CACHE`` (set but empty: no cache) or
``$XDG_CACHE_HOME/crane/sql`` (default ``~/.cache/crane/sql``); it keeps at most
``LIMIT`` entries, the oldest go first. A failure to read or write is a miss, never an
error.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

LIMIT = 512


def directory() -> Path | None:
    value = os.environ.get("CRANE_SQL_CACHE")
    if value is not None:
        return Path(value) if value else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "crane" / "sql"


@cache
def fingerprint() -> tuple[tuple[str, int, int], ...]:
    """(file, size, mtime) of every module whose change could change the rendered SQL."""
    from importlib.util import find_spec

    crane = Path(__file__).resolve().parents[2]
    files = [*sorted((crane / "warehouse" / "scd").glob("*.py"))]
    files += [crane / "sql" / "build.py", crane / "connectors" / "base.py"]  # TableRef renders
    spec = find_spec("sqlglot")
    if spec is not None and spec.origin:
        files.append(Path(spec.origin).with_name("_version.py"))
    out = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(out)


def statements(purpose: str, inputs: str, build: Callable[[], dict[str, str]]) -> dict[str, str]:
    """The statements for ``inputs``: from the cache, or ``build()`` them and keep them."""
    folder = directory()
    if folder is None:
        return build()
    key = json.dumps([purpose, inputs, fingerprint()])
    path = folder / f"{purpose}-{_digest(key)}.json"
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if entry.get("key") == key:  # a hash collision reads as a miss
            return dict(entry["statements"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    found = build()
    _store(folder, path, {"key": key, "statements": found})
    return found


def _digest(key: str) -> str:
    """A file name for ``key``: two 32-bit checksums. The entry stores the whole key and a
    read compares it, so a collision is a miss. Not hashlib: its import loads OpenSSL, 2.5 ms
    of a one-shot load process."""
    data = key.encode()
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def _store(folder: Path, path: Path, entry: dict[str, object]) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps(entry), encoding="utf-8")
        os.replace(temp, path)  # readers see the old entry or the whole new one
        entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in entries[: max(0, len(entries) - LIMIT)]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
