"""``crane model load``: fill the declared star schema from tables already in the warehouse.

Each dimension and fact of the model names where its rows come from with a
``source:`` SELECT over warehouse tables (the raw tables the pipelines loaded),
cleansing included (``lower(trim(email))``). A load stages that SELECT into a
table beside the target and hands it to the loader the spec asks for:

- a regular or junk dimension: the SCD loader of its type
  (:func:`crane.warehouse.scd.load_dimension`); in a dimension that facts, bridges
  or dimensions reference, source rows carrying the unknown member's business key
  (its placeholders, -1 or 'unknown') go to the dimension's quarantine table (the one
  the SCD loaders put late rows in) with the reason and run id, and are counted, so no
  load closes or overwrites the unknown member. The model load hands the loader no delete
  markers and deletes no key a full reload lacks, so the unknown member (absent
  from every source) is never closed as deleted either;
- a date dimension: :mod:`crane.warehouse.datedim`, over the ``(start, end)``
  range its source returns, with its ``calendar:`` (fiscal year start month,
  holidays, weekend days); missing days are added and existing ones take a
  changed calendar in place, so days that facts already reference are never
  deleted (foreign keys are enforced on DuckDB); a fact with a NULL date points
  at the unknown day (-1), made when a fact first needs it;
- a time-of-day dimension: generated whole (1,440 minutes), no source;
- a transaction fact: keys looked up as of ``event_time``, missing members
  pointing at the dimension's unknown member, or (``on_missing: infer`` on the
  reference) at a new *inferred* member carrying the business key, completed in
  place (same surrogate key) when the dimension's real row arrives — such a
  dimension declares an ``is_inferred`` BOOLEAN attribute. A transaction is never
  updated: a source row whose grain is loaded with other values goes to
  ``<fact table>_quarantine`` (reason, run id; once however often it is rerun) and is
  counted as quarantined, an exact re-delivery as unchanged; a periodic snapshot
  replaces the periods its source returns; an accumulating snapshot takes one
  source row per milestone event — columns ``milestone`` (a milestone's label)
  and ``milestone_at`` — and keeps the earliest date of each milestone per
  instance (its grain), whatever order the events arrive in;
- a bridge: one row per pair of current members its source names (by business
  key, plus the weight column); pairs already loaded are kept as they are.

Column conventions of a fact's source (so the YAML stays short): degenerate
dimensions and measures by their own names; a reference to a date dimension by
its label (``order_date``: a date or timestamp); another reference by the
dimension's business key, prefixed ``<role>_`` when the reference plays a role.

Each object loads in one transaction together with its run record in
``_crane.runs`` (pipeline ``model.<name>``), so a failed load leaves neither
rows nor a "success" behind, and a rerun is a no-op for dimensions and
transaction facts.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dt_time
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crane.errors import ConfigError, CraneError, LoadError
from crane.sql.build import col, create_table_as, drop_table, ident, table
from crane.warehouse import load_checks

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef
    from crane.warehouse.facts import DateKey, Lookup
    from crane.warehouse.facts.lookup import Dimension
    from crane.warehouse.spec import (
        BridgeSpec,
        DimensionRef,
        DimensionSpec,
        FactSpec,
        Model,
        TableSpec,
    )

INFERRED = "is_inferred"  # the dimension attribute that marks an inferred member


@dataclass
class ObjectLoad:
    """What loading one dimension or fact did."""

    name: str
    kind: str  # dimension | fact
    table: str
    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unknown: int = 0
    # rows newly written to the object's quarantine table: a dimension's source rows
    # carrying the unknown member's business key and rows the SCD loader quarantined
    # (late arrivals); a transaction fact's or bridge's rows whose grain is loaded with
    # other values (a transaction is never updated)
    quarantined: int = 0
    quarantine_table: str = ""  # where they are, when there are any
    # a transaction fact's or bridge's rows that added nothing: loaded (or quarantined)
    # before as they are, or repeated in the batch (rows_in = inserted + quarantined + this)
    unchanged: int = 0
    seconds: float = 0.0
    run_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ModelLoad:
    """Every object loaded by one ``crane model load``, in load order."""

    run_id: str
    objects: list[ObjectLoad] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # declared without a source


def load_order(model: Model, names: Sequence[str] = ()) -> list[TableSpec]:
    """Date dimensions, then other dimensions, facts and bridges; only ``names`` if given."""
    known = {o.name for o in [*model.dimensions, *model.facts, *model.bridges]}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"no dimension, fact or bridge named {unknown[0]!r}"
            f" (known: {', '.join(sorted(known))})",
            field="name",
        )
    from crane.warehouse.spec import outriggers_first

    dims = outriggers_first(sorted(model.dimensions, key=lambda d: d.kind != "date"))
    objects = [*dims, *model.facts, *model.bridges]
    return [o for o in objects if not names or o.name in names]


def load_model(
    con: Connector,
    model: Model,
    names: Sequence[str] = (),
    *,
    load_ts: datetime | None = None,
    run_id: str | None = None,
    record: bool = True,
) -> ModelLoad:
    """Load every object with a ``source`` (or only ``names``), dimensions before facts."""
    from crane.state.store import ensure_state

    result = ModelLoad(run_id or uuid.uuid4().hex[:12])
    if record:
        ensure_state(con)
    for obj in load_order(model, names):
        if obj.source is None and not _generated(obj):
            if names:
                raise ConfigError(
                    f"{obj.name} declares no source: add `source: SELECT …` to its spec",
                    table=obj.table,
                    field="source",
                )
            result.skipped.append(obj.name)
            continue
        result.objects.append(
            load_object(con, model, obj, load_ts=load_ts, run_id=result.run_id, record=record)
        )
    return result


def locate(error: CraneError, loaded: Any) -> CraneError:
    """``error`` naming the model file and line of the object it is about.

    ``loaded`` is the `LoadedModel` the CLI read (objects and where each was declared);
    :func:`load_model` takes a plain `Model`, so its errors name the table and field
    only. The object is the one whose table the error names; the line is its ``field``'s
    (``source:``), else the object's. Other errors come back as they are."""
    if error.file or type(error).__init__ is not CraneError.__init__ or not error.table:
        return error
    model = loaded.model
    kinds = [("dimensions", model.dimensions), ("facts", model.facts)]
    for kind, items in [*kinds, ("bridges", model.bridges)]:
        for i, obj in enumerate(items):
            if error.table not in (obj.table, str(obj.ref(model.schema_))):
                continue
            origin = loaded.origin(kind, i)
            doc = origin.document
            if doc is None:
                where = {"file": origin.file}
            else:
                path = (*origin.path, *([error.field] if error.field else []))
                where = {"file": doc.display, "line": doc.line_of(path)}
            transient = error.transient if error.classified else None
            context = {**error.context, **where}
            return type(error)(error.detail, transient=transient, hint=error.hint, **context)
    return error


