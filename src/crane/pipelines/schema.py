"""Schema changes between a source batch and its target table, and the policy for them.

``diff_schema`` compares two Arrow schemas and sorts every difference into one
of four kinds: a column the source added, a column it removed, a type the target
must widen to hold the new values, or an incompatible change. A change is
*widening* when the target's new type holds every value of both the old and the
new type (int32→int64, decimal(10,2)→decimal(12,2), float32→float64,
varchar(n)→text, an integer into a decimal with enough digits, date→timestamp);
anything else that would need a cast that can fail or lose meaning (text→integer,
timestamptz↔timestamp, narrowing) is incompatible and fails the run before any
row loads — naming the pipeline, table, column and both types.

``apply_schema_change`` carries out a diff under a pipeline's policy:
``evolve`` adds and widens target columns, ``freeze`` refuses any change,
``discard`` leaves new columns out of the load. A column the source no longer
has stays in the target and receives NULLs for new rows.

>>> import pyarrow as pa
>>> diff = diff_schema(pa.schema([("id", pa.int64()), ("v", pa.string())]),
...                    pa.schema([("id", pa.int32())]))
>>> diff.to_dict()["added"], diff.to_dict()["widened"]
([{'column': 'v', 'type': 'string'}], [{'column': 'id', 'from': 'int32', 'to': 'int64'}])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from crane.errors import SchemaChangeError
from crane.sql import build as b

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from crane.connectors.base import Connector, TableRef

Policy = Literal["evolve", "freeze", "discard"]
# Staging's row ordinal is crane's own; target columns named _crane_* are crane's too
# (e.g. the soft-delete timestamp) and never count as "removed from the source".
INTERNAL_SOURCE_COLUMNS = frozenset({"_crane_row"})
INTERNAL_PREFIX = "_crane_"
SQL_TYPE_KEY = b"crane.sql_type"
DIALECT_KEY = b"crane.dialect"
_INT_DIGITS = {8: 3, 16: 5, 32: 10, 64: 19}


@dataclass(frozen=True)
class TypeChange:
    """One column whose type differs: the target's type, the source's, and the fix."""

    column: str
    source: pa.DataType
    target: pa.DataType
    widened: pa.DataType | None = None  # None: incompatible
    sql_type: str | None = None  # set when the new type is only known in SQL (varchar→text)

    def new_sql_type(self) -> exp.DataType:
        if self.sql_type:
            return b.sql_type(self.sql_type)
        assert self.widened is not None
        return b.arrow_to_sql(self.widened)


@dataclass
class SchemaDiff:
    """What changed between a source batch and its target table."""

    source_columns: list[str]
    new_table: bool = False
    added: list[pa.Field] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    widened: list[TypeChange] = field(default_factory=list)
    incompatible: list[TypeChange] = field(default_factory=list)
    # the statements apply_schema_change ran, rendered for the target (for the run record)
    applied: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.widened or self.incompatible)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for the run record."""
        return {
            "new_table": self.new_table,
            "added": [{"column": f.name, "type": str(f.type)} for f in self.added],
            "removed": list(self.removed),
            "widened": [_change(c, str(c.widened or c.sql_type)) for c in self.widened],
            "incompatible": [_change(c, str(c.source)) for c in self.incompatible],
            "applied": list(self.applied),
        }


def _change(change: TypeChange, to: str) -> dict[str, str]:
    return {"column": change.column, "from": _shown(change.target), "to": to}


def _shown(arrow_type: pa.DataType) -> str:
    return str(arrow_type)


def diff_schema(source: pa.Schema, target: pa.Schema | None) -> SchemaDiff:
    """Compare a source batch's schema with the target table's (None: no table yet)."""
    fields = [f for f in source if f.name not in INTERNAL_SOURCE_COLUMNS]
    diff = SchemaDiff(source_columns=[f.name for f in fields])
    if target is None:
        diff.new_table = True
        return diff
    existing = {f.name: f for f in target}
    for f in fields:
        old = existing.get(f.name)
        if old is None:
            diff.added.append(f)
            continue
        change = compare_field(f, old)
        if change is None:
            continue
        (diff.widened if change.widened or change.sql_type else diff.incompatible).append(change)
    names = set(diff.source_columns)
    diff.removed = [
        f.name for f in target if f.name not in names and not f.name.startswith(INTERNAL_PREFIX)
    ]
    return diff


def compare_field(source: pa.Field, target: pa.Field) -> TypeChange | None:
    """None when the target column already holds the source's values."""
    text = _text_widening(source, target)
    if text is not None:
        return text
    verdict, wider = supertype(source.type, target.type)
    if verdict == "fits" or _unconstrained_numeric(target, source.type):
        return None
    return TypeChange(source.name, source.type, target.type, widened=wider)


def _sql_type(f: pa.Field) -> str | None:
    meta = f.metadata or {}
    raw = meta.get(SQL_TYPE_KEY)
    return raw.decode().lower() if raw else None


def _text_widening(source: pa.Field, target: pa.Field) -> TypeChange | None:
    """varchar(n)/char(n) → text when the source declares longer (or unbounded) text."""
    import pyarrow as pa

    if not (pa.types.is_string(source.type) or pa.types.is_large_string(source.type)):
        return None
    if not (pa.types.is_string(target.type) or pa.types.is_large_string(target.type)):
        return None
    old, new = _length(_sql_type(target)), _length(_sql_type(source))
    if old is None or (new is not None and new <= old):
        return None
    return TypeChange(source.name, source.type, target.type, sql_type="TEXT")


def _length(sql_type: str | None) -> int | None:
    """The declared length of a varchar/char type; None for text or unknown."""
    if not sql_type or "(" not in sql_type or "char" not in sql_type:
        return None
    digits = sql_type.split("(", 1)[1].split(")", 1)[0]
    return int(digits) if digits.isdigit() else None


