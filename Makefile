# The two commands of the README. Everything else is a helper for them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck unit install dev clean fuzz

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "reclaim needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes; the stamp files record what was installed.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/reclaim demo

lint: dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports --no-cache

typecheck: dev
	$(BIN)/mypy

# Three pytest processes (pytest-xdist), each test file whole on one of them (the tests of a file
# may share module-scoped state): the suite spends much of its time waiting on subprocesses,
# leases and sleeps (two processes kept the 2 cores of the test machine at a load of ~1.5-2.5),
# so a third helps even on two cores. Every test makes its own
# database (a file in its tmp_path, or a PostgreSQL schema of its own) and takes free ports.
# Files go out in collection order (--no-loadscope-reorder), not biggest test count first: the
# few long chaos tests then start first instead of being the last to finish.
# `make test PYTEST_WORKERS=0` runs everything in one process, as plain `python -m pytest` does.
PYTEST_WORKERS ?= 3
test: lint typecheck
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The rules engine's evaluators against each other, at random seeds: the property tests with
# FUZZ_SCALE times their examples, and the differential fuzzer with FUZZ_EXPRESSIONS random
# expressions and FUZZ_RULESETS random rule sets. Each disagreement is shrunk to a minimal
# reproducer. Shorter: make fuzz FUZZ_EXPRESSIONS=1000 FUZZ_RULESETS=100 FUZZ_SCALE=2
FUZZ_EXPRESSIONS ?= 10000
FUZZ_RULESETS ?= 1000
FUZZ_SCALE ?= 10
fuzz: dev
	RECLAIM_HYPOTHESIS_PROFILE=fuzz RECLAIM_FUZZ_SCALE=$(FUZZ_SCALE) \
	RECLAIM_FUZZ_EXPRESSIONS=$(FUZZ_EXPRESSIONS) RECLAIM_FUZZ_RULESETS=$(FUZZ_RULESETS) \
	$(BIN)/python -m pytest -p no:cacheprovider -q tests/fuzz \
		tests/unit/rules/expression/test_agreement.py tests/unit/rules/test_row_columnar.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
