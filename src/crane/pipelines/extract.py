"""Extract strategies: which rows of the source one run reads, and the state it leaves.

A strategy turns the pipeline spec, the source and the saved watermark into an
`ExtractPlan`: a projection, one row filter per partition (the runner decides
*how* rows move: in-engine through DuckDB's scanners or as Arrow batches), and
the watermark to save once the load commits. Strategies are plug-ins registered
by name in `extract_strategies`: ``full``, ``incremental``, ``partitioned``.

Incremental windows are ``[lower, bound)`` against a commit-safe bound (see
`crane.pipelines.bounds`), so rows sharing the boundary value are read exactly
once and the whole state is ONE value. With ``lookback`` the window starts
earlier and re-reads rows: the load must then merge on a key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crane.connectors.base import TableRef
from crane.errors import ConfigError, ExtractError
from crane.pipelines.bounds import CursorKind, cursor_kind, parse_duration, upper_bound
from crane.registry import Registry
from crane.state.store import Watermark, literal

if TYPE_CHECKING:
    from crane.config.spec import PipelineSpec
    from crane.connectors.base import Connector
    from crane.console import Console


@dataclass
class ExtractContext:
    """What a strategy may look at."""

    spec: PipelineSpec
    source: Connector
    watermark: Watermark | None
    full_refresh: bool = False
    backfill: tuple[Any, Any] | None = None
    console: Console | None = None


@dataclass
class ExtractPlan:
    """What to read: ``SELECT columns FROM relation WHERE filter`` once per filter."""

    columns: list[str] | None  # None = every column
    filters: list[exp.Expr | None]
    full_extract: bool  # the extract is the whole source (hard deletes may be detected)
    new_watermark: Watermark | None  # None = leave the saved watermark as it is
    window: dict[str, Any] = field(default_factory=dict)  # for run records and lineage
    # the cursor of an incremental window: a re-read row whose cursor did not move is
    # unchanged, so a merge compares this column alone (None: compare every column)
    changed_by: str | None = None

    def select(self, relation: exp.Expr, index: int = 0) -> exp.Select:
        """The query for part ``index`` over ``relation`` (a table or a subquery)."""
        projection = (
            [exp.column(c, quoted=True) for c in self.columns] if self.columns else [exp.Star()]
        )
        query = exp.select(*projection).from_(relation)
        condition = self.filters[index]
        return query.where(condition) if condition is not None else query


ExtractStrategy = Callable[[ExtractContext], ExtractPlan]
extract_strategies: Registry[ExtractStrategy] = Registry("extract strategy")


# -- the source relation -----------------------------------------------------------


def source_table(spec: PipelineSpec, source: Connector) -> TableRef | None:
    """The source table, schema-qualified with the source's default, or None for a query."""
    if not spec.source.table:
        return None
    ref = TableRef.parse(spec.source.table, spec.source.schema_)
    return ref if ref.schema else TableRef(ref.name, source.default_schema)


def source_tables(spec: PipelineSpec, source: Connector) -> list[TableRef]:
    """The tables the source reads: its table, or every table a custom query names (as
    the query names them: an unqualified name resolves through the session's search
    path, as the query's own does)."""
    table = source_table(spec, source)
    if table is not None:
        return [table]
    import sqlglot

    assert spec.source.query is not None
    parsed = sqlglot.parse_one(spec.source.query, read=source.dialect)
    ctes = {cte.alias_or_name for cte in parsed.find_all(exp.CTE)}
    found = []
    for node in parsed.find_all(exp.Table):
        if isinstance(node.this, exp.Identifier) and node.name not in ctes:
            found.append(TableRef(node.name, node.db or None))
    return found


def source_relation(spec: PipelineSpec, source: Connector) -> exp.Expr:
    """The source as a FROM item: its table, or the custom query as subquery ``q``."""
    table = source_table(spec, source)
    if table is not None:
        return table.expression()
    import sqlglot

    assert spec.source.query is not None
    parsed = sqlglot.parse_one(spec.source.query, read=source.dialect)
    return exp.Subquery(this=parsed, alias=exp.TableAlias(this=exp.to_identifier("q")))


