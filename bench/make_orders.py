"""Create the benchmark's `orders` tables in PostgreSQL and MariaDB — only when missing.

PostgreSQL: schema `bench` of database `test`, generated server-side with generate_series
(deterministic values derived from the id, so every machine gets the same table).
MariaDB: database `bench`, the same rows streamed from PostgreSQL's COPY into LOAD DATA, so
both sources hold identical content.

A table that already exists with the right row count is left alone; anything else is rebuilt.
Only the `psql` and `mysql` command-line clients are used, so this runs under any Python.

    python bench/make_orders.py --rows 5000000            # bench.orders on both servers
    python bench/make_orders.py --rows 10000000 --table orders_10m --pg-only --double-of orders
    python bench/make_orders.py --drop orders_10m          # free the disk again
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1", "-q"]
MYSQL = ["mysql", "--protocol=tcp", "-h", "127.0.0.1", "-uroot"]

# 12 columns: bigint id, ints, numeric(10,2), nullable numeric, text status, email,
# char(2) country, two timestamptz, nullable text.
PG_DDL = """
create schema if not exists bench;
drop table if exists bench.{t};
create table bench.{t} (
  id          bigint        not null,
  customer_id integer       not null,
  product_id  integer       not null,
  quantity    integer       not null,
  amount      numeric(10,2) not null,
  discount    numeric(10,2),
  status      text          not null,
  email       text          not null,
  country     char(2)       not null,
  created_at  timestamptz   not null,
  updated_at  timestamptz   not null,
  note        text
);
"""

PG_FILL = """
insert into bench.{t}
select g,
       (g * 7919) % 200000 + 1,
       (g * 104729) % 5000 + 1,
       g % 9 + 1,
       ((g * 48271) % 9999900 + 100) / 100.0,
       case when g % 5 = 0 then null else ((g * 16807) % 5000) / 100.0 end,
       (array['pending','paid','shipped','delivered','cancelled','refunded'])[g % 6 + 1],
       'customer' || ((g * 7919) % 200000 + 1) || '@example.'
         || (array['com','org','net','io'])[g % 4 + 1],
       (array['US','GB','DE','FR','NL','ES','IT','PL','SE','JP'])[g % 10 + 1],
       ts,
       ts + (g % 86400) * interval '1 second',
       case when g % 3 = 0 then null else 'note ' || md5(g::text) end
from generate_series({lo}::bigint, {hi}::bigint) as g,
     lateral (select timestamptz '2020-01-01 00:00:00+00'
                     + g * interval '15 seconds' + (g % 1000) * interval '1 millisecond') as t(ts);
"""

# The updated_at index is what any incremental extractor (crane's or dlt's) relies on.
PG_FINISH = """
alter table bench.{t} add primary key (id);
create index on bench.{t} (updated_at);
vacuum (freeze, analyze) bench.{t};
"""

MY_DDL = """
create database if not exists bench;
drop table if exists bench.{t};
create table bench.{t} (
  id          bigint        not null primary key,
  customer_id int           not null,
  product_id  int           not null,
  quantity    int           not null,
  amount      decimal(10,2) not null,
  discount    decimal(10,2) null,
  status      varchar(16)   not null,
  email       varchar(64)   not null,
  country     char(2)       not null,
  created_at  datetime(6)   not null,
  updated_at  datetime(6)   not null,
  note        text          null
) engine=InnoDB;
"""

# PostgreSQL's text COPY format (tab-separated, \\N for NULL) is LOAD DATA's default format.
PG_EXPORT = (
    "\\copy (select id, customer_id, product_id, quantity, amount, discount, status, email,"
    " country, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),"
    " to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), note"
    " from bench.{t} order by id) to stdout"
)
MY_LOAD = (
    "set unique_checks=0; set foreign_key_checks=0;"
    " load data local infile '/dev/stdin' into table bench.{t};"
    " create index {t}_updated_at on bench.{t} (updated_at); analyze table bench.{t};"
)


def psql(sql: str) -> str:
    out = subprocess.run([*PSQL, "-tA", "-c", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def psql_script(sql: str) -> None:
    subprocess.run(PSQL, input=sql, check=True, text=True, capture_output=True)


def mysql(sql: str) -> str:
    out = subprocess.run([*MYSQL, "-N", "-e", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def pg_rows(table: str) -> int:
    exists = psql(f"select to_regclass('bench.{table}') is not null")
    return int(psql(f"select count(*) from bench.{table}")) if exists == "t" else -1


def my_rows(table: str) -> int:
    found = mysql(
        "select count(*) from information_schema.tables"
        f" where table_schema='bench' and table_name='{table}'"
    )
    return int(mysql(f"select count(*) from bench.{table}")) if found == "1" else -1


def build_pg(table: str, rows: int, double_of: str | None) -> None:
    """Generate in one statement per chunk of 5M ids: keeps each transaction's WAL bounded."""
    psql_script(PG_DDL.format(t=table))
    if double_of:  # a doubled copy of an existing table: ids shifted by its size
        base = int(psql(f"select count(*) from bench.{double_of}"))
        psql_script(
            f"insert into bench.{table} select * from bench.{double_of};"
            f" insert into bench.{table} select id + {base}, customer_id, product_id, quantity,"
            " amount, discount, status, email, country, created_at, updated_at, note"
            f" from bench.{double_of} where id + {base} <= {rows};"
        )
    else:
        for lo in range(1, rows + 1, 5_000_000):
            hi = min(lo + 5_000_000 - 1, rows)
            psql_script(PG_FILL.format(t=table, lo=lo, hi=hi))
    psql_script(PG_FINISH.format(t=table))


def build_my(table: str) -> None:
    mysql(MY_DDL.format(t=table))
    export = subprocess.Popen([*PSQL, "-c", PG_EXPORT.format(t=table)], stdout=subprocess.PIPE)
    subprocess.run(
        [*MYSQL, "--local-infile=1", "-e", MY_LOAD.format(t=table)],
        stdin=export.stdout,
        check=True,
        capture_output=True,
    )
    if export.wait() != 0:
        raise SystemExit("make_orders: export from PostgreSQL failed")


def ensure(table: str, rows: int, pg_only: bool, double_of: str | None) -> None:
    started = time.perf_counter()
    if pg_rows(table) != rows:
        print(f"make_orders: generating PostgreSQL bench.{table} ({rows:,} rows)", flush=True)
        build_pg(table, rows, double_of)
    if not pg_only and my_rows(table) != rows:
        print(f"make_orders: loading MariaDB bench.{table} ({rows:,} rows)", flush=True)
        build_my(table)
    print(f"make_orders: bench.{table} ready ({time.perf_counter() - started:.1f}s)", flush=True)


def drop(table: str) -> None:
    psql(f"drop table if exists bench.{table}")
    mysql(f"drop table if exists bench.{table}")


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--table", default="orders")
    ap.add_argument("--pg-only", action="store_true")
    ap.add_argument("--double-of", help="build by doubling this existing PostgreSQL table")
    ap.add_argument("--drop", metavar="TABLE", help="drop TABLE on both servers and exit")
    args = ap.parse_args(argv)
    if args.drop:
        drop(args.drop)
        return
    ensure(args.table, args.rows, args.pg_only, args.double_of)


if __name__ == "__main__":
    main(sys.argv[1:])