def load_object(
    con: Connector,
    model: Model,
    obj: TableSpec,
    *,
    load_ts: datetime | None = None,
    run_id: str = "",
    record: bool = True,
) -> ObjectLoad:
    """Stage ``obj.source`` and load it, with its run record, in one transaction."""
    from crane.warehouse.load_calendar import load_times
    from crane.warehouse.load_facts import load_bridge, load_fact
    from crane.warehouse.spec import BridgeSpec, DimensionSpec

    is_dim = isinstance(obj, DimensionSpec)
    kind = "dimension" if is_dim else "bridge" if isinstance(obj, BridgeSpec) else "fact"
    out = ObjectLoad(obj.name, kind, "", run_id=run_id)
    target = obj.ref(model.schema_)
    out.table = str(target)
    started, clock = datetime.now(UTC), time.perf_counter()
    load_ts = load_ts or datetime.now()
    try:
        with con.transaction():
            if _generated(obj):
                load_times(con, obj, target, out)
            else:
                stage = _stage(con, obj, target)
                if isinstance(obj, DimensionSpec):
                    _load_dimension(con, model, obj, stage, out, load_ts)
                elif isinstance(obj, BridgeSpec):
                    load_bridge(con, model, obj, stage, out, load_ts)
                else:
                    load_fact(con, model, obj, stage, out, load_ts)  # type: ignore[arg-type]
                con.execute(drop_table(stage))
            out.seconds = time.perf_counter() - clock
            if record:
                _record(con, out, "success", started)
    except Exception as error:
        failure = error
        if not isinstance(error, LoadError | ConfigError):
            failure = LoadError(
                f"loading {obj.name} failed: {error}", table=out.table, run_id=run_id
            )
        if record:
            _record_failure(con, out, started, error, failure)
        if failure is error:
            raise
        raise failure from error
    return out


