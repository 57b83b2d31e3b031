"""Validate a staging table before it is published; quarantine what cannot load.

Nothing is dropped silently (DESIGN principle 5): a row that breaks a declared
column contract (a value that does not fit the type, a NULL in a NOT NULL or key
column) or repeats a primary key in the batch is copied to ``_crane.quarantine``
with the run id, pipeline, source, column and reason, and removed from staging.
Every step is one set-based statement in the target engine — Python never loops
over rows — and runs in the caller's transaction, so quarantined rows commit
together with the load (or not at all).

The books must balance: ``rows_in == rows_valid + rows_quarantined +
rows_deduplicated`` (the last is non-zero only for ``duplicate_keys: keep_last``,
whose superseded rows are dropped on purpose and counted in ``reasons``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.connectors.base import TableRef
from crane.errors import LoadError, QuarantineLimitError
from crane.sql import build as b
from crane.sql.merge import S, build_count

if TYPE_CHECKING:
    import pyarrow as pa

    from crane.config.spec import PipelineSpec
    from crane.connectors.base import Connector

QUARANTINE = TableRef("quarantine", "_crane")
ROW_ORDINAL = "_crane_row"
QUARANTINE_COLUMNS = [
    ("run_id", "TEXT"),
    ("pipeline", "TEXT"),
    ("source", "TEXT"),
    ("target_table", "TEXT"),
    ("column_name", "TEXT"),
    ("reason", "TEXT"),
    ("row_json", "TEXT"),
    ("quarantined_at", "TIMESTAMPTZ"),
]


@dataclass
class ValidationResult:
    """The books of one batch: every row in is valid, quarantined or superseded."""

    rows_in: int
    rows_valid: int
    rows_quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    rows_deduplicated: int = 0  # keep_last: earlier rows of a repeated key, dropped on purpose

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class _Check:
    """One row-level rule: rows where ``fails`` holds are quarantined with ``reason``."""

    column: str
    category: str  # the key in ValidationResult.reasons
    fails: exp.Expr
    reason: exp.Expr  # per-row reason text (may quote the offending value)


@dataclass(frozen=True)
class _Batch:
    """Where a batch is and whose it is: the context every quarantine row records."""

    target: Connector
    staging: TableRef
    spec: PipelineSpec
    run_id: str
    source_name: str

    @property
    def table(self) -> str:
        return str(TableRef(self.spec.target.table, self.spec.target.schema_))


def validate_staging(
    target: Connector,
    staging: TableRef,
    spec: PipelineSpec,
    *,
    run_id: str,
    source_name: str,
    rows_in: int,
) -> ValidationResult:
    """Quarantine rows that break contracts or repeat a key; returns the batch's books.

    Raises LoadError if staging does not hold ``rows_in`` rows, if duplicate keys
    are found under ``duplicate_keys: fail``, or if the books do not balance.
    """
    batch = _Batch(target, staging, spec, run_id, source_name)
    schema = target.table_schema(staging)
    if schema is None:
        raise LoadError("staging table is missing", pipeline=spec.name, table=str(staging))
    checks = _checks(batch, schema)
    counts = _row(
        target, exp.select(exp.Count(this=exp.Star()), *_failing(checks)).from_(b.table(staging, S))
    )
    if counts[0] != rows_in:
        raise LoadError(
            f"staging holds {counts[0]} rows but {rows_in} were extracted",
            pipeline=spec.name,
            table=batch.table,
            run_id=run_id,
        )
    result = ValidationResult(rows_in=rows_in, rows_valid=rows_in, rows_quarantined=0)
    # hard deletes read every key of the extract (a replace only to flag soft deletes)
    deletes = spec.load.hard_deletes
    if (
        any(counts[1:])
        and deletes != "ignore"
        and (spec.load.strategy != "replace" or deletes == "soft")
    ):
        _keep_present_keys(batch)
    for check, count in zip(checks, counts[1:], strict=True):
        if count:
            _quarantine(batch, check, check.fails, result)
    if spec.load.primary_key:
        _deduplicate(batch, schema, result)
    _enforce_types(batch, schema)
    _verify(batch, result)
    return result


def _keep_present_keys(batch: _Batch) -> None:
    """Every key of the batch, before bad rows leave it: hard-delete detection reads them
    (`crane.pipelines.load.present_keys_table`), or a quarantined row's target row would
    be deleted as if its source row were gone."""
    from crane.pipelines.load import present_keys_table

    present = present_keys_table(batch.staging)
    keys = [b.col(k) for k in batch.spec.load.primary_key]
    batch.target.execute(b.drop_table(present))
    query = exp.select(*keys).distinct().from_(b.table(batch.staging))
    batch.target.execute(b.create_table_as(present, query))


def check_ratio(result: ValidationResult, spec: PipelineSpec) -> None:
    """Fail the run when more than ``max_quarantine_ratio`` of its rows were quarantined."""
    if not result.rows_in:
        return
    ratio = result.rows_quarantined / result.rows_in
    if ratio > spec.load.max_quarantine_ratio:
        top = ", ".join(
            f"{k} ({v})" for k, v in sorted(result.reasons.items(), key=lambda i: -i[1])
        )
        raise QuarantineLimitError(
            f"{result.rows_quarantined} of {result.rows_in} rows quarantined ({ratio:.1%}), "
            f"above max_quarantine_ratio {spec.load.max_quarantine_ratio:.1%}: {top}",
            pipeline=spec.name,
            table=str(TableRef(spec.target.table, spec.target.schema_)),
            hint="inspect _crane.quarantine for this run, fix the source or raise the ratio",
        )


# -- checks ------------------------------------------------------------------


def _checks(batch: _Batch, schema: pa.Schema) -> list[_Check]:
    """Key NULLs first, then each declared contract in the order it was declared."""
    spec, names = batch.spec, set(schema.names)
    for key in spec.load.primary_key:
        if key not in names:
            raise LoadError(
                "a primary key column is missing from the batch",
                pipeline=spec.name,
                table=batch.table,
                column=key,
            )
    checks = [_null_check(k, "NULL in primary key column") for k in spec.load.primary_key]
    checks += _target_checks(batch, names)
    for name, contract in spec.columns.items():
        if name not in names:
            raise LoadError(
                "a declared column is missing from the batch",
                pipeline=spec.name,
                table=batch.table,
                column=name,
            )
        if not contract.nullable and name not in spec.load.primary_key:
            checks.append(_null_check(name, "NULL in NOT NULL column"))
        if contract.type and not _fits_by_type(schema.field(name), contract.type):
            checks.append(_type_check(batch.target, name, contract.type, schema.field(name)))
    return checks


def _target_checks(batch: _Batch, staged: set[str]) -> list[_Check]:
    """What an existing target declares itself: a NOT NULL column, a ``varchar(n)``
    length (unless the schema policy ``evolve`` widens it). A row breaking one failed the
    whole publish with the engine's error; it is bad data like any other, so it is
    quarantined with the target's rule as its reason."""
    spec, checks = batch.spec, []
    # what the pipeline checks itself already (key and contract NULLs, declared types)
    null_checked = {*spec.load.primary_key, *(n for n, c in spec.columns.items() if not c.nullable)}
    typed = {n for n, c in spec.columns.items() if c.type}
    for name, nullable, length in _target_columns(batch):
        if name not in staged:
            continue
        if not nullable and name not in null_checked:
            checks.append(_null_check(name, "NULL in NOT NULL column of the target"))
        evolves = spec.load.on_schema_change == "evolve"  # it widens the column instead
        if length is not None and not evolves and name not in typed:
            checks.append(_length_check(name, int(length)))
    return checks