def _unconstrained_numeric(target: pa.Field, source: pa.DataType) -> bool:
    import pyarrow as pa

    numeric = pa.types.is_integer(source) or pa.types.is_decimal(source)
    return numeric and _sql_type(target) in ("numeric", "decimal")


def supertype(
    source: pa.DataType, target: pa.DataType
) -> tuple[Literal["fits", "widen", "incompatible"], pa.DataType | None]:
    """Whether ``source`` values fit ``target``, else the narrowest type holding both."""
    s, t = _normal(source), _normal(target)
    if s == t or _is_null(s) or _holds(t, s):
        return "fits", None
    if _holds(s, t):
        return "widen", source
    both = _common(s, t)
    return ("widen", both) if both is not None else ("incompatible", None)


def _normal(t: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return _normal(t.value_type)
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_timestamp(t):  # engines store microseconds; the zone name is not a type
        return pa.timestamp("us", tz="UTC" if t.tz else None)
    if pa.types.is_large_list(t):
        return pa.list_(_normal(t.value_type))
    if pa.types.is_list(t):
        return pa.list_(_normal(t.value_type))
    return t


def _is_null(t: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_null(t))


def _holds(wide: pa.DataType, narrow: pa.DataType) -> bool:
    """Every value of ``narrow`` is exactly a value of ``wide``."""
    import pyarrow as pa

    if wide == narrow:
        return True
    if pa.types.is_integer(wide) and pa.types.is_integer(narrow):
        (low, high), (lo, hi) = _int_range(wide), _int_range(narrow)
        return low <= lo and hi <= high
    if pa.types.is_floating(wide):
        return _float_holds(wide, narrow)
    if pa.types.is_decimal(wide):
        digits = _decimal_digits(narrow)
        if digits is None:
            return False
        return digits[0] <= wide.precision - wide.scale and digits[1] <= wide.scale
    if pa.types.is_timestamp(wide) and wide.tz is None:
        return bool(pa.types.is_date(narrow))
    if pa.types.is_list(wide) and pa.types.is_list(narrow):
        return _holds(wide.value_type, narrow.value_type)
    return False


def _int_range(t: pa.DataType) -> tuple[int, int]:
    import pyarrow as pa

    bits = t.bit_width
    if pa.types.is_unsigned_integer(t):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _float_holds(wide: pa.DataType, narrow: pa.DataType) -> bool:
    import pyarrow as pa

    mantissa = {16: 11, 32: 24, 64: 53}[wide.bit_width]
    if pa.types.is_floating(narrow):
        return bool(narrow.bit_width <= wide.bit_width)
    if pa.types.is_integer(narrow):
        return bool(narrow.bit_width < mantissa)
    return False


def _decimal_digits(t: pa.DataType) -> tuple[int, int] | None:
    """(integer digits, fraction digits) a type needs to be held exactly by a decimal."""
    import pyarrow as pa

    if pa.types.is_decimal(t):
        return t.precision - t.scale, t.scale
    if pa.types.is_integer(t):
        return _INT_DIGITS[t.bit_width], 0
    return None


def _common(s: pa.DataType, t: pa.DataType) -> pa.DataType | None:
    """The narrowest type holding both, when neither holds the other (decimals only)."""
    import pyarrow as pa

    a, c = _decimal_digits(s), _decimal_digits(t)
    if a is None or c is None or not (pa.types.is_decimal(s) or pa.types.is_decimal(t)):
        return None
    whole, scale = max(a[0], c[0]), max(a[1], c[1])
    return pa.decimal128(whole + scale, scale) if whole + scale <= 38 else None


def apply_schema_change(
    target: Connector, table: TableRef, diff: SchemaDiff, policy: Policy, pipeline: str
) -> list[str]:
    """Carry out ``diff`` under ``policy``; returns the source columns to load.

    The statements it ran are kept in ``diff.applied`` for the run record.

    Raises before touching the target if any change is refused, so a failed
    check never leaves a half-changed table behind.
    """
    if diff.incompatible:
        first = diff.incompatible[0]
        raise _error(
            f"type changed from {_shown(first.target)} to {_shown(first.source)}, which the "
            "target cannot hold without losing values",
            pipeline,
            table,
            first.column,
            hint="change the target column by hand, or cast the column in the transform",
        )
    if diff.new_table:
        return list(diff.source_columns)
    refused = [f.name for f in diff.added] + [c.column for c in diff.widened]
    if policy == "freeze" and refused:
        raise _error(
            f"schema is frozen but the source changed column(s) {', '.join(refused)}",
            pipeline,
            table,
            refused[0],
            hint="set load.on_schema_change to evolve or discard",
        )
    if policy == "discard" and diff.widened:
        first = diff.widened[0]
        raise _error(
            f"type widened from {_shown(first.target)} to {_shown(first.source)}; "
            "discard drops new columns only",
            pipeline,
            table,
            first.column,
            hint="set load.on_schema_change to evolve",
        )
    if policy == "discard":
        dropped = {f.name for f in diff.added}
        return [c for c in diff.source_columns if c not in dropped]
    statements = [b.add_column(table, f.name, b.arrow_to_sql(f.type)) for f in diff.added]
    statements += [b.alter_column_type(table, c.column, c.new_sql_type()) for c in diff.widened]
    for statement in statements:
        target.execute(statement)
        diff.applied.append(target.render(statement))
    return list(diff.source_columns)


def _error(
    message: str, pipeline: str, table: TableRef, column: str, *, hint: str
) -> SchemaChangeError:
    return SchemaChangeError(message, pipeline=pipeline, table=str(table), column=column, hint=hint)