def probe_kind(source: Connector, relation: exp.Expr, column: str) -> CursorKind:
    """The cursor column's kind: from one non-NULL value if there is one (a cheap query
    through the source's own driver), else from the type of a zero-row read."""
    cursor = exp.column(column, quoted=True)
    sample = exp.select(cursor).from_(relation).where(cursor.copy().is_(exp.null()).not_())
    try:
        rows = source.fetch(sample.limit(1))
    except Exception:
        rows = []
    if rows and rows[0][0] is not None:
        return _python_kind(rows[0][0])
    query = exp.select(cursor.copy()).from_(relation).where(exp.false())
    try:
        schema = source.read(query.sql(dialect=source.dialect), 1).schema
    except Exception as error:
        _readable(source, relation)  # a missing table is no fault of the cursor column
        raise ExtractError(
            f"cannot read cursor column {column!r} from the source: {error}", column=column
        ) from error
    return cursor_kind(schema.field(0).type)


def _readable(source: Connector, relation: exp.Expr) -> None:
    """Raise an error about the source itself (missing table, no privilege, broken
    query) when not even an empty read of it works."""
    from crane.errors import CraneError

    every = exp.select(exp.Star()).from_(relation.copy()).where(exp.false())
    try:
        source.read(every.sql(dialect=source.dialect), 1).schema  # noqa: B018
    except Exception as error:
        name = relation.sql(source.dialect) if isinstance(relation, exp.Table) else None
        transient = error.transient if isinstance(error, CraneError) else False
        raise ExtractError(
            f"cannot read the source: {error}", table=name, transient=transient
        ) from error


def _python_kind(value: Any) -> CursorKind:
    if isinstance(value, bool):
        return "other"
    if isinstance(value, int):
        return "int"
    if isinstance(value, dt.datetime):
        return "timestamptz" if value.tzinfo else "timestamp"
    if isinstance(value, dt.date):
        return "date"
    return "other"


# -- values in the cursor's kind ------------------------------------------------------


def coerce(value: Any, kind: CursorKind) -> Any:
    """A configured value (initial_value, backfill bounds) as the cursor's type."""
    if value is None or kind == "other":
        return value
    if kind == "int":
        return int(value)
    if isinstance(value, str):
        value = dt.date.fromisoformat(value) if kind == "date" else dt.datetime.fromisoformat(value)
    if kind == "date":
        return value.date() if isinstance(value, dt.datetime) else value
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if kind == "timestamptz" and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # a naive configured instant is read as UTC
    if kind == "timestamp" and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


def minus_lookback(value: Any, lookback: str | int | None, kind: CursorKind) -> Any:
    """``value`` moved back by the lookback window (ids for integers, a duration otherwise)."""
    if lookback is None or value is None:
        return value
    if kind == "int" or isinstance(value, int | Decimal):
        if not str(lookback).strip().lstrip("-").isdigit():
            raise ConfigError(
                f"lookback {lookback!r} is not a count: the cursor is a number",
                field="extract.lookback",
                hint="give an integer lookback (how many ids/versions to re-read), e.g. 1000",
            )
        return value - int(lookback)
    delta = parse_duration(lookback)
    assert delta is not None
    if isinstance(value, str):  # a timestamp stored as text (SQLite): same text format back
        return _text_minus(value, delta)
    if kind == "date":
        return value - dt.timedelta(days=max(delta.days, 1))
    return value - delta


# -- strategies --------------------------------------------------------------------


def _text_minus(value: str, delta: dt.timedelta) -> str:
    """``'2024-01-02 03:00:00' - 1h`` → ``'2024-01-02 02:00:00'`` (ISO text keeps its shape).

    >>> _text_minus("2024-01-02 03:00:00", dt.timedelta(hours=1))
    '2024-01-02 02:00:00'
    >>> _text_minus("2024-01-02", dt.timedelta(hours=1))
    '2024-01-01'
    """
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ExtractError(
            f"cannot apply a lookback to the text cursor value {value!r}",
            hint="store the cursor as a timestamp, or use lookback only with ISO text",
        ) from None
    if len(value) == 10:  # a date
        return (moment - max(delta, dt.timedelta(days=1))).date().isoformat()
    separator = "T" if "T" in value else " "
    spec = "seconds" if "." not in value[19:] else "microseconds"
    earlier = moment - delta
    text = earlier.isoformat(sep=separator, timespec=spec)
    return text.replace("+00:00", "Z") if value.endswith("Z") else text


@extract_strategies.register("full")
def full(ctx: ExtractContext) -> ExtractPlan:
    """Every row, every run; the load decides what becomes of the old ones."""
    return ExtractPlan(
        columns=ctx.spec.source.columns,
        filters=[None],
        full_extract=True,
        new_watermark=None,
        window={"strategy": "full"},
    )


