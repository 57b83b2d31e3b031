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
       DATE '2024-01-01' + (range % 20)::INT AS day,
       range % 3 = 0 AS flag
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
    assert p.column("id").top_values == []  # unique: every value would count 1
    flag = p.column("flag")  # a boolean's two counts come from scan 1
    assert flag.top_values == [(False, 666), (True, 334)] and flag.distinct == 2


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
            "DATE '2024-01-01' + (g % 20) AS day, g % 3 = 0 AS flag "
            "FROM generate_series(0, 999) g"
        )
    p = profile_url(url, f"{pg_schema}.people")
    assert p.engine == "postgres"
    _assert_people(p)
    assert sum(b.count for b in p.column("score").histogram) == 900
    assert sum(b.count for b in p.column("day").histogram) == 1000
    assert p.column("flag").top_values == [(False, 666), (True, 334)]


def _people_rows() -> list[tuple]:
    return [
        (
            g,
            None if g % 10 == 0 else g % 50 - 5,
            "broken" if g % 100 == 0 else f"u{g}@example.com",
            "abcd"[g % 4],
        )
        for g in range(1000)
    ]


def _assert_people(p) -> None:
    assert p.rows == 1000 and p.candidate_keys == ["id"] and p.duplicate_rows == 0
    score = p.column("score")
    assert (score.nulls, score.min, score.max, score.zeros, score.negatives) == (
        100,
        -4,
        44,
        20,
        80,
    )
    assert score.quantiles["p50"] == pytest.approx(20, abs=1)
    assert p.column("email").patterns["email"] == pytest.approx(0.99)
    assert p.column("grp").top_values == [("a", 250), ("b", 250), ("c", 250), ("d", 250)]


def test_a_sqlite_table_is_profiled_through_duckdb(tmp_path):
    """SQLite has no quantiles or regular expressions: DuckDB reads the file read-only and
    computes the same figures (it used to be 'profiling is not supported on sqlite')."""
    import sqlite3

    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE people (id INTEGER, score INTEGER, email TEXT, grp TEXT)")
        con.executemany("INSERT INTO people VALUES (?, ?, ?, ?)", _people_rows())
    before = path.read_bytes()
    p = profile_url(f"sqlite:///{path}", "people")
    _assert_people(p)
    assert p.engine == "duckdb over sqlite" and path.read_bytes() == before


@pytest.mark.integration
def test_a_mariadb_table_is_profiled_through_duckdb(my_db):
    import pymysql

    con = pymysql.connect(host="127.0.0.1", user="root", database=my_db, autocommit=True)
    with con.cursor() as cur:
        cur.execute("CREATE TABLE people (id INT, score INT, email VARCHAR(40), grp CHAR(1))")
        cur.executemany("INSERT INTO people VALUES (%s, %s, %s, %s)", _people_rows())
    con.close()
    p = profile_url(f"mysql://root@127.0.0.1:3306/{my_db}", "people")
    _assert_people(p)
    assert p.engine == "duckdb over mysql"


def test_big_table_path_samples_patterns_and_counts_exactly_where_cheap(duck, monkeypatch):
    """Tables above SAMPLE_FROM_ROWS: patterns from a row sample; distincts exact where every
    value is counted (low cardinality) or a bitmap covers the column's integer span."""
    from crane.quality import profile as module

    monkeypatch.setattr(module, "SAMPLE_FROM_ROWS", 100)
    p = profile_url(duck, "people")
    assert p.scans == 3  # scan 1, the row-sample pass, scan 2
    grp = p.column("grp")
    assert grp.distinct_exact and grp.distinct == 4 and grp.top_values[0] == ("a", 250)
    score = p.column("score")  # (range % 50) - 5 where range % 10 != 0: 45 values
    assert score.distinct_exact and score.distinct == 45 and score.top_values[0][1] == 20
    q = score.quantiles  # t-digest of the row sample
    assert list(q) == ["p5", "p25", "p50", "p75", "p95"] and -4 <= q["p5"] <= q["p95"] <= 44
    assert q["p50"] == pytest.approx(20, abs=8)
    assert p.column("day").distinct_exact and p.column("day").distinct == 20
    assert p.column("email").patterns["email"] == pytest.approx(0.99, abs=0.05)
    assert not p.column("email").distinct_exact  # text: the HyperLogLog estimate
    ident = p.column("id")  # proven by a bitmap over 0..999
    assert ident.distinct_exact and ident.distinct == 1000 and ident.top_values == []
    assert p.candidate_keys == ["id"] and p.duplicate_rows == 0
    with connect(duck) as con:
        con.execute("INSERT INTO people SELECT * FROM people WHERE id < 3")
    again = profile_url(duck, "people")
    assert again.candidate_keys == [] and again.duplicate_rows == 3  # the fourth-query path
    assert again.column("id").distinct == 1000 and "id" not in again.likely_keys
    assert again.scans == 4


