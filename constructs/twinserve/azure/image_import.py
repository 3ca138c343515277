"""Build once: the image a pipeline execution built for ECR, imported into the workspace's registry by digest.

``az acr import`` is an ARM action (``POST <registry>/importImage``), not a resource pulumi-azure-native
declares, so :class:`ImportedImage` is a small Pulumi dynamic resource around it: create and update call
the action (mode ``Force``, idempotent) and wait for the long-running operation; delete leaves the image
in the registry (deployments may still pull it, as model and environment versions are kept).

Why the bits are the same: a registry import copies the manifest and layers as they are, so the image keeps
its digest (``sha256:...`` of the manifest) - the serving ML environment then names the image by that digest
(``<login server>/<repository>@sha256:...``), which no registry can serve with other content.

Credentials (nothing in the state): the source registry's pull password is read at run time from the
environment variable :data:`SOURCE_REGISTRY_PASSWORD_VARIABLE` (the pipeline's Azure step sets it from an ECR
token); the ARM token comes from the same sign-in as the azure-native provider - an OIDC token
(``ARM_OIDC_TOKEN``, the pipeline's keyless sign-in), a client secret (``ARM_CLIENT_SECRET``), or on a
developer's machine the Azure CLI (``az account get-access-token``).
https://learn.microsoft.com/rest/api/containerregistry/registries/import-image
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic

from ..checks import Checks
from ..platform import azure as azure_platform

SOURCE_REGISTRY_PASSWORD_VARIABLE = "TWINSERVE_SOURCE_REGISTRY_PASSWORD"
"""Where :class:`ImportedImage` reads the source registry's pull password (never an input: inputs are state)."""
SOURCE_IMAGE_PATTERN = re.compile(
    r"(?P<host>[a-z0-9.-]+(?::[0-9]+)?)/(?P<repository>[a-z0-9._/-]+)@(?P<digest>sha256:[0-9a-f]{64})"
)
"""``<registry host>/<repository>@sha256:<64 hex>``: an image by digest."""
SOURCE_IMAGE_HINT = "must be <registry host>/<repository>@sha256:<64 hex digits>, an image by digest"
ARM_SCOPE_SUFFIX = "/.default"

Opener = Callable[[urllib.request.Request], Any]


class ImageImportError(RuntimeError):
    """The import could not be started or did not succeed; the message says what Azure answered."""


def parse_source_image(image: str) -> tuple[str, str, str]:
    """``(host, repository, digest)`` of an image by digest; ``ValueError`` naming the rule otherwise."""
    match = SOURCE_IMAGE_PATTERN.fullmatch(image)
    if match is None:
        raise ValueError(f"{image!r} {SOURCE_IMAGE_HINT}")
    return match["host"], match["repository"], match["digest"]


def imported_reference(login_server: str, target_repository: str, source_image: str) -> str:
    """The imported image by digest in the target registry (the digest does not change on import)."""
    return f"{login_server}/{target_repository}@{parse_source_image(source_image)[2]}"


