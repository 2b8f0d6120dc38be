# Two entry points for a fresh Linux machine with Python 3.11+:  make demo   and   make test
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build on machines without a GPU; on a GPU workstation PyPI's torch wheel carries CUDA.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup test demo lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# ruff, the type checker, then every test (tests/test_layers.py checks the import graph against DESIGN.md's layers)
test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

demo: setup
	$(BIN)/bookmix demo

lint: setup
	$(BIN)/ruff check src tests bench

# mypy over the rooms listed in pyproject.toml [tool.mypy] files
typecheck: setup
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-out .pytest_cache
