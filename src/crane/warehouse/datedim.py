"""Date and time-of-day dimensions, generated inside the engine.

The rows come from an integer series the engine makes itself (``generate_series``
on DuckDB/PostgreSQL, ``GENERATOR`` on Snowflake, ``GENERATE_ARRAY`` on BigQuery,
a recursive CTE on Redshift, whose ``generate_series`` runs on the leader node
only); every attribute is an expression over the day, so a century of days is
one ``INSERT … SELECT`` and no Python loop. Names (months, days, day parts) are
``CASE`` expressions over numbers, so they never depend on the engine's locale.

Conventions (documented because engines disagree on them):

- ``date_key`` is the "smart" integer ``yyyymmdd`` (facts compute it without a join).
- ``day_of_week`` is ISO: Monday = 1 … Sunday = 7; ``iso_week``/``iso_year`` are ISO 8601.
- The fiscal year starts on ``fiscal_year_start_month`` and is labelled by the
  calendar year it *ends* in (start month 7: July 2024 is fiscal 2025, month 1).
- Holidays are a config list of dates and names; a date listed twice keeps the first name.

>>> spec = DateDimension(start=date(2024, 1, 1), end=date(2024, 12, 31))
>>> [name for name, _ in spec.columns()][:4]
['date_key', 'full_date', 'year', 'quarter']
>>> "GENERATE_SERIES" in build_date_rows(spec).sql("duckdb")
True
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from crane.errors import ConfigError
from crane.sql.build import col, create_table, ident, insert_select, table
from crane.warehouse.spec import HOLIDAY_NAME_LENGTH

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
DEFAULT_DAY_PARTS = ((0, "night"), (6, "morning"), (12, "afternoon"), (18, "evening"))
DAY_PART_LENGTH = 20
_CONFIG_KEYS = {"start", "end", "fiscal_year_start_month", "holidays", "weekend_days"}

# An integer series 0..:n per dialect (column ``i``): engine differences as data.
_SERIES = {
    "snowflake": "SELECT ROW_NUMBER() OVER (ORDER BY SEQ4()) - 1 AS i "
    "FROM TABLE(GENERATOR(ROWCOUNT => :n + 1))",
    "bigquery": "SELECT i FROM UNNEST(GENERATE_ARRAY(0, :n)) AS i",
    "redshift": "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < :n) "
    "SELECT i FROM s",
}
_DEFAULT_SERIES = "SELECT i FROM GENERATE_SERIES(0, :n) AS t(i)"


def integer_series(last: int, dialect: str) -> exp.Query:
    """``SELECT i`` for i in 0..last, made by the engine itself.

    >>> integer_series(2, "duckdb").sql("duckdb")
    'SELECT i FROM GENERATE_SERIES(0, 2) AS t(i)'
    """
    template = _SERIES.get(dialect, _DEFAULT_SERIES)
    parsed = sqlglot.parse_one(template, read=dialect if dialect in _SERIES else "postgres")
    query = exp.replace_placeholders(parsed, n=exp.Literal.number(last))
    assert isinstance(query, exp.Query)
    return query


@dataclass(frozen=True)
class DateDimension:
    """One row per day from ``start`` to ``end`` inclusive."""

    start: date
    end: date
    fiscal_year_start_month: int = 1
    holidays: Mapping[date, str] = field(default_factory=dict)
    weekend_days: tuple[int, ...] = (6, 7)  # ISO day numbers

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ConfigError(f"date dimension ends ({self.end}) before it starts ({self.start})")
        if not _is_int(self.fiscal_year_start_month) or not 1 <= self.fiscal_year_start_month <= 12:
            raise ConfigError(
                f"fiscal_year_start_month must be 1..12, not {self.fiscal_year_start_month!r}",
                field="fiscal_year_start_month",
            )
        # the weekend flag is `day_of_week IN (…)`: a 0 or 8 never matched, silently
        if any(not _is_int(d) or not 1 <= d <= 7 for d in self.weekend_days):
            raise ConfigError(
                "weekend_days are ISO day numbers, Monday = 1 … Sunday = 7, "
                f"not {list(self.weekend_days)}",
                field="weekend_days",
            )
        for day, name in self.holidays.items():
            # holiday_name is VARCHAR(100): PostgreSQL refused the whole load, DuckDB kept it
            if not 0 < len(name) <= HOLIDAY_NAME_LENGTH:
                raise ConfigError(
                    f"holiday {day} needs a name of 1 to {HOLIDAY_NAME_LENGTH} characters, "
                    f"not {len(name)}",
                    field="holidays",
                )

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> DateDimension:
        """From YAML-shaped config; holidays as ``[{date: 2024-12-25, name: Christmas}]``.

        Every problem is a `ConfigError` naming its field: an unknown key (a misspelt
        ``fiscal_start_month`` was ignored, leaving a calendar fiscal year), a missing
        or malformed date, a holiday without a name.
        """
        unknown = sorted(set(config) - _CONFIG_KEYS)
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(_CONFIG_KEYS), n=1)
            raise ConfigError(
                f"date dimension has no setting {unknown[0]!r}; it knows "
                f"{', '.join(sorted(_CONFIG_KEYS))}",
                field=unknown[0],
                hint=f"did you mean {close[0]!r}?" if close else None,
            )
        holidays: dict[date, str] = {}
        items = config.get("holidays") or []
        if not isinstance(items, Sequence) or isinstance(items, str):
            raise ConfigError("holidays must be a list of {date, name}", field="holidays")
        for i, item in enumerate(items):
            where = f"holidays[{i}]"
            if not isinstance(item, Mapping) or not {"date", "name"} <= set(item):
                raise ConfigError(f"{where} needs a date and a name, not {item!r}", field=where)
            holidays.setdefault(_config_date(item["date"], f"{where}.date"), str(item["name"]))
        weekend = config.get("weekend_days", (6, 7))
        if not isinstance(weekend, Sequence) or isinstance(weekend, str):
            raise ConfigError(
                "weekend_days must be a list of ISO day numbers", field="weekend_days"
            )
        fiscal = config.get("fiscal_year_start_month", 1)
        return cls(
            start=_config_date(config.get("start"), "start"),
            end=_config_date(config.get("end"), "end"),
            fiscal_year_start_month=fiscal,  # type: ignore[arg-type]  # checked on creation
            holidays=holidays,
            weekend_days=tuple(weekend),
        )

    def columns(self) -> list[tuple[str, exp.DataType]]:
        return [(name, exp.DataType.build(kind)) for name, kind in _DATE_COLUMNS]


_DATE_COLUMNS = [
    ("date_key", "INT"),
    ("full_date", "DATE"),
    ("year", "INT"),
    ("quarter", "INT"),
    ("month", "INT"),
    ("month_name", "VARCHAR(9)"),
    ("month_short", "VARCHAR(3)"),
    ("day_of_month", "INT"),
    ("day_of_year", "INT"),
    ("day_of_week", "INT"),
    ("day_name", "VARCHAR(9)"),
    ("day_short", "VARCHAR(3)"),
    ("iso_week", "INT"),
    ("iso_year", "INT"),
    ("is_weekend", "BOOLEAN"),
    ("fiscal_year", "INT"),
    ("fiscal_quarter", "INT"),
    ("fiscal_month", "INT"),
    ("is_holiday", "BOOLEAN"),
    ("holiday_name", f"VARCHAR({HOLIDAY_NAME_LENGTH})"),
]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _config_date(value: object, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(
            f"{where} must be a date (YYYY-MM-DD), not {value!r}", field=where
        ) from None


def _int(node: exp.Expr) -> exp.Expr:
    return exp.cast(node, exp.DataType.build("INT"))


def _num(value: int) -> exp.Expr:
    return exp.Literal.number(value)


# EXTRACT part names where an engine spells them differently (PostgreSQL's are the
# default): Snowflake date parts https://docs.snowflake.com/en/sql-reference/functions-date-time
# and BigQuery EXTRACT https://cloud.google.com/bigquery/docs/reference/standard-sql/date_functions
_PART_NAMES: dict[str, dict[str, str]] = {
    "snowflake": {
        "ISODOW": "DAYOFWEEKISO",
        "WEEK": "WEEKISO",
        "ISOYEAR": "YEAROFWEEKISO",
        "DOY": "DAYOFYEAR",
    },
    "bigquery": {"WEEK": "ISOWEEK", "DOY": "DAYOFYEAR"},
}


# Redshift has no ISODOW or ISOYEAR date part (its WEEK is ISO, its DOW 0 = Sunday), so
# both are derived: https://docs.aws.amazon.com/redshift/latest/dg/r_Dateparts_for_datetime_functions.html
_DERIVED_ISO = ("redshift",)


def _extract(part: str, day: exp.Expr, dialect: str) -> exp.Expr:
    if dialect == "bigquery" and part == "ISODOW":
        # BigQuery has no ISO day of week; sqlglot renders MOD(DAYOFWEEK + 5, 7) + 1
        return _int(exp.DayOfWeekIso(this=day.copy()))
    if dialect in _DERIVED_ISO and part in ("ISODOW", "ISOYEAR"):
        return _derived_iso(part, day, dialect)
    name = _PART_NAMES.get(dialect, {}).get(part, part)
    return _int(exp.Extract(this=exp.var(name), expression=day.copy()))


def _derived_iso(part: str, day: exp.Expr, dialect: str) -> exp.Expr:
    """ISO day of week from DOW ((dow + 6) % 7 + 1); ISO year from year, month and ISO
    week (late-December days of week 1 belong to the next year, early-January days of
    week 52/53 to the previous one)."""
    if part == "ISODOW":
        shifted = exp.Paren(this=exp.Add(this=_extract("DOW", day, dialect), expression=_num(6)))
        return _int(exp.Add(this=exp.Mod(this=shifted, expression=_num(7)), expression=_num(1)))
    year, month, week = (_extract(p, day, dialect) for p in ("YEAR", "MONTH", "WEEK"))
    december = exp.and_(
        exp.EQ(this=month, expression=_num(12)), exp.EQ(this=week, expression=_num(1))
    )
    january = exp.and_(
        exp.EQ(this=month.copy(), expression=_num(1)),
        exp.GTE(this=week.copy(), expression=_num(52)),
    )
    ifs = [
        exp.If(this=december, true=exp.Add(this=year, expression=_num(1))),
        exp.If(this=january, true=exp.Sub(this=year.copy(), expression=_num(1))),
    ]
    return _int(exp.Case(ifs=ifs, default=year.copy()))


def _name_case(number: exp.Expr, names: Sequence[str], width: int | None = None) -> exp.Expr:
    """``CASE n WHEN 1 THEN 'January' …``: locale-independent names."""
    ifs = [
        exp.If(this=exp.EQ(this=number, expression=_num(i)), true=exp.Literal.string(n[:width]))
        for i, n in enumerate(names, start=1)
    ]
    return exp.Case(ifs=ifs)


def _date_literal(value: date) -> exp.Expr:
    return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))


def _fiscal(month: exp.Expr, year: exp.Expr, start: int) -> dict[str, exp.Expr]:
    # fiscal_month = ((month - start + 12) % 12) + 1; year bumps from the start month on
    shifted = exp.Paren(this=exp.Add(this=month, expression=_num(12 - start)))
    fiscal_month = exp.Add(this=exp.Mod(this=shifted, expression=_num(12)), expression=_num(1))
    bump = exp.If(this=exp.GTE(this=month, expression=_num(start)), true=_num(1))
    fiscal_year = (
        year if start == 1 else exp.Add(this=year, expression=exp.Case(ifs=[bump], default=_num(0)))
    )
    quarter = exp.Paren(this=exp.Add(this=fiscal_month, expression=_num(2)))
    return {
        "fiscal_year": _int(fiscal_year),
        "fiscal_quarter": _int(exp.IntDiv(this=quarter, expression=_num(3))),
        "fiscal_month": _int(fiscal_month),
    }


def _holiday(day: exp.Expr, holidays: Mapping[date, str]) -> exp.Expr:
    if not holidays:
        return exp.cast(exp.Null(), exp.DataType.build(f"VARCHAR({HOLIDAY_NAME_LENGTH})"))
    ifs = [
        exp.If(this=exp.EQ(this=day, expression=_date_literal(d)), true=exp.Literal.string(name))
        for d, name in sorted(holidays.items())
    ]
    return exp.Case(ifs=ifs)


def _date_attributes(spec: DateDimension, day: exp.Expr, dialect: str) -> dict[str, exp.Expr]:
    def part(name: str) -> exp.Expr:
        return _extract(name, day, dialect)

    year, month, dom, dow = part("YEAR"), part("MONTH"), part("DAY"), part("ISODOW")
    key = exp.Add(
        this=exp.Add(
            this=exp.Mul(this=year, expression=_num(10000)),
            expression=exp.Mul(this=month, expression=_num(100)),
        ),
        expression=dom,
    )
    holiday = _holiday(day, spec.holidays)
    weekend: exp.Expr = exp.In(this=dow, expressions=[_num(d) for d in spec.weekend_days])
    if not spec.weekend_days:  # a business open every day (`IN ()` is no SQL)
        weekend = exp.false()
    return {
        "date_key": _int(key),
        "full_date": day,
        "year": year,
        "quarter": part("QUARTER"),
        "month": month,
        "month_name": _name_case(month, MONTHS),
        "month_short": _name_case(month, MONTHS, 3),
        "day_of_month": dom,
        "day_of_year": part("DOY"),
        "day_of_week": dow,
        "day_name": _name_case(dow, DAYS),
        "day_short": _name_case(dow, DAYS, 3),
        "iso_week": part("WEEK"),
        "iso_year": part("ISOYEAR"),
        "is_weekend": weekend,
        **_fiscal(month, year, spec.fiscal_year_start_month),
        "is_holiday": exp.Not(this=exp.Is(this=holiday.copy(), expression=exp.Null())),
        "holiday_name": holiday,
    }


def build_date_rows(spec: DateDimension, dialect: str = "duckdb") -> exp.Select:
    """The SELECT producing every day's row (render it for ``dialect``)."""
    offset = exp.DateAdd(
        this=_date_literal(spec.start), expression=col("i", "s"), unit=exp.var("DAY")
    )
    days = exp.select(exp.alias_(exp.cast(offset, "DATE"), "d", quoted=True)).from_(
        exp.Subquery(this=integer_series((spec.end - spec.start).days, dialect), alias=ident("s"))
    )
    attrs = _date_attributes(spec, col("d", "days"), dialect)
    return exp.select(*(exp.alias_(e, n, quoted=True) for n, e in attrs.items())).from_(
        exp.Subquery(this=days, alias=ident("days"))
    )


