# Two commands on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export TESSERA_TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/tessera_test

.PHONY: install run test lint typecheck imports test-sqlite test-postgresql bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: install, migrate the SQLite default and serve on $(HOST):$(PORT)
run: $(STAMP)
	$(VENV)/bin/tessera serve --host $(HOST) --port $(PORT)

## test: lint, types, import contracts, then the suite on SQLite and on PostgreSQL
test: lint typecheck imports test-sqlite test-postgresql
	$(PY) -m coverage combine --quiet
	$(PY) -m coverage report --skip-covered --skip-empty --precision=1

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

imports: $(STAMP)
	$(VENV)/bin/lint-imports

test-sqlite: $(STAMP)
	$(PY) -m coverage run --parallel-mode -m pytest --db=sqlite

test-postgresql: $(STAMP)
	$(PY) -m coverage run --parallel-mode -m pytest --db=postgresql

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .coverage .coverage.*
