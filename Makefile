# Plain tasks for a newcomer: `make run`, `make test`, `make lint`, `make bench`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test fuzz-deep lint format bench bench-quick bench-smoke clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,postgres]'
	touch $@

install: $(VENV)/.installed

$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test,postgres,bench]'
	touch $@

run: install  ## the service on the embedded SQLite store, with the demo meeting
	$(VENV)/bin/prepmeet serve --demo

test: install  ## the whole test suite (PostgreSQL tests skip without a server, unless CI is set)
	$(PY) -m pytest -q

fuzz-deep: install  ## schemathesis over every operation and role, 100+ examples each (about 5 minutes)
	PREPMEET_FUZZ=deep $(PY) -m pytest -q -s tests/e2e/test_fuzz_contract.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(VENV)/.bench-installed  ## the performance harness (about 8 minutes); results in bench/results/
	$(PY) -m bench

bench-quick: $(VENV)/.bench-installed  ## the same, shorter (under 2 minutes)
	$(PY) -m bench --quick

bench-smoke: $(VENV)/.bench-installed  ## start the harness, measure a little, exit (under a minute; run by CI)
	$(PY) -m bench --smoke --out $(VENV)/bench-smoke.json

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