def build_date_dimension(
    spec: DateDimension, target: TableRef, dialect: str
) -> list[exp.Expression]:
    """Create-if-missing, delete the range, insert it: a rerun yields the same rows."""
    names = [n for n, _ in spec.columns()]
    in_range = exp.Between(
        this=col("full_date"), low=_date_literal(spec.start), high=_date_literal(spec.end)
    )
    return [
        create_table(target, spec.columns()),
        exp.Delete(this=table(target), where=exp.Where(this=in_range)),
        insert_select(target, names, build_date_rows(spec, dialect)),
    ]


def load_date_dimension(con: Connector, spec: DateDimension, target: TableRef) -> int:
    """Generate the days in the engine behind ``con``; returns the number of days."""
    with con.transaction():
        for statement in build_date_dimension(spec, target, con.dialect):
            con.execute(statement)
    return (spec.end - spec.start).days + 1


# -- time of day ---------------------------------------------------------------

_TIME_COLUMNS = [
    ("time_key", "INT"),  # hhmm
    ("minute_of_day", "INT"),
    ("hour", "INT"),
    ("minute", "INT"),
    ("hour_12", "INT"),
    ("am_pm", "VARCHAR(2)"),
    ("day_part", f"VARCHAR({DAY_PART_LENGTH})"),
    ("time_label", "VARCHAR(5)"),
]


