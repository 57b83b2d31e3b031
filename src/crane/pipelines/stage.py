"""Moving extracted rows into the target's staging area, by the fastest route available.

Routes, chosen by what the two ends declare (never by their names):

* **in-engine**: the target is DuckDB and the source can be ATTACHed by a DuckDB
  scanner. Rows never enter Python: ``CREATE TABLE staging AS SELECT ... FROM
  <attached source> WHERE <window>``. The PostgreSQL scanner pushes the WHERE
  down into its ``COPY (SELECT ... WHERE ...)``. A source that offers an *exact*
  scan of a table (``duckdb_scan``: e.g. unconstrained numerics cast without
  rounding) is used for unfiltered reads; filtered reads of such a source take
  the streaming route, which runs the window inside the source's own query.
  A window of a source offering ``duckdb_window_scan`` is one query the source
  runs itself (PostgreSQL: ``postgres_query``), staged in a TEMP table of the
  publishing connection when the target has ``temp_staging``; a full extract of a
  source naming its mostly-distinct text columns (``distinct_text_columns``) is
  staged with their compression declared (``create_as``).
* **streaming**: ``source.read(query, batch_size)`` yields bounded Arrow batches
  that ``target.write`` bulk-loads (COPY, Arrow scans); Python only hands batches
  over, never loops over rows.

A connector may decline the in-engine route (``capabilities.duckdb_in_engine``:
MySQL/MariaDB, whose connectorx reader beat DuckDB's mysql scanner 2-4x); a
``replace`` into a target declaring ``replace_by_rename`` stages beside the
target table (``<table>__crane_staged``) so publishing renames instead of copying.

Partitioned plans run one part per worker thread, each with its own connections,
into ``<staging>__p<i>`` tables that are then concatenated. Staging tables are
always *replaced*, so the leftovers of a crashed run never leak into a rerun.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crane.connectors.base import TEMP_SCHEMA, TableRef, connect
from crane.pipelines.extract import source_relation, source_table

if TYPE_CHECKING:
    import pyarrow as pa

    from crane.config.spec import PipelineSpec
    from crane.connectors.base import Connector
    from crane.console import Console
    from crane.pipelines.extract import ExtractPlan

STAGING_SCHEMA = "_crane_staging"
BYTES_SAMPLE_ROWS = 2048
# scanner settings for windowed reads of part of a table, by DuckDB attach type. The
# postgres scanner splits a table scan into ctid ranges, which turns an indexed window
# query into a full sequential scan; one plain query with the pushed-down WHERE uses the
# index. A window over the whole table (an incremental first run) keeps the ranges.
FILTERED_SCAN_SETTINGS: dict[str, dict[str, str]] = {"postgres": {"pg_use_ctid_scan": "false"}}


@dataclass
class Staged:
    """A staging table holding this run's rows, and whatever else to drop afterwards."""

    table: TableRef
    rows: int
    bytes: int
    leftovers: list[TableRef] = field(default_factory=list)


@dataclass
class _Counter:
    rows: int = 0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rows: int, nbytes: int) -> None:
        with self.lock:
            self.rows += rows
            self.bytes += nbytes


def staging_table(spec: PipelineSpec, target: Connector | None = None) -> TableRef:
    """``_crane_staging.<pipeline>__<table>`` (cut to 40 bytes plus a hash when longer);
    beside the target table instead when the load can rename the staged table into place
    rather than write every row a second time: a ``replace``, or the first load of any
    strategy (no target yet), without a transform, into a target that declares
    ``replace_by_rename``."""
    if target is not None:
        beside = _beside_target(spec, target)
        if beside is not None:
            return beside
    return TableRef(_fitting(f"{spec.name}__{spec.target.table}"), STAGING_SCHEMA)


# Staging names get suffixes (``__crane_typed``, ``__crane_present``, ``__p<i>``), and
# PostgreSQL cuts a name at 63 bytes: a long ``<pipeline>__<table>`` made the suffixed
# name cut back to the staging table's own, so "drop the helper" dropped staging.
STAGING_NAME_BYTES = 40


