"""Commit-safe upper bounds: up to where an incremental extract may safely read.

A ``> max(updated_at)`` watermark skips rows on a busy source, because commit
order is not timestamp order: a transaction that began at 10:00:00 and commits at
10:00:05 writes rows stamped 10:00:00, after a reader already moved past 10:00:04
(LESSONS.md: dlt #2269, Airbyte #85918, Sling #36). So each extract reads the
half-open window ``[watermark, bound)`` where ``bound`` is no later than the start
of any transaction that may still commit rows; the rows of such a transaction
are read by the next run. How each engine tells us that is *data* (`BOUND_RULES`):

* PostgreSQL: the oldest ``xact_start`` among other sessions holding a write lock
  (RowExclusiveLock or stronger) on the source table (for a custom query: on any
  table it reads; for a view or a partitioned table: on any table under it), or,
  when no table is known, among sessions that hold a transaction id; capped by the
  source clock. Sessions busy with other tables never hold the window back.
  ``now()``/``clock_timestamp()``/``statement_timestamp()`` of a writer are all
  >= its ``xact_start``, so its rows fall at or after the bound. A transaction
  that takes its timestamp before it first writes cannot be seen until it writes:
  give such sources a ``lag`` (subtracted from the bound).
* MySQL/MariaDB: the oldest ``trx_started`` in ``information_schema.innodb_trx``
  among other transactions that modified or locked rows from a session whose
  current database is the source table's (or none: conservative), capped by the clock.
  InnoDB does not say which tables a transaction wrote on every server version, so
  a writer whose session sits in *another* database but writes ours by qualified
  name is not seen: give such sources a ``lag``.
  MySQL's ``NOW()`` is the *statement's* start, so a transaction that has not
  written yet stamps its future rows after the bound; idle read-only sessions
  (a pool with autocommit off) never hold the window back.
* SQLite and DuckDB: one writer at a time, so every committed row is visible and
  ``max(cursor)`` is safe; the window is ``(watermark, max]``.
* Naive cursors (``timestamp``, ``date``) are stamped by the writer's session zone,
  which may be west of ours: the bound is then the newest committed value (less the
  same margin) instead of a clock hours ahead of the rows (see `_behind_the_clock`).
* Integer cursors (any engine): the window is ``(watermark, max(cursor)]`` read at
  extract start. Ids handed out by a sequence can commit out of order on a
  multi-writer source, and no catalog says which ids are still in flight: use a
  timestamp cursor there, or an integer ``lookback`` with a merge load.

The bound only ever holds a window back; it never moves a watermark backwards.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlglot import exp

if TYPE_CHECKING:
    import pyarrow as pa

    from crane.connectors.base import Connector, TableRef

CursorKind = Literal["int", "timestamptz", "timestamp", "date", "other"]


@dataclass(frozen=True)
class BoundRule:
    """How one engine reports its clock and its oldest still-open writing transaction.

    ``clock_sql`` returns one row: (aware now, naive local now, oldest-open age in
    seconds or NULL). ``{tables}`` in it becomes the source tables as quoted string
    literals, ``{databases}`` the databases (schemas) they are in, the session's own for
    a table named without one; ``clock_sql_no_table`` is used when the source tables are
    unknown.
    """

    clock_sql: str | None = None
    clock_sql_no_table: str | None = None
    single_writer: bool = False


_PG_CLOCK = (
    "SELECT c.t, c.t::timestamp, (SELECT extract(epoch FROM c.t - min(a.xact_start))::float8 "
    "FROM pg_stat_activity a WHERE a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL "
    "AND a.datname = current_database() AND {filter}) FROM (SELECT clock_timestamp() AS t) c"
)
# the source relations and, recursively, the tables under them: those a view's rewrite
# rule reads, and the partitions (or inheritance children) of a table. A writer locks
# what it writes: a base table, never the view; a partition, not always its parent.
_PG_RELATIONS = (
    "WITH RECURSIVE rel(oid) AS (SELECT x FROM unnest(ARRAY[{tables}]::oid[]) AS x "
    "UNION SELECT u.child FROM rel JOIN ("
    "SELECT r.ev_class AS parent, d.refobjid AS child FROM pg_rewrite r "
    "JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid "
    "AND d.refclassid = 'pg_class'::regclass "
    "UNION ALL SELECT i.inhparent, i.inhrelid FROM pg_inherits i"
    ") u ON u.parent = rel.oid AND u.child <> rel.oid) SELECT oid FROM rel"
)
_PG_TABLE_WRITERS = (
    f"a.pid IN (SELECT l.pid FROM pg_locks l WHERE l.relation IN ({_PG_RELATIONS}) "
    "AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', "
    "'AccessExclusiveLock'))"
)
_MY_CLOCK = (
    "SELECT UTC_TIMESTAMP(6), NOW(6), (SELECT TIMESTAMPDIFF(MICROSECOND, MIN(t.trx_started), "
    "NOW(6)) / 1000000 FROM information_schema.innodb_trx t "
    "LEFT JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id "
    "WHERE t.trx_mysql_thread_id <> CONNECTION_ID() "
    "AND (t.trx_rows_modified > 0 OR t.trx_lock_structs > 0) "
    "AND (p.db IS NULL OR p.db IN ({databases})))"
)

BOUND_RULES: dict[str, BoundRule] = {
    "postgres": BoundRule(
        clock_sql=_PG_CLOCK.replace("{filter}", _PG_TABLE_WRITERS),
        clock_sql_no_table=_PG_CLOCK.replace("{filter}", "a.backend_xid IS NOT NULL"),
    ),
    "mysql": BoundRule(clock_sql=_MY_CLOCK, clock_sql_no_table=_MY_CLOCK),
    "sqlite": BoundRule(single_writer=True),
    "duckdb": BoundRule(single_writer=True),
}


@dataclass(frozen=True)
class Bound:
    """The upper end of a window: ``< value`` (clock bound) or ``<= value`` (max bound)."""

    value: Any
    inclusive: bool
    held_back: float = 0.0  # seconds the bound sits before the clock because of open txns


def cursor_kind(arrow_type: pa.DataType) -> CursorKind:
    """The cursor's kind, which decides how windows and bounds are computed."""
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if pa.types.is_date(arrow_type):
        return "date"
    return "other"