def _record_failure(
    con: Connector, out: ObjectLoad, started: datetime, error: Exception, failure: Exception
) -> None:
    """Record the failed run. When that fails too (the load lost its connection), the
    load's own error is raised all the same, with a note: the recording's error replaced
    it, and "the connection is closed" named neither the object nor the cause."""
    try:
        _record(con, out, "failed", started, error)
    except Exception as lost:
        failure.add_note(f"the failed run was not recorded in _crane.runs: {lost}")


def _stage(con: Connector, obj: TableSpec, target: TableRef) -> TableRef:
    """``CREATE TABLE <schema>._crane_stage_<name> AS <source>`` (inside the transaction).

    A real table, not a temporary one: loaders read its shape from the catalog,
    which does not list DuckDB temporary tables under the database.
    """
    import sqlglot

    from crane.connectors.base import TableRef

    assert obj.source is not None
    try:
        query = sqlglot.parse_one(obj.source, read=con.dialect)
    except sqlglot.errors.ParseError as error:
        raise ConfigError(
            f"source of {obj.name} is not valid SQL: {error}", table=obj.table, field="source"
        ) from None
    if not isinstance(query, exp.Query):
        raise ConfigError(f"source of {obj.name} must be a SELECT", table=obj.table, field="source")
    # unique per load, so two concurrent loads never share one; the rollback of a
    # failed load removes it (DDL is transactional on DuckDB and PostgreSQL)
    stage = TableRef(f"_crane_stage_{obj.name}_{uuid.uuid4().hex[:8]}", target.schema)
    con.execute(create_table_as(stage, query))
    return stage


def _require(con: Connector, stage: TableRef, obj: TableSpec, needed: Sequence[str]) -> None:
    """Name the columns a source lacks before a loader fails on them with engine jargon."""
    schema = con.table_schema(stage)
    have = {n.lower() for n in (schema.names if schema is not None else [])}
    missing = [c for c in dict.fromkeys(needed) if c.lower() not in have]
    if missing:
        raise ConfigError(
            f"the source of {obj.name} lacks column(s) {', '.join(missing)}"
            f" (it returns {', '.join(sorted(have))})",
            table=obj.table,
            field="source",
        )


def _count(con: Connector, ref: TableRef) -> int:
    return int(con.fetch(exp.select(exp.Count(this=exp.Star())).from_(table(ref)))[0][0])


def _record(
    con: Connector,
    out: ObjectLoad,
    status: str,
    started: datetime,
    error: BaseException | None = None,
) -> None:
    from crane.state.store import record_run

    record_run(
        con,
        {
            "run_id": out.run_id,
            "pipeline": f"model.{out.name}",
            "status": status,
            "started_at": started,
            "finished_at": datetime.now(UTC),
            "rows_in": out.rows_in,
            "rows_loaded": out.inserted + out.updated,
            "rows_quarantined": out.quarantined,
            "seconds": out.seconds,
            "target_table": out.table,
            "error": None if error is None else str(error)[:2000],
        },
    )


# -- dimensions ----------------------------------------------------------------------


