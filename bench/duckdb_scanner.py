"""Reference point: DuckDB's own scanner copying the table with one CREATE TABLE AS.

Not a peer — it is the engine crane can move rows through, with no crane code around it, so
the gap between this line and crane's line is crane's own overhead (staging, validation, state).
Runs in crane's environment (same DuckDB release and packaged extensions, nothing downloaded).

    python bench/duckdb_scanner.py --source pg --table orders --out /tmp/w.duckdb [--set k=v]
"""

from __future__ import annotations

import argparse
import sys

import duckdb
import duckdb_extensions

ATTACH = {
    "pg": ("postgres", "host=127.0.0.1 port=5432 user=postgres dbname=test", "bench"),
    "my": ("mysql", "host=127.0.0.1 port=3306 user=root database=bench", "bench"),
}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", choices=sorted(ATTACH), required=True)
    ap.add_argument("--table", default="orders")
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[], help="a DuckDB setting, key=value")
    args = ap.parse_args(argv)

    ext, dsn, schema = ATTACH[args.source]
    con = duckdb.connect(args.out)
    duckdb_extensions.import_extension(ext, con=con)
    con.execute(f"LOAD {ext}")
    for setting in args.set:
        key, value = setting.split("=", 1)
        con.execute(f"SET {key} = {value}")
    con.execute(f"ATTACH '{dsn}' AS src (TYPE {ext}, READ_ONLY)")
    con.execute(f"CREATE TABLE main.orders AS SELECT * FROM src.{schema}.{args.table}")
    con.close()


if __name__ == "__main__":
    main(sys.argv[1:])
