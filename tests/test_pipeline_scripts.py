"""The pipeline's Azure step and model resolution (stacks/pipeline_scripts), run as the pipeline runs them.

No AWS or Pulumi CLI can run here: AWS calls go to botocore's Stubber (real boto3 clients, real request
validation, canned answers), and `pulumi` is a recording stand-in on PATH. The model archives, the
asset manifest and the deploy-inputs file are real files.
"""

from __future__ import annotations

import base64
import io
import json
import stat
import tarfile
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.response import StreamingBody
from botocore.stub import Stubber

from stacks.deploy_inputs import DEPLOY_INPUTS_VARIABLE, apply_deploy_inputs, load_deploy_inputs
from stacks.pipeline_scripts import azure_deploy, resolve_model
from twinserve.platform import azure as azure_platform
from twinserve.spec import parse_spec

REPO = Path(__file__).resolve().parents[1]
DIGEST = "sha256:" + "ab" * 32
TAG = "0" * 64


class StubbedSession:
    """A boto3 session whose clients are stubbed; ``stubs[service]`` queues their answers."""

    def __init__(self):
        self._session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="eu-west-1")
        self.region_name = "eu-west-1"
        self.clients, self.stubs, self.calls = {}, {}, []

    def client(self, service, **kwargs):
        self.calls.append((service, kwargs))
        if service not in self.clients:
            client = self._session.client(service, region_name=kwargs.get("region_name", "eu-west-1"))
            self.clients[service] = client
            self.stubs[service] = Stubber(client)
            self.stubs[service].activate()
        return self.clients[service]


def _archive(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()


# --------------------------------------------------------------------------- resolve_model


def _stub_approved(session, archive: bytes, version: int = 7):
    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/iris/{version}"
    session.client("sagemaker")
    session.client("s3")
    session.stubs["sagemaker"].add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": [{"ModelPackageArn": arn, "ModelPackageStatus": "Completed", "CreationTime": 0}]},
        {
            "ModelPackageGroupName": "iris",
            "ModelApprovalStatus": "Approved",
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 1,
        },
    )
    session.stubs["sagemaker"].add_response(
        "describe_model_package",
        {
            "ModelPackageName": "iris",
            "ModelPackageArn": arn,
            "ModelPackageVersion": version,
            "CreationTime": 0,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            "InferenceSpecification": {
                "Containers": [{"Image": "x", "ModelDataUrl": "s3://models-bucket/iris/7/model.tar.gz"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        },
        {"ModelPackageName": arn},
    )
    session.stubs["s3"].add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(archive), len(archive))},
        {"Bucket": "models-bucket", "Key": "iris/7/model.tar.gz"},
    )
    return arn


def test_the_newest_approved_version_is_unpacked_and_named_for_both_clouds(tmp_path, sample_model):
    model = (sample_model / "model" / "model.onnx").read_bytes()
    session = StubbedSession()
    arn = _stub_approved(session, _archive({"model.onnx": model, "metadata.json": b"{}"}))
    out = tmp_path / "approved-model"
    assert resolve_model.main(["--group", "iris", "--out", str(out)], session=session) == 0
    assert (out / "model" / "model.onnx").read_bytes() == model
    inputs = load_deploy_inputs({DEPLOY_INPUTS_VARIABLE: str(out / "twinserve-deploy-inputs.json")})
    assert (inputs.model_version, inputs.model_package_arn, inputs.model_dir) == ("7", arn, (out / "model").resolve())
    # the file names its folder relatively: it travels with the Build step's output
    assert json.loads((out / "twinserve-deploy-inputs.json").read_text())["model_dir"] == "model"
    for stub in session.stubs.values():
        stub.assert_no_pending_responses()


