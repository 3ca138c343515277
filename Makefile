# The README's two commands: `make synth` (the main job) and `make test`. Both set up from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# checkov (the tests' second IaC scanner) pins packages that clash with .venv's: it gets a venv of its own
CHECKOV_VENV := build/checkov-venv
# Node 20 is end-of-life for jsii; its banner on every start is noise, not news.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 1

.PHONY: synth test lint examples setup sample-model bench image-test clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

synth: setup sample-model  ## cdk synth of every environment into cdk.out/ + Azure plans into pulumi.out/
	$(VENV)/bin/twinserve synth

test: setup lint  ## lint, then run the whole test suite
	$(PY) -m pytest

lint: setup  ## ruff: lint findings and unformatted files fail (pyproject.toml [tool.ruff])
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

examples: setup sample-model  ## synthesize every example of both clouds into examples.out/
	$(VENV)/bin/twinserve synth --spec 'examples/*/*.yaml' --cdk-out examples.out/aws --pulumi-out examples.out/azure

bench: setup sample-model  ## serving benchmark: our server beside Azure's, MLServer, KServe, BentoML, TorchServe (2 models), and per model format; ARGS=--quick for a short run
	$(PY) benchmarks/bench_serving.py $(ARGS)

image-test: setup  ## build the CPU images (core, formats, torch) with podman and run the contract tests against each (root)
	$(PY) tests/container/build_and_test_images.py

setup: $(VENV)/.stamp-python node_modules/.stamp $(CHECKOV_VENV)/.stamp  ## .venv with the Python packages + the pinned CDK CLI + checkov's own venv

$(VENV)/.stamp-python: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(CHECKOV_VENV)/.stamp: requirements-checkov.txt
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

sample-model: build/sample-model/model.tar.gz build/sample-models/mlflow/model/MLmodel  ## build the sample iris models (ONNX; MLflow for the examples)

build/sample-model/model.tar.gz: model_containers/sample_model/build_sample_model.py | $(VENV)/.stamp-python
	$(PY) model_containers/sample_model/build_sample_model.py --out build/sample-model

build/sample-models/mlflow/model/MLmodel: model_containers/sample_model/build_sample_model.py | $(VENV)/.stamp-python
	$(PY) model_containers/sample_model/build_sample_model.py --format mlflow --out build/sample-models/mlflow

clean:  ## remove generated output (keeps .venv and node_modules; `make setup` rebuilds build/checkov-venv)
	rm -rf cdk.out pulumi.out examples.out build