def _fitting(name: str) -> str:
    """``name``, or its start plus a hash of the whole when longer than the engines keep
    with room for a suffix (distinct long names stay distinct)."""
    if len(name.encode()) <= STAGING_NAME_BYTES:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    start = name.encode()[: STAGING_NAME_BYTES - 9].decode(errors="ignore")
    return f"{start}_{digest}"


def _beside_target(spec: PipelineSpec, target: Connector) -> TableRef | None:
    if spec.transform or not target.capabilities.replace_by_rename:
        return None
    from crane.pipelines.load import replace_staging

    table = TableRef(spec.target.table, spec.target.schema_ or target.default_schema)
    if spec.load.strategy == "replace" or target.table_schema(table) is None:
        return replace_staging(table)
    return None


def stage(
    target: Connector,
    source: Connector,
    plan: ExtractPlan,
    *,
    spec: PipelineSpec,
    source_url: str,
    target_url: str,
    console: Console,
    crash_point: Callable[[str], None],
) -> Staged:
    """Fill the staging table with the plan's rows; returns where and how many."""
    table = staging_table(spec, target)
    _create_schema(target, STAGING_SCHEMA)
    if table.schema and table.schema != STAGING_SCHEMA:
        _create_schema(target, table.schema)
    if len(plan.filters) > 1 and plan.full_extract and _attachable(target, source, spec):
        # DuckDB's scanners split one table scan into physical ranges (PostgreSQL: ctid)
        # on parallel connections; measured faster than key ranges, which each cost
        # the server a scan of their own and need a final copy into one table
        plan = replace(plan, filters=[None])
    mover = _Mover(target, source, plan, spec, source_url, target_url, console, crash_point)
    if mover.temp_staging(target, table):
        table = TableRef(table.name, TEMP_SCHEMA)
    console.start_task(spec.name)
    try:
        if len(plan.filters) == 1:
            rows = mover.move(0, table, target, source)
        else:
            rows = mover.parallel(table)
    finally:
        console.finish_task(spec.name)
        if mover.alias:
            _detach(target, mover.alias)
    nbytes = mover.counter.bytes or _estimate_bytes(target, table, rows)
    return Staged(table, rows, nbytes)


def _attachable(target: Connector, source: Connector, spec: PipelineSpec) -> bool:
    has_table = source_table(spec, source) is not None
    return has_table and hasattr(target, "attach") and _scannable(source)


def _scannable(source: Connector) -> bool:
    """The source can be ATTACHed and declares the scanner its fastest route."""
    return source.capabilities.duckdb_in_engine and source.duckdb_attach() is not None


