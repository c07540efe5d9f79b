# Two commands for a fresh machine (see README.md):
#   make demo   - create .venv, install sciflow, run the quickstart workflow and two methods on shipped weights and data
#   make test   - create .venv, install sciflow with its test extras, run the whole test suite
# torch comes first, pinned, so that pip keeps the CPU build on disk instead of pulling a multi-GB CUDA build.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
EXTRAS ?= dev,chem,md,robots,render

.PHONY: demo test venv install bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"

venv: $(BIN)/python

install: venv
	$(BIN)/python -m pip install -q "$(TORCH)" -e ".[$(EXTRAS)]"

demo: install
	$(BIN)/sciflow run workflows/quickstart.yaml
	$(BIN)/sciflow run workflows/tsgen.yaml
	$(BIN)/sciflow run workflows/unbinding.yaml

test: install
	$(BIN)/python -m pytest tests

# Benchmarks compare with TorchCFM; its own requirements pull torchvision and a CUDA torch, so install it bare.
bench: install
	$(BIN)/python -m pip install -q --no-deps torchcfm torchdyn torchdiffeq

clean:
	rm -rf $(VENV) runs outputs
