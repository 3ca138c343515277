"""The pipeline's Azure step: sign in, find the image this execution built, run the Pulumi program.

    python3 -m stacks.pipeline_scripts.azure_deploy preview|up --env dev --spec deploy/twinserve.yaml \\
        --backend-url s3://... --secrets-provider awskms://... --tenant-id ... --client-id ... \\
        [--sign-in federated|client_secret] [--region eu-west-1] \\
        [--assets-manifest cdk.out/.../Serving.assets.json --image-reader-role-arn arn:... \\
         --image-account 111111111111 --image-region eu-west-1]

Sign-in (docs/azure.md, "Promotion pipeline: Azure sign-in"):
  federated      the CodeBuild role asks regional AWS STS for a signed token (GetWebIdentityToken,
                 audience ``api://AzureADTokenExchange``, at most an hour), which the Entra app's
                 federated credential trusts; it reaches the azure-native provider as OIDC
                 (ARM_USE_OIDC, ARM_OIDC_TOKEN). Any client secret or certificate in the environment is
                 removed first: the provider would silently prefer it.
  client_secret  ARM_CLIENT_SECRET, injected by CodeBuild from Secrets Manager (never in the spec,
                 the repository or the project's plain variables).

Build once: the stage's serving image was published to the environment's ECR repository by the
pipeline's Assets stage. Its repository and tag are read from the stage's asset manifest (in the
Build step's output), its digest and a pull token through the environment's image-reader role; the
program imports exactly that digest into the workspace registry (``twinserve:sourceImage``). Before
the first deployment of an environment (no image-reader role yet) the program builds from the
identical context instead, and says so.

The model version of the execution (``pipeline.model_source: registry``) comes with the Build step's
output too: ``build/approved-model/twinserve-deploy-inputs.json`` (stacks/deploy_inputs.py).

Exit codes: 0 done; 1 the Pulumi command failed (its output above says why; a lock held by another
update is named); 2 bad arguments or sign-in failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
from collections.abc import MutableMapping
from pathlib import Path

from twinserve.azure.image_import import SOURCE_REGISTRY_PASSWORD_VARIABLE
from twinserve.platform import aws as aws_platform
from twinserve.platform import azure as azure_platform

from ..azure.program import SOURCE_IMAGE_CONFIG
from ..deploy_inputs import DEPLOY_INPUTS_FILE, DEPLOY_INPUTS_VARIABLE

APPROVED_MODEL_DIR = Path("build") / "approved-model"
"""Where the Build step's ``twinserve resolve-model`` leaves the execution's model (and its inputs file)."""
SOURCE_REGISTRY_PASSWORD = SOURCE_REGISTRY_PASSWORD_VARIABLE
"""The ECR pull token the program's image import hands to Azure Container Registry (never on a command line)."""
LOCKED = "the stack is currently locked"


class StepError(Exception):
    """A problem before Pulumi runs (exit 2)."""


def federated_environment(
    environ: MutableMapping[str, str], *, tenant_id: str, client_id: str, token: str
) -> MutableMapping[str, str]:
    """The azure-native provider's OIDC sign-in, with every credential it would prefer removed."""
    for name in azure_platform.CLIENT_SECRET_VARIABLES:
        environ.pop(name, None)
    environ.update(
        {"ARM_USE_OIDC": "true", "ARM_OIDC_TOKEN": token, "ARM_CLIENT_ID": client_id, "ARM_TENANT_ID": tenant_id}
    )
    return environ


def client_secret_environment(
    environ: MutableMapping[str, str], *, tenant_id: str, client_id: str
) -> MutableMapping[str, str]:
    if not environ.get("ARM_CLIENT_SECRET"):
        raise StepError(
            "sign-in client_secret: ARM_CLIENT_SECRET is empty; CodeBuild injects it from "
            "pipeline.azure.client_secret_arn (check the secret exists and holds the app's secret)"
        )
    environ.pop("ARM_USE_OIDC", None)
    environ.pop("ARM_OIDC_TOKEN", None)
    environ.update({"ARM_CLIENT_ID": client_id, "ARM_TENANT_ID": tenant_id})
    return environ


def web_identity_token(sts) -> str:
    """A signed token for Entra, as long-lived as STS allows (a `pulumi up` that outlasts it fails, and
    the retried step resumes from the state)."""
    answer = sts.get_web_identity_token(
        Audience=[azure_platform.FEDERATED_TOKEN_AUDIENCE],
        SigningAlgorithm="RS256",
        DurationSeconds=aws_platform.WEB_IDENTITY_TOKEN_SECONDS[1],
    )
    return answer["WebIdentityToken"]


def serving_image(manifest: Path, *, account: str, region: str) -> tuple[str, str, str]:
    """(registry host, repository, tag) of the one Docker image asset in a stack's asset manifest; the
    manifest may spell the environment's account and region as placeholders (cdk-assets fills them in)."""
    try:
        images = json.loads(manifest.read_text()).get("dockerImages", {})
    except (OSError, ValueError) as exc:
        raise StepError(f"--assets-manifest {manifest}: not readable ({exc})") from None
    if len(images) != 1:
        raise StepError(f"--assets-manifest {manifest}: expected one docker image asset, found {len(images)}")
    (image,) = images.values()
    destinations = list(image["destinations"].values())
    if len(destinations) != 1:
        raise StepError(f"--assets-manifest {manifest}: expected one destination, found {len(destinations)}")
    destination = destinations[0]
    repository = destination["repositoryName"].replace("${AWS::AccountId}", account).replace("${AWS::Region}", region)
    return f"{account}.dkr.ecr.{region}.amazonaws.com", repository, destination["imageTag"]


