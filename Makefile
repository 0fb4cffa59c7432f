# Quick start: `make demo`, `make test`. Both install what they need first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	./scripts/install.sh
	@touch $(STAMP)

demo: install
	$(BIN)/python scripts/demo.py

test: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/pytest -q -x --durations=15 tests

lint: install
	$(BIN)/ruff check src tests bench scripts

bench: install
	$(BIN)/python bench/gateway_tls.py
	$(BIN)/python bench/sidecar_mtls.py
	$(BIN)/python bench/ca_signing.py
	$(BIN)/python bench/control_plane.py

clean:
	-$(BIN)/sailctl down 2>/dev/null
	rm -rf $(VENV)
