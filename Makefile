# Every target sets up what it needs: a virtual environment in .venv (created and installed when missing or when
# pyproject.toml changed) and a project-local Dagster instance in .dagster_home.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home
PORT ?= 8000

.PHONY: demo real test ui serve serve-real lint clean install

install: $(INSTALLED) $(DAGSTER_HOME)/dagster.yaml

# The API's dependencies at the versions the API image pins (requirements/api.txt), so the tests run against them.
$(INSTALLED): pyproject.toml requirements/api.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' --constraint requirements/api.txt
	@touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

## demo: materialize the whole asset graph on the synthetic default, then print where the results are
demo: install
	$(BIN)/dagster job execute -m election_assets.definitions -a defs -j election_pipeline
	@echo
	@$(BIN)/python -m election_assets.summary

## real: materialize the real-mode graph (ingest, walk-forward backtest, next-election forecast), print the results
real: install
	$(BIN)/python -m election_assets.real_mode

## test: run the test suite
test: install
	$(BIN)/python -m pytest

## ui: the Dagster UI with the daemon (schedules, sensors) on http://127.0.0.1:3000
ui: install
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## serve: the prediction API on http://127.0.0.1:$(PORT) (default 8000), serving the champion `make demo` published
## in data/model_store (ELECTION_DATA_DIR / ELECTION_MODEL_STORE move it; see README, Prediction API)
serve: install
	PORT=$(PORT) $(BIN)/python -m election_api

## serve-real: the same API in real mode (county rows), serving the model `make real` published in data/real_model_store
serve-real: install
	ELECTION_API_MODE=real PORT=$(PORT) $(BIN)/python -m election_api

lint: install
	$(BIN)/ruff check election_assets election_api election_assets_tests election_api_tests benchmarks scripts
	$(BIN)/ruff format --check election_assets election_api election_assets_tests election_api_tests benchmarks scripts

clean:
	rm -rf data .dagster_home
