"""Type 6 (1 + 2 + 3): Type 2 versions whose "current" columns carry the key's latest
value on every version, so a fact joined to an old version can still report by the
current attribute.

``ScdTable.current_of`` maps each current column to the tracked attribute it mirrors
(``{"current_city": "city"}``). It is the Type 2 loader: current columns are
overwritten on all rows of the durable (business) key, like Type 1 columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from crane.errors import ConfigError
from crane.warehouse.scd.base import ScdResult, ScdTable, scd_types
from crane.warehouse.scd.type2 import load_type2

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef


@scd_types.register("6", "type6")
def load_type6(
    con: Connector, dim: ScdTable, batch: TableRef, *, load_ts: datetime, run_id: str
) -> ScdResult:
    unknown = sorted(set(dim.current_of.values()) - set(dim.type2))
    if not dim.current_of or unknown:
        raise ConfigError(
            "Type 6 current columns must mirror tracked (type2) attributes;"
            f" not tracked: {unknown}",
            table=str(dim.table),
            field="current_of",
        )
    return load_type2(con, dim, batch, load_ts=load_ts, run_id=run_id)
