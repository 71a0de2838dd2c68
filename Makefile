# Two commands on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export TESSERA_TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/tessera_test
# The schemathesis battery (tests/security/test_openapi_conformance.py, PostgreSQL pass) runs in
# `make test` and so in CI; `make test SCHEMATHESIS=0` skips it.
SCHEMATHESIS ?= 1
export TESSERA_SCHEMATHESIS := $(SCHEMATHESIS)
# pytest-xdist processes per database pass (each with a database of its own); the two passes
# run side by side.
TEST_WORKERS ?= 2
PYTEST_ARGS ?=

LABEL_STUDIO_VERSION ?= 1.23.2
INTEROP_DIR ?= .interop
LS_VENV := $(INTEROP_DIR)/venv
LS_STAMP := $(LS_VENV)/.installed-$(LABEL_STUDIO_VERSION)
# Every package of Label Studio's environment pinned (pip freeze of a working install): a new
# release of a dependency (sentry-sdk 3 did) cannot break `make interop` from a fresh clone.
LS_CONSTRAINTS := interop/label_studio/constraints.txt

# The lock: uv.lock (every platform and Python, resolved by uv from pyproject.toml) exported as
# pip requirements with hashes. requirements-dev.txt (service + dev tools) is what `make install`
# installs, requirements.txt (service only) what the Dockerfile installs; plain pip installs both.
UV_VERSION ?= 0.13.9
UV_VENV := .uv
UV := $(UV_VENV)/bin/uv
EXPORT := $(UV) export --frozen --no-emit-project --format requirements-txt --quiet

.PHONY: install run test lint typecheck imports test-sqlite test-postgresql bench clean interop lock

# Exactly the locked versions (--require-hashes: nothing else, nothing tampered with), then the
# project itself without dependencies; `pip check` fails when pyproject.toml asks for something
# the lock does not hold (run `make lock`).
$(STAMP): requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

install: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet 'uv==$(UV_VERSION)'

## lock: re-resolve uv.lock after a change to pyproject.toml's dependencies (keeping every other
## pin; `make lock UPGRADE=1` moves everything to the newest allowed) and export the requirements
lock: $(UV)
	$(UV) lock $(if $(UPGRADE),--upgrade)
	$(EXPORT) -o requirements.txt
	$(EXPORT) --extra dev -o requirements-dev.txt

## run: install, migrate the SQLite default and serve on $(HOST):$(PORT)
run: $(STAMP)
	$(VENV)/bin/tessera serve --host $(HOST) --port $(PORT)

## test: lint, types, import contracts, then the suite on SQLite and on PostgreSQL side by side
## (each pass's output is printed when it ends); coverage is measured on the SQLite pass
test: lint typecheck imports
	@rm -f .coverage .coverage.*
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgresql
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
	$(PY) -m coverage run -m pytest --db=sqlite -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-postgresql: $(STAMP)
	$(PY) -m pytest --db=postgresql -n $(TEST_WORKERS) $(PYTEST_ARGS)

$(LS_STAMP): $(LS_CONSTRAINTS)
	rm -rf $(LS_VENV)
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet -c $(LS_CONSTRAINTS) \
		'label-studio==$(LABEL_STUDIO_VERSION)'
	$(LS_VENV)/bin/python -m pip check
	touch $(LS_STAMP)

## interop: install Label Studio $(LABEL_STUDIO_VERSION) in its own venv (git-ignored, versions from
## $(LS_CONSTRAINTS)), check Tessera reads its template gallery (tests/label_schema/
## test_label_studio_gallery.py, against the installed templates) and run the round trip
## Tessera -> Label Studio -> Tessera against it on 127.0.0.1 (not part of `make test`; CI runs it)
interop: $(STAMP) $(LS_STAMP)
	TESSERA_LABEL_STUDIO_TEMPLATES=$$($(LS_VENV)/bin/python -c 'import label_studio, pathlib; \
		print(pathlib.Path(label_studio.__file__).parent / "annotation_templates")') \
		$(PY) -m pytest -q -p no:cacheprovider --db=sqlite tests/label_schema/test_label_studio_gallery.py
	$(PY) interop/label_studio/round_trip.py --label-studio $(LS_VENV)/bin/label-studio \
		--workdir $(INTEROP_DIR)/run

clean:
	rm -rf $(VENV) $(UV_VENV) .mypy_cache .pytest_cache .ruff_cache .coverage .coverage.*
