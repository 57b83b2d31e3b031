"""The pipeline runner: one run = lock, extract to staging, validate, publish, commit state.

The order of a run, and why:

1. take the pipeline's lock (`crane.pipelines.lock`): a second run waits or fails,
   never double-loads;
2. read the saved watermark from ``_crane.watermarks`` in the *target*;
3. plan the extract (`crane.pipelines.extract`) against a commit-safe bound;
4. move the rows into ``_crane_staging.<pipeline>__<table>`` in the target (a
   ``replace`` on DuckDB: ``<table>__crane_staged`` beside the target), inside
   DuckDB when it can reach the source through a scanner, otherwise as a stream
   of bounded Arrow batches (partitions on parallel workers);
5. in ONE target transaction: validate (bad rows to quarantine), apply the
   schema change, publish with the load strategy, write the new watermark and
   the run record; commit.

Steps 1-4 leave nothing that a rerun does not replace, and step 5 is atomic, so
a crash anywhere (`_crash_point` marks the places the tests SIGKILL) followed by
a rerun gives the result of a run that never crashed. Transient errors retry
the whole attempt (`crane.pipelines.retry`); a failed run is still recorded, in
a small transaction of its own, with its error (secrets masked).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from crane.connectors.base import ConnectionURL, TableRef, connect
from crane.console import NullConsole
from crane.pipelines.extract import ExtractContext, ExtractPlan, extract_strategies
from crane.pipelines.lock import pipeline_lock
from crane.pipelines.retry import RetryPolicy, call_with_retries
from crane.pipelines.stage import STAGING_SCHEMA, Staged, drop_staging, stage, transform
from crane.state import store
from crane.state.store import list_runs

if TYPE_CHECKING:
    import pyarrow as pa

    from crane.config.spec import PipelineSpec
    from crane.connectors.base import Connector
    from crane.console import Console
    from crane.pipelines.lineage import LineageDataset, LineageEmitter

CRASH_ENV = "CRANE_TEST_KILL_AT"
# every named point, in run order; "stage:batch" (after the 2nd Arrow batch) belongs to the
# streaming route, "stage:created" to the in-engine one, "stage:part" to parallel parts
CRASH_POINTS = (
    "lock:acquired",
    "extract:planned",
    "stage:batch",
    "stage:created",
    "stage:part",
    "stage:done",
    "transform:done",
    "validate:before",
    "validate:after",
    "schema:after",
    "publish:after",
    "state:watermark",
    "commit:before",
    "commit:after",
)


def _crash_point(name: str) -> None:
    """Test hook: SIGKILL this process at the named point when CRANE_TEST_KILL_AT says so."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class RunResult:
    """What one run did; the same fields land in ``_crane.runs``."""

    run_id: str
    pipeline: str
    status: str = "running"  # "success" | "failed"
    rows_extracted: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    # duplicate_keys: keep_last drops earlier rows of a repeated key on purpose; counted here
    rows_deduplicated: int = 0
    bytes: int = 0
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    throughput: float = 0.0  # rows extracted per second of the whole run
    watermark_before: Any = None
    watermark_after: Any = None
    schema_diff: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 0
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    finished_at: dt.datetime | None = None
    load: dict[str, int] = field(default_factory=dict)  # inserted/updated/deleted...
    window: dict[str, Any] = field(default_factory=dict)
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def seconds(self) -> float:
        end = self.finished_at or dt.datetime.now(dt.UTC)
        return (end - self.started_at).total_seconds()

    def raise_for_status(self) -> RunResult:
        """Re-raise a failed run's error: ``run_pipeline(...).raise_for_status()``."""
        if self.exception is not None:
            raise self.exception
        return self

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("exception")
        data["seconds"] = self.seconds
        data["duration"] = self.seconds
        data["rows_in"] = self.rows_loaded + self.rows_quarantined + self.rows_deduplicated
        return data

    def record(self, *, source: str, target_table: str) -> dict[str, Any]:
        """The ``_crane.runs`` row for this result."""
        return {
            **{k: v for k, v in self.to_dict().items() if k not in ("load", "window")},
            "watermark_before": store.encode(self.watermark_before),
            "watermark_after": store.encode(self.watermark_after),
            "source": source,
            "target_table": target_table,
        }


