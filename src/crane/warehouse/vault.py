"""Data Vault 2.0: hubs, links, satellites and point-in-time tables, insert-only.

Every loader is one set-based ``INSERT … SELECT`` built with sqlglot, so the same
code loads DuckDB, PostgreSQL, Snowflake, BigQuery and Redshift. Nothing is ever
updated or deleted in a hub, link or satellite; a rerun of a batch (or of any earlier
one) inserts nothing. What insert-only history cannot hold is refused, never dropped:
a row without a load date, a second row at a stored load date, a late change.
Those checks live in crane.warehouse.vault_guards; point-in-time tables and the mart
over them in crane.warehouse.vault_pit.

Hash normalisation (identical on every engine; the test vectors in
``tests/warehouse/test_vault.py`` pin the hex on DuckDB and PostgreSQL):

1. each value is ``CAST(value AS VARCHAR)`` by the engine, then ``TRIM``-ed of
   spaces (U+0020 only); hash *keys* are also ``UPPER``-ed (business keys are
   case-blind; ``ß`` is written ``ẞ`` first, as engines upper-case it differently),
   hashdiffs keep case (``Smith`` → ``SMITH`` is a real change);
2. the reserved characters are escaped — ``\\`` → ``\\\\``, ``|`` → ``\\|``,
   ``^`` → ``\\^`` — so no value can forge a delimiter or the NULL placeholder
   (``('a|', 'b')`` and ``('a', '|b')`` hash differently; plain DV2.0 collides);
3. NULL becomes the placeholder ``^^``; the empty string stays ``''`` (≠ NULL);
4. the parts are joined with ``||`` in declared order;
5. ``MD5`` of the UTF-8 text, as 32 *lower-case* hex digits (every engine's
   native form: DuckDB/PostgreSQL/Snowflake/Redshift ``MD5``, BigQuery
   ``TO_HEX(MD5())``).

Values without ``\\ | ^`` hash exactly as the common DV2.0 convention does.
Text, integers, decimals, dates, timestamps and booleans cast to the same text
on DuckDB and PostgreSQL; floats and ``TIMESTAMPTZ`` do not (formatting and
session time zone differ), so cast those to text or decimal in staging.
Snowflake and BigQuery format timestamps and decimals their own way (``.000``
suffixes, ``12.5`` for ``12.50``): there, identical hashes hold for text and integers.
``UPPER`` follows the engine's case rules: a database that leaves ``ä`` lower-case
(PostgreSQL under ``LC_CTYPE`` C) refuses non-ASCII keys; a staging column declared
``COLLATE "C"`` does the same per column and is not detected, so leave keys' collation
at the default.
A row whose business key is entirely NULL is not loaded (it has no identity).

>>> print(hash_key([exp.column("id")], "postgres"))  # doctest: +NORMALIZE_WHITESPACE
MD5(COALESCE(REPLACE(REPLACE(REPLACE(UPPER(REPLACE(TRIM(' ' FROM CAST(id AS VARCHAR)),
  'ß', 'ẞ')), '\\', '\\\\'), '|', '\\|'), '^', '\\^'), '^^'))
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.errors import LoadError
from crane.sql.build import (
    and_all,
    col,
    create_table,
    ident,
    insert_select,
    table,
    timestamp_literal,
)
from crane.warehouse.dialects import column_type

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef

NULL_PLACEHOLDER = "^^"
DELIMITER = "||"
_ESCAPES = (("\\", "\\\\"), ("|", "\\|"), ("^", "\\^"))
LOAD_DATE = "load_date"
RECORD_SOURCE = "record_source"
_HASH_TYPE = "VARCHAR(32)"
_META_NAMES = (LOAD_DATE, RECORD_SOURCE)
_RECORD_SOURCE_LENGTH = 100


class VaultError(LoadError):
    """A vault batch cannot be loaded as given (e.g. an ambiguous order of changes)."""


# -- hashing ---------------------------------------------------------------------


def normalise(value: exp.Expr, *, upper: bool) -> exp.Expr:
    """One hash part: text, trimmed, (upper-cased), escaped, NULL → ``^^``."""
    text: exp.Expr = exp.cast(value, exp.DataType.build("VARCHAR"))
    # spaces only: DuckDB's bare TRIM also strips Unicode spaces (U+00A0, U+2003…)
    text = exp.Trim(this=text, expression=exp.Literal.string(" "))
    if upper:
        # ß first becomes ẞ, which every engine keeps: DuckDB upper-cases ß to ẞ,
        # PostgreSQL keeps ß, others may write SS
        sharp_s = [text, exp.Literal.string("ß"), exp.Literal.string("ẞ")]
        text = exp.Upper(this=exp.Anonymous(this="REPLACE", expressions=sharp_s))
    for raw, escaped in _ESCAPES:
        text = exp.Anonymous(
            this="REPLACE",
            expressions=[text, exp.Literal.string(raw), exp.Literal.string(escaped)],
        )
    return exp.Coalesce(this=text, expressions=[exp.Literal.string(NULL_PLACEHOLDER)])


def _md5(parts: Sequence[exp.Expr], upper: bool) -> exp.Expr:
    joined: exp.Expr | None = None
    for part in parts:
        piece = normalise(part, upper=upper)
        if joined is None:
            joined = piece
        else:
            joined = exp.DPipe(
                this=exp.DPipe(this=joined, expression=exp.Literal.string(DELIMITER)),
                expression=piece,
                safe=True,
            )
    assert joined is not None, "a hash needs at least one part"
    return exp.MD5(this=joined)


def hash_key(parts: Sequence[exp.Expr], dialect: str = "duckdb") -> str:
    """The hash key of business-key ``parts`` (upper-cased); SQL text for ``dialect``."""
    return hash_key_expr(parts).sql(dialect)


def hash_key_expr(parts: Sequence[exp.Expr]) -> exp.Expr:
    return _md5(parts, upper=True)


def hashdiff_expr(parts: Sequence[exp.Expr]) -> exp.Expr:
    """The hashdiff of descriptive attributes (case kept)."""
    return _md5(parts, upper=False)


def _distinct_columns(kind: str, ref: TableRef, columns: Sequence[str]) -> None:
    """A vault table's columns (metadata included) must have distinct, non-empty names:
    a satellite attribute called ``load_date`` failed in the engine with "specified more
    than once", far from the spec that caused it."""
    seen: set[str] = set()
    for name in columns:
        if not name:
            raise VaultError(f"{kind} {ref.name} has a column with an empty name", table=str(ref))
        if name in seen:
            reserved = " (a column every vault table has)" if name in _META_NAMES else ""
            raise VaultError(
                f"{kind} {ref.name} names column {name!r} twice{reserved}", table=str(ref)
            )
        seen.add(name)


