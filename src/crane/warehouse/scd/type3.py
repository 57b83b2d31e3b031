"""Type 3: the current value plus a column holding the previous value.

``ScdTable.type3`` maps each such column to its previous-value column. With several
changes to a key in one batch, "previous" is the value before the *last* change
(A→B→C leaves C and B); a batch that does not change the column keeps the stored
previous value. Other attributes behave as Type 1. Shares the Type 1 loader.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from crane.errors import ConfigError
from crane.warehouse.scd.base import ScdResult, ScdTable, scd_types
from crane.warehouse.scd.type1 import load_rows

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef


@scd_types.register("3", "type3")
def load_type3(
    con: Connector, dim: ScdTable, batch: TableRef, *, load_ts: datetime, run_id: str
) -> ScdResult:
    if not dim.type3:
        raise ConfigError("a Type 3 dimension needs type3 columns", table=str(dim.table))
    return load_rows(con, dim, batch, load_ts=load_ts, run_id=run_id)