def _target_columns(batch: _Batch) -> list[tuple[str, bool, int | None]]:
    """(name, nullable, text length limit) of the target table's columns; none if it is
    not there yet. ``information_schema.columns`` answers on every target engine."""
    target, spec = batch.target, batch.spec
    schema = spec.target.schema_ or target.default_schema
    info = exp.table_("columns", db="information_schema")
    where = exp.and_(
        exp.column("table_schema").eq(
            exp.Literal.string(schema) if schema else exp.func("DATABASE")
        ),
        exp.column("table_name").eq(exp.Literal.string(spec.target.table)),
    )
    if target.dialect == "duckdb":  # attached databases list their tables here too
        where = exp.and_(where, exp.column("table_catalog").eq(exp.func("current_database")))
    query = (
        exp.select("column_name", "is_nullable", "character_maximum_length")
        .from_(info)
        .where(where)
    )
    return [
        (str(n), str(nullable).upper() != "NO", size) for n, nullable, size in target.fetch(query)
    ]


def _length_check(name: str, length: int) -> _Check:
    value = b.col(name, S)
    text = exp.cast(value, exp.DataType.build("TEXT"))
    fails = exp.GT(this=exp.Length(this=text), expression=exp.Literal.number(length))
    shown = f"longer than the target's {length} characters"
    reason = exp.func(
        "CONCAT", exp.Literal.string("value '"), text.copy(), exp.Literal.string(f"' is {shown}")
    )
    return _Check(name, f"longer than {length} characters (target)", fails, reason)


