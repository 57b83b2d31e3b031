"""The warehouse model spec: dimensions, facts and bridges, declared once for every engine.

YAML files under ``models/`` and Python code build the same pydantic objects.
A `Model` is the whole warehouse design; the table specs here say what each
table is and which columns it has. Their column-level parts live in
`crane.warehouse.columns`; reading ``models/`` (and remembering file and line
for `validate`) lives in `crane.warehouse.model_files`.

>>> dim = DimensionSpec(name="store", business_key="store_id",
...                     attributes=[{"name": "store_id", "type": "INT"},
...                                 {"name": "city", "type": "TEXT", "scd": 2}])
>>> dim.table, dim.key_column, dim.scd_columns().type2
('dim_store', 'store_key', ('city',))
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from crane.config.spec import Spec
from crane.connectors.base import TableRef
from crane.warehouse.columns import (
    DEFAULT_KEY_TYPE,
    Attribute,
    Column,
    Degenerate,
    Measure,
    Scd2Columns,
    ScdColumns,
    ScdType,
    SurrogateKey,
)


def _as_list(value: Any) -> Any:
    """``business_key: id`` and ``business_key: [id]`` mean the same."""
    return [value] if isinstance(value, str) else value


# holiday_name's length in the date dimension (crane.warehouse.datedim, which imports it)
HOLIDAY_NAME_LENGTH = 100


class Holiday(Spec):
    """A named day of a date dimension (``{date: 2024-12-25, name: Christmas}``)."""

    day: date = Field(alias="date")
    # the date dimension stores it as VARCHAR(HOLIDAY_NAME_LENGTH): checked here, where the
    # error can name file, line and field, not at load time
    name: str = Field(min_length=1, max_length=HOLIDAY_NAME_LENGTH)


class Calendar(Spec):
    """A date dimension's conventions (see crane.warehouse.datedim): the fiscal year's
    first month, holidays, and which ISO days (Monday = 1) are the weekend."""

    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    holidays: list[Holiday] = Field(default_factory=list)
    weekend_days: list[int] = Field(default_factory=lambda: [6, 7])

    @field_validator("weekend_days")
    @classmethod
    def _iso_days(cls, value: list[int]) -> list[int]:
        if any(not 1 <= d <= 7 for d in value):
            raise ValueError("weekend days are ISO day numbers, Monday = 1 … Sunday = 7")
        return value

    def holiday_names(self) -> dict[date, str]:
        """Day → name; a day listed twice keeps its first name."""
        return {h.day: h.name for h in reversed(self.holidays)}


class DimensionRef(Spec):
    """A foreign key to a dimension; ``role`` makes it role-playing (order_date → date)."""

    dimension: str
    role: str | None = None
    column: str | None = None
    nullable: bool = False
    comment: str | None = None
    # a fact row whose member is missing: the unknown member, or an inferred member
    # (needs an `is_inferred` BOOLEAN attribute on the dimension; see crane.warehouse.load)
    on_missing: Literal["unknown", "infer"] = "unknown"

    @property
    def label(self) -> str:
        """The name this reference goes by in a grain, a period or a milestone."""
        return self.role or self.dimension

    @property
    def key_column(self) -> str:
        return self.column or f"{self.label}_key"


def _refs(value: Any) -> Any:
    """``dimensions: [customer, {dimension: date, role: order_date}]``."""
    if isinstance(value, list):
        return [{"dimension": v} if isinstance(v, str) else v for v in value]
    return value


class TableSpec(Spec):
    """What every table-like object shares: names, schema, comment, physical options."""

    name: str
    table_: str | None = Field(default=None, alias="table")
    schema_: str | None = Field(default=None, alias="schema")
    comment: str | None = None
    # engine → option → value; validated against crane.warehouse.dialects, never dropped
    physical: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # where rows come from: a SELECT over warehouse tables (`crane model load`, see
    # crane.warehouse.load); a date dimension's SELECT returns one row (start, end)
    source: str | None = None

    _prefix = ""

    @property
    def table(self) -> str:
        return self.table_ or f"{self._prefix}{self.name}"

    def ref(self, default_schema: str | None = None) -> TableRef:
        return TableRef(self.table, self.schema_ or default_schema)

    def columns(self, model: Model | None = None) -> list[Column]:
        return []


class DimensionSpec(TableSpec):
    """A dimension: business key, typed attributes, SCD type per dimension and per attribute."""

    kind: Literal["regular", "junk", "date", "time"] = "regular"
    business_key: list[str] = Field(default_factory=list)
    attributes: list[Attribute] = Field(default_factory=list)
    scd: ScdType = 1
    surrogate_key: SurrogateKey = Field(default_factory=SurrogateKey)
    scd2_columns: Scd2Columns = Field(default_factory=Scd2Columns)
    history_table: str | None = None
    outriggers: list[DimensionRef] = Field(default_factory=list)
    # loader policies, shared with crane.warehouse.scd (ScdTable)
    change_ts: str = "updated_at"  # batch column ordering changes; kept on non-history tables
    tie_break: str | None = None  # an attribute ordering two changes with one timestamp
    hard_delete: Literal["ignore", "close", "close_and_flag"] = "ignore"
    deleted_column: str | None = None
    calendar: Calendar | None = None  # kind date: fiscal year, holidays, weekend

    _prefix = "dim_"

    _bk = field_validator("business_key", mode="before")(_as_list)
    _out = field_validator("outriggers", mode="before")(_refs)

    @model_validator(mode="after")
    def _defaults_by_kind(self) -> DimensionSpec:
        if self.kind == "junk" and not self.business_key:
            # a junk row is identified by its combination of flags
            self.business_key = [a.name for a in self.attributes]
        if self.kind in ("date", "time") and not self.attributes:
            key, self.attributes, self.business_key = _calendar(self.kind, self.business_key)
            given = self.surrogate_key
            self.surrogate_key = given.model_copy(
                update={"name": given.name or key.name, "type": given.type or key.type}
            )
        if self.kind in ("date", "time") and "strategy" not in self.surrogate_key.model_fields_set:
            self.surrogate_key = SurrogateKey(
                name=self.surrogate_key.name, strategy="natural", type=self.surrogate_key.type
            )
        return self

    @property
    def key_column(self) -> str:
        return self.surrogate_key.name or f"{self.name}_key"

    @property
    def history(self) -> str:
        return self.history_table or f"{self.table}_history"

    def role_view(self, role: str, default_schema: str | None = None) -> TableRef:
        """The view that plays this dimension in ``role`` (dim_date → dim_order_date).

        Built from the name's ``_``-separated parts, never by text replacement: a dimension
        named ``d`` in ``dim_d`` must give ``dim_order_date``, not ``order_dateim_order_date``.
        A table that does not contain the dimension's name as whole parts gets the role as
        a prefix (``calendar`` → ``order_date_calendar``).

        >>> DimensionSpec(name="d").role_view("order_date").name
        'dim_order_date'
        >>> DimensionSpec(name="date", table="w_date_d").role_view("ship_date").name
        'w_ship_date_d'
        """
        parts, own = self.table.split("_"), self.name.split("_")
        for i in range(len(parts) - len(own) + 1):
            if parts[i : i + len(own)] == own:
                name = "_".join([*parts[:i], role, *parts[i + len(own) :]])
                return TableRef(name, self.schema_ or default_schema)
        return TableRef(f"{role}_{self.table}", self.schema_ or default_schema)

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)

    def scd_of(self, attribute: Attribute) -> int:
        """The effective SCD type of a non-key attribute."""
        if attribute.scd is not None:
            return attribute.scd
        return 0 if self.kind in ("junk", "date", "time") else self.scd

    def effective_deleted_column(self) -> str | None:
        if self.deleted_column:
            return self.deleted_column
        return "is_deleted" if self.hard_delete == "close_and_flag" else None

    def columns(self, model: Model | None = None) -> list[Column]:
        """The dimension table's columns, in DDL order."""
        groups = self.scd_columns()
        key = self.surrogate_key
        cols = [Column(self.key_column, key.sql_type(), False, "surrogate key", "surrogate_key")]
        for name in self.business_key:
            attr = self.attribute(name)
            cols.append(_column(attr, name, False, "business_key"))
        for attr in self.attributes:
            if attr.name not in self.business_key:
                cols.append(_column(attr, attr.name, attr.nullable, "attribute"))
        for name, previous in groups.type3:
            cols.append(Column(previous, _type(self.attribute(name)), True, None, "previous"))
        for name, current in groups.type6:
            cols.append(Column(current, _type(self.attribute(name)), True, None, "current"))
        cols += [_fk(ref, model) for ref in self.outriggers]
        cols += self._housekeeping(groups.has_history)
        return cols

    def _housekeeping(self, history: bool) -> list[Column]:
        names = self.scd2_columns
        cols = []
        if history:
            cols += [
                Column(names.effective_from, "TIMESTAMP", False, "version valid from", "scd2"),
                Column(names.effective_to, "TIMESTAMP", True, "version valid until", "scd2"),
                Column(names.is_current, "BOOLEAN", False, "current version", "scd2"),
            ]
            if names.row_hash:
                cols.append(Column(names.row_hash, "BIGINT", True, "hash of tracked", "scd2"))
            if names.last_change:
                cols.append(Column(names.last_change, "TIMESTAMP", True, "change seen", "scd2"))
        elif self.kind not in ("date", "time"):
            cols.append(Column(self.change_ts, "TIMESTAMP", True, "last change", "audit"))
        deleted = self.effective_deleted_column()
        if deleted:
            cols.append(Column(deleted, "BOOLEAN", True, "deleted in the source", "audit"))
        return cols

    def history_columns(self) -> list[Column]:
        """Type 4: the history table holds every version of every attribute."""
        versioned = self.model_copy(
            update={
                "scd": 2,
                "attributes": [a.model_copy(update={"scd": None}) for a in self.attributes],
                "scd2_columns": self.scd2_columns.model_copy(
                    update={"row_hash": None, "last_change": None}
                ),
            }
        )
        return versioned.columns()

    def scd_table(self, schema: str | None = None, **policies: Any) -> Any:
        """This dimension as the SCD loaders' `crane.warehouse.scd.base.ScdTable`.

        ``policies`` set what the model does not say (``delete_marker``,
        ``late_arrival``, ``quarantine_table``…) or override it.
        """
        from crane.config.loader import SpecError
        from crane.warehouse.scd.base import ScdTable

        groups = self.scd_columns()
        kind = _loader_kind(groups, self.scd)
        if groups.type0 and kind != "0":
            reason = (
                f"type 0 attributes {list(groups.type0)} inside an SCD type {kind} dimension "
                "are not loadable yet: declare them type 1 or move them to their own dimension"
            )
            raise SpecError([("<model>", None, f"dimensions.{self.name}.attributes", reason)])
        ref = self.ref(schema)
        strategy = self.surrogate_key.strategy
        # Type 4 attributes are versioned in the history table (the loader keeps the
        # current table as Type 1 over all of them); as Type 1 here they were overwritten
        # in the history too, which then held one row per key
        versioned = [a.name for a in self.attributes if a.scd in (None, 4)]
        type4 = tuple(c for c in groups.type1 if c in versioned) if kind == "4" else ()
        overwritten = tuple(c for c in groups.type0 + groups.type1 if c not in type4)
        fields: dict[str, Any] = {
            "table": ref,
            "business_key": groups.business_key,
            # outrigger keys (looked up by crane.warehouse.load) are overwritten in place
            "type1": overwritten + tuple(r.key_column for r in self.outriggers),
            "type2": groups.type2 + tuple(a for a, _ in groups.type6) + type4,
            "type3": dict(groups.type3),
            "current_of": {current: attr for attr, current in groups.type6},
            "kind": kind,
            "surrogate_key": None if strategy == "natural" else groups.surrogate_key,
            "surrogate_strategy": "hash" if strategy == "hash" else "sequence",
            "effective_from": groups.effective_from,
            "effective_to": groups.effective_to,
            "is_current": groups.is_current,
            "deleted_column": self.effective_deleted_column(),
            "tie_break": self.tie_break,
            "change_ts": self.change_ts,
            "hard_delete": self.hard_delete,
            "history_table": TableRef(self.history, ref.schema) if self.scd == 4 else None,
            "row_hash": self.scd2_columns.row_hash if kind in ("2", "6") else None,
            "last_change": self.scd2_columns.last_change if kind in ("2", "6") else None,
        }
        return ScdTable(**{**fields, **policies})

    def scd_columns(self) -> ScdColumns:
        groups: dict[int, list[str]] = {0: [], 1: [], 2: [], 3: [], 6: []}
        for attr in self.attributes:
            if attr.name not in self.business_key:
                kind = self.scd_of(attr)
                groups[1 if kind == 4 else kind].append(attr.name)
        cols = self.scd2_columns
        return ScdColumns(
            table=self.table,
            surrogate_key=self.key_column,
            key_strategy=self.surrogate_key.strategy,
            business_key=tuple(self.business_key),
            type0=tuple(groups[0]),
            type1=tuple(groups[1]),
            type2=tuple(groups[2]),
            type3=tuple((n, self.attribute(n).previous_column) for n in groups[3]),  # type: ignore[union-attr]
            type6=tuple((n, self.attribute(n).current_column) for n in groups[6]),  # type: ignore[union-attr]
            effective_from=cols.effective_from,
            effective_to=cols.effective_to,
            is_current=cols.is_current,
            history_table=self.history if self.scd == 4 else None,
            scd_type=self.scd,
        )


