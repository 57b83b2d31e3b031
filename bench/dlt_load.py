"""Load one table into a fresh DuckDB file with dlt — the peer side of the extract–load benchmark.

Runs inside bench/.venvs/dlt (built by bench/setup_peers.sh), never in crane's environment.

  --config fast     dlt's fastest documented configuration: sql_table(backend="pyarrow",
                    chunk_size=100_000), loader_file_format="parquet"
  --config default  what a user gets without tuning: sql_table() with its default
                    sqlalchemy backend and chunk size, pipeline.run() with its default format

The DuckDB file is named differently from the dataset: dlt breaks when they match.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dlt
from dlt.sources.sql_database import sql_table

SOURCES = {
    "pg": ("postgresql+psycopg2://postgres@127.0.0.1:5432/test", "bench"),
    "my": ("mysql+pymysql://root@127.0.0.1:3306/bench", "bench"),
}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", choices=sorted(SOURCES), required=True)
    ap.add_argument("--table", default="orders")
    ap.add_argument("--config", choices=["fast", "default"], default="fast")
    ap.add_argument("--workdir", type=Path, required=True)
    args = ap.parse_args(argv)

    url, schema = SOURCES[args.source]
    args.workdir.mkdir(parents=True, exist_ok=True)
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{args.source}_{args.config}",
        pipelines_dir=str(args.workdir / "dlt_state"),
        destination=dlt.destinations.duckdb(str(args.workdir / "warehouse.duckdb")),
        dataset_name="orders_data",
    )
    if args.config == "fast":
        source = sql_table(
            credentials=url, schema=schema, table=args.table, backend="pyarrow", chunk_size=100_000
        )
        info = pipeline.run(source, loader_file_format="parquet", write_disposition="replace")
    else:
        source = sql_table(credentials=url, schema=schema, table=args.table)
        info = pipeline.run(source, write_disposition="replace")
    info.raise_on_failed_jobs()


if __name__ == "__main__":
    main(sys.argv[1:])