def _check_types(
    kind: str, ref: TableRef, types: Mapping[str, str], columns: Sequence[str]
) -> None:
    """``types`` may name only the table's own columns, with types crane can render: a
    misspelt name left its column TEXT without a word."""
    for name, type_text in types.items():
        if name not in columns:
            close = difflib.get_close_matches(name, list(columns), n=1)
            raise VaultError(
                f"{kind} {ref.name} types names {name!r}, not one of its columns "
                f"({', '.join(columns)})",
                table=str(ref),
                hint=f"did you mean {close[0]!r}?" if close else None,
            )
        try:
            column_type(type_text)
        except ValueError as error:
            raise VaultError(
                f"{kind} {ref.name} column {name!r}: {error}", table=str(ref)
            ) from None


def _not_all_null(columns: Sequence[str], alias: str) -> exp.Expr:
    checks = [exp.Not(this=exp.Is(this=col(c, alias), expression=exp.Null())) for c in columns]
    return exp.or_(*checks) if len(checks) > 1 else checks[0]


# -- specs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Hub:
    """Unique business keys; staging columns carry the same names as ``business_keys``."""

    table: TableRef
    hash_key: str
    business_keys: tuple[str, ...]
    types: Mapping[str, str] = field(default_factory=dict)  # business key → SQL type (TEXT)

    def __post_init__(self) -> None:
        if not self.business_keys:
            raise VaultError(f"hub {self.table.name} needs a business key", table=str(self.table))
        _distinct_columns("hub", self.table, [self.hash_key, *self.business_keys, *_META_NAMES])
        _check_types("hub", self.table, self.types, self.business_keys)


