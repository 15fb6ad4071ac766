#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, pg_ctl, postgres) are installed,
# from Debian's `postgresql` package. The tests start their own throwaway server
# (tests/support/postgres.py); this script never starts or configures a cluster.
# Fast and silent when the binaries are already there.
set -euo pipefail

have_server() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

if have_server; then
  exit 0
fi

fail() {
  echo "ensure-postgres: $*" >&2
  exit 1
}

if ! command -v apt-get >/dev/null 2>&1; then
  fail "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin and apt-get is not available; install PostgreSQL (initdb, pg_ctl) or set GATEWAY_TEST_POSTGRES_URL"
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  fail "PostgreSQL server binaries not found and installing them needs root (run as root, allow password-less sudo, or run: sudo apt-get install -y postgresql)"
fi

# Keep the package's maintainer scripts from starting the default cluster: if the
# machine has no policy-rc.d (as Docker images do), add one for the install only.
policy=/usr/sbin/policy-rc.d
added_policy=0
cleanup() {
  if [ "$added_policy" -eq 1 ]; then
    "${as_root[@]}" rm -f "$policy" || true
  fi
}
trap cleanup EXIT
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# temporary, added by scripts/ensure-postgres.sh\nexit 101\n' \
    | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 0755 "$policy"
  added_policy=1
fi

echo "ensure-postgres: installing Debian's postgresql package..." >&2
log=$(mktemp)
if ! "${as_root[@]}" apt-get update -q >"$log" 2>&1; then
  tail -n 5 "$log" >&2
  rm -f "$log"
  fail "apt-get update failed (see the lines above); cannot install PostgreSQL"
fi
if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q postgresql >"$log" 2>&1; then
  tail -n 5 "$log" >&2
  rm -f "$log"
  fail "apt-get install postgresql failed (see the lines above)"
fi
rm -f "$log"

have_server || fail "the postgresql package was installed but /usr/lib/postgresql/*/bin/initdb is still missing"
echo "ensure-postgres: installed $(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)" >&2
