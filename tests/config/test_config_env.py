"""${VAR} interpolation, .env loading and the conventional SOURCE_DB_*/TARGET_DB_* variables."""

import doctest

import pytest

from crane.config import env as env_module
from crane.config.env import (
    Environment,
    conventional_connections,
    pipeline_defaults,
)
from crane.errors import ConfigError


def test_doctests():
    result = doctest.testmod(env_module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${HOST}", "db1"),
        ("pg://${HOST}:${PORT:-5432}/x", "pg://db1:5432/x"),
        ("${EMPTY:-fallback}", "fallback"),  # shell semantics: empty uses the default
        ("${EMPTY}", ""),
        ("${MISSING:-}", ""),
        ("literal $${HOST} stays", "literal ${HOST} stays"),
        ("no references", "no references"),
        ("${HOST}${HOST}", "db1db1"),
    ],
)
def test_interpolate(text, expected):
    env = Environment.of({"HOST": "db1", "EMPTY": ""})
    assert env.interpolate(text) == expected


def test_missing_variable_names_it():
    with pytest.raises(ConfigError, match="SOURCE_DB_PASSWORD is not set"):
        Environment.of({}).interpolate("${SOURCE_DB_PASSWORD}")


def test_dotenv_fills_gaps_but_never_overrides_real_env(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("A=from-file\nB=from-file\n# comment\nC='quoted value'\n")
    monkeypatch.setenv("A", "from-shell")
    monkeypatch.delenv("B", raising=False)
    monkeypatch.delenv("C", raising=False)
    env = Environment.load(tmp_path)
    assert env["A"] == "from-shell" and env.origins["A"] == "env"
    assert env["B"] == "from-file" and env.origins["B"] == ".env"
    assert env["C"] == "quoted value"
    import os

    assert "B" not in os.environ  # loading is not a side effect on the process


def test_conventional_source_and_target():
    env = {
        "SOURCE_DB_HOST": "pg.internal",
        "SOURCE_DB_PORT": "6432",
        "SOURCE_DB_NAME": "shop",
        "SOURCE_DB_USER": "etl",
        "SOURCE_DB_PASSWORD": "pw-123",
        "TARGET_DB_TYPE": "mysql",
        "TARGET_DB_HOST": "dwh",
        "TARGET_DB_NAME": "warehouse",
    }
    found = conventional_connections(env)
    assert found["source"] == {
        "type": "postgresql",
        "host": "pg.internal",
        "port": "6432",
        "database": "shop",
        "user": "etl",
        "password": "pw-123",
    }
    assert found["target"] == {"type": "mysql", "host": "dwh", "database": "warehouse"}


def test_lone_password_defines_no_connection():
    assert conventional_connections({"SOURCE_DB_PASSWORD": "x"}) == {}


def test_pipeline_defaults():
    assert pipeline_defaults({"BATCH_SIZE": "5000", "MAX_RETRIES": "7"}) == {
        "batch_size": "5000",
        "max_retries": "7",
    }
    assert pipeline_defaults({"BATCH_SIZE": ""}) == {}


def test_dotenv_values_may_refer_to_other_variables(tmp_path, monkeypatch, caplog):
    """`URL=...:${PGPASS}@...` in .env is expanded as docker compose and python-dotenv
    do; it used to reach the database as the literal text '${PGPASS}'."""
    (tmp_path / ".env").write_text(
        "PGPASS=s3cret-pass\n"
        "this line is broken\n"
        "export SHOP_URL=postgresql://app:${PGPASS}@db/shop  # comment\n"
        'QUOTED="${PGPASS}-${SHOP_HOST}-${MISSING_X:-dflt}"\n'
        "LITERAL='${PGPASS}'\n"
        "ESCAPED=$${PGPASS}\n"
    )
    monkeypatch.setenv("SHOP_HOST", "from-shell")
    monkeypatch.delenv("PGPASS", raising=False)
    with caplog.at_level("WARNING"):
        env = Environment.load(tmp_path)
    assert env["SHOP_URL"] == "postgresql://app:s3cret-pass@db/shop"
    assert env["QUOTED"] == "s3cret-pass-from-shell-dflt"
    assert env["LITERAL"] == "${PGPASS}"  # single quotes are literal
    assert env["ESCAPED"] == "${PGPASS}"
    assert ".env, line 2" in caplog.text and "broken" not in caplog.text  # may hold a secret


def test_dotenv_references_prefer_the_shell(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("PGPASS=from-file\nURL=pg://u:${PGPASS}@h/d\n")
    monkeypatch.setenv("PGPASS", "from-shell")
    env = Environment.load(tmp_path)
    assert env["URL"] == "pg://u:from-shell@h/d"


def test_dotenv_that_is_not_utf8_names_the_file_and_line(tmp_path):
    (tmp_path / ".env").write_bytes(b"A=1\nSOURCE_DB_PASSWORD=caf\xe9pw\n")
    with pytest.raises(ConfigError) as caught:
        Environment.load(tmp_path)
    assert str(caught.value).startswith("file .env, line 2: not UTF-8 text")
    assert "caf" not in str(caught.value)  # the bytes around may be a secret
