"""Bad input never crashes the server: each case gets its status and a JSON error naming the
problem (and what is allowed), and the server keeps serving afterwards."""

from __future__ import annotations

import re
import socket

import pytest
from serving_harness import HANDLERS_DIR, IRIS_ROWS


def assert_error(reply, status: int, *fragments: str) -> dict:
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/json"
    doc = reply.json()
    assert isinstance(doc["error"], str) and doc["code"]
    for fragment in fragments:
        assert fragment in doc["error"], doc["error"]
    return doc


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b'{"instances": [[5.1, 3.5', "malformed JSON"),
        (b"", "empty"),
        (b'{"rows": [[1, 2, 3, 4]]}', "none of the keys"),
        (b'{"instances": [[1, 2, 3]]}', "expected rows of 4 features (sepal_length"),
        (b'{"instances": [[1, 2, 3, 4], [1, 2]]}', "equal-length"),
        (b'{"instances": [["a", "b", "c", "d"]]}', "equal-length"),
        (b'{"instances": [{"sepal_length": 1}]}', "lacks feature 'sepal_width'"),
        (b'{"instances": []}', "non-empty"),
        (b"\xff\xfe{", "not valid utf-8"),
    ],
)
def test_malformed_json_is_400_naming_the_problem(iris_server, body, fragment):
    assert_error(iris_server.score(body), 400, fragment)


def test_malformed_csv_and_npy_are_400(iris_server):
    assert_error(iris_server.score("1,2,x,4\n", Content_Type="text/csv"), 400)
    assert_error(iris_server.score(b"not an npy file", Content_Type="application/x-npy"), 400, "malformed NPY")


def test_unknown_charset_is_400(iris_server):
    assert_error(iris_server.score(b"[1,2,3,4]", Content_Type="application/json; charset=klingon"), 400, "klingon")


def test_unsupported_content_type_is_415_listing_allowed(iris_server):
    doc = assert_error(iris_server.score(b"<x/>", Content_Type="application/xml"), 415, "application/xml")
    assert doc["allowed"] == ["application/json", "text/csv", "application/x-npy"]


def test_malformed_content_type_is_400(iris_server):
    assert_error(iris_server.score(b"[1,2,3,4]", Content_Type="json"), 400, "type/subtype")


@pytest.mark.parametrize("accept", ["application/xml", "text/html;q=1, application/json;q=0"])
def test_unsatisfiable_accept_is_406_listing_allowed(iris_server, accept):
    doc = assert_error(iris_server.score({"instances": IRIS_ROWS}, Accept=accept), 406)
    assert "text/csv" in doc["allowed"]


def _raw_exchange(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_body_over_the_default_6_mb_limit_is_413_before_reading_it(iris_server):
    # Only the headers are sent: the server must answer from Content-Length and close.
    answer = _raw_exchange(
        iris_server.port,
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (6 * 1024 * 1024 + 1),
    )
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in answer and b"6 MB limit" in answer and b"SAGEMAKER_MAX_PAYLOAD_IN_MB" in answer


def test_sagemaker_max_payload_in_mb_sets_the_limit(start_server):
    server = start_server({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"})
    row = "[5.1, 3.5, 1.4, 0.2],"
    big = '{"instances": [' + row * (1024 * 1024 // len(row) + 1) + "[1,2,3,4]]}"
    assert_error(server.score(big), 413, "1 MB limit")
    small = '{"instances": [' + row * (512 * 1024 // len(row)) + "[1,2,3,4]]}"
    assert server.score(small).status == 200  # under the limit: scored (the 6 MB default would allow both)


def test_chunked_body_over_the_limit_is_413(start_server):
    server = start_server({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"})
    chunk = b"x" * (600 * 1024)
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(2)) + b"0\r\n\r\n"
    assert _raw_exchange(server.port, head + body).startswith(b"HTTP/1.1 413 ")


@pytest.mark.parametrize(
    "head, status",
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /ping HTTP/2.0\r\n\r\n", 501),
        (b"POST /invocations HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
        (b"POST /invocations HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", 400),  # "\u00b2".isdigit()
        (b"POST /invocations HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 413),
        (b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc", 400),
        (b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400),
        (b"POST /invocations HTTP/1.1\r\nbad header line\r\n\r\n", 400),
        (b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET /ping HTTP/1.1\r\n" + b"X-Long: " + b"a" * 20000 + b"\r\n\r\n", 431),
    ],
)
def test_broken_http_framing_is_answered_and_closed(iris_server, head, status):
    answer = _raw_exchange(iris_server.port, head)
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:200]
    assert b'"error"' in answer
    # like every other error, it carries a request id in the body and the header
    header_id = re.search(rb"\r\nx-request-id: ([0-9a-f]{32})\r\n", answer, re.IGNORECASE)
    assert header_id and b'"request_id": "%s"' % header_id.group(1) in answer, answer[:400]


def test_server_still_serves_after_all_that(iris_server):
    assert iris_server.score({"instances": IRIS_ROWS}).status == 200


@pytest.fixture(scope="module")
def behaviour_server(request, iris_model, tmp_path_factory):
    import os

    from serving_harness import ServerProcess, free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "AZUREML_", "TWINSERVE_"))}
    env.update(
        {
            "SAGEMAKER_BIND_TO_PORT": str(free_port()),
            "TWINSERVE_HOST": "127.0.0.1",
            "TWINSERVE_MODEL_DIR": str(iris_model / "model"),
            "TWINSERVE_THREADS": "2",
            "TWINSERVE_HANDLER": str(HANDLERS_DIR / "behaviours.py"),
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "0.5",
        }
    )
    server = ServerProcess(env, tmp_path_factory.mktemp("server") / "server.log", [])
    try:
        server.wait_until("/ping")
        yield server
    finally:
        server.stop()


def test_handler_exception_is_500_json_with_traceback_only_in_the_log(behaviour_server):
    reply = behaviour_server.score({"raise": "secret internals"}, x_request_id="boom-1")
    doc = assert_error(reply, 500, "RuntimeError: secret internals", "traceback in the server log")
    assert doc["code"] == "handler_error" and doc["request_id"] == "boom-1"
    assert "Traceback" not in reply.body.decode() and "behaviours.py" not in reply.body.decode()
    logged = [r for r in behaviour_server.log_records() if r.get("event") == "handler_error"]
    assert logged and logged[-1]["request_id"] == "boom-1"
    assert "Traceback" in logged[-1]["traceback"] and "behaviours.py" in logged[-1]["traceback"]


def test_request_over_the_timeout_is_504(behaviour_server):
    doc = assert_error(behaviour_server.score({"sleep": 2}), 504, "0.5 s", "SAGEMAKER_MODEL_SERVER_TIMEOUT")
    assert doc["code"] == "timeout"
    assert behaviour_server.score({"echo": 1}).json()["echo"] == 1  # still serving


def test_scoring_timeout_ms_is_the_azure_spelling(start_server):
    server = start_server({"TWINSERVE_HANDLER": str(HANDLERS_DIR / "behaviours.py"), "SCORING_TIMEOUT_MS": "300"})
    assert_error(server.score({"sleep": 1}), 504, "0.3 s")


def test_decode_errors_in_a_user_input_fn_are_400(behaviour_server):
    assert_error(behaviour_server.score(b"{nope"), 400, "input_fn could not decode the application/json body")