def _call(opener: Opener, request: urllib.request.Request) -> tuple[int, Mapping[str, str], bytes]:
    try:
        with opener(request) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def arm_token(
    environ: Mapping[str, str],
    *,
    arm_endpoint: str = azure_platform.ARM_ENDPOINT,
    authority: str = azure_platform.LOGIN_AUTHORITY,
    opener: Opener = urllib.request.urlopen,
    az: Callable[[list[str]], str] | None = None,
) -> str:
    """An ARM access token from the azure-native provider's sign-in variables (OIDC first, as the
    pipeline removes secrets when it signs in keylessly), else from the Azure CLI."""
    tenant, client = environ.get("ARM_TENANT_ID"), environ.get("ARM_CLIENT_ID")
    form = {
        "client_id": client,
        "scope": arm_endpoint.rstrip("/") + ARM_SCOPE_SUFFIX,
        "grant_type": "client_credentials",
    }
    if environ.get("ARM_OIDC_TOKEN") and tenant and client:
        form |= {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": environ["ARM_OIDC_TOKEN"],
        }
    elif environ.get("ARM_CLIENT_SECRET") and tenant and client:
        form["client_secret"] = environ["ARM_CLIENT_SECRET"]
    else:
        run = az or (lambda args: subprocess.run(args, check=True, capture_output=True, text=True).stdout)
        try:
            answer = run(["az", "account", "get-access-token", "--resource", arm_endpoint, "--output", "json"])
        except (OSError, subprocess.CalledProcessError) as exc:
            raise ImageImportError(
                "no Azure sign-in for the image import: set ARM_OIDC_TOKEN or ARM_CLIENT_SECRET with ARM_TENANT_ID "
                f"and ARM_CLIENT_ID (as for the azure-native provider), or run `az login` ({exc})"
            ) from None
        return json.loads(answer)["accessToken"]
    request = urllib.request.Request(
        f"{authority.rstrip('/')}/{tenant}/oauth2/v2.0/token",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    status, _, body = _call(opener, request)
    if status != 200:
        raise ImageImportError(
            f"Entra token request for client {client} failed ({status}): {body[:500].decode(errors='replace')}"
        )
    return json.loads(body)["access_token"]


@dataclass(frozen=True)
class ImportRequest:
    """One ``importImage`` call."""

    registry_id: str
    """ARM id of the target registry."""
    source_image: str
    """``<host>/<repository>@sha256:...``"""
    target_repository: str
    """Repository in the target registry; the image is tagged ``<repository>:<first 12 digest hex>``."""
    username: str
    """Of the source registry (``AWS`` for an ECR token)."""
    password: str
    """Of the source registry, read from the environment at run time."""

    def body(self) -> dict:
        host, repository, digest = parse_source_image(self.source_image)
        return {
            "source": {
                "registryUri": host,
                "sourceImage": f"{repository}@{digest}",
                "credentials": {"username": self.username, "password": self.password},
            },
            "targetTags": [f"{self.target_repository}:{digest.removeprefix('sha256:')[:12]}"],
            "mode": "Force",
        }


def import_image(
    request: ImportRequest,
    token: str,
    *,
    arm_endpoint: str = azure_platform.ARM_ENDPOINT,
    opener: Opener = urllib.request.urlopen,
    poll_seconds: float = 5.0,
    timeout_seconds: float = 1800.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Start the import and wait for it (``Azure-AsyncOperation`` status, or ``Location`` until 200)."""
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{arm_endpoint.rstrip('/')}{request.registry_id}/importImage?api-version={azure_platform.ACR_API_VERSION}"
    started = urllib.request.Request(
        url,
        data=json.dumps(request.body()).encode(),
        headers={**auth, "Content-Type": "application/json"},
        method="POST",
    )
    status, headers, body = _call(opener, started)
    if status == 200:
        return
    if status != 202:
        raise ImageImportError(f"importImage of {request.source_image} refused ({status}): {_arm_message(body)}")
    operation, location = headers.get("Azure-AsyncOperation"), headers.get("Location")
    if not operation and not location:
        raise ImageImportError("importImage answered 202 without Azure-AsyncOperation or Location to follow")
    deadline = time.monotonic() + timeout_seconds
    while True:
        sleep(float(headers.get("Retry-After", poll_seconds)))
        status, headers, body = _call(opener, urllib.request.Request(operation or location, headers=auth))
        if operation:
            state = json.loads(body or b"{}").get("status", "") if status == 200 else ""
            if state == "Succeeded":
                return
            if state in ("Failed", "Canceled") or status >= 400:
                raise ImageImportError(f"import of {request.source_image} {state or status}: {_arm_message(body)}")
        elif status == 200:
            return
        elif status != 202:
            raise ImageImportError(f"import of {request.source_image} failed ({status}): {_arm_message(body)}")
        if time.monotonic() > deadline:
            raise ImageImportError(f"import of {request.source_image} still running after {timeout_seconds:.0f} s")


def _arm_message(body: bytes) -> str:
    try:
        error = json.loads(body).get("error") or {}
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ") or body[:500].decode(errors="replace")
    except (ValueError, AttributeError):
        return body[:500].decode(errors="replace")


_INPUTS = ("registry_id", "login_server", "source_image", "target_repository", "username", "password_variable")
"""Inputs whose change imports again (the endpoints are how, not what)."""


class ImageImportProvider(pulumi.dynamic.ResourceProvider):
    """Create/update: import (idempotent); delete: keep the image (it may still be pulled)."""

    def _import(self, props: dict) -> dict:
        password = os.environ.get(props["password_variable"])
        if not password:
            raise ImageImportError(
                f"{props['password_variable']} is not set: the source registry's pull password is read from it "
                "(the pipeline's Azure step sets it; locally, e.g. `aws ecr get-login-password`)"
            )
        request = ImportRequest(
            registry_id=props["registry_id"],
            source_image=props["source_image"],
            target_repository=props["target_repository"],
            username=props["username"],
            password=password,
        )
        endpoint = props.get("arm_endpoint") or azure_platform.ARM_ENDPOINT
        token = arm_token(
            os.environ, arm_endpoint=endpoint, authority=props.get("authority") or azure_platform.LOGIN_AUTHORITY
        )
        import_image(request, token, arm_endpoint=endpoint)
        image = imported_reference(props["login_server"], props["target_repository"], props["source_image"])
        return {**props, "image": image}

    def create(self, props: dict) -> pulumi.dynamic.CreateResult:
        outs = self._import(props)
        return pulumi.dynamic.CreateResult(id_=outs["image"], outs=outs)

    def diff(self, _id: str, olds: dict, news: dict) -> pulumi.dynamic.DiffResult:
        changed = [k for k in _INPUTS if olds.get(k) != news.get(k)]
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict, news: dict) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(outs=self._import(news))

    def delete(self, _id: str, _props: dict) -> None:
        """The image stays in the registry: older ML environment versions may still reference it."""


@dataclass
class ImportedImageArgs:
    """Args of :class:`ImportedImage`."""

    registry_id: pulumi.Input[str]
    """ARM id of the workspace's container registry."""
    login_server: pulumi.Input[str]
    """Its login server (``<name>.azurecr.io``)."""
    source_image: str
    """The image to import, by digest: ``<host>/<repository>@sha256:...``."""
    target_repository: str
    """Repository in the workspace registry (e.g. ``<deployment>-serving``)."""
    username: str = "AWS"
    """The source registry's user (``AWS`` for an ECR authorization token)."""
    password_variable: str = SOURCE_REGISTRY_PASSWORD_VARIABLE
    """The environment variable holding the source registry's password when Pulumi runs."""
    arm_endpoint: str = azure_platform.ARM_ENDPOINT
    """Azure Resource Manager (another one in a sovereign cloud)."""
    authority: str = azure_platform.LOGIN_AUTHORITY
    """Microsoft Entra ID's token authority (another one in a sovereign cloud)."""

    def __post_init__(self) -> None:
        check = Checks("ImportedImageArgs")
        check.pattern("source_image", self.source_image, SOURCE_IMAGE_PATTERN, SOURCE_IMAGE_HINT)
        check.pattern(
            "target_repository",
            self.target_repository,
            r"[a-z0-9]+(?:[._/-][a-z0-9]+)*",
            "a lower-case repository name",
        )


class ImportedImage(pulumi.dynamic.Resource):
    """The imported image; ``image`` is its reference by digest in the target registry."""

    image: pulumi.Output[str]

    def __init__(self, name: str, args: ImportedImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            ImageImportProvider(),
            name,
            {
                "registry_id": args.registry_id,
                "login_server": args.login_server,
                "source_image": args.source_image,
                "target_repository": args.target_repository,
                "username": args.username,
                "password_variable": args.password_variable,
                "arm_endpoint": args.arm_endpoint,
                "authority": args.authority,
                "image": None,
            },
            opts,
        )
        self.digest = parse_source_image(args.source_image)[2]
        """The image's digest: the same in ECR and in the workspace registry."""
