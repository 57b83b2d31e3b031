"""What insert-only vault history cannot hold, found before anything is inserted.

Each check is one query; a finding raises `VaultError` naming the table, key and load
date, so a batch is loaded whole or not at all — never with rows quietly dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.sql.build import and_all, col, ident, table
from crane.warehouse.vault import (
    LOAD_DATE,
    Batch,
    L,
    S,
    Satellite,
    VaultError,
    _cte,
    _latest,
    _not_all_null,
    _source_or,
    hash_key_expr,
)

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef


def build_satellite_conflicts(
    sat: Satellite, batch: Batch, hashed: TableRef | None = None
) -> exp.Select:
    """``(hash key, load date)`` pairs with two different hashdiffs: order unknowable."""
    src = "_crane_src"
    pairs = (
        exp.select(col(sat.parent_hash_key, src), col(LOAD_DATE, src))
        .from_(_cte(src))
        .group_by(col(sat.parent_hash_key, src), col(LOAD_DATE, src))
        .having(
            exp.GT(
                this=exp.Count(this=exp.Distinct(expressions=[col(sat.hashdiff, src)])),
                expression=exp.Literal.number(1),
            )
        )
    )
    return pairs.with_(ident(src), as_=_source_or(sat, batch, hashed)).limit(1)


def build_null_load_dates(batch: Batch, keys: Sequence[str]) -> exp.Select | None:
    """Rows with a business key but no load date (None for a constant load date).

    A NULL load date has no place in the order of changes, and engines sort NULLs
    differently (PostgreSQL puts them first in a descending order, DuckDB last), so
    such rows were loaded with a NULL load date and later batches compared with
    whichever row the engine ranked latest.
    """
    if batch.load_date_column is None:
        return None
    missing = exp.Is(this=col(batch.load_date_column, S), expression=exp.Null())
    return (
        exp.select(exp.Count(this=exp.Star()))
        .from_(table(batch.source, S))
        .where(and_all([_not_all_null(keys, S), missing]))
    )


def build_satellite_history_conflicts(sat: Satellite, hashed: TableRef) -> exp.Select:
    """Batch rows at or before their key's latest stored load date that stored history
    does not already hold: ``(hash key, load date, kind)``, kind ``same_date`` (another
    row is stored at that load date) or ``late`` (a change older than the latest row).

    A rerun's rows are each stored, or equal the row in effect at their load date (a
    repeat that was skipped); anything else is a change insert-only history cannot
    place, and was dropped without a word before. Joins only: correlated subqueries
    made PostgreSQL scan the satellite once per row (7 s for a 10,000-row rerun).
    """
    hk, hd, src = sat.parent_hash_key, sat.hashdiff, "_crane_src"
    candidates = (
        exp.select(col(hk, src), col(LOAD_DATE, src), col(hd, src))
        .from_(_cte(src))
        .join(_cte("_crane_latest", L), on=exp.EQ(this=col(hk, src), expression=col(hk, L)))
        .where(exp.LTE(this=col(LOAD_DATE, src), expression=col(LOAD_DATE, L)))
    )
    before = and_all(
        [
            exp.EQ(this=col(hk, "x"), expression=col(hk, "c")),
            exp.LTE(this=col(LOAD_DATE, "x"), expression=col(LOAD_DATE, "c")),
        ]
    )
    in_effect = (
        exp.select(
            col(hk, "c"),
            col(LOAD_DATE, "c"),
            col(hd, "c"),
            exp.alias_(exp.Max(this=col(LOAD_DATE, "x")), "_crane_eff", quoted=True),
        )
        .from_(_cte("_crane_cand", "c"))
        .join(table(sat.table, "x"), on=before, join_type="LEFT")
        .group_by(col(hk, "c"), col(LOAD_DATE, "c"), col(hd, "c"))
    )
    stored = and_all(
        [
            exp.EQ(this=col(hk, "y"), expression=col(hk, "e")),
            exp.EQ(this=col(LOAD_DATE, "y"), expression=col("_crane_eff", "e")),
        ]
    )
    same = exp.EQ(this=col("_crane_eff", "e"), expression=col(LOAD_DATE, "e"))
    kind = exp.Case(
        ifs=[exp.If(this=same, true=exp.Literal.string("same_date"))],
        default=exp.Literal.string("late"),
    )
    differs = exp.or_(
        exp.Is(this=col(hd, "y"), expression=exp.Null()),
        exp.NEQ(this=col(hd, "y"), expression=col(hd, "e")),
    )
    return (
        exp.select(col(hk, "e"), col(LOAD_DATE, "e"), exp.alias_(kind, "kind", quoted=True))
        .from_(_cte("_crane_eff", "e"))
        .join(table(sat.table, "y"), on=stored, join_type="LEFT")
        .where(differs)
        .with_(ident(src), as_=exp.select(exp.Star()).from_(table(hashed)))
        .with_(ident("_crane_latest"), as_=_latest(sat))
        .with_(ident("_crane_cand"), as_=candidates)
        .with_(ident("_crane_eff"), as_=in_effect)
        .order_by(col(LOAD_DATE, "e"))
        .limit(1)
    )


_CASE_PROBE = "äß"
_CASE_PROBE_HASH = "bcfdefa60a67ba478745d24a8e59bf1c"  # md5("Äẞ"), its hash key everywhere


def build_non_ascii_keys(batch: Batch, keys: Sequence[str]) -> exp.Select:
    """How many staged rows hold a business key with a character outside printable ASCII."""
    pattern = exp.Literal.string("[^ -~]")
    found = [
        exp.RegexpLike(this=exp.cast(col(k, S), exp.DataType.build("VARCHAR")), expression=pattern)
        for k in keys
    ]
    return (
        exp.select(exp.Count(this=exp.Star()))
        .from_(table(batch.source, S))
        .where(exp.or_(*found) if len(found) > 1 else found[0])
    )


def refuse_foreign_case_rules(
    con: Connector, target: TableRef, batch: Batch, keys: Sequence[str]
) -> None:
    """Hash keys upper-case business keys; an engine that leaves ``ä`` lower-case
    (PostgreSQL whose LC_CTYPE is C) made other hash keys than DuckDB for the same
    key, silently. Such a database may load ASCII keys only."""
    (probe,) = con.fetch(exp.select(hash_key_expr([exp.Literal.string(_CASE_PROBE)])))[0]
    if probe == _CASE_PROBE_HASH:
        return
    count = int(con.fetch(build_non_ascii_keys(batch, keys))[0][0])
    if count:
        raise VaultError(
            f"{count} row(s) of {batch.source} have non-ASCII business keys, and this "
            "database upper-cases non-ASCII letters differently (ä stays ä): their hash "
            "keys would differ from every other engine's",
            table=str(target),
            hint="use a database with a UTF-8 aware LC_CTYPE (e.g. C.UTF-8 or en_US.UTF-8)",
        )


def refuse_null_load_dates(
    con: Connector, target: TableRef, batch: Batch, keys: Sequence[str]
) -> None:
    query = build_null_load_dates(batch, keys)
    count = int(con.fetch(query)[0][0]) if query is not None else 0
    if count:
        raise VaultError(
            f"{count} row(s) of {batch.source} have a business key but no load date "
            f"({batch.load_date_column} is NULL): their order among changes is unknown",
            table=str(target),
            column=batch.load_date_column,
            hint="fill the load date column in staging, or give the batch a constant load_date",
        )


def refuse_unordered(con: Connector, sat: Satellite, batch: Batch, hashed: TableRef) -> None:
    """Two different rows of one key at one load date: their order is unknowable."""
    clash = con.fetch(build_satellite_conflicts(sat, batch, hashed))
    if clash:
        raise VaultError(
            f"two different {sat.table.name} rows for hash key {clash[0][0]} at load "
            f"date {clash[0][1]}: their order is unknown",
            table=str(sat.table),
            hint="stage a distinct load_date_column per change (e.g. the source timestamp)",
        )


def refuse_unplaceable(con: Connector, sat: Satellite, hashed: TableRef) -> None:
    found = con.fetch(build_satellite_history_conflicts(sat, hashed))
    if not found:
        return
    key, when, kind = found[0]
    if kind == "same_date":
        problem = f"{sat.table.name} already holds another row for hash key {key} at {when}"
        hint = "a batch reusing an earlier batch's load date: give each batch its own"
    else:
        problem = (
            f"a change for hash key {key} at {when} is older than the latest "
            f"{sat.table.name} row and differs from the row in effect then"
        )
        hint = "insert-only history cannot place a late change: load batches in load-date order"
    raise VaultError(problem, table=str(sat.table), hint=hint)
