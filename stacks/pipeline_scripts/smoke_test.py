"""The pipeline's smoke tests: one sample request to an environment's endpoints, predictions required.

    python3 -m stacks.pipeline_scripts.smoke_test sagemaker --endpoint-name iris-dev \\
        [--role-arn arn:aws:iam::111111111111:role/twinserve-iris-dev-smoke-test] [--region eu-west-1]
    python3 -m stacks.pipeline_scripts.smoke_test lambda --function-url https://abc.lambda-url.eu-west-1.on.aws/ \\
        [--role-arn ...] [--region eu-west-1]
    python3 -m stacks.pipeline_scripts.smoke_test fargate --probe-function iris-dev-probe [--role-arn ...]
    pulumi stack output --stack dev --json --show-secrets | \\
        python3 -m stacks.pipeline_scripts.smoke_test azure --stack-outputs -
    python3 -m stacks.pipeline_scripts.smoke_test azure --scoring-uri https://.../score --key-env ENDPOINT_KEY

Both clouds get the same request (:data:`SMOKE_TEST_PAYLOAD`) and the same check
(:func:`check_predictions`): a 2xx answer whose JSON body has a non-empty ``predictions`` list.

* ``sagemaker``: InvokeEndpoint through boto3, as the environment's smoke-test role when
  ``--role-arn`` is given (the pipeline's role may only assume that one).
* ``lambda``: a POST to the function URL's ``/invocations``, signed with SigV4 (the URL has IAM auth),
  as that role when ``--role-arn`` is given.
* ``fargate``: the service's load balancer is internal, so the request goes through the probe function
  the stack puts in the service's VPC (``twinserve.aws.internal_probe``): Lambda Invoke with the body,
  the service's status and body back.
* ``azure``: a POST to each online endpoint's scoring URI with its key as a bearer token (key auth), or
  with ``--entra-sign-in`` a Microsoft Entra token (aad_token; then the secondary locations' endpoints too);
  endpoints the stack lists in ``unreachable_endpoints`` (private ones) are skipped with the reason:
  the pipeline runs outside their network, and ``pulumi up`` has already waited for their deployments.
  With ``--stack-outputs`` every endpoint of the Pulumi stack is tested (``scoring_uris`` and the
  secret ``endpoint_keys`` outputs, read from a file or stdin, never a command line); with
  ``--scoring-uri`` one, its key read from the variable ``--key-env`` names.

A fresh deployment can answer 5xx/429 for a while (Azure ML routes traffic as soon as the
deployment is created; SageMaker briefly after an update): answers other than 2xx and 4xx are
retried until ``--deadline`` seconds have passed. A 4xx is the request's or the model's fault and
fails at once.

Exit codes: 0 every endpoint answered with predictions; 1 one did not (its answer is printed);
2 bad arguments or outputs.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

SMOKE_TEST_PAYLOAD = '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
"""The sample request (one iris flower) every environment's endpoints get, on both clouds."""
RETRY_STATUSES = frozenset({408, 429})
"""4xx answers that mean "not yet" rather than "wrong" (besides every 5xx)."""

LOCAL_STAND_INS = ("http://127.0.0.1:", "http://localhost:")
"""Plain-HTTP URLs ``lambda`` mode accepts besides https: `twinserve local` standing in for the function."""
Answer = tuple[int, bytes]
"""(HTTP status, body) of one request."""


class SmokeTestFailed(Exception):
    """An endpoint answered, but not with predictions (exit 1)."""


class BadInput(Exception):
    """Arguments or stack outputs that name no endpoint to test (exit 2)."""


def check_predictions(where: str, answer: Answer) -> list:
    """The predictions of a 2xx JSON answer, else :class:`SmokeTestFailed` naming ``where``."""
    status, body = answer
    text = body.decode("utf-8", "replace")[:500]
    if not 200 <= status < 300:
        raise SmokeTestFailed(f"{where}: HTTP {status}: {text}")
    try:
        parsed = json.loads(body)
    except ValueError:
        raise SmokeTestFailed(f"{where}: the answer is not JSON: {text}") from None
    predictions = parsed.get("predictions") if isinstance(parsed, dict) else None
    if not isinstance(predictions, list) or not predictions:
        raise SmokeTestFailed(f"{where}: no predictions in the answer: {text}")
    return predictions


