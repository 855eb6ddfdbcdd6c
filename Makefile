# mysql-audit-stream — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test test-long lint format bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@command -v mariadbd >/dev/null || test -x /usr/sbin/mariadbd || { \
	  echo "mariadbd missing: installing mariadb-server (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -c constraints.txt -e '.[emulator,test,dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its test and dev extras

demo: $(STAMP)  ## run the whole pipeline end to end on embedded components
	$(BIN)/auditstream demo

test: $(STAMP)  ## run the test suite against the real broker, database, emulator and SDK
	$(BIN)/pytest

test-long: $(STAMP)  ## the long fault-matrix variants
	$(BIN)/pytest -m long

lint: $(STAMP)  ## ruff (check + format) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

BENCH_ARGS ?= --repeat 3
bench: $(STAMP)  ## run the benchmarks 3 times; print the median figures and the goals
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:  ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
