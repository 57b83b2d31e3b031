"""Finding a fact row's surrogate keys: as-of lookups, unknown and inferred members.

A fact row names its dimension members by business key; the warehouse stores
surrogate keys. The key is looked up *as of the event time* against SCD2
validity (``effective_from <= event < effective_to``, an open ``effective_to``
being NULL), so a sale made before a customer moved stays with the old address.

A member that cannot be found gets, by the lookup's policy:

- ``unknown``: the dimension's unknown member (surrogate key -1, or the text ``'-1'``
  where keys are hashes; created if missing);
- ``infer``: a new *inferred* member carrying only the business key
  (``is_inferred`` true, valid from 1900-01-01, current). When the real row
  arrives, :func:`complete_inferred` overwrites its attributes in place — same
  surrogate key, so facts already pointing at it stay right — and clears the flag.

A NULL business key (or NULL event time) always gets the unknown member. An event
earlier than a member's first version (a dimension first loaded after its
history began) gets that first version: otherwise every backfilled fact would
point at "unknown".
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, Literal

from sqlglot import exp

from crane.errors import ConfigError
from crane.sql.build import and_all, col, ident, insert_select, qualified_col, table

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef

OnMissing = Literal["unknown", "infer"]
OPEN_FROM = datetime(1900, 1, 1)
OPEN_END = datetime(9999, 12, 31)
HASH_UNKNOWN_KEY = "-1"  # the unknown member of a dimension keyed by MD5 hex text


@dataclass(frozen=True)
class Dimension:
    """What a fact load needs to know about one dimension table.

    ``effective_from=None`` marks a dimension without history (Type 1): looked
    up by business key alone. Field names match :class:`crane.warehouse.scd.ScdTable`.
    """

    table: TableRef
    business_key: tuple[str, ...]
    surrogate_key: str = "sk"
    effective_from: str | None = "effective_from"
    effective_to: str | None = "effective_to"
    is_current: str | None = "is_current"
    inferred_flag: str | None = "is_inferred"
    unknown_key: int | str = -1
    unknown_values: Mapping[str, Any] = field(default_factory=dict)
    key_strategy: Literal["sequence", "hash"] = "sequence"  # as ScdTable.surrogate_strategy
    # a stored hash of the tracked columns (ScdTable.row_hash / type2): completing an
    # inferred member must set it, or the next SCD load sees a change that is none
    row_hash: str | None = None
    tracked: tuple[str, ...] = ()

    @classmethod
    def from_scd(cls, scd: Any, **overrides: Any) -> Dimension:
        """From an ``ScdTable`` (duck-typed, so this module does not depend on it)."""
        # Type 4 keeps its versions in a history table: facts reference the current
        # table (one row per key, no validity columns), looked up as Type 1 is
        history = getattr(scd, "kind", "2") in ("2", "6")
        values: dict[str, Any] = {
            "table": scd.table,
            "business_key": tuple(scd.business_key),
            "surrogate_key": scd.surrogate_key or "sk",
            "effective_from": scd.effective_from if history else None,
            "effective_to": scd.effective_to if history else None,
            "is_current": scd.is_current if history else None,
            "key_strategy": getattr(scd, "surrogate_strategy", "sequence"),
            "row_hash": getattr(scd, "row_hash", None) if history else None,
            "tracked": tuple(getattr(scd, "type2", ())),
        }
        if values["key_strategy"] == "hash":
            values["unknown_key"] = HASH_UNKNOWN_KEY  # a text key column: compare text
        values.update(overrides)
        return cls(**values)

    @property
    def history(self) -> bool:
        return self.effective_from is not None


@dataclass(frozen=True)
class Lookup:
    """One dimension reference of a fact under a role name (``ship_date_key`` → date)."""

    key_column: str
    dimension: Dimension
    source_columns: tuple[str, ...]  # staging columns, in ``dimension.business_key`` order
    event_time: str | None = None  # staging column for the as-of lookup; None: current row
    on_missing: OnMissing = "unknown"


@dataclass(frozen=True)
class DateKey:
    """A role-playing smart date key (``yyyymmdd``) computed from a staging date, no join.

    A NULL date gets ``unknown_key``.
    """

    key_column: str
    source_column: str
    unknown_key: int = -1


def date_key_expr(key: DateKey, alias: str, *, null_is_unknown: bool = True) -> exp.Expr:
    """``yyyymmdd`` of the staged date; a NULL date is ``key.unknown_key`` unless
    ``null_is_unknown`` is false (an accumulating snapshot's milestone not reached yet)."""
    day = col(key.source_column, alias)

    def part(name: str) -> exp.Expr:
        return exp.cast(
            exp.Extract(this=exp.var(name), expression=day.copy()), exp.DataType.build("INT")
        )

    value = exp.Add(
        this=exp.Add(
            this=exp.Mul(this=part("YEAR"), expression=exp.Literal.number(10000)),
            expression=exp.Mul(this=part("MONTH"), expression=exp.Literal.number(100)),
        ),
        expression=part("DAY"),
    )
    if not null_is_unknown:
        return value
    return exp.Coalesce(this=value, expressions=[exp.Literal.number(key.unknown_key)])


def _literal(value: Any) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, (time, uuid.UUID)):  # typed: PostgreSQL reads a bare string as text
        kind = "TIME" if isinstance(value, time) else "UUID"
        return exp.cast(exp.Literal.string(str(value)), kind)
    return exp.Literal.string(str(value))


