"""Checks a warehouse model as a whole: what pydantic cannot see field by field.

A fact with no grain, a reference to an unknown dimension, a dimension without
a business key, a non-numeric additive measure, a physical option an engine
cannot do: every problem is collected (not just the first) and reported as
``models/sales.yml, line 12, field facts[0].grain: …`` through the loader's
`SpecError`, so YAML and Python models fail the same way.

>>> from crane.warehouse.model_files import from_model
>>> from crane.warehouse.spec import Model, FactSpec
>>> problems(from_model(Model(facts=[FactSpec(name="sales")])))[0][3]
"fact 'sales' declares no grain: list the references and degenerate columns that identify one row"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from crane.config.loader import SpecError
from crane.warehouse import dialects
from crane.warehouse.model_files import LoadedModel
from crane.warehouse.spec import (
    BridgeSpec,
    DimensionRef,
    DimensionSpec,
    FactSpec,
    Model,
    TableSpec,
)

Problem = tuple[str, int | None, str | None, str]
Path = tuple[str | int, ...]
PYTHON = "<python model>"


class _Collector:
    """Turns (object, relative path, reason) into file/line/field problems."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.found: list[Problem] = []

    def add(self, kind: str, index: int, rel: Path, reason: str) -> None:
        origin = self.loaded.origin(kind, index)
        path = origin.path + rel
        doc = origin.document
        if doc is None:
            self.found.append((origin.file or PYTHON, None, _dotted(path), reason))
        else:
            self.found.append((doc.display, doc.line_of(path), _dotted(path), reason))


def _dotted(path: Path) -> str:
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


def problems(loaded: LoadedModel) -> list[Problem]:
    """Every problem of the model, in file order."""
    out = _Collector(loaded)
    model = loaded.model
    _names(out, model)
    for i, dim in enumerate(model.dimensions):
        _dimension(out, model, i, dim)
    for i, fact in enumerate(model.facts):
        _fact(out, model, i, fact)
    for i, bridge in enumerate(model.bridges):
        _bridge(out, model, i, bridge)
    for kind, items in (("dimensions", model.dimensions), ("facts", model.facts)):
        for i, obj in enumerate(items):
            _physical(out, model, kind, i, obj)
    for i, bridge in enumerate(model.bridges):
        _physical(out, model, "bridges", i, bridge)
    return out.found


def validate(loaded: LoadedModel) -> LoadedModel:
    """Raise `SpecError` naming every problem; return ``loaded`` when there is none."""
    found = problems(loaded)
    if found:
        raise SpecError(found)
    return loaded


def _names(out: _Collector, model: Model) -> None:
    """Object names are unique per kind; table (and role view) names unique per schema."""
    seen: dict[tuple[str | None, str], str] = {}
    for kind, items in _kinds(model):
        names: set[str] = set()
        for i, obj in enumerate(items):
            if obj.name in names:
                out.add(kind, i, ("name",), f"{kind[:-1]} {obj.name!r} is declared twice")
            names.add(obj.name)
            key = (obj.schema_, obj.table)
            if key in seen:
                out.add(kind, i, ("table",), f"table {obj.table!r} is also {seen[key]}")
            seen[key] = f"{kind[:-1]} {obj.name!r}"
    for i, fact in enumerate(model.facts):
        for j, ref in enumerate(fact.dimensions):
            dim = model.dimension(ref.dimension)
            if dim is None or not ref.role or ref.role == ref.dimension:
                continue
            view = dim.role_view(ref.role)
            owner = seen.get((view.schema, view.name))
            mine = f"role view of {ref.dimension!r}"
            if owner and owner != mine:  # a table, or the same role of another dimension
                reason = f"the role view {view.name!r} of role {ref.role!r} is also {owner}"
                out.add("facts", i, ("dimensions", j, "role"), reason)
            seen[(view.schema, view.name)] = mine


def _kinds(model: Model) -> list[tuple[str, list[Any]]]:
    return [("dimensions", model.dimensions), ("facts", model.facts), ("bridges", model.bridges)]


