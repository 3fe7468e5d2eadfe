# Kinship: `make run` serves the forum, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# make run is the development server; production is described in docs/operations.md.
RUN_ENV := DJANGO_DEBUG=$${DJANGO_DEBUG:-true}
TEST_ENV := DJANGO_DEBUG=true

.PHONY: install run test lint format check-migrations clean bench soak

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
	$(RUN_ENV) $(BIN)/uvicorn forum.asgi:application --host 127.0.0.1 --port $(PORT) --lifespan off \
		--ws-per-message-deflate false

# The suite runs on every core (pytest-xdist); the browser tests and the delivery-under-faults
# test run after it, alone, so their timing is not at the mercy of a busy machine.
# PYTEST_ARGS runs a chosen part instead.
test: install
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
ifdef PYTEST_ARGS
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)
else
	$(TEST_ENV) $(BIN)/pytest -n auto --ignore=tests/e2e -m "not faults"
	$(TEST_ENV) $(BIN)/pytest tests/e2e
	$(TEST_ENV) $(BIN)/pytest --ignore=tests/e2e -m faults
endif

# Benchmarks (bench/README.md), not part of `make test`; loopback only, each bounded in time.
# The server benches need PostgreSQL:
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make bench
bench: install
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python bench/text_pipeline.py
	$(BIN)/python bench/policy_bench.py
	$(TEST_ENV) $(BIN)/python bench/pages.py --scale 1 --duration 10 --servers asgi,asgi-persistent,wsgi --explain
	$(TEST_ENV) $(BIN)/python bench/thread_parts.py --scale 0.1
	$(TEST_ENV) $(BIN)/python bench/instructions.py --scale 0.1
	$(TEST_ENV) $(BIN)/python bench/gc_pauses.py --scale 0.1
	$(TEST_ENV) $(BIN)/python bench/chat_write.py
	$(TEST_ENV) $(BIN)/python bench/chat_fanout.py --layers core,pubsub
	$(TEST_ENV) $(BIN)/python bench/chat_fanout.py --saturate --layers pubsub
	$(TEST_ENV) $(BIN)/python bench/connections.py

# Chat delivery under faults for longer (bench/README.md); needs PostgreSQL:
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make soak SOAK_ARGS="--duration 600"
soak: install
	$(TEST_ENV) $(BIN)/python bench/soak.py $(SOAK_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