def _member_columns(dim: Dimension, inferred: bool) -> dict[str, exp.Expr]:
    """History and flag columns of a synthetic (unknown or inferred) member."""
    values: dict[str, exp.Expr] = {}
    if dim.effective_from:
        values[dim.effective_from] = _literal(OPEN_FROM)
    if dim.effective_to:
        values[dim.effective_to] = exp.Null()
    if dim.is_current:
        values[dim.is_current] = exp.true()
    if dim.inferred_flag:
        values[dim.inferred_flag] = exp.Boolean(this=inferred)
    return values


def build_unknown_member(dim: Dimension) -> exp.Insert:
    """Insert the unknown member (key -1) unless it is there already."""
    values = {dim.surrogate_key: _literal(dim.unknown_key), **_member_columns(dim, False)}
    values.update({c: _literal(v) for c, v in dim.unknown_values.items()})
    present = exp.select(exp.Literal.number(1)).from_(table(dim.table, "d"))
    present = present.where(
        exp.EQ(this=col(dim.surrogate_key, "d"), expression=_literal(dim.unknown_key))
    )
    query = exp.select(*(exp.alias_(v, c, quoted=True) for c, v in values.items())).where(
        exp.Not(this=exp.Exists(this=present))
    )
    return insert_select(dim.table, list(values), query)


def unknown_member_key(dim: Dimension, alias: str | None = None) -> exp.Expr | None:
    """True for a row (read from ``alias``) carrying the unknown member's business key —
    its NOT NULL placeholders (-1, 'unknown'…) — or None when the member has no such key.
    That key belongs to the synthetic member: a source row with it would be loaded by
    the SCD loader as a change (or delete) of the unknown member itself."""
    if not dim.business_key or any(k not in dim.unknown_values for k in dim.business_key):
        return None
    return and_all(
        exp.EQ(this=col(k, alias), expression=_literal(dim.unknown_values[k]))
        for k in dim.business_key
    )


def _has_key(columns: Sequence[str], alias: str) -> exp.Expr:
    return and_all(exp.Not(this=exp.Is(this=col(c, alias), expression=exp.Null())) for c in columns)


