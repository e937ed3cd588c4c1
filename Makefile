# The project's contract: every gate CI runs is a target here.
CARGO ?= cargo
VENV := .venv
PYTHON := $(VENV)/bin/python
ADMIN_ADDR ?= 127.0.0.1:9901

.PHONY: build run test fmt-check lint test-rust test-e2e crds venv bench

## Build the tollgate and tollgate-mock binaries (debug).
build:
	$(CARGO) build --workspace --bins

## Run the gateway on the quickstart example with a local mock provider (no network needed).
run: build
	./scripts/run-quickstart.sh

## The whole suite: formatting, lints, unit tests, end-to-end tests.
test: fmt-check lint test-rust test-e2e

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust:
	$(CARGO) test --workspace

test-e2e: build venv
	$(PYTHON) -m pytest tests/e2e -q

## Tollgate against nginx and a direct call on loopback, plus the hot-path micro-benchmarks.
bench:
	./bench/run.sh
	$(CARGO) bench --workspace

## Regenerate crds/ and the chart's copy from the resource types (a unit test fails on drift).
crds:
	$(CARGO) run -q -p tollgate -- crds --output-dir crds
	$(CARGO) run -q -p tollgate -- crds --output-dir charts/tollgate/crds

## The Python clients and tools the end-to-end tests use, and the Node packages they start
## (package-lock.json pins them: server-everything, the MCP reference server).
venv: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check -r tests/requirements.txt
	touch $@

node_modules/.installed: package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js and npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	npm ci --no-audit --no-fund
	touch $@
