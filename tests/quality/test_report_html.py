"""The HTML report: self-contained, small, and rendered by a real headless Chromium."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from crane.connectors.base import connect
from crane.quality.anomaly import AnomalyConfig
from crane.quality.executor import run_suite
from crane.quality.loader import build_suite
from crane.quality.profile import profile_url
from crane.quality.report_html import histogram_svg, render_html, trend, write_html
from crane.quality.score import scorecard

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
]


def wide_table(url: str, columns: int = 50, rows: int = 2000) -> None:
    """``columns`` columns mixing numbers, text, dates; defects for failing checks."""
    parts = ["range AS id"]
    for i in range(1, columns):
        kind = i % 4
        if kind == 0:
            parts.append(f"(range * {i}) % 997 - 10 AS n{i}")
        elif kind == 1:
            parts.append(
                f"CASE WHEN range % {i + 7} = 0 THEN NULL ELSE 'v' || (range % {i + 3}) END AS s{i}"
            )
        elif kind == 2:
            parts.append(f"DATE '2024-01-01' + ((range * {i}) % 365)::INT AS d{i}")
        else:
            parts.append(
                f"'user' || range || CASE WHEN range % 50 = 0 THEN '' ELSE '@x.org' END AS e{i}"
            )
    with connect(url) as con:
        con.execute(f"CREATE TABLE wide AS SELECT {', '.join(parts)} FROM range({rows})")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("report")
    url = f"duckdb:///{tmp / 'w.duckdb'}"
    wide_table(url)
    profile = profile_url(url, "wide")
    specs = [
        {"type": "row_count", "table": "wide", "min": 1},
        {"type": "not_null", "table": "wide", "columns": ["id", "s1", "s5"]},
        {"type": "format", "table": "wide", "column": "e3", "format": "email"},
        {"type": "unique", "table": "wide", "column": "id"},
        {"type": "range", "table": "wide", "column": "n4", "min": 0, "severity": "warn"},
    ]
    outcome = run_suite(build_suite(specs, {"db": url}, sample_rows=5))
    start = dt.datetime(2024, 1, 1)
    history = [(start + dt.timedelta(days=i), 1000.0 + (i % 5)) for i in range(30)]
    history.append((start + dt.timedelta(days=30), 1900.0))  # an anomaly to draw
    trends = [trend("wide", "row_count", None, history, AnomalyConfig(min_history=5))]
    path = write_html(
        tmp / "report.html",
        title="wide report",
        suite=outcome,
        scorecard=scorecard(outcome.results),
        profiles=[profile],
        trends=trends,
    )
    return path, path.read_text()


def test_report_is_self_contained_and_small(report):
    path, text = report
    assert path.stat().st_size < 2 * 1024 * 1024
    # nothing fetched from anywhere: no http(s) resources, no external scripts or styles
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert "<script src" not in text and '<link rel="stylesheet"' not in text
    assert text.count('class="col"') >= 50  # one card per profiled column (+ trends)
    assert text.count("<svg") == 13 + 12 + 1  # numeric + date histograms, and the trend
    assert "e3" in text and "email" in text and "failing row(s)" in text
    assert 'class="dot anomaly"' in text  # the injected spike is marked
    assert "Scorecard" in text


def test_values_are_escaped():
    from crane.quality.model import CheckResult, SuiteResult

    evil = CheckResult(
        "x", "t", "custom_sql", "validity", status="fail", message="<script>alert(1)</script>"
    )
    text = render_html(suite=SuiteResult(results=[evil]))
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)" in text


def test_histogram_svg_bars():
    from crane.quality.profile import Bin

    svg = histogram_svg([Bin(0, 1, 5), Bin(1, 2, 10)])
    assert svg.count("<rect") == 2 and 'height="60.0"' in svg


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    profile_dir = tmp / f"profile-{len(list(tmp.iterdir()))}"  # a fresh --user-data-dir each run
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile_dir}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (run scripts/setup_browser.sh)"
)
def test_report_renders_in_headless_chromium(report, tmp_path):
    path, _ = report
    shot = tmp_path / "report.png"
    run = _chromium([f"--screenshot={shot}", "--window-size=1400,3000", path.as_uri()], tmp_path)
    assert shot.exists() and shot.stat().st_size > 20_000, run.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _console_errors(run.stderr) == []
    dom = _chromium(["--dump-dom", path.as_uri()], tmp_path)
    assert 'data-ready="1"' in dom.stdout  # the inline script ran to the end
    assert _console_errors(dom.stderr) == []
    assert "Profile: wide" in dom.stdout


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (run scripts/setup_browser.sh)"
)
def test_console_error_detection_catches_a_broken_page(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>missingFunction();</script></body></html>")
    run = _chromium(["--dump-dom", page.as_uri()], tmp_path)
    assert any("missingFunction" in line for line in _console_errors(run.stderr))


def test_run_report_scores_records_and_draws_trends(tmp_path):
    from crane.quality.report_html import write_run_report
    from crane.state.quality import QualityStore

    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    with connect(url) as con:
        con.execute("CREATE TABLE t AS SELECT range AS id FROM range(10)")
    store = QualityStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    suite = build_suite([{"type": "not_null", "table": "t", "column": "id"}], {"db": url})
    for _ in range(3):
        outcome = run_suite(suite, store)
        path, card = write_run_report(tmp_path / "r.html", outcome, store)
    assert card.dataset("t").score == 100.0 and card.dataset("t").previous == 100.0
    assert len(store.metric_history("t", None, "quality_score")) == 3
    text = path.read_text()
    assert "t: row_count" in text and "Scorecard" in text  # the row-count trend is drawn
    assert "t: quality_score" in text