@dataclass
class _Run:
    """Everything an attempt needs; one per `run_pipeline` call."""

    spec: PipelineSpec
    source_url: str
    target_url: str
    full_refresh: bool
    backfill: tuple[Any, Any] | None
    console: Console
    result: RunResult
    wait: bool = False
    # column schemas for lineage facets, known once rows are staged / published
    input_schema: pa.Schema | None = None
    output_schema: pa.Schema | None = None
    recorded: bool = False  # the failed run's record already committed (quarantine limit)

    @property
    def secrets(self) -> list[str]:
        urls = (ConnectionURL.parse(self.source_url), ConnectionURL.parse(self.target_url))
        return [u.password for u in urls if u.password]

    def mask(self, text: str) -> str:
        from crane.config.secrets import mask

        for secret in self.secrets:
            text = text.replace(secret, "***")
        return mask(text)  # and every secret the project/env made known (H4)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            phases = self.result.phases
            phases[name] = round(phases.get(name, 0.0) + time.perf_counter() - start, 6)


def run_pipeline(
    spec: PipelineSpec,
    *,
    source_url: str,
    target_url: str,
    full_refresh: bool = False,
    wait: bool = False,
    backfill: tuple[Any, Any] | None = None,
    console: Console | None = None,
    lineage: LineageEmitter | None = None,
    retry_policy: RetryPolicy | None = None,
) -> RunResult:
    """Run ``spec`` once, exactly-once: returns the result (``status`` "success" or "failed").

    A run that fails after its retries returns ``status="failed"`` with ``error`` set
    (and is recorded in ``_crane.runs``); call ``raise_for_status()`` to raise it.
    A run refused because another run holds the pipeline's lock raises
    `PipelineLockedError` (nothing ran, nothing is recorded).
    """
    run = _Run(
        spec=spec,
        source_url=source_url,
        target_url=target_url,
        full_refresh=full_refresh,
        backfill=tuple(backfill) if backfill is not None else None,  # type: ignore[arg-type]
        console=console or NullConsole(),
        result=RunResult(run_id=uuid.uuid4().hex, pipeline=spec.name),
        wait=wait,
    )
    policy = retry_policy or RetryPolicy(max_retries=spec.max_retries)
    with pipeline_lock(spec.name, target_url, wait=wait):
        _crash_point("lock:acquired")
        _lineage(run, lineage, "start")
        try:
            call_with_retries(
                lambda number: _attempt(run, number), policy, on_retry=_retry_notice(run)
            )
        except Exception as error:
            _fail(run, error)
            _lineage(run, lineage, "fail")
            return run.result
    _lineage(run, lineage, "complete")
    return run.result


def _retry_notice(run: _Run) -> Any:
    def notice(attempt: int, error: BaseException, sleep: float) -> None:
        run.console.warn(
            f"{run.spec.name}: attempt {attempt} failed ({run.mask(str(error)).splitlines()[0]}); "
            f"retrying in {sleep:.1f}s"
        )

    return notice


def _attempt(run: _Run, number: int) -> None:
    """One whole attempt; nothing it did survives unless its final COMMIT succeeds."""
    result = run.result
    result.attempts = number
    result.phases.clear()
    result.rows_extracted = result.rows_loaded = result.rows_quarantined = result.bytes = 0
    spec = run.spec
    # a source in the warehouse file itself (bronze -> silver) shares the target's one
    # open of that file: DuckDB opens a file once per process, in one mode
    read_only = not _same_duckdb_file(run.source_url, run.target_url)
    with _open_target(run) as target, connect(run.source_url, read_only=read_only) as source:
        with run.phase("plan"):
            store.ensure_state(target)
            if not target.capabilities.transactional_ddl:  # DDL would commit the load early
                from crane.pipelines.validate import ensure_quarantine

                ensure_quarantine(target)
            saved = store.read_watermark(target, spec.name)
            result.watermark_before = saved.value if saved else None
            context = ExtractContext(
                spec, source, saved, run.full_refresh, run.backfill, run.console
            )
            plan = extract_strategies.get(spec.extract.strategy)(context)
            result.window = {k: store.encode(v) for k, v in plan.window.items()}
        _crash_point("extract:planned")
        with run.phase("extract"):
            staged = stage(
                target,
                source,
                plan,
                spec=spec,
                source_url=run.source_url,
                target_url=run.target_url,
                console=run.console,
                crash_point=_crash_point,
            )
        result.rows_extracted, result.bytes = staged.rows, staged.bytes
        run.input_schema = target.table_schema(staged.table)
        _crash_point("stage:done")
        if spec.transform:
            with run.phase("transform"):
                staged = transform(target, staged, spec.transform)
            _crash_point("transform:done")
        _publish(run, target, staged, plan)
        _crash_point("commit:after")
        with contextlib.suppress(Exception):  # a leftover is replaced by the next run anyway
            drop_staging(target, staged)


