"""Slowly changing dimension loaders: Types 0, 1, 2, 3, 4 and 6, one module each.

Describe a dimension as an :class:`ScdTable`, stage its changes in the same engine,
and call :func:`load_dimension`; Types 5 and 7 are view patterns in
:mod:`crane.warehouse.scd.patterns`.
"""

from crane.warehouse.scd.base import (
    ScdConflictError,
    ScdResult,
    ScdTable,
    load_dimension,
    scd_types,
)

__all__ = ["ScdConflictError", "ScdResult", "ScdTable", "load_dimension", "scd_types"]
