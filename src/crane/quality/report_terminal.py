"""The terminal report: one Rich table (check, status, value, threshold) and a summary.

Rendering only: it reads a `SuiteResult` and never queries anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crane.quality.model import SuiteResult

if TYPE_CHECKING:
    from rich.console import Console

STYLES = {"pass": "green", "warn": "yellow", "fail": "red", "error": "bold magenta"}


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def render(suite: SuiteResult, console: Console, *, samples: bool = True) -> None:
    from rich.table import Table

    table = Table(title=f"crane check: {suite.suite or ''}".strip(), header_style="bold")
    for name in ("check", "status", "value", "threshold", "message"):
        table.add_column(name, justify="right" if name == "value" else "left")
    for result in suite.results:
        style = STYLES.get(result.status, "")
        table.add_row(
            result.check,
            f"[{style}]{result.status}[/]",
            _value(result.value),
            result.threshold or "",
            result.message,
        )
    console.print(table)
    if samples:
        for result in suite.results:
            if result.sample and result.status != "pass":
                console.print(f"[bold]{result.check}[/] failing rows (first {len(result.sample)}):")
                for row in result.sample:
                    console.print(f"  {row}", markup=False)
    counts = suite.counts()
    summary = ", ".join(f"{counts[k]} {k}" for k in ("pass", "warn", "fail", "error") if counts[k])
    console.print(
        f"{len(suite.results)} checks: {summary or 'none'} — {suite.query_count} queries, "
        f"{suite.seconds:.2f}s, run {suite.run_id}"
    )
    if suite.error:
        console.print(f"[bold red]run failed:[/] {suite.error}")
