"""The calendar dimensions of ``crane model load``: days and minutes are generated, not
copied, so a rerun adds only what is missing and a changed calendar reaches the days
already loaded (facts keep their keys: days are never deleted).

Split from :mod:`crane.warehouse.load`, which stages each object and calls these.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crane.errors import ConfigError
from crane.sql.build import col, ident, insert_select, table

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef
    from crane.warehouse.load import ObjectLoad
    from crane.warehouse.spec import DimensionSpec, Model, TableSpec


def _count(con: Connector, ref: TableRef) -> int:
    return int(con.fetch(exp.select(exp.Count(this=exp.Star())).from_(table(ref)))[0][0])


def load_dates(
    con: Connector, model: Model, dim: DimensionSpec, stage: TableRef, out: ObjectLoad
) -> None:
    """Add the days of ``[start, end]`` the dimension lacks, with the dimension's calendar
    (fiscal year start month, holidays, weekend days); days already there keep their key
    and take a changed calendar (a holiday added later) in place."""
    from crane.warehouse import datedim
    from crane.warehouse.spec import Calendar

    rows = con.fetch(exp.select(exp.Star()).from_(table(stage)))
    if len(rows) != 1 or len(rows[0]) < 2:
        raise ConfigError(
            f"the source of date dimension {dim.name} must return one row (start, end)",
            table=dim.table,
            field="source",
        )
    if rows[0][0] is None and rows[0][1] is None:
        return  # min()/max() over raw tables still empty: no days to add yet
    if rows[0][0] is None or rows[0][1] is None:
        raise ConfigError(
            f"the source of date dimension {dim.name} returned start {rows[0][0]} and end "
            f"{rows[0][1]}: both or neither must be NULL",
            table=dim.table,
            field="source",
        )
    start, end = (_as_date(v) for v in rows[0][:2])
    calendar = dim.calendar or Calendar()
    try:
        spec = datedim.DateDimension(
            start=start,
            end=end,
            fiscal_year_start_month=calendar.fiscal_year_start_month,
            holidays=calendar.holiday_names(),
            weekend_days=tuple(calendar.weekend_days),
        )
    except ConfigError as error:  # it names neither the dimension nor its table
        raise ConfigError(
            f"date dimension {dim.name}: {error.detail}",
            table=dim.table,
            field=error.field or "source",
            hint=error.hint,
        ) from None
    target = dim.ref(model.schema_)
    key = dim.key_column
    days = datedim.build_date_rows(spec, con.dialect)
    have = exp.select(col(key, "d")).from_(table(target, "d"))
    missing = (
        exp.select(exp.Star())
        .from_(exp.Subquery(this=days, alias=ident("n")))
        .where(exp.Not(this=col(key, "n").isin(query=have)))
    )
    names = [n for n, _ in spec.columns()]
    out.updated = _recalendar(con, target, key, names, days)
    before = _count(con, target)
    con.execute(insert_select(target, names, missing))
    out.rows_in = (end - start).days + 1
    out.inserted = _count(con, target) - before


def _recalendar(
    con: Connector, target: TableRef, key: str, names: Sequence[str], days: exp.Select
) -> int:
    """Overwrite the calendar columns of existing days that differ from ``days``."""
    from crane.sql.build import qualified_col

    generated = exp.Subquery(this=days, alias=ident("n"))
    columns = [n for n in names if n != key]
    differs = exp.or_(
        *(
            exp.Not(this=exp.NullSafeEQ(this=qualified_col(c, target), expression=col(c, "n")))
            for c in columns
        )
    )
    match = exp.EQ(this=qualified_col(key, target), expression=col(key, "n"))
    stale = (
        exp.select(exp.Count(this=exp.Star()))
        .from_(table(target))
        .join(generated.copy(), on=match.copy())
    )
    count = int(con.fetch(stale.where(differs.copy()))[0][0])
    if count:
        sets = [exp.EQ(this=col(c), expression=col(c, "n")) for c in columns]
        con.execute(
            exp.Update(
                this=table(target),
                expressions=sets,
                from_=exp.From(this=generated),
                where=exp.Where(this=exp.and_(match, differs)),
            )
        )
    return count


def load_times(con: Connector, dim: TableSpec, target: TableRef, out: ObjectLoad) -> None:
    """Add the minutes of the day the dimension lacks (a rerun adds none)."""
    from crane.warehouse import datedim
    from crane.warehouse.spec import DimensionSpec

    assert isinstance(dim, DimensionSpec)
    spec = datedim.TimeOfDayDimension()
    key = dim.key_column
    have = exp.select(col(key, "d")).from_(table(target, "d"))
    rows = datedim.build_time_rows(spec, con.dialect)
    missing = (
        exp.select(exp.Star())
        .from_(exp.Subquery(this=rows, alias=ident("n")))
        .where(exp.Not(this=col(key, "n").isin(query=have)))
    )
    before = _count(con, target)
    con.execute(insert_select(target, [n for n, _ in spec.columns()], missing))
    out.rows_in = 24 * 60
    out.inserted = _count(con, target) - before


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
