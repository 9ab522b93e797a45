# hallhub: `make demo` runs a simulated hall; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench fmt services venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: venv
	$(VENV)/bin/hallhub demo

services:
	bash scripts/ensure-services.sh

lint: venv
	$(VENV)/bin/ruff check hub realtime devices storage tests bench
	$(VENV)/bin/ruff format --check hub realtime devices storage tests bench
	$(VENV)/bin/mypy

test: venv services lint
	$(VENV)/bin/pytest

bench: venv services
	$(PY) bench/fanout.py
	$(PY) bench/queue_bench.py
	$(PY) bench/device_bench.py

fmt: venv
	$(VENV)/bin/ruff format hub realtime devices storage tests bench
	$(VENV)/bin/ruff check --fix hub realtime devices storage tests bench

clean:
	rm -rf $(VENV) var test-artifacts
