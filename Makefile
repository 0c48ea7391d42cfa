# Two commands matter on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8000
TEST_WORKERS ?= 2

.PHONY: install run test test-sqlite lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# Bytecode written ahead: where PYTHONDONTWRITEBYTECODE is set, every start would
# otherwise compile the whole package again (a third of `bounces parse`'s start-up).
install: $(STAMP)
	@$(BIN)/python -m compileall -q src

## run: set up, create the demo account (once) and serve on SQLite at http://127.0.0.1:$(PORT)
run: install
	$(BIN)/mailtally serve --demo --port $(PORT)

## test: set up and run every test, on SQLite and (when reachable) PostgreSQL
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

## bench: set up (wrk, the HTTP benches' load generator, from Debian when missing) and print every figure
bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && apt-get install -y -q wrk; } \
		|| echo "WARNING: wrk is not installed and could not be (apt-get install wrk): the HTTP benches fall back to a Python load generator"
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info src/*.egg-info
