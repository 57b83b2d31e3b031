"""A small pure-Python model of crane's SCD semantics, to check the SQL loaders against.

It works on one key at a time with plain lists, so each rule reads as the sentence
it implements. Rows are dicts; a *change* is (key, values, ts, tie, deleted).

Semantics (shared with the SQL loaders, see crane.warehouse.scd.type2):
* exact duplicate changes are one change; two different changes at one key,
  timestamp and tie-break are an error;
* Type 2: stored versions (and implicit tombstones where a closed version is not
  followed by another) plus the new changes are sorted by time; a change equal to
  the state before it is no change; each remaining change starts a version;
* Type 1 columns take the latest live change's values, where a stored row counts as a
  change at its effective_from (ties: the stored row wins);
* Type 6 "current" columns mirror a tracked attribute: on every row of the key they hold
  that attribute's value in the key's latest live version (the current row, or after a
  hard delete the version the delete closed, under both ``close`` and
  ``close_and_flag``); a re-insert makes the new version the source; a NULL value is
  mirrored as NULL. Without a tie-break that is the latest live change; with one, a live
  change that a delete outranks at the same timestamp started no version, so Type 1
  columns take its values but current columns do not;
* late changes (older than the key's latest stored change) are applied in place
  (policy insert) or, when they differ from the version in force, quarantined;
* Types 1 and 3: a winning delete acts as if the batch's live changes of the key were
  loaded before it (so b1 then b2 equals b1 ∪ b2): ``close`` removes the row,
  ``close_and_flag`` flags a row holding the latest live change's values (a key new to
  the dimension is inserted flagged);
* ``last_change`` (``seen`` here): when a load removes a version boundary (a start or a
  tombstone) at a time that has a live change, that time is remembered for the key. The
  stored Type 1 values then count as a live change at it (without a tie-break), and it
  counts as a stored change for lateness: a rerun sees the history the first run saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Key = tuple[Any, ...]


class Conflict(Exception):
    pass


@dataclass(frozen=True)
class Change:
    key: Key
    values: tuple[Any, ...]  # tracked values, then overwritten values
    ts: datetime
    tie: int | None = None
    deleted: bool = False

    def normal(self, policy: str) -> Change | None:
        if not self.deleted:
            return self
        if policy == "ignore":
            return None
        return Change(self.key, (None,) * len(self.values), self.ts, self.tie, True)


def _tie_desc(tie: int | None) -> tuple[int, int]:
    return (0, -tie) if tie is not None else (1, 0)  # DESC NULLS LAST


def normalise(changes: list[Change], policy: str) -> list[Change]:
    out = {c.normal(policy) for c in changes} - {None}
    seen: dict[tuple[Key, datetime, int | None], Change] = {}
    for c in sorted(out, key=repr):  # type: ignore[arg-type]
        slot = (c.key, c.ts, c.tie)
        if slot in seen:
            raise Conflict(slot)
        seen[slot] = c  # type: ignore[assignment]
    return list(seen.values())


@dataclass
class Type2Model:
    n_tracked: int
    n_over: int
    hard_delete: str = "close"
    late: str = "insert"
    current_of: tuple[int, ...] = ()  # Type 6: the tracked value each current column mirrors
    rows: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)
    quarantine: set[Change] = field(default_factory=set)
    seen: dict[Key, datetime] = field(default_factory=dict)  # ScdTable.last_change

    def load(self, batch: list[Change]) -> None:
        changes = normalise(batch, self.hard_delete)
        by_key: dict[Key, list[Change]] = {}
        for c in changes:
            by_key.setdefault(c.key, []).append(c)
        new_rows = {}
        for key, events in by_key.items():
            new_rows[key] = self._key(key, events)
        for key, rows in new_rows.items():
            self.rows[key] = rows

    # one key ---------------------------------------------------------------------
    def _stored(self, key: Key) -> list[tuple[Change, int]]:
        """(event, is_new=0) for each stored version and implicit tombstone."""
        rows = self.rows.get(key, [])
        starts = {r["from"] for r in rows}
        out = []
        width = self.n_tracked + self.n_over
        for r in rows:
            tracked = (None,) * self.n_tracked if r["deleted"] else r["tracked"]
            out.append((Change(key, tracked + r["over"], r["from"], r["tie"], r["deleted"]), 0))
            if r["to"] is not None and r["to"] not in starts:
                out.append((Change(key, (None,) * width, r["to"], None, True), 0))
        return out

    def _state(self, c: Change) -> tuple[Any, ...]:
        return (True,) if c.deleted else (False, *c.values[: self.n_tracked])

    def _key(self, key: Key, events: list[Change]) -> list[dict[str, Any]]:
        stored = self._stored(key)
        seen = self.seen.get(key)
        if self.late == "quarantine" and stored:
            latest = max([e.ts for e, _ in stored] + ([seen] if seen else []))
            kept = []
            for e in events:
                if e.ts >= latest:
                    kept.append(e)
                    continue
                before = [s for s, _ in stored if s.ts <= e.ts]
                in_force = max(before, key=lambda s: s.ts) if before else None
                state = self._state(in_force) if in_force else (True,)
                if state != self._state(e):
                    self.quarantine.add(e)
            events = kept
        for e in events:
            for s, _ in stored:
                if s.ts == e.ts and s.tie == e.tie and self._state(s) != self._state(e):
                    raise Conflict((key, e.ts))
        merged = stored + [(e, 1) for e in events]
        remembered = []
        if seen is not None:
            over = self.rows[key][0]["over"]
            remembered = [(Change(key, (None,) * self.n_tracked + over, seen), 0)]
        rows = self._versions(key, merged, remembered)
        before = {e.ts for e, _ in stored}
        after = {r["from"] for r in rows} | {r["to"] for r in rows if r["to"] is not None}
        live = {e.ts for e, _ in merged if not e.deleted}
        lost = (before - after) & live
        if lost:
            self.seen[key] = max(lost | ({seen} if seen else set()))
        if not rows:  # the time is kept on the key's rows: with none left, it is gone
            self.seen.pop(key, None)
        return rows

    def _versions(
        self, key: Key, merged: list[tuple[Change, int]], remembered: list[tuple[Change, int]]
    ) -> list[dict[str, Any]]:
        winners: dict[datetime, Change] = {}
        for e, _new in sorted(merged, key=lambda p: (_tie_desc(p[0].tie), p[1])):
            winners.setdefault(e.ts, e)
        live = [(e, new) for e, new in merged + remembered if not e.deleted]
        over: tuple[Any, ...] = (None,) * self.n_over
        if live:
            best = sorted(live, key=lambda p: (-p[0].ts.timestamp(), _tie_desc(p[0].tie), p[1]))
            over = best[0][0].values[self.n_tracked :]
        now: tuple[Any, ...] = (None,) * len(self.current_of)
        live_winners = [e for e in winners.values() if not e.deleted]
        if live_winners:  # the latest live version (a change outranked at its time is not)
            latest = max(live_winners, key=lambda e: e.ts)
            now = tuple(latest.values[i] for i in self.current_of)
        starts: list[Change] = []
        prev: tuple[Any, ...] = (True,)
        for ts in sorted(winners):
            e = winners[ts]
            if self._state(e) != prev:
                starts.append(e)
            prev = self._state(e)
        rows = []
        for i, e in enumerate(starts):
            to = starts[i + 1].ts if i + 1 < len(starts) else None
            tracked = e.values[: self.n_tracked]
            if e.deleted:
                if self.hard_delete != "close_and_flag":
                    continue
                tracked = starts[i - 1].values[: self.n_tracked]
            rows.append(
                {
                    "tracked": tuple(tracked),
                    "over": tuple(over),
                    "now": now,
                    "from": e.ts,
                    "to": to,
                    "current": to is None,
                    "tie": e.tie,
                    "deleted": e.deleted,
                }
            )
        return rows

    def table(self, tie: bool = False) -> list[tuple[Any, ...]]:
        """Every stored row; ``tie``: with the tie-break value each version keeps."""
        out = []
        for key, rows in self.rows.items():
            for r in rows:
                validity = (r["from"], r["to"], r["current"], *([r["tie"]] if tie else []))
                out.append((*key, *r["tracked"], *r["over"], *r["now"], *validity, r["deleted"]))
        return sorted(out, key=repr)

    def as_of(self, ts: datetime) -> list[tuple[Any, ...]]:
        out = []
        for key, rows in self.rows.items():
            for r in rows:
                if r["from"] <= ts and (r["to"] is None or ts < r["to"]) and not r["deleted"]:
                    out.append((*key, *r["tracked"]))
        return sorted(out, key=repr)


@dataclass
class Type1Model:
    """Types 0, 1 and 3: one row per key."""

    kind: str = "1"
    n_values: int = 1
    prev_of: tuple[int, ...] = ()  # indexes of Type 3 columns (which keep a previous value)
    hard_delete: str = "close"
    late: str = "insert"
    rows: dict[Key, dict[str, Any]] = field(default_factory=dict)
    quarantine: set[Change] = field(default_factory=set)

    def load(self, batch: list[Change]) -> None:
        changes = normalise(batch, "ignore" if self.kind == "0" else self.hard_delete)
        by_key: dict[Key, list[Change]] = {}
        for c in changes:
            by_key.setdefault(c.key, []).append(c)
        for key, events in by_key.items():
            self._key(key, events)

    def _key(self, key: Key, events: list[Change]) -> None:
        row = self.rows.get(key)
        if self.kind == "0":
            if row is None:
                first = min(events, key=lambda e: (e.ts, _tie_key(e.tie)))
                self.rows[key] = self._row(first, (None,) * len(self.prev_of))
            return
        if row is not None:
            events = self._on_time(row, events)
            for e in events:
                if (
                    e.ts == row["ts"]
                    and e.tie == row["tie"]
                    and self._state_e(e) != self._state_r(row)
                ):
                    raise Conflict((key, e.ts))
        if not events:
            return
        ordered = sorted(events, key=lambda e: (e.ts, _tie_key(e.tie)))
        win = ordered[-1]
        if row is not None and (row["ts"], _tie_key(row["tie"])) > (win.ts, _tie_key(win.tie)):
            return
        live = [e for e in ordered if not e.deleted]
        if win.deleted:  # as if the batch's live changes were loaded first, then the delete
            if self.hard_delete == "close" or not (row or live):
                self.rows.pop(key, None)
                return
            if live:
                row = self._row(live[-1], self._prevs(row, live, live[-1]))
            assert row is not None
            self.rows[key] = {**row, "ts": win.ts, "tie": win.tie, "deleted": True}
            return
        prevs = self._prevs(row, live, win)
        self.rows[key] = self._row(win, prevs)

    def _on_time(self, row: dict[str, Any], events: list[Change]) -> list[Change]:
        kept = []
        for e in events:
            if e.ts >= row["ts"]:
                kept.append(e)
            elif self.late == "quarantine" and self._state_e(e) != self._state_r(row):
                self.quarantine.add(e)
        return kept

    def _state_e(self, e: Change) -> tuple[Any, ...]:
        return (True,) if e.deleted else (False, *e.values)

    def _state_r(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return (True,) if row["deleted"] else (False, *row["values"])

    def _prevs(
        self, row: dict[str, Any] | None, live: list[Change], win: Change
    ) -> tuple[Any, ...]:
        out = []
        for j, i in enumerate(self.prev_of):
            seq = ([row["values"][i]] if row is not None else []) + [e.values[i] for e in live]
            differing = [v for v in seq if v != win.values[i]]
            if differing:
                out.append(differing[-1])
            else:
                out.append(row["prev"][j] if row is not None else None)
        return tuple(out)

    def _row(self, e: Change, prevs: tuple[Any, ...]) -> dict[str, Any]:
        return {"values": e.values, "prev": prevs, "ts": e.ts, "tie": e.tie, "deleted": False}

    def table(self) -> list[tuple[Any, ...]]:
        out = [(*k, *r["values"], *r["prev"], r["ts"], r["deleted"]) for k, r in self.rows.items()]
        return sorted(out, key=repr)


def _tie_key(tie: int | None) -> tuple[int, int]:
    """Ascending order with NULL first (the SQL ``ORDER BY tie NULLS FIRST``)."""
    return (0, 0) if tie is None else (1, tie)


# -- engine harness: stage changes, load, read back -----------------------------------
_counter = iter(range(10**9))


def fresh_name(prefix: str) -> str:
    return f"{prefix}_{next(_counter)}"


def stage(con: Any, ref: Any, columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> None:
    """(Re)create ``ref`` with ``columns`` (name, SQL type) holding ``rows``."""
    from sqlglot import exp

    from crane.sql.build import create_table, drop_table, insert_select, sql_type

    con.execute(drop_table(ref))
    con.execute(create_table(ref, [(n, sql_type(t)) for n, t in columns]))
    if not rows:
        return
    names = [n for n, _ in columns]
    values = exp.values(
        [tuple(_literal(v, t) for v, (_, t) in zip(r, columns, strict=True)) for r in rows]
    )
    query = exp.select(*(exp.column(n, quoted=True) for n in names)).from_(
        exp.Subquery(
            this=values,
            alias=exp.TableAlias(
                this=exp.to_identifier("v"),
                columns=[exp.to_identifier(n, quoted=True) for n in names],
            ),
        )
    )
    con.execute(insert_select(ref, names, query))


def _literal(value: Any, type_name: str) -> Any:
    from sqlglot import exp

    from crane.sql.build import sql_type, timestamp_literal

    if value is None:
        return exp.cast(exp.Null(), sql_type(type_name))
    if isinstance(value, datetime):
        return timestamp_literal(value)
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.cast(exp.Literal.number(value), sql_type(type_name))
    return exp.Literal.string(str(value))


def read(con: Any, ref: Any, columns: list[str], order: list[str] | None = None) -> list[tuple]:
    from sqlglot import exp

    query = exp.select(*(exp.column(c, quoted=True) for c in columns)).from_(ref.expression())
    return sorted(con.execute(query), key=repr)