def probe(
    where: str,
    send: Callable[[], Answer],
    *,
    deadline: float,
    pause: float = 10,
    sleep=time.sleep,
    clock=time.monotonic,
) -> list:
    """``send`` until it answers with predictions, retrying 5xx/408/429 (and unreachable) until
    ``deadline`` seconds from now."""
    give_up = clock() + deadline
    while True:
        try:
            answer = send()
        except OSError as exc:  # DNS not there yet, connection refused or reset
            answer = (0, f"unreachable: {exc}".encode())
        status = answer[0]
        retry = status == 0 or status >= 500 or status in RETRY_STATUSES
        if not retry or clock() + pause > give_up:
            return check_predictions(where, answer)
        print(f"{where}: HTTP {status or 'unreachable'}, retrying in {pause:.0f} s", file=sys.stderr)
        sleep(pause)


def http_sender(
    url: str,
    key: str | None,
    *,
    body: bytes | None = None,
    content_type: str = "application/json",
    accept: str = "application/json",
    sign: Callable[[str, bytes, dict[str, str]], dict[str, str]] | None = None,
    timeout: float = 60,
) -> Callable[[], Answer]:
    """A POST of ``body`` (default: the sample request) to ``url`` (an Azure ML scoring URI), the key
    as a bearer token; ``sign(url, body, headers)`` returns the headers to send instead (SigV4).
    Shared with ``twinserve invoke``."""
    body = SMOKE_TEST_PAYLOAD.encode() if body is None else body
    headers = {"Content-Type": content_type, "Accept": accept}
    if key:
        headers["Authorization"] = f"Bearer {key}"

    def send() -> Answer:
        sent = sign(url, body, dict(headers)) if sign else headers  # signed per request: the date is in it
        request = urllib.request.Request(url, data=body, headers=sent, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - https scoring URI
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    return send


def sagemaker_sender(
    runtime,
    endpoint_name: str,
    *,
    body: bytes | None = None,
    content_type: str = "application/json",
    accept: str = "application/json",
) -> Callable[[], Answer]:
    """InvokeEndpoint of ``body`` (default: the sample request); SageMaker's errors as (status, message).
    Shared with ``twinserve invoke``."""
    body = SMOKE_TEST_PAYLOAD.encode() if body is None else body

    def send() -> Answer:
        try:
            answer = runtime.invoke_endpoint(
                EndpointName=endpoint_name, ContentType=content_type, Accept=accept, Body=body
            )
        except runtime.exceptions.ModelError as exc:  # the container answered non-2xx
            return exc.response.get("OriginalStatusCode", 500), exc.response.get("OriginalMessage", "").encode()
        except runtime.exceptions.ClientError as exc:  # ValidationError (no such endpoint), throttling, ...
            return exc.response["ResponseMetadata"].get("HTTPStatusCode", 400), str(exc).encode()
        return 200, answer["Body"].read()

    return send


def assumed_credentials(session, *, role_arn: str | None, region: str | None) -> dict[str, str]:
    """Client keyword arguments with ``role_arn``'s temporary credentials (none without a role)."""
    if not role_arn:
        return {}
    credentials = session.client("sts", region_name=region).assume_role(
        RoleArn=role_arn, RoleSessionName="twinserve-smoke-test"
    )["Credentials"]
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def sagemaker_runtime(session, *, role_arn: str | None, region: str | None):
    """A sagemaker-runtime client, as ``role_arn`` when given."""
    return session.client(
        "sagemaker-runtime", region_name=region, **assumed_credentials(session, role_arn=role_arn, region=region)
    )


def sigv4_signer(credentials, service: str, region: str) -> Callable[[str, bytes, dict[str, str]], dict[str, str]]:
    """Headers for a POST signed with botocore ``credentials`` for ``service`` (``lambda`` for function
    URLs, ``execute-api`` for API Gateway) in ``region``. Shared with ``twinserve invoke``."""
    from botocore.auth import SigV4Auth  # noqa: PLC0415 - only the AWS tests need botocore
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415

    def sign(url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), service, region).add_auth(request)
        return dict(request.headers.items())

    return sign


