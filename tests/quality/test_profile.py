"""Profiling on real engines: exact figures on a small table with known content."""

from __future__ import annotations

import pytest

from crane.connectors.base import connect
from crane.quality.profile import ProfileError, profile_table, profile_url

# 1,000 rows + 3 exact duplicates of the first rows; known nulls, zeros, negatives, emails
DUCK_TABLE = """
CREATE TABLE people AS
SELECT range AS id,
       CASE WHEN range % 10 = 0 THEN NULL ELSE (range % 50) - 5 END AS score,
       CASE WHEN range % 100 = 0 THEN 'broken' ELSE 'u' || range || '@example.com' END AS email,
       ['a', 'b', 'c', 'd'][1 + range % 4] AS grp,
       DATE '2024-01-01' + (range % 20)::INT AS day
FROM range(1000)
"""


@pytest.fixture
def duck(duck_url):
    with connect(duck_url) as con:
        con.execute(DUCK_TABLE)
    return duck_url


def test_duckdb_profile_exact_figures(duck):
    p = profile_url(duck, "people")
    assert p.rows == 1000 and p.scans == 2 and p.engine == "duckdb"
    score = p.column("score")
    assert (score.nulls, score.null_pct) == (100, 10.0)
    assert (score.min, score.max) == (-4, 44)  # range%50 - 5 over non-null rows
    assert score.zeros == 20 and score.negatives == 80
    assert set(score.quantiles) == {"p5", "p25", "p50", "p75", "p95"}
    assert sum(b.count for b in score.histogram) == score.count == 900
    assert len(score.histogram) == 20 and score.histogram[0].lower == -4
    email = p.column("email")
    assert email.pattern() == ("email", pytest.approx(0.99))
    assert (email.length_min, email.length_max) == (6, 16)  # "broken", "u999@example.com"
    grp = p.column("grp")
    assert grp.top_values == [("a", 250), ("b", 250), ("c", 250), ("d", 250)]
    day = p.column("day")
    assert sum(b.count for b in day.histogram) == 1000
    assert p.candidate_keys == ["id"] and p.column("id").distinct == 1000
    assert p.column("id").distinct_exact and p.duplicate_rows == 0


def test_duckdb_duplicates_and_no_key(duck):
    with connect(duck) as con:
        con.execute("INSERT INTO people SELECT * FROM people WHERE id < 3")
    p = profile_url(duck, "people", exact_distinct=True)
    assert p.rows == 1003 and p.duplicate_rows == 3 and p.candidate_keys == []
    assert p.column("grp").distinct == 4 and p.column("grp").distinct_exact


def test_profile_opens_read_only(duck):
    with connect(duck, read_only=True) as con:
        p = profile_table(con, "people")
        with pytest.raises(Exception, match="read-only|read only"):
            con.execute("DELETE FROM people")
    assert p.rows == 1000


def test_missing_table_is_a_clear_error(duck):
    with pytest.raises(ProfileError, match="table not found") as info:
        profile_url(duck, "nope")
    assert info.value.table == "nope"


def test_empty_table(duck_url):
    with connect(duck_url) as con:
        con.execute("CREATE TABLE e (a INT, b VARCHAR)")
    p = profile_url(duck_url, "e")
    assert p.rows == 0 and p.column("a").histogram == [] and p.duplicate_rows == 0


@pytest.mark.integration
def test_postgres_profile_same_figures(pg_schema):
    url = "postgresql://postgres@127.0.0.1:5432/test"
    with connect(url) as con, con.transaction():
        con.execute(
            f'CREATE TABLE "{pg_schema}".people AS '
            "SELECT g AS id, CASE WHEN g % 10 = 0 THEN NULL ELSE (g % 50) - 5 END AS score, "
            "CASE WHEN g % 100 = 0 THEN 'broken' ELSE 'u' || g || '@example.com' END AS email, "
            "(ARRAY['a','b','c','d'])[1 + g % 4] AS grp, "
            "DATE '2024-01-01' + (g % 20) AS day FROM generate_series(0, 999) g"
        )
    p = profile_url(url, f"{pg_schema}.people")
    assert p.rows == 1000 and p.engine == "postgres"
    score = p.column("score")
    assert (score.nulls, score.min, score.max, score.zeros, score.negatives) == (
        100,
        -4,
        44,
        20,
        80,
    )
    assert score.quantiles["p50"] == pytest.approx(20, abs=1)
    assert sum(b.count for b in score.histogram) == 900
    assert p.column("email").patterns["email"] == pytest.approx(0.99)
    assert p.column("grp").top_values == [("a", 250), ("b", 250), ("c", 250), ("d", 250)]
    assert sum(b.count for b in p.column("day").histogram) == 1000
    assert p.candidate_keys == ["id"] and p.duplicate_rows == 0


def test_big_table_path_samples_patterns_and_verifies_keys(duck, monkeypatch):
    """Tables above SAMPLE_FROM_ROWS: approximate distincts, sampled patterns, keys proven."""
    from crane.quality import profile as module

    monkeypatch.setattr(module, "SAMPLE_FROM_ROWS", 100)
    p = profile_url(duck, "people")
    grp = p.column("grp")
    assert not grp.distinct_exact and grp.top_values[0][1] == 250  # exact counts in scan 2
    assert p.column("email").patterns["email"] == pytest.approx(0.99, abs=0.05)
    ident = p.column("id")
    assert ident.distinct_exact and ident.distinct == 1000 and ident.top_values == []
    assert p.candidate_keys == ["id"] and p.duplicate_rows == 0
    with connect(duck) as con:
        con.execute("INSERT INTO people SELECT * FROM people WHERE id < 3")
    again = profile_url(duck, "people")
    assert again.candidate_keys == [] and again.duplicate_rows == 3  # the third-query path
