"""A scratch table for one load: compute an expensive SELECT once, read it several times.

Loaders need to count what they are about to insert (connectors do not report
affected rows uniformly) and some check the batch first; hashing or joining a
million rows once per read would triple the work. The table lives beside the
target, inside the caller's transaction: on an error the rollback removes it
(DDL is transactional on DuckDB and PostgreSQL), on success it is dropped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlglot import exp

from crane.sql.build import col, create_table_as, drop_table, ident, insert_select, table

if TYPE_CHECKING:
    from crane.connectors.base import Connector, TableRef


@contextmanager
def scratch_table(con: Connector, near: TableRef, query: exp.Query) -> Iterator[TableRef]:
    """``CREATE TEMPORARY TABLE … AS query``; dropped when the block succeeds.

    Temporary, so neither DuckDB's WAL nor PostgreSQL's WAL writes it (a 1M-row
    scratch table in a DuckDB file cost ~4 s more at commit than in memory).
    ``near`` is kept for engines that will need the schema (none so far).
    """
    from crane.connectors.base import TableRef

    ref = TableRef(f"_crane_tmp_{uuid.uuid4().hex[:12]}")
    create = create_table_as(ref, query)
    create.set("properties", exp.Properties(expressions=[exp.TemporaryProperty()]))
    con.execute(create)
    yield ref
    con.execute(drop_table(ref))


def insert_counted(con: Connector, insert: exp.Insert) -> int:
    """Run ``insert`` if its SELECT yields rows; returns how many it added."""
    query = insert.expression
    assert isinstance(query, exp.Query)
    counted = exp.select(exp.Count(this=exp.Star())).from_(
        exp.Subquery(this=query.copy(), alias=ident("_crane_n"))
    )
    n = int(con.fetch(counted)[0][0])
    if n:
        con.execute(insert)
    return n


def copy_rows(target: TableRef, columns: Sequence[str], source: TableRef) -> exp.Insert:
    """``INSERT INTO target (columns) SELECT columns FROM source``."""
    return insert_select(
        target, columns, exp.select(*(col(c) for c in columns)).from_(table(source))
    )


def insert_via_scratch(con: Connector, insert: exp.Insert) -> int:
    """Run ``insert`` computing its SELECT once: into a scratch table, counted, copied."""
    query, schema = insert.expression, insert.this
    assert isinstance(query, exp.Query) and isinstance(schema, exp.Schema)
    target_table = schema.this
    assert isinstance(target_table, exp.Table)
    from crane.connectors.base import TableRef

    target = TableRef(target_table.name, target_table.db or None)
    columns = [c.name for c in schema.expressions]
    with scratch_table(con, target, query) as rows:
        n = int(con.fetch(exp.select(exp.Count(this=exp.Star())).from_(table(rows)))[0][0])
        if n:
            con.execute(copy_rows(target, columns, rows))
    return n