def session_credentials(session, *, role_arn: str | None, region: str | None):
    """botocore credentials of ``role_arn`` when given, else the session's own (None when it has none)."""
    assumed = assumed_credentials(session, role_arn=role_arn, region=region)
    if not assumed:
        return session.get_credentials()
    from botocore.credentials import Credentials  # noqa: PLC0415

    return Credentials(assumed["aws_access_key_id"], assumed["aws_secret_access_key"], assumed["aws_session_token"])


def function_url_invocations(function_url: str) -> str:
    """The scoring route behind a Lambda function URL (``https://<id>.lambda-url.<region>.on.aws/``)."""
    return function_url.rstrip("/") + "/invocations"


def probe_sender(
    lambda_client,
    function_name: str,
    *,
    body: bytes | None = None,
    content_type: str = "application/json",
    accept: str = "application/json",
) -> Callable[[], Answer]:
    """``body`` (default: the sample request) to a Fargate service's ``/invocations`` through its in-VPC
    probe function (``twinserve.aws.internal_probe``). A service the probe cannot reach counts as
    unreachable (retried), like a URL that does not answer. Shared with ``twinserve invoke``."""
    body = SMOKE_TEST_PAYLOAD.encode() if body is None else body
    event = {
        "path": "/invocations",
        "body_base64": base64.b64encode(body).decode("ascii"),
        "content_type": content_type,
        "accept": accept,
    }
    payload = json.dumps(event).encode()

    def send() -> Answer:
        try:
            answer = lambda_client.invoke(FunctionName=function_name, Payload=payload)
        except lambda_client.exceptions.ClientError as exc:  # no such function, throttled, not allowed
            return exc.response["ResponseMetadata"].get("HTTPStatusCode", 400), str(exc).encode()
        result = answer["Payload"].read()
        if answer.get("FunctionError"):  # the probe itself failed (timeout, crash): retry like a 5xx
            return 502, b"probe function error: " + result[:500]
        parsed = json.loads(result)
        status, answered = parsed["status"], base64.b64decode(parsed["body_base64"])
        if status == 0:
            raise ConnectionError(answered.decode("utf-8", "replace"))
        return status, answered

    return send


def unreachable_azure_endpoints(outputs: dict) -> dict[str, str]:
    """Endpoints of a stack's outputs that nothing outside the environment's network can score (private
    managed endpoints, Kubernetes endpoints behind an internal load balancer): kind -> why."""
    found = outputs.get("unreachable_endpoints") or {}
    return found if isinstance(found, dict) else {}


def azure_targets(outputs: dict, token: str | None = None) -> list[tuple[str, str, str | None]]:
    """(endpoint, scoring URI, bearer credential) of every online endpoint in a stack's outputs that a
    caller outside the environment's network can reach: its primary key, or with ``token`` (Microsoft Entra,
    ``auth_mode: aad_token``) that token; the secondary locations' endpoints too (``location_scoring_uris``)."""
    uris = outputs.get("scoring_uris")
    if not isinstance(uris, dict) or not uris:
        raise BadInput("stack outputs: no scoring_uris (has the stack been deployed with an online endpoint?)")
    keys = outputs.get("endpoint_keys") or {}
    unreachable = unreachable_azure_endpoints(outputs)
    targets = []
    for kind, uri in sorted(uris.items()):
        if kind in unreachable:
            continue
        credential = token or (keys.get(kind) or {}).get("primary")
        if not credential:
            raise BadInput(
                f"stack outputs: endpoint_keys.{kind} is missing; the smoke test calls endpoints with key auth, "
                "or with --entra-sign-in for aad_token endpoints (read the outputs with --show-secrets)"
            )
        targets.append((kind, uri, credential))
    primary = set(uris.values())
    locations = outputs.get("location_scoring_uris") or {}
    for location, uri in sorted(locations.items()) if token else ():  # a second location needs aad_token
        if uri not in primary:
            targets.append((f"managed ({location})", uri, token))
    return targets