@dataclass(frozen=True)
class LinkedHub:
    """One hub a link connects: its hash key column in the link, its staging key columns."""

    hash_key: str
    business_keys: tuple[str, ...]


@dataclass(frozen=True)
class Link:
    """A unique combination of hubs; its hash key hashes all business keys in order."""

    table: TableRef
    hash_key: str
    hubs: tuple[LinkedHub, ...]

    def __post_init__(self) -> None:
        if not self.hubs or not all(h.business_keys for h in self.hubs):
            raise VaultError(
                f"link {self.table.name} needs hubs, each with a business key",
                table=str(self.table),
            )
        hub_keys = [h.hash_key for h in self.hubs]
        _distinct_columns("link", self.table, [self.hash_key, *hub_keys, *_META_NAMES])

    @property
    def business_keys(self) -> tuple[str, ...]:
        return tuple(k for hub in self.hubs for k in hub.business_keys)


@dataclass(frozen=True)
class Satellite:
    """Descriptive history of a hub (or link): one row per change of ``attributes``."""

    table: TableRef
    parent_hash_key: str
    parent_business_keys: tuple[str, ...]
    attributes: tuple[str, ...]
    hashdiff: str = "hashdiff"
    types: Mapping[str, str] = field(default_factory=dict)  # attribute → SQL type (TEXT)

    def __post_init__(self) -> None:
        if not self.parent_business_keys or not self.attributes:
            raise VaultError(
                f"satellite {self.table.name} needs parent business keys and attributes",
                table=str(self.table),
            )
        head = [self.parent_hash_key, self.hashdiff, *_META_NAMES]
        _distinct_columns("satellite", self.table, [*head, *self.attributes])
        _check_types("satellite", self.table, self.types, self.attributes)


@dataclass(frozen=True)
class Batch:
    """A staged batch: where rows are, which system sent them, when they were loaded.

    ``load_date_column`` (a staging column) orders several changes of one key in
    one batch; a constant ``load_date`` serves batches with one change per key.
    """

    source: TableRef
    record_source: str
    load_date: datetime | None = None
    load_date_column: str | None = None

    def __post_init__(self) -> None:
        if (self.load_date is None) == (self.load_date_column is None):
            raise VaultError("a batch needs exactly one of load_date or load_date_column")
        if not 0 < len(self.record_source) <= _RECORD_SOURCE_LENGTH:
            # the vault's record_source column is VARCHAR(100): PostgreSQL refused the
            # whole load with "value too long", DuckDB kept it
            raise VaultError(
                f"record_source must be 1 to {_RECORD_SOURCE_LENGTH} characters, "
                f"not {len(self.record_source)}: {self.record_source[:40]!r}",
                field="record_source",
            )

    def load_date_expr(self, alias: str) -> exp.Expr:
        if self.load_date_column:
            return exp.cast(col(self.load_date_column, alias), exp.DataType.build("TIMESTAMP"))
        assert self.load_date is not None
        return load_date_literal(self.load_date)


def as_load_date(value: datetime) -> datetime:
    """A vault load date is naive; an aware value becomes its UTC wall time.

    Cast by the engine, it took the session's time zone: one instant stored as
    different load dates on two machines, and a rerun from another one was a change.
    """
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def load_date_literal(value: datetime) -> exp.Expr:
    """A vault ``TIMESTAMP`` literal (see `as_load_date`)."""
    return exp.cast(timestamp_literal(as_load_date(value)), exp.DataType.build("TIMESTAMP"))


# -- DDL ---------------------------------------------------------------------------


