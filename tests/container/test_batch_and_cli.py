"""Batch mode (one output per input, errors per file, nothing lost) and the `twinserve local` /
`twinserve batch` commands registered by add_container_commands."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
from serving_harness import EXAMPLES_DIR, IRIS_ROWS, REPO_ROOT, free_port
from serving_harness import TWINSERVE_CLI as CLI

from twinserve.container_commands import add_container_commands


@pytest.fixture
def batch_inputs(tmp_path):
    inputs = tmp_path / "in"
    (inputs / "nested").mkdir(parents=True)
    (inputs / "a.json").write_text(json.dumps({"instances": IRIS_ROWS}))
    (inputs / "b.csv").write_text("5.1,3.5,1.4,0.2\n")
    (inputs / "nested" / "c.json").write_text(json.dumps([6.7, 3.0, 5.2, 2.3]))
    (inputs / "broken.json").write_text('{"instances": [[1, 2')
    (inputs / "picture.png").write_bytes(b"\x89PNG")
    return inputs


def _run_batch(iris_model, inputs, outputs, *extra):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "twinserve_serving",
            "batch",
            str(inputs),
            str(outputs),
            "--model-dir",
            str(iris_model / "model"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )


def test_batch_writes_one_output_per_input_and_reports_bad_files(iris_model, batch_inputs, tmp_path):
    outputs = tmp_path / "out"
    before = {p: p.read_bytes() for p in batch_inputs.rglob("*") if p.is_file()}
    result = _run_batch(iris_model, batch_inputs, outputs)
    assert result.returncode == 1, result.stdout + result.stderr  # some files failed, the others are scored
    assert [p["label"] for p in json.loads((outputs / "a.json.out").read_text())["predictions"]] == [
        "setosa",
        "virginica",
    ]
    assert json.loads((outputs / "b.csv.out").read_text())["predictions"][0]["label"] == "setosa"
    assert json.loads((outputs / "nested/c.json.out").read_text())["predictions"][0]["label"] == "virginica"
    broken = json.loads((outputs / "broken.json.error.json").read_text())
    assert broken["status"] == 400 and "malformed JSON" in broken["error"]
    assert json.loads((outputs / "picture.png.error.json").read_text())["status"] == 415
    manifest = json.loads((outputs / "_manifest.json").read_text())
    assert (manifest["files"], manifest["succeeded"], manifest["failed"]) == (5, 3, 2)
    assert sorted(r["input"] for r in manifest["results"]) == sorted(
        p.relative_to(batch_inputs).as_posix() for p in before
    )  # nothing lost
    assert before == {p: p.read_bytes() for p in batch_inputs.rglob("*") if p.is_file()}  # inputs untouched
    assert not list(outputs.rglob(".*partial"))


def test_a_rerun_into_the_same_folder_leaves_exactly_one_outcome_per_input(iris_model, batch_inputs, tmp_path):
    outputs = tmp_path / "out"
    assert _run_batch(iris_model, batch_inputs, outputs).returncode == 1
    (batch_inputs / "a.json").write_text('{"instances": [[1, 2')  # scored before, fails now
    (batch_inputs / "broken.json").write_text(json.dumps({"instances": IRIS_ROWS}))  # failed before, scores now
    assert _run_batch(iris_model, batch_inputs, outputs).returncode == 1
    assert (outputs / "a.json.error.json").is_file() and not (outputs / "a.json.out").exists()
    assert (outputs / "broken.json.out").is_file() and not (outputs / "broken.json.error.json").exists()


def test_batch_all_good_exits_0_with_csv_output(iris_model, batch_inputs, tmp_path):
    for bad in ("broken.json", "picture.png"):
        (batch_inputs / bad).unlink()
    result = _run_batch(iris_model, batch_inputs, tmp_path / "out", "--accept", "text/csv")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "out" / "a.json.out").read_text().splitlines()[1].startswith("virginica,")


def test_batch_with_an_azure_score_py(iris_model, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "rows.json").write_text(json.dumps({"data": IRIS_ROWS}))
    env_run = subprocess.run(
        [
            sys.executable,
            "-c",
            CLI,
            "batch",
            str(inputs),
            str(tmp_path / "out"),
            "--model-dir",
            str(iris_model / "model"),
            "--handler",
            str(EXAMPLES_DIR / "azure_score" / "score.py"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert env_run.returncode == 0, env_run.stdout + env_run.stderr
    assert json.loads((tmp_path / "out" / "rows.json.out").read_text())["predictions"] == ["setosa", "virginica"]
    assert "1 files, 1 scored, 0 failed" in env_run.stdout


def test_batch_with_an_unloadable_model_exits_2(tmp_path, batch_inputs):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "twinserve_serving",
            "batch",
            str(batch_inputs),
            str(tmp_path / "out"),
            "--model-dir",
            str(empty),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "no .onnx model found" in result.stdout


def test_commands_are_registered_with_func_defaults():
    parser = argparse.ArgumentParser(prog="twinserve")
    add_container_commands(parser.add_subparsers(dest="command"))
    local = parser.parse_args(["local", "--port", "9000", "--workers", "2"])
    assert (local.port, local.workers, local.model_dir) == (9000, 2, None) and callable(local.func)
    batch = parser.parse_args(["batch", "in", "out", "--content-type", "text/csv"])
    assert (str(batch.input_dir), str(batch.output_dir), batch.content_type) == ("in", "out", "text/csv")
    assert callable(batch.func)


def test_twinserve_local_serves_the_model_tar_gz_prints_a_working_curl_and_drains_on_sigterm(iris_model, tmp_path):
    port = free_port()
    log = tmp_path / "local.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", CLI, "local", "--port", str(port), "--model-dir", str(iris_model / "model.tar.gz")],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
    try:
        deadline = time.monotonic() + 15
        while "try:" not in log.read_text() or "model_loaded" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        text = log.read_text()
        assert f"http://127.0.0.1:{port}" in text
        curl = text.split("try:", 1)[1].splitlines()[0].strip()
        assert curl.startswith("curl ")
        if shutil.which("curl"):
            answer = subprocess.run(shlex.split(curl), capture_output=True, text=True, timeout=10).stdout
            assert json.loads(answer)["predictions"][0]["label"] == "setosa"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_hidden_files_and_folders_are_not_inputs(iris_model, batch_inputs, tmp_path):
    for bad in ("broken.json", "picture.png"):
        (batch_inputs / bad).unlink()
    (batch_inputs / ".git").mkdir()
    (batch_inputs / ".git" / "config").write_text("[core]\n")
    (batch_inputs / ".notes.json").write_text("{}")
    result = _run_batch(iris_model, batch_inputs, tmp_path / "out")
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert sorted(r["input"] for r in manifest["results"]) == ["a.json", "b.csv", "nested/c.json"]
