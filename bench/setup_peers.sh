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
