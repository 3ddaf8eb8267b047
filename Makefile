# One command to run, one to test; each does its own set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
export TODO_DATA_DIR ?= $(CURDIR)/.data

.PHONY: run test lint typecheck unit venv clean screenshots

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

## run: the embedded default on http://127.0.0.1:$(PORT) (SQLite, in-process events); Ctrl-C stops it
## run STACK=real: PostgreSQL, Kafka and a daprd per function, each function its own process
## run STACK=real TLS=1: the same with every connection TLS (docs/deployment-tls.md)
STACK ?= embedded
TLS ?=
run: venv
ifeq ($(STACK),real)
	exec $(BIN)/todo-dev stack --port $(PORT) $(if $(filter 1,$(TLS)),--tls)
else
	$(BIN)/todo migrate
	@echo "A token for user 'dev' (valid 12 h):"
	@echo "  export TOKEN=$$($(BIN)/todo token --sub dev --ttl 12h)"
	@echo "Then: curl -H \"Authorization: Bearer \$$TOKEN\" http://127.0.0.1:$(PORT)/tasks"
	@echo "Or open http://127.0.0.1:$(PORT)/ in a browser (developer sign-in, or paste the token)."
	exec $(BIN)/todo serve --port $(PORT)
endif

## test: ruff, mypy and every test tier (starts a throw-away PostgreSQL, and the real stack for tests/system)
test: venv
	scripts/test.sh

## screenshots: docs/screenshots/*.png of the web client's main screens, taken by a browser test
screenshots: venv
	TODO_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest tests/browser/test_screenshots.py -q

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit -q

clean:
	scripts/stack/postgres.sh clean || true
	rm -rf $(VENV) .data .stack .mypy_cache .ruff_cache .pytest_cache

## bench: every benchmark beside its baseline at full size (not part of test); BENCH="p1 p4 --quick" to choose
BENCH ?=
.PHONY: bench
bench: venv
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench $(BENCH)

## chaos: a paced mixed load with every fault kind on the real stack, then the checker (not part of test);
## CHAOS="--seconds 60 --users 10" to choose; writes chaos/results/<date>.json (docs/reliability.md)
CHAOS ?=
.PHONY: chaos
chaos: venv
	$(BIN)/python -m todo_dev.chaos $(CHAOS)