@extract_strategies.register("incremental")
def incremental(ctx: ExtractContext) -> ExtractPlan:
    """Rows in ``[watermark - lookback, commit-safe bound)`` (or a backfill range)."""
    spec, source = ctx.spec, ctx.source
    cursor = spec.extract.cursor
    if not cursor:
        raise ConfigError("incremental extraction needs a 'cursor' column", pipeline=spec.name)
    _refuse_what_a_window_cannot_do(spec)
    relation = source_relation(spec, source)
    kind = probe_kind(source, relation, cursor)
    column = exp.column(cursor, quoted=True)
    if ctx.backfill is not None:
        return _backfill(ctx, column, kind)
    saved = None if ctx.full_refresh else ctx.watermark
    if saved is not None and saved.cursor_column not in (None, cursor):
        saved = None  # the cursor changed: the old position means nothing now
    lower, lower_op = _lower(spec, saved, kind)
    bound = upper_bound(
        source,
        relation,
        cursor,
        kind,
        lag=parse_duration(spec.extract.lag),
        tables=source_tables(spec, source),
    )
    if ctx.console and bound.held_back > 60:
        ctx.console.warn(
            f"{spec.name}: open source transactions hold the window back {bound.held_back:.0f}s"
        )
    condition = _window(column, lower, lower_op, bound.value, bound.inclusive)
    full_load = lower is None
    if full_load or spec.extract.null_cursor == "always":
        condition = exp.or_(condition, column.is_(exp.null()))
    return ExtractPlan(
        columns=spec.source.columns,
        filters=[condition],
        full_extract=full_load,
        new_watermark=_advance(saved, bound.value, bound.inclusive, cursor),
        # a re-read row with a NULL cursor may still have changed: compare every column
        changed_by=None if full_load or spec.extract.null_cursor == "always" else cursor,
        window={
            "strategy": "incremental",
            "cursor": cursor,
            "lower": lower,
            "lower_op": lower_op,
            "upper": bound.value,
            "upper_op": "<=" if bound.inclusive else "<",
        },
    )


def _refuse_what_a_window_cannot_do(spec: PipelineSpec) -> None:
    """A lookback window and ``null_cursor: always`` read rows again on every run; an
    append would add them again each time (silent duplicates), so only a keyed load may
    take them. Hard-delete detection needs every source row: in a window it would
    silently never run."""
    if spec.load.hard_deletes != "ignore":
        raise ConfigError(
            f"hard_deletes: {spec.load.hard_deletes} needs a full extract: an incremental "
            "window cannot tell a deleted row from an unchanged one, so no delete would "
            "ever be seen",
            pipeline=spec.name,
            field="load.hard_deletes",
            hint="extract with strategy 'full' or 'partitioned', or have the source mark "
            "deletes (a deleted_at column the cursor moves with)",
        )
    if spec.load.strategy != "append":
        return
    rereads = [
        option
        for option, used in (
            ("lookback", spec.extract.lookback is not None),
            ("null_cursor: always", spec.extract.null_cursor == "always"),
        )
        if used
    ]
    if rereads:
        raise ConfigError(
            f"{' and '.join(rereads)} re-read rows on every run: an append load would "
            "duplicate them",
            pipeline=spec.name,
            field="extract",
            hint="load with strategy 'merge' (or 'delete_insert') and a primary_key",
        )


def _lower(spec: PipelineSpec, saved: Watermark | None, kind: CursorKind) -> tuple[Any, str]:
    if saved is None:
        initial = coerce(spec.extract.initial_value, kind)
        return initial, ">="
    if spec.extract.lookback is not None:
        return minus_lookback(saved.value, spec.extract.lookback, kind), ">="
    return saved.value, ">" if saved.next_op == "gt" else ">="


def _window(column: exp.Column, lower: Any, lower_op: str, upper: Any, inclusive: bool) -> exp.Expr:
    """``lower <(=) column <(=) upper``; an unknown upper (empty source) selects no cursor."""
    parts: list[exp.Expr] = []
    if lower is not None:
        parts.append(exp.GT(this=column.copy(), expression=literal(lower)))
        if lower_op == ">=":
            parts[-1] = exp.GTE(this=column.copy(), expression=literal(lower))
    if upper is None:
        parts.append(exp.false())
    elif inclusive:
        parts.append(exp.LTE(this=column.copy(), expression=literal(upper)))
    else:
        parts.append(exp.LT(this=column.copy(), expression=literal(upper)))
    return exp.and_(*parts) if len(parts) > 1 else parts[0]


