"""Fact tables: transaction, periodic snapshot and accumulating snapshot loaders.

Each fact type is a small dataclass describing its physical shape (table,
grain, measures, dimension lookups with role names) and one set-based loader
built with sqlglot, so the same code loads DuckDB and PostgreSQL and renders for
Snowflake, BigQuery and Redshift. The model spec maps onto these dataclasses;
they do not depend on it.

>>> from crane.connectors.base import TableRef
>>> fact = TransactionFact(TableRef("fact_sales", "gold"), measures=("amount",),
...                        grain=("order_id",),
...                        date_keys=(DateKey("order_date_key", "order_ts"),))
>>> plan = build_transaction_load(fact, TableRef("stg", "gold"), dedupe=False)
>>> print(plan.insert.sql("postgres"))  # doctest: +NORMALIZE_WHITESPACE
INSERT INTO "gold"."fact_sales" ("order_id", "amount", "order_date_key")
SELECT "_crane_s"."order_id", "_crane_s"."amount",
COALESCE(CAST(EXTRACT(YEAR FROM "_crane_s"."order_ts") AS INT) * 10000
+ CAST(EXTRACT(MONTH FROM "_crane_s"."order_ts") AS INT) * 100
+ CAST(EXTRACT(DAY FROM "_crane_s"."order_ts") AS INT), -1) AS "order_date_key"
FROM (SELECT * FROM "gold"."stg" AS "b" WHERE NOT EXISTS(SELECT 1 FROM "gold"."fact_sales" AS "f"
WHERE "f"."order_id" = "b"."order_id")) AS "_crane_s"
"""

from crane.warehouse.facts.accumulating import (
    AccumulatingSnapshotFact,
    Lag,
    Milestone,
    build_accumulating_merge,
    load_accumulating_snapshot,
)
from crane.warehouse.facts.lookup import (
    DateKey,
    Dimension,
    Lookup,
    build_complete_inferred,
    build_inferred_members,
    build_unknown_member,
    complete_inferred,
    unknown_member_key,
)
from crane.warehouse.facts.transaction import (
    FactLoadError,
    FactLoadResult,
    PeriodicSnapshotFact,
    TransactionFact,
    build_periodic_load,
    build_transaction_load,
    load_periodic_snapshot,
    load_transaction_fact,
)

__all__ = [
    "AccumulatingSnapshotFact",
    "DateKey",
    "Dimension",
    "FactLoadError",
    "FactLoadResult",
    "Lag",
    "Lookup",
    "Milestone",
    "PeriodicSnapshotFact",
    "TransactionFact",
    "build_accumulating_merge",
    "build_complete_inferred",
    "build_inferred_members",
    "build_periodic_load",
    "build_transaction_load",
    "build_unknown_member",
    "unknown_member_key",
    "complete_inferred",
    "load_accumulating_snapshot",
    "load_periodic_snapshot",
    "load_transaction_fact",
]
