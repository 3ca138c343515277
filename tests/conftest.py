"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
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


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def local_server(tmp_path_factory):
    """`twinserve local` on a free port, the iris sample (built by `make sample-model`)."""
    if not any((SAMPLE_MODEL_DIR / "model").glob("*")):
        pytest.fail("build/sample-model is missing: run `make sample-model` (make test does)")
    port = free_port()
    log = tmp_path_factory.mktemp("local") / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "AZUREML_", "TWINSERVE_"))}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "twinserve.cli",
                "local",
                "--model-dir",
                str(SAMPLE_MODEL_DIR / "model"),
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        give_up = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > give_up:
                pytest.fail(f"twinserve local did not become ready:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
