"""Both clouds' HTTP contracts on one port: routes, health, headers, logs and metrics."""

from __future__ import annotations

import re
import statistics
import time

import pytest
from serving_harness import IRIS_ROWS

from twinserve_serving import routes


def test_route_constants_are_the_contract_the_deployments_use():
    assert (routes.DEFAULT_PORT, routes.SAGEMAKER_PING_PATH, routes.INVOCATIONS_PATH) == (8080, "/ping", "/invocations")
    assert (routes.LIVENESS_PATH, routes.READINESS_PATH, routes.SCORING_PATH) == ("/live", "/ready", "/score")
    # the Azure ML inference_config routes come from the spec's container defaults
    from twinserve.spec.models import ContainerSpec

    defaults = {name: field.default for name, field in ContainerSpec.model_fields.items()}
    assert defaults["port"] == routes.DEFAULT_PORT
    assert defaults["liveness_path"] == routes.LIVENESS_PATH
    assert defaults["readiness_path"] == routes.READINESS_PATH
    assert defaults["scoring_path"] == routes.SCORING_PATH


@pytest.mark.parametrize("path", ["/ping", "/ready", "/live", "/v2/health/ready", "/v2/health/live"])
def test_health_routes_answer_200_when_loaded(iris_server, path):
    reply = iris_server.request("GET", path)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/invocations", "/score"])
def test_both_scoring_routes_score_the_iris_model(iris_server, path):
    reply = iris_server.score({"instances": IRIS_ROWS}, path=path)
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/json"
    predictions = reply.json()["predictions"]
    assert [p["label"] for p in predictions] == ["setosa", "virginica"]
    assert all(len(p["probabilities"]) == 3 and abs(sum(p["probabilities"]) - 1) < 1e-4 for p in predictions)


@pytest.mark.parametrize(
    "payload",
    [
        {"instances": IRIS_ROWS},
        {"inputs": IRIS_ROWS},
        {"data": IRIS_ROWS},
        IRIS_ROWS,
        {
            "instances": [
                dict(zip(["sepal_length", "sepal_width", "petal_length", "petal_width"], r, strict=True))
                for r in IRIS_ROWS
            ]
        },
    ],
)
def test_json_request_shapes(iris_server, payload):
    reply = iris_server.score(payload)
    assert reply.status == 200, reply.body
    assert [p["label"] for p in reply.json()["predictions"]] == ["setosa", "virginica"]


def test_single_row_json(iris_server):
    assert [p["label"] for p in iris_server.score(IRIS_ROWS[0]).json()["predictions"]] == ["setosa"]


def test_csv_in_csv_out_with_header_line(iris_server):
    body = "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"
    reply = iris_server.score(body, Content_Type="text/csv", Accept="text/csv")
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "text/csv"
    lines = reply.body.decode().splitlines()
    assert [line.split(",")[0] for line in lines] == ["setosa", "virginica"]
    assert len(lines[0].split(",")) == 4


def test_npy_in_npy_out(iris_server):
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.array(IRIS_ROWS, dtype=np.float32))
    reply = iris_server.score(buffer.getvalue(), Content_Type="application/x-npy", Accept="application/x-npy")
    assert reply.status == 200, reply.body
    assert np.load(io.BytesIO(reply.body)).tolist() == [0, 2]


@pytest.mark.parametrize(
    "content_type",
    [
        "APPLICATION/JSON",
        "application/json; charset=utf-8",
        "Application/Json;Charset=UTF-8",
        'application/json; charset="utf-8"',
    ],
)
def test_media_types_are_case_insensitive_and_tolerate_charset(iris_server, content_type):
    assert iris_server.score({"instances": IRIS_ROWS}, Content_Type=content_type).status == 200


@pytest.mark.parametrize(
    "accept, expected",
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("Text/CSV; charset=utf-8", "text/csv"),
        ("text/*", "text/csv"),
        ("application/json;q=0.5, text/csv", "text/csv"),
        ("text/csv;q=0.1, application/*;q=0.9", "application/json"),
        ("image/png, */*;q=0.1", "application/json"),
    ],
)
def test_accept_negotiation(iris_server, accept, expected):
    headers = {"Accept": accept} if accept else {}
    reply = iris_server.score({"instances": IRIS_ROWS}, **headers)
    assert reply.status == 200
    assert reply.headers["content-type"] == expected


def test_request_ids_are_echoed_and_generated(iris_server):
    reply = iris_server.score({"instances": IRIS_ROWS}, x_request_id="req-123", x_ms_client_request_id="client_abc-1")
    assert reply.headers["x-request-id"] == "req-123"
    assert reply.headers["x-ms-client-request-id"] == "client_abc-1"
    generated = iris_server.request("GET", "/ping").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_errors_echo_request_ids_too(iris_server):
    reply = iris_server.score(b"{", x_request_id="bad-1", x_ms_client_request_id="c-1")
    assert reply.status == 400
    assert reply.headers["x-request-id"] == "bad-1" and reply.headers["x-ms-client-request-id"] == "c-1"
    assert reply.json()["request_id"] == "bad-1"


def test_unknown_sagemaker_headers_are_ignored(iris_server):
    reply = iris_server.score(
        {"instances": IRIS_ROWS},
        X_Amzn_SageMaker_Target_Variant="blue",
        X_Amzn_SageMaker_Inference_Id="abc",
        X_Something_New="1",
    )
    assert reply.status == 200
    assert "x-amzn-sagemaker-custom-attributes" not in reply.headers  # only when the handler sets it