def entra_scoring_token(
    sign_in: str, *, tenant_id: str, client_id: str, region: str | None, environ, boto3_session=None
) -> str:
    """A Microsoft Entra token for Azure ML scoring (``aad_token`` endpoints), from the pipeline's own Azure
    sign-in: keyless (AWS STS web identity token as the client assertion) or the client secret. Needs the
    project's environment (the step installs it): the sign-in code is the Azure deploy step's."""
    from stacks.pipeline_scripts.azure_deploy import (  # noqa: PLC0415
        client_secret_environment,
        federated_environment,
        web_identity_token,
    )
    from twinserve.azure.image_import import arm_token  # noqa: PLC0415 - only this mode needs the project
    from twinserve.platform.azure import APIM_SCORING_AUDIENCE  # noqa: PLC0415

    variables = dict(environ)
    if sign_in == "federated":
        if boto3_session is None:
            import boto3  # noqa: PLC0415

            boto3_session = boto3.Session(region_name=region)
        where = region or boto3_session.region_name
        sts = boto3_session.client("sts", region_name=where, endpoint_url=f"https://sts.{where}.amazonaws.com")
        federated_environment(variables, tenant_id=tenant_id, client_id=client_id, token=web_identity_token(sts))
    else:
        client_secret_environment(variables, tenant_id=tenant_id, client_id=client_id)
    return arm_token(variables, arm_endpoint=APIM_SCORING_AUDIENCE)


def _read_outputs(source: str) -> dict:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
        outputs = json.loads(text)
    except (OSError, ValueError) as exc:
        raise BadInput(f"--stack-outputs {source}: not readable as JSON ({exc})") from None
    if not isinstance(outputs, dict):
        raise BadInput(f"--stack-outputs {source}: expected a JSON object of stack outputs")
    return outputs


def _aws_service_target(args, session) -> tuple[str, Callable[[], Answer]]:
    region = args.region or session.region_name
    if args.cloud == "fargate":
        options = assumed_credentials(session, role_arn=args.role_arn, region=region)
        client = session.client("lambda", region_name=region, **options)
        return f"ECS Fargate service through {args.probe_function}", probe_sender(client, args.probe_function)
    if not args.function_url.startswith(("https://", *LOCAL_STAND_INS)):
        raise BadInput(f"--function-url {args.function_url}: an https URL (or a local stand-in on loopback)")
    if not region:
        raise BadInput("--region: not given and the AWS configuration has none")
    credentials = session_credentials(session, role_arn=args.role_arn, region=region)
    if credentials is None:
        raise BadInput("no AWS credentials found (environment, profile or instance role)")
    url = function_url_invocations(args.function_url)
    return f"Lambda function URL {url}", http_sender(url, None, sign=sigv4_signer(credentials, "lambda", region))