class _Mover:
    """Moves one part of a plan into one table by the route the two ends allow."""

    def __init__(
        self,
        target: Connector,
        source: Connector,
        plan: ExtractPlan,
        spec: PipelineSpec,
        source_url: str,
        target_url: str,
        console: Console,
        crash_point: Callable[[str], None],
    ) -> None:
        self.plan, self.spec = plan, spec
        self.source_url, self.target_url = source_url, target_url
        self.console, self.crash_point = console, crash_point
        self.counter = _Counter()
        self.filtered = any(f is not None for f in plan.filters)
        attach = source.duckdb_attach() if source.capabilities.duckdb_in_engine else None
        self.settings = FILTERED_SCAN_SETTINGS.get(attach[0], {}) if attach else {}
        self.alias: str | None = None
        self.relation = self._in_engine_relation(target, source)

    # -- route choice ------------------------------------------------------------
    def _in_engine_relation(self, target: Connector, source: Connector) -> exp.Expr | None:
        """The source as DuckDB sees it once attached, or None to stream instead."""
        table = source_table(self.spec, source)
        attach = getattr(target, "attach", None)
        if table is None or attach is None or not _scannable(source):
            return None
        alias = "_crane_src_" + hashlib.sha1(self.source_url.encode()).hexdigest()[:10]
        exact_scan = getattr(source, "duckdb_scan", None)
        if exact_scan is not None:
            scan = exp.maybe_parse(exact_scan(table, alias), dialect="duckdb")
            if self.filtered and not _is_plain_scan(scan):
                # a query-text scan cannot push our WHERE down: let the window run inside
                # the source's own query instead (streaming route)
                return None
            self.alias = attach(source, alias)
            if self.alias != alias:  # the warehouse's own catalog: no attach was needed
                scan = exp.maybe_parse(exact_scan(table, self.alias), dialect="duckdb")
            return exp.Subquery(this=scan, alias=exp.TableAlias(this=exp.to_identifier("s")))
        self.alias = attach(source, alias)
        return exp.table_(
            exp.to_identifier(table.name, quoted=True),
            db=exp.to_identifier(table.schema, quoted=True) if table.schema else None,
            catalog=exp.to_identifier(self.alias, quoted=True),
        )

    def temp_staging(self, target: Connector, table: TableRef) -> bool:
        """A window moved by this one connection (in-engine or streamed) stages into a
        temporary table: its rows never reach the write-ahead log or the file, only the
        target table."""
        return (
            target.capabilities.temp_staging
            and self.filtered
            and not self.plan.full_extract
            and len(self.plan.filters) == 1
            and table.schema == STAGING_SCHEMA
        )

    # -- moving ----------------------------------------------------------------------
    def move(self, index: int, into: TableRef, target: Connector, source: Connector) -> int:
        if self.relation is not None:
            return self._in_engine(index, into, target, source)
        return self._stream(index, into, target, source)

    def _in_engine(self, index: int, into: TableRef, target: Connector, source: Connector) -> int:
        assert self.relation is not None
        windowed = self.filtered and not self.plan.full_extract
        query = self._window_query(index, source) if windowed else None
        if query is None:
            query = self.plan.select(self.relation.copy(), index)
        temporary = exp.Properties(expressions=[exp.TemporaryProperty()])
        create = exp.Create(
            this=into.expression(),
            kind="TABLE",
            replace=True,
            expression=query,
            properties=temporary if into.schema == TEMP_SCHEMA else None,
        )
        settings = self.settings if windowed else {}
        fsst = set() if windowed else self._distinct_text(target, source)
        for name, value in settings.items():
            target.execute(f"SET {name} = {value}")
        try:
            if fsst:
                target.create_as(into, query, fsst)  # type: ignore[attr-defined]
            else:
                target.execute(create)
        finally:
            for name in settings:
                target.execute(f"RESET {name}")
        self.crash_point("stage:created")
        rows = _count(target, into)
        self.console.advance(self.spec.name, rows)
        return rows

    def _distinct_text(self, target: Connector, source: Connector) -> set[str]:
        """Columns the source's statistics call mostly distinct, for a target that can
        declare their compression up front (``create_as``)."""
        hint = getattr(source, "distinct_text_columns", None)
        table = source_table(self.spec, source)
        if hint is None or table is None or not hasattr(target, "create_as"):
            return set()
        return set(hint(table))

    def _window_query(self, index: int, source: Connector) -> exp.Query | None:
        """A window (part of a table) as one query the attached source runs itself, when
        the source offers it (``duckdb_window_scan``): the scanner then does not load the
        schema's catalog, which cost a 50k-row window of a 5M-row PostgreSQL table
        60-90 ms of its ~130 ms."""
        window_scan = getattr(source, "duckdb_window_scan", None)
        table = source_table(self.spec, source)
        if window_scan is None or table is None or self.alias is None:
            return None
        sql = self.plan.select(source_relation(self.spec, source), index)
        scan = window_scan(sql.sql(dialect=source.dialect), table, self.alias)
        return None if scan is None else exp.maybe_parse(scan, dialect="duckdb")

    def _stream(self, index: int, into: TableRef, target: Connector, source: Connector) -> int:
        query = self.plan.select(source_relation(self.spec, source), index)
        reader = source.read(query.sql(dialect=source.dialect), self.spec.batch_size)
        return target.write(self._counted(reader), into, "replace")

    def _counted(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        """The same stream, reporting progress per batch (never per row)."""
        import pyarrow as pa

        def batches() -> Any:
            for number, batch in enumerate(reader):
                self.counter.add(batch.num_rows, batch.nbytes)
                self.console.advance(self.spec.name, batch.num_rows)
                yield batch
                if number == 1:
                    self.crash_point("stage:batch")

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def parallel(self, into: TableRef) -> int:
        """One part per worker, each on its own connections; then one staging table."""
        parts = [TableRef(f"{into.name}__p{i}", into.schema) for i in range(len(self.plan.filters))]

        def work(index: int) -> int:
            with (
                connect(self.target_url) as target,
                connect(self.source_url, read_only=True) as source,
            ):
                rows = self.move(index, parts[index], target, source)
            self.crash_point("stage:part")
            return rows

        with ThreadPoolExecutor(max_workers=max(self.spec.extract.workers, 1)) as pool:
            rows = sum(pool.map(work, range(len(parts))))
        with connect(self.target_url) as target:
            union: exp.Query = exp.select("*").from_(parts[0].expression())
            for part in parts[1:]:
                union = exp.union(union, exp.select("*").from_(part.expression()), distinct=False)
            target.execute(_drop(into))
            target.execute(exp.Create(this=into.expression(), kind="TABLE", expression=union))
            for part in parts:
                target.execute(_drop(part))
        return rows


def transform(target: Connector, staged: Staged, sql: str) -> Staged:
    """Run the pipeline's SELECT over ``source`` (the staged rows) inside the target."""
    import sqlglot

    schema = STAGING_SCHEMA if staged.table.schema == TEMP_SCHEMA else staged.table.schema
    out = TableRef(f"{staged.table.name}__t", schema)
    query = sqlglot.parse_one(sql, read=target.dialect)
    cte = exp.CTE(
        this=exp.select("*").from_(staged.table.expression()),
        alias=exp.TableAlias(this=exp.to_identifier("source")),
    )
    key = "with_" if "with_" in query.arg_types else "with"
    existing = query.args.get(key)
    if existing is not None:  # `source` first, so the user's own CTEs may use it
        existing.set("expressions", [cte, *existing.expressions])
    else:
        query.set(key, exp.With(expressions=[cte]))
    target.execute(_drop(out))
    target.execute(exp.Create(this=out.expression(), kind="TABLE", expression=query))
    return Staged(out, _count(target, out), staged.bytes, [staged.table, *staged.leftovers])


def drop_staging(target: Connector, staged: Staged) -> None:
    for table in (staged.table, *staged.leftovers):
        target.execute(_drop(table))


def _is_plain_scan(scan: exp.Expr) -> bool:
    """``SELECT * FROM catalog.schema.table``: DuckDB pushes filters on it into the source."""
    if not isinstance(scan, exp.Select) or scan.args.get("where") or scan.args.get("joins"):
        return False
    source = scan.args.get("from_") or scan.args.get("from")
    table = source.this if isinstance(source, exp.From) else None
    return isinstance(table, exp.Table) and isinstance(table.this, exp.Identifier)


def _detach(target: Connector, alias: str) -> None:
    """Let go of the attached source once its rows are staged: an attached remote catalog
    makes every later catalog lookup in the target (information_schema) ask the source.
    A source in the warehouse file itself was never attached: its catalog stays."""
    attached = getattr(target, "_attached", None)
    if isinstance(attached, dict) and alias not in attached:
        return
    target.execute(f"DETACH DATABASE IF EXISTS {exp.to_identifier(alias, quoted=True).sql()}")
    if isinstance(attached, dict):  # the connector remembers what it attached
        attached.pop(alias, None)


def _drop(table: TableRef) -> exp.Drop:
    return exp.Drop(tables=[table.expression()], kind="TABLE", exists=True)


def _create_schema(target: Connector, name: str) -> None:
    target.execute(
        exp.Create(
            this=exp.Table(this=exp.to_identifier(name, quoted=True)), kind="SCHEMA", exists=True
        )
    )


def _count(target: Connector, table: TableRef) -> int:
    rows = target.fetch(exp.select(exp.Count(this=exp.Star())).from_(table.expression()))
    return int(rows[0][0]) if rows else 0


def _estimate_bytes(target: Connector, table: TableRef, rows: int) -> int:
    """In-engine moves never see the bytes: estimate from the Arrow size of a sample."""
    if not rows:
        return 0
    sample = exp.select("*").from_(table.expression()).limit(BYTES_SAMPLE_ROWS)
    arrow = getattr(target, "arrow", None)  # on the connection itself: it sees temp tables
    if arrow is not None:
        data = arrow(sample)
    else:
        data = target.read(sample.sql(dialect=target.dialect), BYTES_SAMPLE_ROWS).read_all()
    return int(data.nbytes * rows / max(data.num_rows, 1))
