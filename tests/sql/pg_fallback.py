"""A minimal psycopg Connector for tests, used only until crane.connectors.postgres exists.

Small data only (rows are copied one by one); it exists so the load, validate and
schema tests run on a real PostgreSQL server whoever lands first.
"""

from __future__ import annotations

from contextlib import contextmanager

import psycopg
import pyarrow as pa

from crane.connectors.base import Capabilities, Connector, TableRef
from crane.sql import build as b

_OIDS = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    25: pa.string(),
    700: pa.float32(),
    701: pa.float64(),
    1042: pa.string(),
    1043: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    114: pa.string(),
    3802: pa.string(),
}


class PsycopgTarget(Connector):
    scheme = "postgresql"
    dialect = "postgres"
    default_schema = "public"
    capabilities = Capabilities(merge=True, copy=True, advisory_locks=True)

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        super().__init__(url, read_only=read_only)
        self.con = psycopg.connect(
            host=self.url.host,
            port=self.url.port or 5432,
            user=self.url.user,
            dbname=self.url.database,
            autocommit=True,
        )

    def read(self, source, batch_rows=100_000, params=()):
        raise NotImplementedError

    def write(self, reader, table, mode):
        data = reader.read_all() if hasattr(reader, "read_all") else reader
        if mode == "replace":
            self.execute(b.drop_table(table))
        if self.table_schema(table) is None:
            cols = [(f.name, b.arrow_to_sql(f.type)) for f in data.schema]
            self.execute(b.create_table(table, cols))
        names = ", ".join(b.ident(n).sql("postgres") for n in data.schema.names)
        with (
            self.con.cursor() as cur,
            cur.copy(f"COPY {table.sql('postgres')} ({names}) FROM STDIN") as copy,
        ):
            for row in data.to_pylist():
                copy.write_row(list(row.values()))
        return data.num_rows

    def execute(self, sql, params=()):
        with self.con.cursor() as cur:
            cur.execute(self.render(sql), list(params) or None)
            return cur.fetchall() if cur.description else []

    @contextmanager
    def transaction(self):
        with self.con.transaction():
            yield

    def table_schema(self, table: TableRef):
        name = table.sql("postgres")
        found = self.execute("SELECT to_regclass(%s)", [name])
        if not found or found[0][0] is None:
            return None
        with self.con.cursor() as cur:
            cur.execute(f"SELECT * FROM {name} LIMIT 0")
            fields = []
            for d in cur.description:
                if d.type_code == 1700:
                    kind = pa.decimal128(d.precision or 38, d.scale or 0)
                else:
                    kind = _OIDS.get(d.type_code, pa.string())
                fields.append(pa.field(d.name, kind))
        return pa.schema(fields)

    def close(self) -> None:
        self.con.close()