def upper_bound(
    source: Connector,
    relation: exp.Expr,
    cursor: str,
    kind: CursorKind,
    *,
    lag: dt.timedelta | None = None,
    tables: Sequence[TableRef] = (),
) -> Bound:
    """The commit-safe upper bound for ``cursor`` on ``relation`` of ``source``."""
    rule = BOUND_RULES.get(source.dialect, BoundRule(single_writer=True))
    if rule.single_writer or kind in ("int", "other") or not rule.clock_sql:
        return Bound(max_cursor(source, relation, cursor), inclusive=True)
    sql = rule.clock_sql if tables else (rule.clock_sql_no_table or rule.clock_sql)
    regclasses = ", ".join(
        exp.func("to_regclass", exp.Literal.string(t.sql(source.dialect))).sql(source.dialect)
        for t in tables
    )
    databases = {
        exp.Literal.string(t.schema).sql(source.dialect) if t.schema else "DATABASE()"
        for t in tables
    }
    sql = sql.replace("{tables}", regclasses)
    sql = sql.replace("{databases}", ", ".join(sorted(databases)) or "DATABASE()")
    aware, naive, age = source.fetch(sql)[0]
    held_back = max(float(age or 0.0), 0.0)
    margin = dt.timedelta(seconds=held_back) + (lag or dt.timedelta(0))
    if kind == "date":
        value = (naive.replace(tzinfo=None) - margin).date()
        return _behind_the_clock(source, relation, cursor, value, margin, held_back) or Bound(
            value, inclusive=False, held_back=held_back
        )
    column = exp.select(exp.column(cursor, quoted=True)).from_(relation.copy())
    floor = _floor(source.fraction_digits(column.sql(source.dialect)))
    if kind == "timestamptz":
        return Bound(floor(instant_minus(aware, margin)), inclusive=False, held_back=held_back)
    value = floor(naive.replace(tzinfo=None) - margin)
    return _behind_the_clock(source, relation, cursor, value, margin, held_back, floor) or Bound(
        value, inclusive=False, held_back=held_back
    )


