"""Arrow ↔ SQL type mapping for the SQL connectors, declared as data.

Why one module: PostgreSQL, MySQL/MariaDB and SQLite all create target tables
from an Arrow schema and all need the same stream hygiene (decode dictionaries,
bound batch sizes). Keeping the mappings side by side makes the differences
visible and testable in one place.

A field may carry the exact source type in its metadata under ``crane.sql_type``
(with the dialect under ``crane.dialect``); a writer of the same dialect uses it
verbatim so ``varchar(20)``, ``uuid``, ``jsonb`` or ``numeric(12,2)`` survive a
Postgres→Postgres copy unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

SQL_TYPE_KEY = b"crane.sql_type"
DIALECT_KEY = b"crane.dialect"

# Arrow type id (pyarrow.types predicate name) -> SQL type, per dialect. Order matters:
# the first predicate that matches wins. Parametrised types are handled in `_param_type`.
_SIMPLE: dict[str, list[tuple[str, str]]] = {
    "postgres": [
        ("is_boolean", "boolean"),
        ("is_int8", "smallint"),
        ("is_int16", "smallint"),
        ("is_int32", "integer"),
        ("is_int64", "bigint"),
        ("is_uint8", "smallint"),
        ("is_uint16", "integer"),
        ("is_uint32", "bigint"),
        ("is_uint64", "numeric(20)"),
        ("is_float16", "real"),
        ("is_float32", "real"),
        ("is_float64", "double precision"),
        ("is_string", "text"),
        ("is_large_string", "text"),
        ("is_binary", "bytea"),
        ("is_large_binary", "bytea"),
        ("is_fixed_size_binary", "bytea"),
        ("is_date", "date"),
        ("is_time", "time"),
        ("is_interval", "interval"),
        ("is_duration", "interval"),
        ("is_null", "text"),
    ],
    "mysql": [
        ("is_boolean", "boolean"),
        ("is_int8", "tinyint"),
        ("is_int16", "smallint"),
        ("is_int32", "int"),
        ("is_int64", "bigint"),
        ("is_uint8", "tinyint unsigned"),
        ("is_uint16", "smallint unsigned"),
        ("is_uint32", "int unsigned"),
        ("is_uint64", "bigint unsigned"),
        ("is_float16", "float"),
        ("is_float32", "float"),
        ("is_float64", "double"),
        ("is_string", "longtext"),
        ("is_large_string", "longtext"),
        ("is_binary", "longblob"),
        ("is_large_binary", "longblob"),
        ("is_fixed_size_binary", "longblob"),
        ("is_date", "date"),
        ("is_time", "time(6)"),
        ("is_null", "longtext"),
        ("is_list", "json"),
        ("is_struct", "json"),
    ],
    "sqlite": [
        ("is_boolean", "INTEGER"),
        ("is_integer", "INTEGER"),
        ("is_floating", "REAL"),
        ("is_string", "TEXT"),
        ("is_large_string", "TEXT"),
        ("is_binary", "BLOB"),
        ("is_large_binary", "BLOB"),
        ("is_fixed_size_binary", "BLOB"),
        ("is_decimal", "TEXT"),  # SQLite has no exact decimal; text keeps every digit
        ("is_date", "DATE"),
        ("is_time", "TIME"),
        ("is_timestamp", "TIMESTAMP"),
        ("is_null", "TEXT"),
    ],
}


def _param_type(t: pa.DataType, dialect: str) -> str | None:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return sql_type(t.value_type, dialect)
    if dialect == "sqlite":  # declared types are free text; these keep exact read-back
        if pa.types.is_decimal(t):  # TEXT affinity: NUMERIC would round to a double
            return f"DECIMAL_TEXT({t.precision},{t.scale})"
        if pa.types.is_boolean(t):
            return "BOOLEAN"
        if pa.types.is_timestamp(t):
            return "TIMESTAMP"
    if pa.types.is_decimal(t):
        return (
            f"numeric({t.precision},{t.scale})"
            if dialect == "postgres"
            else (f"decimal({min(t.precision, 65)},{min(t.scale, 30)})")
        )
    if pa.types.is_timestamp(t):
        if dialect == "postgres":
            return "timestamptz" if t.tz else "timestamp"
        return "datetime(6)"  # mysql: aware values are written as UTC
    if dialect == "postgres" and (pa.types.is_list(t) or pa.types.is_large_list(t)):
        return f"{sql_type(t.value_type, dialect)}[]"
    if isinstance(t, pa.ExtensionType):
        return (
            sql_type(t.storage_type, dialect)
            if t.extension_name != "arrow.uuid"
            else ("uuid" if dialect == "postgres" else "char(36)")
        )
    return None


def sql_type(t: pa.DataType, dialect: str) -> str:
    """The column type a ``dialect`` table gets for Arrow type ``t``.

    >>> import pyarrow as pa
    >>> sql_type(pa.decimal128(12, 2), "postgres"), sql_type(pa.list_(pa.int32()), "postgres")
    ('numeric(12,2)', 'integer[]')
    >>> sql_type(pa.timestamp("us", tz="UTC"), "mysql")
    'datetime(6)'
    """
    import pyarrow as pa

    found = _param_type(t, dialect)
    if found:
        return found
    for predicate, name in _SIMPLE[dialect]:
        if getattr(pa.types, predicate)(t):
            return name
    raise TypeError(f"no {dialect} column type for Arrow type {t}")


# Source types that cross Arrow as their text, because no Arrow type holds them (a
# TIMETZ's offset): the type each dialect's target column takes them back as
CARRIED_AS_TEXT: dict[str, dict[str, str]] = {
    "time with time zone": {"postgres": "time with time zone", "duckdb": "TIME WITH TIME ZONE"},
}


def field_sql_type(field: pa.Field, dialect: str) -> str:
    """The field's source type if it came from the same dialect (or is one that crosses
    Arrow as text, ``CARRIED_AS_TEXT``), else the mapped type."""
    meta = field.metadata or {}
    if meta.get(DIALECT_KEY, b"").decode() == dialect and SQL_TYPE_KEY in meta:
        return meta[SQL_TYPE_KEY].decode()
    carried = CARRIED_AS_TEXT.get(meta.get(SQL_TYPE_KEY, b"").decode().lower(), {})
    return carried.get(dialect) or sql_type(field.type, dialect)


def with_sql_types(schema: pa.Schema, types: dict[str, str], dialect: str) -> pa.Schema:
    """Attach source column types as field metadata (see module docstring)."""
    fields = []
    for field in schema:
        if field.name in types:
            meta = dict(field.metadata or {})
            meta[SQL_TYPE_KEY] = types[field.name].encode()
            meta[DIALECT_KEY] = dialect.encode()
            field = field.with_metadata(meta)
        fields.append(field)
    import pyarrow as pa

    return pa.schema(fields, metadata=schema.metadata)


def plain_type(t: pa.DataType) -> pa.DataType:
    """A type every Arrow consumer ingests: dictionaries decoded, extensions unwrapped."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return plain_type(t.value_type)
    if isinstance(t, pa.ExtensionType):
        return pa.string() if t.extension_name == "arrow.uuid" else plain_type(t.storage_type)
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(plain_type(t.value_type))
    return t


