"""The 30-check suite as Great Expectations 1.x expectations (run in bench/.venvs/gx).

SQL datasource through duckdb-engine; regex, foreign key, freshness, the cross-field rule
and the lag have no DuckDB expectation, so they are custom SQL (UnexpectedRowsExpectation).
One connection is kept open (duckdb added to GX's persisted-connection dialects): with a
connection per query, GX reads results after the connection closed and every check fails
("list index out of range").
Prints one JSON line: checks, failed, queries (counted by a SQLAlchemy cursor hook).

    python gx_run.py DB [SUMMARY|BOOLEAN_ONLY]
"""

from __future__ import annotations

import json
import sys

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.execution_engine import sqlalchemy_execution_engine as gx_sql
from sqlalchemy import event
from sqlalchemy.engine import Engine

EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
BRACED_EMAIL = EMAIL.replace("{", "{{").replace("}", "}}")  # GX formats {batch} into queries
QUERIES = [0]


# Keep one connection open, as GX already does for SQLite and SQL Server: GX reads a
# result after leaving `with engine.connect()`, and duckdb-engine has dropped it by then.
class _DuckDialect(str):
    """Equal to the dialect name (get_connection) and has .value (_setup_engine)."""

    value = "duckdb"


gx_sql._PERSISTED_CONNECTION_DIALECTS = (
    *gx_sql._PERSISTED_CONNECTION_DIALECTS,
    _DuckDialect("duckdb"),
)


@event.listens_for(Engine, "before_cursor_execute")
def _count(*_args: object) -> None:
    QUERIES[0] += 1


def custom(sql: str) -> gxe.UnexpectedRowsExpectation:
    return gxe.UnexpectedRowsExpectation(unexpected_rows_query=sql)


def expectations() -> list:
    not_null = ["id", "customer_id", "status", "amount", "email", "country"]
    not_null += ["created_at", "updated_at"]
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in not_null],
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToBeInSet(
            column="status", value_set=["new", "paid", "shipped", "delivered", "returned"]
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="country", value_set=["NL", "DE", "FR", "US", "GB", "ES", "IT"]
        ),
        gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=100000),
        gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=1, max_value=20),
        custom(f"SELECT * FROM {{batch}} WHERE NOT regexp_full_match(email, '{BRACED_EMAIL}')"),
        custom(
            "SELECT * FROM {batch} WHERE customer_id IS NOT NULL"
            " AND customer_id NOT IN (SELECT id FROM customers)"
        ),
        custom("SELECT * FROM {batch} WHERE NOT (updated_at >= created_at)"),
        custom(
            "SELECT max(created_at) AS newest FROM {batch}"
            " HAVING max(created_at) < now()::TIMESTAMP - INTERVAL 3650 DAY"
        ),
        gxe.ExpectColumnMeanToBeBetween(column="amount", min_value=0, max_value=10000),
        gxe.ExpectColumnStdevToBeBetween(column="amount", min_value=0, max_value=10000),
        gxe.ExpectColumnUniqueValueCountToBeBetween(column="country", min_value=7, max_value=7),
        gxe.ExpectColumnValuesToNotBeNull(column="discount", mostly=0.6),
        gxe.ExpectColumnValuesToNotBeNull(column="customer_id", mostly=0.99),
        gxe.ExpectColumnMinToBeBetween(column="quantity", min_value=0),
        gxe.ExpectColumnMaxToBeBetween(column="amount", max_value=100000),
        gxe.ExpectColumnSumToBeBetween(column="quantity", min_value=0),
        gxe.ExpectColumnValueLengthsToBeBetween(column="country", min_value=2, max_value=2),
        gxe.ExpectColumnUniqueValueCountToBeBetween(column="status", min_value=1, max_value=10),
        gxe.ExpectColumnMeanToBeBetween(column="quantity", min_value=1, max_value=20),
        custom("SELECT * FROM {batch} WHERE updated_at - created_at > INTERVAL 30 DAY"),
    ]


def main() -> None:
    db = sys.argv[1]
    result_format = sys.argv[2] if len(sys.argv) > 2 else "SUMMARY"
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_sql(
        name="duck",
        connection_string=f"duckdb:///{db}",
    )
    asset = source.add_table_asset(name="orders", table_name="orders")
    batch = asset.add_batch_definition_whole_table("all")
    suite = context.suites.add(gx.ExpectationSuite(name="bench"))
    for expectation in expectations():
        suite.add_expectation(expectation)
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name="bench", data=batch, suite=suite)
    )
    result = validation.run(result_format=result_format)
    outcomes = [r.success for r in result.results]
    errors = sum("raised_exception': True" in str(r.exception_info) for r in result.results)
    summary = {"checks": len(outcomes), "failed": outcomes.count(False), "errors": errors}
    if "--debug" in sys.argv:
        raised = [str(r.exception_info) for r in result.results]
        print([text[-400:] for text in raised if "raised_exception': True" in text])
    print(json.dumps({**summary, "queries": QUERIES[0], "result_format": result_format}))


if __name__ == "__main__":
    main()