def test_execution_parameters(iris_server):
    reply = iris_server.request("GET", "/execution-parameters")
    assert reply.status == 200
    params = reply.json()
    assert params["BatchStrategy"] == "MULTI_RECORD" and params["MaxPayloadInMB"] == 6
    assert params["MaxConcurrentTransforms"] * params["MaxPayloadInMB"] <= 100


def test_execution_parameters_follow_the_batch_environment(start_server):
    server = start_server(
        {
            "SAGEMAKER_BATCH": "true",
            "SAGEMAKER_BATCH_STRATEGY": "single_record",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20",
            "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "5",
        }
    )
    assert server.request("GET", "/execution-parameters").json() == {
        "MaxConcurrentTransforms": 5,
        "BatchStrategy": "SINGLE_RECORD",
        "MaxPayloadInMB": 20,
    }


def test_unknown_route_404_lists_routes_and_wrong_method_405(iris_server):
    reply = iris_server.request("GET", "/nope")
    assert reply.status == 404 and "/invocations" in reply.json()["allowed"]
    reply = iris_server.request("GET", "/invocations")
    assert reply.status == 405
    assert reply.headers["allow"] == "POST" and reply.json()["allowed"] == ["POST"]


def test_query_string_is_ignored_for_routing(iris_server):
    assert iris_server.request("GET", "/ping?probe=1").status == 200


def test_keep_alive_connection_is_reused(iris_server):
    connection = iris_server.connection()
    for _ in range(3):
        assert iris_server.score({"instances": IRIS_ROWS}).status == 200
        assert (
            iris_server.request(
                "POST",
                "/invocations",
                '{"instances": [[1,2,3,4]]}',
                {"Content-Type": "application/json"},
                connection=connection,
            ).status
            == 200
        )
    assert connection.sock is not None  # still open: the server did not close it
    connection.close()


def test_http10_and_connection_close_get_connection_close(iris_server):
    connection = iris_server.connection()
    reply = iris_server.request("GET", "/ping", headers={"Connection": "close"}, connection=connection)
    assert reply.headers["connection"] == "close"
    connection.close()


def test_expect_100_continue_is_honoured(iris_server):
    import socket

    body = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
    with socket.create_connection(("127.0.0.1", iris_server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")


def test_chunked_request_body(iris_server):
    def chunks():
        yield b'{"instances": '
        yield b"[[5.1, 3.5, 1.4, 0.2]]}"

    connection = iris_server.connection()
    connection.request(
        "POST", "/invocations", body=chunks(), headers={"Content-Type": "application/json"}, encode_chunked=True
    )
    response = connection.getresponse()
    assert response.status == 200, response.read()
    connection.close()


def test_keep_alive_requests_do_not_suffer_the_nagle_delay(iris_server):
    """Regression for TCP_NODELAY: with Nagle + delayed ACK each keep-alive answer took ~40 ms.
    A correctness check, not a benchmark: the median must be far below 40 ms."""
    connection = iris_server.connection()
    body = '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
    latencies = []
    for _ in range(20):
        started = time.perf_counter()
        reply = iris_server.request(
            "POST", "/invocations", body, {"Content-Type": "application/json"}, connection=connection
        )
        latencies.append(time.perf_counter() - started)
        assert reply.status == 200
    connection.close()
    assert statistics.median(latencies) < 0.015, latencies


def test_one_structured_log_line_per_request(iris_server):
    iris_server.score({"instances": IRIS_ROWS}, x_request_id="log-check-1")
    iris_server.score(b"not json", x_request_id="log-check-2")
    time.sleep(0.05)
    records = [r for r in iris_server.log_records() if r.get("event") == "request"]
    first = [r for r in records if r["request_id"] == "log-check-1"]
    second = [r for r in records if r["request_id"] == "log-check-2"]
    assert len(first) == 1 and len(second) == 1
    assert first[0]["route"] == "/invocations" and first[0]["status"] == 200 and first[0]["method"] == "POST"
    assert isinstance(first[0]["latency_ms"], float) and first[0]["level"] == "info" and "ts" in first[0]
    assert second[0]["status"] == 400


def test_metrics_are_prometheus_text(iris_server):
    iris_server.score({"instances": IRIS_ROWS})
    reply = iris_server.request("GET", "/metrics")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = reply.body.decode()
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?[0-9.e+-]+$')
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    assert re.search(r'twinserve_requests_total\{route="/invocations",method="POST",status="200"\} \d+', text)
    assert 'twinserve_request_duration_seconds_bucket{route="/invocations",le="+Inf"}' in text
    assert "twinserve_model_ready 1" in text


def test_a_client_chosen_method_does_not_become_a_metric_label(iris_server):
    # The method comes from the request line: used as a label verbatim it would break the
    # exposition format (a quote) and grow the series without bound (one per distinct method).
    import socket

    with socket.create_connection(("127.0.0.1", iris_server.port), timeout=5) as sock:
        sock.sendall(b'BO"GUS /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 405 ")
    text = iris_server.request("GET", "/metrics").body.decode()
    assert "BO" not in text
    assert re.search(r'twinserve_requests_total\{route="/ping",method="other",status="405"\} \d+', text)