def _load_dimension(
    con: Connector,
    model: Model,
    dim: DimensionSpec,
    stage: TableRef,
    out: ObjectLoad,
    load_ts: datetime,
) -> None:
    from crane.warehouse.load_calendar import load_dates
    from crane.warehouse.scd import load_dimension

    if dim.kind == "date":
        load_dates(con, model, dim, stage, out)
        return
    out.rows_in = _count(con, stage)
    scd = dim.scd_table(model.schema_)
    attributes = [a.name for a in dim.attributes if a.name not in dim.business_key]
    inferred = dim.attribute(INFERRED) is not None
    if inferred:
        _real_members(con, stage)
    _require(con, stage, dim, [*dim.business_key, *attributes, dim.change_ts])
    if dim.kind == "junk":
        load_checks.no_null_combination(con, dim, stage)
    else:
        load_checks.no_nulls(con, model, dim, stage)
    if inferred:  # after the checks: a NULL it wrote failed with the engine's words
        _complete_inferred(con, model, dim, stage, out)
    if dim.outriggers:
        stage = _outrigger_keys(con, model, dim, stage, out)
    if dim.kind != "junk" and _referenced(model, dim.name):
        out.quarantined = _quarantine_unknown_key(con, model, dim, stage, load_ts, out.run_id)
    result = load_dimension(con, scd, stage, load_ts=load_ts, run_id=out.run_id)
    out.inserted = result.inserted
    out.updated += result.updated + result.closed
    out.quarantined += result.quarantined
    if out.quarantined:
        out.quarantine_table = str(scd.quarantine)


def _referenced(model: Model, name: str) -> bool:
    """Does a fact, bridge or dimension (outrigger) reference dimension ``name``? Only
    then may it get an unknown member, so only then is that member's key reserved."""
    refs = [r for f in model.facts for r in f.dimensions]
    refs += [r for b in model.bridges for r in b.dimensions]
    refs += [r for d in model.dimensions for r in d.outriggers]
    return any(r.dimension == name for r in refs)


def _quarantine_unknown_key(
    con: Connector,
    model: Model,
    dim: DimensionSpec,
    stage: TableRef,
    load_ts: datetime,
    run_id: str,
) -> int:
    """Move the source rows whose business key is the unknown member's (-1, 'unknown')
    from the stage to the dimension's quarantine table; return how many were new there.

    Handed to the SCD loader, such a row was a change of the unknown member (surrogate
    key -1) itself: a Type 2 dimension closed it (facts pointing at "unknown" then joined
    a non-current row with the source's values) and started a second member with the
    same key; a Type 1 one overwrote it. The rows are written as the SCD loaders write
    late ones (:func:`crane.warehouse.scd.steps.quarantine`: canonical event columns,
    reason, run id, load time), so one table holds every row a dimension refused, and a
    rerun adds none already there. A junk dimension is left alone: its key is its whole
    combination, which its unknown member shares."""
    from crane.warehouse.facts import unknown_member_key
    from crane.warehouse.scd.base import lock_statement
    from crane.warehouse.scd.steps import DEL, TIE, TS, events_query, quarantine, value_columns

    found = lookup_dimension(model, dim)
    match = unknown_member_key(found)
    if match is None:
        return 0
    count = exp.select(exp.Count(this=exp.Star())).from_(table(stage)).where(match.copy())
    if not int(con.fetch(count)[0][0]):
        return 0
    scd = dim.scd_table(model.schema_)
    columns = [*scd.business_key, *value_columns(scd), TS, TIE, DEL]
    events = exp.Subquery(this=events_query(scd, stage), alias=exp.TableAlias(this=ident("e")))
    rows = exp.select(*(col(c) for c in columns)).from_(events).where(match.copy())
    reason = _reserved(dim, found.unknown_values)
    # the dimension's engine lock (PostgreSQL), as the SCD loaders quarantine under it:
    # two concurrent loads each added the row their uncommitted twin could not see. Not
    # the in-process lock: the SCD load takes it again, and a second thread holding it
    # while waiting for this transaction's engine lock would deadlock with it
    lock_statement(con, scd)
    added = quarantine(con, scd, rows, columns, reason=reason, run_id=run_id, load_ts=load_ts)
    con.execute(exp.Delete(this=table(stage), where=exp.Where(this=match)))
    return added