@dataclass(frozen=True)
class TimeOfDayDimension:
    """One row per minute of a day (1,440 rows); day parts start at the given hours.

    The day wraps: with parts from 6 and from 22 only, hours 0–5 belong to the part
    that started at 22 the evening before (they were left without a part).
    """

    day_parts: tuple[tuple[int, str], ...] = DEFAULT_DAY_PARTS

    def __post_init__(self) -> None:
        hours = [h for h, _ in self.day_parts]
        if not hours or any(not _is_int(h) or not 0 <= h <= 23 for h in hours):
            raise ConfigError(f"day_parts need start hours 0..23, not {hours}", field="day_parts")
        if len(set(hours)) != len(hours):
            raise ConfigError(f"day_parts start two parts at one hour: {hours}", field="day_parts")
        for _, name in self.day_parts:
            if not 0 < len(name) <= DAY_PART_LENGTH:  # day_part is VARCHAR(20)
                raise ConfigError(
                    f"day part name {name!r} must be 1 to {DAY_PART_LENGTH} characters",
                    field="day_parts",
                )

    def columns(self) -> list[tuple[str, exp.DataType]]:
        return [(name, exp.DataType.build(kind)) for name, kind in _TIME_COLUMNS]


def _two_digits(value: exp.Expr) -> exp.Expr:
    text = exp.cast(value, exp.DataType.build("VARCHAR"))
    return exp.Pad(
        this=text, expression=_num(2), fill_pattern=exp.Literal.string("0"), is_left=True
    )