def _fits_by_type(staged: pa.Field, type_text: str) -> bool:
    """True when every value of the staged column's type fits the declared type.

    Such a column needs no per-value check (on PostgreSQL 15 that check is a
    function call per row) and no conversion: a decimal(10,2) column declared
    decimal(12,2) is loaded as it is, and the target widens later if it must.
    """
    from crane.pipelines.schema import supertype

    declared = _arrow_type(b.sql_type(type_text))
    return declared is not None and supertype(staged.type, declared)[0] == "fits"


def _arrow_type(dtype: exp.DataType) -> pa.DataType | None:
    """The Arrow type of a declared SQL type, for the common scalar types only."""
    import pyarrow as pa

    t = exp.DataType.Type
    if dtype.is_type(t.DECIMAL) and len(dtype.expressions) == 2:
        precision, scale = (int(e.this.name) for e in dtype.expressions)
        return pa.decimal128(precision, scale)
    if dtype.expressions:  # varchar(n), char(n), decimal(p): values need checking
        return None
    simple = {
        t.SMALLINT: pa.int16(),
        t.INT: pa.int32(),
        t.BIGINT: pa.int64(),
        t.FLOAT: pa.float32(),
        t.DOUBLE: pa.float64(),
        t.BOOLEAN: pa.bool_(),
        t.TEXT: pa.string(),
        t.VARCHAR: pa.string(),
        t.DATE: pa.date32(),
        t.TIMESTAMP: pa.timestamp("us"),
        t.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
    }
    return simple.get(dtype.this)


def _null_check(name: str, reason: str) -> _Check:
    fails = exp.Is(this=b.col(name, S), expression=exp.Null())
    return _Check(name, reason, fails, exp.Literal.string(reason))


def _type_check(target: Connector, name: str, type_text: str, staged: pa.Field) -> _Check:
    shown = type_text.strip().upper().replace(" ", "")
    value = b.col(name, S)
    dtype = b.sql_type(type_text)
    fits = _fits(target, value, dtype)
    exact = _keeps_scale(value, dtype, staged)
    if exact is not None:
        fits = exp.and_(fits, exact)
    fails = exp.and_(
        exp.Not(this=exp.Is(this=value, expression=exp.Null())), exp.Not(this=exp.Paren(this=fits))
    )
    text = exp.cast(value, exp.DataType.build("TEXT"))
    reason = exp.func(
        "CONCAT", exp.Literal.string("value '"), text, exp.Literal.string(f"' does not fit {shown}")
    )
    return _Check(name, f"does not fit {shown}", fails, reason)


def _fits(target: Connector, value: exp.Expr, dtype: exp.DataType) -> exp.Expr:
    """A condition true when ``value`` converts to ``dtype`` without error or truncation."""
    builder = _FITS.get(target.dialect)
    if builder is None:
        raise LoadError(
            f"typed column contracts are not supported on {target.dialect} targets yet",
            hint="declare the type in the transform instead",
        )
    fits = builder(target, value, dtype)
    length = _declared_length(dtype)
    if length is None:
        return fits
    # Explicit casts truncate strings silently (PostgreSQL) or ignore the length (DuckDB).
    text = exp.cast(value, exp.DataType.build("TEXT"))
    short = exp.LTE(this=exp.Length(this=text), expression=exp.Literal.number(length))
    return exp.and_(fits, short)


