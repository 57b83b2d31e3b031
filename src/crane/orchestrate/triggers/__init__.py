"""What starts a DAG run besides ``crane dag run``: schedules and events.

A DAG declares its triggers beside its schedule::

    schedule: "0 2 * * *"          # cron, in ``timezone`` (DST-safe, see `cron`)
    timezone: Europe/Berlin
    catchup: true
    max_catchup_runs: 3            # at most the 3 most recent missed intervals
    on_dataset: [warehouse.orders] # another DAG loaded new rows into it
    triggers:
      - file: incoming/*.csv       # each new file starts one run (remembered)
      - nats: orders.ready         # a message on a NATS subject
      - redis: orders.ready        # a message on a Redis pub/sub channel

Every DAG can also be started by the scheduler's webhook
(``POST /dags/NAME/trigger``, see `crane.orchestrate.webhook`). This module
holds only the spec models (imported by `crane.orchestrate.dag`): it stays light.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

KINDS = ("file", "nats", "redis")


class TriggerSpec(BaseModel):
    """One event trigger: exactly one of ``file`` (a glob), ``nats`` or ``redis`` (a subject)."""

    model_config = ConfigDict(extra="forbid")

    file: str | None = None  # glob, relative to the project directory
    nats: str | None = None  # subject (wildcards allowed)
    redis: str | None = None  # channel
    url: str | None = None  # server (default: nats://127.0.0.1:4222, redis://127.0.0.1:6379)

    @model_validator(mode="after")
    def _one(self) -> TriggerSpec:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a trigger needs exactly one of {', '.join(KINDS)} (got {given})")
        if self.url is not None and self.kind == "file":
            raise ValueError("'url' is for nats/redis triggers")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def target(self) -> str:
        return str(getattr(self, self.kind))


@dataclass
class Fire:
    """A request to run a DAG, from any trigger; the scheduler queues and runs it."""

    dag: str
    kind: str  # schedule | backfill | file | dataset | webhook | nats | redis
    params: dict[str, Any] = field(default_factory=dict)
    logical_date: dt.datetime | None = None
    interval: tuple[dt.datetime, dt.datetime] | None = None
    key: str | None = None  # what was claimed (interval, file path, dataset events)
