"""Distribution change: PSI / KS / chi-square math against known values, and the check on
real engines with a reference window, a reference table and the previous run."""

from __future__ import annotations

import math

import pytest

from crane.connectors.base import connect
from crane.quality.distribution import (
    chi_square,
    chi_square_pvalue,
    ks_pvalue,
    numeric_shift,
    psi,
)
from crane.quality.executor import run_suite
from crane.quality.loader import build_suite
from crane.state.quality import QualityStore


def test_psi_known_value():
    # hand computation: (0.3-0.5)ln(0.3/0.5) + (0.7-0.5)ln(0.7/0.5)
    expected = -0.2 * math.log(0.6) + 0.2 * math.log(1.4)
    assert psi([0.5, 0.5], [0.3, 0.7]) == pytest.approx(expected)
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0


def test_chi_square_against_reference_values():
    # chi-square(1) critical value 3.841 at p = 0.05; chi-square(4) 9.488 at 0.05
    assert chi_square_pvalue(3.841, 1) == pytest.approx(0.05, abs=1e-3)
    assert chi_square_pvalue(9.488, 4) == pytest.approx(0.05, abs=1e-3)
    assert chi_square_pvalue(30.0, 4) == pytest.approx(4.894e-6, rel=1e-2)
    # 2x2 table [[10, 20], [20, 10]]: statistic 6.667
    statistic, dof = chi_square([10, 20], [20, 10])
    assert (round(statistic, 3), dof) == (6.667, 1)


def test_ks_pvalue_reference_values():
    # the asymptotic Kolmogorov distribution: P(K > 1.36) ~ 0.049 for large n
    n = 1_000_000
    assert ks_pvalue(1.36 / math.sqrt(n / 2), n, n) == pytest.approx(0.049, abs=2e-3)
    assert ks_pvalue(0.0, 100, 100) == 1.0
    value, d, p = numeric_shift([1, 2, 3], [0.2, 0.5, 0.9], [0.2, 0.5, 0.9], 100, 100)
    assert value == pytest.approx(0) and d == 0 and p == 1.0


@pytest.fixture
def sales(duck_url):
    """day 1: amounts uniform 0..99, countries NL/DE evenly; day 2 the same; day 3 shifted."""
    with connect(duck_url) as con:
        con.execute(
            "CREATE TABLE sales AS SELECT d AS day, (r % 100)::DOUBLE "
            "+ CASE WHEN d = 3 THEN 40 ELSE 0 END AS amount, "
            "CASE WHEN d = 3 AND r % 4 <> 0 THEN 'FR' WHEN r % 2 = 0 THEN 'NL' ELSE 'DE' END "
            "AS country FROM range(1, 4) t(d), range(2000) s(r)"
        )
    return duck_url


def check(spec, url, store=None):
    outcome = run_suite(build_suite([{"table": "sales", **spec}], {"db": url}), store)
    assert outcome.error is None
    return outcome.results[0]


@pytest.mark.parametrize("method", ["psi", "ks"])
def test_numeric_shift_against_a_reference_window(sales, method):
    same = check(
        {
            "type": "distribution",
            "column": "amount",
            "method": method,
            "filter": "day = 2",
            "reference_filter": "day = 1",
        },
        sales,
    )
    assert same.status == "pass" and same.value == pytest.approx(0, abs=1e-9)
    moved = check(
        {
            "type": "distribution",
            "column": "amount",
            "method": method,
            "filter": "day = 3",
            "reference_filter": "day = 1",
        },
        sales,
    )
    assert moved.status == "fail" and moved.details["n"] == moved.details["n_ref"] == 2000
    if method == "ks":
        assert moved.value == pytest.approx(0.4, abs=0.05) and moved.details["p_value"] < 1e-6
    else:
        assert moved.value > 0.25


def test_chi_square_against_a_reference_table(sales):
    with connect(sales) as con:
        con.execute("CREATE TABLE snapshot AS SELECT * FROM sales WHERE day = 1")
    same = check(
        {
            "type": "distribution",
            "column": "country",
            "method": "chi_square",
            "filter": "day = 2",
            "reference_table": "snapshot",
        },
        sales,
    )
    assert same.status == "pass" and same.value == 0
    moved = check(
        {
            "type": "distribution",
            "column": "country",
            "method": "chi_square",
            "filter": "day = 3",
            "reference_table": "snapshot",
        },
        sales,
    )
    assert moved.status == "fail" and moved.details["dof"] == 2 and moved.details["p_value"] < 1e-9


@pytest.mark.parametrize("column,method", [("amount", "ks"), ("country", "chi_square")])
def test_previous_run_reference_from_history(sales, tmp_path, column, method):
    store = QualityStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    spec = {"type": "distribution", "column": column, "method": method, "reference": "previous_run"}

    def load(day: int) -> None:  # the table as a daily load would leave it
        with connect(sales) as con:
            con.execute(f"CREATE OR REPLACE TABLE live AS SELECT * FROM sales WHERE day = {day}")

    def run():
        return run_suite(build_suite([{"table": "live", **spec}], {"db": sales}), store).results[0]

    load(1)
    first = run()
    assert first.status == "pass" and "baseline" in first.message
    load(2)
    assert run().status == "pass"  # same distribution as the stored day-1 summary
    load(3)
    shifted = run()
    assert shifted.status == "fail" and shifted.details["p_value"] < 1e-6


def test_reference_is_required(duck_url):
    from crane.errors import ConfigError

    with pytest.raises(ConfigError, match="needs a reference"):
        build_suite([{"type": "distribution", "table": "t", "column": "a"}], {"db": duck_url})


@pytest.mark.integration
def test_postgres_reference_window(pg_schema):
    url = "postgresql://postgres@127.0.0.1:5432/test"
    with connect(url) as con, con.transaction():
        con.execute(
            f'CREATE TABLE "{pg_schema}".sales AS SELECT d AS day, '
            "(r % 100)::float8 + CASE WHEN d = 3 THEN 40 ELSE 0 END AS amount, "
            "CASE WHEN r % 2 = 0 THEN 'NL' ELSE 'DE' END AS country "
            "FROM generate_series(1, 3) d, generate_series(0, 1999) r"
        )
    table = f"{pg_schema}.sales"
    specs = [
        {
            "type": "distribution",
            "table": table,
            "column": "amount",
            "method": "ks",
            "filter": "day = 3",
            "reference_filter": "day = 1",
            "name": "ks",
        },
        {
            "type": "distribution",
            "table": table,
            "column": "country",
            "method": "chi_square",
            "filter": "day = 2",
            "reference_filter": "day = 1",
            "name": "chi",
        },
    ]
    outcome = run_suite(build_suite(specs, {"db": url}))
    by_name = {r.check: r for r in outcome.results}
    assert by_name["ks"].status == "fail" and by_name["ks"].value == pytest.approx(0.4, abs=0.05)
    assert by_name["chi"].status == "pass" and by_name["chi"].value == 0
