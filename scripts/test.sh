#!/usr/bin/env bash
# make test: lint, type-check, then every tier against real engines this script starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

echo "== ruff"; $BIN/ruff check .
echo "== mypy"; $BIN/mypy
# Each function is its own "main" module, so each is checked on its own.
for f in functions/*/main.py; do $BIN/mypy --no-error-summary "$f"; done

# The test PostgreSQL listens in this run's port block (todo_dev.ports; TODO_PORT_SLOT moves it).
# Its own cluster directory: `make run STACK=real` may be using .stack/pg at the same time.
export PGPORT=${PGPORT:-$($BIN/python -m todo_dev.ports test-postgres)}
export TODO_STACK_DIR=${TODO_STACK_DIR:-$PWD/.stack/test}
started_pg=0
cleanup() { [ "$started_pg" = 1 ] && scripts/stack/postgres.sh stop || true; }
trap cleanup EXIT
if ! scripts/stack/postgres.sh status >/dev/null 2>&1; then
  scripts/stack/postgres.sh start
  started_pg=1
fi
export TODO_TEST_DATABASE_URL=${TODO_TEST_DATABASE_URL:-$(scripts/stack/postgres.sh url)}
export TODO_REQUIRE_POSTGRES=1

echo "== pytest"
$BIN/pytest "$@"
