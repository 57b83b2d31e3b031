"""The 30-check suite with Soda Core 3.5 (run in bench/.venvs/soda3, DuckDB 1.0).

One scan; failing-row samples on (Soda's default sampler), so each failed check costs an
extra query. Prints one JSON line: checks, failed, queries (Soda's own query log).

    python soda3_run.py DB_IN_1.0_FORMAT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from soda.scan import Scan

CHECKS = Path(__file__).with_name("soda3_checks.yml")


def main() -> None:
    scan = Scan()
    scan.set_data_source_name("duck")
    scan.add_configuration_yaml_str(
        f"data_source duck:\n  type: duckdb\n  path: {sys.argv[1]}\n  read_only: true\n"
    )
    scan.add_sodacl_yaml_file(str(CHECKS))
    scan.execute()
    checks = scan._checks
    failed = sum(str(c.outcome).lower().endswith("fail") for c in checks)
    errors = scan.has_error_logs()
    queries = len(getattr(scan, "_queries", []))
    print(
        json.dumps({"checks": len(checks), "failed": failed, "errors": errors, "queries": queries})
    )


if __name__ == "__main__":
    main()
