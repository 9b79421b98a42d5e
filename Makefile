# Two commands: `make run` (set up and serve on embedded defaults) and `make test` (set up and test).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TSUNAMI_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export TSUNAMI_TEST_POSTGRES_URL

.PHONY: run test lint bench clean

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $@

run: $(BIN)/.installed
	$(BIN)/tsunami serve

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/read_path.py
	$(BIN)/python benchmarks/query_overhead.py
	$(BIN)/python benchmarks/upload.py
	$(BIN)/python benchmarks/pg_sync.py
	$(BIN)/python benchmarks/deletion_vectors.py
	$(BIN)/python benchmarks/profile.py
	$(BIN)/python benchmarks/databricks_fake.py
	$(BIN)/python benchmarks/api_load.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
