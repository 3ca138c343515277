"""The image on AWS Lambda (behind the Lambda Web Adapter), without Lambda: the real server in an
environment like an execution environment's, and lambda mode's settings (lambda_settings.py).

Lambda: a read-only file system except /tmp (HOME unwritable), no /dev/shm, one request per
environment, the process frozen (SIGSTOP-like) between invocations, SIGTERM then SIGKILL ~500 ms
later, 10 s init. The adapter polls AWS_LWA_READINESS_CHECK_PATH and forwards each invocation to
127.0.0.1:AWS_LWA_PORT over a pooled keep-alive connection."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from serving_harness import HANDLERS_DIR, IRIS_ROWS, free_port

from twinserve_serving import lambda_settings, server
from twinserve_serving.config import ServerConfig
from twinserve_serving.routes import DEFAULT_PORT, SAGEMAKER_PING_PATH

LAMBDA_PROBE = str(HANDLERS_DIR / "lambda_probe.py")
SHUTDOWN_BOUND_S = 2.0
"""How long the server may take to exit after SIGTERM with nothing in flight. Lambda gives the runtime
~500 ms before SIGKILL (the drain waits at most 0.4 s); 2 s keeps the test free of this machine's load."""


def _lambda_env(port: int, **extra: str) -> dict[str, str]:
    return {"AWS_LAMBDA_FUNCTION_NAME": "twinserve-iris-dev", **lambda_settings.lambda_environment(port), **extra}


def _read_only_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    for path in sorted(target.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    target.chmod(0o555)
    return target


def _snapshot(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


# -- the settings the Lambda function gets ----------------------------------------------------------------


def test_lambda_environment_names_the_adapter_and_server_settings_that_agree():
    env = lambda_settings.lambda_environment()
    assert env["AWS_LWA_PORT"] == env["SAGEMAKER_BIND_TO_PORT"] == str(DEFAULT_PORT)
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == SAGEMAKER_PING_PATH
    # only 2xx is ready: /ping answers 503 while the model loads and after a failed load
    assert env["AWS_LWA_READINESS_CHECK_HEALTHY_STATUS"] == "200-299"
    assert "AWS_LWA_READINESS_CHECK_MIN_UNHEALTHY_STATUS" not in env  # removed in the adapter's 1.0
    assert env["AWS_LWA_ASYNC_INIT"] == "true"
    assert env["TWINSERVE_WORKERS"] == env["TWINSERVE_THREADS"] == "1"
    custom = lambda_settings.lambda_environment(9000, model_dir="/opt/model")
    assert custom["AWS_LWA_PORT"] == custom["SAGEMAKER_BIND_TO_PORT"] == "9000"
    assert custom["TWINSERVE_MODEL_DIR"] == "/opt/model"
    with pytest.raises(ValueError, match="port must be 1..65535"):
        lambda_settings.lambda_environment(0)


def test_the_server_reads_the_function_environment_as_lambda_mode():
    config = ServerConfig.from_env(lambda_settings.lambda_environment(9000))
    assert config.lambda_mode and config.port == 9000
    assert (config.workers, config.threads) == (1, 1)
    assert config.keepalive_timeout_s is None  # idle connections survive the freeze between invocations
    assert config.drain_timeout_s == lambda_settings.LAMBDA_DRAIN_TIMEOUT_S < 0.5


def test_lambda_mode_is_detected_forces_one_worker_and_keeps_explicit_settings():
    detected = ServerConfig.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f", "WORKER_COUNT": "4"})
    assert detected.lambda_mode and detected.workers == 1 and detected.threads == 1
    assert ServerConfig.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f"}, workers=3).workers == 1
    explicit = ServerConfig.from_env(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "f",
            "TWINSERVE_THREADS": "2",
            "TWINSERVE_KEEPALIVE_TIMEOUT_S": "30",
            "TWINSERVE_DRAIN_TIMEOUT_S": "0.2",
        }
    )
    assert (explicit.threads, explicit.keepalive_timeout_s, explicit.drain_timeout_s) == (2, 30.0, 0.2)
    off = ServerConfig.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f", "TWINSERVE_LAMBDA": "false", "WORKER_COUNT": "2"})
    assert not off.lambda_mode and off.workers == 2 and off.keepalive_timeout_s == 75.0
    plain = ServerConfig.from_env({})
    assert not plain.lambda_mode and plain.threads == 4 and plain.drain_timeout_s == 25.0


def test_the_worker_supervisor_is_never_used_in_lambda_mode(monkeypatch):
    class NoSupervisor:
        def __init__(self, config):
            raise AssertionError("the pre-fork supervisor must not run on Lambda")

    served = []
    monkeypatch.setattr(server, "WorkerSupervisor", NoSupervisor)
    monkeypatch.setattr(server, "_run", lambda srv, app, on_listening: served.append(srv) or srv.server_close() or 0)
    monkeypatch.setattr(server.lambda_settings, "prepare_writable_dirs", lambda: {})
    monkeypatch.setattr(sys, "dont_write_bytecode", sys.dont_write_bytecode)
    # even a config built past from_env's correction (workers=4) runs one in-process server
    config = replace(ServerConfig.from_env({"TWINSERVE_LAMBDA": "1"}, host="127.0.0.1", port=0), workers=4)
    assert server.serve(config) == 0 and len(served) == 1
    assert sys.dont_write_bytecode


def test_writable_dirs_point_home_and_caches_at_tmpdir(tmp_path):
    env = {"TMPDIR": str(tmp_path), "HOME": "/nonexistent", "HF_HOME": "/data/hf"}
    changed = lambda_settings.prepare_writable_dirs(env)
    base = tmp_path / "twinserve"
    assert env["HOME"] == str(base / "home") and (base / "home").is_dir()
    assert env["HF_HOME"] == "/data/hf" and "HF_HOME" not in changed  # set by the function: kept
    for name in set(lambda_settings.CACHE_VARIABLES) - {"HF_HOME"}:
        assert Path(env[name]).is_dir() and Path(env[name]).is_relative_to(base), name
    assert env["JOBLIB_MULTIPROCESSING"] == "0"


# -- the real server in a Lambda-like environment ----------------------------------------------------------


def test_the_server_under_lambdas_constraints(start_server, iris_model, tmp_path):
    """Read-only model and HOME, only TMPDIR writable: health 503 -> 200, predictions, a freeze and
    thaw with the adapter's keep-alive connection open, then SIGTERM exits 0 at once.

    This machine runs the tests as root, for whom permission bits do not bind, so "read-only" is
    checked as "nothing was written there" rather than by an EACCES."""
    model = _read_only_copy(iris_model / "model", tmp_path / "model")
    home = tmp_path / "home"
    home.mkdir(mode=0o555)
    writable = tmp_path / "tmp"
    writable.mkdir()
    report = writable / "env.json"
    before = {"model": _snapshot(model), "home": _snapshot(home)}
    port = free_port()
    env = _lambda_env(
        port,
        TWINSERVE_HANDLER=LAMBDA_PROBE,
        TWINSERVE_MODEL_DIR=str(model),
        TEST_LOAD_SLEEP_S="2",
        TEST_ENV_REPORT=str(report),
        HOME=str(home),
        TMPDIR=str(writable),
        # whatever this test run inherited: empty is unset, so lambda mode chooses every cache folder
        **{name: "" for name in (*lambda_settings.CACHE_VARIABLES, *lambda_settings.NO_SUBPROCESS_VARIABLES)},
    )
    srv = start_server(env, wait="/live")

    # init: the adapter's readiness check sees 503 while the model loads, then 200
    assert srv.request("GET", "/ping").status == 503, srv.log_text()
    srv.wait_until("/ping", 200)
    listening = next(r for r in srv.log_records() if r["event"] == "listening")
    assert listening["lambda_mode"] is True and listening["workers"] == 1 and listening["threads"] == 1
    assert listening["keepalive_timeout_s"] is None

    # what the libraries saw when the model loaded: HOME and every cache under TMPDIR, joblib in-process
    seen = json.loads(report.read_text())
    for name in ("HOME", *lambda_settings.CACHE_VARIABLES):
        assert Path(seen[name]).is_relative_to(writable), (name, seen[name], srv.log_text())
    assert seen["JOBLIB_MULTIPROCESSING"] == "0"

    # an invocation, on the connection the adapter keeps open
    adapter = srv.connection()
    answer = srv.request(
        "POST", "/invocations", json.dumps({"instances": IRIS_ROWS}), {"Content-Type": "application/json"}, adapter
    )
    assert answer.status == 200 and len(answer.json()["predictions"]) == len(IRIS_ROWS)
    pooled = adapter.sock

    # the freeze between invocations, then the next invocation on the same connection and on a new one
    os.kill(srv.process.pid, signal.SIGSTOP)
    time.sleep(0.5)
    os.kill(srv.process.pid, signal.SIGCONT)
    again = srv.request(
        "POST", "/invocations", json.dumps({"instances": IRIS_ROWS[:1]}), {"Content-Type": "application/json"}, adapter
    )
    assert again.status == 200 and len(again.json()["predictions"]) == 1
    assert adapter.sock is pooled and adapter.sock is not None  # the same keep-alive socket
    assert srv.request("GET", "/ping").status == 200  # a new connection

    # one process: the pre-fork supervisor would have children
    assert not _children(srv.process.pid), srv.log_text()

    # shutdown: SIGTERM with an idle keep-alive connection open and nothing in flight
    started = time.monotonic()
    srv.process.send_signal(signal.SIGTERM)
    code = srv.process.wait(timeout=10)
    exited_in = time.monotonic() - started
    assert code == 0 and exited_in < SHUTDOWN_BOUND_S, (code, exited_in, srv.log_text())
    adapter.close()

    assert _snapshot(model) == before["model"] and _snapshot(home) == before["home"]
    assert (writable / "twinserve" / "home").is_dir()


def _children(pid: int) -> list[int]:
    children = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(status.parent.name))
    return children
