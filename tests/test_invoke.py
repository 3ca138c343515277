"""`twinserve invoke` against a real server: `twinserve local` on loopback answers the Azure ML
(/score) and SageMaker (/invocations) routes as the image does, so the Azure and --url paths run end
to end over HTTP. SageMaker's InvokeEndpoint goes through botocore's Stubber (real client, real
request validation) with the body the local server gave for the same request, as in
test_smoke_test.py."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from stacks.aws.names import endpoint_name
from stacks.pipeline_scripts.smoke_test import SMOKE_TEST_PAYLOAD
from twinserve import invoke_command
from twinserve.cli import build_parser
from twinserve.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
SAMPLE_MODEL = REPO / "build" / "sample-model" / "model"
SPEC = REPO / "deploy" / "twinserve.yaml"


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _invoke(argv, **injected) -> int:
    args = build_parser().parse_args(["invoke", *argv])
    return args.func(args, **injected)


class _Session:
    """A boto3 session whose sagemaker-runtime client is stubbed; static credentials for SigV4."""

    def __init__(self, region="eu-west-1"):
        self._session = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="s" * 40)
        self.region_name = region
        self.runtime = self._session.client("sagemaker-runtime", region_name="eu-west-1")
        self.stub = Stubber(self.runtime)
        self.stub.activate()
        self.asked: dict = {}

    def client(self, service, **kwargs):
        self.asked = {"service": service, **kwargs}
        return self.runtime

    def get_credentials(self):
        return self._session.get_credentials()


# -- Azure and URL fronts, end to end ----------------------------------------------------------------------


def test_azure_scoring_uri_with_a_key_prints_status_latency_and_the_answer(local_server, capsys):
    code = _invoke(
        ["--cloud", "azure", "--scoring-uri", f"{local_server}/score", "--key-env", "KEY"], environ={"KEY": "k"}
    )
    out = capsys.readouterr().out
    assert code == 0, out
    head, body = out.split("\n", 1)
    assert head.startswith(f"Azure endpoint {local_server}/score: HTTP 200 in ") and head.endswith(" ms")
    assert json.loads(body)["predictions"]


def test_azure_env_reads_every_endpoint_from_the_pulumi_stack_outputs(local_server, capsys, monkeypatch):
    outputs = {
        "scoring_uris": {"managed": f"{local_server}/score", "kubernetes": f"{local_server}/score"},
        "endpoint_keys": {"managed": {"primary": "k1"}, "kubernetes": {"primary": "k2"}},
    }
    ran = []

    def pulumi(command, **kwargs):
        ran.append(command)
        return subprocess.CompletedProcess(command, 0, json.dumps(outputs), "")

    monkeypatch.setattr(invoke_command.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert _invoke(["--env", "dev", "--cloud", "azure"], run=pulumi) == 0
    assert ran == [["/usr/bin/pulumi", "stack", "output", "--stack", "dev", "--json", "--show-secrets"]]
    out = capsys.readouterr().out
    assert "Azure kubernetes endpoint" in out and "Azure managed endpoint" in out


def test_a_payload_file_with_its_content_type_on_a_url(local_server, tmp_path, capsys):
    payload = tmp_path / "rows.csv"
    payload.write_text("5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    code = _invoke(["--url", f"{local_server}/invocations", "--payload", str(payload), "--content-type", "text/csv"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert len(json.loads(out.split("\n", 1)[1])["predictions"]) == 2


def test_a_non_2xx_answer_exits_1_and_shows_it(local_server, tmp_path, capsys):
    payload = tmp_path / "wrong.json"
    payload.write_text('{"instances": [[1.0, 2.0]]}')
    assert _invoke(["--url", f"{local_server}/invocations", "--payload", str(payload)]) == 1
    out = capsys.readouterr().out
    assert ": HTTP 400 in " in out and "4" in json.loads(out.split("\n", 1)[1])["error"]


def test_no_answer_exits_1():
    assert _invoke(["--url", f"http://127.0.0.1:{unused_port()}/invocations", "--timeout", "2"]) == 1


def test_sigv4_signs_for_the_service_and_the_urls_region(local_server, capsys):
    sign = invoke_command.sigv4_signer(_Session(), "execute-api", "eu-central-1")
    headers = sign("https://abc123.execute-api.eu-central-1.amazonaws.com/prod/invocations", b"{}", {"A": "b"})
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-central-1/execute-api/aws4_request" in headers["Authorization"]
    assert "X-Amz-Date" in headers
    assert invoke_command._url_region("https://abc.lambda-url.us-east-2.on.aws/") == "us-east-2"
    assert invoke_command._url_region("https://abc.execute-api.eu-west-3.amazonaws.com/x") == "eu-west-3"
    # a signed request reaches the server like any other (the local server checks no signature)
    code = _invoke(["--url", f"{local_server}/invocations", "--sigv4", "lambda"], boto3_session=_Session())
    assert code == 0 and "(SigV4 lambda): HTTP 200" in capsys.readouterr().out


# -- SageMaker, through the Stubber ------------------------------------------------------------------------


def test_aws_invokes_the_environments_endpoint_by_the_stacks_name(local_server, capsys):
    request = urllib.request.Request(
        f"{local_server}/invocations",
        data=SMOKE_TEST_PAYLOAD.encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = answer.read()
    name = endpoint_name(load_spec(SPEC), "dev")
    session = _Session()
    session.stub.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"},
        {
            "EndpointName": name,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": SMOKE_TEST_PAYLOAD.encode(),
        },
    )
    code = _invoke(["--env", "dev", "--cloud", "aws", "--spec", str(SPEC)], boto3_session=session)
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith(f"SageMaker endpoint {name} (eu-west-1): HTTP 200 in ")
    assert session.asked == {"service": "sagemaker-runtime", "region_name": "eu-west-1"}  # the caller's own
    session.stub.assert_no_pending_responses()


def test_aws_model_error_shows_the_containers_status(capsys):
    session = _Session()
    session.stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message="Received client error (400) from primary",
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": 400, "OriginalMessage": '{"error": "expected 4 features"}'},
    )
    assert _invoke(["--env", "dev", "--cloud", "aws", "--region", "eu-west-1"], boto3_session=session) == 1
    assert ": HTTP 400 in " in capsys.readouterr().out


# -- bad arguments: exit 2, the argument named ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--env", "dev"], "--cloud:"),
        (["--cloud", "aws"], "--env:"),
        (["--cloud", "azure", "--scoring-uri", "http://x/score", "--key-env", "UNSET_KEY"], "--key-env UNSET_KEY:"),
        (["--cloud", "azure", "--env", "dev", "--key-env", "K"], "--key-env:"),
        (["--cloud", "aws", "--env", "dev", "--sigv4", "lambda"], "--sigv4:"),
        (["--url", "ftp://x"], "--url ftp://x:"),
        (["--url", "http://x", "--payload", "/nonexistent/payload.json"], "--payload /nonexistent/payload.json:"),
        (["--cloud", "aws", "--env", "dev", "--spec", "/nonexistent.yaml"], "--spec /nonexistent.yaml:"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(argv, named, capsys):
    assert _invoke(argv, environ={}, boto3_session=_Session()) == 2
    assert named in capsys.readouterr().err


def test_azure_env_without_the_pulumi_cli_names_the_alternative(capsys, monkeypatch):
    monkeypatch.setattr(invoke_command.shutil, "which", lambda name: None)
    assert _invoke(["--env", "dev", "--cloud", "azure"]) == 2
    assert "--scoring-uri URL --key-env VAR" in capsys.readouterr().err


def test_no_region_anywhere_names_region(capsys):
    assert _invoke(["--env", "dev", "--cloud", "aws"], boto3_session=_Session(region=None)) == 2
    assert "--region:" in capsys.readouterr().err


class _LambdaSession(_Session):
    """A session whose lambda client is the one given (sts/sagemaker stubs unused)."""

    def __init__(self, lambda_client):
        super().__init__()
        self.lambda_client = lambda_client

    def client(self, service, **kwargs):
        self.asked = {"service": service, **kwargs}
        return self.lambda_client


def test_aws_on_lambda_finds_the_function_url_and_signs_for_lambda(local_server, capsys, monkeypatch):
    spec_path = Path(__file__).resolve().parents[1] / "examples" / "aws" / "lambda.yaml"
    client = boto3.client("lambda", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    stub = Stubber(client)
    url = "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/"
    config = {
        "FunctionUrl": url,
        "FunctionArn": "arn:aws:lambda:eu-west-1:111111111111:function:iris-lambda-prod:live",
        "AuthType": "AWS_IAM",
        "CreationTime": "2026-12-01T00:00:00Z",
        "LastModifiedTime": "2026-12-01T00:00:00Z",
    }
    stub.add_response(
        "list_function_url_configs", {"FunctionUrlConfigs": [config]}, {"FunctionName": "iris-lambda-prod"}
    )
    stub.activate()
    sent = []
    real_urlopen = urllib.request.urlopen

    def to_local_server(request, timeout):  # the signed request as sent, answered by `twinserve local`
        sent.append(request)
        path = request.full_url.split(".on.aws", 1)[1]
        local = urllib.request.Request(f"{local_server}{path}", data=request.data, headers=dict(request.header_items()))
        return real_urlopen(local, timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", to_local_server)
    argv = ["--env", "prod", "--cloud", "aws", "--spec", str(spec_path), "--region", "eu-west-1"]
    code = _invoke(argv, boto3_session=_LambdaSession(client))
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith(f"Lambda function URL {url}invocations: HTTP 200 in ")
    (request,) = sent
    assert request.full_url == f"{url}invocations"
    assert "/eu-west-1/lambda/aws4_request" in request.get_header("Authorization")
    stub.assert_no_pending_responses()


def test_aws_on_fargate_goes_through_the_probe_function(local_server, capsys, monkeypatch):
    from twinserve.aws.internal_probe_handler import probe

    spec_path = Path(__file__).resolve().parents[1] / "examples" / "aws" / "fargate.yaml"
    monkeypatch.setattr(probe, "TARGET_URL", local_server)
    called = []

    class ProbeClient:  # Invoke runs the probe's own code in-process (its VPC position is what a test lacks)
        exceptions = boto3.client("lambda", region_name="eu-west-1").exceptions

        def invoke(self, FunctionName, Payload):  # noqa: N803 - boto3's names
            called.append(FunctionName)
            result = probe.handler(json.loads(Payload), None)
            return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}

    argv = ["--env", "prod", "--cloud", "aws", "--spec", str(spec_path), "--region", "eu-west-1"]
    code = _invoke(argv, boto3_session=_LambdaSession(ProbeClient()))
    out = capsys.readouterr().out
    assert code == 0, out
    assert called == ["iris-fargate-prod-probe"]
    assert out.startswith("ECS Fargate service iris-fargate-prod through iris-fargate-prod-probe (eu-west-1): HTTP 200")
