"""``crane check``: run the quality suites of a project, read-only, and report.

Exit codes: 0 every check passed (warnings allowed), 1 an error-severity check
failed or errored, 2 the run itself failed (bad suite, unreachable database).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crane.cli.app import DebugOption, JsonOption, ProjectOption

if TYPE_CHECKING:
    from crane.project import Project
    from crane.quality.loader import Suite
    from crane.quality.model import SuiteResult
    from crane.state.quality import QualityStore

EXIT_RUN_FAILED = 2


def check(
    table: Annotated[str | None, typer.Argument(help="Only the checks of this table.")] = None,
    suite: Annotated[
        Path | None, typer.Option("--suite", help="A suite file (default: checks/*.yml).")
    ] = None,
    plan: Annotated[
        bool, typer.Option("--plan", help="Print 'N checks → K queries' and the SQL; run nothing.")
    ] = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the HTML report (scorecard, trends) here.")
    ] = None,
    store: Annotated[
        str | None, typer.Option("--store", help="History store URL (default .crane/state.sqlite).")
    ] = None,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="Do not record this run.")
    ] = False,
    json: JsonOption = False,
    debug: DebugOption = False,
    project: ProjectOption = None,
) -> None:
    """Run data quality checks read-only; report pass/warn/fail per check."""
    from crane.cli.output import print_json, report_error
    from crane.errors import CraneError

    try:
        loaded, checks = _load(project, suite, table)
        if plan:
            _print_plan(checks, json)
            return
        outcome, history = _run(loaded, checks, store, no_history)
        card = _scorecard(outcome, history)
        if html is not None:
            _write_html(html, outcome, card, history, checks)
    except CraneError as error:
        report_error(error, debug)
        raise typer.Exit(EXIT_RUN_FAILED) from None
    if junit is not None:
        from crane.quality.junit import write_junit

        write_junit(outcome, junit)
    if json:
        print_json({**outcome.to_dict(), "scorecard": card.to_dict() if card else None})
    else:
        from rich.console import Console

        from crane.quality.report_terminal import render

        terminal = Console()
        render(outcome, terminal)
        _print_scores(card, terminal)
    raise typer.Exit(outcome.exit_code())


def _load(
    project_dir: Path | None, suite_file: Path | None, table: str | None
) -> tuple[Project, Suite]:
    from crane.errors import ConfigError
    from crane.project import Project
    from crane.quality.loader import find_suites, load_suite, merge_suites

    loaded = Project.load(project_dir)

    def resolve(name: str) -> str:
        if name == "warehouse":
            return loaded.warehouse_url
        return loaded.resolve_url(name) if "://" in name else loaded.connection_url(name)

    paths = [suite_file] if suite_file else find_suites(loaded.root)
    if not paths:
        raise ConfigError(f"no check suites in {loaded.root / 'checks'}", hint="add checks/*.yml")
    suites = [load_suite(Path(p), resolve, "warehouse") for p in paths]
    merged = merge_suites(suites)
    if table:
        selected = merged.select(table)
        if not selected.checks:
            import difflib

            tables = sorted({c.spec.table for c in merged.checks})
            close = difflib.get_close_matches(table, tables, n=3)
            raise ConfigError(
                f"no checks for table {table!r}; tables with checks: {', '.join(tables)}",
                table=table,
                hint=f"did you mean {', '.join(map(repr, close))}?" if close else None,
            )
        merged = selected
    return loaded, merged


def _print_plan(suite: Suite, json: bool) -> None:
    from crane.cli.output import print_json
    from crane.config.secrets import mask
    from crane.quality.executor import plan_suite

    built, ctx = plan_suite(suite)
    statements = built.statements(ctx)
    if json:
        print_json(
            {
                "checks": len(built.checks),
                "queries": built.query_count,
                "summary": built.summary(),
                "statements": [{"connection": c, "sql": s} for c, s in statements],
            }
        )
        return
    typer.echo(built.summary())
    for connection, sql in statements:
        typer.echo(f"-- {mask(connection)}\n{sql};")


def _run(
    loaded: Project, suite: Suite, store_url: str | None, no_history: bool
) -> tuple[SuiteResult, QualityStore | None]:
    from crane.quality.executor import run_suite
    from crane.state.quality import QualityStore, default_url

    store = None if no_history else QualityStore(store_url or default_url(loaded.root))
    return run_suite(suite, store), store


def _scorecard(outcome: SuiteResult, store: QualityStore | None) -> Any:
    """Per-dataset scores (0–100, per dimension), compared with and stored beside history."""
    if not outcome.results:
        return None
    from crane.quality.score import record_scores, scorecard

    card = scorecard(outcome.results, store=store, run_id=outcome.run_id)
    if store is not None:
        record_scores(store, card, outcome.run_id)
    return card


def _print_scores(card: Any, terminal: Any) -> None:
    if card is None:
        return
    for dataset in card.datasets:
        change = f" ({dataset.change:+g} vs previous run)" if dataset.change is not None else ""
        flag = " [bold red]DEGRADED[/]" if dataset.degraded else ""
        terminal.print(f"score {dataset.table}: {dataset.score:g}/100{change}{flag}")


def _write_html(
    path: Path, outcome: SuiteResult, card: Any, store: QualityStore | None, suite: Suite
) -> None:
    from crane.quality.report_html import trends_from_store, write_html

    trends = []
    if store is not None:
        keys = [(m.dataset, m.column, m.metric) for m in outcome.metrics if m.filter is None]
        trends = trends_from_store(store, keys)
    write_html(
        path, title=f"crane check: {suite.name}", suite=outcome, scorecard=card, trends=trends
    )
