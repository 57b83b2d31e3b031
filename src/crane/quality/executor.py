"""Run a suite: fused scans, bisection on errors, samples only for failures, history.

Order of work, and why:

1. open one read-only session per connection (`readonly.py`);
2. fetch column lists only for checks that need a schema (``LIMIT 0``);
3. run one fused aggregate query per scan (`compiler.py`). If it fails, first ask
   whether the scan itself is broken (missing table, bad filter: every check on it
   errors with that reason); otherwise split the columns in halves until the
   failing expressions are isolated, so one bad check never takes its bundle
   down (LESSONS.md, GX #10709);
4. run probes and cross-connection checks, each isolated;
5. judge every check; for those that did not pass, fetch a bounded sample of
   failing rows (when samples are on), and precise figures only for checks whose
   aggregates could not give them (``needs_detail``) — and only for those;
6. record results and metrics in the quality store.

>>> from crane.quality.loader import build_suite
>>> suite = build_suite([{"type": "row_count", "table": "t"}], {"db": "duckdb:///:memory:"})
>>> result = run_suite(suite)
>>> result.results[0].status, result.results[0].message.split(":")[0]
('error', 'Catalog Error')
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crane.connectors.base import TableRef
from crane.errors import CraneError
from crane.quality.checks.base import Check, Context, Probe
from crane.quality.compiler import ROW_COUNT, Bundle, Plan, compile_plan
from crane.quality.dialects import dialect_for
from crane.quality.loader import Suite
from crane.quality.model import CheckResult, MetricRecord, SuiteResult, jsonable, new_run_id
from crane.quality.readonly import QueryError, ReadOnlySession

if TYPE_CHECKING:
    from crane.state.quality import QualityStore


def open_sessions(suite: Suite, guard: bool = True) -> dict[str, ReadOnlySession]:
    sessions: dict[str, ReadOnlySession] = {}
    try:
        for name in _used_connections(suite):
            sessions[name] = ReadOnlySession(
                suite.connections.get(name, name), guard_statements=guard
            )
    except BaseException:
        for session in sessions.values():
            session.close()
        raise
    return sessions


def _used_connections(suite: Suite) -> list[str]:
    names: list[str] = []
    for check in suite.checks:
        for name in (check.connection, check.options.get("to_connection")):
            if name and name not in names:
                names.append(str(name))
    return names


def context(suite: Suite, store: QualityStore | None = None, run_id: str = "") -> Context:
    dialects = {
        name: dialect_for(suite.connections.get(name, name).split(":", 1)[0])
        for name in _used_connections(suite)
    }
    return Context(dialects, store=store, run_id=run_id, sample_rows=suite.sample_rows)


def fetch_schemas(suite: Suite, ctx: Context) -> None:
    """Column lists of the tables whose checks need them (one cheap query per table)."""
    for check in suite.checks:
        key = (check.connection, check.spec.table)
        if not check.needs_schema or key in ctx.schemas:
            continue
        query = exp.select("*").from_(TableRef.parse(check.spec.table).expression()).limit(0)
        try:
            names, _ = ctx.session(check.connection).fetch(query)
        except CraneError:
            names = []
        ctx.schemas[key] = names


def plan_suite(suite: Suite, store: QualityStore | None = None) -> tuple[Plan, Context]:
    """The plan of a suite (``crane check --plan``); connects only to read schemas."""
    ctx = context(suite, store)
    if any(c.needs_schema for c in suite.checks):
        ctx.sessions = open_sessions(suite)
        try:
            fetch_schemas(suite, ctx)
        finally:
            _close(ctx)
    plan = compile_plan(suite.checks, ctx)
    tables = {(c.connection, c.spec.table): None for c in suite.checks if c.needs_schema}
    for connection, table in tables:
        query = exp.select("*").from_(TableRef.parse(table).expression()).limit(0)
        plan.schema_sql.append((connection, ctx.dialect(connection).render(query)))
    return plan, ctx


def run_suite(
    suite: Suite,
    store: QualityStore | None = None,
    *,
    guard: bool = True,
    on_result: Callable[[CheckResult], None] | None = None,
) -> SuiteResult:
    """Run every check of ``suite`` read-only; record the run in ``store`` if given."""
    started = time.perf_counter()
    outcome = SuiteResult(run_id=new_run_id(), suite=suite.name)
    ctx = context(suite, store, outcome.run_id)
    try:
        ctx.sessions = open_sessions(suite, guard)
    except CraneError as error:
        outcome.error = str(error)
        outcome.seconds = time.perf_counter() - started
        return outcome
    try:
        _execute(suite, ctx, outcome)
    finally:
        for session in ctx.sessions.values():
            outcome.queries.extend(session.queries)
        _close(ctx)
    outcome.seconds = time.perf_counter() - started
    if on_result:
        for result in outcome.results:
            on_result(result)
    if store is not None:
        store.record(outcome)
    return outcome


def _close(ctx: Context) -> None:
    for session in ctx.sessions.values():
        session.close()


def _execute(suite: Suite, ctx: Context, outcome: SuiteResult) -> None:
    fetch_schemas(suite, ctx)
    plan = compile_plan(suite.checks, ctx)
    values: list[dict[str, Any]] = [{} for _ in suite.checks]
    errors: dict[int, tuple[str, str | None]] = {i: (m, None) for i, m in plan.errors.items()}
    for bundle in plan.bundles:
        got, failed = run_bundle(bundle, ctx)
        ctx.scanned[bundle.scan] = int(got.get(ROW_COUNT) or 0)
        _spread(bundle, got, failed, values, errors, outcome)
    for step in plan.probes:
        _size_groups(ctx, suite.checks[step.check], step.probe)
        try:
            rows = _rows(ctx, step.probe)
            values[step.check][step.name] = rows[0] if rows else {}
            values[step.check][f"{step.name}_rows"] = rows
        except CraneError as error:
            errors.setdefault(step.check, (error.detail, _render(ctx, step.probe)))
    for index in plan.local:
        try:
            values[index].update(suite.checks[index].local(ctx))
        except Exception as error:
            errors.setdefault(index, (f"{type(error).__name__}: {error}", None))
    for index, check in enumerate(suite.checks):
        result = _judge(check, values[index], errors.get(index), ctx, suite.sample_rows)
        outcome.results.append(result)
        _metrics(check, values[index], result, outcome)


def run_bundle(bundle: Bundle, ctx: Context) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """Values by alias, and (error, SQL) by alias for the expressions that failed."""
    session = ctx.session(bundle.scan.connection)
    aliases = list(bundle.columns)
    try:
        return _fetch(session, bundle, aliases, ctx), {}
    except QueryError as error:
        whole = error.detail
    try:  # is the scan itself broken? then every check on it shares the reason
        base = _fetch(session, bundle, [ROW_COUNT], ctx)
    except QueryError as error:
        sql = bundle.sql(ctx.dialect(bundle.scan.connection), [ROW_COUNT])
        return {}, dict.fromkeys(aliases, (error.detail, sql))
    got: dict[str, Any] = dict(base)
    failed: dict[str, tuple[str, str]] = {}
    _bisect(session, bundle, [a for a in aliases if a != ROW_COUNT], ctx, got, failed, whole)
    return got, failed


def _bisect(
    session: ReadOnlySession,
    bundle: Bundle,
    aliases: list[str],
    ctx: Context,
    got: dict[str, Any],
    failed: dict[str, tuple[str, str]],
    known_error: str | None,
) -> None:
    if not aliases:
        return
    if known_error is None:
        try:
            got.update(_fetch(session, bundle, aliases, ctx))
            return
        except QueryError as error:
            known_error = error.detail
    if len(aliases) == 1:
        failed[aliases[0]] = (known_error, bundle.sql(ctx.dialect(bundle.scan.connection), aliases))
        return
    middle = len(aliases) // 2
    _bisect(session, bundle, aliases[:middle], ctx, got, failed, None)
    _bisect(session, bundle, aliases[middle:], ctx, got, failed, None)


def _fetch(
    session: ReadOnlySession, bundle: Bundle, aliases: list[str], ctx: Context
) -> dict[str, Any]:
    names, rows = session.fetch(bundle.query(session.dialect, aliases))
    row = rows[0] if rows else (None,) * len(names)
    return dict(zip(aliases, row, strict=False))


def _spread(
    bundle: Bundle,
    got: dict[str, Any],
    failed: dict[str, tuple[str, str]],
    values: list[dict[str, Any]],
    errors: dict[int, tuple[str, str | None]],
    outcome: SuiteResult,
) -> None:
    if ROW_COUNT in got:
        scan = bundle.scan
        outcome.metrics.append(
            MetricRecord(
                scan.table, "row_count", got[ROW_COUNT], None, scan.filter, run_id=outcome.run_id
            )
        )
    for alias, users in bundle.users.items():
        for index, local_name in users:
            if index < 0:
                continue
            if alias in failed:
                errors.setdefault(index, failed[alias])
            else:
                values[index][local_name] = got.get(alias)


def _size_groups(ctx: Context, check: Check, probe: Probe) -> None:
    """Let the engine pick its grouping for the size of the scan the probe groups."""
    rows = ctx.scanned.get(check.scan, 0)
    ctx.session(probe.connection).group_keys_in_arrays(rows)


def _rows(ctx: Context, probe: Probe, limit: int | None = None) -> list[dict[str, Any]]:
    names, rows = ctx.session(probe.connection).fetch(probe.query, limit=limit)
    return [dict(zip(names, row, strict=False)) for row in rows]


def _render(ctx: Context, probe: Probe) -> str:
    query = probe.query
    return query if isinstance(query, str) else ctx.dialect(probe.connection).render(query)


def _judge(
    check: Check,
    values: dict[str, Any],
    error: tuple[str, str | None] | None,
    ctx: Context,
    sample_rows: int,
) -> CheckResult:
    if error is not None:
        return check.errored(error[0], error[1])
    try:
        result = check.evaluate(values, ctx)
        # precise figures only when the check asks (its aggregate could not decide):
        # a detail query may cost as much as the whole fused scan
        if result.details.get("needs_detail") and "detail" not in values:
            detail = check.detail(values, ctx)
            if detail is not None:
                _size_groups(ctx, check, detail)
                rows = _rows(ctx, detail)
                values["detail"], values["detail_rows"] = (rows[0] if rows else {}), rows
                result = check.evaluate(values, ctx)
        limit = check.spec.sample_rows if check.spec.sample_rows is not None else sample_rows
        if check.sample_from_detail:
            if result.status in ("fail", "warn") and limit > 0:
                rows = values.get("detail_rows") or []
                result.sample = [_without(row, TOTALS) for row in rows]
            result.details.pop("needs_detail", None)
            result.sql = _render(ctx, check.detail(values, ctx) or Probe(check.connection, ""))
            return result
        probe = check.sample(ctx, max(limit, 1), values)
        result.sql = _render(ctx, probe) if probe is not None else _own_sql(check, ctx)
        if result.status in ("fail", "warn") and probe is not None and limit > 0:
            result.sample = [jsonable(row) for row in _rows(ctx, probe, limit)]
    except CraneError as failure:
        return check.errored(failure.detail, getattr(failure, "sql", None))
    except Exception as failure:
        return check.errored(f"{type(failure).__name__}: {failure}")
    result.details.pop("needs_detail", None)
    return result


TOTALS = ("duplicated_values", "duplicate_rows")  # columns of a duplicate detail, not sample


def _own_sql(check: Check, ctx: Context) -> str | None:
    """The check's own figures as a stand-alone query (what the fused scan computed for it)."""
    aggregates = check.aggregates(ctx)
    if not aggregates:
        probes = check.probes(ctx)
        return _render(ctx, next(iter(probes.values()))) if probes else None
    scan = next(iter(aggregates.values()))[0]
    dialect = ctx.dialect(scan.connection)
    rows = {n: e for n, (s, e) in check.row_columns(ctx).items() if s == scan}
    if rows:  # the aggregates read row columns: the bundle's derived-table shape
        bundle = Bundle(scan, row_columns=rows)
        bundle.columns = {n: e for n, (s, e) in aggregates.items() if s == scan}
        return dialect.render(bundle.query(dialect))
    mine = [exp.alias_(e, name) for name, (s, e) in aggregates.items() if s == scan]
    return dialect.render(scan.select(dialect.name, *mine))


def _without(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return jsonable({k: v for k, v in row.items() if k not in keys})


def _metrics(
    check: Check, values: dict[str, Any], result: CheckResult, outcome: SuiteResult
) -> None:
    if result.status == "error":
        return
    try:
        found = check.metrics(values)
    except Exception:
        return
    for name, value in found.items():
        if value is None:
            continue
        outcome.metrics.append(
            MetricRecord(
                check.spec.table,
                name,
                float(value),
                check.spec.column,
                check.spec.filter,
                run_id=outcome.run_id,
            )
        )