class FactSpec(TableSpec):
    """A fact table: declared grain, measures, dimension references, fact type."""

    type: Literal["transaction", "periodic_snapshot", "accumulating_snapshot"] = "transaction"
    grain: list[str] = Field(default_factory=list)
    dimensions: list[DimensionRef] = Field(default_factory=list)
    degenerate: list[Degenerate] = Field(default_factory=list)
    measures: list[Measure] = Field(default_factory=list)
    period: str | None = None  # periodic snapshot: the reference that is the period
    milestones: list[str] = Field(default_factory=list)  # accumulating: nullable date roles
    event_time: str | None = None  # source column: dimension keys are looked up as of it

    _prefix = "fact_"

    _grain = field_validator("grain", mode="before")(_as_list)
    _dims = field_validator("dimensions", mode="before")(_refs)

    def reference(self, label: str) -> DimensionRef | None:
        return next((r for r in self.dimensions if r.label == label), None)

    def columns(self, model: Model | None = None) -> list[Column]:
        """Foreign keys, then degenerate dimensions, then measures."""
        cols = [
            _fk(ref, model, nullable=ref.nullable or ref.label in self.milestones)
            for ref in self.dimensions
        ]
        cols += [
            Column(d.name, d.type, d.nullable, d.comment, "degenerate") for d in self.degenerate
        ]
        cols += [Column(m.name, m.type, m.nullable, m.comment, "measure") for m in self.measures]
        return cols

    def grain_columns(self) -> list[str]:
        """The columns that identify one row: key columns of references, degenerate names."""
        out = []
        for name in self.grain:
            ref = self.reference(name)
            out.append(ref.key_column if ref else name)
        return out