def _advance(saved: Watermark | None, upper: Any, inclusive: bool, cursor: str) -> Watermark | None:
    """The watermark after this window; never moves backwards."""
    if upper is None:
        return None
    if saved is not None and saved.value is not None:
        try:
            if upper < saved.value or (upper == saved.value and not inclusive):
                return None
        except TypeError:
            pass  # kinds differ (cursor type changed): take the new bound
    return Watermark(upper, cursor, "gt" if inclusive else "ge")


def _backfill(ctx: ExtractContext, column: exp.Column, kind: CursorKind) -> ExtractPlan:
    """A bounded re-read of ``[start, end)``; the saved watermark does not move."""
    assert ctx.backfill is not None
    start, end = (coerce(v, kind) for v in ctx.backfill)
    parts: list[exp.Expr] = []
    if start is not None:
        parts.append(exp.GTE(this=column.copy(), expression=literal(start)))
    if end is not None:
        parts.append(exp.LT(this=column.copy(), expression=literal(end)))
    condition = exp.and_(*parts) if parts else None
    return ExtractPlan(
        columns=ctx.spec.source.columns,
        filters=[condition],
        full_extract=False,
        new_watermark=None,
        window={"strategy": "backfill", "cursor": column.name, "lower": start, "upper": end},
    )


@extract_strategies.register("partitioned")
def partitioned(ctx: ExtractContext) -> ExtractPlan:
    """A full extract split into N ranges of ``partition_column`` for parallel workers.

    The ranges cover the whole line: the first is open below (and takes NULLs), the
    last open above, so rows written between the min/max probe and the reads are
    not lost.
    """
    spec, source = ctx.spec, ctx.source
    name = spec.extract.partition_column
    assert name is not None
    relation = source_relation(spec, source)
    column = exp.column(name, quoted=True)
    query = exp.select(exp.Min(this=column.copy()), exp.Max(this=column.copy())).from_(relation)
    try:
        low, high = source.fetch(query)[0]
    except Exception as error:
        if getattr(error, "transient", False):
            raise  # a dropped connection is retried, not a verdict on the column
        raise _unsplittable(spec, f"the source cannot take its min/max: {error}") from error
    if not all(v is None or isinstance(v, _SPLITTABLE) for v in (low, high)):
        raise _unsplittable(spec, f"its values are {type(low).__name__}, which has no ranges")
    cuts = split_points(low, high, spec.extract.partitions)
    filters: list[exp.Expr | None] = []
    edges: list[Any] = [None, *cuts, None]
    for start, end in zip(edges, edges[1:], strict=False):
        parts: list[exp.Expr] = []
        if start is not None:
            parts.append(exp.GTE(this=column.copy(), expression=literal(start)))
        if end is not None:
            parts.append(exp.LT(this=column.copy(), expression=literal(end)))
        condition = exp.and_(*parts) if len(parts) > 1 else (parts[0] if parts else None)
        if start is None and condition is not None:
            condition = exp.or_(condition, column.copy().is_(exp.null()))
        filters.append(condition)
    return ExtractPlan(
        columns=spec.source.columns,
        filters=filters,
        full_extract=True,
        new_watermark=None,
        window={"strategy": "partitioned", "column": name, "parts": len(filters)},
    )


# what `split_points` can cut into ranges (bool is an int, but has no useful ranges)
_SPLITTABLE = (int, float, Decimal, dt.date, dt.datetime)


def _unsplittable(spec: PipelineSpec, why: str) -> ConfigError:
    name = spec.extract.partition_column
    return ConfigError(
        f"partition column {name!r} cannot be split into ranges: {why}",
        pipeline=spec.name,
        column=name,
        hint="partition by an integer, decimal, date or timestamp column (e.g. the key)",
    )


def split_points(low: Any, high: Any, parts: int) -> list[Any]:
    """``parts - 1`` increasing cut points strictly inside ``(low, high]``.

    >>> split_points(0, 100, 4)
    [25, 50, 75]
    >>> split_points(1, 2, 4)
    []
    """
    if low is None or high is None or parts <= 1 or high <= low:
        return []
    span = high - low
    cuts: list[Any] = []
    for i in range(1, parts):
        if isinstance(span, int):
            cut = low + span * i // parts
        elif isinstance(span, dt.timedelta):
            cut = low + span * i / parts
            if isinstance(low, dt.date) and not isinstance(low, dt.datetime):
                cut = low + dt.timedelta(days=span.days * i // parts)
        else:
            cut = low + span * i / parts
        if cut > low and (not cuts or cut > cuts[-1]):
            cuts.append(cut)
    return cuts
