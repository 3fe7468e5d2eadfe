# Kinship: `make run` serves the forum, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# make run is the development server; production is described in docs/operations.md.
RUN_ENV := DJANGO_DEBUG=$${DJANGO_DEBUG:-true}
TEST_ENV := DJANGO_DEBUG=true

.PHONY: install run test lint format check-migrations clean bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

run: install
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput
	$(RUN_ENV) $(BIN)/python manage.py seed_demo
	@echo "Kinship is at http://127.0.0.1:$(PORT)/  (Ctrl-C stops it)"
	$(RUN_ENV) $(BIN)/uvicorn forum.asgi:application --host 127.0.0.1 --port $(PORT) --lifespan off

# The suite runs on every core (pytest-xdist); the browser tests run after it, alone, so
# their timing is not at the mercy of a busy machine. PYTEST_ARGS runs a chosen part instead.
test: install
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
ifdef PYTEST_ARGS
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)
else
	$(TEST_ENV) $(BIN)/pytest -n auto --ignore=tests/e2e
	$(TEST_ENV) $(BIN)/pytest tests/e2e
endif

# Chat fan-out benchmark (bench/README.md), not part of `make test`. Run it against PostgreSQL:
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make bench
bench: install
	$(TEST_ENV) $(BIN)/python bench/chat_fanout.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
