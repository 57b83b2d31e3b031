"""``crane check`` end to end on a scaffolded project: exit codes, plan, JSON, JUnit."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from crane.cli import run_cli
from crane.config import secrets


@pytest.fixture
def shop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    for var in ("SOURCE_DB_HOST", "SOURCE_DB_NAME", "TARGET_DB_HOST", "CRANE_WAREHOUSE"):
        monkeypatch.delenv(var, raising=False)
    secrets.forget_all()
    assert run_cli(["init", str(tmp_path / "shop")]) == 0
    capsys.readouterr()
    return tmp_path / "shop"


def crane(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_template_suite_covers_every_category_and_passes(shop: Path, capsys) -> None:
    code, out, _ = crane(capsys, "check", "--json", "--project", shop)
    report = json.loads(out)
    assert code == 0, [r for r in report["results"] if r["status"] not in ("pass", "warn")]
    dimensions = {r["dimension"] for r in report["results"]}
    assert dimensions == {
        "completeness",
        "validity",
        "accuracy",
        "consistency",
        "uniqueness",
        "timeliness",
    }
    types = {r["check_type"] for r in report["results"]}
    assert {
        "row_count",
        "referential",
        "reconcile",
        "duplicate_rows",
        "freshness",
        "lag",
        "custom_sql",
        "custom_metric",
        "castable",
        "format",
        "mean",
    } <= types
    warned = [r for r in report["results"] if r["status"] == "warn"]
    assert [r["check_type"] for r in warned] == ["accepted_values"] and warned[0]["sample"]
    assert (shop / ".crane" / "state.sqlite").exists()


def test_plan_prints_checks_to_queries_and_sql(shop: Path, capsys) -> None:
    code, out, _ = crane(capsys, "check", "customers", "--plan", "--project", shop)
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("18 checks → ") and first.endswith("queries")
    assert 'FROM "customers"' in out and "COUNT(*)" in out


def test_failed_error_check_exits_1_with_junit(shop: Path, capsys, tmp_path: Path) -> None:
    con = sqlite3.connect(shop / "data" / "source.sqlite")
    con.execute("UPDATE customers SET email = 'broken' WHERE id = 7")
    con.commit()
    con.close()
    junit = tmp_path / "out" / "junit.xml"
    code, out, _ = crane(capsys, "check", "customers", "--junit", junit, "--project", shop)
    assert code == 1
    assert "fail" in out and "broken" in out  # the failing row sample is shown
    root = ET.parse(junit).getroot()
    assert root.get("tests") == "18" and root.get("failures") == "1"
    failure = root.find(".//testcase/failure")
    assert failure is not None and "broken" in (failure.text or "")


def test_run_failure_exits_2(shop: Path, capsys, tmp_path: Path) -> None:
    suite = tmp_path / "bad.yml"
    suite.write_text("connection: sqlite:///does/not/exist.sqlite\ntables:\n  t: [row_count]\n")
    code, _, err = crane(capsys, "check", "--suite", suite, "--project", shop)
    assert code == 2 and "does not exist" in (err + _)
    suite.write_text("tables:\n  t:\n    - not_a_check: x\n")
    code, _, err = crane(capsys, "check", "--suite", suite, "--project", shop)
    assert code == 2 and "cannot tell the check type" in err


def test_scorecard_history_and_html_report(shop: Path, capsys, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    assert crane(capsys, "check", "customers", "--project", shop)[0] == 0
    con = sqlite3.connect(shop / "data" / "source.sqlite")
    con.execute("UPDATE customers SET email = 'broken' WHERE id < 50")
    con.commit()
    con.close()
    code, out, _ = crane(
        capsys, "check", "customers", "--json", "--html", report, "--project", shop
    )
    assert code == 1
    card = json.loads(out)["scorecard"]["datasets"][0]
    assert card["table"] == "customers" and card["score"] < 100 and card["change"] < 0
    text = report.read_text()
    assert "<html" in text.lower() and "customers" in text and len(text) < 2_000_000


def test_misspelt_table_suggests_the_near_one(shop: Path, capsys) -> None:
    code, _, err = crane(capsys, "check", "custmers", "-p", shop)
    assert code == 2  # could not run (1 means an error-severity check failed)
    assert "tables with checks: customers, orders" in err
    assert "did you mean 'customers'?" in err
