# `make train` / `make test` work on a machine with only python3 + make: the first call builds
# .venv from pyproject.toml, and it is rebuilt whenever pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MNIST_SOURCE ?= ../shared/data/MNIST
# test processes side by side (pytest-xdist); most tests start train.py & co. as real processes
TEST_WORKERS ?= 2

.PHONY: help install data train eval serve test test-fast lint format benchmark tensorboard clean

help:
	@echo "make install      create .venv and install the project with its extras (dev, loggers, deploy, serve, cluster)"
	@echo "make data         copy MNIST from $(MNIST_SOURCE) into data/ (offline staging)"
	@echo "make train        python train.py ARGS='...'   (e.g. make train ARGS='model=dense')"
	@echo "make eval         python eval.py ckpt_path=... (pass ARGS='ckpt_path=...')"
	@echo "make serve        the model on http://127.0.0.1:8000: page, JSON API, /health (ARGS='ckpt_path=...' or 'model_path=...onnx'; default: newest checkpoint)"
	@echo "make test         the whole test suite"
	@echo "make test-fast    the suite without the slow (whole-epoch) tests"
	@echo "make lint         ruff (lint + format check) and mypy, as CI runs them"
	@echo "make format       ruff: fix what it can and format the code"
	@echo "make benchmark    speed and recipe benchmark, prints a markdown table (ARGS='--experiments')"
	@echo "make tensorboard  TensorBoard on logs/"
	@echo "make clean        remove .venv, logs and caches"

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e ".[dev,loggers,deploy,serve,cluster]"
	touch $@

install: $(BIN)/.installed

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
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(ARGS)

test-fast: install data
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow" $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

benchmark: install data
	$(BIN)/python benchmarks/run.py $(ARGS)

tensorboard: install
	$(BIN)/tensorboard --logdir logs/

clean:
	rm -rf $(VENV) logs .pytest_cache
