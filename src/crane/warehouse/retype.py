"""Which column type changes keep every stored value: widening, not retyping.

`crane model plan` used to call every type change destructive, so a VARCHAR(20) made
VARCHAR(50) needed ``--allow-destructive`` although no value can be lost by it. A
*widening* holds every value of the old type unchanged; engines alter such a column in
place (PostgreSQL ``ALTER COLUMN … TYPE``, DuckDB ``SET DATA TYPE``), keeping every
version of a Type 2 dimension. Which widenings an engine can do in place is data in
``WarehouseDialect.widen_in_place``; any other type change (narrowing, another family)
stays destructive.

>>> widening("VARCHAR(20)", "VARCHAR(50)"), widening("INTEGER", "BIGINT")
('text', 'integer')
>>> widening("DECIMAL(10,2)", "NUMERIC(12, 2)"), widening("DECIMAL(10,2)", "DECIMAL(12,4)")
('precision', 'scale')
>>> widening("VARCHAR(50)", "VARCHAR(20)"), widening("DECIMAL(10,2)", "DECIMAL(10,4)")
(None, None)
"""

from __future__ import annotations

from typing import Literal

# kinds of widening; an engine declares the kinds it can alter in place
Widening = Literal["text", "integer", "precision", "scale"]

_INTEGER_BYTES = {
    "TINYINT": 1,
    "INT1": 1,
    "SMALLINT": 2,
    "INT2": 2,
    "INT": 4,
    "INTEGER": 4,
    "INT4": 4,
    "BIGINT": 8,
    "INT8": 8,
    "INT64": 8,
    "HUGEINT": 16,
    "INT128": 16,
}
# variable-length text only: CHAR(n) pads, and PostgreSQL strips that padding when
# casting it to VARCHAR, so a CHAR change may alter values
_VARYING_TEXT = {"VARCHAR", "CHARACTER VARYING", "NVARCHAR", "STRING", "TEXT"}
_DECIMAL = {"DECIMAL", "NUMERIC", "NUMBER"}


def widening(live: str, declared: str) -> Widening | None:
    """The kind of widening from the ``live`` type to the ``declared`` one, or None when
    some value of ``live`` may not survive the change unchanged."""
    (old, old_params), (new, new_params) = _split(live), _split(declared)
    if old in _VARYING_TEXT and new in _VARYING_TEXT:
        if not _is_length(old_params) or not _is_length(new_params):
            return None  # VARCHAR(20 CHAR) and the like: not a change crane can judge
        old_length, new_length = _length(old_params), _length(new_params)
        if new_length is None:  # unbounded text holds any string
            return "text"
        if old_length is not None and new_length >= old_length:
            return "text"
        return None
    if old in _INTEGER_BYTES and new in _INTEGER_BYTES:
        return "integer" if _INTEGER_BYTES[new] >= _INTEGER_BYTES[old] else None
    if old in _DECIMAL and new in _DECIMAL and old_params and new_params:
        if not _is_numbers(old_params) or not _is_numbers(new_params):
            return None  # NUMBER(*, 2) and the like: not a change crane can judge
        precision, scale = _numbers(old_params)
        new_precision, new_scale = _numbers(new_params)
        # as many digits before the point, and as many after it
        if new_scale < scale or new_precision - new_scale < precision - scale:
            return None
        return "precision" if new_scale == scale else "scale"
    return None


def _split(type_text: str) -> tuple[str, str]:
    """``decimal(10, 2)`` → (``DECIMAL``, ``10,2``)."""
    base, _, params = type_text.upper().partition("(")
    return base.strip(), params.replace(" ", "").rstrip(")")


def _length(params: str) -> int | None:
    """A text length; None when unbounded (none given, or Redshift's ``MAX``, which
    failed the plan with a bare ValueError)."""
    return None if params in ("", "MAX") else int(params)


def _is_length(params: str) -> bool:
    return params in ("", "MAX") or params.isdigit()


def _is_numbers(params: str) -> bool:
    return params.count(",") <= 1 and all(part.isdigit() for part in params.split(","))


def _numbers(params: str) -> tuple[int, int]:
    precision, _, scale = params.partition(",")
    return int(precision), int(scale or 0)
