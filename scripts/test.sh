#!/usr/bin/env bash
# make test: lint, type-check, then every tier against real engines this script starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

echo "== ruff"; $BIN/ruff check .
echo "== mypy"; $BIN/mypy
# Each function is its own "main" module, so each is checked on its own.
for f in functions/*/main.py; do $BIN/mypy --no-error-summary "$f"; done

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