def _day_part(hour: exp.Expr, parts: Sequence[tuple[int, str]]) -> exp.Expr:
    ordered = sorted(parts, reverse=True)
    ifs = [
        exp.If(this=exp.GTE(this=hour.copy(), expression=_num(h)), true=exp.Literal.string(n))
        for h, n in ordered
    ]
    # before the first part starts, the last one of the previous day goes on
    return exp.Case(ifs=ifs, default=exp.Literal.string(ordered[0][1]))


def build_time_rows(spec: TimeOfDayDimension, dialect: str = "duckdb") -> exp.Select:
    m = col("i", "s")
    hour = _int(exp.IntDiv(this=m, expression=_num(60)))
    minute = _int(exp.Mod(this=m.copy(), expression=_num(60)))
    twelve = exp.Mod(this=hour.copy(), expression=_num(12))
    attrs: dict[str, exp.Expr] = {
        "time_key": _int(exp.Add(this=exp.Mul(this=hour, expression=_num(100)), expression=minute)),
        "minute_of_day": _int(m.copy()),
        "hour": hour.copy(),
        "minute": minute.copy(),
        "hour_12": _int(
            exp.Case(
                ifs=[exp.If(this=exp.EQ(this=twelve, expression=_num(0)), true=_num(12))],
                default=twelve.copy(),
            )
        ),
        "am_pm": exp.Case(
            ifs=[
                exp.If(
                    this=exp.LT(this=hour.copy(), expression=_num(12)),
                    true=exp.Literal.string("AM"),
                )
            ],
            default=exp.Literal.string("PM"),
        ),
        "day_part": _day_part(hour, spec.day_parts),
        "time_label": exp.DPipe(
            this=exp.DPipe(this=_two_digits(hour.copy()), expression=exp.Literal.string(":")),
            expression=_two_digits(minute.copy()),
        ),
    }
    return exp.select(*(exp.alias_(e, n, quoted=True) for n, e in attrs.items())).from_(
        exp.Subquery(this=integer_series(24 * 60 - 1, dialect), alias=ident("s"))
    )


def build_time_dimension(
    spec: TimeOfDayDimension, target: TableRef, dialect: str
) -> list[exp.Expression]:
    names = [n for n, _ in spec.columns()]
    return [
        create_table(target, spec.columns()),
        # BigQuery refuses a DELETE without WHERE
        exp.Delete(this=table(target), where=exp.Where(this=exp.true())),
        insert_select(target, names, build_time_rows(spec, dialect)),
    ]


def load_time_dimension(con: Connector, spec: TimeOfDayDimension, target: TableRef) -> int:
    with con.transaction():
        for statement in build_time_dimension(spec, target, con.dialect):
            con.execute(statement)
    return 24 * 60