def _keeps_scale(value: exp.Expr, dtype: exp.DataType, staged: pa.Field) -> exp.Expr | None:
    """For a declared ``decimal(p,s)`` over exact values (decimals, text): true when no
    non-zero digit lies past the s-th decimal. Both engines *round* on a cast (1.12345 →
    1.12), which would drop digits silently; such a value does not fit and is quarantined."""
    import pyarrow as pa

    if not dtype.is_type(exp.DataType.Type.DECIMAL) or len(dtype.expressions) != 2:
        return None
    scale = int(dtype.expressions[1].this.name)
    if not (pa.types.is_decimal(staged.type) or pa.types.is_string(staged.type)):
        return None  # integers have no decimals; a float is inexact, rounding it is expected
    text = exp.cast(value.copy(), exp.DataType.build("TEXT"))
    beyond = exp.RegexpLike(this=text, expression=exp.Literal.string(rf"\.[0-9]{{{scale}}}0*[1-9]"))
    return exp.Not(this=exp.Paren(this=beyond))


def _declared_length(dtype: exp.DataType) -> int | None:
    if not dtype.is_type(
        *exp.DataType.TEXT_TYPES,
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.CHAR,
        exp.DataType.Type.NCHAR,
        exp.DataType.Type.NVARCHAR,
    ):
        return None
    sizes = [e for e in dtype.expressions if isinstance(e, exp.DataTypeParam)]
    return int(sizes[0].this.name) if sizes else None


def _fits_try_cast(target: Connector, value: exp.Expr, dtype: exp.DataType) -> exp.Expr:
    return exp.Not(this=exp.Is(this=exp.TryCast(this=value, to=dtype), expression=exp.Null()))


def _fits_postgres(target: Connector, value: exp.Expr, dtype: exp.DataType) -> exp.Expr:
    """PostgreSQL has no TRY_CAST: a session-temporary function catches the cast error.

    PostgreSQL 16's ``pg_input_is_valid`` would do, but 15 is still common; the
    function is created per type, in ``pg_temp`` so nothing outlives the session.
    """
    rendered = dtype.sql(dialect="postgres")
    name = "crane_fits_" + hashlib.sha1(rendered.encode()).hexdigest()[:12]
    body = (
        f"BEGIN PERFORM CAST($1 AS {rendered}); RETURN true; "
        "EXCEPTION WHEN others THEN RETURN false; END"
    )
    target.execute(
        exp.Command(
            this="CREATE",
            expression=f"OR REPLACE FUNCTION pg_temp.{name}(text) RETURNS boolean "
            f"LANGUAGE plpgsql AS {exp.Literal.string(body).sql('postgres')}",
        )
    )
    call = exp.Anonymous(this=name, expressions=[exp.cast(value, exp.DataType.build("TEXT"))])
    return exp.Dot(this=exp.to_identifier("pg_temp"), expression=call)


_FITS: dict[str, Callable[[Connector, exp.Expr, exp.DataType], exp.Expr]] = {
    "duckdb": _fits_try_cast,
    "postgres": _fits_postgres,
}
# How a whole staging row becomes JSON text, per dialect; others list the columns.
_ROW_JSON = {"duckdb": "TO_JSON", "postgres": "ROW_TO_JSON"}
# A stable physical row identity where the batch has no ``_crane_row`` ordinal.
_ROW_ID = {"duckdb": "rowid", "postgres": "ctid"}


def _failing(checks: list[_Check]) -> list[exp.Expr]:
    return [b.count_where(c.fails) for c in checks]


# -- quarantine --------------------------------------------------------------


def ensure_quarantine(target: Connector) -> None:
    """Create ``_crane.quarantine`` if it does not exist yet."""
    target.execute(b.create_schema(QUARANTINE.schema or "_crane"))
    columns = [(name, exp.DataType.build(kind)) for name, kind in QUARANTINE_COLUMNS]
    target.execute(b.create_table(QUARANTINE, columns))


def _quarantine(batch: _Batch, check: _Check, where: exp.Expr, result: ValidationResult) -> int:
    """Move the rows matching ``where`` from staging to the quarantine table."""
    target = batch.target
    count = _row(target, _count(batch, where))[0]
    if not count:
        return 0
    if target.capabilities.transactional_ddl:  # else created before the run's transaction
        ensure_quarantine(target)
    values = [
        exp.Literal.string(batch.run_id),
        exp.Literal.string(batch.spec.name),
        exp.Literal.string(batch.source_name),
        exp.Literal.string(batch.table),
        exp.Literal.string(check.column),
        check.reason,
        _row_json(target, batch.staging),
        exp.CurrentTimestamp(),
    ]
    query = exp.select(*values).from_(b.table(batch.staging, S)).where(where)
    names = [name for name, _ in QUARANTINE_COLUMNS]
    target.execute(b.insert_select(QUARANTINE, names, query))
    _delete(batch, where)
    result.rows_quarantined += count
    result.rows_valid -= count
    result.reasons[f"{check.column}: {check.category}"] = (
        result.reasons.get(f"{check.column}: {check.category}", 0) + count
    )
    return count


