"""What one slowly changing dimension looks like, and the one entry point that loads it.

A dimension is described once as an :class:`ScdTable` (its physical shape and its
policies); :func:`load_dimension` picks the loader registered for its type in
``scd_types`` and runs it inside one transaction, with the dimension locked so two
concurrent loads are serialized (two current rows for one key is the most common
SCD bug in the wild: dbt-adapters #1759, SQLMesh #3866).

>>> from crane.connectors.base import TableRef
>>> dim = ScdTable(TableRef("dim_customer", "gold"), business_key=("customer_id",),
...                type2=("city",), type1=("email",), change_ts="updated_at")
>>> dim.kind, dim.tracked, dim.overwrite
('2', ('city',), {'email': 'email'})
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from crane.errors import ConfigError, LoadError
from crane.registry import Registry

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef

HardDelete = Literal["ignore", "close", "close_and_flag"]
LateArrival = Literal["insert", "quarantine"]
SurrogateStrategy = Literal["sequence", "hash"]


class ScdConflictError(LoadError):
    """One key has two different changes at the same timestamp and no tie-break column."""


@dataclass(frozen=True)
class ScdTable:
    """One dimension's physical shape and load policies.

    ``type1`` columns are overwritten on every row of the key; ``type2`` columns
    start a new version when they change; ``type3`` maps a column to the column
    holding its previous value; ``current_of`` maps a Type 6 "current" column to
    the attribute whose latest value it carries on every version. ``change_ts``
    names the batch column that orders changes (and is stored as
    ``effective_from`` for history types). ``delete_marker`` names a boolean batch
    column that is true for a hard delete. ``tie_break`` orders two changes with
    the same timestamp (it is stored on the dimension too). ``row_hash`` names a
    stored column holding a hash of the ``type2`` columns (Types 2 and 6): a change load
    then compares that one column, not every tracked one
    (:mod:`crane.warehouse.scd.row_hash`); unset, values are compared.
    ``last_change`` (Types 2 and 6) names a stored timestamp column that remembers, on
    every row of a key, the latest live change time the dimension has seen for it once
    that time is no longer a version boundary (a late change moved a start earlier, or a
    tie-break correction merged the latest version away). Type 1 values and lateness are
    then judged against it, so rerunning such a batch changes nothing. Optional: a
    dimension without it (one loaded by an earlier crane) loads as before, and declaring
    it on a stored dimension adds the column, empty (``ALTER TABLE … ADD COLUMN``).
    """

    table: TableRef
    business_key: tuple[str, ...]
    type1: tuple[str, ...] = ()
    type2: tuple[str, ...] = ()
    type3: Mapping[str, str] = field(default_factory=dict)
    current_of: Mapping[str, str] = field(default_factory=dict)
    kind: str = ""
    surrogate_key: str | None = "sk"
    surrogate_strategy: SurrogateStrategy = "sequence"
    effective_from: str = "effective_from"
    effective_to: str = "effective_to"
    is_current: str = "is_current"
    deleted_column: str | None = None
    tie_break: str | None = None
    change_ts: str = "updated_at"
    delete_marker: str | None = None
    hard_delete: HardDelete = "ignore"
    late_arrival: LateArrival = "insert"
    history_table: TableRef | None = None
    quarantine_table: TableRef | None = None
    key_nulls: bool = True  # may a business-key part be NULL? (compared NULL-safely)
    row_hash: str | None = None
    last_change: str | None = None

    def __post_init__(self) -> None:
        if not self.business_key:
            raise ConfigError("a dimension needs a business key", table=str(self.table))
        if not self.kind:
            kind = "6" if self.current_of else "2" if self.type2 else "3" if self.type3 else "1"
            object.__setattr__(self, "kind", kind)
        if self.hard_delete == "close_and_flag" and not self.deleted_column:
            raise ConfigError(
                "hard_delete close_and_flag needs a deleted_column",
                table=str(self.table),
                field="deleted_column",
            )
        if self.kind == "4" and self.history_table is None:
            raise ConfigError("a Type 4 dimension needs a history_table", table=str(self.table))
        if self.row_hash and (self.kind not in ("2", "6") or not self.type2):
            raise ConfigError(
                "row_hash hashes the tracked (type2) columns of a Type 2 or 6 dimension",
                table=str(self.table),
                field="row_hash",
            )
        if self.last_change and self.kind not in ("2", "6"):
            raise ConfigError(
                "last_change is kept by Type 2 and 6 dimensions only",
                table=str(self.table),
                field="last_change",
            )
        names = [*self.business_key, *self.type2, *self.overwrite, *self.type3.values()]
        names += [n for n in (self.row_hash, self.last_change) if n]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"columns declared twice: {dup}", table=str(self.table))

    @property
    def tracked(self) -> tuple[str, ...]:
        """Columns whose change starts a new version (Type 2)."""
        return self.type2

    @property
    def overwrite(self) -> dict[str, str]:
        """Dimension column → batch column, for every column overwritten in place."""
        return {**{c: c for c in self.type1}, **dict(self.current_of)}

    @property
    def quarantine(self) -> TableRef:
        from crane.connectors.base import TableRef

        return self.quarantine_table or TableRef(f"{self.table.name}_quarantine", self.table.schema)

    def replace(self, **changes: object) -> ScdTable:
        from dataclasses import replace

        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ScdResult:
    """What one load did: rows inserted, updated in place, closed, and what it left alone."""

    inserted: int = 0
    updated: int = 0
    closed: int = 0
    unchanged: int = 0
    quarantined: int = 0
    removed: int = 0

    def __add__(self, other: ScdResult) -> ScdResult:
        return ScdResult(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))


class ScdLoader(Protocol):
    def __call__(
        self, con: Connector, dim: ScdTable, batch: TableRef, *, load_ts: datetime, run_id: str
    ) -> ScdResult: ...


scd_types: Registry[ScdLoader] = Registry(
    "SCD type",
    builtins={
        "0": "crane.warehouse.scd.type0",
        "1": "crane.warehouse.scd.type1",
        "2": "crane.warehouse.scd.type2",
        "3": "crane.warehouse.scd.type3",
        "4": "crane.warehouse.scd.type4",
        "6": "crane.warehouse.scd.type6",
    },
)


def load_dimension(
    con: Connector,
    table: ScdTable,
    batch: TableRef,
    *,
    load_ts: datetime | None = None,
    run_id: str = "",
) -> ScdResult:
    """Apply the staged changes in ``batch`` to the dimension, atomically and serialized.

    Creates the dimension (typed from the batch) if it does not exist yet; the
    DDL of a declared model comes from :mod:`crane.warehouse.ddl`.
    """
    from crane.warehouse.scd import type2_fast

    fast = type2_fast.applies(con, table)
    loader = None if fast else scd_types.get(table.kind)
    load_ts = load_ts or datetime.now()
    try:
        with dimension_lock(con, table), con.transaction():
            lock_statement(con, table)
            if fast:  # before anything imports sqlglot: a repeated load runs cached statements
                done = type2_fast.try_load(con, table, batch)
                if done is not None:
                    return done
            from crane.warehouse.scd.steps import ensure_tables, without_null_keys

            loader = loader or scd_types.get(table.kind)
            ensure_tables(con, table, batch)
            table = without_null_keys(con, table, batch)
            return loader(con, table, batch, load_ts=load_ts, run_id=run_id)
    except (ConfigError, LoadError):  # crane's own verdict on the batch
        raise
    except Exception as error:  # the engine's words (a connector may wrap them)
        if fast:
            _explain(con, table, batch, error)
        raise


def _explain(con: Connector, table: ScdTable, batch: TableRef, error: Exception) -> None:
    """The on-time path runs its cached statements before any check of the batch (the
    checks cost a catalog read per table, every load): when the engine refused one, check
    the batch now, in a transaction of its own, and raise what the checks say (a missing
    column, named with the dimension) instead of the engine's words."""
    from crane.warehouse.scd.checks import check_batch

    try:
        with con.transaction():
            check_batch(con, table, batch)
    except LoadError as found:
        raise found from error
    except Exception:  # the check could not run: the engine's error stands
        return