def _same_duckdb_file(source_url: str, target_url: str) -> bool:
    source, target = ConnectionURL.parse(source_url), ConnectionURL.parse(target_url)
    if source.scheme != "duckdb" or target.scheme != "duckdb":
        return False
    if not source.database or not target.database or ":memory:" in (source.database,):
        return False
    return os.path.realpath(source.database) == os.path.realpath(target.database)


def _open_target(run: _Run) -> Connector:
    """Open the target; with ``wait``, queue behind another *process* writing the same
    DuckDB file (one writer process at a time) instead of spending retries on it."""
    from crane.errors import ConnectorError
    from crane.pipelines.lock import LOCK_KINDS

    queue = run.wait and LOCK_KINDS.get(ConnectionURL.parse(run.target_url).scheme) == "file"
    delay = 0.05
    while True:
        try:
            return connect(run.target_url)
        except ConnectorError as error:
            if not (queue and error.transient):
                raise
            if delay == 0.05:
                run.console.info(
                    f"{run.spec.name}: waiting for the warehouse file ({error.detail})"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def target_table(spec: PipelineSpec, target: Connector) -> TableRef:
    return TableRef(spec.target.table, spec.target.schema_ or target.default_schema)


def _publish(run: _Run, target: Connector, staged: Staged, plan: ExtractPlan) -> None:
    """Validate, evolve the schema, load and write state: one transaction, one COMMIT.

    A batch over ``max_quarantine_ratio`` loads nothing and moves no watermark, but its
    quarantined rows and its failed run record commit, so the hint to inspect
    ``_crane.quarantine`` for the run finds them (a rollback would leave nothing).
    """
    table = target_table(run.spec, target)
    with target.transaction():
        _crash_point("validate:before")
        with run.phase("validate"):
            refused = _validate(run, target, staged)
        if refused is None:
            _crash_point("validate:after")
            _load_and_record(run, target, staged, plan, table)
        else:
            _record_refusal(run, target, table, refused)
    if refused is not None:
        run.recorded = True  # committed: the failure needs no record of its own
        raise refused


def _record_refusal(run: _Run, target: Connector, table: TableRef, error: Exception) -> None:
    result = run.result
    result.status, result.error, result.exception = "failed", run.mask(str(error)), error
    result.rows_loaded = result.rows_deduplicated = 0
    result.watermark_after = result.watermark_before
    _finish(result)
    store.record_run(target, _record(run, table))


def _load_and_record(
    run: _Run, target: Connector, staged: Staged, plan: ExtractPlan, table: TableRef
) -> None:
    spec, result = run.spec, run.result
    with run.phase("schema"):
        columns = _evolve(run, target, staged.table, table)
    _crash_point("schema:after")
    with run.phase("publish"):
        _load(run, target, staged.table, table, plan, columns)
    _crash_point("publish:after")
    started = time.perf_counter()
    if plan.new_watermark is not None:
        store.write_watermark(target, spec.name, plan.new_watermark, result.run_id)
        result.watermark_after = plan.new_watermark.value
    else:
        result.watermark_after = result.watermark_before
    _crash_point("state:watermark")
    result.status = "success"
    result.phases["state"] = round(time.perf_counter() - started, 6)  # so far: recorded too
    _finish(result)
    store.record_run(target, _record(run, table))
    _crash_point("commit:before")


def _validate(run: _Run, target: Connector, staged: Staged) -> Exception | None:
    """Quarantine bad rows; the error refusing the batch if too many were bad."""
    from crane.errors import QuarantineLimitError
    from crane.pipelines.validate import check_ratio, validate_staging

    outcome = validate_staging(
        target,
        staged.table,
        run.spec,
        run_id=run.result.run_id,
        source_name=_source_name(run),
        rows_in=staged.rows,
    )
    run.result.rows_quarantined = outcome.rows_quarantined
    run.result.rows_deduplicated = outcome.rows_deduplicated
    run.result.rows_loaded = outcome.rows_valid
    try:
        check_ratio(outcome, run.spec)
    except QuarantineLimitError as error:
        return error
    return None


def _evolve(run: _Run, target: Connector, staging: TableRef, table: TableRef) -> list[str]:
    """Apply the pipeline's schema policy; returns the staging columns to load."""
    from crane.pipelines.schema import apply_schema_change, diff_schema

    staged_schema = target.table_schema(staging)
    assert staged_schema is not None
    diff = diff_schema(staged_schema, target.table_schema(table))
    columns = apply_schema_change(
        target, table, diff, run.spec.load.on_schema_change, run.spec.name
    )
    change = diff.to_dict()
    run.result.schema_diff = change
    if diff.applied:
        store.record_schema_change(
            target,
            run_id=run.result.run_id,
            pipeline=run.spec.name,
            table=str(table),
            diff=change,
            statements=list(diff.applied),
        )
    run.output_schema = target.table_schema(table)
    # a policy that discards new columns leaves them out of the load
    return columns


def _load(
    run: _Run,
    target: Connector,
    staging: TableRef,
    table: TableRef,
    plan: ExtractPlan,
    columns: list[str],
) -> None:
    from crane.pipelines.load import load_strategies

    name = run.spec.load.strategy
    if run.full_refresh and name == "append":
        name = "replace"  # a full refresh rebuilds an append-only table instead of doubling it
    strategy = load_strategies.get(name)
    outcome = strategy(
        target,
        staging,
        table,
        run.spec.load,
        columns=columns,
        full_extract=plan.full_extract,
        run_at=run.result.started_at,
        changed_by=plan.changed_by,
    )
    run.result.load = outcome.to_dict()
    if run.output_schema is None:  # a first load created the table: its schema is the facet
        run.output_schema = target.table_schema(table)


def _finish(result: RunResult) -> None:
    result.finished_at = dt.datetime.now(dt.UTC)
    seconds = max(result.seconds, 1e-9)
    result.throughput = round(result.rows_extracted / seconds, 1)


def _source_name(run: _Run) -> str:
    url = ConnectionURL.parse(run.source_url).masked
    what = run.spec.source.table or "query"
    return f"{url}#{what}"


def _record(run: _Run, table: TableRef) -> dict[str, Any]:
    return run.result.record(source=_source_name(run), target_table=str(table))


def _fail(run: _Run, error: BaseException) -> None:
    """Mark the run failed and record it in a small transaction of its own."""
    result = run.result
    result.status = "failed"
    result.error = run.mask(str(error))
    result.exception = error
    if run.recorded:  # recorded with its quarantined rows, in the run's own transaction
        return
    # the attempt's transaction rolled back: nothing was loaded or quarantined
    result.rows_loaded = result.rows_quarantined = result.rows_deduplicated = 0
    _finish(result)
    try:
        with connect(run.target_url) as target, target.transaction():
            store.ensure_state(target)
            table = target_table(run.spec, target)
            store.record_run(
                target, result.record(source=_source_name(run), target_table=str(table))
            )
    except Exception as record_error:  # the target itself may be what failed
        run.console.warn(f"{run.spec.name}: could not record the failed run: {record_error}")


def _lineage(run: _Run, lineage: LineageEmitter | None, event: str) -> None:
    if lineage is None:
        return
    inputs, outputs = _datasets(run)
    spec, result = run.spec, run.result
    if event == "start":
        lineage.start(result.run_id, spec.name, inputs, outputs)
    elif event == "complete":
        lineage.complete(result.run_id, spec.name, inputs, outputs)
    else:
        lineage.fail(result.run_id, spec.name, result.error or "failed", inputs, outputs)


def _datasets(run: _Run) -> tuple[list[LineageDataset], list[LineageDataset]]:
    from crane.pipelines.lineage import LineageDataset

    spec, result = run.spec, run.result
    source = (
        spec.source.table
        or f"query_{hashlib.sha1(str(spec.source.query).encode()).hexdigest()[:8]}"
    )
    if spec.source.table and spec.source.schema_:
        source = f"{spec.source.schema_}.{spec.source.table}"
    table = (
        f"{spec.target.schema_}.{spec.target.table}" if spec.target.schema_ else spec.target.table
    )
    inputs = [LineageDataset.from_table(run.source_url, source, run.input_schema)]
    rows = result.rows_loaded if result.status == "success" else None
    outputs = [
        LineageDataset.from_table(
            run.target_url, table, run.output_schema, rows=rows, bytes=result.bytes or None
        )
    ]
    return inputs, outputs


__all__ = ["CRASH_ENV", "CRASH_POINTS", "STAGING_SCHEMA", "RunResult", "list_runs", "run_pipeline"]
