"""A transaction fact's rerun rows whose grain is loaded but whose values differ.

A transaction fact is immutable (Kimball): a correction arrives as a new transaction,
so such a row must not overwrite the loaded one. Skipping it as the loader skips an
exact re-delivery lost it without a word; it goes to the fact's quarantine table
instead, in the row shape the SCD loaders quarantine late rows in
(:func:`crane.warehouse.scd.steps.quarantine`: the row's columns, reason, run id, load
time), which keeps one copy of a row however often the batch is rerun.

What "differs" means: a copied column (degenerate, measure) or a date key differs, or a
dimension key points at another *member* (another business key). A key pointing at
another version of the same member (a late SCD2 change split the interval) or a key
that was the unknown member and now finds the member (the dimension arrived late)
comes from the same source row: that row is a re-delivery, not a change.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.sql.build import and_all, col, ident, table
from crane.warehouse.facts.lookup import Lookup, _literal

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef
    from crane.warehouse.facts.transaction import TransactionFact
    from crane.warehouse.scd.base import ScdTable

F, Q = "_crane_f", "_crane_q"


def _same(column: str, left: str, right: str) -> exp.Expr:
    return exp.NullSafeEQ(this=col(column, left), expression=col(column, right))


def _other_member(lookup: Lookup, index: int) -> tuple[exp.Expr, list[tuple[exp.Expr, exp.Expr]]]:
    """True when the loaded key and the new one name different members; plus the two
    joins (old member, new member) the condition reads."""
    dim, key = lookup.dimension, lookup.key_column
    old, new = f"_crane_o{index}", f"_crane_n{index}"
    joins: list[tuple[exp.Expr, exp.Expr]] = [
        (
            table(dim.table, old),
            exp.EQ(this=col(dim.surrogate_key, old), expression=col(key, F)),
        ),
        (
            table(dim.table, new),
            exp.EQ(this=col(dim.surrogate_key, new), expression=col(key, Q)),
        ),
    ]
    member = and_all(_same(b, old, new) for b in dim.business_key)
    differs = and_all(
        [
            exp.Not(this=_same(key, F, Q)),
            exp.NEQ(this=col(key, F), expression=_literal(dim.unknown_key)),
            exp.Not(this=member),
        ]
    )
    return differs, joins


def build_changed_rows(fact: TransactionFact, source: TableRef) -> tuple[exp.Select, list[str]]:
    """The fact rows of ``source`` whose grain is loaded with other values, once each;
    and their column names. Run before the insert (a new row matches itself)."""
    from crane.warehouse.facts.transaction import fact_rows

    keys = [*fact.grain, *fact.grain_keys]
    staged = exp.select(exp.Star()).from_(table(source, "b"))
    if not fact.grain_keys:  # compare only the rows already loaded: look up no others
        loaded = exp.select(exp.Literal.number(1)).from_(table(fact.table, "f"))
        loaded = loaded.where(
            and_all(exp.EQ(this=col(k, "f"), expression=col(k, "b")) for k in keys)
        )
        staged = staged.where(exp.Exists(this=loaded))
    rows, names, _ = fact_rows(staged, fact.columns, fact.lookups, fact.date_keys)
    query = (
        exp.select(*(col(n, Q) for n in names))
        .distinct()
        .from_(exp.Subquery(this=rows, alias=ident(Q)))
        .join(
            table(fact.table, F),
            on=and_all(exp.EQ(this=col(k, F), expression=col(k, Q)) for k in keys),
        )
    )
    differs: list[exp.Expr] = [exp.Not(this=_same(c, F, Q)) for c in fact.columns if c not in keys]
    differs += [
        exp.Not(this=_same(d.key_column, F, Q)) for d in fact.date_keys if d.key_column not in keys
    ]
    for i, lookup in enumerate(fact.lookups):
        if lookup.key_column in keys:
            continue
        condition, joins = _other_member(lookup, i)
        for joined, on in joins:
            query = query.join(joined, on=on, join_type="LEFT")
        differs.append(condition)
    if not differs:  # the whole row is its grain: nothing can differ
        return query.where(exp.false()), names
    return query.where(exp.or_(*differs)), names


def reason(kind: str, name: str, grain: list[str], run_id: str) -> str:
    """The quarantine reason: a code to filter by, then the object, its grain, the run.
    The grain's values are the row's own columns of the same names."""
    remedy = (
        "a transaction fact is not updated: send the correction as a new transaction"
        if kind == "fact"
        else f"a {kind} keeps the rows it loaded"
    )
    return (
        f"changed_fact_row: {kind} {name} already holds this row's grain"
        f" ({', '.join(grain)}) with other values; {remedy} (run {run_id})"
    )


def quarantine_changed(
    con: Connector,
    fact: TransactionFact,
    source: TableRef,
    *,
    name: str,
    kind: str,
    run_id: str,
    load_ts: datetime,
) -> tuple[int, int]:
    """Quarantine the changed rows; returns (rows found, rows new in the quarantine)."""
    from crane.warehouse.scd.steps import quarantine

    any_row = exp.select(exp.Literal.number(1)).from_(table(fact.table)).limit(1)
    if not con.fetch(any_row):  # a first load: nothing to compare (lookups cost twice)
        return 0, 0
    rows, names = build_changed_rows(fact, source)
    counted = exp.select(exp.Count(this=exp.Star())).from_(
        exp.Subquery(this=rows.copy(), alias=ident("_crane_c"))
    )
    found = int(con.fetch(counted)[0][0])
    if not found:
        return 0, 0
    grain = [*fact.grain, *fact.grain_keys]
    text = reason(kind, name, grain, run_id)
    added = quarantine(con, _holder(fact), rows, names, reason=text, run_id=run_id, load_ts=load_ts)
    return found, added


def _holder(fact: TransactionFact) -> ScdTable:
    """quarantine() reads only the table and its quarantine table from the dimension."""
    from crane.warehouse.scd.base import ScdTable

    return ScdTable(fact.table, business_key=(*fact.grain, *fact.grain_keys))


def quarantine_table(fact: TransactionFact) -> TableRef:
    """``<fact table>_quarantine`` beside the fact, as a dimension's is."""
    return _holder(fact).quarantine
