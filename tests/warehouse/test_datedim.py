"""Date and time-of-day dimensions generated in DuckDB and PostgreSQL, checked against Python."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import _wh_engines
import pytest
from _wh_engines import RENDER_ONLY, parses_back

from crane.connectors.base import TableRef
from crane.errors import ConfigError
from crane.warehouse.datedim import (
    DateDimension,
    TimeOfDayDimension,
    build_date_dimension,
    build_time_dimension,
    load_date_dimension,
    load_time_dimension,
)

engine = _wh_engines.engine

HOLIDAYS = [
    {"date": "2024-12-25", "name": "Christmas Day"},
    {"date": "2024-01-01", "name": "New Year"},
    {"date": "2024-01-01", "name": "ignored duplicate"},
]


def _expected(d: date, fiscal_start: int, holidays: dict[date, str]) -> tuple:
    iso = d.isocalendar()
    fiscal_month = (d.month - fiscal_start) % 12 + 1
    fiscal_year = d.year + (1 if fiscal_start > 1 and d.month >= fiscal_start else 0)
    return (
        d.year * 10000 + d.month * 100 + d.day,
        d,
        d.year,
        (d.month - 1) // 3 + 1,
        d.month,
        calendar.month_name[d.month],
        calendar.month_abbr[d.month],
        d.day,
        d.timetuple().tm_yday,
        iso.weekday,
        calendar.day_name[d.weekday()],
        calendar.day_abbr[d.weekday()],
        iso.week,
        iso.year,
        iso.weekday >= 6,
        fiscal_year,
        (fiscal_month - 1) // 3 + 1,
        fiscal_month,
        d in holidays,
        holidays.get(d),
    )


def test_date_dimension_matches_python_reference(engine):
    e = engine
    spec = DateDimension.from_config(
        {
            "start": "2020-12-20",
            "end": "2025-01-10",
            "fiscal_year_start_month": 7,
            "holidays": HOLIDAYS,
        }
    )
    target = e.ref("dim_date")
    assert load_date_dimension(e.con, spec, target) == 1483
    assert load_date_dimension(e.con, spec, target) == 1483  # rerun: same rows, no doubles
    got = e.rows('SELECT * FROM {s}."dim_date" ORDER BY date_key')
    days = [spec.start + timedelta(n) for n in range((spec.end - spec.start).days + 1)]
    assert got == [_expected(d, 7, dict(spec.holidays)) for d in days]
    # the spots engines get wrong: ISO week 53, leap day, fiscal boundary, holiday
    by_key = {r[0]: r for r in got}
    assert by_key[20210103][12:14] == (53, 2020)
    assert by_key[20241230][12:14] == (1, 2025)
    assert by_key[20240229][8] == 60
    assert by_key[20240630][15:18] == (2024, 4, 12) and by_key[20240701][15:18] == (2025, 1, 1)
    assert by_key[20240101][18:] == (True, "New Year")


def test_calendar_fiscal_year_and_bad_config():
    spec = DateDimension(date(2024, 1, 1), date(2024, 1, 1))
    assert spec.fiscal_year_start_month == 1
    with pytest.raises(ConfigError):
        DateDimension(date(2024, 1, 2), date(2024, 1, 1))
    with pytest.raises(ConfigError):
        DateDimension(date(2024, 1, 1), date(2024, 1, 2), fiscal_year_start_month=13)


def test_time_of_day_dimension(engine):
    e = engine
    target = e.ref("dim_time")
    assert load_time_dimension(e.con, TimeOfDayDimension(), target) == 1440
    load_time_dimension(e.con, TimeOfDayDimension(), target)
    assert e.rows('SELECT COUNT(*), COUNT(DISTINCT time_key) FROM {s}."dim_time"') == [(1440, 1440)]
    got = e.rows(
        'SELECT time_key, hour, minute, hour_12, am_pm, day_part, time_label FROM {s}."dim_time" '
        "WHERE minute_of_day IN (0, 359, 360, 719, 720, 1080, 1439) ORDER BY minute_of_day"
    )
    assert got == [
        (0, 0, 0, 12, "AM", "night", "00:00"),
        (559, 5, 59, 5, "AM", "night", "05:59"),
        (600, 6, 0, 6, "AM", "morning", "06:00"),
        (1159, 11, 59, 11, "AM", "morning", "11:59"),
        (1200, 12, 0, 12, "PM", "afternoon", "12:00"),
        (1800, 18, 0, 6, "PM", "evening", "18:00"),
        (2359, 23, 59, 11, "PM", "evening", "23:59"),
    ]


@pytest.mark.parametrize("dialect", RENDER_ONLY)
def test_renders_for_other_engines(dialect):
    spec = DateDimension(date(2024, 1, 1), date(2024, 12, 31), 4, {date(2024, 12, 25): "X"})
    target = TableRef("dim_date", "w")
    statements = build_date_dimension(spec, target, dialect)
    statements += build_time_dimension(TimeOfDayDimension(), TableRef("dim_time", "w"), dialect)
    for statement in statements:
        parses_back(statement, dialect)
    text = statements[2].sql(dialect)
    marker = {
        "snowflake": ["GENERATOR", "DAYOFWEEKISO", "WEEKISO", "YEAROFWEEKISO"],
        "bigquery": ["GENERATE_ARRAY", "MOD(EXTRACT(DAYOFWEEK", "EXTRACT(ISOWEEK", "ISOYEAR"],
        "redshift": ["RECURSIVE", "EXTRACT(DOW", "EXTRACT(WEEK"],  # no ISODOW there
    }
    assert all(m in text for m in marker[dialect])


@pytest.mark.integration
def test_redshift_iso_parts_are_derived_and_right(pg_schema):
    """Redshift has no ISODOW or ISOYEAR date part: the Redshift date dimension asked for
    both. Its rendering now derives them from DOW, WEEK (ISO there), MONTH and YEAR; run on
    PostgreSQL (whose DOW and WEEK mean the same) it matches Python at every year end."""
    import sqlglot

    from crane.connectors.base import connect
    from crane.warehouse.datedim import build_date_rows

    spec = DateDimension(start=date(2015, 12, 20), end=date(2027, 1, 10))
    rows = build_date_rows(spec, "redshift")
    text = rows.sql("redshift")
    assert "ISODOW" not in text and "ISOYEAR" not in text
    assert sqlglot.parse_one(text, read="redshift") is not None
    with connect(_wh_engines.PG_URL) as con:
        got = con.fetch(
            f"SELECT full_date, iso_year, iso_week, day_of_week FROM ({rows.sql('postgres')}) q"
        )
    assert len(got) == (spec.end - spec.start).days + 1
    assert all((y, w, dow) == tuple(d.isocalendar()) for d, y, w, dow in got)


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        ({"fiscal_start_month": 7}, "fiscal_start_month", "no setting 'fiscal_start_month'"),
        ({"start": "2024-02-30"}, "start", "start must be a date"),
        ({"end": None}, "end", "end must be a date"),
        ({"holidays": [{"date": "2024-13-01", "name": "X"}]}, "holidays[0].date", "date"),
        ({"holidays": [{"date": "2024-12-25"}]}, "holidays[0]", "needs a date and a name"),
        ({"holidays": [{"date": "2024-12-25", "name": "x" * 101}]}, "holidays", "1 to 100"),
        ({"fiscal_year_start_month": "7"}, "fiscal_year_start_month", "1..12, not '7'"),
        ({"weekend_days": [0, 6]}, "weekend_days", "ISO day numbers"),
        ({"weekend_days": "67"}, "weekend_days", "list of ISO day numbers"),
    ],
)
def test_date_config_errors_name_their_field(config, field, message):
    """Misspelt keys were ignored, weekend_days from config was dropped, and bad values
    failed as KeyError, ValueError or a bare assert (none under python -O)."""
    full = {"start": "2024-01-01", "end": "2024-12-31", **config}
    with pytest.raises(ConfigError, match=message) as info:
        DateDimension.from_config(full)
    assert info.value.field == field
    if "fiscal_start_month" in config:
        assert "fiscal_year_start_month" in str(info.value.hint)


def test_weekend_days_from_config_reach_the_rows(engine):
    e = engine
    spec = DateDimension.from_config(
        {"start": "2024-03-01", "end": "2024-03-14", "weekend_days": [5, 6]}
    )
    load_date_dimension(e.con, spec, e.ref("dim_date"))
    got = e.rows('SELECT day_of_week FROM {s}."dim_date" WHERE is_weekend ORDER BY 1')
    assert got == [(5,), (5,), (6,), (6,)]
    # no weekend at all: every day is a working day
    spec = DateDimension.from_config(
        {"start": "2024-03-01", "end": "2024-03-14", "weekend_days": []}
    )
    load_date_dimension(e.con, spec, e.ref("dim_date"))
    assert e.rows('SELECT COUNT(*) FROM {s}."dim_date" WHERE NOT is_weekend') == [(14,)]


def test_long_holiday_name_is_a_config_error_not_an_engine_error(engine):
    """holiday_name is VARCHAR(100): PostgreSQL refused the whole load, DuckDB kept it."""
    e = engine
    with pytest.raises(ConfigError, match="1 to 100 characters"):
        spec = DateDimension(
            date(2024, 1, 1), date(2024, 1, 2), holidays={date(2024, 1, 1): "x" * 101}
        )
        load_date_dimension(e.con, spec, e.ref("dim_date"))
    spec = DateDimension(date(2024, 1, 1), date(2024, 1, 2), holidays={date(2024, 1, 1): "x" * 100})
    load_date_dimension(e.con, spec, e.ref("dim_date"))
    assert e.rows('SELECT LENGTH(holiday_name) FROM {s}."dim_date" WHERE is_holiday') == [(100,)]


def test_day_parts_wrap_around_midnight(engine):
    """Parts starting at 6 and 22 left hours 0-5 with no day part (NULL)."""
    e = engine
    spec = TimeOfDayDimension(day_parts=((6, "day"), (22, "night")))
    load_time_dimension(e.con, spec, e.ref("dim_time"))
    got = e.rows(
        'SELECT hour, day_part FROM {s}."dim_time" WHERE minute = 0 AND hour IN (0, 5, 6, 21, 22)'
        " ORDER BY hour"
    )
    assert got == [(0, "night"), (5, "night"), (6, "day"), (21, "day"), (22, "night")]
    assert e.rows('SELECT COUNT(*) FROM {s}."dim_time" WHERE day_part IS NULL') == [(0,)]


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ((), "start hours 0..23"),
        (((24, "late"),), "start hours 0..23"),
        (((0, "a"), (0, "b")), "two parts at one hour"),
        (((0, "x" * 21),), "1 to 20 characters"),
    ],
)
def test_bad_day_parts_are_config_errors(parts, message):
    with pytest.raises(ConfigError, match=message) as info:
        TimeOfDayDimension(day_parts=parts)
    assert info.value.field == "day_parts"


@pytest.mark.parametrize("fiscal_start", [1, 12])
def test_fiscal_start_months_at_the_edges_and_holidays_outside_the_range(engine, fiscal_start):
    """Start month 1 is the calendar year; 12 makes December the first month of the next
    fiscal year. A holiday outside the range adds no day and no error."""
    e = engine
    holidays = {date(2023, 12, 25): "before", date(2024, 2, 29): "leap", date(2030, 1, 1): "after"}
    spec = DateDimension(date(2023, 12, 30), date(2025, 1, 2), fiscal_start, holidays)
    assert load_date_dimension(e.con, spec, e.ref("dim_date")) == 370
    got = e.rows('SELECT * FROM {s}."dim_date" ORDER BY date_key')
    days = [spec.start + timedelta(n) for n in range(370)]
    assert got == [_expected(d, fiscal_start, holidays) for d in days]
    by_key = {r[0]: r for r in got}
    if fiscal_start == 12:
        assert by_key[20231231][15:18] == (2024, 1, 1) and by_key[20241130][15:18] == (2024, 4, 12)
    assert [r[19] for r in got if r[18]] == ["leap"]