class BridgeSpec(TableSpec):
    """A bridge for many-to-many: rows pair members of two dimensions, with a weight."""

    dimensions: list[DimensionRef] = Field(default_factory=list)
    weight: bool = True
    weight_column: str = "weighting_factor"

    _prefix = "bridge_"
    _dims = field_validator("dimensions", mode="before")(_refs)

    def columns(self, model: Model | None = None) -> list[Column]:
        cols = [_fk(ref, model) for ref in self.dimensions]
        if self.weight:
            cols.append(
                Column(self.weight_column, "DECIMAL(9, 6)", False, "allocation weight", "weight")
            )
        return cols

    def primary_key(self) -> list[str]:
        return [ref.key_column for ref in self.dimensions]


class Model(Spec):
    """A warehouse design: one ``models/*.yml`` file, or all of them merged."""

    schema_: str | None = Field(default=None, alias="schema")
    dimensions: list[DimensionSpec] = Field(default_factory=list)
    facts: list[FactSpec] = Field(default_factory=list)
    bridges: list[BridgeSpec] = Field(default_factory=list)

    def dimension(self, name: str) -> DimensionSpec | None:
        return next((d for d in self.dimensions if d.name == name), None)

    def fact(self, name: str) -> FactSpec | None:
        return next((f for f in self.facts if f.name == name), None)

    def objects(self) -> list[TableSpec]:
        return [*self.dimensions, *self.facts, *self.bridges]


