"""Adaptive batching (batching.py): merged model calls give each caller its own rows' answers, a bad
request fails alone, deadlines are honoured, the size limit holds, and it is off unless configured.

The in-process tests hold the model's first call on a gate so the other requests are queued before
any merging starts: which requests merge is then decided by the queue alone, never by timing.
No test here asserts on time; the benchmark measures it (benchmarks/bench_serving.py)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from serving_harness import IRIS_ROWS

from twinserve_serving import default_handler
from twinserve_serving.app import App, Request
from twinserve_serving.config import ConfigError, ServerConfig
from twinserve_serving.formats import Outputs
from twinserve_serving.handler import StagedHandler, load_handler
from twinserve_serving.payload import Batch, Signature, to_array

POISON = 666.0  # a row starting with this makes the fake model raise


class FakeModel:
    """Answers 10 x each row's first value; records the rows of every call; the first call waits
    for ``gate`` so the test can queue requests behind it."""

    merges_rows = True
    signature = Signature(width=2, dtype=np.float32)

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        """Set when the first call is inside the model (so a test can queue requests behind it)."""
        self.calls: list[int] = []
        self._lock = threading.Lock()

    def predict(self, batch: Batch) -> Outputs:
        array = to_array(batch, self.signature)
        with self._lock:
            first = not self.calls
            self.calls.append(len(array))
        if first:
            self.entered.set()
            assert self.gate.wait(10), "the test never opened the gate"
        if (array[:, 0] == POISON).any():
            raise ValueError("poisoned row")
        return Outputs({"y": array[:, 0] * 10})


class FakeHandler(StagedHandler):
    def __init__(self, model: FakeModel) -> None:
        super().__init__(default_handler, Path("."))
        self.fake = model

    def load(self) -> None:
        self.model = self.fake


def _app(model: FakeModel, **config) -> App:
    app = App(
        ServerConfig(**{"threads": 1, "batch_max_size": 8, "batch_max_delay_ms": 0, **config}), FakeHandler(model)
    )
    app.load_model()
    assert app.batcher is not None
    return app


def _score(app: App, rows: list) -> tuple[int, dict]:
    body = json.dumps({"instances": rows}).encode()
    response = app.dispatch(Request("POST", "/invocations", {"content-type": "application/json"}, body))
    return response.status, json.loads(response.body)


def _wait_queued(app: App, n: int) -> None:
    for _ in range(1000):
        if len(app.batcher._queue) >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"{len(app.batcher._queue)} requests queued, expected {n}")


def _queue_behind_the_gate(app: App, model: FakeModel, requests: list[list]) -> list:
    """Send one request that takes the model (held at the gate), queue ``requests`` behind it,
    open the gate; the answers in the order of ``requests``."""
    pool = ThreadPoolExecutor(len(requests) + 1)
    first = pool.submit(_score, app, [[0.5, 0.0]])
    for _ in range(1000):
        if model.calls:
            break
        time.sleep(0.01)
    futures = []
    for rows in requests:  # one at a time, so the queue order is the list's order
        futures.append(pool.submit(_score, app, rows))
        _wait_queued(app, len(futures))
    model.gate.set()
    assert first.result(10) == (200, {"predictions": [5.0]})
    answers = [f.result(10) for f in futures]
    pool.shutdown()
    return answers


def test_each_caller_gets_its_own_rows_and_batches_stay_within_the_maximum():
    model = FakeModel()
    app = _app(model)
    try:
        requests = [[[float(i), 0.0]] for i in range(1, 18)] + [[[100.0, 0.0], [101.0, 0.0]]]
        answers = _queue_behind_the_gate(app, model, requests)
        for rows, (status, body) in zip(requests, answers, strict=True):
            assert status == 200, body
            assert body == {"predictions": [row[0] * 10 for row in rows]}
        # held call, then the 18 queued requests (19 rows) by at most 8 rows, in queue order
        assert model.calls == [1, 8, 8, 3]
        metrics = app.metrics.render().decode()
        assert 'twinserve_batch_requests_bucket{le="1"} 1' in metrics
        assert 'twinserve_batch_rows_bucket{le="4"} 2' in metrics  # cumulative: 1 and 3 rows
        assert 'twinserve_batch_rows_bucket{le="8"} 4' in metrics
        assert "twinserve_batch_rows_count 4" in metrics and "twinserve_batch_rows_sum 20" in metrics
        assert "twinserve_batch_fallbacks_total 0" in metrics
    finally:
        app.close()


def test_a_request_larger_than_the_maximum_runs_alone():
    model = FakeModel()
    app = _app(model, batch_max_size=4)
    try:
        big = [[float(i), 0.0] for i in range(6)]
        answers = _queue_behind_the_gate(app, model, [[[1.0, 0.0]], big, [[2.0, 0.0]], [[3.0, 0.0]]])
        assert [status for status, _ in answers] == [200] * 4
        assert answers[1][1] == {"predictions": [row[0] * 10 for row in big]}
        assert model.calls == [1, 1, 6, 2]
    finally:
        app.close()


def test_a_failing_request_fails_alone_and_a_malformed_one_never_joins():
    model = FakeModel()
    app = _app(model)
    try:
        requests = [[[1.0, 0.0]], [[POISON, 0.0]], [[3.0, 0.0]]]
        pool = ThreadPoolExecutor(2)
        malformed = []
        answers = _queue_behind_the_gate(app, model, requests)
        malformed = _score(app, [[1.0, 2.0, 3.0]])  # wrong width: its 400, before any batch
        pool.shutdown()
        assert answers[0] == (200, {"predictions": [10.0]})
        assert answers[1][0] == 500 and "poisoned row" in answers[1][1]["error"]
        assert answers[2] == (200, {"predictions": [30.0]})
        assert malformed[0] == 400 and "expected rows of 2 features" in malformed[1]["error"], malformed
        # the merged call of three failed, then each ran alone
        assert model.calls == [1, 3, 1, 1, 1]
        assert "twinserve_batch_fallbacks_total 1" in app.metrics.render().decode()
    finally:
        app.close()


def test_a_request_whose_deadline_passes_while_queued_gets_504_and_is_skipped():
    model = FakeModel()
    app = _app(model, timeout_s=0.3)
    try:
        pool = ThreadPoolExecutor(2)
        first = pool.submit(_score, app, [[0.5, 0.0]])
        # the first request must be inside the model before the late one arrives, or both merge into
        # one call (on a loaded machine the pool may start them together)
        assert model.entered.wait(10)
        late = pool.submit(_score, app, [[7.0, 0.0]])
        status, body = late.result(10)  # answered at its deadline while the model is held
        assert status == 504 and "did not finish within 0.3 s" in body["error"], body
        model.gate.set()
        assert first.result(10)[0] == 504  # the held call outlived its deadline too
        assert _score(app, [[2.0, 0.0]]) == (200, {"predictions": [20.0]})
        assert model.calls == [1, 1]  # the cancelled request never reached the model
        pool.shutdown()
    finally:
        app.close()


def test_off_by_default_and_for_user_handlers(tmp_path):
    assert ServerConfig.from_env({}).batch_max_size == 1 and not ServerConfig.from_env({}).batching
    model = FakeModel()
    model.gate.set()
    app = App(ServerConfig(), FakeHandler(model))
    app.load_model()
    try:
        assert app.batcher is None
        assert _score(app, [[1.0, 0.0]]) == (200, {"predictions": [10.0]})
        assert "twinserve_batch" not in app.metrics.render().decode()
    finally:
        app.close()
    (tmp_path / "inference.py").write_text(
        "from twinserve_serving.formats import Outputs\n\n"
        "def predict_fn(data, model):\n    return Outputs({'echo': data.rows})\n"
    )
    user = App(
        ServerConfig(batch_max_size=8, model_dir=tmp_path), load_handler(str(tmp_path / "inference.py"), tmp_path)
    )
    user.handler.load = lambda: None  # the user's stages, no model file needed
    user.load_model()
    try:
        assert user.state == "ready" and user.batcher is None  # user code runs one request per call
        assert _score(user, [[1.0, 0.0]]) == (200, {"predictions": [[1.0, 0.0]]})
    finally:
        user.close()


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"TWINSERVE_BATCH_MAX_SIZE": "many"},
            "TWINSERVE_BATCH_MAX_SIZE='many' is not an integer; allowed: an integer",
        ),
        ({"TWINSERVE_BATCH_MAX_SIZE": "0"}, "TWINSERVE_BATCH_MAX_SIZE='0' is out of range; allowed: an integer from 1"),
        ({"TWINSERVE_BATCH_MAX_SIZE": "4097"}, "from 1 to 4096 (rows; 1 is off)"),
        ({"TWINSERVE_BATCH_MAX_DELAY_MS": "soon"}, "TWINSERVE_BATCH_MAX_DELAY_MS='soon' is not a number"),
        ({"TWINSERVE_BATCH_MAX_DELAY_MS": "-1"}, "TWINSERVE_BATCH_MAX_DELAY_MS='-1' is out of range"),
        ({"TWINSERVE_BATCH_MAX_DELAY_MS": "nan"}, "allowed: a number from 0 to 1000 (ms)"),
    ],
)
def test_bad_batching_settings_name_the_variable_the_value_and_the_range(env, message):
    with pytest.raises(ConfigError) as error:
        ServerConfig.from_env(env)
    assert message in str(error.value)


def test_batching_settings_are_read():
    config = ServerConfig.from_env({"TWINSERVE_BATCH_MAX_SIZE": "32", "TWINSERVE_BATCH_MAX_DELAY_MS": "0.5"})
    assert config.batching and config.batch_max_size == 32 and config.batch_max_delay_ms == 0.5


def test_the_served_model_answers_the_same_batched_or_not(start_server):
    """The real server and the iris ONNX model: concurrent requests of different shapes and formats
    get the answers each gets alone."""
    requests = [[row] for row in IRIS_ROWS] * 8 + [IRIS_ROWS, [IRIS_ROWS[1], IRIS_ROWS[0], IRIS_ROWS[1]]] * 4
    plain = start_server()
    expected = [plain.score({"instances": rows}).json() for rows in requests]
    batched = start_server({"TWINSERVE_BATCH_MAX_SIZE": "16", "TWINSERVE_BATCH_MAX_DELAY_MS": "5"})
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda rows: batched.score({"instances": rows}), requests))
    assert [r.status for r in replies] == [200] * len(requests)
    for reply, alone in zip(replies, expected, strict=True):  # the same labels; float32 sums may differ in order
        assert [p["label"] for p in reply.json()["predictions"]] == [p["label"] for p in alone["predictions"]]
        for got, want in zip(reply.json()["predictions"], alone["predictions"], strict=True):
            assert got["probabilities"] == pytest.approx(want["probabilities"], rel=1e-5, abs=1e-7)
    # CSV merges too: its rows are the model's rows once decoded
    csv = batched.request("POST", "/invocations", b"5.1,3.5,1.4,0.2\n", {"Content-Type": "text/csv"})
    assert csv.status == 200 and csv.json()["predictions"][0]["label"] == expected[0]["predictions"][0]["label"]
    metrics = batched.request("GET", "/metrics").body.decode()
    assert "twinserve_batch_requests_count" in metrics and "twinserve_batch_rows_bucket" in metrics
    assert any(r.get("event") == "adaptive_batching_on" for r in batched.log_records())
