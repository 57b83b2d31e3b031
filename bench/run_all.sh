#!/usr/bin/env bash
# `make bench`: the peers' venvs, the benchmark tables, then the extract–load benchmark.
#
#   bash bench/run_all.sh            # 3 interleaved repetitions, 5M + 10M + 100k tables
#   bash bench/run_all.sh --quick    # 1 repetition, 5M tables only, extract–load only
#
# Without --quick the other parts' benchmarks follow (SCD2 vs dbt/dlt, the quality suite vs
# Soda/Great Expectations, profiling vs SUMMARIZE, DAG overhead vs a plain loop, Prefect and
# Airflow).
#
# Extra arguments go to bench/bench_extract_load.py (see its --help). The 5M tables
# (PostgreSQL test.bench.orders, MariaDB bench.orders) and the 100k one are kept for the
# next run; the 10M table is built by doubling and dropped at the end (KEEP_10M=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

big=true small=true
for arg in "$@"; do
  case $arg in
    --quick) big=false small=false ;;
    --no-big) big=false ;;
    --no-small) small=false ;;
  esac
done

bash bench/setup_peers.sh
$PY -m compileall -q src  # crane's start-up, as an installed (compiled) package has it
$PY bench/make_orders.py --rows 5000000 --table orders
if $small; then
  $PY bench/make_orders.py --rows 100000 --table orders_100k --pg-only
fi
if $big; then
  if [[ ${KEEP_10M:-0} != 1 ]]; then
    trap '$PY bench/make_orders.py --drop orders_10m' EXIT
  fi
  $PY bench/make_orders.py --rows 10000000 --table orders_10m --pg-only --double-of orders
fi
$PY bench/bench_extract_load.py "$@"
if $big; then
  $PY bench/bench_scd2.py --rows 1000000 --reps 3
  $PY bench/bench_quality.py --rows 10000000 --repeat 2 --tools floor,crane,soda4,gx,soda3
  $PY bench/bench_profile.py --repeat 2 --ydata  # + ydata-profiling minimal on a 1M-row sample
  $PY bench/bench_dag_overhead.py
  bash scripts/setup_peers_orchestrators.sh
  $PY bench/bench_dag_peers.py --reps 2
fi
