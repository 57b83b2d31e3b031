# crane — every target describes itself: `make help`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LINT_PATHS := $(wildcard src tests bench examples)

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,events]'
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

install: $(STAMP) ## create .venv and install crane with its dev tools
# compileall: an editable install leaves crane's own modules uncompiled, and where
# PYTHONDONTWRITEBYTECODE is set every command would compile ~50 of them again (~0.1 s).

# fakesnow (the Snowflake emulator the DDL tests run on) needs DuckDB 2.0, which
# conflicts with crane's pinned DuckDB, so it lives in a virtualenv of its own.
FAKESNOW := .venv-fakesnow/bin/python
$(FAKESNOW):
	$(PY) -m venv .venv-fakesnow
	.venv-fakesnow/bin/pip install -q "fakesnow>=0.12,<0.13" "snowflake-connector-python>=3.12,<4"

services: ## make sure PostgreSQL and MariaDB are up and configured (idempotent)
	bash scripts/services.sh

browser: ## install the headless Chromium the HTML-report test opens (idempotent)
	bash scripts/setup_browser.sh

lint: $(STAMP) ## ruff lint + format check, mypy on src/
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

test: $(STAMP) $(FAKESNOW) services browser lint ## install, start services, lint, run the whole suite
	CRANE_FAKESNOW_PYTHON=$(abspath $(FAKESNOW)) $(BIN)/pytest -q

test-peers: $(STAMP) services ## prove Airflow/Prefect exports with the real packages (isolated venvs; ~3 min to install once, then ~1 min)
	bash scripts/setup_peers_orchestrators.sh
	$(BIN)/pytest -q -m slow tests/orchestrate/test_export_peers.py

demo: $(STAMP) ## run the example retail warehouse end to end on the embedded default
	bash examples/retail/run_demo.sh

bench: $(STAMP) services ## build peer virtualenvs and run the benchmarks (see BENCHMARKS.md)
	bash bench/run_all.sh

clean: ## remove the virtualenv and generated files
	rm -rf $(VENV) .venv-fakesnow .pytest_cache .ruff_cache .mypy_cache examples/retail/.demo

.PHONY: help install services browser test-peers lint format test demo bench clean