def _count(batch: _Batch, where: exp.Expr) -> exp.Select:
    return exp.select(exp.Count(this=exp.Star())).from_(b.table(batch.staging, S)).where(where)


def _delete(batch: _Batch, where: exp.Expr) -> None:
    """Delete staging rows matching ``where`` (written against the alias ``S``)."""
    if _known_row_identity(batch) is None:
        # no row identity (MySQL): the condition names staging's own columns instead; a
        # rule reading other rows (duplicate keys) asked for the identity and failed
        def own(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column) and node.table == S:
                return b.qualified_col(node.name, batch.staging)
            return node

        own_where = where.copy().transform(own)
        batch.target.execute(
            exp.Delete(this=b.table(batch.staging), where=exp.Where(this=own_where))
        )
        return
    ident = _row_identity(batch)
    # DELETE cannot alias its table everywhere: match rows through their identity.
    inner = exp.select(b.col(ident, S)).from_(b.table(batch.staging, S)).where(where)
    condition = b.qualified_col(ident, batch.staging).isin(query=inner)
    batch.target.execute(exp.Delete(this=b.table(batch.staging), where=exp.Where(this=condition)))


def _known_row_identity(batch: _Batch) -> str | None:
    schema = batch.target.table_schema(batch.staging)
    if schema is not None and ROW_ORDINAL in schema.names:
        return ROW_ORDINAL
    return _ROW_ID.get(batch.target.dialect)


def _row_identity(batch: _Batch) -> str:
    ident = _known_row_identity(batch)
    if ident is None:
        raise LoadError(
            f"telling repeated keys apart needs a row identity, which {batch.target.dialect} "
            "targets lack",
            pipeline=batch.spec.name,
            table=batch.table,
            hint="use duplicate_keys: fail, or deduplicate in the source query",
        )
    return ident


def _row_json(target: Connector, staging: TableRef) -> exp.Expr:
    func = _ROW_JSON.get(target.dialect)
    if func is not None:
        whole = exp.Anonymous(this=func, expressions=[exp.column(b.ident(S))])
        return exp.cast(whole, exp.DataType.build("TEXT"))
    names = (target.table_schema(staging) or _empty()).names
    pairs = [exp.JSONKeyValue(this=exp.Literal.string(n), expression=b.col(n, S)) for n in names]
    return exp.cast(exp.JSONObject(expressions=pairs), exp.DataType.build("TEXT"))


def _empty() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([])


# -- duplicate keys ----------------------------------------------------------


def _deduplicate(batch: _Batch, schema: pa.Schema, result: ValidationResult) -> None:
    """Apply ``duplicate_keys`` to rows that share a primary key within the batch."""
    keys = batch.spec.load.primary_key
    extra = _duplicate_rows(batch)
    if not extra:
        return
    policy = batch.spec.load.duplicate_keys
    column = ", ".join(keys)
    if policy == "fail":
        sample = _sample_key(batch)
        raise LoadError(
            f"{extra} rows repeat a primary key within the batch, e.g. {sample}",
            pipeline=batch.spec.name,
            table=batch.table,
            column=column,
            run_id=batch.run_id,
            hint="set load.duplicate_keys to quarantine or keep_last, or fix the source",
        )
    superseded = _superseded(batch, schema)
    if policy == "quarantine":
        reason = "duplicate key in batch (a later row with this key was kept)"
        check = _Check(column, "duplicate key", superseded, exp.Literal.string(reason))
        _quarantine(batch, check, superseded, result)
    else:
        _delete(batch, superseded)
        result.rows_valid -= extra
        result.rows_deduplicated += extra
        result.reasons[f"{column}: duplicate key, earlier rows dropped"] = extra
    if _duplicate_rows(batch):
        raise LoadError(
            "duplicate keys remain after deduplication",
            pipeline=batch.spec.name,
            table=batch.table,
            column=column,
        )