def _t(kind: str) -> exp.DataType:
    return exp.DataType.build(kind)


def _meta() -> list[tuple[str, exp.DataType]]:
    return [(LOAD_DATE, _t("TIMESTAMP")), (RECORD_SOURCE, _t(f"VARCHAR({_RECORD_SOURCE_LENGTH})"))]


def create_hub(hub: Hub) -> exp.Create:
    keys = [(k, column_type(hub.types.get(k, "TEXT"))) for k in hub.business_keys]
    return create_table(hub.table, [(hub.hash_key, _t(_HASH_TYPE)), *keys, *_meta()])


def create_link(link: Link) -> exp.Create:
    hubs = [(h.hash_key, _t(_HASH_TYPE)) for h in link.hubs]
    return create_table(link.table, [(link.hash_key, _t(_HASH_TYPE)), *hubs, *_meta()])


def create_satellite(sat: Satellite) -> exp.Create:
    attrs = [(a, column_type(sat.types.get(a, "TEXT"))) for a in sat.attributes]
    head = [(sat.parent_hash_key, _t(_HASH_TYPE)), (sat.hashdiff, _t(_HASH_TYPE))]
    return create_table(sat.table, [*head, *_meta(), *attrs])


# -- loaders -----------------------------------------------------------------------

S, C, R, L = "_crane_s", "_crane_c", "_crane_r", "_crane_l"


def _keyed_rows(
    batch: Batch, key: exp.Expr, key_name: str, keys: Sequence[str], extra: Sequence[exp.Expr]
) -> exp.Select:
    """Staged rows with their hash key, load date and record source (NULL keys dropped)."""
    return (
        exp.select(
            exp.alias_(key, key_name, quoted=True),
            *extra,
            exp.alias_(batch.load_date_expr(S), LOAD_DATE, quoted=True),
            exp.alias_(exp.Literal.string(batch.record_source), RECORD_SOURCE, quoted=True),
        )
        .from_(table(batch.source, S))
        .where(_not_all_null(keys, S))
    )


def _first_new(rows: exp.Select, target: TableRef, key: str, columns: Sequence[str]) -> exp.Insert:
    """Insert the earliest row of each key not yet in ``target`` (hubs and links)."""
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col(key, C)],
        order=exp.Order(expressions=[exp.Ordered(this=col(LOAD_DATE, C))]),
    )
    ranked = exp.select(
        *(col(c, C) for c in columns), exp.alias_(rank, "_crane_rn", quoted=True)
    ).from_(exp.Subquery(this=rows, alias=ident(C)))
    seen = exp.select(exp.Literal.number(1)).from_(table(target, L))
    seen = seen.where(exp.EQ(this=col(key, L), expression=col(key, R)))
    query = (
        exp.select(*(col(c, R) for c in columns))
        .from_(exp.Subquery(this=ranked, alias=ident(R)))
        .where(
            and_all(
                [
                    exp.EQ(this=col("_crane_rn", R), expression=exp.Literal.number(1)),
                    exp.Not(this=exp.Exists(this=seen)),
                ]
            )
        )
    )
    return insert_select(target, columns, query)


def build_hub_load(hub: Hub, batch: Batch) -> exp.Insert:
    """New business keys only; the first load date and source of a key are kept."""
    key = hash_key_expr([col(k, S) for k in hub.business_keys])
    extra = [col(k, S) for k in hub.business_keys]
    rows = _keyed_rows(batch, key, hub.hash_key, hub.business_keys, extra)
    columns = [hub.hash_key, *hub.business_keys, LOAD_DATE, RECORD_SOURCE]
    return _first_new(rows, hub.table, hub.hash_key, columns)