def outriggers_first(dimensions: list[DimensionSpec]) -> list[DimensionSpec]:
    """``dimensions`` in their order, except that an outrigger comes before every dimension
    pointing at it: its table must exist for the foreign key, its rows for the lookup."""
    waiting, done = list(dimensions), list[DimensionSpec]()
    while waiting:
        names = {d.name for d in done}
        ready = [d for d in waiting if all(r.dimension in names for r in d.outriggers)]
        step = (ready or waiting)[0]  # outriggers in a cycle (or unknown): declared order
        done.append(step)
        waiting.remove(step)
    return done


def _loader_kind(groups: ScdColumns, scd: int) -> str:
    """The SCD loader that handles this mix of attribute types."""
    if scd == 4:
        return "4"
    if groups.type6:
        return "6"
    if groups.type2:
        return "2"
    if groups.type3:
        return "3"
    return "0" if groups.type0 and not groups.type1 else "1"


def _calendar(kind: str, key: list[str]) -> tuple[Attribute, list[Attribute], list[str]]:
    """The columns crane.warehouse.datedim generates, for a date/time dimension left bare."""
    from crane.warehouse import datedim

    if kind == "date":
        spec: Any = datedim.DateDimension(start=date(2000, 1, 1), end=date(2000, 1, 1))
        natural = "full_date"
    else:
        spec = datedim.TimeOfDayDimension()
        natural = "minute_of_day"
    attrs = [
        Attribute(name=name, type=dtype.sql(), scd=0, nullable=name == "holiday_name")
        for name, dtype in spec.columns()
    ]
    return attrs[0], attrs[1:], key or [natural]


def _type(attr: Attribute | None) -> str:
    return attr.type if attr is not None else "TEXT"


def _column(attr: Attribute | None, name: str, nullable: bool, role: str) -> Column:
    comment = attr.comment if attr is not None else None
    return Column(name, _type(attr), nullable, comment, role)


def _fk(ref: DimensionRef, model: Model | None, nullable: bool | None = None) -> Column:
    """A foreign key column typed like the referenced dimension's surrogate key."""
    dim = model.dimension(ref.dimension) if model is not None else None
    kind = dim.surrogate_key.sql_type() if dim is not None else DEFAULT_KEY_TYPE
    comment = ref.comment or f"{ref.label} ({ref.dimension})"
    null = ref.nullable if nullable is None else nullable
    return Column(ref.key_column, kind, null, comment, "foreign_key")
