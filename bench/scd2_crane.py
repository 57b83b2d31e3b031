"""The crane side of bench/bench_scd2.py: one case, in a process of its own.

Kept apart from the driver so that a case process compiles and imports only what its load
needs (the driver's 470 lines took 8 ms to compile in every crane and floor process, its
modules ~12 ms more), as bench/scd2_dlt.py is dlt's side. The floors are here too: they
run in the same kind of process, on the same connection, so crane and the hand-written
SQL are timed alike.

    python bench/scd2_crane.py --case crane_change --db FILE   # prints {"load_s": ...}
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from crane.connectors.base import TableRef, connect  # noqa: E402
from crane.warehouse.scd import ScdTable, load_dimension  # noqa: E402

TRACKED = ("name", "email", "city", "state", "segment", "phone")
LOAD_TS = datetime(2024, 6, 1)


def dimension(table: str, row_hash: str | None = "row_hash") -> ScdTable:
    """The customer dimension; by default with a stored hash of the tracked columns
    (``ScdTable.row_hash``), the option a wide dimension's owner picks."""
    return ScdTable(
        TableRef(table),
        business_key=("customer_id",),
        type2=TRACKED,
        change_ts="updated_at",
        row_hash=row_hash,
    )


# ------------------------------------------------------------------------ cases
# Each case runs in its own process on a fresh copy of a prepared DuckDB file, so the whole
# process (start-up, imports, the load, commit) is what /usr/bin/time measures.


def crane_initial(con: object) -> None:
    load_dimension(con, dimension("dim_new"), TableRef("src"), load_ts=LOAD_TS)  # type: ignore[arg-type]


def ctas_initial(con: object) -> None:
    con.con.execute("CREATE TABLE dim_new AS SELECT * FROM src")  # type: ignore[attr-defined]


def crane_change(con: object) -> None:
    load_dimension(con, dimension("dim_base"), TableRef("chg"), load_ts=LOAD_TS)  # type: ignore[arg-type]


def crane_change_values(con: object) -> None:
    """The same dimension without a stored hash: each tracked column is compared."""
    dim = dimension("dim_plain", row_hash=None)
    load_dimension(con, dim, TableRef("chg"), load_ts=LOAD_TS)  # type: ignore[arg-type]


def floor_sql(table: str, changed: str) -> list[str]:
    """Hand-written SCD2 for a change set known to be clean, on ``table``; ``changed``
    tells a changed current row ``d`` from its batch row ``c``."""
    return [
        # close the current row of every changed customer ...
        f"UPDATE {table} AS d SET effective_to = c.updated_at, is_current = FALSE FROM chg c"
        f" WHERE d.customer_id = c.customer_id AND d.is_current AND {changed}",
        # ... and insert its new version (keys continue after the current maximum)
        f"INSERT INTO {table} SELECT (SELECT max(sk) FROM {table}) + row_number() OVER (),"
        " c.customer_id, c.name, c.email, c.city, c.state, c.segment, c.phone, c.updated_at, NULL,"
        f" TRUE{HASH_OF_C if table == 'dim_base' else ''} FROM chg c JOIN {table} d"
        " ON d.customer_id = c.customer_id AND d.effective_to = c.updated_at AND NOT d.is_current",
    ]


def _hash_of(alias: str) -> str:
    """crane's row hash (crane.warehouse.scd.row_hash) written out for DuckDB."""
    lengths = ", ',', ".join(f"coalesce(length({alias}.{c}::TEXT)::TEXT, '~')" for c in TRACKED)
    texts = ", ".join(f"coalesce({alias}.{c}::TEXT, '')" for c in TRACKED)
    return f"(md5_number(concat({lengths}, ':', {texts})) & 9223372036854775807)::BIGINT"


HASH_OF_C = f", {_hash_of('c')}"
FLOOR_SQL = floor_sql(
    "dim_plain",
    f"({', '.join(f'd.{c}' for c in TRACKED)}) IS DISTINCT FROM"
    f" ({', '.join(f'c.{c}' for c in TRACKED)})",
)
FLOOR_HASH_SQL = floor_sql("dim_base", f"d.row_hash IS DISTINCT FROM {_hash_of('c')}")


def floor_change(con: object, statements: list[str] = FLOOR_SQL) -> None:
    raw = con.con  # type: ignore[attr-defined]
    raw.execute("BEGIN")
    for sql in statements:
        raw.execute(sql)
    raw.execute("COMMIT")


def floor_change_hash(con: object) -> None:
    floor_change(con, FLOOR_HASH_SQL)


CRANE_CASES: dict[str, Callable[[object], None]] = {
    "crane_initial": crane_initial,
    "ctas_initial": ctas_initial,
    "crane_change": crane_change,
    "crane_change_values": crane_change_values,
    "crane_change_cold": crane_change,  # run with the SQL cache off (see crane_run)
    "floor_change": floor_change,
    "floor_change_hash": floor_change_hash,
}
# the dimension each change case loads (verified after the run)
CHANGED_TABLE = {"crane_change_values": "dim_plain", "floor_change": "dim_plain"}


def run_case(name: str, db: str) -> None:
    """One case on ``db``; prints the load-only seconds as JSON."""
    con = connect(f"duckdb:///{db}")
    t = time.perf_counter()
    CRANE_CASES[name](con)
    print(json.dumps({"load_s": time.perf_counter() - t}))
    con.close()


if __name__ == "__main__":
    if sys.argv[1:2] != ["--case"] or sys.argv[3:4] != ["--db"]:
        sys.exit("usage: scd2_crane.py --case NAME --db FILE")
    run_case(sys.argv[2], sys.argv[4])
