# mysql-audit-stream — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install kafka demo test test-long lint format bench clean

# Apache Kafka for the tests, the demo and the bench: the jars of .ci/kafka/pom.xml, fetched once.
KAFKA_LIBS  := .cache/kafka/libs
KAFKA_STAMP := $(KAFKA_LIBS)/.fetched

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt setup.py consumer/nativerow.pyx
	@command -v mariadbd >/dev/null || test -x /usr/sbin/mariadbd || { \
	  echo "mariadbd missing: installing mariadb-server (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -c constraints.txt -e '.[emulator,test,dev]'
	@touch $(STAMP)

install: $(STAMP) kafka  ## create .venv and install the project (+ Apache Kafka's jars)

# Without java/mvn a user's machine keeps to Tansu (one message); CI installs them (apt-get) and
# fails when it cannot: never a silent fallback that skips the real_kafka tests.
kafka:  ## fetch the pinned Apache Kafka (Maven Central) into .cache/kafka/libs, once
	@if [ "$$CI" = "true" ] && ! { command -v java && command -v mvn; } >/dev/null; then \
	  echo "CI: installing java and maven (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    openjdk-17-jre-headless maven >/dev/null; \
	fi
	@if [ -f $(KAFKA_STAMP) ]; then :; \
	elif command -v java >/dev/null && command -v mvn >/dev/null; then \
	  echo "fetching Apache Kafka ($(KAFKA_LIBS), from .ci/kafka/pom.xml)"; \
	  mvn -q -B -f .ci/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
	    -DoutputDirectory="$(CURDIR)/$(KAFKA_LIBS)" && touch $(KAFKA_STAMP); \
	elif [ "$$CI" = "true" ]; then \
	  echo "CI: java and mvn are required to install Apache Kafka" >&2; exit 1; \
	else \
	  echo "java or mvn missing: tests and the demo use the embedded Tansu broker instead"; \
	fi

demo: $(STAMP)  ## run the whole pipeline end to end on embedded components (SEAL=1: sealed evidence)
	$(BIN)/auditstream demo $(if $(SEAL),--seal)

test: $(STAMP) kafka  ## run the test suite against the real broker, database, emulator and SDK
	$(BIN)/pytest

test-long: $(STAMP) kafka  ## the long fault-matrix variants
	$(BIN)/pytest -m long

lint: $(STAMP)  ## ruff (check + format), mypy --strict and the import layers (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

BENCH_ARGS ?= --repeat 3
bench: $(STAMP)  ## run the benchmarks 3 times; print the median figures and the goals
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:  ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache *.egg-info .cache/kafka
