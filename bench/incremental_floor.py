"""Reference point for the incremental goal: the least work an incremental merge can do.

The same change as crane's incremental run (rows of ``bench.<table>`` newer than the
warehouse's watermark, merged by ``id`` into ``main.orders`` of an existing DuckDB file),
written by hand with no crane code: open the file, attach PostgreSQL, copy the window into a
temporary table with one ``postgres_query``, DELETE the changed keys, INSERT the window,
COMMIT, close. The watermark is handed in (the preparation reads it, untimed), so nothing
is validated, recorded or locked. A process that does only this bounds from below what any
incremental load into this file can take; the goal "≤ 5% of the full load" is compared
with it in bench_extract_load.py.

    python bench/incremental_floor.py --warehouse W.duckdb --table orders --watermark TS
"""

from __future__ import annotations

import argparse
import sys

import duckdb
import duckdb_extensions

DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warehouse", required=True)
    ap.add_argument("--table", default="orders")
    ap.add_argument("--watermark", required=True, help="a timestamptz literal")
    args = ap.parse_args(argv)

    # the scanner was installed and verified by earlier runs: like crane, skip re-hashing it
    con = duckdb.connect(args.warehouse, config={"allow_unsigned_extensions": True})
    try:
        con.execute("LOAD postgres")
    except duckdb.Error:  # not installed yet: from its package, never from the network
        duckdb_extensions.import_extension("postgres", con=con)
        con.execute("LOAD postgres")
    con.execute(f"ATTACH '{DSN}' AS src (TYPE postgres, READ_ONLY)")
    window = (
        f"select * from bench.{args.table} where updated_at > ''{args.watermark}''::timestamptz"
    )
    con.execute("BEGIN")
    con.execute(f"CREATE TEMP TABLE w AS SELECT * FROM postgres_query('src', '{window}')")
    con.execute("DELETE FROM main.orders WHERE id IN (SELECT id FROM w)")
    con.execute("INSERT INTO main.orders BY NAME SELECT * FROM w")
    con.execute("COMMIT")
    con.close()


if __name__ == "__main__":
    main(sys.argv[1:])