def _dimension(out: _Collector, model: Model, i: int, dim: DimensionSpec) -> None:
    kind = "dimensions"
    if not dim.business_key:
        out.add(kind, i, ("business_key",), f"dimension {dim.name!r} has no business key")
    names = [a.name for a in dim.attributes]
    for j, key in enumerate(dim.business_key):
        if key not in names:
            out.add(
                kind,
                i,
                ("business_key", j),
                f"business key {key!r} is not an attribute{_near(key, names)}",
            )
    if dim.surrogate_key.type:
        _type(out, kind, i, ("surrogate_key", "type"), dim.surrogate_key.type)
    for j, attr in enumerate(dim.attributes):
        _type(out, kind, i, ("attributes", j, "type"), attr.type)
        if attr.scd == 4 and dim.scd != 4:
            out.add(
                kind,
                i,
                ("attributes", j, "scd"),
                "SCD type 4 is a dimension-level choice (current table + history table)",
            )
    if dim.kind == "time" and dim.source is not None:
        reason = "a time-of-day dimension is generated whole (1,440 minutes): drop `source`"
        out.add(kind, i, ("source",), reason)
    if dim.calendar is not None and dim.kind != "date":
        out.add(kind, i, ("calendar",), "a calendar belongs to a date dimension (kind: date)")
    if dim.tie_break and dim.tie_break not in names:
        reason = f"tie_break {dim.tie_break!r} is not an attribute{_near(dim.tie_break, names)}"
        out.add(kind, i, ("tie_break",), reason)
    _duplicates(out, kind, i, [c.name for c in dim.columns(model)])
    _refs(out, model, kind, i, "outriggers", dim.outriggers, own=dim.name)


def _fact(out: _Collector, model: Model, i: int, fact: FactSpec) -> None:
    kind = "facts"
    labels = [r.label for r in fact.dimensions] + [d.name for d in fact.degenerate]
    if not fact.grain:
        out.add(
            kind,
            i,
            ("grain",),
            f"fact {fact.name!r} declares no grain: list the references and degenerate "
            "columns that identify one row",
        )
    for j, name in enumerate(fact.grain):
        if name not in labels:
            out.add(
                kind,
                i,
                ("grain", j),
                f"grain {name!r} is not a reference or degenerate column{_near(name, labels)}",
            )
    for j, degenerate in enumerate(fact.degenerate):
        _type(out, kind, i, ("degenerate", j, "type"), degenerate.type)
    for j, measure in enumerate(fact.measures):
        if not _type(out, kind, i, ("measures", j, "type"), measure.type):
            continue
        if measure.additivity != "non" and not dialects.is_numeric(measure.type):
            out.add(
                kind,
                i,
                ("measures", j, "type"),
                f"measure {measure.name!r} is {measure.additivity} but its type {measure.type} "
                "is not numeric (declare additivity: non)",
            )
    period = fact.reference(fact.period) if fact.period is not None else None
    if fact.period is not None and period is None:
        out.add(
            kind,
            i,
            ("period",),
            f"period {fact.period!r} is not a reference{_near(fact.period, labels)}",
        )
    dim = model.dimension(period.dimension) if period is not None else None
    if dim is not None and dim.kind != "date":
        reason = f"period {fact.period!r} must reference a date dimension, not {dim.name!r}"
        out.add(kind, i, ("period",), reason)
    if fact.type == "periodic_snapshot" and fact.period is None:
        out.add(kind, i, ("period",), "a periodic snapshot needs a period (its date reference)")
    for j, name in enumerate(fact.milestones):
        ref = fact.reference(name)
        if ref is None:
            reason = f"milestone {name!r} is not a reference{_near(name, labels)}"
            out.add(kind, i, ("milestones", j), reason)
        elif (dim := model.dimension(ref.dimension)) is not None and dim.kind != "date":
            reason = f"milestone {name!r} must reference a date dimension, not {dim.name!r}"
            out.add(kind, i, ("milestones", j), reason)
    for j, ref in enumerate(fact.dimensions):
        _inferred(out, model, i, j, ref)
    _duplicates(out, kind, i, [c.name for c in fact.columns(model)])
    _duplicates(out, kind, i, [r.label for r in fact.dimensions], what="reference (give a role)")
    _refs(out, model, kind, i, "dimensions", fact.dimensions)


