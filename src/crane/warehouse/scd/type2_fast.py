"""Type 2 on-time batches: close the changed current rows and insert their new versions.

Most change loads are a clean batch that only moves history forward: one row per key, no
deletes, every event newer than its key's current version. For such a batch the general
loader's re-derivation of history (temporary tables, window passes, delta join) always
ends in two writes — close the current row of each changed key, insert the new
versions — so this path issues just those two, after one probe that proves the batch is
of that kind. Anything else (late or same-time events, a key whose history ends in a
delete, a deleted-flag current row) goes the general way.

A mixed dimension (Type 1 columns, or Type 6 "current" columns) takes the path too: the
batch event is its key's latest, so every row of the key takes the batch's value in
those columns. The closing UPDATE writes them on the rows it closes, the INSERT on the new
versions, and one more UPDATE brings the key's other rows that still differ: its current
row, if the key changed only in place (so it is not "unchanged"), and older versions,
which the probe counted beforehand so that the keys can be told from the rows.

The result is the same history, surrogate keys included: new versions are numbered in
(business key, effective_from) order, as the general path numbers them. The statements
come from :mod:`crane.warehouse.scd.sql_cache`, so this module imports no sqlglot: a
repeated load in a new process skips that import (built in ``type2_fast_sql``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crane.warehouse.scd import sql_cache
from crane.warehouse.scd.base import ScdResult, ScdTable

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef

# Dialects whose on-time statements run and are tested against the general path (they
# need UPDATE … FROM with an aliased target: MySQL has none). The engine's connector must
# also report each write's row count (``Connector.execute_count``): the counts of the
# result come from the writes, not from another scan.
DIALECTS = {"duckdb", "postgres"}


@dataclass(frozen=True)
class Probe:
    """What one statement learns about a batch before a Type 2 load."""

    rows: int  # batch rows
    keys: int  # distinct business keys in the batch
    deletes: int  # rows marked as hard deletes
    null_ts: int  # rows without a change timestamp
    stored: bool  # the dimension has rows
    unsafe: int | None  # batch keys whose history is not "current, older" (fast probe only)
    stale_older: int = 0  # older versions lacking the batch's overwritten values (fast probe)

    @classmethod
    def of(cls, row: Sequence[object]) -> Probe:
        rows, keys, deletes, null_ts = (int(v or 0) for v in row[:4])  # type: ignore[call-overload]
        unsafe = int(row[5] or 0) if len(row) > 5 else None  # type: ignore[call-overload]
        stale_older = int(row[6] or 0) if len(row) > 6 else 0  # type: ignore[call-overload]
        return cls(rows, keys, deletes, null_ts, bool(row[4]), unsafe, stale_older)

    @property
    def clean(self) -> bool:
        """One live row per key: nothing to deduplicate or order."""
        return bool(self.rows) and self.rows == self.keys and not self.deletes

    @property
    def on_time(self) -> bool:
        """Clean, timestamped, and every key's history ends in an older current version."""
        return self.clean and not self.null_ts and self.unsafe == 0


def applies(con: Connector, dim: ScdTable) -> bool:
    """Dimensions whose change load can be a few set-based writes: Type 2 (with or
    without Type 1 columns) or a valid Type 6, with sequence or hash keys, on an engine
    that reports row counts. An invalid Type 6 goes to its loader, which says why."""
    return (
        con.dialect in DIALECTS
        and reports_row_counts(con)
        and (dim.kind == "2" or (dim.kind == "6" and _valid_type6(dim)))
        and not dim.type3
        and dim.surrogate_key is not None
    )


def _valid_type6(dim: ScdTable) -> bool:
    """The check of ``type6.load_type6``: current columns mirror tracked attributes."""
    return bool(dim.current_of) and set(dim.current_of.values()) <= set(dim.type2)


def reports_row_counts(con: Connector) -> bool:
    """Whether ``con``'s connector implements ``execute_count`` (its driver reports how
    many rows a write changed)."""
    from crane.connectors.base import Connector

    return type(con).execute_count is not Connector.execute_count


def try_load(con: Connector, dim: ScdTable, batch: TableRef) -> ScdResult | None:
    """In the load's transaction and lock: load a first or on-time batch, or answer None
    (nothing written) for the general loader."""
    sql = _statements(con, dim, batch)
    if not con.execute(sql["exists"])[0][0]:
        return None
    if "null_keys" in sql and not any(con.execute(sql["null_keys"])[0]):
        # no NULL key part in the batch or the dimension: plain key joins, which every
        # engine hash-joins (steps.without_null_keys; the lock keeps it true)
        dim = dim.replace(key_nulls=False)
        sql = _statements(con, dim, batch)
    if "hash_column" in sql and not con.execute(sql["hash_column"])[0][0]:
        return None  # row_hash newly declared: the general path adds and fills the column
    if "last_change_column" in sql and not con.execute(sql["last_change_column"])[0][0]:
        return None  # last_change newly declared: the general path adds the column
    shape = Probe.of(con.execute(sql["probe"])[0])
    if shape.clean and not shape.stored and not shape.null_ts:  # untimed rows: quarantined
        con.execute(sql["initial"])
        return ScdResult(inserted=shape.rows)
    if not shape.on_time:
        return None
    if "insert_first" in sql:  # type2_fast_sql.inserts_first
        top = con.execute(sql["max_sk"])[0][0]
        inserted = con.execute_count(sql["insert_first"], [top])
        closed = con.execute_count(sql["close_after"], [top, top]) if inserted else 0
    else:
        closed = con.execute_count(sql["close"])
        inserted = con.execute_count(sql["insert"])
    updated = in_place = 0
    if "overwrite" in sql:  # type2_fast_sql._overwrite: current rows, then older ones
        updated = con.execute_count(sql["overwrite"])
        in_place = updated - shape.stale_older  # keys changed only in place
    unchanged = shape.rows - inserted - in_place
    return ScdResult(inserted=inserted, updated=updated, closed=closed, unchanged=unchanged)


def _statements(con: Connector, dim: ScdTable, batch: TableRef) -> dict[str, str]:
    def build() -> dict[str, str]:
        from crane.warehouse.scd.type2_fast_sql import statements

        return statements(con, dim, batch)

    return sql_cache.statements("scd2", repr((con.dialect, dim, batch)), build)
