#!/usr/bin/env bash
# Start the PostgreSQL server the approval_postgres tests use, on a Debian 12
# machine: Debian's postgresql package (installed when missing), its default
# cluster started with pg_ctlcluster (no systemd assumed), listening on
# 127.0.0.1:5432 only, with a test role and database:
#   SX_TEST_PG_DSN="host=127.0.0.1 port=5432 dbname=sx_test user=sx_test password=sx-test-password"
# (a fixed test-only credential, loopback only).  Idempotent.  Prints the DSN
# on its last line.  See docs/test-environment.md.
set -euo pipefail
PG_USER=sx_test
PG_PASSWORD=sx-test-password   # fixed test credential, loopback only
PG_DB=sx_test
if ! command -v pg_lsclusters >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql libpq-dev >/dev/null
fi
read -r ver cluster _ < <(pg_lsclusters --no-header | head -1)
if [ -z "${ver:-}" ]; then
  ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
  cluster=main
  pg_createcluster "$ver" "$cluster" >/dev/null
fi
conf=/etc/postgresql/$ver/$cluster/postgresql.conf
grep -q "^listen_addresses = '127.0.0.1'" "$conf" || echo "listen_addresses = '127.0.0.1'" >> "$conf"
if ! pg_lsclusters --no-header | awk -v v="$ver" -v c="$cluster" '$1==v && $2==c {print $4}' | grep -q online; then
  pg_ctlcluster "$ver" "$cluster" start
fi
for _ in $(seq 1 50); do
  su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
  sleep 0.2
done
su postgres -c "psql -qAtc \"select 1 from pg_roles where rolname='$PG_USER'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"create role $PG_USER login password '$PG_PASSWORD'\""
su postgres -c "psql -qAtc \"select 1 from pg_database where datname='$PG_DB'\"" | grep -q 1 ||
  su postgres -c "createdb -O $PG_USER $PG_DB"
echo "host=127.0.0.1 port=5432 dbname=$PG_DB user=$PG_USER password=$PG_PASSWORD"
