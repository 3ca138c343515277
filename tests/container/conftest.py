"""Fixtures for the container tests: the sample model built into a temporary folder, and real
server processes started exactly as the image starts them (SERVE_COMMAND), on free 127.0.0.1 ports.
Every process a test starts is stopped at teardown."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_harness import REPO_ROOT, ServerProcess, free_port


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build output of build_sample_model.py: <dir>/model/{model.onnx,metadata.json}, <dir>/model.tar.gz."""
    out = tmp_path_factory.mktemp("sample-model")
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "model_containers/sample_model/build_sample_model.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture
def start_server(iris_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """start_server(env overrides..., wait="/ping"|"/live"|None, args=[...]) -> ServerProcess."""
    started: list[ServerProcess] = []

    def start(
        env: dict[str, str] | None = None, wait: str | None = "/ping", args: list[str] | None = None
    ) -> ServerProcess:
        full_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SAGEMAKER_", "AZUREML_", "TWINSERVE_", "SCORING_", "WORKER_COUNT"))
        }
        full_env.update(
            {
                "SAGEMAKER_BIND_TO_PORT": str(free_port()),
                "TWINSERVE_HOST": "127.0.0.1",
                "TWINSERVE_MODEL_DIR": str(iris_model / "model"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        full_env.update(env or {})
        server = ServerProcess(full_env, tmp_path_factory.mktemp("server") / "server.log", args or [])
        started.append(server)
        if wait:
            server.wait_until(wait)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def iris_server(iris_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One default-handler server shared by a test module (read-only tests)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "AZUREML_", "TWINSERVE_"))}
    env.update(
        {
            "SAGEMAKER_BIND_TO_PORT": str(free_port()),
            "TWINSERVE_HOST": "127.0.0.1",
            "TWINSERVE_MODEL_DIR": str(iris_model / "model"),
        }
    )
    server = ServerProcess(env, tmp_path_factory.mktemp("server") / "server.log", [])
    try:
        server.wait_until("/ping")
        yield server
    finally:
        server.stop()
