"""``crane model validate|ddl|plan|apply`` end to end on the retail example and small projects."""

import json
import shutil
from pathlib import Path

import pytest

from crane.cli import run_cli
from crane.config import secrets

RETAIL = Path(__file__).parents[2] / "examples" / "retail"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("CRANE_WAREHOUSE", "TARGET_DB_HOST", "TARGET_DB_NAME", "RETAIL_SOURCE_URL"):
        monkeypatch.delenv(var, raising=False)
    secrets.forget_all()
    yield
    secrets.forget_all()


def crane(capsys, *args):
    code = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the retail project's crane.yml and models, with its own warehouse file."""
    root = tmp_path / "retail"
    root.mkdir()
    (root / "crane.yml").write_text("name: retail\nwarehouse: duckdb:///warehouse.duckdb\n")
    shutil.copytree(RETAIL / "models", root / "models")
    return root


def test_validate_the_retail_example(capsys):
    code, out, err = crane(capsys, "model", "validate", "-p", RETAIL)
    assert code == 0, err
    assert out.strip() == "ok: 5 dimensions, 2 facts, 0 bridges in 2 file(s)"


def test_validate_reports_file_line_and_field(capsys, project):
    (project / "models" / "broken.yml").write_text(
        "facts:\n"
        "  - name: returns\n"
        "    dimensions: [customer, warehouse]\n"
        "    measures:\n"
        "      - {name: reason, type: TEXT}\n"
    )
    code, out, err = crane(capsys, "model", "validate", "-p", project)
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert (
        "models/broken.yml, line 2, field facts[0].grain: fact 'returns' declares no grain"
        in (lines[0])
    )
    assert any(
        "line 3, field facts[0].dimensions[1].dimension: unknown dimension 'warehouse'" in x
        for x in lines
    )
    assert any("line 5, field facts[0].measures[0].type" in x for x in lines)


def test_ddl_prints_the_complete_schema_for_snowflake(capsys):
    code, out, err = crane(capsys, "model", "ddl", "--dialect", "snowflake", "-p", RETAIL)
    assert code == 0, err
    assert 'CLUSTER BY ("order_date_key", "store_key")' in out
    for section in ("-- dimensions, facts and bridges", "-- crane helper tables", "-- sample"):
        assert section in out
    assert '"effective_from" TIMESTAMP NOT NULL' in out and "AUTOINCREMENT" in out


def test_ddl_unknown_dialect_suggests_one(capsys):
    code, _, err = crane(capsys, "model", "ddl", "-d", "bigqury", "-p", RETAIL)
    assert code == 1 and "did you mean 'bigquery'" in err


def test_plan_then_apply_then_nothing_to_do(capsys, project):
    code, out, err = crane(capsys, "model", "plan", "-p", project)
    assert code == 0, err
    assert "+ table gold.fact_sales (fact sales, 10 columns)" in out
    code, out, err = crane(capsys, "model", "apply", "-p", project)
    assert code == 0, err
    assert "applied 9 change(s)" in out
    assert (project / "warehouse.duckdb").exists()
    code, out, _ = crane(capsys, "model", "plan", "--json", "-p", project)
    assert json.loads(out)["changes"] == []
    facts = project / "models" / "facts.yml"
    facts.write_text(
        facts.read_text().replace(
            "      - {name: units_received,",
            "      - {name: units_returned, type: INTEGER}\n      - {name: units_received,",
        )
    )
    code, out, _ = crane(capsys, "model", "plan", "--sql", "-p", project)
    assert "+ column gold.fact_inventory.units_returned INTEGER" in out
    assert 'ALTER TABLE "gold"."fact_inventory" ADD COLUMN "units_returned" INT;' in out


def test_apply_refuses_a_destructive_change_until_allowed(capsys, project):
    assert crane(capsys, "model", "apply", "-p", project)[0] == 0
    facts = project / "models" / "facts.yml"
    facts.write_text(
        facts.read_text().replace(
            "      - {name: units_received, type: INTEGER, additivity: additive}\n", ""
        )
    )
    code, _, err = crane(capsys, "model", "apply", "-p", project)
    assert code == 1 and "destructive change(s) refused" in err and "--allow-destructive" in err
    code, out, err = crane(capsys, "model", "apply", "--allow-destructive", "-p", project)
    assert code == 0, err
    assert "- column gold.fact_inventory.units_received INTEGER" in out


def test_validate_json_lists_the_problems(capsys, project):
    """With --json a failed validate printed only the text error on stderr: CI had
    nothing to parse."""
    (project / "models" / "broken.yml").write_text(
        "facts:\n  - name: returns\n    grain: [order_id]\n    dimensions: [custmer]\n"
    )
    code, out, _ = crane(capsys, "model", "validate", "--json", "-p", project)
    assert code == 1
    found = json.loads(out)
    assert found["ok"] is False
    assert {
        "file": "models/broken.yml",
        "line": 4,
        "field": "facts[0].dimensions[0].dimension",
        "reason": "unknown dimension 'custmer' (did you mean 'customer'?)",
    } in found["problems"]
