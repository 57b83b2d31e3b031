"""``crane profile``: the CLI, and the suggested suite — which must load and run as written."""

from __future__ import annotations

import json

import yaml

from crane.cli import run_cli
from crane.connectors.base import connect
from crane.quality.executor import run_suite
from crane.quality.loader import load_suite
from crane.quality.profile import profile_url
from crane.quality.profile_suggest import suggest, suite_yaml

TABLE = """
CREATE TABLE customers AS
SELECT range AS id,
       'c' || range || '@shop.example' AS email,
       ['NL', 'DE', 'FR'][1 + range % 3] AS country,
       CASE WHEN range % 20 = 0 THEN NULL ELSE range * 2.5 END AS spend,
       'X' || lpad(range::VARCHAR, 5, '0') AS code
FROM range(600)
"""


def make(url: str) -> None:
    with connect(url) as con:
        con.execute(TABLE)


def test_suggestions_carry_reasons(duck_url):
    make(duck_url)
    suggestions = suggest(profile_url(duck_url, "customers"))
    uniques = [s.check["unique"] for s in suggestions if "unique" in s.check]
    assert uniques == ["id", "email", "code"]
    found = {next(iter(s.check)): s for s in suggestions}
    assert "every value distinct" in found["unique"].reason
    assert found["accepted_values"].check["accepted_values"]["values"] == ["DE", "FR", "NL"]
    assert found["format"].check["format"] == {"column": "email", "format": "email"}
    assert found["format"].reason == "email-like 100 %"
    assert found["missing_pct"].check["missing_pct"] == {"column": "spend", "max": 7.6}
    assert found["length"].check["length"] == {"column": "code", "min_length": 6, "max_length": 6}


def test_suggested_suite_loads_and_passes_on_the_profiled_data(duck_url, tmp_path):
    make(duck_url)
    text = suite_yaml([profile_url(duck_url, "customers")], connection="db")
    assert "# no NULLs in 600 rows" in text and "# email-like 100 %" in text
    path = tmp_path / "suggested.yml"
    path.write_text(text)
    suite = load_suite(path, lambda name: duck_url, "db")
    outcome = run_suite(suite)
    assert outcome.error is None
    assert {r.status for r in outcome.results} == {"pass"}, [
        (r.check, r.message) for r in outcome.results if r.status != "pass"
    ]
    assert len(outcome.results) >= 10


def test_cli_profile_json_suggest_and_html(duck_url, tmp_path, capsys):
    make(duck_url)
    out_yaml, out_html = tmp_path / "checks" / "c.yml", tmp_path / "p.html"
    code = run_cli(
        [
            "profile",
            "customers",
            "-c",
            duck_url,
            "--json",
            "--suggest",
            str(out_yaml),
            "--html",
            str(out_html),
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["rows"] == 600 and data["candidate_keys"] == ["id", "email", "code"]
    assert yaml.safe_load(out_yaml.read_text())["tables"]["customers"]["checks"]
    assert "Profile: customers" in out_html.read_text()
    code = run_cli(["profile", "customers", "-c", duck_url])
    shown = capsys.readouterr().out
    assert code == 0 and "600 rows" in shown and "email 100.0%" in shown
