"""File triggers: each file matching a DAG's glob starts one run, once.

"Once" is remembered in the history database (a claim per path), so a file
seen before a restart does not fire again, and two schedulers never both fire
it. A file still being written must not fire: only files whose modification
time is at least ``settle`` seconds old count.
"""

from __future__ import annotations

import time
from pathlib import Path


def matching(root: Path, pattern: str, settle: float = 1.0) -> list[Path]:
    """Files under ``root`` matching ``pattern`` (a glob, relative or absolute), settled."""
    base, glob = root, pattern
    if Path(pattern).is_absolute():
        base, glob = Path("/"), pattern.lstrip("/")
    now = time.time()
    found = []
    for path in sorted(base.glob(glob)):
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed between glob and stat
            continue
        if path.is_file() and now - stat.st_mtime >= settle:
            found.append(path.resolve())
    return found
