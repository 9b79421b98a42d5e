# Two commands: `make run` (set up and serve on embedded defaults) and `make test` (set up and test).
# Both install exactly what uv.lock pins (frozen): `make run` only the service's own packages,
# `make test` the service plus the dev group (pytest, ruff, mypy, ...). `make upgrade` re-locks.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# The interpreter itself, not a shim (pyenv): uv rebuilds a venv whose interpreter path changed.
PYTHON_EXE := $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
UV_VERSION := 0.13.9
UV := .uv/bin/uv
BIN := .venv/bin
TSUNAMI_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
TSUNAMI_TEST_MYSQL_URL ?= mysql://root@127.0.0.1:3306/test
COVERAGE_FLOOR := 90
export TSUNAMI_TEST_POSTGRES_URL
export TSUNAMI_TEST_MYSQL_URL
export UV_PROJECT_ENVIRONMENT := .venv
export UV_PYTHON := $(PYTHON_EXE)
export UV_PYTHON_DOWNLOADS := never
# Bytecode written once at install: where PYTHONDONTWRITEBYTECODE is set (as on many CI machines and
# containers) Python never caches it, and every process (each `tsunami` command, each worker of
# `tsunami serve`, each sync and kernel) compiled every module it imports again, ~6 s of CPU.
export UV_COMPILE_BYTECODE := 1

.PHONY: run test lint upgrade bench install-run install-dev oracle oracle-check clean

$(UV):
	@echo "==> installing uv $(UV_VERSION) into .uv (the tool that installs the locked packages)"
	@$(PYTHON) -m venv .uv
	@.uv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

install-run: $(UV)
	@echo "==> installing the service's locked packages into .venv (no test tools)"
	@$(UV) sync --frozen --no-dev --inexact
	@$(BIN)/python -m compileall -q src > /dev/null

install-dev: $(UV)
	@echo "==> installing the locked packages and the dev tools into .venv"
	@$(UV) sync --frozen
	@$(BIN)/python -m compileall -q src tests > /dev/null

run: install-run
	@echo "==> tsunami serve"
	$(BIN)/tsunami serve

test: install-dev
	@echo "==> running the test suite"
	$(BIN)/python -m pytest -q --cov=servicetsunami --cov-report=term:skip-covered --cov-fail-under=$(COVERAGE_FLOOR)

lint: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# The Databricks SQL oracle: Apache Spark (the `oracle` group, ~500 MB, needs Java 17) answers the
# differential corpus and rewrites tests/differential/golden/, which `make test` compares against.
oracle: $(UV)
	@command -v java >/dev/null || { echo "make oracle needs a Java 17 runtime (Debian: openjdk-17-jre-headless)" >&2; exit 1; }
	@$(UV) sync --frozen --group oracle --inexact
	$(BIN)/python -m tests.differential.oracle

# The same run, failing when the golden files no longer hold Spark's answers (CI).
oracle-check: $(UV)
	@command -v java >/dev/null || { echo "make oracle-check needs a Java 17 runtime (Debian: openjdk-17-jre-headless)" >&2; exit 1; }
	@$(UV) sync --frozen --group oracle --inexact
	$(BIN)/python -m tests.differential.oracle --check

upgrade: $(UV)
	@echo "==> re-locking within the ranges of pyproject.toml, then testing what it chose"
	$(UV) lock --upgrade
	$(MAKE) test lint

bench: install-dev
	$(BIN)/python benchmarks/read_path.py
	$(BIN)/python benchmarks/query_overhead.py
	$(BIN)/python benchmarks/upload.py
	$(BIN)/python benchmarks/pg_sync.py
	$(BIN)/python benchmarks/mysql_sync.py
	$(BIN)/python benchmarks/rest_sync.py
	$(BIN)/python benchmarks/deletion_vectors.py
	$(BIN)/python benchmarks/profile.py
	$(BIN)/python benchmarks/databricks_fake.py
	$(BIN)/python benchmarks/api_load.py
	$(BIN)/python benchmarks/jobs.py
	$(BIN)/python benchmarks/notebooks.py

clean:
	rm -rf .venv .uv .pytest_cache .ruff_cache .mypy_cache .coverage
