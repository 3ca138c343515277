"""The pipeline's smoke-test script (stacks/pipeline_scripts/smoke_test.py) against a real server:
`twinserve local` serving the iris sample on loopback, which answers the Azure ML routes (/score) and
the SageMaker ones (/invocations) exactly as the image does.

Azure mode is end to end over HTTP (the scoring URI is the local server's /score). SageMaker's
InvokeEndpoint cannot reach a local server (its path is /endpoints/<name>/invocations), so the
SageMaker sender goes through botocore's Stubber — real client, real request validation — with the
body the local server gave for the same request, and its error shapes (ModelError) as documented.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from stacks.pipeline_scripts import smoke_test
from stacks.pipeline_scripts.smoke_test import SMOKE_TEST_PAYLOAD

REPO = Path(__file__).resolve().parents[1]
SAMPLE_MODEL = REPO / "build" / "sample-model" / "model"


def test_the_azure_smoke_test_passes_against_the_local_score_route(local_server, capsys):
    code = smoke_test.main(
        ["azure", "--scoring-uri", f"{local_server}/score", "--key-env", "KEY"], environ={"KEY": "k"}
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"smoke test passed: Azure endpoint {local_server}/score: predictions [")


def test_stack_outputs_test_every_endpoint_with_its_primary_key(local_server, capsys, monkeypatch):
    outputs = {
        "scoring_uris": {"managed": f"{local_server}/score", "kubernetes": f"{local_server}/score"},
        "endpoint_keys": {"managed": {"primary": "m1", "secondary": "m2"}, "kubernetes": {"primary": "k1"}},
    }
    sent: list[str | None] = []
    real_urlopen = urllib.request.urlopen

    def recording_urlopen(request, timeout):
        sent.append(request.get_header("Authorization"))
        return real_urlopen(request, timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", recording_urlopen)
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(outputs)))
    assert smoke_test.main(["azure", "--stack-outputs", "-"]) == 0
    assert sorted(sent) == ["Bearer k1", "Bearer m1"]
    assert capsys.readouterr().out.count("smoke test passed") == 2


def test_a_model_error_fails_at_once_with_the_answer(local_server, capsys, monkeypatch):
    """A 4xx is the request's fault: no retry, exit 1, the server's error in the message."""
    monkeypatch.setattr(smoke_test, "SMOKE_TEST_PAYLOAD", '{"instances": [[1.0, 2.0]]}')  # two of four features
    slept: list[float] = []
    code = smoke_test.main(["azure", "--scoring-uri", f"{local_server}/score"], sleep=slept.append)
    assert code == 1 and slept == []
    err = capsys.readouterr().err
    assert f"smoke test FAILED: Azure endpoint {local_server}/score: HTTP 4" in err


def test_an_answer_without_predictions_fails(local_server, capsys):
    """/live answers 200 but has no predictions: a 2xx alone does not pass."""
    code = smoke_test.main(["azure", "--scoring-uri", f"{local_server}/live"])
    assert code == 1
    assert "smoke test FAILED" in capsys.readouterr().err


def test_unreachable_and_5xx_are_retried_until_the_deadline():
    answers = [(503, b"starting"), (0, b""), (200, b'{"predictions": [0]}')]
    clock = iter(range(0, 1000, 5))
    slept: list[float] = []

    def send():
        status, body = answers.pop(0)
        if status == 0:
            raise ConnectionRefusedError("refused")
        return status, body

    result = smoke_test.probe("x", send, deadline=60, pause=5, sleep=slept.append, clock=lambda: next(clock))
    assert result == [0] and slept == [5, 5]


def test_the_deadline_ends_retries_with_the_last_answer():
    clock = iter(range(0, 1000, 20))
    with pytest.raises(smoke_test.SmokeTestFailed, match="HTTP 503: still starting"):
        smoke_test.probe(
            "x",
            lambda: (503, b"still starting"),
            deadline=30,
            pause=10,
            sleep=lambda s: None,
            clock=lambda: next(clock),
        )


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({}, "no scoring_uris"),
        ({"scoring_uris": {"managed": "https://x/score"}}, "endpoint_keys.managed is missing"),
    ],
)
def test_outputs_without_an_endpoint_or_key_are_bad_input(tmp_path, capsys, outputs, message):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    assert smoke_test.main(["azure", "--stack-outputs", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_an_empty_key_variable_is_named(capsys):
    assert smoke_test.main(["azure", "--scoring-uri", "https://x/score", "--key-env", "NOPE"], environ={}) == 2
    assert "--key-env NOPE: the variable is unset or empty" in capsys.readouterr().err


class _Session:
    """A boto3 session with one stubbed client per service (real botocore request validation), made
    before the script asks for it so answers can be queued; the credentials it is asked with are kept."""

    def __init__(self):
        self._session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="eu-west-1")
        self.clients: dict[str, object] = {}
        self.kwargs: dict[str, dict] = {}
        self.region_name = "eu-west-1"

    def queue(self, service: str) -> Stubber:
        client = self._session.client(service, region_name="eu-west-1")
        self.clients[service] = client
        stub = Stubber(client)
        stub.activate()
        return stub

    def client(self, service, **kwargs):
        self.kwargs[service] = kwargs
        return self.clients[service]


def test_the_sagemaker_smoke_test_sends_the_same_request_as_the_role(local_server, capsys):
    # what the local server answers to the request SageMaker would forward to the container
    request = urllib.request.Request(
        f"{local_server}/invocations",
        data=SMOKE_TEST_PAYLOAD.encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = answer.read()
    session = _Session()
    role = "arn:aws:iam::111111111111:role/twinserve-iris-dev-smoke-test"
    session.queue("sts").add_response(
        "assume_role",
        {
            "Credentials": {
                "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
                "SecretAccessKey": "s" * 40,
                "SessionToken": "t" * 40,
                "Expiration": "2026-12-02T00:00:00Z",
            }
        },
        {"RoleArn": role, "RoleSessionName": "twinserve-smoke-test"},
    )
    session.queue("sagemaker-runtime").add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"},
        {
            "EndpointName": "iris-dev",
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": SMOKE_TEST_PAYLOAD.encode(),
        },
    )
    code = smoke_test.main(
        ["sagemaker", "--endpoint-name", "iris-dev", "--role-arn", role, "--region", "eu-west-1"],
        boto3_session=session,
    )
    assert code == 0, capsys.readouterr().err
    assert session.kwargs["sagemaker-runtime"]["aws_session_token"] == "t" * 40  # as the assumed role
    assert "smoke test passed: SageMaker endpoint iris-dev" in capsys.readouterr().out


def test_a_sagemaker_model_error_reports_the_containers_status(capsys):
    session = _Session()
    session.queue("sagemaker-runtime").add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message="Received client error (400) from primary",
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": 400, "OriginalMessage": '{"error": "expected 4 features"}'},
    )
    assert smoke_test.main(["sagemaker", "--endpoint-name", "iris-dev"], boto3_session=session) == 1
    assert 'HTTP 400: {"error": "expected 4 features"}' in capsys.readouterr().err


ROLE = "arn:aws:iam::111111111111:role/twinserve-iris-dev-smoke-test"
ASSUMED = {
    "Credentials": {
        "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
        "SecretAccessKey": "s" * 40,
        "SessionToken": "t" * 40,
        "Expiration": "2026-12-02T00:00:00Z",
    }
}


def test_the_lambda_smoke_test_posts_to_the_url_signed_as_the_role(local_server, capsys, monkeypatch):
    """The function URL's /invocations, SigV4-signed for the `lambda` service with the assumed role's
    credentials (the URL has AWS_IAM auth: https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html).
    The local server stands in for the URL (it does not check signatures; Lambda does)."""
    session = _Session()
    session.queue("sts").add_response(
        "assume_role", ASSUMED, {"RoleArn": ROLE, "RoleSessionName": "twinserve-smoke-test"}
    )
    sent: list[urllib.request.Request] = []
    real_urlopen = urllib.request.urlopen

    def recording_urlopen(request, timeout):
        sent.append(request)
        return real_urlopen(request, timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", recording_urlopen)
    code = smoke_test.main(["lambda", "--function-url", "http://example.com/", "--region", "eu-west-1"])
    assert code == 2  # function URLs are https; plain http only for a stand-in on loopback
    assert "--function-url http://example.com/: an https URL" in capsys.readouterr().err and not sent

    code = smoke_test.main(
        ["lambda", "--function-url", f"{local_server}/", "--role-arn", ROLE, "--region", "eu-west-1"],
        boto3_session=session,
    )
    assert code == 0, capsys.readouterr().err
    (request,) = sent
    assert request.full_url == f"{local_server}/invocations"
    authorization = request.get_header("Authorization")
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEEXAMPLE01/")
    assert "/eu-west-1/lambda/aws4_request" in authorization
    assert request.get_header("X-amz-security-token") == "t" * 40


class _ProbeClient:
    """A Lambda client whose Invoke runs the probe's real handler code in-process (the function's
    network position, inside the VPC, is what a test cannot give; the code is the same)."""

    def __init__(self, target_url: str, monkeypatch):
        from twinserve.aws.internal_probe_handler import probe

        monkeypatch.setattr(probe, "TARGET_URL", target_url)
        self.probe, self.calls = probe, []
        self.exceptions = boto3.client("lambda", region_name="eu-west-1").exceptions

    def invoke(self, FunctionName, Payload):  # noqa: N803 - boto3's argument names
        self.calls.append((FunctionName, json.loads(Payload)))
        result = self.probe.handler(json.loads(Payload), None)
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}


def test_the_fargate_smoke_test_goes_through_the_probe_to_the_service(local_server, capsys, monkeypatch):
    client = _ProbeClient(local_server, monkeypatch)
    session = _Session()
    session.clients["lambda"] = client
    code = smoke_test.main(["fargate", "--probe-function", "iris-dev-probe"], boto3_session=session)
    assert code == 0, capsys.readouterr().err
    ((name, event),) = client.calls
    assert name == "iris-dev-probe" and event["path"] == "/invocations"
    assert "smoke test passed: ECS Fargate service through iris-dev-probe" in capsys.readouterr().out


def test_the_probe_refuses_other_paths_and_reports_an_unreachable_service(local_server, monkeypatch):
    from twinserve.aws.internal_probe_handler import probe

    monkeypatch.setattr(probe, "TARGET_URL", local_server)
    refused = probe.handler({"path": "/metrics"}, None)
    assert refused["status"] == 400 and b"/invocations" in base64.b64decode(refused["body_base64"])
    monkeypatch.setattr(probe, "TARGET_URL", f"http://127.0.0.1:{_closed_port()}")
    assert probe.handler({}, None)["status"] == 0  # the smoke test retries it like a refused connection


def test_a_failing_probe_counts_as_a_5xx(capsys):
    """502, which probe() retries until the deadline (test_unreachable_and_5xx_are_retried_until_the_deadline)."""

    class Failing:
        exceptions = boto3.client("lambda", region_name="eu-west-1").exceptions

        def invoke(self, **kwargs):
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(b'{"errorMessage": "x"}')}

    session = _Session()
    session.clients["lambda"] = Failing()
    argv = ["--deadline", "0", "fargate", "--probe-function", "p"]
    assert smoke_test.main(argv, boto3_session=session) == 1
    assert 'HTTP 502: probe function error: {"errorMessage": "x"}' in capsys.readouterr().err


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_endpoints_outside_reach_are_skipped_with_the_reason(local_server, capsys, monkeypatch):
    outputs = {
        "scoring_uris": {"managed": f"{local_server}/score", "k8s": "https://10.0.0.4/score"},
        "endpoint_keys": {"managed": {"primary": "m1"}, "k8s": {"primary": "k1"}},
        "unreachable_endpoints": {"k8s": "the cluster's inference router listens on an internal load balancer"},
    }
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(outputs)))
    assert smoke_test.main(["azure", "--stack-outputs", "-"], sleep=lambda _: None) == 0
    out = capsys.readouterr().out
    assert out.count("smoke test passed") == 1
    assert "smoke test skipped: Azure k8s endpoint: not reachable from outside its network (the cluster's" in out


def test_a_private_endpoint_needs_no_key_in_the_outputs(capsys, monkeypatch):
    outputs = {"scoring_uris": {"managed": "https://x/score"}, "unreachable_endpoints": {"managed": "private"}}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(outputs)))
    assert smoke_test.main(["azure", "--stack-outputs", "-"]) == 0
    assert "smoke test skipped: Azure managed endpoint" in capsys.readouterr().out


def test_aad_token_endpoints_get_the_pipelines_entra_token_and_every_location(local_server, capsys, monkeypatch):
    # auth_mode aad_token: a Microsoft Entra token for https://ml.azure.com is the bearer credential
    # (https://learn.microsoft.com/azure/machine-learning/how-to-authenticate-online-endpoint); with a second
    # location its endpoint is scored too (location_scoring_uris)
    outputs = {
        "scoring_uris": {"managed": f"{local_server}/score"},
        "location_scoring_uris": {"westeurope": f"{local_server}/score", "northeurope": f"{local_server}/score?ne"},
    }
    asked: list[tuple] = []

    def fake_token(sign_in, *, tenant_id, client_id, region, environ, boto3_session=None):
        asked.append((sign_in, tenant_id, client_id, region))
        return "entra-token"

    sent: list[tuple[str, str | None]] = []
    real_urlopen = urllib.request.urlopen

    def recording_urlopen(request, timeout):
        sent.append((request.full_url, request.get_header("Authorization")))
        return real_urlopen(request, timeout=timeout)

    monkeypatch.setattr(smoke_test, "entra_scoring_token", fake_token)
    monkeypatch.setattr(urllib.request, "urlopen", recording_urlopen)
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(outputs)))
    argv = ["azure", "--stack-outputs", "-", "--entra-sign-in", "federated", "--tenant-id", "t", "--client-id", "c"]
    assert smoke_test.main([*argv, "--region", "us-east-1"]) == 0
    assert asked == [("federated", "t", "c", "us-east-1")]
    assert sorted(sent) == [
        (f"{local_server}/score", "Bearer entra-token"),
        (f"{local_server}/score?ne", "Bearer entra-token"),
    ]  # the primary once, the secondary location once
    assert capsys.readouterr().out.count("smoke test passed") == 2


def test_entra_sign_in_needs_the_tenant_and_client(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"scoring_uris": {"managed": "https://x/score"}})))
    assert smoke_test.main(["azure", "--stack-outputs", "-", "--entra-sign-in", "federated"]) == 2
    assert "--entra-sign-in needs --tenant-id and --client-id" in capsys.readouterr().err


def test_the_entra_token_uses_the_pipelines_keyless_sign_in(monkeypatch):
    """The STS web identity token is the client assertion of a client-credentials request for
    https://ml.azure.com/.default (the same sign-in as the Azure deploy step)."""
    from twinserve.azure import image_import

    class FakeSts:
        def get_web_identity_token(self, **kwargs):
            assert kwargs["Audience"] == ["api://AzureADTokenExchange"]
            return {"WebIdentityToken": "aws-signed-jwt"}

    class FakeSession:
        region_name = "us-east-1"

        def client(self, name, **kwargs):
            assert name == "sts"
            return FakeSts()

    seen = {}

    def fake_arm_token(environ, *, arm_endpoint, **kwargs):
        seen.update(environ=environ, endpoint=arm_endpoint)
        return "entra-token"

    monkeypatch.setattr(image_import, "arm_token", fake_arm_token)
    token = smoke_test.entra_scoring_token(
        "federated", tenant_id="t", client_id="c", region=None, environ={}, boto3_session=FakeSession()
    )
    assert token == "entra-token" and seen["endpoint"] == "https://ml.azure.com"
    assert (seen["environ"]["ARM_OIDC_TOKEN"], seen["environ"]["ARM_CLIENT_ID"]) == ("aws-signed-jwt", "c")
