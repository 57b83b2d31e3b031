"""Facts and bridges of ``crane model load``: dimension keys looked up for the staged
source, then the loader of the fact's type (:mod:`crane.warehouse.facts`).

Split from :mod:`crane.warehouse.load`, which stages each object and calls these; the
lookups of a fact's references (:func:`crane.warehouse.load.fact_keys`) stay there, as
a snowflaked dimension's outriggers use them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.errors import ConfigError
from crane.sql.build import create_table_as, drop_table, table
from crane.warehouse import load_checks
from crane.warehouse.load import _count, _placeholders, _require, _unknown_rows, fact_keys

if TYPE_CHECKING:
    from datetime import datetime

    from crane.connectors.base import Connector, TableRef
    from crane.warehouse.facts import DateKey, FactLoadResult, Lookup
    from crane.warehouse.load import ObjectLoad
    from crane.warehouse.spec import BridgeSpec, FactSpec, Model


def load_fact(
    con: Connector,
    model: Model,
    fact: FactSpec,
    stage: TableRef,
    out: ObjectLoad,
    load_ts: datetime | None = None,
) -> None:
    from crane.warehouse import facts

    lookups, date_keys = fact_keys(model, fact)
    _unknown_days(con, model, fact)
    target = fact.ref(model.schema_)
    measures = tuple(m.name for m in fact.measures)
    degenerate = tuple(d.name for d in fact.degenerate)
    needed = [*degenerate, *measures, *(d.source_column for d in date_keys)]
    needed += [c for lookup in lookups for c in lookup.source_columns]
    _require(con, stage, fact, [*needed, *([fact.event_time] if fact.event_time else [])])
    result: FactLoadResult
    if fact.type == "transaction":
        grain = tuple(g for g in fact.grain if g in degenerate)
        keys = [c for g, c in zip(fact.grain, fact.grain_columns(), strict=True) if g not in grain]
        sources = [*grain, *_grain_sources(keys, lookups, date_keys)]
        payload = [*needed, *([fact.event_time] if fact.event_time else [])]
        load_checks.one_row_per_grain(con, fact, stage, sources, payload)
        load_checks.dates_in_calendar(con, model, fact, stage)
        spec = facts.TransactionFact(
            target,
            measures=measures,
            grain=grain,
            degenerate=tuple(d for d in degenerate if d not in grain),
            lookups=tuple(lookups),
            date_keys=tuple(date_keys),
            grain_keys=tuple(keys),
        )
        result = facts.load_transaction_fact(
            con, spec, stage, run_id=out.run_id, load_ts=load_ts, name=fact.name
        )
        load_checks.one_row_per_key(con, fact, stage, spec)
    elif fact.type == "periodic_snapshot":
        period = fact.reference(fact.period or "")
        if period is None:
            raise ConfigError(f"fact {fact.name} needs `period:`", table=fact.table, field="period")
        others = [c for c in fact.grain_columns() if c != period.key_column]
        snapshot = facts.PeriodicSnapshotFact(
            target,
            period_column=period.key_column,
            grain=tuple(others),
            measures=measures,
            lookups=tuple(lookups),
            date_keys=tuple(date_keys),
            degenerate=degenerate,
        )
        load_checks.dates_in_calendar(con, model, fact, stage)
        result = facts.load_periodic_snapshot(con, snapshot, stage)
    else:
        _load_accumulating(con, model, fact, stage, lookups, date_keys, out)
        return
    _report(out, result)


def _report(out: ObjectLoad, result: FactLoadResult) -> None:
    out.rows_in, out.inserted = result.rows_in, result.inserted
    out.deleted, out.unknown = result.deleted, result.unknown
    out.quarantined, out.quarantine_table = result.quarantined, result.quarantine_table
    out.unchanged = result.unchanged


def _grain_sources(
    keys: Sequence[str], lookups: Sequence[Lookup], date_keys: Sequence[DateKey]
) -> list[str]:
    """The source columns a grain's dimension keys (``keys``) are looked up from."""
    found = [c for x in lookups if x.key_column in keys for c in x.source_columns]
    return found + [d.source_column for d in date_keys if d.key_column in keys]


