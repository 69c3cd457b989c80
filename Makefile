# genlab: `make demo` sets up a virtual environment and runs the demo; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup setup-extras demo test test-slow lint bench clean

setup: $(VENV)/.installed

# the tests also exercise the optional TensorBoard and MLflow loggers and `genlab serve`
setup-extras: $(VENV)/.extras

# torch 2.13.0 goes in first, on its own, so that pip never pulls a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

$(VENV)/.extras: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test,tensorboard,mlflow,serve]"
	touch $@

demo: setup
	$(BIN)/genlab demo

test: setup-extras
	$(BIN)/python -m pytest -q -m "not slow"

# exit status 5 means no test was selected, which is not a failure here
test-slow: setup-extras
	$(BIN)/python -m pytest -q -m slow || [ $$? -eq 5 ]

# ruff, the one-way import layers (import-linter, contract in pyproject.toml) and mypy
lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/iwae_speed.py
	$(BIN)/python benchmarks/autoregressive.py
	$(BIN)/python benchmarks/gan_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
