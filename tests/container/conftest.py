"""Fixtures for the container tests: the sample model built into a temporary folder, and real
server processes started exactly as the image starts them (SERVE_COMMAND), on free 127.0.0.1 ports.
Every process a test starts is stopped at teardown."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLERS_DIR = Path(__file__).resolve().parent / "handlers"
EXAMPLES_DIR = REPO_ROOT / "model_containers" / "examples"
# The image's command (Dockerfile ENTRYPOINT + CMD); test_dockerfile.py checks they are the same.
SERVE_COMMAND = ["python", "-m", "twinserve_serving", "serve"]
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build output of build_sample_model.py: <dir>/model/{model.onnx,metadata.json}, <dir>/model.tar.gz."""
    out = tmp_path_factory.mktemp("sample-model")
    subprocess.run([sys.executable, str(REPO_ROOT / "model_containers/sample_model/build_sample_model.py"),
                    "--out", str(out)], check=True, capture_output=True)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Reply:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self.body = response.read()

    def json(self):
        return json.loads(self.body)


class ServerProcess:
    def __init__(self, env: dict[str, str], log_path: Path, extra_args: list[str]) -> None:
        self.port = int(env["SAGEMAKER_BIND_TO_PORT"])
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen([sys.executable, *SERVE_COMMAND[1:], *extra_args], env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)

    def connection(self, timeout: float = 10) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None, connection: http.client.HTTPConnection | None = None) -> Reply:
        own = connection is None
        connection = connection or self.connection()
        try:
            connection.request(method, path, body=body, headers=headers or {})
            return Reply(connection.getresponse())
        finally:
            if own:
                connection.close()

    def score(self, payload, path: str = "/invocations", **headers: str) -> Reply:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        named = {k.replace("_", "-"): v for k, v in headers.items()}
        if not any(k.lower() == "content-type" for k in named):
            named["Content-Type"] = "application/json"
        return self.request("POST", path, body, named)

    def wait_until(self, path: str, status: int = 200, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                if self.request("GET", path).status == status:
                    return
            except OSError:
                pass
            time.sleep(0.01)
        raise AssertionError(f"{path} did not answer {status} within {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict]:
        return [json.loads(line) for line in self.log_text().splitlines() if line.startswith("{")]

    def terminate(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if not self._log.closed:
            self._log.close()


@pytest.fixture
def start_server(iris_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """start_server(env overrides..., wait="/ping"|"/live"|None, args=[...]) -> ServerProcess."""
    started: list[ServerProcess] = []

    def start(env: dict[str, str] | None = None, wait: str | None = "/ping", args: list[str] | None = None) -> ServerProcess:
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SAGEMAKER_", "AZUREML_", "TWINSERVE_", "SCORING_", "WORKER_COUNT"))}
        full_env.update({"SAGEMAKER_BIND_TO_PORT": str(free_port()), "TWINSERVE_HOST": "127.0.0.1",
                         "TWINSERVE_MODEL_DIR": str(iris_model / "model"), "PYTHONUNBUFFERED": "1"})
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
    env.update({"SAGEMAKER_BIND_TO_PORT": str(free_port()), "TWINSERVE_HOST": "127.0.0.1",
                "TWINSERVE_MODEL_DIR": str(iris_model / "model")})
    server = ServerProcess(env, tmp_path_factory.mktemp("server") / "server.log", [])
    try:
        server.wait_until("/ping")
        yield server
    finally:
        server.stop()