def test_the_spec_then_serves_that_version_from_that_folder(tmp_path, sample_model):
    session = StubbedSession()
    _stub_approved(session, _archive({"model.onnx": (sample_model / "model" / "model.onnx").read_bytes()}))
    resolve_model.main(["--group", "iris", "--out", str(tmp_path)], session=session)
    inputs = load_deploy_inputs({DEPLOY_INPUTS_VARIABLE: str(tmp_path / "twinserve-deploy-inputs.json")})
    raw = yaml.safe_load((REPO / "deploy" / "twinserve.yaml").read_text())
    raw["environments"]["staging"]["serving"]["shadow"]["model_version"] = "1"  # a pinned version stays pinned
    spec = apply_deploy_inputs(parse_spec(raw), inputs)
    assert spec.model.version == "7" and spec.model.artifact.path == str(tmp_path / "model")
    assert spec.environment("staging").serving.shadow.model_version == "1"
    assert apply_deploy_inputs(parse_spec(raw), None) == parse_spec(raw)


def test_nothing_approved_deploys_the_specs_model_and_still_leaves_the_output_folder(tmp_path):
    session = StubbedSession()
    session.client("sagemaker")
    session.client("s3")
    session.stubs["sagemaker"].add_response("list_model_packages", {"ModelPackageSummaryList": []})
    out = tmp_path / "approved-model"
    assert resolve_model.main(["--group", "iris", "--out", str(out)], session=session) == 0
    assert not (out / "twinserve-deploy-inputs.json").exists()
    assert "no Approved version" in (out / resolve_model.RESOLUTION_FILE).read_text()  # CodeBuild needs a file


def test_an_archive_that_escapes_its_folder_is_refused(tmp_path):
    with pytest.raises(tarfile.FilterError):
        resolve_model.unpack(_archive({"../outside.txt": b"x"}), tmp_path / "model")
    assert not (tmp_path / "outside.txt").exists()


def test_a_bad_inputs_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "inputs.json").write_text('{"model_version": "seven", "model_dir": ".", "model_package_arn": "a"}')
    with pytest.raises(ValueError, match=r"TWINSERVE_DEPLOY_INPUTS=.*inputs.json: model_version 'seven'"):
        load_deploy_inputs({DEPLOY_INPUTS_VARIABLE: str(tmp_path / "inputs.json")})


# --------------------------------------------------------------------------- azure_deploy


def test_federated_sign_in_removes_every_credential_the_provider_would_prefer():
    environ = {name: "leaked" for name in azure_platform.CLIENT_SECRET_VARIABLES} | {"PATH": "/bin"}
    azure_deploy.federated_environment(environ, tenant_id="t", client_id="c", token="jwt")
    assert not set(azure_platform.CLIENT_SECRET_VARIABLES) & set(environ)
    assert environ == {
        "PATH": "/bin",
        "ARM_USE_OIDC": "true",
        "ARM_OIDC_TOKEN": "jwt",
        "ARM_CLIENT_ID": "c",
        "ARM_TENANT_ID": "t",
    }


def test_client_secret_sign_in_needs_the_injected_secret():
    with pytest.raises(azure_deploy.StepError, match="ARM_CLIENT_SECRET is empty"):
        azure_deploy.client_secret_environment({}, tenant_id="t", client_id="c")
    environ = azure_deploy.client_secret_environment(
        {"ARM_CLIENT_SECRET": "s", "ARM_USE_OIDC": "true"}, tenant_id="t", client_id="c"
    )
    assert "ARM_USE_OIDC" not in environ and environ["ARM_CLIENT_SECRET"] == "s"


def _manifest(tmp_path: Path) -> Path:
    manifest = tmp_path / "Serving.assets.json"
    manifest.write_text(
        json.dumps(
            {
                "dockerImages": {
                    TAG: {
                        "destinations": {
                            "current_account-current_region": {
                                "repositoryName": "cdk-hnb659fds-container-assets-${AWS::AccountId}-${AWS::Region}",
                                "imageTag": TAG,
                            }
                        }
                    }
                }
            }
        )
    )
    return manifest