def source_image(ecr, manifest: Path, *, account: str, region: str) -> tuple[str, str]:
    """(``<host>/<repository>@sha256:...``, ECR pull password) of the stage's image."""
    host, repository, tag = serving_image(manifest, account=account, region=region)
    described = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    digest = described[0]["imageDigest"]
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    if user != "AWS":
        raise StepError(f"unexpected ECR token user {user!r}")
    return f"{host}/{repository}@{digest}", password


def pulumi_commands(
    action: str, *, env: str, spec: str, backend_url: str, secrets_provider: str, image: str | None
) -> list[list[str]]:
    """The Pulumi CLI calls of one step, in order (state in S3, secrets with KMS, config for this run)."""
    commands = [
        ["pulumi", "login", backend_url],
        ["pulumi", "stack", "select", env, "--create", "--secrets-provider", secrets_provider, "--non-interactive"],
        ["pulumi", "config", "set", "twinserve:spec", spec, "--stack", env],
    ]
    if image:
        commands.append(["pulumi", "config", "set", f"twinserve:{SOURCE_IMAGE_CONFIG}", image, "--stack", env])
    if action == "preview":
        commands.append(["pulumi", "preview", "--stack", env, "--diff", "--non-interactive"])
    else:
        commands.append(["pulumi", "up", "--stack", env, "--yes", "--skip-preview", "--non-interactive"])
    return commands


def main(argv: list[str] | None = None, environ: MutableMapping[str, str] | None = None, boto3_session=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m stacks.pipeline_scripts.azure_deploy", description=__doc__)
    parser.add_argument("action", choices=["preview", "up"])
    parser.add_argument("--env", required=True, help="the Pulumi stack (= environment)")
    parser.add_argument("--spec", required=True, help="the spec, relative to the repository root")
    parser.add_argument("--backend-url", required=True)
    parser.add_argument("--secrets-provider", required=True)
    parser.add_argument("--tenant-id", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--sign-in", choices=["federated", "client_secret"], default="federated")
    parser.add_argument("--region", help="the pipeline's region (STS's regional endpoint)")
    parser.add_argument("--assets-manifest", type=Path, help="the stage's Serving stack asset manifest")
    parser.add_argument("--image-reader-role-arn", help="the environment's image-reader role")
    parser.add_argument("--image-account", help="the environment's AWS account (where its image was published)")
    parser.add_argument("--image-region", help="the environment's AWS region")
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    if boto3_session is None:
        import boto3  # noqa: PLC0415 - the tests pass a session

        boto3_session = boto3.Session(region_name=args.region)
    try:
        if args.sign_in == "federated":
            region = args.region or boto3_session.region_name
            sts = boto3_session.client("sts", region_name=region, endpoint_url=f"https://sts.{region}.amazonaws.com")
            token = web_identity_token(sts)
            federated_environment(environ, tenant_id=args.tenant_id, client_id=args.client_id, token=token)
        else:
            client_secret_environment(environ, tenant_id=args.tenant_id, client_id=args.client_id)
        image = _image(args, boto3_session, environ)
    except StepError as exc:
        print(f"azure step: {exc}", file=sys.stderr)
        return 2
    inputs = APPROVED_MODEL_DIR / DEPLOY_INPUTS_FILE
    if inputs.is_file():
        environ[DEPLOY_INPUTS_VARIABLE] = str(inputs.resolve())
        print(f"azure step: model version from {inputs}")
    for command in pulumi_commands(
        args.action,
        env=args.env,
        spec=args.spec,
        backend_url=args.backend_url,
        secrets_provider=args.secrets_provider,
        image=image,
    ):
        print("+", " ".join(command), flush=True)
        result = subprocess.run(command, env=dict(environ), capture_output=True, text=True)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.returncode != 0:
            if LOCKED in result.stdout + result.stderr:
                print(
                    f"azure step: stack {args.env} is locked by another update (another execution or a "
                    "`pulumi up` by hand); nothing was changed by this one - retry the stage once it is done",
                    file=sys.stderr,
                )
            return 1
    return 0


def _image(args, session, environ: MutableMapping[str, str]) -> str | None:
    if not (args.assets_manifest and args.image_reader_role_arn):
        return None
    sts = session.client("sts")
    try:
        credentials = sts.assume_role(RoleArn=args.image_reader_role_arn, RoleSessionName="twinserve-azure-image")[
            "Credentials"
        ]
    except Exception as exc:  # noqa: BLE001 - botocore's ClientError, without importing botocore here
        if "AccessDenied" in str(exc) or "NoSuchEntity" in str(exc):
            print(
                f"azure step: {args.image_reader_role_arn} cannot be assumed yet (the environment's first "
                "deployment creates it): Azure ML builds the image from the identical context this time"
            )
            return None
        raise
    if not (args.image_account and args.image_region):
        raise StepError("--assets-manifest needs --image-account and --image-region (the environment's)")
    ecr = session.client(
        "ecr",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=args.image_region,
    )
    image, password = source_image(ecr, args.assets_manifest, account=args.image_account, region=args.image_region)
    environ[SOURCE_REGISTRY_PASSWORD] = password
    print(f"azure step: serving image {image} (imported into the workspace registry by digest)")
    return image


if __name__ == "__main__":
    sys.exit(main())
