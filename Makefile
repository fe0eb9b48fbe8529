# The two commands a new user runs (see README.md):
#   make demo   install into .venv (with the imaging extra: torch==2.13.0 CPU, MONAI), build the
#               imaging inputs from phantom CTs, run every protocol on its synthetic data, render the reports
#   make test   install into .venv with the test tools and the imaging extra (torch==2.13.0 CPU, MONAI),
#               lint, run the test suite with the docstring examples (tests/test_doctests.py) on every
#               core (pytest-xdist; pyproject.toml); PYTEST_ARGS="-n 0" runs it in one process
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= results/demo
PYTEST_ARGS ?=

.PHONY: demo test install install-test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# An editable install leaves the sources uncompiled (pip compiles only what it copies): the
# bytecode is written here once, as a regular install does, instead of in every process that
# imports studyval (test workers, report kernels, command-line runs, Ray and torchrun workers)
# when PYTHONDONTWRITEBYTECODE is set, as on this machine.
COMPILE := $(BIN)/python -m compileall -q studyval analysis models reports

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[models]"
	$(COMPILE)

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,models]"
	$(COMPILE)

demo: install
	$(BIN)/studyval demo --out $(OUT)

lint: install-test
	$(BIN)/ruff check .

test: install-test lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python bench/bench_delong.py
	$(BIN)/python bench/bench_bootstrap.py
	$(BIN)/python bench/bench_survival.py

clean:
	rm -rf results _site .quarto .pytest_cache .ruff_cache
