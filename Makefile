# cryptoai front door. `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The main job's offline default: two years of synthetic BTC/USDT hourly candles.
SOURCE ?= synthetic
SYMBOL ?= BTC/USDT
TIMEFRAME ?= 1h
START ?= 2023-01-01
END ?= 2025-01-01
# The main job's experiments (full runs); JOBS>1 runs configs in parallel.
EXPERIMENTS ?= configs/experiments/logreg_baseline.yaml configs/experiments/xgboost.yaml
JOBS ?= 1

.PHONY: help setup run experiments-smoke test test-fast lint format notebooks-sync mlflow-ui optuna-dashboard lab bench serve clean

help:
	@echo "make run        set up and run the main job offline (synthetic data, baseline experiments)"
	@echo "make test       set up, lint and run the test suite"
	@echo "make test-fast  the edit loop: lint and the tests not marked slow (under 2 minutes)"
	@echo "make notebooks-sync  pair each notebook with its .py twin (edit either; run after)"
	@echo "make lint       ruff check + format check"
	@echo "make mlflow-ui  MLflow UI on http://127.0.0.1:5000 over the local mlflow.db"
	@echo "make optuna-dashboard  Optuna dashboard on http://127.0.0.1:8080 over optuna.db"
	@echo "make lab        JupyterLab on the notebooks"
	@echo "make bench      speed benchmarks against peer libraries (writes docs/performance.md)"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-installs only when the pins or the package metadata change, so repeated runs are fast.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 > /dev/null
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/cryptoai fetch --source $(SOURCE) --symbol $(SYMBOL) --timeframe $(TIMEFRAME) \
		--start $(START) --end $(END) --no-progress
	$(VENV)/bin/cryptoai validate --symbol $(SYMBOL) --timeframe $(TIMEFRAME) \
		--report docs/data_quality.md --eda-dir docs/eda
	$(PY) scripts/run_experiments.py $(EXPERIMENTS) --jobs $(JOBS) --no-progress

experiments-smoke: setup
	$(PY) scripts/run_experiments.py configs/experiments/*.yaml --smoke --no-progress

test: setup lint
	$(PY) -m pytest -q

# The edit loop: everything except the tests marked slow (notebooks, servers, sequence models),
# on both cores (make test stays sequential: its servers and kernels are heavy enough alone).
test-fast: setup lint
	$(PY) -m pytest -q -m "not slow" -n 2

# Either side of a pair may be the one edited: jupytext keeps the newer and rewrites the other.
notebooks-sync: setup
	$(VENV)/bin/jupytext --sync notebooks/[0-9]*.ipynb

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

mlflow-ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db \
		--default-artifact-root ./mlartifacts --host 127.0.0.1 --port 5000

# The optimization studies (`cryptoai optimize`); OPTUNA_STORAGE may point at PostgreSQL.
OPTUNA_STORAGE ?= $(if $(CRYPTOAI_OPTUNA_STORAGE),$(CRYPTOAI_OPTUNA_STORAGE),sqlite:///optuna.db)
optuna-dashboard: setup
	$(VENV)/bin/optuna-dashboard $(OPTUNA_STORAGE) --host 127.0.0.1 --port 8080

# Containers run as root; JupyterLab refuses root unless told.
lab: setup
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root,)

# The prediction service on a registered model (docs/serving.md).
MODEL ?= models:/btc-direction@champion
serve: setup
	$(VENV)/bin/cryptoai serve --model $(MODEL) --host 127.0.0.1 --port 8000

bench: setup
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