def _reserved(dim: DimensionSpec, placeholders: Mapping[str, Any]) -> str:
    """The quarantine reason: a code to filter by, then the dimension and the key."""
    key = ", ".join(f"{k} = {_shown(placeholders[k])}" for k in dim.business_key)
    code = "unknown_member_key"
    return f"{code}: dimension {dim.name} reserves business key {key} for its unknown member"


def _shown(value: Any) -> str:
    """A placeholder as SQL would write it: -1, 'unknown'."""
    return str(value) if isinstance(value, int | float) else f"'{value}'"


def _outrigger_keys(
    con: Connector, model: Model, dim: DimensionSpec, stage: TableRef, out: ObjectLoad
) -> TableRef:
    """The stage plus each outrigger's key, looked up by business key as a fact's are
    (current member; a missing one is the outrigger's unknown member, counted in
    ``out.unknown`` as a fact's are): the SCD loader writes them as Type 1 columns.
    Without them every load hit the key's NOT NULL."""
    from crane.connectors.base import TableRef
    from crane.warehouse.facts import FactLoadResult
    from crane.warehouse.facts.transaction import fact_rows, prepare_dimensions

    lookups, date_keys = reference_keys(model, dim.name, dim.table, dim.outriggers)
    _require(con, stage, dim, [c for x in lookups for c in x.source_columns])
    schema = con.table_schema(stage)
    columns = list(schema.names) if schema is not None else []
    prepare_dimensions(con, lookups, stage, FactLoadResult())
    staged = exp.select(exp.Star()).from_(table(stage))
    rows, _, unknown = fact_rows(staged, columns, lookups, date_keys)
    keyed = TableRef(f"{stage.name}_keys", stage.schema)
    con.execute(create_table_as(keyed, rows))
    con.execute(drop_table(stage))
    out.unknown = _unknown_rows(con, keyed, unknown)
    return keyed


def _unknown_rows(con: Connector, rows: TableRef, unknown: Sequence[exp.Expr]) -> int:
    """How many of ``rows`` point at an unknown member (``unknown``: the conditions
    :func:`crane.warehouse.facts.transaction.fact_rows` returns, over ``_crane_q``)."""
    from crane.sql.build import count_where

    if not unknown:
        return 0
    query = exp.select(count_where(exp.or_(*unknown))).from_(table(rows, "_crane_q"))
    return int(con.fetch(query)[0][0])


def _real_members(con: Connector, stage: TableRef) -> None:
    """The source need not say ``is_inferred``: staged rows are real members."""
    from crane.sql.build import add_column

    schema = con.table_schema(stage)
    if schema is not None and INFERRED not in schema.names:
        con.execute(add_column(stage, INFERRED, exp.DataType.build("BOOLEAN")))
        con.execute(exp.update(table(stage), {INFERRED: exp.false()}))


def _complete_inferred(
    con: Connector, model: Model, dim: DimensionSpec, stage: TableRef, out: ObjectLoad
) -> None:
    """Real rows for inferred members overwrite them in place (same key), before the
    SCD load, so facts already pointing at them stay right."""
    from crane.warehouse.facts import complete_inferred

    names = [a.name for a in dim.attributes if a.name not in (*dim.business_key, INFERRED)]
    lookup = lookup_dimension(model, dim)
    out.updated += complete_inferred(con, lookup, stage, names, order_by=dim.change_ts)


def _generated(obj: TableSpec) -> bool:
    """A time-of-day dimension is generated whole (1,440 minutes): it needs no source."""
    return getattr(obj, "kind", None) == "time"


# -- facts and bridges: crane.warehouse.load_facts; their dimensions' keys ---------


