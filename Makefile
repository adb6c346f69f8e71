# One command sets up and runs the demo; one sets up and runs every check.
#   make demo   - install into .venv, then run the whole retraining loop on the embedded default
#   make test   - install into .venv, then ruff + mypy + pytest (what CI runs)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck unit bench clean browser

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m flows.demo

lint: $(STAMP)
	$(BIN)/ruff check amad flows tests benchmarks
	$(BIN)/ruff format --check amad flows tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# Debian's chromium for the browser tests (tests/browser/), where apt can install it; the tests
# skip with a clear reason where it cannot.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && timeout 600 apt-get install -y -q chromium >/dev/null 2>&1; } \
	  || echo "chromium not installed: the browser tests will skip"

unit: $(STAMP) browser
	$(BIN)/pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache runs .stack
