#!/usr/bin/env bash
# Build the peers' virtualenvs under bench/.venvs/ — never dependencies of crane itself.
# Idempotent: a venv whose stamp file exists is left alone (delete the folder to rebuild).
set -euo pipefail
cd "$(dirname "$0")"

PY=${PY:-python3}
# Versions pinned to what BENCHMARKS.md was measured with; DuckDB is the same release crane uses,
# so the destination engine is identical on both sides.
DLT_PKGS=("dlt[duckdb,sql_database]==1.31.0" "duckdb==1.5.5" "pyarrow==26.0.1" "psycopg2-binary==2.9.13" "pymysql==1.2.4")

# /usr/bin/time -v gives whole-process peak RSS; Debian ships it in the package `time`.
if [[ ! -x /usr/bin/time ]]; then
  echo "setup_peers: installing GNU time"
  (apt-get update -qq && apt-get install -y -qq time) >/dev/null
fi

make_venv() {  # name, packages...
  local name=$1; shift
  local dir=.venvs/$name
  if [[ -f $dir/.installed ]]; then return 0; fi
  echo "setup_peers: building $dir"
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/pip" install -q --upgrade pip
  "$dir/bin/pip" install -q "$@"
  "$dir/bin/pip" freeze > "$dir/.installed"
}

make_venv dlt "${DLT_PKGS[@]}"
echo "setup_peers: peers ready ($(grep -iE '^(dlt|duckdb|pyarrow|sqlalchemy)==' .venvs/dlt/.installed | tr '\n' ' '))"

# --- quality-check peers (bench_quality.py) ---
# Soda Core 4 (data contracts), Great Expectations 1.x (SQL datasource via duckdb-engine) and
# Soda Core 3.5 (which pins DuckDB < 1.1, so it reads a DuckDB 1.0-format copy of the table).
# (No pip self-upgrade here: the mirror has no pip wheel, and upgrading left a broken pip.)
quality_venv() {  # name, packages...
  local name=$1; shift
  local dir=.venvs/$name
  if [[ -f $dir/.installed ]]; then return 0; fi
  echo "setup_peers: building $dir"
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install -q "$@"
  "$dir/bin/python" -m pip freeze > "$dir/.installed"
}
quality_venv soda4 "soda-core==4.28.*" "soda-duckdb==4.28.*" "duckdb==1.5.5"
quality_venv gx "great-expectations>=1.24,<2" "duckdb-engine" "duckdb==1.5.5"
quality_venv soda3 "soda-core-duckdb==3.5.6"

# --- SCD2 peers (bench/bench_scd2.py) -------------------------------------------------------
# dbt-core 1.11.x: 1.12 downloads a binary at build time and fails offline. dlt's scd2 with the
# pyarrow backend needs a row hash (add_row_hash_to_table), which needs pandas.
DBT_PKGS=("dbt-core==1.11.16" "dbt-duckdb==1.11.1" "duckdb==1.5.5")
if [[ ! -f .venvs/dbt/.installed ]]; then  # no pip self-upgrade: the mirror has no pip wheel
  echo "setup_peers: building .venvs/dbt"
  rm -rf .venvs/dbt && "$PY" -m venv .venvs/dbt
  .venvs/dbt/bin/python -m pip install -q "${DBT_PKGS[@]}"
  .venvs/dbt/bin/python -m pip freeze > .venvs/dbt/.installed
fi
if [[ ! -f .venvs/dlt/.pandas ]]; then
  .venvs/dlt/bin/python -m pip install -q "pandas==3.1.1" && .venvs/dlt/bin/python -m pip freeze > .venvs/dlt/.pandas
fi
echo "setup_peers: scd2 peers ready ($(grep -iE '^(dbt-core|dbt-duckdb)==' .venvs/dbt/.installed | tr '\n' ' ')$(grep -iE '^pandas==' .venvs/dlt/.pandas))"

# --- profiling peer (bench/bench_profile.py --ydata) ----------------------------------------
# ydata-profiling 4.18 imports pkg_resources, which setuptools 81 removed. DuckDB only reads the
# 1M-row sample out of the benchmark table into pandas (ydata profiles DataFrames).
quality_venv ydata "ydata-profiling==4.18.*" "setuptools<81" "duckdb==1.5.5"
echo "setup_peers: profiling peer ready ($(grep -iE '^(ydata-profiling|pandas)==' .venvs/ydata/.installed | tr '\n' ' '))"