def _type(out: _Collector, kind: str, i: int, rel: Path, type_text: str) -> bool:
    """A declared type must be one the DDL can render (``INTEGR`` fails here, not there)."""
    try:
        dialects.column_type(type_text)
    except ValueError as error:
        out.add(kind, i, rel, str(error))
        return False
    return True


def _inferred(out: _Collector, model: Model, i: int, j: int, ref: DimensionRef) -> None:
    """``on_missing: infer`` needs what `crane model load` needs, said before it runs."""
    dim = model.dimension(ref.dimension)
    if ref.on_missing != "infer" or dim is None:
        return
    where = ("dimensions", j, "on_missing")
    if dim.attribute("is_inferred") is None:
        reason = (
            f"inferring {dim.name} members needs an attribute "
            f"{{name: is_inferred, type: BOOLEAN}} on dimension {dim.name!r}"
        )
        out.add("facts", i, where, reason)
    strategy = dim.surrogate_key.strategy
    if strategy not in ("identity", "sequence"):
        reason = f"inferred members need sequence keys; {dim.name!r} has {strategy}"
        out.add("facts", i, where, reason)


def _bridge(out: _Collector, model: Model, i: int, bridge: BridgeSpec) -> None:
    if len(bridge.dimensions) < 2:
        out.add("bridges", i, ("dimensions",), "a bridge pairs at least two dimensions")
    _duplicates(out, "bridges", i, [c.name for c in bridge.columns(model)])
    _refs(out, model, "bridges", i, "dimensions", bridge.dimensions)


def _refs(
    out: _Collector,
    model: Model,
    kind: str,
    i: int,
    field: str,
    refs: Iterable[DimensionRef],
    own: str | None = None,
) -> None:
    known = [d.name for d in model.dimensions]
    for j, ref in enumerate(refs):
        if ref.dimension not in known or ref.dimension == own:
            out.add(
                kind,
                i,
                (field, j, "dimension"),
                f"unknown dimension {ref.dimension!r}{_near(ref.dimension, known)}",
            )


def _duplicates(out: _Collector, kind: str, i: int, names: list[str], what: str = "column") -> None:
    for name in sorted({n for n in names if names.count(n) > 1}):
        out.add(kind, i, (), f"{what} {name!r} appears twice")


def _physical(out: _Collector, model: Model, kind: str, i: int, obj: TableSpec) -> None:
    pk = primary_key(obj)
    for engine, options in obj.physical.items():
        if not isinstance(options, dict):
            out.add(kind, i, ("physical", engine), "physical options must be a mapping")
            continue
        if isinstance(obj, DimensionSpec):
            _key_strategy(out, kind, i, obj, engine)
        columns = _engine_types(obj, model, engine)
        for option, reason in dialects.check_physical(engine, options, columns, pk):
            rel: Path = ("physical", engine, option) if option else ("physical", engine)
            out.add(kind, i, rel, reason)


def _key_strategy(out: _Collector, kind: str, i: int, dim: DimensionSpec, engine: str) -> None:
    """A dimension given options for an engine must have keys that engine can make."""
    from crane.errors import UnknownNameError
    from crane.warehouse.ddl import key_strategy
    from crane.warehouse.statements import DdlError

    try:
        key_strategy(dim, engine)
    except UnknownNameError:
        return  # the unknown engine is reported by the option check
    except DdlError as error:
        out.add(kind, i, ("physical", engine), f"{error.detail} ({error.hint})")


def _engine_types(obj: TableSpec, model: Model, engine: str) -> dict[str, str]:
    """Column types as ``engine`` stores them: keys switched to ``hash`` there are text, so a
    BigQuery partition on such a key is refused here rather than by BigQuery."""
    from crane.errors import CraneError
    from crane.warehouse.ddl import engine_columns

    try:
        columns = engine_columns(obj, model, engine)
    except CraneError:  # an unknown engine or key strategy: reported on its own
        columns = obj.columns(model)
    return {c.name: c.type for c in columns}


def primary_key(obj: TableSpec) -> list[str]:
    """Surrogate key for dimensions, grain columns for facts, both keys for bridges."""
    if isinstance(obj, DimensionSpec):
        return [obj.key_column]
    if isinstance(obj, FactSpec):
        return obj.grain_columns()
    if isinstance(obj, BridgeSpec):
        return obj.primary_key()
    return []


def _near(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=2)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
