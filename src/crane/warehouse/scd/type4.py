"""Type 4: a small current table (one row per key) plus a full history table.

The current table is loaded as Type 1 over every attribute, the history table as
Type 2 over the tracked ones, in the same transaction, so they never disagree.
Queries about "now" read the small table; history and as-of queries read the other.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from crane.warehouse.scd.base import ScdResult, ScdTable, scd_types
from crane.warehouse.scd.type1 import load_rows
from crane.warehouse.scd.type2 import load_type2

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef


def parts(dim: ScdTable) -> tuple[ScdTable, ScdTable]:
    """(current, history) as the Type 1 and Type 2 dimensions they are loaded as.

    Both set rows aside in the dimension's one quarantine table (the same event columns:
    the current part's Type 1 columns are the tracked ones, then the Type 1 ones), so a
    row both refuse is kept once; the history part had a table of its own, and each late
    change was quarantined twice."""
    assert dim.history_table is not None
    current = dim.replace(type1=(*dim.type2, *dim.type1), type2=(), kind="1")
    history = dim.replace(
        table=dim.history_table, kind="2", history_table=None, quarantine_table=dim.quarantine
    )
    return current, history


@scd_types.register("4", "type4")
def load_type4(
    con: Connector, dim: ScdTable, batch: TableRef, *, load_ts: datetime, run_id: str
) -> ScdResult:
    """The result counts the current table, and every row either part quarantined; the
    history part's counts are not reported."""
    current, history = parts(dim)
    set_aside = load_type2(con, history, batch, load_ts=load_ts, run_id=run_id).quarantined
    result = load_rows(con, current, batch, load_ts=load_ts, run_id=run_id)
    return replace(result, quarantined=result.quarantined + set_aside)
