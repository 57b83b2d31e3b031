"""The one merge (upsert) builder every engine shares, and its key-pruned companions.

Every statement joins staging and target on the key columns only — compared
column by column with ``=`` (no OR-joins, no concatenated keys) — so an engine
can hash- or index-join and never scans the target more than the join needs
(the failure behind dlt #2752 and #2039). Engines with a MERGE statement get
one; engines without it (MySQL/MariaDB) get ``INSERT … ON DUPLICATE KEY UPDATE``
from the same inputs, chosen by the connector's ``capabilities.merge`` flag.

>>> from crane.connectors.base import TableRef
>>> node = build_merge(TableRef("t", "w"), TableRef("stg", "w"), keys=["id"],
...                    columns=["id", "v"], native=True)
>>> print(node.sql("postgres"))  # doctest: +NORMALIZE_WHITESPACE
MERGE INTO "w"."t" AS "_crane_t" USING "w"."stg" AS "_crane_s"
ON "_crane_t"."id" = "_crane_s"."id"
WHEN MATCHED AND NOT ("_crane_t"."v" IS NOT DISTINCT FROM "_crane_s"."v")
THEN UPDATE SET "v" = "_crane_s"."v"
WHEN NOT MATCHED THEN INSERT ("id", "v") VALUES ("_crane_s"."id", "_crane_s"."v")
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.sql.build import (
    all_same,
    and_all,
    col,
    count_where,
    exists,
    insert_select,
    keys_match,
    qualified_col,
    select_from,
    table,
)

if TYPE_CHECKING:
    from crane.connectors.base import TableRef

# Aliases that cannot collide with user tables named "t" or "s".
T = "_crane_t"
S = "_crane_s"


def build_merge(
    target: TableRef,
    source: TableRef,
    *,
    keys: Sequence[str],
    columns: Sequence[str],
    native: bool,
    on_update: Mapping[str, exp.Expr] | None = None,
    changed_extra: Sequence[exp.Expr] = (),
    as_text: Collection[str] = (),
    compare: Sequence[str] | None = None,
) -> exp.Merge | exp.Insert:
    """Upsert ``source`` into ``target`` by ``keys``.

    ``columns`` are loaded from ``source``; ``on_update`` adds assignments for
    matched rows (e.g. clearing a soft-delete timestamp); ``changed_extra`` are
    extra reasons a matched row counts as changed; ``compare`` narrows which columns
    are compared (default: every value column). With ``native`` a MERGE that
    only touches rows whose values differ (NULL-safe); otherwise MySQL's
    ``INSERT … ON DUPLICATE KEY UPDATE`` (which needs the key to be the primary key).
    """
    on_update = dict(on_update or {})
    values = [c for c in columns if c not in keys]
    if not native:
        upsert = _insert_on_duplicate(target, source, keys, columns, values, on_update)
        if compare is not None:  # ON DUPLICATE KEY UPDATE would also rewrite unchanged rows
            changed = changed_condition(_compared(values, compare), changed_extra, as_text)
            unchanged = exp.and_(keys_match(keys, T, S), exp.Not(this=exp.Paren(this=changed)))
            same = exp.select(exp.Literal.number(1)).from_(table(target, T)).where(unchanged)
            upsert.expression.set("where", exp.Where(this=exp.Not(this=exists(same))))
        return upsert
    assignments = [exp.EQ(this=col(c), expression=col(c, S)) for c in values]
    assignments += [exp.EQ(this=col(c), expression=e) for c, e in on_update.items()]
    whens = []
    if assignments:
        changed = changed_condition(_compared(values, compare), changed_extra, as_text)
        whens.append(
            exp.When(matched=True, condition=changed, then=exp.Update(expressions=assignments))
        )
    insert = exp.Insert(
        this=exp.Tuple(expressions=[col(c) for c in columns]),
        expression=exp.Tuple(expressions=[col(c, S) for c in columns]),
    )
    whens.append(exp.When(matched=False, source=False, then=insert))
    return exp.Merge(
        this=table(target, T),
        using=table(source, S),
        on=keys_match(keys, T, S),
        whens=exp.Whens(expressions=whens),
    )


def changed_condition(
    values: Sequence[str], extra: Sequence[exp.Expr] = (), as_text: Collection[str] = ()
) -> exp.Expr:
    """A matched row differs: some value column differs NULL-safely, or an extra reason."""
    reasons: list[exp.Expr] = []
    if values:
        reasons.append(exp.Not(this=exp.Paren(this=all_same(values, T, S, as_text))))
    reasons.extend(extra)
    if not reasons:
        return exp.false()
    return exp.or_(*reasons) if len(reasons) > 1 else reasons[0]


def _compared(values: Sequence[str], compare: Sequence[str] | None) -> list[str]:
    """The value columns whose difference marks a matched row as changed."""
    if compare is None:
        return list(values)
    return [c for c in values if c in compare]


def _insert_on_duplicate(
    target: TableRef,
    source: TableRef,
    keys: Sequence[str],
    columns: Sequence[str],
    values: Sequence[str],
    on_update: Mapping[str, exp.Expr],
) -> exp.Insert:
    insert = insert_select(target, columns, select_from(columns, source, S))
    # A no-op assignment keeps "insert or leave alone" when every column is a key.
    updates = values or [keys[0]]
    assignments = [
        exp.EQ(this=col(c), expression=exp.Anonymous(this="VALUES", expressions=[col(c)]))
        for c in updates
    ]
    assignments += [exp.EQ(this=col(c), expression=e) for c, e in on_update.items()]
    conflict = exp.OnConflict(duplicate=True, expressions=assignments, action=exp.var("UPDATE"))
    insert.set("conflict", conflict)
    return insert


def build_merge_counts(
    target: TableRef,
    source: TableRef,
    *,
    keys: Sequence[str],
    columns: Sequence[str],
    changed_extra: Sequence[exp.Expr] = (),
    as_text: Collection[str] = (),
    compare: Sequence[str] | None = None,
) -> exp.Select:
    """One key join that says what a merge will do: (rows, matched, changed).

    Connectors do not report affected-row counts uniformly, so the plan is
    counted before the statement runs, inside the same transaction.
    """
    values = _compared([c for c in columns if c not in keys], compare)
    probe = col(keys[0], T)
    found = exp.Not(this=exp.Is(this=probe, expression=exp.Null()))
    changed = exp.and_(found, exp.Paren(this=changed_condition(values, changed_extra, as_text)))
    join = exp.Join(this=table(target, T), side="LEFT", on=keys_match(keys, S, T))
    return (
        exp.select(exp.Count(this=exp.Star()), exp.Count(this=probe), count_where(changed))
        .from_(table(source, S))
        .join(join)
    )


def key_in_source(keys: Sequence[str], target: TableRef, source: TableRef) -> exp.Exists:
    """``EXISTS (SELECT 1 FROM source WHERE keys match the target row)``.

    The target is referenced by its qualified name because MySQL cannot alias
    the table of a single-table DELETE.
    """
    query = (
        exp.select(exp.Literal.number(1)).from_(table(source, S)).where(keys_match(keys, S, target))
    )
    return exists(query)


def build_delete_matching(target: TableRef, source: TableRef, keys: Sequence[str]) -> exp.Delete:
    """Delete target rows whose key is in ``source`` (the delete half of delete-insert)."""
    return exp.Delete(this=table(target), where=exp.Where(this=key_in_source(keys, target, source)))


def build_delete_changed(
    target: TableRef,
    source: TableRef,
    *,
    keys: Sequence[str],
    columns: Sequence[str],
    changed_extra: Sequence[exp.Expr] = (),
    as_text: Collection[str] = (),
    compare: Sequence[str] | None = None,
) -> exp.Delete:
    """The delete half of a merge done as delete+insert: target rows whose key is in
    ``source`` and whose values differ (NULL-safe), so unchanged rows stay untouched.

    >>> from crane.connectors.base import TableRef
    >>> node = build_delete_changed(TableRef("t"), TableRef("stg"), keys=["id"],
    ...                             columns=["id", "v"])
    >>> print(node.sql("duckdb"))  # doctest: +NORMALIZE_WHITESPACE
    DELETE FROM "t" AS "_crane_t" USING "stg" AS "_crane_s"
    WHERE "_crane_t"."id" = "_crane_s"."id"
    AND (NOT ("_crane_t"."v" IS NOT DISTINCT FROM "_crane_s"."v"))
    """
    values = _compared([c for c in columns if c not in keys], compare)
    changed = changed_condition(values, changed_extra, as_text)
    condition = exp.and_(keys_match(keys, T, S), exp.Paren(this=changed))
    return exp.Delete(
        this=table(target, T), using=[table(source, S)], where=exp.Where(this=condition)
    )


def build_insert_new_keys(
    target: TableRef, source: TableRef, keys: Sequence[str], columns: Sequence[str]
) -> exp.Insert:
    """Insert the ``source`` rows whose key is not (any more) in ``target``."""
    absent = exp.Not(
        this=exists(
            exp.select(exp.Literal.number(1))
            .from_(table(target))
            .where(keys_match(keys, S, target))
        )
    )
    return insert_select(target, columns, select_from(columns, source, S).where(absent))


def build_delete_missing(target: TableRef, source: TableRef, keys: Sequence[str]) -> exp.Delete:
    """Hard deletes: target rows whose key is absent from a full extract."""
    missing = exp.Not(this=key_in_source(keys, target, source))
    return exp.Delete(this=table(target), where=exp.Where(this=missing))


def build_soft_delete_missing(
    target: TableRef,
    source: TableRef,
    keys: Sequence[str],
    flag_column: str,
    stamp: exp.Expr,
) -> exp.Update:
    """Soft deletes: stamp rows absent from a full extract, unless already stamped."""
    return exp.Update(
        this=table(target),
        expressions=[exp.EQ(this=col(flag_column), expression=stamp)],
        where=exp.Where(this=missing_rows(target, source, keys, flag_column)),
    )


def missing_rows(
    target: TableRef, source: TableRef, keys: Sequence[str], flag_column: str | None
) -> exp.Expr:
    """Target rows not in ``source`` (and, with a flag column, not already flagged)."""
    conditions: list[exp.Expr] = []
    if flag_column:
        conditions.append(exp.Is(this=qualified_col(flag_column, target), expression=exp.Null()))
    conditions.append(exp.Not(this=key_in_source(keys, target, source)))
    return and_all(conditions)


def build_count(source: TableRef, where: exp.Expr | None = None) -> exp.Select:
    query = exp.select(exp.Count(this=exp.Star())).from_(table(source))
    return query.where(where) if where is not None else query


def build_count_in_key_range(source: TableRef, target: TableRef, key: str) -> exp.Select:
    """``(rows of source, rows whose key lies within the target's min..max of key)``.

    A row outside that range cannot match a target row; when none lies inside, the
    rows are all new and need no join with the target. Engines answer min/max from
    their statistics (DuckDB: under 1 ms on 5M rows; a join probing them, ~30 ms)."""
    bounds = exp.select(
        exp.Min(this=col(key)).as_("lo", quoted=True), exp.Max(this=col(key)).as_("hi", quoted=True)
    ).from_(table(target))
    inside = exp.Between(this=col(key, S), low=col("lo", "_b"), high=col("hi", "_b"))
    query = exp.select(exp.Count(this=exp.Star()), count_where(inside)).from_(table(source, S))
    return query.join(exp.Subquery(this=bounds, alias=exp.TableAlias(this=exp.to_identifier("_b"))))


def not_null(name: str, alias: str) -> exp.Expr:
    return exp.Not(this=exp.Is(this=col(name, alias), expression=exp.Null()))
