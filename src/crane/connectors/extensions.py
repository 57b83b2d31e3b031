"""DuckDB's scanner extensions: loaded from installed packages, signature-checked once.

The extensions come from the ``duckdb-extension-*`` packages
(``duckdb_extensions.import_extension``): a plain ``INSTALL`` would download, and
nothing may download at run time.

DuckDB checks an extension's signature on every ``LOAD``, by hashing the whole file:
the PostgreSQL scanner is a 41 MB file, so every run that attached PostgreSQL paid
~55 ms for it (a 1% incremental load's whole in-process time is a few hundred ms).
crane keeps a record of the extension files DuckDB has verified — path, size, inode,
mtime and ctime, so a rewritten or replaced file no longer matches — and opens a
DuckDB instance with ``allow_unsigned_extensions`` only when *every* extension file in
the extension directory is such a verified file, unchanged. Any other state (a new or
modified file, another DuckDB version, a custom ``extension_directory``) gets DuckDB's
own check, after which the record is brought up to date. ``CRANE_VERIFY_EXTENSIONS=always``
turns the record off. The record lives beside the SQL cache:
``$XDG_CACHE_HOME/crane/extensions.json`` (default ``~/.cache/crane``).
"""

from __future__ import annotations

import json
import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

SUFFIX = ".duckdb_extension"
ALWAYS_VERIFY_ENV = "CRANE_VERIFY_EXTENSIONS"
_lock = threading.Lock()


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load a scanner extension from its installed package; never from the network."""
    with _lock:
        try:
            con.execute(f"LOAD {name}")  # already installed into the local extension dir
        except Exception:
            import duckdb_extensions

            duckdb_extensions.import_extension(name, con=con)
            con.execute(f"LOAD {name}")
        if not _unsigned_allowed(con):
            _remember_verified(con)


def trusted_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` plus ``allow_unsigned_extensions`` when every installed extension file is
    one DuckDB already verified and none has changed since (see the module docstring)."""
    if "extension_directory" in config or "allow_unsigned_extensions" in config:
        return config
    if os.environ.get(ALWAYS_VERIFY_ENV, "").lower() == "always":
        return config
    record = _read_record()
    directory = record.get("directory")
    if not directory or record.get("duckdb") != _duckdb_version():
        return config
    files = _extension_files(directory)
    if not files or files != record.get("files"):
        return config
    return {**config, "allow_unsigned_extensions": True}


def _unsigned_allowed(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute("SELECT current_setting('allow_unsigned_extensions')").fetchone()
    return bool(row and row[0])


def _remember_verified(con: duckdb.DuckDBPyConnection) -> None:
    """After DuckDB verified a LOAD: record the directory's files, verifying the others first
    (each once, in a scratch instance) so that the record only ever holds checked files."""
    rows = con.execute(
        "SELECT install_path FROM duckdb_extensions() WHERE loaded AND install_path LIKE ?",
        [f"%{SUFFIX}"],
    ).fetchall()
    directories = {os.path.dirname(path) for (path,) in rows if os.path.exists(path)}
    if len(directories) != 1:
        return
    directory = directories.pop()
    loaded = {os.path.basename(path) for (path,) in rows}
    record = _read_record()
    known: dict[str, list[int]] = {}
    if record.get("directory") == directory and record.get("duckdb") == _duckdb_version():
        known = record.get("files", {})
    files = _extension_files(directory)
    unchecked = [n for n, stat in files.items() if n not in loaded and known.get(n) != stat]
    if unchecked and not _verify(directory, unchecked):
        return
    _write_record({"duckdb": _duckdb_version(), "directory": directory, "files": files})


def _verify(directory: str, names: list[str]) -> bool:
    """Load each file in a fresh instance with DuckDB's signature check on."""
    import duckdb

    scratch = duckdb.connect(":memory:")
    try:
        for name in names:
            path = os.path.join(directory, name).replace("'", "''")
            scratch.execute(f"LOAD '{path}'")
    except duckdb.Error:
        return False
    finally:
        scratch.close()
    return True


def _extension_files(directory: str) -> dict[str, list[int]]:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return {}
    files: dict[str, list[int]] = {}
    for entry in entries:
        if entry.name.endswith(SUFFIX):
            st = entry.stat(follow_symlinks=False)
            files[entry.name] = [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
    return files


def _duckdb_version() -> str:
    import duckdb

    return str(duckdb.__version__)


def _record_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "crane", "extensions.json")


def _read_record() -> dict[str, Any]:
    try:
        with open(_record_path(), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_record(record: dict[str, Any]) -> None:
    """Atomically (another process may read it at the same moment); a cache that cannot
    be written only costs the check again next time."""
    import tempfile  # here, not at module level: with shutil, random, bz2 and lzma, 4 ms

    path = _record_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        os.replace(tmp, path)
    except OSError:
        return
