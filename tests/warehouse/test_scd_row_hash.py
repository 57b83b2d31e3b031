"""The stored row hash of a Type 2 dimension (crane.warehouse.scd.row_hash): one value on
DuckDB and PostgreSQL, no two value rows alike, kept by every load path, added to a
dimension loaded before it was declared, and declared from the model spec."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from scd_reference import fresh_name, read, stage
from sqlglot import exp

from crane.connectors.base import TableRef, connect
from crane.errors import ConfigError
from crane.warehouse.scd import ScdResult, ScdTable, load_dimension, type2_fast
from crane.warehouse.scd.row_hash import row_hash_expr
from crane.warehouse.spec import DimensionSpec

PG = "postgresql://postgres@127.0.0.1:5432/test"
# (c1, c2) rows that a naive join of the texts would confuse; all hash apart
ROWS = [("a,", "b"), ("a", ",b"), (None, ""), ("", None), (None, None), ("é~:", "1"), ("x", "y")]


def reference_hash(values: tuple[str | None, ...]) -> int:
    """The documented definition in Python: lengths (``~`` for NULL) joined by ``,``, ``:``,
    the texts; MD5; bytes 0-7 little-endian with the top bit cleared."""
    import hashlib

    lengths = ",".join("~" if v is None else str(len(v)) for v in values)
    text = lengths + ":" + "".join(v or "" for v in values)
    digest = hashlib.md5(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _hashes(dialect: str, run: Any) -> dict[tuple, int]:
    values = exp.union(
        *(
            exp.select(
                exp.alias_(exp.cast(exp.convert(a), "TEXT"), "c1"),
                exp.alias_(exp.cast(exp.convert(b), "TEXT"), "c2"),
            )
            for a, b in ROWS
        ),
        distinct=False,
    )
    query = exp.select("c1", "c2", row_hash_expr(["c1", "c2"], "t", dialect))
    query = query.from_(exp.Subquery(this=values, alias=exp.TableAlias(this="t")))
    return {(a, b): h for a, b, h in run(query.sql(dialect))}


def test_the_hash_is_one_value_on_duckdb_and_postgres() -> None:
    with connect("duckdb:///:memory:") as duck:
        on_duckdb = _hashes("duckdb", duck.execute)
    with psycopg.connect(PG) as pg:
        on_postgres = _hashes("postgres", lambda sql: pg.execute(sql).fetchall())
    assert on_duckdb == on_postgres
    assert len(set(on_duckdb.values())) == len(ROWS), "no two value rows hash alike"
    assert on_duckdb == {row: reference_hash(row) for row in ROWS}


COLS = [("id", "INT"), ("name", "TEXT"), ("city", "TEXT"), ("updated_at", "TIMESTAMP")]


def _day(n: int, *rows: tuple) -> list[tuple]:
    return [(*r, datetime(2024, 1, n)) for r in rows]


def _dim(table: str, **kw: Any) -> ScdTable:
    return ScdTable(TableRef(table), business_key=("id",), type2=("name", "city"), **kw)


def _load(con: Any, dim: ScdTable, rows: list[tuple]) -> ScdResult:
    stg = TableRef(fresh_name("stg"))
    stage(con, stg, COLS, rows)
    return load_dimension(con, dim, stg)


def _stale(con: Any, dim: ScdTable) -> int:
    assert dim.row_hash
    fresh = row_hash_expr(dim.type2, None, con.dialect)
    stale = exp.NullSafeNEQ(this=exp.column(dim.row_hash, quoted=True), expression=fresh)
    query = exp.select(exp.Count(this=exp.Star())).from_(dim.table.expression()).where(stale)
    return int(con.execute(query)[0][0])


DAYS = [
    _day(1, (1, "ann", "oslo"), (2, "bob", None), (3, "cy", "rome")),
    _day(2, (1, "ann", "bergen"), (2, "bob", None), (4, "di", "nice")),  # change, same, new
    _day(3, (2, "bob", ""), (3, None, "rome")),  # NULL -> '', value -> NULL
]


def test_a_hashed_dimension_versions_like_a_compared_one(tmp_path: Path) -> None:
    """Same history and results as comparing values; the fast path took both changes."""
    with connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as con:
        hashed, plain = _dim("d_hash", row_hash="row_hash"), _dim("d_plain")
        results = []
        for rows in DAYS:
            results.append((_load(con, hashed, rows), _load(con, plain, rows)))
        columns = ["sk", "id", "name", "city", "effective_from", "effective_to", "is_current"]
        assert read(con, hashed.table, columns) == read(con, plain.table, columns)
        assert _stale(con, hashed) == 0
    assert [h for h, p in results] == [p for h, p in results]
    assert results[1][0] == ScdResult(inserted=2, closed=1, unchanged=1)
    assert results[2][0] == ScdResult(inserted=2, closed=2, unchanged=0)


def test_declaring_row_hash_on_a_loaded_dimension_adds_and_fills_it(tmp_path: Path) -> None:
    with connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as con:
        _load(con, _dim("d"), DAYS[0])  # loaded before row_hash was declared
        hashed = _dim("d", row_hash="row_hash")
        result = _load(con, hashed, DAYS[1])  # general path: adds the column, then loads
        assert result == ScdResult(inserted=2, closed=1, unchanged=1)
        assert _stale(con, hashed) == 0
        assert _load(con, hashed, DAYS[2]) == ScdResult(inserted=2, closed=2, unchanged=0)
        assert _stale(con, hashed) == 0


def test_the_general_path_keeps_hashes_on_postgres(pg_schema: str) -> None:
    with connect(PG) as con:
        dim = _dim("d").replace(table=TableRef(fresh_name("d"), pg_schema), row_hash="h")
        for rows in DAYS:
            stg = TableRef(fresh_name("stg"), pg_schema)
            stage(con, stg, COLS, rows)
            load_dimension(con, dim, stg)
        assert _stale(con, dim) == 0
        assert len(read(con, dim.table, ["sk"])) == 3 + 2 + 2


def test_the_fast_path_inserts_first_only_with_a_hash_and_sequence_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hash surrogate keys keep the close-then-insert order; both orders, and the general
    path, write one history."""
    tables = []
    for strategy in ("sequence", "hash"):
        for fast in (True, False):
            if not fast:
                monkeypatch.setattr(type2_fast, "DIALECTS", set())
            dim = _dim("d", row_hash="row_hash", surrogate_strategy=strategy)
            with connect(f"duckdb:///{tmp_path / f'{strategy}{fast}.duckdb'}") as con:
                for rows in DAYS:
                    _load(con, dim, rows)
                tables.append(read(con, dim.table, ["id", "name", "city", "is_current"]))
                assert _stale(con, dim) == 0
            monkeypatch.undo()
    assert all(t == tables[0] for t in tables)


def test_row_hash_needs_tracked_columns() -> None:
    with pytest.raises(ConfigError, match="row_hash"):
        ScdTable(TableRef("d"), business_key=("id",), type1=("name",), row_hash="h")
    with pytest.raises(ConfigError, match="twice"):
        ScdTable(TableRef("d"), business_key=("id",), type2=("name",), row_hash="name")


def test_the_model_spec_declares_the_column_and_the_loader_uses_it() -> None:
    spec = DimensionSpec(
        name="customer",
        business_key="customer_id",
        scd=2,
        scd2_columns={"row_hash": "row_hash"},
        attributes=[{"name": "customer_id", "type": "INT"}, {"name": "city", "type": "TEXT"}],
    )
    assert ("row_hash", "BIGINT") in [(c.name, c.type) for c in spec.columns()]
    assert spec.scd_table().row_hash == "row_hash"
