"""Fixtures shared by every test folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_MODEL_DIR = REPO_ROOT / "build" / "sample-model"
MLFLOW_SAMPLE_DIR = REPO_ROOT / "build" / "sample-models" / "mlflow"
BUILDER = REPO_ROOT / "model_containers/sample_model/build_sample_model.py"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_model() -> Path:
    """The sample iris model, built where deploy/twinserve.yaml and the examples point
    (build/sample-model), and its MLflow twin for the MLflow examples (build/sample-models/mlflow),
    as `make sample-model` builds them. The ONNX build is deterministic, so rebuilding never changes
    a hash; both are built only when missing."""
    archive = SAMPLE_MODEL_DIR / "model.tar.gz"
    if not archive.is_file() or not (SAMPLE_MODEL_DIR / "model" / "model.onnx").is_file():
        subprocess.run([sys.executable, str(BUILDER), "--out", str(SAMPLE_MODEL_DIR)], check=True)
    if not (MLFLOW_SAMPLE_DIR / "model" / "MLmodel").is_file():
        subprocess.run(
            [sys.executable, str(BUILDER), "--format", "mlflow", "--out", str(MLFLOW_SAMPLE_DIR)], check=True
        )
    return SAMPLE_MODEL_DIR
