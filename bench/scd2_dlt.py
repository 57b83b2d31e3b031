"""Load a customer table into a DuckDB dimension with dlt's ``scd2`` merge strategy.

The peer side of bench/bench_scd2.py; runs inside bench/.venvs/dlt (bench/setup_peers.sh),
never in crane's environment. Prints ``{"load_s": ...}`` (the ``pipeline.run`` wall time).

Fastest fair configuration: the rows go in as one Arrow table read from DuckDB (no
per-row Python), parquet load files, and the row hash dlt's scd2 needs with Arrow data
(``add_row_hash_to_table`` + ``row_version_column_name``). ``merge_key`` makes the change
load incremental: only keys present in the batch are compared, so the 1% change load reads
the same 10,000 rows crane's loader gets instead of a full 1M snapshot. ``--full-snapshot``
is dlt's default scd2 usage instead: no merge key, the whole table every time (keys absent
from it are retired), reported beside the fast number.

    python bench/scd2_dlt.py --source src.duckdb --table src --workdir DIR   # initial
    python bench/scd2_dlt.py --source src.duckdb --table chg --workdir DIR   # 1% change

The DuckDB file is named differently from the dataset: dlt breaks when they match.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import dlt
import duckdb
from dlt.sources.helpers.transform import add_row_hash_to_table


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", type=Path, required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument(
        "--full-snapshot",
        action="store_true",
        help="dlt's default scd2: no merge_key, the input is the whole table (absent = deleted)",
    )
    args = ap.parse_args(argv)

    with duckdb.connect(str(args.source), read_only=True) as con:
        data = con.execute(f'SELECT * FROM "{args.table}"').fetch_arrow_table()

    @dlt.resource(
        name="customers",
        merge_key=None if args.full_snapshot else "customer_id",
        write_disposition={
            "disposition": "merge",
            "strategy": "scd2",
            "row_version_column_name": "row_hash",
        },
    )
    def customers():  # type: ignore[no-untyped-def]
        yield data

    pipeline = dlt.pipeline(
        pipeline_name="scd2_bench",
        pipelines_dir=str(args.workdir / "dlt_state"),
        destination=dlt.destinations.duckdb(str(args.workdir / "warehouse.duckdb")),
        dataset_name="dim",
    )
    t = time.perf_counter()
    info = pipeline.run(
        customers().add_map(add_row_hash_to_table("row_hash")), loader_file_format="parquet"
    )
    info.raise_on_failed_jobs()
    print(json.dumps({"load_s": time.perf_counter() - t}))


if __name__ == "__main__":
    main(sys.argv[1:])
