# `make train` / `make test` work on a machine with only python3 + make: the first call builds .venv
# with exactly the versions (and hashes) in requirements.lock, and it is rebuilt whenever the lock changes.
# `make lock` moves the lock forward on purpose (uv pip compile, every extra, one lock for all platforms).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MNIST_SOURCE ?= ../shared/data/MNIST
# test processes side by side (pytest-xdist); most tests start train.py & co. as real processes
TEST_WORKERS ?= 2
# the groups' tests on one worker each; units in collection order, so that the `longest` tests (conftest.py) start first
XDIST = -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder
EXTRAS := dev,loggers,deploy,serve,cluster
UV := $(BIN)/uv
# a pip constraint file configured on this machine (e.g. the torch build it holds) also bounds the lock
PIP_CONSTRAINT_FILE := $(shell $(PYTHON) -m pip config list 2>/dev/null | sed -n "s/^.*\.constraint='\(.*\)'$$/\1/p" | head -1)
LOCK_ARGS = pyproject.toml --all-extras --generate-hashes --universal --python-version 3.11 --no-annotate \
	--custom-compile-command "make lock" $(if $(PIP_CONSTRAINT_FILE),-c $(PIP_CONSTRAINT_FILE))

.PHONY: help install lock lock-check data train eval serve test test-fast lint format benchmark tensorboard clean

help:
	@echo "make install      create .venv with the locked versions (requirements.lock) and the project, all extras"
	@echo "make lock         move requirements.lock forward to the newest versions pyproject.toml allows"
	@echo "make lock-check   fail if requirements.lock does not match pyproject.toml (CI runs it)"
	@echo "make data         copy MNIST from $(MNIST_SOURCE) into data/ (offline staging)"
	@echo "make train        python train.py ARGS='...'   (e.g. make train ARGS='model=dense')"
	@echo "make eval         python eval.py ckpt_path=... (pass ARGS='ckpt_path=...')"
	@echo "make serve        the model on http://127.0.0.1:8000: page, JSON API, /health (ARGS='ckpt_path=...' or 'model_path=...onnx'; default: newest checkpoint)"
	@echo "make test         the whole test suite"
	@echo "make test-fast    the suite without the slow (whole-epoch) tests"
	@echo "make lint         ruff (lint + format check), mypy and the import layers (import-linter), as CI runs them"
	@echo "make format       ruff: fix what it can and format the code"
	@echo "make benchmark    speed and recipe benchmark, prints a markdown table (ARGS='--experiments')"
	@echo "make tensorboard  TensorBoard on logs/"
	@echo "make clean        remove .venv, logs and caches"

$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --no-deps --no-build-isolation -e .
	touch $@

install: $(BIN)/.installed

# uv is in the dev extra, so the lock is compiled by the uv version it pins
lock: install
	$(UV) pip compile --upgrade $(LOCK_ARGS) -o requirements.lock

lock-check: install
	@tmp=$$(mktemp) && cp requirements.lock $$tmp && $(UV) pip compile --quiet $(LOCK_ARGS) -o $$tmp && \
	diff -u requirements.lock $$tmp && rm $$tmp || \
	{ echo "requirements.lock does not match pyproject.toml: run make lock and commit requirements.lock" >&2; exit 1; }

data:
	@if [ -d data/MNIST/raw ] && ls data/MNIST/raw/*ubyte* >/dev/null 2>&1; then \
		echo "data/MNIST/raw already present"; \
	elif [ -d "$(MNIST_SOURCE)/raw" ]; then \
		mkdir -p data/MNIST/raw && cp "$(MNIST_SOURCE)"/raw/*.gz data/MNIST/raw/ && echo "staged MNIST from $(MNIST_SOURCE)"; \
	else \
		echo "no MNIST at $(MNIST_SOURCE)/raw: train.py will try to download it"; \
	fi

train: install data
	$(BIN)/python train.py $(ARGS)

eval: install data
	$(BIN)/python eval.py $(ARGS)

serve: install
	$(BIN)/python serve.py $(if $(findstring _path,$(ARGS)),,ckpt_path=$$(ls -t logs/train/runs/*/checkpoints/epoch_*.ckpt 2>/dev/null | head -1)) $(ARGS)

test: install data
	$(BIN)/python -m pytest $(XDIST) --durations=20 $(ARGS)

test-fast: install data
	$(BIN)/python -m pytest $(XDIST) -m "not slow" $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

benchmark: install data
	$(BIN)/python benchmarks/run.py $(ARGS)

tensorboard: install
	$(BIN)/tensorboard --logdir logs/

clean:
	rm -rf $(VENV) logs .pytest_cache