def fact_keys(model: Model, fact: FactSpec | BridgeSpec) -> tuple[list[Lookup], list[DateKey]]:
    """The fact's (or bridge's) dimension keys: smart date keys by label, lookups by
    business key (as of the fact's event time; a bridge pairs current members)."""
    return reference_keys(
        model,
        fact.name,
        fact.table,
        fact.dimensions,
        getattr(fact, "event_time", None),
        getattr(fact, "milestones", []),
    )


def reference_keys(
    model: Model,
    owner: str,
    owner_table: str,
    refs: Sequence[DimensionRef],
    event_time: str | None = None,
    milestones: Sequence[str] = (),
) -> tuple[list[Lookup], list[DateKey]]:
    """Keys of ``refs`` (a fact's dimensions, a bridge's, a dimension's outriggers)."""
    from crane.warehouse.facts import DateKey, Lookup

    lookups: list[Lookup] = []
    date_keys: list[DateKey] = []
    for ref in refs:
        dim = model.dimension(ref.dimension)
        if dim is None:
            raise ConfigError(
                f"{owner} references unknown dimension {ref.dimension}",
                table=owner_table,
                field="dimensions",
            )
        if dim.kind == "date":
            if ref.label not in milestones:  # milestones come from the event rows
                date_keys.append(DateKey(ref.key_column, ref.label))
            continue
        prefix = f"{ref.role}_" if ref.role else ""
        found = lookup_dimension(model, dim)
        if ref.on_missing == "infer" and found.inferred_flag is None:
            raise ConfigError(
                f"{owner} infers {dim.name} members: declare an attribute "
                f"`{{name: {INFERRED}, type: BOOLEAN}}` on dimension {dim.name}",
                table=owner_table,
                field="on_missing",
            )
        lookups.append(
            Lookup(
                ref.key_column,
                found,
                tuple(f"{prefix}{k}" for k in dim.business_key),
                event_time=event_time,
                on_missing=ref.on_missing,
            )
        )
    return lookups, date_keys


def lookup_dimension(model: Model, dim: DimensionSpec) -> Dimension:
    """The fact loaders' view of a dimension; its unknown member fills NOT NULL columns."""
    from crane.warehouse.facts import Dimension

    flag = INFERRED if dim.attribute(INFERRED) is not None else None
    return Dimension.from_scd(
        dim.scd_table(model.schema_), inferred_flag=flag, unknown_values=_placeholders(model, dim)
    )


def _placeholders(model: Model, dim: DimensionSpec) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column in dim.columns(model):
        if column.nullable or column.role not in ("business_key", "attribute"):
            continue
        values[column.name] = placeholder(column.type)
    return values


_LENGTH = re.compile(r"\((\d+)\)")


def placeholder(sql_type: str) -> Any:
    """The unknown member's value for a NOT NULL column of ``sql_type``.

    Typed by sqlglot's reading of the type, so ``INTERVAL`` is not taken for an integer
    and a ``UUID`` business key gets the nil UUID (text 'unknown' failed the insert).

    >>> placeholder("INTEGER"), placeholder("CHAR(2)"), placeholder("VARCHAR(100)")
    (-1, 'un', 'unknown')
    >>> placeholder("uuid"), placeholder("TIME")
    (UUID('00000000-0000-0000-0000-000000000000'), datetime.time(0, 0))
    """
    from crane.warehouse.dialects import column_type

    try:
        kind = column_type(sql_type)
    except ValueError:
        return "unknown"
    types = exp.DataType.Type
    if kind.is_type(*exp.DataType.NUMERIC_TYPES):
        return -1
    if kind.is_type(types.BOOLEAN):
        return False
    if kind.is_type(types.UUID):
        return uuid.UUID(int=0)
    if kind.is_type(types.TIME, types.TIMETZ):
        return dt_time(0, 0)
    if kind.is_type(*exp.DataType.TEMPORAL_TYPES):
        return datetime(1900, 1, 1)  # a typed literal: PostgreSQL casts it on insert
    length = _LENGTH.search(sql_type)
    return "unknown"[: int(length.group(1))] if length else "unknown"