# PostgreSQL: SHARE ROW EXCLUSIVE conflicts with itself and with every write, but not
# with readers (https://www.postgresql.org/docs/current/explicit-locking.html).
# The advisory lock also covers the first load, before the table exists.
_LOCK_SQL = {
    "postgres": "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
    "redshift": "LOCK {}",
}
_ADVISORY_SQL = {"postgres": "SELECT pg_advisory_xact_lock(hashtext({}))"}
_process_locks: dict[tuple[str, str], threading.Lock] = {}
_guard = threading.Lock()


@contextmanager
def dimension_lock(con: Connector, table: ScdTable) -> Iterator[None]:
    """In-process lock per (database, dimension): DuckDB has no table locks, and
    threads of one process share its single writer."""
    key = (con.url.raw, str(table.table))
    with _guard:
        lock = _process_locks.setdefault(key, threading.Lock())
    with lock:
        yield


def lock_statement(con: Connector, table: ScdTable) -> None:
    """Take the engine's table lock inside the open transaction, where it has one.

    The statements come from the SQL cache (:mod:`crane.warehouse.scd.sql_cache`), so a
    repeated load in a new process locks without importing sqlglot."""
    if con.dialect not in _ADVISORY_SQL and con.dialect not in _LOCK_SQL:
        return
    from crane.warehouse.scd import sql_cache

    key = repr((con.dialect, table.table, table.history_table))
    sql = sql_cache.statements("lock", key, lambda: _lock_statements(con, table))
    if "advisory" in sql:
        con.execute(sql["advisory"])
    for i in range(2):  # the dimension, then a Type 4 history table
        if f"lock{i}" in sql and con.execute(sql[f"exists{i}"])[0][0]:
            con.execute(sql[f"lock{i}"])


def _lock_statements(con: Connector, table: ScdTable) -> dict[str, str]:
    """``advisory``, and per table ``i`` that may exist ``exists{i}`` and ``lock{i}``."""
    from sqlglot import exp

    from crane.warehouse.scd.steps import table_exists_query

    found: dict[str, str] = {}
    advisory = _ADVISORY_SQL.get(con.dialect)
    if advisory is not None:
        name = exp.Literal.string(f"crane.scd:{table.table}").sql(con.dialect)
        found["advisory"] = advisory.format(name)
    template = _LOCK_SQL.get(con.dialect)
    if template is None:
        return found
    for i, ref in enumerate((table.table, table.history_table)):
        if ref is not None:
            found[f"exists{i}"] = con.render(table_exists_query(con, ref))
            found[f"lock{i}"] = template.format(ref.sql(con.dialect))
    return found
