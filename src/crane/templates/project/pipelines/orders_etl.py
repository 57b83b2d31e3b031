"""Orders ETL: the Python form of a crane pipeline (YAML builds the very same spec).

It shows the whole template: connections by name, incremental extraction by a
watermark, a SQL transform step, a staged and validated load (row count and
primary-key uniqueness are checked before publishing; bad rows go to
``_crane.quarantine``), retries, and the run metrics.

Run it with the others (``crane run orders_etl`` / ``crane run --all``) or on
its own: ``python pipelines/orders_etl.py``.
"""

from __future__ import annotations

from crane.config.spec import (
    ColumnContract,
    ExtractSpec,
    LoadSpec,
    PipelineSpec,
    SourceSpec,
    TargetSpec,
)

pipeline = PipelineSpec(
    name="orders_etl",
    description="Orders with cleaned statuses and amounts in currency units.",
    # `source` is a connection of crane.yml (or SOURCE_DB_* variables).
    source=SourceSpec(connection="source", table="orders"),
    # No connection: the project warehouse (warehouse.duckdb by default).
    target=TargetSpec(table="orders"),
    # Only rows changed since the last run; the watermark is saved with the data.
    extract=ExtractSpec(strategy="incremental", cursor="updated_at"),
    # Runs inside the target engine over the extracted batch, named `source`.
    transform="""
        SELECT id,
               customer_id,
               lower(trim(status)) AS status,
               amount_cents * 0.01 AS amount,
               created_at,
               updated_at
        FROM source
    """,
    # Upsert by id through a staging table; several versions of one order in a
    # batch keep the last; more than 5% bad rows fails the run.
    load=LoadSpec(
        strategy="merge",
        primary_key=["id"],
        duplicate_keys="keep_last",
        max_quarantine_ratio=0.05,
    ),
    columns={
        "id": ColumnContract(type="BIGINT", nullable=False),
        "customer_id": ColumnContract(type="BIGINT", nullable=False),
    },
    batch_size=50_000,
    # Transient errors (dropped connection, deadlock) are retried with backoff.
    max_retries=3,
)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    from crane import Project

    project = Project.load(Path(__file__).resolve().parent)
    outcomes = project.run([pipeline.name])
    for outcome in outcomes:
        metrics = outcome.as_dict()
        print(", ".join(f"{key}={value}" for key, value in metrics.items()))
    sys.exit(0 if all(o.ok for o in outcomes) else 1)
