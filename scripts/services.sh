#!/usr/bin/env bash
# Make sure the PostgreSQL and MariaDB servers the integration tests use are up.
# Idempotent: starts what is down, leaves what runs alone.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
my_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; }

wait_for() {  # name, check function
  for _ in $(seq 1 60); do "$2" && return 0; sleep 1; done
  echo "services: $1 did not come up" >&2; return 1
}

if ! pg_up; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  wait_for PostgreSQL pg_up
fi
if ! my_up; then
  echo "services: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB my_up
fi

# The test database must exist on both servers.
psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "create database test"
mysql --protocol=tcp -h 127.0.0.1 -uroot -e "create database if not exists test"
echo "services: PostgreSQL and MariaDB ready"
