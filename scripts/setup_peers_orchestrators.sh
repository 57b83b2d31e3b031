#!/usr/bin/env bash
# Create the isolated venvs the exporter tests run the real peers in:
#   bench/.venvs/airflow  (apache-airflow 3.x)   bench/.venvs/prefect  (prefect 3.x)
# Each venv also gets crane itself (editable, no deps re-resolution conflicts with the peer:
# crane is installed with its own deps into the peer venv so exported tasks can call `crane`).
# Idempotent: a venv whose stamp file exists is left alone. Usage:
#   scripts/setup_peers_orchestrators.sh [airflow] [prefect]     (default: both)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3.11}"
VENVS="$ROOT/bench/.venvs"
AIRFLOW_SPEC="${AIRFLOW_SPEC:-apache-airflow>=3.3,<4}"  # retry_exponential_backoff as a multiplier (3.3 docs)
PREFECT_SPEC="${PREFECT_SPEC:-prefect>=3.4,<4}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(airflow prefect)

make_venv() {  # name, pip args...
  local name="$1"; shift
  local dir="$VENVS/$name"
  if [ -f "$dir/.crane-ready" ]; then echo "$name: ready ($dir)"; return; fi
  local t0; t0=$(date +%s)
  rm -rf "$dir"; "$PY" -m venv "$dir"
  "$dir/bin/pip" install -q --upgrade pip
  "$dir/bin/pip" install -q "$@"
  "$dir/bin/pip" install -q -e "$ROOT"
  date +%s > "$dir/.crane-ready"
  echo "$name: installed in $(( $(date +%s) - t0 )) s ($dir)"
}

for t in "${targets[@]}"; do
  case "$t" in
    airflow)
      make_venv airflow "$AIRFLOW_SPEC"
      ;;
    prefect) make_venv prefect "$PREFECT_SPEC" ;;
    *) echo "unknown peer: $t (airflow|prefect)" >&2; exit 2 ;;
  esac
done
