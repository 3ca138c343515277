"""Build once on Azure: the pipeline's ECR image imported into the workspace registry by digest.

The ARM and Entra endpoints are a local HTTP server here (no Azure credentials on the build machines);
the requests are checked against the REST reference:
https://learn.microsoft.com/rest/api/containerregistry/registries/import-image (body, 202 + polling),
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow (client assertion).
The program's use of it runs under the recording mocks, like every Azure plan.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from azure_plan_queries import DEPLOY_SPEC, ML, REPO, by_name, of_type

from twinserve.azure.image_import import (
    SOURCE_REGISTRY_PASSWORD_VARIABLE,
    ImageImportError,
    ImageImportProvider,
    ImportRequest,
    arm_token,
    import_image,
    parse_source_image,
)
from twinserve.spec import SpecError
from twinserve.synth import Project, plan_azure_environment

DIGEST = "sha256:" + "ab" * 32
SOURCE = f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/cdk-hnb659fds-container-assets-111111111111-eu-west-1@{DIGEST}"
REGISTRY_ID = "/subscriptions/s/resourceGroups/rg-iris-dev/providers/Microsoft.ContainerRegistry/registries/irisdevacr"


class FakeAzure:
    """Entra's token endpoint and ARM's importImage + operation status, recording every request."""

    def __init__(self, statuses: list[str], start_status: int = 202) -> None:
        self.requests: list[dict] = []
        self.statuses, self.start_status = list(statuses), start_status
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _record(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                entry = {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                fake.requests.append(entry)
                return entry

            def _answer(self, status: int, document: dict | None = None, headers: dict | None = None) -> None:
                data = json.dumps(document or {}).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802
                self._record()
                if self.path.endswith("/oauth2/v2.0/token"):
                    return self._answer(200, {"access_token": "arm-token", "token_type": "Bearer"})
                if "/importImage?" in self.path:
                    if fake.start_status != 202:
                        return self._answer(fake.start_status, {"error": {"code": "Forbidden", "message": "no"}})
                    return self._answer(
                        202, headers={"Azure-AsyncOperation": f"{fake.url}/operations/1", "Retry-After": "0"}
                    )
                return self._answer(404)

            def do_GET(self):  # noqa: N802
                self._record()
                status = fake.statuses.pop(0)
                error = {"error": {"code": "ImportFailed", "message": "manifest unknown"}} if status == "Failed" else {}
                return self._answer(200, {"status": status, **error})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def azure():
    fakes: list[FakeAzure] = []

    def make(statuses=("InProgress", "Succeeded"), start_status=202) -> FakeAzure:
        fakes.append(FakeAzure(list(statuses), start_status))
        return fakes[-1]

    yield make
    for fake in fakes:
        fake.close()


OIDC = {"ARM_OIDC_TOKEN": "sts-token", "ARM_CLIENT_ID": "app-id", "ARM_TENANT_ID": "tenant-id", "ARM_USE_OIDC": "true"}


def test_the_arm_token_comes_from_the_pipeline_oidc_sign_in(azure):
    fake = azure()
    assert arm_token(OIDC, arm_endpoint="https://management.azure.com", authority=fake.url) == "arm-token"
    (request,) = fake.requests
    assert request["path"] == "/tenant-id/oauth2/v2.0/token"
    form = dict(urllib.parse.parse_qsl(request["body"]))
    assert form == {
        "client_id": "app-id",
        "scope": "https://management.azure.com/.default",
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": "sts-token",
    }


def test_a_client_secret_is_the_fallback_and_az_login_the_last_resort(azure):
    fake = azure()
    secret = {"ARM_CLIENT_SECRET": "s3cret", "ARM_CLIENT_ID": "app-id", "ARM_TENANT_ID": "tenant-id"}
    arm_token(secret, authority=fake.url)
    assert dict(urllib.parse.parse_qsl(fake.requests[0]["body"]))["client_secret"] == "s3cret"
    calls = []
    token = arm_token({}, az=lambda args: calls.append(args) or json.dumps({"accessToken": "from-az"}))
    assert token == "from-az" and calls[0][:3] == ["az", "account", "get-access-token"]


def test_import_posts_the_digest_with_the_ecr_credentials_and_waits_for_success(azure):
    fake = azure(statuses=["InProgress", "InProgress", "Succeeded"])
    request = ImportRequest(REGISTRY_ID, SOURCE, "iris-serving", "AWS", "ecr-password")
    import_image(request, "arm-token", arm_endpoint=fake.url, sleep=lambda _: None)
    start, *polls = fake.requests
    assert start["method"] == "POST"
    assert start["path"] == f"{REGISTRY_ID}/importImage?api-version=2023-07-01"
    assert start["headers"]["Authorization"] == "Bearer arm-token"
    assert json.loads(start["body"]) == {
        "source": {
            "registryUri": "111111111111.dkr.ecr.eu-west-1.amazonaws.com",
            "sourceImage": f"cdk-hnb659fds-container-assets-111111111111-eu-west-1@{DIGEST}",
            "credentials": {"username": "AWS", "password": "ecr-password"},
        },
        "targetTags": ["iris-serving:abababababab"],
        "mode": "Force",
    }
    assert [p["path"] for p in polls] == ["/operations/1"] * 3


def test_a_failed_or_refused_import_raises_with_azures_reason(azure):
    fake = azure(statuses=["InProgress", "Failed"])
    request = ImportRequest(REGISTRY_ID, SOURCE, "iris-serving", "AWS", "pw")
    with pytest.raises(ImageImportError, match="manifest unknown"):
        import_image(request, "t", arm_endpoint=fake.url, sleep=lambda _: None)
    refused = azure(start_status=403)
    with pytest.raises(ImageImportError, match=r"refused \(403\): Forbidden: no"):
        import_image(request, "t", arm_endpoint=refused.url, sleep=lambda _: None)


def test_the_provider_reads_the_password_at_run_time_and_answers_the_image_by_digest(azure, monkeypatch):
    fake = azure()
    props = {
        "registry_id": REGISTRY_ID,
        "login_server": "irisdevacr.azurecr.io",
        "source_image": SOURCE,
        "target_repository": "iris-serving",
        "username": "AWS",
        "password_variable": SOURCE_REGISTRY_PASSWORD_VARIABLE,
        "arm_endpoint": fake.url,
        "authority": fake.url,
    }
    for name, value in OIDC.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(SOURCE_REGISTRY_PASSWORD_VARIABLE, raising=False)
    with pytest.raises(ImageImportError, match=SOURCE_REGISTRY_PASSWORD_VARIABLE):
        ImageImportProvider().create(props)
    monkeypatch.setenv(SOURCE_REGISTRY_PASSWORD_VARIABLE, "ecr-password")
    monkeypatch.setattr("twinserve.azure.image_import.time.sleep", lambda _: None)
    created = ImageImportProvider().create(props)
    assert created.outs["image"] == f"irisdevacr.azurecr.io/iris-serving@{DIGEST}"
    assert "ecr-password" not in json.dumps(created.outs)  # never in the state
    assert ImageImportProvider().diff(created.id, props, {**props, "source_image": SOURCE.replace("ab", "cd")}).changes
    assert not ImageImportProvider().diff(created.id, props, dict(props)).changes


def test_parse_source_image_names_the_rule():
    assert parse_source_image(SOURCE)[2] == DIGEST
    with pytest.raises(ValueError, match="an image by digest"):
        parse_source_image("111111111111.dkr.ecr.eu-west-1.amazonaws.com/repo:latest")


def _plan(config: dict) -> list[dict]:
    import os

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        overrides = {"twinserve:budgetStartDate": "2026-11-01", **config}
        return [
            r.as_dict()
            for r in plan_azure_environment(Project.find(REPO), "dev", DEPLOY_SPEC, config_overrides=overrides)
        ]
    finally:
        os.chdir(cwd)


def test_with_a_source_image_the_serving_environment_runs_that_digest(sample_model):
    planned = _plan({"twinserve:sourceImage": SOURCE})
    imported = by_name(planned, "iris-dev-image-import")
    assert imported["type"] == "pulumi-python:dynamic:Resource"
    assert imported["inputs"]["source_image"] == SOURCE
    assert "__provider" not in imported["inputs"]
    registry = of_type(planned, "azure-native:containerregistry:Registry")[0]
    assert imported["inputs"]["registry_id"] == f"{registry['name']}-id"
    serving = by_name(planned, "iris-dev-model-env")["inputs"]["properties"]
    assert serving["image"] == f"{registry['inputs']['registryName']}.azurecr.io/iris-serving@{DIGEST}"
    assert "build" not in serving  # no second build of the same context
    batch = by_name(planned, "iris-dev-model-batch-env")["inputs"]["properties"]
    assert batch["build"]["dockerfilePath"] == "Dockerfile.azureml-batch"  # adds Azure ML's batch packages
    for deployment in of_type(planned, ML + "OnlineDeployment"):
        assert deployment["inputs"]["properties"]["environmentId"] == "iris-dev-model-env-id"


def test_without_a_source_image_azure_ml_builds_the_context(sample_model):
    planned = _plan({})
    assert not [r for r in planned if r["type"] == "pulumi-python:dynamic:Resource"]
    assert "build" in by_name(planned, "iris-dev-model-env")["inputs"]["properties"]


def test_a_source_image_not_by_digest_is_refused_naming_the_config(sample_model):
    with pytest.raises(SpecError) as raised:
        _plan({"twinserve:sourceImage": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/repo:latest"})
    assert "twinserve:sourceImage" in str(raised.value) and "by digest" in str(raised.value)


def test_the_pipeline_step_sets_the_config_the_program_reads():
    from stacks.azure.program import SOURCE_IMAGE_CONFIG
    from stacks.pipeline_scripts import azure_deploy

    commands = azure_deploy.pulumi_commands(
        "up", env="dev", spec="deploy/twinserve.yaml", backend_url="s3://b", secrets_provider="awskms://k", image=SOURCE
    )
    assert ["pulumi", "config", "set", f"twinserve:{SOURCE_IMAGE_CONFIG}", SOURCE, "--stack", "dev"] in commands
    assert azure_deploy.SOURCE_REGISTRY_PASSWORD == SOURCE_REGISTRY_PASSWORD_VARIABLE