def build_inferred_members(lookup: Lookup, source: exp.Expr) -> exp.Insert:
    """Inferred members for business keys in ``source`` the dimension has never seen.

    Keys are max + row number: the same scheme as the SCD loaders, run under
    the same dimension lock.
    """
    dim = lookup.dimension
    if dim.key_strategy != "sequence":
        raise ConfigError(
            "inferred members need sequence surrogate keys; use on_missing='unknown'",
            table=str(dim.table),
        )
    pairs = list(zip(dim.business_key, lookup.source_columns, strict=True))
    keys = (
        exp.select(*(exp.alias_(col(s, "s"), b, quoted=True) for b, s in pairs))
        .distinct()
        .from_(exp.Subquery(this=source, alias=ident("s")))
    )
    seen = exp.select(exp.Literal.number(1)).from_(table(dim.table, "d"))
    seen = seen.where(and_all(exp.EQ(this=col(b, "d"), expression=col(s, "s")) for b, s in pairs))
    keys = keys.where(
        and_all([_has_key(lookup.source_columns, "s"), exp.Not(this=exp.Exists(this=seen))])
    )
    top = exp.select(exp.Max(this=col(dim.surrogate_key))).from_(table(dim.table))
    base = exp.Coalesce(this=exp.Subquery(this=top), expressions=[exp.Literal.number(0)])
    order = exp.Order(expressions=[exp.Ordered(this=col(b, "k")) for b in dim.business_key])
    number = exp.Window(this=exp.RowNumber(), order=order)
    values: dict[str, exp.Expr] = {dim.surrogate_key: exp.Add(this=base, expression=number)}
    values.update({b: col(b, "k") for b in dim.business_key})
    values.update(_member_columns(dim, True))
    # NOT NULL columns take the unknown member's placeholders until the real row arrives
    values.update({c: _literal(v) for c, v in dim.unknown_values.items() if c not in values})
    query = exp.select(*(exp.alias_(v, c, quoted=True) for c, v in values.items())).from_(
        exp.Subquery(this=keys, alias=ident("k"))
    )
    return insert_select(dim.table, list(values), query)


def _first_versions(dim: Dimension) -> exp.Select:
    assert dim.effective_from
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col(b, "x") for b in dim.business_key],
        order=exp.Order(expressions=[exp.Ordered(this=col(dim.effective_from, "x"))]),
    )
    keep = [*dim.business_key, dim.surrogate_key, dim.effective_from]
    ranked = exp.select(*(col(c, "x") for c in keep), exp.alias_(rank, "_crane_rn", quoted=True))
    ranked = ranked.from_(table(dim.table, "x"))
    first = exp.select(*(col(c, "r") for c in keep)).from_(
        exp.Subquery(this=ranked, alias=ident("r"))
    )
    return first.where(exp.EQ(this=col("_crane_rn", "r"), expression=exp.Literal.number(1)))


def join_lookup(
    query: exp.Select, lookup: Lookup, index: int, source_alias: str
) -> tuple[exp.Select, exp.Expr]:
    """Left-join the dimension for ``lookup``; returns the query and the key expression."""
    dim, alias, first = lookup.dimension, f"_crane_d{index}", f"_crane_f{index}"
    pairs = list(zip(dim.business_key, lookup.source_columns, strict=True))
    match: list[exp.Expr] = [
        exp.EQ(this=col(b, alias), expression=col(s, source_alias)) for b, s in pairs
    ]
    match.append(exp.NEQ(this=col(dim.surrogate_key, alias), expression=_literal(dim.unknown_key)))
    key: exp.Expr = col(dim.surrogate_key, alias)
    fallbacks: list[exp.Expr] = []
    if dim.history and lookup.event_time:
        assert dim.effective_from and dim.effective_to
        at = col(lookup.event_time, source_alias)
        match.append(exp.LTE(this=col(dim.effective_from, alias), expression=at))
        # COALESCE, not "IS NULL OR <": an OR in the ON clause turns DuckDB's hash join
        # into a nested loop (20,000 facts: 1.4 s instead of milliseconds)
        end = exp.Coalesce(this=col(dim.effective_to, alias), expressions=[_literal(OPEN_END)])
        match.append(exp.LT(this=at.copy(), expression=end))
        first_on: list[exp.Expr] = [
            exp.EQ(this=col(b, first), expression=col(s, source_alias)) for b, s in pairs
        ]
        first_on.append(exp.LT(this=at.copy(), expression=col(dim.effective_from, first)))
        query = query.join(
            exp.Subquery(this=_first_versions(dim), alias=ident(first)),
            on=and_all(first_on),
            join_type="LEFT",
        )
        fallbacks.append(col(dim.surrogate_key, first))
    elif dim.history:
        assert dim.effective_to
        match.append(exp.Is(this=col(dim.effective_to, alias), expression=exp.Null()))
    query = query.join(table(dim.table, alias), on=and_all(match), join_type="LEFT")
    key = exp.Coalesce(this=key, expressions=[*fallbacks, _literal(dim.unknown_key)])
    return query, key