def _duplicate_rows(batch: _Batch) -> int:
    """Rows beyond the first for every key that repeats (one GROUP BY scan)."""
    keys = [b.col(k) for k in batch.spec.load.primary_key]
    n = exp.alias_(exp.Count(this=exp.Star()), "n")
    groups = exp.select(*keys, n).from_(b.table(batch.staging)).group_by(*keys)
    groups = groups.having(_repeats())
    total = exp.func("COALESCE", exp.Sum(this=exp.column("n")), exp.Literal.number(0))
    query = exp.select(exp.Sub(this=total, expression=exp.Count(this=exp.Star()))).from_(
        groups.subquery("d")
    )
    return _row(batch.target, query)[0]


def _repeats() -> exp.Expr:
    return exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1))


def _sample_key(batch: _Batch) -> str:
    keys = batch.spec.load.primary_key
    query = (
        exp.select(*(b.col(k) for k in keys))
        .from_(b.table(batch.staging))
        .group_by(*(b.col(k) for k in keys))
        .having(_repeats())
        .limit(1)
    )
    row = batch.target.fetch(query)[0]
    return ", ".join(f"{k}={v!r}" for k, v in zip(keys, row, strict=True))


def _superseded(batch: _Batch, schema: pa.Schema) -> exp.Expr:
    """Rows of a repeated key other than the last one: the newest by the incremental
    cursor, then by ``_crane_row`` (else row id). Staging's physical order is the order
    the source was scanned in, which on PostgreSQL is heap order, not version order."""
    ident = _row_identity(batch)
    keys = [b.col(k) for k in batch.spec.load.primary_key]
    order = [exp.Ordered(this=b.col(ident), desc=True)]
    cursor = batch.spec.extract.cursor
    if cursor and cursor in schema.names:
        order.insert(0, exp.Ordered(this=b.col(cursor), desc=True, nulls_first=False))
    rank = exp.Window(this=exp.RowNumber(), partition_by=keys, order=exp.Order(expressions=order))
    ranked = exp.select(exp.alias_(b.col(ident), "rid"), exp.alias_(rank, "rn")).from_(
        b.table(batch.staging)
    )
    losers = (
        exp.select(exp.column("rid"))
        .from_(ranked.subquery("r"))
        .where(exp.GT(this=exp.column("rn"), expression=exp.Literal.number(1)))
    )
    return b.col(ident, S).isin(query=losers)


# -- typing and verification ---------------------------------------------------


def _enforce_types(batch: _Batch, schema: pa.Schema) -> None:
    """Give staging columns their declared types, so the target is created with them.

    Staging is rebuilt rather than altered: DuckDB refuses to commit an ALTER of a
    table that the same transaction deleted from, and its ALTER would also convert
    the deleted (bad) rows. Every remaining value was checked to fit the type.
    """
    declared = {
        name: b.sql_type(contract.type)
        for name, contract in batch.spec.columns.items()
        if contract.type and not _fits_by_type(schema.field(name), contract.type)
    }
    if not declared:
        return
    select = [
        exp.alias_(exp.TryCast(this=b.col(n), to=declared[n]), b.ident(n))
        if n in declared
        else b.col(n)
        for n in schema.names
    ]
    staging = batch.staging
    typed = TableRef(staging.name + "__crane_typed", staging.schema)
    batch.target.execute(b.drop_table(typed))
    batch.target.execute(b.create_table_as(typed, exp.select(*select).from_(b.table(staging))))
    batch.target.execute(b.drop_table(staging))
    batch.target.execute(b.rename_table(typed, staging.name))


def _verify(batch: _Batch, result: ValidationResult) -> None:
    """The books balance, and staging holds exactly the valid rows."""
    spec = batch.spec
    accounted = result.rows_valid + result.rows_quarantined + result.rows_deduplicated
    if accounted != result.rows_in:
        raise LoadError(
            f"rows_in {result.rows_in} != valid {result.rows_valid} + quarantined "
            f"{result.rows_quarantined} + deduplicated {result.rows_deduplicated}",
            pipeline=spec.name,
            table=batch.table,
            run_id=batch.run_id,
        )
    if result.rows_valid != result.rows_in:
        staged = _row(batch.target, build_count(batch.staging))[0]
        if staged != result.rows_valid:
            raise LoadError(
                f"staging holds {staged} rows after validation, expected {result.rows_valid}",
                pipeline=spec.name,
                table=batch.table,
                run_id=batch.run_id,
            )


def _row(target: Connector, query: exp.Select) -> tuple[int, ...]:
    return tuple(int(v or 0) for v in target.fetch(query)[0])
