"""The 30-check suite as a Soda Core 4.28 data contract, verified locally (bench/.venvs/soda4).

No Soda Cloud, no publishing. Prints one JSON line: checks, failed, queries (counted by
wrapping soda-duckdb's cursor execute).

    python soda4_run.py DB
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from soda_core.contracts import verify_contract_locally
from soda_duckdb.common.data_sources.duckdb_data_source import DuckDBCursor

CONTRACT = Path(__file__).with_name("soda4_contract.yml")
QUERIES = [0]


def _counted_execute(self: DuckDBCursor, sql: str, *args: object) -> object:
    """Every SQL statement soda-duckdb sends goes through DuckDBCursor (a thin wrapper)."""
    QUERIES[0] += 1
    return self._connection.execute(sql, *args)


DuckDBCursor.execute = _counted_execute  # type: ignore[attr-defined]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "ds.yml"
        source.write_text(
            f"type: duckdb\nname: duck\nconnection:\n  database: {sys.argv[1]}\n  read_only: true\n"
        )
        result = verify_contract_locally(
            data_source_file_path=str(source), contract_file_path=str(CONTRACT)
        )
    checks = [c for r in result.contract_verification_results for c in r.check_results]
    failed = sum("fail" in str(c.outcome).lower() for c in checks)
    errors = result.has_errors if hasattr(result, "has_errors") else None
    print(
        json.dumps(
            {"checks": len(checks), "failed": failed, "errors": bool(errors), "queries": QUERIES[0]}
        )
    )


if __name__ == "__main__":
    main()
