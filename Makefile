# Two commands on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export TESSERA_TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/tessera_test

LABEL_STUDIO_VERSION ?= 1.23.2
INTEROP_DIR ?= .interop
LS_VENV := $(INTEROP_DIR)/venv
LS_STAMP := $(LS_VENV)/.installed-$(LABEL_STUDIO_VERSION)

.PHONY: install run test lint typecheck imports test-sqlite test-postgresql bench clean interop

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

$(LS_STAMP):
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LS_VENV)/bin/python -m pip install --quiet 'label-studio==$(LABEL_STUDIO_VERSION)'
	touch $(LS_STAMP)

## interop: install Label Studio $(LABEL_STUDIO_VERSION) in its own venv (git-ignored) and run the
## round trip Tessera -> Label Studio -> Tessera against it on 127.0.0.1 (not part of `make test`)
interop: $(STAMP) $(LS_STAMP)
	$(PY) interop/label_studio/round_trip.py --label-studio $(LS_VENV)/bin/label-studio \
		--workdir $(INTEROP_DIR)/run

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .coverage .coverage.*
