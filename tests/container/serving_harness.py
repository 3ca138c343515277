"""Helpers for the container tests: the image's command, real server processes on free loopback
ports and their JSON logs. A uniquely named module (not conftest), so these imports can never
resolve to another test folder's conftest."""

from __future__ import annotations

import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLERS_DIR = Path(__file__).resolve().parent / "handlers"
EXAMPLES_DIR = REPO_ROOT / "model_containers" / "examples"
# The image's command (Dockerfile ENTRYPOINT + CMD); test_image.py checks they are the same.
SERVE_COMMAND = ["python", "-m", "twinserve_serving", "serve"]
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
# Runs `twinserve local|batch` through an argparse tree built like the `twinserve` CLI builds its own.
TWINSERVE_CLI = (
    "import argparse, sys; from twinserve.container_commands import add_container_commands; "
    "p = argparse.ArgumentParser(prog='twinserve'); add_container_commands(p.add_subparsers(dest='command')); "
    "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
)


# Set by build_and_test_images.py: servers then run from that built image (buildah run, chroot
# isolation, this machine's network) instead of from this checkout.
TEST_IMAGE = os.environ.get("TWINSERVE_TEST_IMAGE")
TEST_IMAGE_VARIANT = os.environ.get("TWINSERVE_TEST_IMAGE_VARIANT")  # core, formats, torch
_IMAGE_ENV_PREFIXES = ("SAGEMAKER_", "AZUREML_", "TWINSERVE_", "SCORING_", "WORKER_COUNT", "AML_", "TEST_")
_containers: dict[str, str] = {}


def image_command(env: dict[str, str]) -> list[str]:
    """``buildah run`` of the test image with the model folder mounted read-only at /opt/ml/model,
    as SageMaker does, and the server variables of ``env`` passed in."""
    if TEST_IMAGE not in _containers:
        name = subprocess.run(
            ["buildah", "from", "--pull=never", TEST_IMAGE], check=True, capture_output=True, text=True
        ).stdout.strip()
        _containers[TEST_IMAGE] = name
        atexit.register(subprocess.run, ["buildah", "rm", name], capture_output=True)
    mounts = []
    if env.get("TWINSERVE_MODEL_DIR"):
        # the image's user (10001) must read it: pytest's temporary folders are root-only
        staged = Path(tempfile.mkdtemp(prefix="twinserve-image-model-"))
        staged.chmod(0o755)
        atexit.register(shutil.rmtree, staged, True)
        shutil.copytree(env["TWINSERVE_MODEL_DIR"], staged / "model")
        for path in [staged / "model", *(staged / "model").rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        mounts = ["-v", f"{staged / 'model'}:/opt/ml/model:ro"]
        env = {**env, "TWINSERVE_MODEL_DIR": "/opt/ml/model"}
    variables = [f"--env={k}={v}" for k, v in env.items() if k.startswith(_IMAGE_ENV_PREFIXES)]
    return [
        "buildah",
        "run",
        "--isolation",
        "chroot",
        "--network",
        "host",
        *mounts,
        *variables,
        _containers[TEST_IMAGE],
        "--",
        *SERVE_COMMAND,
    ]


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
    def __init__(
        self, env: dict[str, str], log_path: Path, extra_args: list[str], command: list[str] | None = None
    ) -> None:
        """Runs the image's command from this checkout, or ``command`` (e.g. ``twinserve local``);
        with TWINSERVE_TEST_IMAGE set, the built image itself."""
        self.port = int(env["SAGEMAKER_BIND_TO_PORT"])
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.started_at = time.monotonic()
        if command is None:
            command = image_command(env) if TEST_IMAGE else [sys.executable, *SERVE_COMMAND[1:]]
        self.process = subprocess.Popen(
            [*command, *extra_args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            start_new_session=True,
        )  # so stop() can end worker processes too

    def connection(self, timeout: float = 10) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        connection: http.client.HTTPConnection | None = None,
    ) -> Reply:
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
        """Kill what is left of this server: the process and any worker processes it forked."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        if not self._log.closed:
            self._log.close()
