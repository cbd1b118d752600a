# Thin aliases over a project-local virtual environment: a fresh clone needs only Python >= 3.11 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 9000

.PHONY: install demo test unit lint bench reliability clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/scim-bridge demo

lint: $(STAMP)
	$(BIN)/ruff check scim_bridge tests bench
	$(BIN)/ruff format --check scim_bridge tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest -m "not slow"

# Small versions of every benchmark (under three minutes); full scale through each script's flags.
bench: $(STAMP)
	$(BIN)/python -m bench
	$(BIN)/python -m bench.entra_cycle --small
	$(BIN)/python -m bench.relay_floor --small
	$(BIN)/python -m bench.peer_compare --small
	$(BIN)/python -m bench.store_scale --small

# The long reliability runs of docs/reliability.md (about 9 minutes): every scenario at 300 users, 30 groups
# and 1 500 memberships, and 3 200 generated bad requests per fuzz test.
reliability: $(STAMP)
	$(BIN)/python -m tests.scenarios --users 300 --groups 30 --memberships 1500 --fuzz 3200

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
