"""Rows holding an infinite timestamp or date, set aside from a stream as their text.

PostgreSQL's ``timestamp``, ``timestamptz`` and ``date`` hold 'infinity' and '-infinity'.
DuckDB reads them, and exports them to Arrow, as the largest and smallest value of the
column's integer (microseconds since 1970, or days): no finite PostgreSQL value is there,
since 294276 AD is PostgreSQL's own last timestamp. ADBC's binary COPY shifts every value
to PostgreSQL's epoch, overflows on those two, and failed the whole load with a bare
"Error occurred writing COPY data".

So a PostgreSQL writer takes its stream through `split`: batches without such a value
(the normal case: two vectorised comparisons a column) pass unchanged; the rows that hold
one are taken out and kept, with every timestamp and date column as the text PostgreSQL
reads back ('infinity', '-infinity', or the ISO value), for the writer to insert with casts
in the same transaction. Only those rows are held in memory.

Only microsecond timestamps (what DuckDB exports) and dates are read this way: in a
nanosecond column the integer's ends are real instants (2262-04-11) and stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


def _ends(t: pa.DataType) -> tuple[pa.DataType, int] | None:
    """The integer type under ``t`` and its largest value, for a type that marks infinity
    with its integer's ends; else None."""
    import pyarrow as pa

    if pa.types.is_timestamp(t) and t.unit == "us":
        return pa.int64(), INT64_MAX
    if pa.types.is_date32(t):
        return pa.int32(), INT32_MAX
    return None


def temporal_columns(schema: pa.Schema) -> list[int]:
    return [i for i, field in enumerate(schema) if _ends(field.type) is not None]


def text_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with its timestamp and date columns as text (metadata kept)."""
    import pyarrow as pa

    marked = set(temporal_columns(schema))
    fields = [f.with_type(pa.string()) if i in marked else f for i, f in enumerate(schema)]
    return pa.schema(fields, metadata=schema.metadata)


def _infinite_mask(batch: pa.RecordBatch, columns: list[int]) -> pa.Array | None:
    """Which rows hold ±infinity in any of ``columns``; None when no row does."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = None
    for i in columns:
        found = _ends(batch.schema.field(i).type)
        assert found is not None
        integer, top = found
        values = batch.column(i).cast(integer)
        bounds = pc.min_max(values)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low is None or (low > -top and high < top):
            continue
        hit = pc.or_kleene(pc.greater_equal(values, top), pc.less_equal(values, -top))
        mask = hit if mask is None else pc.or_kleene(mask, hit)
    if mask is None:
        return None
    return pc.fill_null(mask, False).cast(pa.bool_())


def _as_text(array: pa.Array) -> pa.Array:
    """A timestamp or date column as PostgreSQL's input text, ends as ±infinity."""
    import pyarrow as pa
    import pyarrow.compute as pc

    found = _ends(array.type)
    assert found is not None
    integer, top = found
    values = array.cast(integer)
    high, low = pc.greater_equal(values, top), pc.less_equal(values, -top)
    ends = pc.fill_null(pc.or_kleene(high, low), False)
    finite = pc.if_else(ends, pa.nulls(len(array), array.type), array).cast(pa.string())
    return pc.if_else(high, "infinity", pc.if_else(low, "-infinity", finite))


def split(reader: pa.RecordBatchReader) -> tuple[pa.RecordBatchReader, list[pa.RecordBatch]]:
    """The stream without its rows holding an infinite timestamp or date, and a list that
    the stream fills, as it is read, with those rows (schema: `text_schema`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = temporal_columns(reader.schema)
    aside: list[pa.RecordBatch] = []
    if not columns:
        return reader, aside
    text = text_schema(reader.schema)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            mask = _infinite_mask(batch, columns)
            if mask is None:
                yield batch
                continue
            held = batch.filter(mask)
            arrays = [_as_text(col) if i in columns else col for i, col in enumerate(held.columns)]
            aside.append(pa.RecordBatch.from_arrays(arrays, schema=text))
            yield batch.filter(pc.invert(mask))

    return pa.RecordBatchReader.from_batches(reader.schema, batches()), aside
