PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DATA ?= ./openlead-data

.PHONY: run test install install-dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

run: install
	mkdir -p $(DATA)
	OPENLEAD_DATABASE_URL=$${OPENLEAD_DATABASE_URL:-sqlite+aiosqlite:///$(DATA)/openlead.db} \
	  $(BIN)/openlead serve --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)

test: lint
	$(BIN)/python -m pytest -q -n auto --dist loadfile

bench: install-dev
	$(BIN)/python bench/import_bench.py

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache
