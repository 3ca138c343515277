"""Health tells the truth while loading and after a failed load; SIGTERM drains; several workers."""

from __future__ import annotations

import json
import signal
import threading
import time

from serving_harness import HANDLERS_DIR, IRIS_ROWS

BEHAVIOURS = str(HANDLERS_DIR / "behaviours.py")


def test_not_ready_while_the_model_loads(start_server):
    server = start_server({"TWINSERVE_HANDLER": BEHAVIOURS, "TEST_LOAD_SLEEP_S": "1.5"}, wait="/live")
    for path in ("/ping", "/ready", "/v2/health/ready"):
        reply = server.request("GET", path)
        assert reply.status == 503 and "still loading" in reply.json()["error"], path
    assert server.request("GET", "/live").json() == {"status": "alive", "model": "loading"}
    scored = server.score({"echo": 1})
    assert scored.status == 503 and scored.json()["code"] == "model_not_ready"
    server.wait_until("/ping")
    assert server.request("GET", "/ready").status == 200
    assert server.score({"echo": 1}).status == 200


def test_not_ready_after_a_failed_load_but_alive_with_the_reason(start_server):
    server = start_server({"TWINSERVE_HANDLER": BEHAVIOURS, "TEST_LOAD_FAIL": "1"}, wait="/live")
    deadline = time.monotonic() + 10
    while "model_load_failed" not in server.log_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    for path in ("/ping", "/ready"):
        reply = server.request("GET", path)
        assert reply.status == 503 and "weights are corrupt" in reply.json()["error"], path
    assert server.request("GET", "/live").status == 200
    assert server.score({"echo": 1}).status == 503
    failure = [r for r in server.log_records() if r["event"] == "model_load_failed"][0]
    assert "Traceback" in failure["traceback"]


def test_missing_model_fails_health_with_the_path(start_server, tmp_path):
    server = start_server({"TWINSERVE_MODEL_DIR": str(tmp_path / "empty")}, wait="/live")
    server.wait_until("/ping", status=503)
    time.sleep(0.3)
    assert "no .onnx model found" in server.request("GET", "/ready").json()["error"]


def _wait_for_file(path, timeout=10):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_sigterm_finishes_in_flight_requests_then_exits_0(start_server, tmp_path):
    marker = tmp_path / "started"
    server = start_server({"TWINSERVE_HANDLER": BEHAVIOURS, "TEST_STARTED_MARKER": str(marker)})
    idle = server.connection()  # an idle keep-alive connection must not hold up the exit
    assert server.request("GET", "/ping", connection=idle).status == 200
    results = {}
    slow = threading.Thread(target=lambda: results.update(reply=server.score({"sleep": 1.0, "echo": "done"})))
    slow.start()
    _wait_for_file(marker)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(timeout=25)
    drained_in = time.monotonic() - started
    slow.join(5)
    assert code == 0
    assert results["reply"].status == 200 and results["reply"].json()["echo"] == "done"
    assert results["reply"].headers["connection"] == "close"
    assert drained_in < 10  # far inside SageMaker's 30 s before SIGKILL
    try:
        refused = server.request("GET", "/ping").status
    except OSError:
        refused = None
    assert refused is None  # no longer accepting
    events = [r["event"] for r in server.log_records()]
    assert events[-1] == "stopped" and events.index("stop_requested") < len(events) - 1


def test_sigterm_on_an_idle_server_exits_0_promptly(start_server):
    server = start_server()
    started = time.monotonic()
    assert server.terminate() == 0
    assert time.monotonic() - started < 5


def test_several_workers_serve_and_drain(start_server):
    server = start_server({"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    pids = set()
    for _ in range(40):
        reply = server.score({"instances": IRIS_ROWS})
        assert reply.status == 200, (reply.body, server.log_text())
    for record in server.log_records():
        if record["event"] == "request":
            pids.add(record["pid"])
    assert len(pids) >= 1  # which worker accepts is the kernel's choice; both are up:
    loaded = [r for r in server.log_records() if r["event"] == "model_loaded"]
    deadline = time.monotonic() + 10
    while len(loaded) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        loaded = [r for r in server.log_records() if r["event"] == "model_loaded"]
    assert len({r["pid"] for r in loaded}) == 2
    assert server.terminate() == 0
    assert sum(1 for r in server.log_records() if r["event"] == "stopped") == 2


def test_configuration_errors_exit_2_naming_the_variable(start_server):
    server = start_server({"SAGEMAKER_MODEL_SERVER_WORKERS": "many"}, wait=None)
    assert server.process.wait(timeout=10) == 2
    assert "SAGEMAKER_MODEL_SERVER_WORKERS='many' is not an integer" in server.log_text()


def test_startup_log_states_the_effective_settings(start_server):
    server = start_server({"WORKER_COUNT": "1", "TWINSERVE_THREADS": "3", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "12"})
    listening = [r for r in server.log_records() if r["event"] == "listening"][0]
    assert (listening["threads"], listening["timeout_s"], listening["port"]) == (3, 12.0, server.port)
    json.dumps(listening)


def test_a_worker_that_dies_is_replaced(start_server):
    import os

    server = start_server({"TWINSERVE_WORKERS": "2"})
    deadline = time.monotonic() + 10
    while len({r["pid"] for r in server.log_records() if r["event"] == "model_loaded"}) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victim = [r["pid"] for r in server.log_records() if r["event"] == "model_loaded"][0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while len({r["pid"] for r in server.log_records() if r["event"] == "model_loaded"}) < 3:
        assert time.monotonic() < deadline, server.log_text()
        time.sleep(0.05)
    assert any(r["event"] == "worker_died" and r["worker_pid"] == victim for r in server.log_records())
    for _ in range(10):
        assert server.score({"instances": IRIS_ROWS}).status == 200
    assert server.terminate() == 0


def test_workers_drain_and_exit_when_the_supervisor_is_killed(start_server):
    import os

    server = start_server({"TWINSERVE_WORKERS": "2"})
    deadline = time.monotonic() + 10
    while len({r["pid"] for r in server.log_records() if r["event"] == "model_loaded"}) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    workers = {r["pid"] for r in server.log_records() if r["event"] == "model_loaded"}
    server.process.kill()  # the supervisor only: SIGKILL cannot be forwarded
    server.process.wait()
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") and "zombie" not in open(f"/proc/{pid}/status").read() for pid in workers):
        assert time.monotonic() < deadline, "workers outlived their supervisor"
        time.sleep(0.1)