def complete_inferred(
    con: Connector,
    dim: Dimension,
    batch: TableRef,
    attributes: Sequence[str],
    order_by: str | None = None,
) -> int:
    """Fill inferred members from the real rows in ``batch``; returns how many were completed.

    Same surrogate key, attributes overwritten, flag cleared. With several rows
    of one key in the batch the earliest by ``order_by`` completes the member, so
    the SCD loader run afterwards records the later ones as new versions. Run it
    before the dimension's SCD load, in the same transaction.
    """
    assert dim.inferred_flag, "the dimension has no inferred flag column"
    statement = build_complete_inferred(dim, batch, attributes, order_by, con.dialect)
    flagged = exp.select(exp.Count(this=exp.Star())).from_(table(dim.table, "d"))
    flagged = flagged.where(exp.EQ(this=col(dim.inferred_flag, "d"), expression=exp.true()))
    with con.transaction():
        before = con.fetch(flagged)[0][0]
        con.execute(statement)
        after = con.fetch(flagged)[0][0]
    return int(before - after)


def build_complete_inferred(
    dim: Dimension,
    batch: TableRef,
    attributes: Sequence[str],
    order_by: str | None = None,
    dialect: str = "duckdb",
) -> exp.Update:
    assert dim.inferred_flag
    keys = list(dim.business_key)
    ordering = [exp.Ordered(this=col(order_by or keys[0], "b"))]
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col(k, "b") for k in keys],
        order=exp.Order(expressions=ordering),
    )
    ranked = exp.select(
        *(col(c, "b") for c in [*keys, *attributes]), exp.alias_(rank, "_crane_rn", quoted=True)
    ).from_(table(batch, "b"))
    source = (
        exp.select(*(col(c, "r") for c in [*keys, *attributes]))
        .from_(exp.Subquery(this=ranked, alias=ident("r")))
        .where(exp.EQ(this=col("_crane_rn", "r"), expression=exp.Literal.number(1)))
    )
    sets = [exp.EQ(this=col(a), expression=col(a, "_crane_s")) for a in attributes]
    sets.append(exp.EQ(this=col(dim.inferred_flag), expression=exp.false()))
    if dim.row_hash and dim.tracked and set(dim.tracked) <= set(attributes):
        from crane.warehouse.scd.row_hash import row_hash_expr

        value = row_hash_expr(dim.tracked, "_crane_s", dialect)
        sets.append(exp.EQ(this=col(dim.row_hash), expression=value))
    match = [exp.EQ(this=qualified_col(k, dim.table), expression=col(k, "_crane_s")) for k in keys]
    match.append(exp.EQ(this=qualified_col(dim.inferred_flag, dim.table), expression=exp.true()))
    return exp.Update(
        this=table(dim.table),
        expressions=sets,
        from_=exp.From(this=exp.Subquery(this=source, alias=ident("_crane_s"))),
        where=exp.Where(this=and_all(match)),
    )


# PostgreSQL: SHARE ROW EXCLUSIVE conflicts with itself and every writer, not readers;
# the SCD loaders take the same lock, so inferring members never races a dimension load,
# and two loads of one fact never both find a row "not yet loaded".
_LOCK_TEMPLATES = {"postgres": "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE"}


def lock_table(con: Connector, ref: TableRef) -> None:
    """Take the engine's write lock inside the open transaction (DuckDB: single writer)."""
    template = _LOCK_TEMPLATES.get(con.dialect)
    if template:
        con.execute(template.format(ref.sql(con.dialect)))


def lock_dimension(con: Connector, dim: Dimension) -> None:
    lock_table(con, dim.table)