def test_big_table_bitmaps_cover_decimals_and_dates(duck_url, monkeypatch):
    from crane.quality import profile as module

    monkeypatch.setattr(module, "SAMPLE_FROM_ROWS", 100)
    with connect(duck_url) as con:
        con.execute(
            "CREATE TABLE prices AS SELECT (range / 100)::DECIMAL(10, 2) AS price, "
            "DATE '2000-01-01' + range::INT AS day, range % 7 AS g FROM range(1000)"
        )
        con.execute("INSERT INTO prices VALUES (0.00, DATE '1999-01-01', 1)")  # price repeats
    p = profile_url(duck_url, "prices")
    price, day = p.column("price"), p.column("day")
    assert (price.distinct, price.distinct_exact) == (1000, True)
    assert (day.distinct, day.distinct_exact) == (1001, True)
    assert p.candidate_keys == ["day"] and p.duplicate_rows == 0


def test_big_table_without_integer_key_proves_one_by_count_distinct(duck_url, monkeypatch):
    """No bitmap for a near-unique column (text, or a span too wide): the most key-like
    one is proven with COUNT(DISTINCT), the others stay likely keys."""
    from crane.quality import profile as module

    monkeypatch.setattr(module, "SAMPLE_FROM_ROWS", 100)
    monkeypatch.setattr(module, "BITMAP_MAX_BITS", 10)
    with connect(duck_url) as con:
        con.execute(
            "CREATE TABLE codes AS SELECT range * 1000 AS n, 'k-' || range AS code FROM range(1000)"
        )
    p = profile_url(duck_url, "codes")
    assert p.candidate_keys == ["n"] and p.column("n").distinct_exact  # integers first
    assert not p.column("code").distinct_exact  # unproven: at most a likely key
    assert set(p.likely_keys) <= {"code"}  # (a HyperLogLog estimate of 1,000 values is +-10 %)


def test_low_cardinality_histogram_matches_duckdb_binning(duck_url):
    """A column with few values is binned from its value counts (no histogram query);
    the bins must equal DuckDB's own ``histogram(x, bounds)``, values on a bound included."""
    with connect(duck_url) as con:
        con.execute(
            "CREATE TABLE few AS SELECT [0, 1, 1, 2, 4, 4, 4][1 + range % 7] AS x FROM range(700)"
        )
    p = profile_url(duck_url, "few")
    bins = p.column("x").histogram
    assert [(b.lower, b.upper) for b in bins] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    with connect(duck_url) as con:
        (engine,) = con.fetch("SELECT histogram(x::DOUBLE, [1.0, 2.0, 3.0]) FROM few")[0]
    assert [b.count for b in bins] == [engine[k] for k in sorted(engine)] == [300, 100, 0, 300]


def test_big_table_sparse_column_quantiles_when_the_sample_misses_it(duck_url, monkeypatch):
    from crane.quality import profile as module

    monkeypatch.setattr(module, "SAMPLE_FROM_ROWS", 100)
    with connect(duck_url) as con:
        con.execute("CREATE TABLE sparse AS SELECT range AS id, range % 5 AS x FROM range(1000)")
        # keep x only on rows the 1/16 row sample never reads, and on few of them
        con.execute("UPDATE sparse SET x = NULL WHERE hash(rowid) % 16 = 0 OR id >= 40")
        (kept,) = con.fetch("SELECT count(x) FROM sparse")[0]
    p = profile_url(duck_url, "sparse")
    x = p.column("x")
    assert x.count == kept > 0 and list(x.quantiles) == ["p5", "p25", "p50", "p75", "p95"]
    assert 0 <= x.quantiles["p5"] <= x.quantiles["p95"] <= 4


def test_a_million_rows_are_profiled_in_two_scans_and_a_vector_sample(duck_url):
    """From SAMPLE_FROM_ROWS rows on, patterns, quantiles and top-value candidates come from a
    TABLESAMPLE SYSTEM read of ~1/16 of the table, which is no third scan."""
    with connect(duck_url) as con:
        con.execute(
            "CREATE TABLE big AS SELECT range AS id, range % 1000 AS bucket,"
            " CASE WHEN range % 50 = 0 THEN 'broken' ELSE 'u' || range || '@example.com' END"
            " AS email, ['x', 'y', 'z'][1 + range % 3] AS tag FROM range(1000000)"
        )
    p = profile_url(duck_url, "big")
    assert p.rows == 1_000_000 and p.scans == 2
    assert p.column("email").patterns["email"] == pytest.approx(0.98, abs=0.01)
    q = p.column("bucket").quantiles
    assert q["p50"] == pytest.approx(500, abs=25) and q["p5"] == pytest.approx(50, abs=25)
    assert p.column("tag").top_values[0][1] in (333333, 333334)  # counted exactly, not sampled
    assert p.candidate_keys == ["id"] and p.duplicate_rows == 0
    again = profile_url(duck_url, "big")  # a seeded sample: parallel scans may still vary
    assert again.column("email").patterns["email"] == pytest.approx(0.98, abs=0.01)
    assert again.column("bucket").quantiles == pytest.approx(q, abs=25)
