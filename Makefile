# Every target sets up what it needs: a virtual environment in .venv (created and installed when missing or when
# pyproject.toml changed) and a project-local Dagster instance in .dagster_home.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home
PORT ?= 8000
UI_PORT ?= 3000
# make replay: the election to replay and the messages per second (0: as fast as possible).
YEAR ?= 2020
SPEED ?= 200
# make live-demo publishes as fast as possible by default; the updater keeps up in batches.
LIVE_SPEED ?= 0

# What `make lint` checks: the packages, the test folders, benchmarks, scripts and the root conftest.py.
LINT_PATHS := election_assets election_api election_assets_tests election_api_tests deployment_tests benchmarks \
	scripts conftest.py

.PHONY: install help demo real replay live live-demo test quick ui serve serve-real lint clean

# `make` alone is `make install`. Every target below documents itself in one `## target: description` line, which
# `make help` lists.
## install: create .venv and install the project with its dev extras, and set up .dagster_home (the default goal)
install: $(INSTALLED) $(DAGSTER_HOME)/dagster.yaml

## help: list the targets with their one-line descriptions
help:
	@sed -nE 's/^## ([a-z-]+): (.*)/\1\t\2/p' $(firstword $(MAKEFILE_LIST)) | awk -F'\t' '{printf "  %-11s %s\n", $$1, $$2}'

# The API's dependencies at the versions the API image pins (requirements/api.txt), so the tests run against them.
$(INSTALLED): pyproject.toml requirements/api.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' --constraint requirements/api.txt
	@touch $@

# The instance's configuration lives in instance/, not beside workspace.yaml: Dagster warns about a dagster.yaml in
# the working directory that is not DAGSTER_HOME's.
$(DAGSTER_HOME)/dagster.yaml: instance/dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp instance/dagster.yaml $@

## demo: materialize the whole asset graph on the synthetic default, then print where the results are
demo: install
	$(BIN)/python -m election_assets.launch election_pipeline
	@echo
	@$(BIN)/python -m election_assets.summary

## real: materialize the real-mode graph (ingest, walk-forward backtest, next-election forecast), print the results
real: install
	$(BIN)/python -m election_assets.real_mode

## replay: publish a past election night's county results to NATS JetStream (YEAR=2008..2020, SPEED msgs/s, 0=max)
replay: install
	$(BIN)/python -m election_assets.live.replay --year $(YEAR) --speed $(SPEED)

## live: the live updater, following ELECTION_LIVE_YEAR (2024) on NATS until stopped; metrics on :9108/metrics
live: install
	$(BIN)/python -m election_assets.live.updater

## live-demo: replay a past election night (YEAR=2008..2020) through the live updater, print and score it
live-demo: install
	$(BIN)/python -m election_assets.live.demo --year $(YEAR) --speed $(LIVE_SPEED)

## test: run the whole test suite (the fast unit tests, the whole-graph tests and deployment_tests/)
test: install
	$(BIN)/python -m pytest

## quick: the fast unit tests only, without the whole-graph and deployment tests (pytest -m "not slow")
quick: install
	$(BIN)/python -m pytest -m "not slow"

## ui: the Dagster UI with the daemon (schedules, sensors) on http://127.0.0.1:$(UI_PORT) (default 3000)
# dg dev runs the project's code location in the project's .venv, which it wants to see as the active environment.
ui: install
	VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dg dev --host 127.0.0.1 --port $(UI_PORT)

## serve: the prediction API on 127.0.0.1:$(PORT) (default 8000), serving the champion `make demo` published in data/model_store
# ELECTION_DATA_DIR / ELECTION_MODEL_STORE move the store (see README, Prediction API).
serve: install
	PORT=$(PORT) $(BIN)/python -m election_api

## serve-real: the same API in real mode (county rows), serving the model `make real` published in data/real_model_store
serve-real: install
	ELECTION_API_MODE=real PORT=$(PORT) $(BIN)/python -m election_api

## lint: ruff check and ruff format --check on the code, the tests, benchmarks, scripts and conftest.py
lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

## clean: remove the generated data (data/) and the local Dagster instance (.dagster_home); .venv stays
clean:
	rm -rf data .dagster_home
