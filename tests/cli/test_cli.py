"""The crane CLI end to end: exit codes, masked errors, JSON output, progress, speed."""

import io
import json
import subprocess
import sys
import time

import pytest

from crane.cli import run_cli
from crane.cli.console import RichConsole
from crane.config import secrets


@pytest.fixture(autouse=True)
def forget_secrets():
    secrets.forget_all()
    yield
    secrets.forget_all()


def crane(capsys, *args):
    code = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path, capsys, monkeypatch):
    for var in (
        "SOURCE_DB_HOST",
        "SOURCE_DB_NAME",
        "TARGET_DB_HOST",
        "TARGET_DB_NAME",
        "CRANE_WAREHOUSE",
        "BATCH_SIZE",
        "MAX_RETRIES",
        "OPENLINEAGE_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    code, out, _ = crane(capsys, "init", tmp_path / "shop")
    assert code == 0 and "crane run --all" in out
    return tmp_path / "shop"


def test_help_is_fast_and_light():
    probe = (
        "import sys, time; t = time.perf_counter(); from crane.cli import run_cli; "
        "code = run_cli(['--help']); "
        "heavy = [m for m in ('duckdb', 'pyarrow', 'sqlglot', 'pydantic', 'openlineage', 'httpx')"
        " if m in sys.modules]; print(code, heavy, time.perf_counter() - t)"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - started
    code, heavy, _ = done.stdout.strip().splitlines()[-1].split(" ", 2)
    assert code == "0" and heavy.startswith("[]"), done.stdout
    assert elapsed < 2.0  # interpreter start included; about 0.25 s here


def test_pipeline_list_and_show_json(project, capsys):
    code, out, _ = crane(capsys, "pipeline", "list", "--json", "--project", project)
    assert code == 0
    rows = json.loads(out)
    assert [(r["name"], r["extract"], r["load"], r["file"]) for r in rows] == [
        ("customers", "incremental", "merge", "pipelines/customers.yml"),
        ("orders_etl", "incremental", "merge", "pipelines/orders_etl.py"),
    ]
    code, out, _ = crane(capsys, "pipeline", "show", "orders_etl", "--json", "-p", project)
    shown = json.loads(out)
    assert code == 0 and shown["load"]["primary_key"] == ["id"] and shown["max_retries"] == 3
    code, out, _ = crane(capsys, "pipeline", "show", "orders_etl", "-p", project)
    assert "transform: |\n  SELECT id," in out


def test_config_show_masks_secrets_and_shows_origins(project, capsys, monkeypatch):
    (project / ".env").write_text("SOURCE_DB_PASSWORD=env-file-secret-42\n")
    monkeypatch.setenv("SOURCE_DB_HOST", "pg.example.com")
    monkeypatch.setenv("SOURCE_DB_NAME", "shop")
    monkeypatch.setenv("SOURCE_DB_USER", "etl")
    monkeypatch.setenv("BATCH_SIZE", "2500")
    code, out, _ = crane(
        capsys, "config", "show", "--json", "-p", project, "--warehouse", "duckdb:///other.duckdb"
    )
    assert code == 0
    assert "env-file-secret-42" not in out
    settings = {r["key"]: r for r in json.loads(out)}
    assert settings["connections.source"]["value"] == "postgresql://etl:***@pg.example.com/shop"
    assert settings["connections.source"]["origin"] == (
        "env SOURCE_DB_HOST, env SOURCE_DB_NAME, env SOURCE_DB_USER, .env SOURCE_DB_PASSWORD"
    )
    assert settings["warehouse"]["origin"] == "cli"
    assert settings["defaults.batch_size"] == {
        "key": "defaults.batch_size",
        "value": 2500,
        "origin": "env BATCH_SIZE",
    }
    assert settings["name"]["origin"] == "crane.yml:3"
    code, out, _ = crane(capsys, "config", "show", "-p", project)
    assert "env-file-secret-42" not in out and "***" in out


def test_validation_error_is_one_line_on_stderr(project, capsys):
    (project / "pipelines/bad.yml").write_text(
        "source:\n  table: a\ntarget:\n  table: a\nload:\n  primary_key: [id]\n  strategy: upsert\n"
    )
    code, out, err = crane(capsys, "pipeline", "list", "-p", project)
    assert code == 1 and out == ""
    assert err.startswith("error: pipelines/bad.yml, line 7, field load.strategy: Input should be")
    assert "Traceback" not in err
    code, _, err = crane(capsys, "--debug", "pipeline", "list", "-p", project)
    assert code == 1 and "Traceback" in err and "SpecError" in err


def test_errors_are_masked(tmp_path, capsys):
    (tmp_path / "crane.yml").write_text(
        "connections:\n  source:\n    url: postgresql://u:cli-secret-77@h/db\nwarehouse: nope\n"
    )
    code, _, err = crane(capsys, "config", "show", "-p", tmp_path)
    assert code == 1 and "unknown connection 'nope'" in err
    secrets.register("cli-secret-77")
    (tmp_path / "crane.yml").write_text("name: ${MISSING_VAR_X}\n# cli-secret-77\n")
    code, _, err = crane(capsys, "config", "show", "-p", tmp_path)
    assert code == 1 and "MISSING_VAR_X is not set" in err


def test_unknown_pipeline_and_usage_errors(project, capsys):
    code, _, err = crane(capsys, "run", "custmers", "-p", project)
    assert code == 1 and "did you mean 'customers'" in err
    code, _, err = crane(capsys, "run", "-p", project)
    assert code == 2 and "--all" in err
    code, _, err = crane(capsys, "run", "--no-such-flag")
    assert code == 2


def test_missing_project(tmp_path, capsys):
    code, _, err = crane(capsys, "runs", "-p", tmp_path)
    assert code == 1 and "crane init" in err


def test_progress_only_on_a_terminal():
    from rich.console import Console

    shown = io.StringIO()
    console = RichConsole(Console(file=shown, force_terminal=True, width=100))
    console.start_task("orders", total=None)
    console.advance("orders", 1500)
    console.finish_task("orders")
    assert "orders" in shown.getvalue() and "rows/s" in shown.getvalue()
    assert "1,500 rows" in shown.getvalue()

    piped = io.StringIO()
    console = RichConsole(Console(file=piped, force_terminal=False))
    console.start_task("orders")
    console.advance("orders", 10)
    console.finish_task("orders")
    console.info("done")
    assert piped.getvalue() == "done\n"


def test_console_masks_messages():
    from rich.console import Console

    secrets.register("console-secret")
    out = io.StringIO()
    console = RichConsole(Console(file=out, force_terminal=False))
    console.warn("retrying after console-secret leaked")
    assert "console-secret" not in out.getvalue() and "***" in out.getvalue()


def test_logging_goes_through_the_mask(capsys):
    import logging

    from crane.cli.output import setup_logging

    secrets.register("log-secret-99")
    setup_logging(debug=False)
    logging.getLogger("crane.something").warning("password is log-secret-99")
    err = capsys.readouterr().err
    assert "password is ***" in err and "log-secret-99" not in err


def _duck_project(root):
    import duckdb

    root.mkdir(exist_ok=True)
    con = duckdb.connect(str(root / "src.duckdb"))
    con.execute(
        "CREATE TABLE items AS SELECT range AS id, 'item ' || range AS label, "
        "TIMESTAMP '2026-01-01' + to_minutes(range) AS updated_at FROM range(500)"
    )
    con.close()
    (root / "crane.yml").write_text(
        "name: duck\nconnections:\n  source:\n    url: duckdb:///src.duckdb\n"
    )
    (root / "pipelines").mkdir()
    (root / "pipelines/items.yml").write_text(
        "source: {table: items}\ntarget: {table: items}\n"
        "extract: {strategy: incremental, cursor: updated_at}\n"
        "load: {strategy: merge, primary_key: [id]}\n"
    )
    (root / "pipelines/missing.yml").write_text("source: {table: nope}\ntarget: {table: nope}\n")
    return root


def test_run_runs_and_lineage(tmp_path, capsys):
    root = _duck_project(tmp_path / "duck")
    code, out, err = crane(capsys, "run", "items", "--json", "-p", root)
    assert code == 0, err
    [record] = json.loads(out)
    assert record["status"] == "success" and record["rows_loaded"] == 500 and record["ok"]
    code, out, _ = crane(capsys, "run", "items", "-p", root)  # incremental: nothing new
    assert code == 0 and "success" in out
    code, out, _ = crane(capsys, "runs", "--json", "--limit", "5", "-p", root)
    runs = json.loads(out)
    assert [r["rows_loaded"] for r in runs] == [0, 500] and runs[0]["pipeline"] == "items"
    code, out, _ = crane(capsys, "runs", "-p", root)
    assert code == 0 and "items" in out and "success" in out
    code, out, _ = crane(capsys, "runs", "--json", "--pipeline", "other", "-p", root)
    assert code == 0 and json.loads(out) == []
    events = [json.loads(line) for line in (root / "lineage.jsonl").read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"] * 2
    assert events[0]["job"] == {"namespace": "duck", "name": "items", "facets": {}}


def test_run_and_runs_refuse_what_they_cannot_mean(tmp_path, capsys):
    root = _duck_project(tmp_path / "duck")
    code, out, err = crane(capsys, "runs", "-p", root)
    assert code == 0 and out == "" and "no runs recorded in" in err
    code, _, err = crane(capsys, "run", "--all", "nope", "-p", root)  # nope was ignored
    assert code == 2 and "drop nope" in err
    code, _, err = crane(capsys, "runs", "-n", "-1", "-p", root)  # a DuckDB binder error
    assert code == 2 and "Binder" not in err and "--limit" in err
    code, out, _ = crane(capsys, "run", "--help")
    assert "[PIPELINE]..." in out
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "crane.yml").write_text("name: empty\n")
    code, _, err = crane(capsys, "run", "--all", "-p", empty)
    assert code == 2 and "has no pipelines" in err


def test_runs_needs_only_the_warehouse_variables(tmp_path, capsys, monkeypatch):
    """A source's secret unset (a laptop without production credentials) does not stop
    `crane runs`, which reads only the warehouse; a run, and a warehouse that needs one,
    still fail naming the variable and the line."""
    root = _duck_project(tmp_path / "duck")
    code, _, err = crane(capsys, "run", "items", "-p", root)
    assert code == 0, err
    monkeypatch.delenv("PROD_PW", raising=False)
    monkeypatch.delenv("WH_FILE", raising=False)
    with (root / "crane.yml").open("a") as f:
        f.write("  prod:\n    url: postgresql://app:${PROD_PW}@db.example/shop\n")
    code, out, err = crane(capsys, "runs", "--json", "-p", root)
    assert code == 0, err
    assert [r["pipeline"] for r in json.loads(out)] == ["items"]
    code, _, err = crane(capsys, "run", "items", "-p", root)
    assert code != 0 and "PROD_PW is not set" in err and "line 6" in err
    with (root / "crane.yml").open("a") as f:
        f.write("warehouse: duckdb:///${WH_FILE}\n")
    code, _, err = crane(capsys, "runs", "-p", root)
    assert code != 0 and "WH_FILE is not set" in err and "warehouse" in err


def test_failed_run_exits_non_zero_with_the_error(tmp_path, capsys):
    root = _duck_project(tmp_path / "duck")
    code, out, err = crane(capsys, "run", "missing", "items", "-p", root)
    assert code == 1
    assert "error: pipeline missing:" in err and "Traceback" not in err
    assert "items" in out  # the other pipeline still ran
    code, out, _ = crane(capsys, "runs", "--json", "-p", root)
    assert {r["pipeline"]: r["status"] for r in json.loads(out)} == {
        "missing": "failed",
        "items": "success",
    }


def test_init_project_runs_out_of_the_box(tmp_path, capsys, monkeypatch):
    for var in ("SOURCE_DB_HOST", "SOURCE_DB_NAME", "TARGET_DB_HOST", "TARGET_DB_NAME"):
        monkeypatch.delenv(var, raising=False)
    code, _, _ = crane(capsys, "init", tmp_path / "x")
    monkeypatch.chdir(tmp_path / "x")
    code, out, err = crane(capsys, "run", "--all", "--json")
    assert code == 0, err
    assert {r["pipeline"]: r["rows_loaded"] for r in json.loads(out)} == {
        "customers": 200,
        "orders_etl": 1000,
    }
    import duckdb

    con = duckdb.connect(str(tmp_path / "x" / "warehouse.duckdb"), read_only=True)
    statuses = {s for (s,) in con.execute("SELECT DISTINCT status FROM orders").fetchall()}
    amount = con.execute("SELECT amount FROM orders WHERE id = 1").fetchone()[0]
    con.close()
    assert statuses <= {"placed", "shipped", "delivered", "cancelled"}  # the transform ran
    from decimal import Decimal

    assert isinstance(amount, Decimal)  # cents → exact currency units
    # the Python ETL file runs as it is, too (incremental: nothing new to load)
    done = subprocess.run(
        [sys.executable, "pipelines/orders_etl.py"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "status=success" in done.stdout and "rows_extracted=0" in done.stdout


def test_secrets_masked_in_run_records_errors_and_lineage(tmp_path, capsys, monkeypatch):
    root = _duck_project(tmp_path / "duck")
    monkeypatch.setenv("SHOP_API_TOKEN", "tok-3a9f-secret")
    (root / "pipelines/leaky.yml").write_text(
        "source:\n  query: SELECT * FROM missing_${SHOP_API_TOKEN}\ntarget: {table: leaky}\n"
    )
    code, out, err = crane(capsys, "run", "leaky", "--json", "-p", root)
    assert code == 1 and "missing_***" in err
    code, runs, _ = crane(capsys, "runs", "--json", "-p", root)
    lineage = (root / "lineage.jsonl").read_text()
    for text in (out, err, runs, lineage):
        assert "tok-3a9f-secret" not in text
    assert "missing_***" in json.loads(runs)[0]["error"]
    con = __import__("duckdb").connect(str(root / "warehouse.duckdb"), read_only=True)
    stored = con.execute("SELECT error FROM _crane.runs").fetchone()[0]
    con.close()
    assert "tok-3a9f-secret" not in stored and "missing_***" in stored


def test_password_needing_url_encoding_never_reaches_the_run_record(
    tmp_path, capsys, monkeypatch, pg_schema
):
    """SOURCE_DB_PASSWORD with '@', ':', '%' and '/' (trust auth accepts any): the run
    record's source URL, stored in the warehouse, must show *** and not the encoded form."""
    import duckdb
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as con:
        con.execute(f'CREATE TABLE "{pg_schema}".items AS SELECT 1 AS id')
    root = tmp_path / "pg"
    root.mkdir()
    (root / "crane.yml").write_text("name: pg\n")
    (root / "pipelines").mkdir()
    (root / "pipelines/items.yml").write_text(
        f"source: {{table: items, schema: {pg_schema}}}\ntarget: {{table: items}}\n"
    )
    password = "Pa@ss:w%rd/42"
    for name, value in {
        "SOURCE_DB_HOST": "127.0.0.1",
        "SOURCE_DB_NAME": "test",
        "SOURCE_DB_USER": "postgres",
        "SOURCE_DB_PASSWORD": password,
    }.items():
        monkeypatch.setenv(name, value)
    code, out, err = crane(capsys, "run", "items", "--json", "-p", root)
    assert code == 0, err
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    [(stored,)] = con.execute("SELECT source FROM _crane.runs").fetchall()
    con.close()
    assert stored == "postgresql://postgres:***@127.0.0.1/test#items"


@pytest.mark.parametrize("password", ["hunter22#x", "hunter22/x", "hunter22?x"])
def test_url_broken_by_an_interpolated_password_names_the_field_not_the_secret(
    tmp_path, capsys, monkeypatch, password
):
    """'#', '/' or '?' in a password pasted into a URL ends the host part early, so
    urllib reads the password as the port; its complaint quoted (part of) the password."""
    (tmp_path / "crane.yml").write_text(
        "name: shop\nconnections:\n  source:\n"
        "    url: postgresql://app:${SHOP_DB_PASSWORD}@db.internal:5432/shop\n"
    )
    monkeypatch.setenv("SHOP_DB_PASSWORD", password)
    for debug in ((), ("--debug",)):
        code, out, err = crane(capsys, *debug, "config", "show", "-p", tmp_path)
        assert code == 1
        assert "hunter22" not in out + err
        assert "crane.yml, line 4, field connections.source.url:" in err
        assert "percent-encode" in err and "password: ${VAR}" in err


def test_a_run_leaves_nothing_for_git_to_track(project, capsys):
    """After `crane run` and `crane check`, `git status` lists only the scaffold: the
    warehouse, its per-pipeline lock files and the .crane/ history stay ignored."""
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "scaffold"], check=True)
    code, _, err = crane(capsys, "run", "--all", "-p", project)
    assert code == 0, err
    crane(capsys, "check", "-p", project)
    status = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert status == ""


def test_config_show_masks_passwords_in_url_queries_and_options(tmp_path, capsys):
    (tmp_path / "crane.yml").write_text(
        "connections:\n"
        "  source:\n    url: postgresql://app@db/shop?password=hunter22zz\n"
        "  other:\n    type: postgresql\n    host: db\n    options: {sslpassword: sslsecret99}\n"
    )
    code, out, err = crane(capsys, "config", "show", "--json", "-p", tmp_path)
    assert code == 0, err
    assert "hunter22zz" not in out and "sslsecret99" not in out
    values = {r["key"]: r["value"] for r in json.loads(out)}
    assert values["connections.source"] == "postgresql://app@db/shop?password=***"
    assert values["connections.other"] == "postgresql://db/?sslpassword=***"
    secrets.forget_all()
    from crane.project import Project

    Project.load(tmp_path)  # loading makes the option's value a known secret
    assert secrets.mask("bad passphrase sslsecret99") == "bad passphrase ***"


def test_password_in_the_url_query_never_reaches_the_run_record(tmp_path, capsys, pg_schema):
    import duckdb
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as con:
        con.execute(f'CREATE TABLE "{pg_schema}".items AS SELECT 1 AS id')
    root = tmp_path / "pg"
    (root / "pipelines").mkdir(parents=True)
    (root / "crane.yml").write_text(
        "connections:\n  source:\n"
        "    url: postgresql://postgres@127.0.0.1/test?password=hunter22zz\n"
    )
    (root / "pipelines/items.yml").write_text(
        f"source: {{table: items, schema: {pg_schema}}}\ntarget: {{table: items}}\n"
    )
    secrets.forget_all()  # what is stored must not depend on what this process knows
    code, _, err = crane(capsys, "run", "items", "-p", root)
    assert code == 0, err
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    [(stored,)] = con.execute("SELECT source FROM _crane.runs").fetchall()
    con.close()
    assert stored == "postgresql://postgres@127.0.0.1/test?password=***#items"


def test_init_next_step_is_a_command_that_works_as_printed(tmp_path, capsys):
    code, out, _ = crane(capsys, "init", tmp_path / "my shop")
    assert code == 0
    next_step = out.strip().splitlines()[-1].removeprefix("Next: ")
    done = subprocess.run(
        next_step.replace("crane ", f"{sys.executable} -m crane.cli "),
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_reading_the_warehouse_before_any_run_says_so(project, capsys):
    code, _, err = crane(capsys, "profile", "customers", "-p", project)
    assert code == 1
    assert "does not exist yet" in err and "crane run" in err
    assert "another process" not in err  # the lock hint misled here
