"""Point-in-time tables over a data vault (crane.warehouse.vault), and the mart on them.

A PIT row says, for one hub key and one snapshot instant, the load date of each
satellite's row valid then; the mart joins on those (hash key, load date) pairs only,
so reading history as of any snapshot is a set of equi-joins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.sql.build import (
    and_all,
    col,
    create_table,
    ident,
    insert_select,
    table,
)
from crane.warehouse.vault import (
    _HASH_TYPE,
    LOAD_DATE,
    Hub,
    Satellite,
    VaultError,
    as_load_date,
    load_date_literal,
)

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef


def _t(kind: str) -> exp.DataType:
    return exp.DataType.build(kind)


@dataclass(frozen=True)
class Pit:
    """For each hub key and snapshot: the load date of each satellite's row valid then.

    A snapshot is an instant: the valid row is the latest with ``load_date <=``
    it. A hub key appears from its own load date on; a satellite with no row yet
    has a NULL load date (left joins in the mart give NULL attributes).
    """

    table: TableRef
    hub: Hub
    satellites: tuple[Satellite, ...]
    snapshot_column: str = "snapshot_date"

    def sat_column(self, sat: Satellite) -> str:
        return f"{sat.table.name}_{LOAD_DATE}"


def create_pit(pit: Pit) -> exp.Create:
    columns = [(pit.hub.hash_key, _t(_HASH_TYPE)), (pit.snapshot_column, _t("TIMESTAMP"))]
    columns += [(pit.sat_column(s), _t("TIMESTAMP")) for s in pit.satellites]
    return create_table(pit.table, columns)


def _snapshots(dates: Sequence[datetime], name: str) -> exp.Query:
    selects = [exp.select(exp.alias_(load_date_literal(d), name, quoted=True)) for d in dates]
    query: exp.Query = selects[0]
    for more in selects[1:]:
        query = exp.union(query, more, distinct=False)
    return query


def build_pit(pit: Pit, snapshots: Sequence[datetime]) -> list[exp.Expression]:
    """Replace the given snapshots (delete + insert): a rerun rebuilds them identically.
    No snapshots, no statements (a snapshot query that found no dates).

    Each satellite's valid load dates come from one grouped join of the satellite with
    the snapshots; a correlated MAX per key and snapshot made PostgreSQL scan the
    satellite once per PIT row (2.7 s for 2,000 keys, growing with their square).
    """
    # a date given twice made every key's row twice (the snapshots were a UNION ALL)
    snapshots = list(dict.fromkeys(as_load_date(d) for d in snapshots))
    if not snapshots:
        return []
    hk, snap = pit.hub.hash_key, pit.snapshot_column
    query = (
        exp.select(col(hk, "h"), col(snap, "d"))
        .from_(table(pit.hub.table, "h"))
        .join(
            _cte("_crane_snaps", "d"),
            on=exp.LTE(this=col(LOAD_DATE, "h"), expression=col(snap, "d")),
        )
        .with_(ident("_crane_snaps"), as_=_snapshots(snapshots, snap))
    )
    for i, sat in enumerate(pit.satellites):
        name, alias = f"_crane_v{i}", f"v{i}"
        query = query.with_(ident(name), as_=_valid_load_dates(sat, snap))
        on = and_all(
            [
                exp.EQ(this=col(sat.parent_hash_key, alias), expression=col(hk, "h")),
                exp.EQ(this=col(snap, alias), expression=col(snap, "d")),
            ]
        )
        query = query.join(_cte(name, alias), on=on, join_type="LEFT")
        query = query.select(exp.alias_(col(LOAD_DATE, alias), pit.sat_column(sat), quoted=True))
    stamps = [load_date_literal(d) for d in snapshots]
    delete = exp.Delete(this=table(pit.table), where=exp.Where(this=col(snap).isin(*stamps)))
    columns = [hk, snap, *(pit.sat_column(s) for s in pit.satellites)]
    return [delete, insert_select(pit.table, columns, query)]


def _valid_load_dates(sat: Satellite, snap: str) -> exp.Select:
    """Per hash key and snapshot, the load date of the satellite row valid then."""
    key = col(sat.parent_hash_key, "x")
    return (
        exp.select(
            key,
            col(snap, "d"),
            exp.alias_(exp.Max(this=col(LOAD_DATE, "x")), LOAD_DATE, quoted=True),
        )
        .from_(table(sat.table, "x"))
        .join(
            _cte("_crane_snaps", "d"),
            on=exp.LTE(this=col(LOAD_DATE, "x"), expression=col(snap, "d")),
        )
        .group_by(key.copy(), col(snap, "d"))
    )


def _cte(name: str, alias: str) -> exp.Table:
    return exp.Table(this=ident(name), alias=exp.TableAlias(this=ident(alias)))


def load_pit(con: Connector, pit: Pit, snapshots: Sequence[datetime]) -> None:
    with con.transaction():
        for statement in build_pit(pit, snapshots):
            con.execute(statement)


def build_pit_mart(pit: Pit) -> exp.Select:
    """The dimensional view on the vault: each key, each snapshot, the attributes valid then.

    Equi-joins on (hash key, load date) only, which is why PIT tables exist. Output
    names must be distinct (a view refuses two columns ``name``), so satellites sharing
    an attribute name are refused, naming both.
    """
    hk, snap = pit.hub.hash_key, pit.snapshot_column
    owners: dict[str, str] = {n: pit.hub.table.name for n in (hk, snap, *pit.hub.business_keys)}
    for sat in pit.satellites:
        for name in sat.attributes:
            if name in owners:
                raise VaultError(
                    f"the mart of {pit.table.name} would have two columns {name!r} "
                    f"({owners[name]} and {sat.table.name})",
                    table=str(pit.table),
                    hint="rename the attribute in one satellite",
                )
            owners[name] = sat.table.name
    query = exp.select(col(hk, "p"), col(snap, "p"))
    query = query.select(*(col(k, "h") for k in pit.hub.business_keys))
    query = query.from_(table(pit.table, "p")).join(
        table(pit.hub.table, "h"), on=exp.EQ(this=col(hk, "h"), expression=col(hk, "p"))
    )
    for i, sat in enumerate(pit.satellites):
        alias = f"s{i}"
        on = and_all(
            [
                exp.EQ(this=col(sat.parent_hash_key, alias), expression=col(hk, "p")),
                exp.EQ(this=col(LOAD_DATE, alias), expression=col(pit.sat_column(sat), "p")),
            ]
        )
        query = query.join(table(sat.table, alias), on=on, join_type="LEFT")
        query = query.select(*(col(a, alias) for a in sat.attributes))
    return query