def _uuid_strings(column: pa.Array) -> pa.Array:
    import uuid

    import pyarrow as pa

    # rare path (only for arrow.uuid extension input); 16-byte values -> canonical text
    storage = column.storage if hasattr(column, "storage") else column
    return pa.array(
        [None if v is None else str(uuid.UUID(bytes=v)) for v in storage.to_pylist()],
        pa.string(),
    )


def plain_schema(schema: pa.Schema) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([f.with_type(plain_type(f.type)) for f in schema], metadata=schema.metadata)


def map_batches(
    reader: pa.RecordBatchReader,
    schema: pa.Schema,
    convert: Callable[[pa.RecordBatch], pa.RecordBatch],
) -> pa.RecordBatchReader:
    """A lazy reader applying ``convert`` batch by batch (memory stays one batch)."""
    import pyarrow as pa

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            yield convert(batch)

    return pa.RecordBatchReader.from_batches(schema, batches())


def to_plain(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """Decode dictionaries / unwrap extensions so drivers without them can ingest."""
    import pyarrow as pa

    target = plain_schema(reader.schema)
    if target.equals(reader.schema):
        return reader

    def convert(batch: pa.RecordBatch) -> pa.RecordBatch:
        columns = []
        for column, field in zip(batch.columns, target, strict=True):
            if isinstance(column.type, pa.ExtensionType) and (
                column.type.extension_name == "arrow.uuid"
            ):
                columns.append(_uuid_strings(column))
            elif column.type != field.type:
                if pa.types.is_dictionary(column.type):
                    column = column.dictionary_decode()
                columns.append(column.cast(field.type))
            else:
                columns.append(column)
        return pa.RecordBatch.from_arrays(columns, schema=target)

    return map_batches(reader, target, convert)


def rebatch(reader: pa.RecordBatchReader, batch_rows: int) -> pa.RecordBatchReader:
    """Split batches so none has more than ``batch_rows`` rows (zero-copy slices)."""
    import pyarrow as pa

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            for start in range(0, batch.num_rows, batch_rows):
                yield batch.slice(start, batch_rows)

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def with_schema(reader: pa.RecordBatchReader, schema: pa.Schema) -> pa.RecordBatchReader:
    """Same data, schema replaced (e.g. to add field metadata); types must match."""
    import pyarrow as pa

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def duckdb_arrow_exact(con: Any, sql: str) -> str:
    """``sql`` (a DuckDB query) with its TIME WITH TIME ZONE columns as text: DuckDB's
    Arrow export keeps a TIMETZ's clock time and drops its offset (23:59:59+05:30 came
    out as 23:59:59), and Arrow has no type that holds one. Binding runs no query."""
    relation = con.sql(sql)
    kinds = zip(relation.columns, relation.types, strict=True)
    return duckdb_zoned_as_text(sql, [name for name, kind in kinds if is_timetz(kind)])


def is_timetz(duckdb_type: object) -> bool:
    return str(duckdb_type) == "TIME WITH TIME ZONE"


def duckdb_zoned_as_text(sql: str, zoned: list[str]) -> str:
    """``sql`` (a DuckDB query) with the ``zoned`` columns cast to their text."""
    from sqlglot import exp

    if not zoned:
        return sql
    as_text = ", ".join(
        exp.cast(exp.column(n, quoted=True), "VARCHAR").as_(n, quoted=True).sql("duckdb")
        for n in zoned
    )
    # the query is DuckDB text already: wrapped as text, not re-parsed
    return f"SELECT * REPLACE ({as_text}) FROM ({sql}) AS _crane_q"