def build_link_load(link: Link, batch: Batch) -> exp.Insert:
    """New key combinations only; rows missing any hub's whole key are skipped."""
    key = hash_key_expr([col(k, S) for k in link.business_keys])
    extra = [
        exp.alias_(hash_key_expr([col(k, S) for k in h.business_keys]), h.hash_key, quoted=True)
        for h in link.hubs
    ]
    rows = _keyed_rows(batch, key, link.hash_key, link.hubs[0].business_keys, extra)
    for hub in link.hubs[1:]:
        rows = rows.where(_not_all_null(hub.business_keys, S))
    columns = [link.hash_key, *(h.hash_key for h in link.hubs), LOAD_DATE, RECORD_SOURCE]
    return _first_new(rows, link.table, link.hash_key, columns)


def _satellite_source(sat: Satellite, batch: Batch) -> exp.Select:
    """Staged changes with hash key and hashdiff; exact repeats within the batch dropped."""
    key = hash_key_expr([col(k, S) for k in sat.parent_business_keys])
    diff = hashdiff_expr([col(a, S) for a in sat.attributes])
    extra = [exp.alias_(diff, sat.hashdiff, quoted=True), *(col(a, S) for a in sat.attributes)]
    rows = _keyed_rows(batch, key, sat.parent_hash_key, sat.parent_business_keys, extra)
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col(c, C) for c in (sat.parent_hash_key, LOAD_DATE, sat.hashdiff)],
        order=exp.Order(expressions=[exp.Ordered(this=col(RECORD_SOURCE, C))]),
    )
    ranked = exp.select(exp.Star(), exp.alias_(rank, "_crane_rn", quoted=True)).from_(
        exp.Subquery(this=rows, alias=ident(C))
    )
    columns = _sat_columns(sat)
    return (
        exp.select(*(col(c, R) for c in columns))
        .from_(exp.Subquery(this=ranked, alias=ident(R)))
        .where(exp.EQ(this=col("_crane_rn", R), expression=exp.Literal.number(1)))
    )


def _cte(name: str, alias: str | None = None) -> exp.Table:
    node = exp.Table(this=ident(name))
    if alias:
        node.set("alias", exp.TableAlias(this=ident(alias)))
    return node


def _sat_columns(sat: Satellite) -> list[str]:
    return [sat.parent_hash_key, sat.hashdiff, LOAD_DATE, RECORD_SOURCE, *sat.attributes]


def _latest(sat: Satellite) -> exp.Select:
    """The newest satellite row of each hash key in the batch (pruned to those keys)."""
    hk = sat.parent_hash_key
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col(hk, L)],
        order=exp.Order(expressions=[exp.Ordered(this=col(LOAD_DATE, L), desc=True)]),
    )
    in_batch = col(hk, L).isin(query=exp.select(col(hk)).from_(_cte("_crane_src")))
    ranked = (
        exp.select(
            col(hk, L),
            col(sat.hashdiff, L),
            col(LOAD_DATE, L),
            exp.alias_(rank, "_crane_rn", quoted=True),
        )
        .from_(table(sat.table, L))
        .where(in_batch)
    )
    return (
        exp.select(col(hk, R), col(sat.hashdiff, R), col(LOAD_DATE, R))
        .from_(exp.Subquery(this=ranked, alias=ident(R)))
        .where(exp.EQ(this=col("_crane_rn", R), expression=exp.Literal.number(1)))
    )