def main(argv: list[str] | None = None, environ=os.environ, boto3_session=None, sleep=time.sleep) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m stacks.pipeline_scripts.smoke_test",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--deadline", type=float, default=600, help="seconds to keep retrying 5xx (default 600)")
    parser.add_argument("--pause", type=float, default=10, help="seconds between retries (default 10)")
    sub = parser.add_subparsers(dest="cloud", required=True)
    sm = sub.add_parser("sagemaker", help="invoke a SageMaker endpoint")
    sm.add_argument("--endpoint-name", required=True)
    sm.add_argument("--role-arn", help="assume this role first (the environment's smoke-test role)")
    sm.add_argument("--region")
    fn = sub.add_parser("lambda", help="POST to a Lambda function URL (IAM auth, SigV4)")
    fn.add_argument("--function-url", required=True, help="the live alias's function URL")
    fg = sub.add_parser("fargate", help="POST to an ECS Fargate service through its in-VPC probe function")
    fg.add_argument("--probe-function", required=True, help="the probe function's name")
    for aws in (fn, fg):
        aws.add_argument("--role-arn", help="assume this role first (the environment's smoke-test role)")
        aws.add_argument("--region")
    az = sub.add_parser("azure", help="POST to Azure ML online endpoints")
    which = az.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack-outputs", metavar="FILE", help="`pulumi stack output --json --show-secrets`, or -")
    which.add_argument("--scoring-uri", help="one endpoint's scoring URI")
    az.add_argument("--key-env", help="with --scoring-uri: the environment variable holding its key")
    az.add_argument(
        "--entra-sign-in",
        choices=["federated", "client_secret"],
        help="aad_token endpoints: get a Microsoft Entra token with the pipeline's Azure sign-in",
    )
    az.add_argument("--tenant-id", help="with --entra-sign-in: the Entra tenant")
    az.add_argument("--client-id", help="with --entra-sign-in: the pipeline's Entra app")
    az.add_argument("--region", help="with --entra-sign-in federated: AWS STS's region (the pipeline's)")
    args = parser.parse_args(argv)
    if args.deadline < 0 or args.pause <= 0:
        parser.error(f"--deadline must be >= 0 and --pause > 0, got {args.deadline} and {args.pause}")
    try:
        if args.cloud == "sagemaker":
            if boto3_session is None:
                import boto3  # noqa: PLC0415 - only the SageMaker test needs it

                boto3_session = boto3.Session()
            runtime = sagemaker_runtime(boto3_session, role_arn=args.role_arn, region=args.region)
            targets = [(f"SageMaker endpoint {args.endpoint_name}", sagemaker_sender(runtime, args.endpoint_name))]
        elif args.cloud in ("lambda", "fargate"):
            if boto3_session is None:
                import boto3  # noqa: PLC0415

                boto3_session = boto3.Session()
            targets = [_aws_service_target(args, boto3_session)]
        elif args.stack_outputs:
            outputs = _read_outputs(args.stack_outputs)
            token = None
            if args.entra_sign_in:
                if not (args.tenant_id and args.client_id):
                    raise BadInput("--entra-sign-in needs --tenant-id and --client-id")
                token = entra_scoring_token(
                    args.entra_sign_in,
                    tenant_id=args.tenant_id,
                    client_id=args.client_id,
                    region=args.region,
                    environ=environ,
                    boto3_session=boto3_session,
                )
            targets = [
                (f"Azure {kind} endpoint {uri}", http_sender(uri, credential))
                for kind, uri, credential in azure_targets(outputs, token)
            ]
            for kind, why in sorted(unreachable_azure_endpoints(outputs).items()):
                # `pulumi up` succeeded, so Azure ML provisioned the deployment; scoring needs the network
                print(
                    f"smoke test skipped: Azure {kind} endpoint: not reachable from outside its network ({why}); "
                    "score it from inside the VNet with `twinserve invoke`"
                )
        else:
            key = environ.get(args.key_env) if args.key_env else None
            if args.key_env and not key:
                raise BadInput(f"--key-env {args.key_env}: the variable is unset or empty")
            targets = [(f"Azure endpoint {args.scoring_uri}", http_sender(args.scoring_uri, key))]
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for where, send in targets:  # every endpoint, so one run names every failure
        try:
            predictions = probe(where, send, deadline=args.deadline, pause=args.pause, sleep=sleep)
        except SmokeTestFailed as exc:
            print(f"smoke test FAILED: {exc}", file=sys.stderr)
            failed += 1
        else:
            print(f"smoke test passed: {where}: predictions {json.dumps(predictions)[:200]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
