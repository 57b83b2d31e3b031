#!/usr/bin/env bash
# The retail demo, end to end: create a shop database, load it into the DuckDB
# warehouse, change the shop (updates, inserts, a late update, a delete), load
# again incrementally, and show the run history.
#   RETAIL_SOURCE_URL=postgresql://postgres@127.0.0.1:5432/test bash examples/retail/run_demo.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  if [[ -x "$REPO/.venv/bin/python" ]]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
crane() { "$PYTHON" -m crane.cli "$@" --project "$HERE"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$HERE/.demo"
mkdir -p "$HERE/.demo"

step "1. Create the operational database (${RETAIL_SOURCE_URL:-SQLite: .demo/shop.sqlite})"
"$PYTHON" "$HERE/make_source.py" create

step "2. Full load into the warehouse (.demo/warehouse.duckdb)"
crane run --all

step "3. The shop keeps working: updates, inserts, one late update, one delete"
"$PYTHON" "$HERE/make_source.py" change

step "4. Incremental load: only what changed"
crane run --all

step "5. Run history"
crane runs --limit 10

step "6. Source and warehouse agree"
"$PYTHON" "$HERE/make_source.py" compare
