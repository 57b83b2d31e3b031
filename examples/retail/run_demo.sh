#!/usr/bin/env bash
# The retail demo, end to end: create a shop database, load it into the DuckDB
# warehouse, build the star schema from it, change the shop (customers move, prices
# change, updates, inserts, a late update, a delete), load again incrementally,
# rebuild the star schema (history kept), query it, and check the data's quality.
#   RETAIL_SOURCE_URL=postgresql://postgres@127.0.0.1:5432/test bash examples/retail/run_demo.sh
# (or SOURCE_DB_HOST/NAME/USER/PASSWORD, as for any crane project)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  if [[ -x "$REPO/.venv/bin/python" ]]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
crane() { "$PYTHON" -m crane.cli "$@" --project "$HERE"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$HERE/.demo" "$HERE/.crane"
mkdir -p "$HERE/.demo"
# DAG shell tasks call `crane`: the one next to this Python
PATH="$(dirname "$PYTHON"):$PATH"
export PATH

# The demo's warehouse is its own DuckDB file, whatever warehouse the shell names for
# real work (the history queries below read that file).
unset CRANE_WAREHOUSE TARGET_DB_TYPE TARGET_DB_HOST TARGET_DB_PORT TARGET_DB_NAME \
  TARGET_DB_USER TARGET_DB_PASSWORD

step "1. Create the operational database (SQLite; RETAIL_SOURCE_URL or SOURCE_DB_* for PostgreSQL/MariaDB)"
"$PYTHON" "$HERE/make_source.py" create

step "2. Full load into the warehouse (.demo/warehouse.duckdb)"
crane run --all

step "3. The retail star schema (models/): create it, then fill it from the raw tables"
crane model apply
crane model load

step "4. Day 2 in the shop: customers move, prices change, updates, a late update, a delete"
"$PYTHON" "$HERE/make_source.py" change

step "5. Incremental load: only what changed"
crane run --all

step "6. The star schema again: new versions for moved customers and changed prices"
crane model load

step "7. Run history"
crane runs --limit 13  # day 2: the 7 star-schema objects and the 6 incremental loads

step "8. Source and warehouse agree"
"$PYTHON" "$HERE/make_source.py" compare

step "9. History at work: questions the star schema answers"
"$PYTHON" "$HERE/analytics.py" --warehouse "$HERE/.demo/warehouse.duckdb"

step "10. Quality checks on raw and modeled tables (checks/retail.yml), with a scorecard"
crane check --store "sqlite:///$HERE/.demo/quality.sqlite" --html "$HERE/.demo/quality.html"
echo "quality report: .demo/quality.html"

step "11. Profile of the customers table"
crane profile customers --html "$HERE/.demo/profile_customers.html" | tail -n 25

step "12. The whole day as one DAG (dags/retail_daily.yml: daily 02:00, 3 retries, alert on failure)"
crane dag show retail_daily
crane dag run retail_daily
crane dag runs
