"""``crane profile TABLE``: profile a table in-engine, read-only; optionally suggest checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crane.cli.app import JsonOption, ProjectOption


def profile(
    table: Annotated[str, typer.Argument(help="Table to profile, e.g. orders or raw.orders.")],
    connection: Annotated[
        str | None,
        typer.Option("--connection", "-c", help="Connection name or URL (default: warehouse)."),
    ] = None,
    suggest: Annotated[
        Path | None,
        typer.Option("--suggest", help="Write a starting checks YAML suite here."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    exact: Annotated[
        bool, typer.Option("--exact", help="Exact distinct counts on big tables (slower).")
    ] = False,
    json: JsonOption = False,
    project: ProjectOption = None,
) -> None:
    """Profile TABLE: nulls, distincts, ranges, quantiles, patterns, top values, histograms."""
    from crane.cli.output import print_json
    from crane.quality.profile import profile_url

    url, name = _url(connection, project)
    result = profile_url(url, table, exact_distinct=exact)
    if suggest is not None:
        from crane.quality.profile_suggest import suite_yaml

        suggest.parent.mkdir(parents=True, exist_ok=True)
        suggest.write_text(suite_yaml([result], connection=name))
    if html is not None:
        from crane.quality.report_html import write_html

        write_html(html, title=f"profile of {result.table}", profiles=[result])
    if json:
        print_json(result.to_dict())
        return
    _print(result)
    for path, what in ((suggest, "suggested checks"), (html, "HTML report")):
        if path is not None:
            typer.echo(f"{what}: {path}")


def _url(connection: str | None, project: Path | None) -> tuple[str, str]:
    """(URL, name for the suite file): a URL as given, else a project connection."""
    if connection and "://" in connection:
        return connection, connection
    from crane.project import Project

    loaded = Project.load(project)
    if connection in (None, "warehouse"):
        return loaded.warehouse_url, "warehouse"
    assert connection is not None
    return loaded.connection_url(connection), connection


def _print(result: object) -> None:
    from crane.cli.output import print_table
    from crane.quality.profile import TableProfile

    assert isinstance(result, TableProfile)
    rows = []
    for c in result.columns:
        pattern = c.pattern(0.5)
        top = ", ".join(f"{v} ({n:,})" for v, n in c.top_values[:3])
        rows.append(
            [
                c.name,
                c.type,
                f"{c.null_pct:.2f}",
                c.distinct,
                "" if c.min is None else str(c.min),
                "" if c.max is None else str(c.max),
                c.mean,
                f"{pattern[0]} {100 * pattern[1]:.1f}%" if pattern else "",
                top,
            ]
        )
    keys = ", ".join(result.candidate_keys) or "none"
    title = (
        f"{result.table}: {result.rows:,} rows, {result.duplicate_rows} duplicate rows, "
        f"candidate keys: {keys} ({result.scans} scans, {result.seconds:.2f} s)"
    )
    columns = ["column", "type", "null %", "distinct", "min", "max", "mean", "pattern", "top"]
    print_table(title, columns, rows)