def build_satellite_load(
    sat: Satellite, batch: Batch, hashed: TableRef | None = None
) -> exp.Insert:
    """A row per change: compared with the previous change in the batch, or the latest row.

    Changes at or before the key's latest load date are already loaded (a rerun)
    and are skipped; A→B→A in one batch inserts three rows, A→A inserts one.
    """
    hk, hd, columns = sat.parent_hash_key, sat.hashdiff, _sat_columns(sat)
    src = "_crane_src"
    lag = exp.Window(
        this=exp.Anonymous(this="LAG", expressions=[col(hd, src)]),
        partition_by=[col(hk, src)],
        order=exp.Order(expressions=[exp.Ordered(this=col(LOAD_DATE, src))]),
    )
    newer = exp.or_(
        exp.Is(this=col(hk, L), expression=exp.Null()),
        exp.GT(this=col(LOAD_DATE, src), expression=col(LOAD_DATE, L)),
    )
    fresh = (
        exp.select(
            *(col(c, src) for c in columns),
            exp.alias_(lag, "_crane_prev", quoted=True),
            exp.alias_(col(hd, L), "_crane_last", quoted=True),
        )
        .from_(_cte(src))
        .join(
            _cte("_crane_latest", L),
            on=exp.EQ(this=col(hk, src), expression=col(hk, L)),
            join_type="LEFT",
        )
        .where(newer)
    )
    before = exp.Coalesce(this=col("_crane_prev", "f"), expressions=[col("_crane_last", "f")])
    changed = exp.or_(
        exp.Is(this=before, expression=exp.Null()),
        exp.NEQ(this=before.copy(), expression=col(hd, "f")),
    )
    query = (
        exp.select(*(col(c, "f") for c in columns))
        .from_(exp.Subquery(this=fresh, alias=ident("f")))
        .where(changed)
        .with_(ident(src), as_=_source_or(sat, batch, hashed))
        .with_(ident("_crane_latest"), as_=_latest(sat))
    )
    return insert_select(sat.table, columns, query)


def _source_or(sat: Satellite, batch: Batch, hashed: TableRef | None) -> exp.Select:
    """The hashed batch: computed here, or read from a scratch table that holds it."""
    if hashed is None:
        return _satellite_source(sat, batch)
    return exp.select(*(col(c) for c in _sat_columns(sat))).from_(table(hashed))


# -- loading -----------------------------------------------------------------------


def load_hub(con: Connector, hub: Hub, batch: Batch) -> int:
    """Insert the batch's new business keys; returns how many."""
    from crane.warehouse.facts.lookup import lock_table
    from crane.warehouse.facts.scratch import insert_via_scratch
    from crane.warehouse.vault_guards import refuse_foreign_case_rules, refuse_null_load_dates

    with con.transaction():
        refuse_null_load_dates(con, hub.table, batch, hub.business_keys)
        refuse_foreign_case_rules(con, hub.table, batch, hub.business_keys)
        lock_table(con, hub.table)
        return insert_via_scratch(con, build_hub_load(hub, batch))


def load_link(con: Connector, link: Link, batch: Batch) -> int:
    """Insert the batch's new key combinations; returns how many."""
    from crane.warehouse.facts.lookup import lock_table
    from crane.warehouse.facts.scratch import insert_via_scratch
    from crane.warehouse.vault_guards import refuse_foreign_case_rules, refuse_null_load_dates

    with con.transaction():
        # a link row needs every hub's key; one whole key present is enough to refuse
        refuse_null_load_dates(con, link.table, batch, link.hubs[0].business_keys)
        refuse_foreign_case_rules(con, link.table, batch, link.business_keys)
        lock_table(con, link.table)
        return insert_via_scratch(con, build_link_load(link, batch))


def load_satellite(con: Connector, sat: Satellite, batch: Batch) -> int:
    """Insert the batch's changes; refuses a key with two different rows at one load date.

    The batch is hashed once into a scratch table (hashing dominates the cost:
    1M rows took 16.6 s hashed three times, see the module notes), then checked,
    counted and inserted from there.
    """
    from crane.warehouse.facts.lookup import lock_table
    from crane.warehouse.facts.scratch import insert_counted, scratch_table
    from crane.warehouse.vault_guards import (
        refuse_foreign_case_rules,
        refuse_null_load_dates,
        refuse_unordered,
        refuse_unplaceable,
    )

    # two concurrent loads of one key would each see the same "latest" row
    with con.transaction():
        refuse_null_load_dates(con, sat.table, batch, sat.parent_business_keys)
        refuse_foreign_case_rules(con, sat.table, batch, sat.parent_business_keys)
        with scratch_table(con, sat.table, _satellite_source(sat, batch)) as hashed:
            lock_table(con, sat.table)
            refuse_unordered(con, sat, batch, hashed)
            refuse_unplaceable(con, sat, hashed)
            return insert_counted(con, build_satellite_load(sat, batch, hashed))