def test_the_stages_image_is_read_from_its_asset_manifest_and_named_by_digest(tmp_path):
    session = StubbedSession()
    ecr = session.client("ecr")
    repository = "cdk-hnb659fds-container-assets-111111111111-eu-west-1"
    session.stubs["ecr"].add_response(
        "describe_images",
        {"imageDetails": [{"imageDigest": DIGEST, "imageTags": [TAG]}]},
        {"repositoryName": repository, "imageIds": [{"imageTag": TAG}]},
    )
    token = base64.b64encode(b"AWS:pull-password").decode()
    session.stubs["ecr"].add_response("get_authorization_token", {"authorizationData": [{"authorizationToken": token}]})
    image, password = azure_deploy.source_image(ecr, _manifest(tmp_path), account="111111111111", region="eu-west-1")
    assert image == f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/{repository}@{DIGEST}"
    assert password == "pull-password"


def _fake_pulumi(tmp_path: Path, exit_code: int = 0, output: str = "") -> Path:
    """A `pulumi` on PATH that records its arguments and the sign-in variables it was given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        f"with open({str(tmp_path / 'calls.jsonl')!r}, 'a') as f:\n"
        "    keep = ('ARM_USE_OIDC', 'ARM_OIDC_TOKEN', 'ARM_CLIENT_ID', 'ARM_TENANT_ID', 'ARM_CLIENT_SECRET',\n"
        "            'TWINSERVE_SOURCE_REGISTRY_PASSWORD', 'TWINSERVE_DEPLOY_INPUTS')\n"
        "    f.write(json.dumps({'args': sys.argv[1:], 'env': {k: os.environ.get(k) for k in keep}}) + '\\n')\n"
        f"print({output!r})\n"
        f"sys.exit({exit_code} if sys.argv[1] in ('up', 'preview') else 0)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def _args(tmp_path: Path, action: str = "up") -> list[str]:
    return [
        action,
        "--env",
        "dev",
        "--spec",
        "deploy/twinserve.yaml",
        "--backend-url",
        "s3://state?region=eu-west-1&awssdk=v2",
        "--secrets-provider",
        "awskms://alias/twinserve/iris/pulumi?region=eu-west-1",
        "--tenant-id",
        "00000000-0000-0000-0000-000000000000",
        "--client-id",
        "11111111-1111-1111-1111-111111111111",
        "--region",
        "eu-west-1",
        "--assets-manifest",
        str(_manifest(tmp_path)),
        "--image-reader-role-arn",
        "arn:aws:iam::111111111111:role/twinserve-iris-dev-image-reader",
        "--image-account",
        "111111111111",
        "--image-region",
        "eu-west-1",
    ]


def _stub_step(session: StubbedSession) -> None:
    session.client("sts")
    session.stubs["sts"].add_response(
        "get_web_identity_token",
        {"WebIdentityToken": "signed.jwt.token", "Expiration": "2026-12-02T00:00:00Z"},
        {"Audience": [azure_platform.FEDERATED_TOKEN_AUDIENCE], "SigningAlgorithm": "RS256", "DurationSeconds": 3600},
    )
    session.stubs["sts"].add_response(
        "assume_role",
        {
            "Credentials": {
                "AccessKeyId": "AKIAXXXXXXXXXXXXXXXX",
                "SecretAccessKey": "s",
                "SessionToken": "t",
                "Expiration": "2026-12-02T00:00:00Z",
            }
        },
        {
            "RoleArn": "arn:aws:iam::111111111111:role/twinserve-iris-dev-image-reader",
            "RoleSessionName": "twinserve-azure-image",
        },
    )
    session.client("ecr")
    session.stubs["ecr"].add_response("describe_images", {"imageDetails": [{"imageDigest": DIGEST}]})
    token = base64.b64encode(b"AWS:pull-password").decode()
    session.stubs["ecr"].add_response("get_authorization_token", {"authorizationData": [{"authorizationToken": token}]})


def test_the_azure_step_signs_in_keyless_imports_by_digest_and_runs_pulumi_up(tmp_path, monkeypatch, capsys):
    bin_dir = _fake_pulumi(tmp_path)
    monkeypatch.chdir(tmp_path)
    session = StubbedSession()
    _stub_step(session)
    environ = {"PATH": f"{bin_dir}:/usr/bin:/bin", "ARM_CLIENT_SECRET": "must-not-win"}
    assert azure_deploy.main(_args(tmp_path), environ=environ, boto3_session=session) == 0
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert [c["args"][:2] for c in calls] == [
        ["login", "s3://state?region=eu-west-1&awssdk=v2"],
        ["stack", "select"],
        ["config", "set"],
        ["config", "set"],
        ["up", "--stack"],
    ]
    assert calls[1]["args"][2:] == [
        "dev",
        "--create",
        "--secrets-provider",
        "awskms://alias/twinserve/iris/pulumi?region=eu-west-1",
        "--non-interactive",
    ]
    image = (
        f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/cdk-hnb659fds-container-assets-111111111111-eu-west-1@{DIGEST}"
    )
    assert calls[3]["args"] == ["config", "set", "twinserve:sourceImage", image, "--stack", "dev"]
    up = calls[-1]["env"]
    assert up["ARM_USE_OIDC"] == "true" and up["ARM_OIDC_TOKEN"] == "signed.jwt.token"
    assert up["ARM_CLIENT_SECRET"] is None  # it would silently win over the token
    assert up[azure_deploy.SOURCE_REGISTRY_PASSWORD] == "pull-password"
    # STS's regional endpoint: GetWebIdentityToken is not served by the global one
    assert ("sts", {"region_name": "eu-west-1", "endpoint_url": "https://sts.eu-west-1.amazonaws.com"}) in session.calls
    printed = capsys.readouterr()
    assert "pull-password" not in printed.out + printed.err and "signed.jwt.token" not in printed.out + printed.err


def test_a_locked_stack_fails_the_step_and_says_why(tmp_path, monkeypatch, capsys):
    bin_dir = _fake_pulumi(tmp_path, exit_code=255, output="error: the stack is currently locked by 1 lock(s)")
    monkeypatch.chdir(tmp_path)
    session = StubbedSession()
    _stub_step(session)
    assert azure_deploy.main(_args(tmp_path), environ={"PATH": f"{bin_dir}:/usr/bin:/bin"}, boto3_session=session) == 1
    assert "stack dev is locked by another update" in capsys.readouterr().err


def test_before_the_first_deployment_the_image_is_built_from_the_identical_context(tmp_path, monkeypatch, capsys):
    bin_dir = _fake_pulumi(tmp_path)
    monkeypatch.chdir(tmp_path)
    session = StubbedSession()
    session.client("sts")
    session.stubs["sts"].add_response(
        "get_web_identity_token", {"WebIdentityToken": "jwt", "Expiration": "2026-12-02T00:00:00Z"}
    )
    session.stubs["sts"].add_client_error("assume_role", service_error_code="AccessDenied", http_status_code=403)
    assert (
        azure_deploy.main(
            _args(tmp_path, "preview"), environ={"PATH": f"{bin_dir}:/usr/bin:/bin"}, boto3_session=session
        )
        == 0
    )
    calls = [json.loads(line)["args"] for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert not any("twinserve:sourceImage" in c for c in calls) and calls[-1][0] == "preview"
    assert "builds the image from the identical context" in capsys.readouterr().out


def test_the_executions_model_reaches_pulumi(tmp_path, monkeypatch):
    bin_dir = _fake_pulumi(tmp_path)
    monkeypatch.chdir(tmp_path)
    approved = tmp_path / azure_deploy.APPROVED_MODEL_DIR
    (approved / "model").mkdir(parents=True)
    (approved / "twinserve-deploy-inputs.json").write_text(
        '{"model_version": "7", "model_dir": "model", "model_package_arn": "a"}'
    )
    session = StubbedSession()
    _stub_step(session)
    azure_deploy.main(_args(tmp_path), environ={"PATH": f"{bin_dir}:/usr/bin:/bin"}, boto3_session=session)
    up = json.loads((tmp_path / "calls.jsonl").read_text().splitlines()[-1])
    assert up["env"]["TWINSERVE_DEPLOY_INPUTS"] == str((approved / "twinserve-deploy-inputs.json").resolve())
