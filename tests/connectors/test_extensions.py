"""Scanner extensions: DuckDB's signature check runs until a file is on crane's verified
record, and again as soon as the file (or the directory's contents) changes."""

import json
import os
import subprocess
import sys

import duckdb
import pytest

from crane.connectors import extensions

PG = os.environ.get("CRANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(extensions.ALWAYS_VERIFY_ENV, raising=False)
    return tmp_path / "cache"


def record(cache_home) -> dict:
    return json.loads((cache_home / "crane" / "extensions.json").read_text())


def test_a_verified_load_is_recorded_and_later_instances_skip_the_check(cache_home):
    assert extensions.trusted_config({"threads": 1}) == {"threads": 1}  # nothing recorded yet
    con = duckdb.connect(":memory:")
    extensions.load_extension(con, "postgres")  # DuckDB verified it: signature checks on
    con.close()
    kept = record(cache_home)
    assert "postgres_scanner.duckdb_extension" in kept["files"]
    assert kept["duckdb"] == duckdb.__version__

    config = extensions.trusted_config({"threads": 1})
    assert config == {"threads": 1, "allow_unsigned_extensions": True}
    fast = duckdb.connect(":memory:", config=config)
    extensions.load_extension(fast, "postgres")
    assert fast.execute(
        "SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'postgres_scanner'"
    ).fetchone() == (True,)
    fast.close()


def test_a_changed_or_added_file_brings_the_check_back(cache_home, tmp_path):
    directory = tmp_path / "ext"
    directory.mkdir()
    first = directory / "a_scanner.duckdb_extension"
    first.write_bytes(b"verified bytes")
    files = extensions._extension_files(str(directory))
    extensions._write_record(
        {"duckdb": duckdb.__version__, "directory": str(directory), "files": files}
    )
    assert extensions.trusted_config({}) == {"allow_unsigned_extensions": True}

    (directory / "b_scanner.duckdb_extension").write_bytes(b"never verified")
    assert extensions.trusted_config({}) == {}  # an unrecorded file: DuckDB checks again
    (directory / "b_scanner.duckdb_extension").unlink()
    assert extensions.trusted_config({}) == {"allow_unsigned_extensions": True}

    first.write_bytes(b"tampered bytes")  # same size, new mtime/ctime
    assert extensions.trusted_config({}) == {}


def test_other_versions_custom_directories_and_the_opt_out_keep_the_check(
    cache_home, tmp_path, monkeypatch
):
    directory = tmp_path / "ext"
    directory.mkdir()
    (directory / "a_scanner.duckdb_extension").write_bytes(b"x")
    files = extensions._extension_files(str(directory))
    extensions._write_record({"duckdb": "0.0.1", "directory": str(directory), "files": files})
    assert extensions.trusted_config({}) == {}  # recorded by another DuckDB release
    extensions._write_record(
        {"duckdb": duckdb.__version__, "directory": str(directory), "files": files}
    )
    assert extensions.trusted_config({"extension_directory": "/elsewhere"}) == {
        "extension_directory": "/elsewhere"
    }
    monkeypatch.setenv(extensions.ALWAYS_VERIFY_ENV, "always")
    assert extensions.trusted_config({}) == {}


@pytest.mark.integration
def test_the_warehouse_connection_uses_the_record(cache_home, tmp_path):
    """A whole process: the first attach verifies and records, the second one is trusted."""
    script = (
        "import sys; from crane.connectors import connect\n"
        f"with connect('duckdb:///{tmp_path}/w.duckdb') as t, connect({PG!r}) as s:\n"
        "    t.attach(s, 'src')\n"
        "    print(t.con.execute(\"SELECT current_setting('allow_unsigned_extensions')\")"
        ".fetchone()[0])\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    runs = [
        subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    assert [r.stdout.strip() for r in runs] == ["False", "True"]
