#!/usr/bin/env bash
# PostgreSQL server binaries for the router's ledger tests: tests/support/postgres.py starts a
# throwaway cluster from /usr/lib/postgresql/<version>/bin (initdb, pg_ctl) for each test session.
# The Debian package also creates the `postgres` system user the server runs as under root.
# Idempotent: does nothing when the binaries are there. The tests never use the package's own
# default cluster (whatever the package's scripts do with it).
set -euo pipefail

have_binaries() {
  local bin
  for bin in /usr/lib/postgresql/*/bin; do
    if [[ -x "$bin/initdb" && -x "$bin/pg_ctl" ]]; then
      return 0
    fi
  done
  return 1
}

if have_binaries && getent passwd postgres >/dev/null; then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "10-postgres: PostgreSQL server binaries are missing; installing them needs root:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y postgresql" >&2
  exit 1
fi

echo "10-postgres: installing postgresql"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null

if ! have_binaries; then
  echo "10-postgres: postgresql installed but initdb/pg_ctl not found under /usr/lib/postgresql" >&2
  exit 1
fi
echo "10-postgres: $(ls -d /usr/lib/postgresql/*/bin | tail -n1)"
