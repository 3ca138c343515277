"""`twinserve invoke`: one request to a deployed endpoint with the caller's own credentials.

    twinserve invoke --env dev --cloud aws [--spec deploy/twinserve.yaml]
    twinserve invoke --env dev --cloud azure                      # outputs of the Pulumi stack `dev`
    twinserve invoke --cloud azure --scoring-uri URL --key-env VAR
    twinserve invoke --url URL [--sigv4 execute-api|lambda]      # any HTTPS front (API Gateway, Lambda URL)

The request and the senders are the pipeline smoke test's (stacks/pipeline_scripts/smoke_test.py):
the same sample payload by default, the same InvokeEndpoint call and the same POST with the key as a
bearer token. Where the smoke test requires predictions, invoke shows the answer as it came: status,
latency and body. Exit 0 on 2xx, 1 on any other answer (or none), 2 on bad arguments.

On AWS the environment's ``aws.platform`` decides: the SageMaker endpoint, the Lambda function's URL
(found by the function's name, signed with SigV4), or an ECS Fargate service through its in-VPC probe
function (its load balancer is internal). API Gateway fronts and other URLs: give the URL with
``--url`` and, for IAM-authorized fronts, ``--sigv4 SERVICE`` (botocore's SigV4 with the caller's
credentials). A new platform adds one branch or ``_targets_*`` function.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SIGV4_SERVICES = ("execute-api", "lambda")
"""SigV4 signing names: API Gateway (IAM authorization) and Lambda function URLs (AWS_IAM auth)."""


class BadArgument(Exception):
    """An argument that names nothing to call (exit 2); the message starts with the argument."""


Target = tuple[str, Callable[[], tuple[int, bytes]]]
"""(what is called, the sender)."""


def add_invoke_command(subparsers) -> None:
    invoke = subparsers.add_parser(
        "invoke",
        help="send one request to a deployed endpoint with your credentials; print status, latency, answer",
        description=__doc__.split("\n\n", 1)[1].split("\n\nPlatforms")[0].strip("\n")
        + "\n\nRun from the project folder (the one with cdk.json and Pulumi.yaml) for --env.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    invoke.add_argument("--env", choices=["dev", "staging", "prod"], help="the environment (its deployed endpoint)")
    invoke.add_argument(
        "--cloud",
        choices=["aws", "azure"],
        help="AWS (by the environment's aws.platform: SageMaker, Lambda URL, Fargate probe) or Azure ML",
    )
    invoke.add_argument(
        "--spec", type=Path, default=Path("deploy/twinserve.yaml"), metavar="PATH", help="spec file (AWS: the name)"
    )
    invoke.add_argument(
        "--payload", type=Path, metavar="FILE", help="request body (default: the smoke test's iris row); - for stdin"
    )
    invoke.add_argument("--content-type", default="application/json", metavar="TYPE", help="default application/json")
    invoke.add_argument("--accept", default="application/json", metavar="TYPE", help="default application/json")
    invoke.add_argument("--region", help="AWS region (default: the spec's aws.region, else your AWS configuration)")
    invoke.add_argument("--scoring-uri", metavar="URL", help="Azure: this endpoint instead of the stack outputs")
    invoke.add_argument("--key-env", metavar="VAR", help="with --scoring-uri: the variable holding the endpoint key")
    invoke.add_argument("--url", metavar="URL", help="POST to this URL instead (any platform's HTTPS front)")
    invoke.add_argument("--sigv4", choices=SIGV4_SERVICES, help="with --url: sign with your AWS credentials")
    invoke.add_argument("--timeout", type=float, default=60, metavar="S", help="seconds per request (default 60)")
    invoke.set_defaults(func=run_invoke)


def run_invoke(args: argparse.Namespace, environ=os.environ, boto3_session=None, run=subprocess.run) -> int:
    ensure_stacks_importable()
    try:
        body = _payload(args.payload)
        targets = _targets(args, body, environ, boto3_session, run)
    except BadArgument as exc:
        print(f"twinserve invoke: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for where, send in targets:
        started = time.perf_counter()
        try:
            status, answer = send()
        except OSError as exc:  # DNS, refused, TLS, timeout: no answer at all
            status, answer = 0, f"no answer: {exc}".encode()
        latency_ms = (time.perf_counter() - started) * 1000
        print(f"{where}: HTTP {status or '-'} in {latency_ms:.1f} ms")
        print(answer.decode("utf-8", "replace"))
        failed += not 200 <= status < 300
    return 1 if failed else 0


def _payload(path: Path | None) -> bytes:
    from stacks.pipeline_scripts.smoke_test import SMOKE_TEST_PAYLOAD

    if path is None:
        return SMOKE_TEST_PAYLOAD.encode()
    try:
        return sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise BadArgument(f"--payload {path}: not readable ({exc.strerror or exc})") from None


def _targets(args, body: bytes, environ, boto3_session, run) -> list[Target]:
    if args.url:
        return _targets_url(args, body, boto3_session)
    if args.sigv4:
        raise BadArgument("--sigv4: only with --url")
    if args.cloud is None:
        raise BadArgument("--cloud: give aws or azure (or --url URL)")
    if args.cloud == "aws":
        return _targets_aws(args, body, boto3_session)
    return _targets_azure(args, body, environ, run)


def _targets_aws(args, body: bytes, boto3_session) -> list[Target]:
    """The environment's serving by its platform: the SageMaker endpoint, the Lambda function's URL
    (SigV4), or the Fargate service through its probe function; names from ``stacks/aws/names.py``."""
    from stacks.aws.names import endpoint_name, probe_function_name
    from stacks.pipeline_scripts.smoke_test import (
        function_url_invocations,
        http_sender,
        probe_sender,
        sagemaker_runtime,
        sagemaker_sender,
    )

    spec, env = _spec_and_env(args)
    if "aws" not in env.targets:
        raise BadArgument(f"--cloud aws: environment {args.env} of {args.spec} targets {', '.join(env.targets)} only")
    name = endpoint_name(spec, args.env)
    session = boto3_session or _boto3_session()
    region = args.region or env.aws.primary_region or session.region_name
    if not region:
        raise BadArgument("--region: no region in the spec (aws.region) or your AWS configuration; give --region")
    media = {"content_type": args.content_type, "accept": args.accept}
    if env.aws.platform == "ecs_fargate":
        probe = probe_function_name(spec, args.env)
        sender = probe_sender(session.client("lambda", region_name=region), probe, body=body, **media)
        return [(f"ECS Fargate service {name} through {probe} ({region})", sender)]
    if env.aws.platform == "lambda":
        configs = session.client("lambda", region_name=region).list_function_url_configs(FunctionName=name)
        urls = [config["FunctionUrl"] for config in configs.get("FunctionUrlConfigs", [])]
        if len(urls) != 1:
            raise BadArgument(f"--env {args.env}: function {name} has {len(urls)} function URLs in {region}, not 1")
        url = function_url_invocations(urls[0])
        sign = sigv4_signer(session, "lambda", region)
        return [
            (f"Lambda function URL {url}", http_sender(url, None, body=body, sign=sign, timeout=args.timeout, **media))
        ]
    runtime = sagemaker_runtime(session, role_arn=None, region=region)
    sender = sagemaker_sender(runtime, name, body=body, **media)
    return [(f"SageMaker endpoint {name} ({region})", sender)]


def _targets_azure(args, body: bytes, environ, run) -> list[Target]:
    from stacks.pipeline_scripts.smoke_test import BadInput, azure_targets, http_sender

    def sender(uri: str, key: str | None):
        options = {"content_type": args.content_type, "accept": args.accept, "timeout": args.timeout}
        return http_sender(uri, key, body=body, **options)

    if args.scoring_uri:
        key = environ.get(args.key_env) if args.key_env else None
        if args.key_env and not key:
            raise BadArgument(f"--key-env {args.key_env}: the variable is unset or empty")
        return [(f"Azure endpoint {args.scoring_uri}", sender(args.scoring_uri, key))]
    if args.key_env:
        raise BadArgument("--key-env: only with --scoring-uri")
    if args.env is None:
        raise BadArgument("--env: give the environment (its Pulumi stack), or --scoring-uri URL --key-env VAR")
    outputs = _pulumi_outputs(args.env, run)
    try:
        targets = azure_targets(outputs)
    except BadInput as exc:
        raise BadArgument(f"--env {args.env}: {exc}") from None
    return [(f"Azure {kind} endpoint {uri}", sender(uri, key)) for kind, uri, key in targets]


def _targets_url(args, body: bytes, boto3_session) -> list[Target]:
    from stacks.pipeline_scripts.smoke_test import http_sender

    if not args.url.startswith(("https://", "http://")):
        raise BadArgument(f"--url {args.url}: an http(s) URL is allowed")
    sign = None
    if args.sigv4:
        session = boto3_session or _boto3_session()
        region = args.region or _url_region(args.url) or session.region_name
        if not region:
            raise BadArgument("--region: the URL names no region and your AWS configuration has none; give --region")
        sign = sigv4_signer(session, args.sigv4, region)
    where = f"{args.url}" + (f" (SigV4 {args.sigv4})" if args.sigv4 else "")
    options = {"content_type": args.content_type, "accept": args.accept, "timeout": args.timeout}
    return [(where, http_sender(args.url, None, body=body, sign=sign, **options))]


def sigv4_signer(session, service: str, region: str) -> Callable[[str, bytes, dict[str, str]], dict[str, str]]:
    """The smoke test's SigV4 signer with the session's credentials."""
    from stacks.pipeline_scripts.smoke_test import sigv4_signer as signer

    credentials = session.get_credentials()
    if credentials is None:
        raise BadArgument("--sigv4: no AWS credentials found (environment, profile or instance role)")
    return signer(credentials, service, region)


def _url_region(url: str) -> str | None:
    """The region in an AWS endpoint's host name: <id>.execute-api.<region>.amazonaws.com,
    <id>.lambda-url.<region>.on.aws."""
    host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].split(".")
    for marker in ("execute-api", "lambda-url"):
        if marker in host and host.index(marker) + 1 < len(host):
            return host[host.index(marker) + 1]
    return None


def _spec_and_env(args):
    from .spec import SpecError, load_spec

    if args.env is None:
        raise BadArgument("--env: give the environment whose endpoint to call")
    spec_path = args.spec if args.spec.is_absolute() else _project_root() / args.spec
    try:
        spec = load_spec(spec_path)
    except SpecError as exc:
        raise BadArgument(f"--spec {args.spec}: {exc}") from None
    except OSError as exc:
        raise BadArgument(f"--spec {args.spec}: not readable ({exc})") from None
    try:
        return spec, spec.environment(args.env)
    except KeyError as exc:
        raise BadArgument(f"--env {args.env}: {exc.args[0]}") from None


def _pulumi_outputs(stack: str, run) -> dict:
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise BadArgument(
            "--env: the Pulumi CLI is not installed to read the stack's outputs; give --scoring-uri URL --key-env VAR"
        )
    shown = run(
        [pulumi, "stack", "output", "--stack", stack, "--json", "--show-secrets"],
        capture_output=True,
        text=True,
        cwd=_project_root(),
    )
    if shown.returncode != 0:
        raise BadArgument(f"--env {stack}: `pulumi stack output` failed: {shown.stderr.strip()[:500]}")
    try:
        outputs = json.loads(shown.stdout)
    except ValueError:
        raise BadArgument(f"--env {stack}: `pulumi stack output` printed no JSON") from None
    if not isinstance(outputs, dict):
        raise BadArgument(f"--env {stack}: `pulumi stack output` printed no JSON object")
    return outputs


def _boto3_session():
    import boto3

    return boto3.Session()


def _project_root() -> Path:
    from .synth import Project

    try:
        return Project.find().root
    except FileNotFoundError as exc:
        raise BadArgument(f"--env: {exc}; run from the project folder") from None


def ensure_stacks_importable() -> None:
    """`stacks` (the smoke test's senders, the endpoint names) is the project's folder, not an
    installed package: importable from the project folder, else from this checkout."""
    if importlib.util.find_spec("stacks") is None:
        sys.path.insert(0, str(REPO_ROOT))
