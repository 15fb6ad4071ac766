#!/usr/bin/env bash
# The project's single test command: installs what the tests need, then runs pytest.
# Arguments are passed to pytest, e.g. ./scripts/test.sh tests/unit -q
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/bootstrap.sh

# PostgreSQL server binaries for the throwaway server of tests/support/postgres.py
# (not needed when the tests use an existing server through GATEWAY_TEST_POSTGRES_URL).
if [ -z "${GATEWAY_TEST_POSTGRES_URL:-}" ]; then
  ./scripts/ensure-postgres.sh
fi

# Jars of the HAPI FHIR validator run by tests/support/hapi.py (Java 17 + Maven; cached in .cache/).
./scripts/ensure-hapi-validator.sh

# Jars of the Kafka broker started by tests/support/kafka.py (Java 17 + Maven; cached in .cache/).
./scripts/ensure-kafka.sh

rc=0
.venv/bin/python -m pytest "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests (exit code 5); treating that as a failure" >&2
  exit 5
fi
exit "$rc"