def load_bridge(
    con: Connector,
    model: Model,
    bridge: BridgeSpec,
    stage: TableRef,
    out: ObjectLoad,
    load_ts: datetime | None = None,
) -> None:
    """A bridge row pairs the current members its source names (by business key, as a
    fact's source does); pairs already there are kept, so a rerun adds nothing."""
    from crane.warehouse import facts

    lookups, date_keys = fact_keys(model, bridge)
    _unknown_days(con, model, bridge)
    weight = (bridge.weight_column,) if bridge.weight else ()
    needed = [*weight, *(d.source_column for d in date_keys)]
    pairs = [*(c for x in lookups for c in x.source_columns), *(d.source_column for d in date_keys)]
    _require(con, stage, bridge, [*needed, *pairs])
    load_checks.one_row_per_grain(con, bridge, stage, pairs, needed)
    load_checks.dates_in_calendar(con, model, bridge, stage)
    spec = facts.TransactionFact(
        bridge.ref(model.schema_),
        measures=weight,
        lookups=tuple(lookups),
        date_keys=tuple(date_keys),
        grain_keys=tuple(bridge.primary_key()),
    )
    result = facts.load_transaction_fact(
        con, spec, stage, run_id=out.run_id, load_ts=load_ts, name=bridge.name, kind="bridge"
    )
    load_checks.one_row_per_key(con, bridge, stage, spec)
    _report(out, result)


MILESTONE, MILESTONE_AT, EVENT_KEY = "milestone", "milestone_at", "_crane_event_key"


def _load_accumulating(
    con: Connector,
    model: Model,
    fact: FactSpec,
    stage: TableRef,
    lookups: Sequence[Lookup],
    date_keys: Sequence[DateKey],
    out: ObjectLoad,
) -> None:
    """Resolve the events' dimension keys into a second stage, then fold it in
    (:func:`crane.warehouse.facts.load_accumulating_snapshot`)."""
    from crane.connectors.base import TableRef
    from crane.warehouse import facts
    from crane.warehouse.facts.lookup import date_key_expr
    from crane.warehouse.facts.transaction import S, fact_rows, prepare_dimensions

    _require(con, stage, fact, [MILESTONE, MILESTONE_AT])
    load_checks.known_milestones(con, fact, stage, MILESTONE, MILESTONE_AT)
    load_checks.dates_in_calendar(con, model, fact, stage, (MILESTONE, MILESTONE_AT))
    grain = [g for g in fact.grain if g in {d.name for d in fact.degenerate}]
    others = [d.name for d in fact.degenerate if d.name not in grain]
    measures = [m.name for m in fact.measures]
    # an event without a time has not happened: NULL, never the unknown day, which as
    # the "earliest" key would hold the milestone forever
    day = date_key_expr(facts.DateKey(EVENT_KEY, MILESTONE_AT), S, null_is_unknown=False)
    event = exp.alias_(day, EVENT_KEY)
    rows, names, unknown = fact_rows(
        exp.select(exp.Star()).from_(table(stage)),
        [*grain, *others, *measures, MILESTONE],
        lookups,
        date_keys,
        [event],
    )
    resolved = TableRef(f"{stage.name}_keys", stage.schema)
    counted = facts.FactLoadResult()
    prepare_dimensions(con, lookups, stage, counted)
    con.execute(drop_table(resolved))
    con.execute(create_table_as(resolved, rows))
    out.unknown = _unknown_rows(con, resolved, unknown)  # events, as a fact's rows are
    milestones = []
    for label in fact.milestones:
        ref = fact.reference(label)
        assert ref is not None  # crane model validate checked it
        milestones.append(facts.Milestone(label, ref.key_column))
    # the whole grain names an instance: degenerate columns and looked-up keys alike
    instance = [c for c in fact.grain_columns() if c not in {m.column for m in milestones}]
    attributes = tuple(n for n in names if n not in (*instance, MILESTONE, EVENT_KEY))
    # an event without the customer (or a date) looks up the unknown member (day): that
    # says nothing, and must not erase the member an earlier event named
    says_nothing = {x.key_column: x.dimension.unknown_key for x in lookups}
    says_nothing.update({d.key_column: d.unknown_key for d in date_keys})
    spec = facts.AccumulatingSnapshotFact(
        fact.ref(stage.schema),
        instance_key=tuple(instance),
        milestones=tuple(milestones),
        attributes=attributes,
        event_column=MILESTONE,
        time_column=EVENT_KEY,
        unknown_values={k: v for k, v in says_nothing.items() if k in attributes},
    )
    out.rows_in = _count(con, stage)
    out.updated = facts.load_accumulating_snapshot(con, spec, resolved)
    con.execute(drop_table(resolved))


def _unknown_days(con: Connector, model: Model, fact: FactSpec | BridgeSpec) -> None:
    """The unknown day (key -1) in each date dimension the fact references: a fact row
    with a NULL date points there, and the foreign key needs the row."""
    from crane.warehouse.facts import Dimension, build_unknown_member

    names = {r.dimension for r in fact.dimensions}
    for dim in model.dimensions:
        if dim.kind != "date" or dim.name not in names:
            continue
        day = Dimension(
            dim.ref(model.schema_),
            tuple(dim.business_key),
            dim.key_column,
            effective_from=None,
            effective_to=None,
            is_current=None,
            inferred_flag=None,
            unknown_values=_placeholders(model, dim),
        )
        con.execute(build_unknown_member(day))
