"""A model's own requirements (model_requirements.py, run by model_image/Dockerfile): found, rewritten
(mlflow -> mlflow-skinny), checked against the server's pins, installed with pip under a constraints
file; and the opt-in start-time install fails loudly without a network."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from twinserve_serving import model_requirements as mr

INSTALLED = {"numpy": "2.4.6", "onnxruntime": "1.31.1"}


def _mlflow_folder(root: Path, requirements: str) -> Path:
    model = root / "model"
    model.mkdir(parents=True)
    (model / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    (model / "requirements.txt").write_text(requirements)
    (model / "python_env.yaml").write_text(
        "python: 3.11.7\nbuild_dependencies:\n- pip==26.3\ndependencies:\n- -r requirements.txt\n"
    )
    return root


def test_mlflow_requirements_become_mlflow_skinny_at_the_same_version(tmp_path):
    _mlflow_folder(tmp_path, "mlflow==3.17.2\nscikit-learn==1.9.1  # the trainer's\ncloudpickle>=3\n")
    plan = mr.plan(tmp_path, installed=INSTALLED)
    assert plan.source == tmp_path / "model" / "python_env.yaml"
    assert plan.requirements == ["mlflow-skinny==3.17.2", "scikit-learn==1.9.1", "cloudpickle>=3"]
    assert plan.constraints == ["numpy==2.4.6", "onnxruntime==1.31.1"]
    assert any("mlflow -> mlflow-skinny" in note for note in plan.notes)


def test_the_handlers_requirements_come_first(tmp_path):
    _mlflow_folder(tmp_path, "mlflow==3.17.2\n")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "requirements.txt").write_text("requests==2.32.3\n")
    assert mr.plan(tmp_path, installed=INSTALLED).requirements == ["requests==2.32.3"]
    beside = tmp_path / "handler"
    beside.mkdir()
    (beside / "requirements.txt").write_text("six\n")
    assert mr.plan(tmp_path, str(beside / "score.py"), installed=INSTALLED).requirements == ["six"]


def test_no_requirements_is_nothing_to_do(tmp_path):
    assert mr.plan(tmp_path, installed=INSTALLED).source is None
    assert mr.main(["write", str(tmp_path), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "requirements.txt").read_text() == ""
    assert mr.main(["install", str(tmp_path / "out")]) == 0  # pip is not even started


@pytest.mark.parametrize(
    "line, message",
    [
        ("numpy<2", r"requirements.txt:1: 'numpy<2' conflicts with the server's numpy==2.4.6"),
        ("onnxruntime==1.20.0", "conflicts with the server's onnxruntime==1.31.1"),
        ("scikit-learn===", r"requirements.txt:1: 'scikit-learn===' is not a requirement"),
        (
            "--index-url http://example.invalid/simple",
            "pip option '--index-url http://example.invalid/simple' is not supported",
        ),
    ],
)
def test_a_bad_or_conflicting_requirement_is_refused_naming_it(tmp_path, line, message):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "requirements.txt").write_text(line + "\n")
    with pytest.raises(mr.RequirementError, match=message):
        mr.plan(tmp_path, installed=INSTALLED)


def test_compatible_server_pins_and_markers_pass(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "requirements.txt").write_text("numpy>=2\npywin32==306; sys_platform == 'win32'\n")
    plan = mr.plan(tmp_path, installed=INSTALLED)
    assert plan.requirements == ["numpy>=2"] and any("does not apply" in n for n in plan.notes)


def test_a_python_version_mismatch_is_a_warning(tmp_path):
    _mlflow_folder(tmp_path, "mlflow==3.17.2\n")
    (tmp_path / "model" / "python_env.yaml").write_text("python: 3.9.1\ndependencies:\n- -r requirements.txt\n")
    assert any("says Python 3.9.1" in n for n in mr.plan(tmp_path, installed=INSTALLED).notes)


def _wheel(folder: Path, name: str, requires: list[str]) -> None:
    """A minimal pure-Python wheel that installs nothing but its metadata and dependencies."""
    dist_info = f"{name}-1.0.dist-info"
    files = {
        f"{dist_info}/METADATA": "Metadata-Version: 2.1\nName: {}\nVersion: 1.0\n{}".format(
            name, "".join(f"Requires-Dist: {r}\n" for r in requires)
        ),
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},{len(text)}"
        for path, text in files.items()
    ] + [f"{dist_info}/RECORD,,"]
    with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")


@pytest.fixture
def offline_pip(tmp_path, monkeypatch):
    """pip with no configuration, no index (a refused loopback port) and a folder of test wheels."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    return wheels


def test_pip_honours_the_server_pins_and_names_the_conflicting_package(tmp_path, offline_pip):
    _wheel(offline_pip, "wantsoldnumpy", ["numpy<2"])
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "requirements.txt").write_text("wantsoldnumpy==1.0\n")
    plan = mr.plan(tmp_path)  # the versions installed here
    completed = mr.install(plan, tmp_path / "target", ("--find-links", str(offline_pip)))
    assert completed.returncode != 0
    assert "numpy" in completed.stdout + completed.stderr and "wantsoldnumpy" in completed.stdout + completed.stderr


def test_pip_installs_a_fitting_requirement(tmp_path, offline_pip):
    _wheel(offline_pip, "fits", [])
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "requirements.txt").write_text("fits==1.0\n")
    completed = mr.install(mr.plan(tmp_path), tmp_path / "target", ("--find-links", str(offline_pip), "--no-index"))
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "target" / "fits-1.0.dist-info").is_dir()


def test_the_command_line_exits_2_naming_a_conflict(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "requirements.txt").write_text("numpy==1.26.4\n")
    result = subprocess.run(
        [sys.executable, "-m", "twinserve_serving.model_requirements", "write", str(tmp_path), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "'numpy==1.26.4' conflicts with the server's numpy==" in result.stderr
    assert not (tmp_path / "out").exists()


def test_write_leaves_what_install_reads(tmp_path):
    _mlflow_folder(tmp_path / "m", "fits==1.0\n")
    assert mr.main(["write", str(tmp_path / "m"), str(tmp_path / "out")]) == 0
    written = mr.read(tmp_path / "out")
    assert written.requirements == ["fits==1.0"] and written.constraints[0].startswith("numpy==")


def test_start_time_install_without_a_network_fails_health_with_a_clear_log_line(start_server, iris_model, tmp_path):
    model_dir = shutil.copytree(iris_model / "model", tmp_path / "model")
    (model_dir / "code").mkdir()
    (model_dir / "code" / "requirements.txt").write_text("twinserve-no-such-package==1.0\n")
    env = {
        "TWINSERVE_MODEL_DIR": str(model_dir),
        "TWINSERVE_INSTALL_REQUIREMENTS": "true",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_FIND_LINKS": "",
    }
    server = start_server(env, wait="/live")
    deadline = time.monotonic() + 60  # pip gives up within seconds against a refused port
    while "requirements_install_failed" not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()
        time.sleep(0.05)
    reply = server.request("GET", "/ready")
    assert reply.status == 503 and "installing the model's requirements" in reply.json()["error"]
    assert "twinserve-no-such-package" in reply.json()["error"]
    assert server.request("GET", "/live").status == 200
    failure = [r for r in server.log_records() if r["event"] == "requirements_install_failed"]
    assert failure and failure[0]["requirements"] == ["twinserve-no-such-package==1.0"]