def instant_minus(moment: dt.datetime, margin: dt.timedelta) -> dt.datetime:
    """``moment - margin`` in elapsed time, as UTC. The driver hands back the session's
    zone (a ``ZoneInfo``), where Python subtracts *wall-clock* time: across a DST change
    a 1h margin from 03:30 EDT gave 02:30, i.e. 03:30 EDT again, no margin at all.

    >>> from zoneinfo import ZoneInfo
    >>> spring = dt.datetime(2024, 3, 10, 3, 30, tzinfo=ZoneInfo("America/New_York"))
    >>> instant_minus(spring, dt.timedelta(hours=1))
    datetime.datetime(2024, 3, 10, 6, 30, tzinfo=datetime.timezone.utc)
    """
    utc = moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return utc - margin


def _floor(digits: int | None) -> Any:
    """Round a bound down to what the cursor column holds. A ``DATETIME`` (MariaDB cuts
    the fraction) or ``timestamp(0)`` (PostgreSQL rounds it) stamps a row written at
    10:00:00.7 as 10:00:00 (or :01): a bound of 10:00:00.4 would skip it for good, one at
    10:00:00 reads it next run."""
    if digits is None or digits >= 6:
        return lambda value: value
    unit = 10 ** (6 - digits)
    return lambda value: value.replace(microsecond=value.microsecond // unit * unit)


def _behind_the_clock(
    source: Connector,
    relation: exp.Expr,
    cursor: str,
    clock: Any,
    margin: dt.timedelta,
    held_back: float,
    floor: Any = lambda value: value,
) -> Bound | None:
    """A bound at the newest committed value when the rows' clock runs behind ours.

    A naive cursor is stamped in the *writer's* zone: an app session west of ours (JDBC
    sets the JVM's zone) writes 21:00 while our clock says 02:00, so a clock bound sits
    hours in the rows' future and every later row falls below the next window. The
    newest value, less the same margin, is safe whatever the writer's zone: an open
    writer's rows are stamped at or after (its now - held_back) >= (newest - held_back).
    ``clock`` is already floored to the column's precision, so a newest value in the
    clock's own second (where a later row may still get the same stamp) keeps the clock.
    """
    newest = max_cursor(source, relation, cursor)
    try:
        if newest is None or not newest < clock:
            return None
    except TypeError:  # not comparable with the clock (e.g. text): keep the clock bound
        return None
    if not margin:
        return Bound(newest, inclusive=True, held_back=held_back)
    if isinstance(newest, dt.datetime):
        return Bound(floor(newest - margin), inclusive=False, held_back=held_back)
    return Bound(newest, inclusive=False, held_back=held_back)  # a date: re-read next run


def max_cursor(source: Connector, relation: exp.Expr, cursor: str) -> Any:
    """``max(cursor)`` over the source relation, run on the source."""
    query = exp.select(exp.Max(this=exp.column(cursor, quoted=True))).from_(relation)
    rows = source.fetch(query)
    return rows[0][0] if rows else None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int | float | None) -> dt.timedelta | None:
    """``"5s"``, ``"2h"``, ``"1d"``, ``"500ms"`` or seconds as a number → timedelta.

    >>> parse_duration("2h")
    datetime.timedelta(seconds=7200)
    >>> parse_duration("90")
    datetime.timedelta(seconds=90)
    """
    if text is None:
        return None
    if isinstance(text, int | float):
        return dt.timedelta(seconds=text)
    match = _DURATION.match(text)
    if not match:
        from crane.errors import ConfigError

        raise ConfigError(f"cannot read duration {text!r}", hint='use e.g. "30s", "5m", "2h", "1d"')
    return dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])
