"""The model and the serving environment of an Azure ML workspace, plus the identity that runs them.

* Model versions: the artifact folder of the current version is uploaded file by file to the
  workspace's asset datastore (``models/<name>/<version>/``) and registered as a ``custom_model``
  version. Versions that live variants still pin (blue/green) are declared with the same path, so
  Pulumi keeps them; artifact blobs are always retained on delete (the path is per version and never
  rewritten), and with ``keep_data`` the versions are protected too.
* Environment version: the one inference image, with ``inference_config`` liveness, readiness and
  scoring routes on the container's port. Either a pre-built ``image_uri`` used as is, or a Docker
  build context uploaded to the datastore (``images/<env>/<content hash>/``) that Azure ML builds
  into the workspace's container registry itself - no Docker engine is needed where Pulumi runs.
  The version is a hash of the image reference or of the build context, so a changed image is a
  new (immutable) environment version and the deployments roll onto it.
* Batch environment version (optional, ``batch_environment_name``): Azure ML's batch runtime needs
  ``azureml-core`` and ``azureml-dataset-runtime[fuse]`` in the image, which the serving image does
  not carry. It is built from ``batch_dockerfile`` in the same uploaded build context (Azure ML
  takes a Dockerfile path but no build target or args), or is ``batch_image_uri`` as is. Without it,
  ``batch_environment_id`` is the serving environment.
* A user-assigned identity for the endpoints with AcrPull on the registry, Storage Blob Data Reader
  on the storage account and AzureML Metrics Writer on the workspace.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
from pulumi_azure_native import authorization, managedidentity, storage
from pulumi_azure_native import machinelearningservices as ml

from ._common import (ROLE_ACR_PULL, ROLE_AZUREML_METRICS_WRITER, ROLE_STORAGE_BLOB_DATA_READER, check,
                      child_opts, data_opts, role_definition)

_ASSET_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")
_VERSION = re.compile(r"^[0-9]+$")


def build_context_files(context: Path) -> list[Path]:
    """Files of a Docker build context, honouring the simple patterns of its ``.dockerignore``
    (``**/name``, ``*.ext``, ``folder``; negations are not supported and rejected)."""
    patterns: list[str] = []
    ignore_file = context / ".dockerignore"
    if ignore_file.is_file():
        for line in ignore_file.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("!"):
                raise ValueError(f"{ignore_file}: negated pattern {line!r} is not supported by twinserve's uploader")
            patterns.append(line.rstrip("/"))

    def ignored(rel: str) -> bool:
        parts = rel.split("/")
        for pattern in patterns:
            if pattern.startswith("**/"):
                if any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts):
                    return True
            elif any(fnmatch.fnmatchcase("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
                return True
        return False

    return sorted(p for p in context.rglob("*")
                  if p.is_file() and not ignored(p.relative_to(context).as_posix()))


def content_hash(root: Path, files: list[Path]) -> str:
    """12 hex digits over the relative names and bytes of ``files``: the same content, the same hash."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _resource_suffix(rel: str) -> str:
    return re.sub(r"[^a-zA-Z0-9-]+", "-", rel).strip("-").lower()


@dataclass
class InferenceRoutes:
    port: int = 8080
    liveness_path: str = "/live"
    readiness_path: str = "/ready"
    scoring_path: str = "/score"

    def __post_init__(self) -> None:
        check(1 <= self.port <= 65535, "InferenceRoutes", "port", self.port, "must be 1..65535")
        for name in ("liveness_path", "readiness_path", "scoring_path"):
            value = getattr(self, name)
            check(isinstance(value, str) and value.startswith("/"), "InferenceRoutes", name, value,
                  "must be an absolute URL path starting with '/'")


@dataclass
class ModelEnvironmentArgs:
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    workspace_name: str
    workspace_id: pulumi.Input[str]
    storage_account_name: pulumi.Input[str]
    storage_account_id: pulumi.Input[str]
    asset_container_name: str
    asset_datastore_name: str
    registry_id: pulumi.Input[str]
    model_name: str
    model_version: str
    """The version uploaded from ``model_dir`` now."""
    model_dir: Path
    environment_name: str
    identity_name: str
    routes: InferenceRoutes = field(default_factory=InferenceRoutes)
    image_uri: str | None = None
    build_context: Path | None = None
    """Exactly one of ``image_uri`` (pre-built, used as is) or ``build_context`` (built by Azure ML)."""
    batch_environment_name: str | None = None
    """Declare a second environment version under this name for batch deployments: built from
    ``batch_dockerfile`` with ``build_context``, or ``batch_image_uri`` with ``image_uri``. Unset:
    batch deployments use the serving environment, whose image must then carry the batch packages."""
    batch_dockerfile: str = "Dockerfile.azureml-batch"
    """The batch image's Dockerfile, relative to ``build_context`` (with ``batch_environment_name``)."""
    batch_image_uri: str | None = None
    """The pre-built batch image, with ``image_uri`` and ``batch_environment_name`` only."""
    pinned_model_versions: list[str] = field(default_factory=list)
    """Older versions still served by a variant: declared (already uploaded) so Pulumi keeps them."""
    keep_data: bool = False
    """Protect the model versions (prod)."""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        owner = "ModelEnvironmentArgs"
        check(bool(_ASSET_NAME.match(self.model_name)), owner, "model_name", self.model_name,
              "must be letters, digits, '_', '.', '-' (Azure ML asset name)")
        check(bool(_ASSET_NAME.match(self.environment_name)), owner, "environment_name", self.environment_name,
              "must be letters, digits, '_', '.', '-' (Azure ML asset name)")
        for version in [self.model_version, *self.pinned_model_versions]:
            check(bool(_VERSION.match(version)), owner, "model_version", version, "must be a whole number as a string")
        check(len(set(self.pinned_model_versions)) == len(self.pinned_model_versions), owner,
              "pinned_model_versions", self.pinned_model_versions, "must not repeat a version")
        check(self.model_dir.is_dir() and any(self.model_dir.iterdir()), owner, "model_dir", str(self.model_dir),
              "must be an existing, non-empty folder of model files")
        check((self.image_uri is None) != (self.build_context is None), owner, "image_uri",
              self.image_uri, "set exactly one of image_uri or build_context")
        if self.build_context is not None:
            check((self.build_context / "Dockerfile").is_file(), owner, "build_context", str(self.build_context),
                  "must be a folder holding a Dockerfile")
        if self.batch_environment_name is not None:
            check(bool(_ASSET_NAME.match(self.batch_environment_name)), owner, "batch_environment_name",
                  self.batch_environment_name, "must be letters, digits, '_', '.', '-' (Azure ML asset name)")
            check(self.batch_environment_name != self.environment_name, owner, "batch_environment_name",
                  self.batch_environment_name, "must differ from environment_name")
        check(self.batch_image_uri is None or self.image_uri is not None, owner, "batch_image_uri",
              self.batch_image_uri, "set only with image_uri; with build_context the batch image is built "
              "from batch_dockerfile")
        check(self.batch_image_uri is None or self.batch_environment_name is not None, owner, "batch_image_uri",
              self.batch_image_uri, "needs batch_environment_name (the environment it becomes)")
        if self.batch_environment_name is not None and self.image_uri is not None:
            check(self.batch_image_uri is not None, owner, "batch_environment_name", self.batch_environment_name,
                  "with image_uri, set batch_image_uri too, or leave both unset to run batch on image_uri")
        if self.batch_environment_name is not None and self.build_context is not None:
            dockerfile = self.build_context / self.batch_dockerfile
            check(dockerfile.is_file() and dockerfile in build_context_files(self.build_context), owner,
                  "batch_dockerfile", self.batch_dockerfile,
                  f"must be a file in build_context ({self.build_context}) not excluded by its .dockerignore")

    @property
    def all_model_versions(self) -> list[str]:
        return sorted({self.model_version, *self.pinned_model_versions}, key=int)


class ModelEnvironment(pulumi.ComponentResource):
    """Exposes ``model_ids`` (version -> id), ``environment_id``, ``environment_version``,
    ``batch_environment_id`` (the serving environment's without ``batch_environment_name``), ``identity``
    (``id``, ``principal_id``, ``client_id``) and ``role_assignments``."""

    def __init__(self, name: str, args: ModelEnvironmentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("twinserve:azure:ModelEnvironment", name, None, opts)
        rg, ws, ds = args.resource_group_name, args.workspace_name, args.asset_datastore_name

        def upload(prefix: str, root: Path, files: list[Path], logical: str) -> list[storage.Blob]:
            blobs = []
            for path in files:
                rel = path.relative_to(root).as_posix()
                blobs.append(storage.Blob(
                    f"{name}-{logical}-{_resource_suffix(rel)}", resource_group_name=rg,
                    account_name=args.storage_account_name, container_name=args.asset_container_name,
                    blob_name=f"{prefix}/{rel}", type="Block", source=pulumi.FileAsset(str(path)),
                    # Artifact paths are per version and never rewritten: keep the files when a
                    # version leaves the spec (a pinned variant may still need them).
                    opts=child_opts(self, retain_on_delete=True, protect=args.keep_data)))
            return blobs

        # ---- model versions
        model_files = sorted(p for p in args.model_dir.rglob("*") if p.is_file())
        current_prefix = f"models/{args.model_name}/{args.model_version}"
        model_blobs = upload(current_prefix, args.model_dir, model_files, f"model-v{args.model_version}")
        self.model_versions: dict[str, ml.ModelVersion] = {}
        for version in args.all_model_versions:
            depends = model_blobs if version == args.model_version else []
            self.model_versions[version] = ml.ModelVersion(
                f"{name}-model-v{version}", resource_group_name=rg, workspace_name=ws,
                name=args.model_name, version=version,
                properties=ml.ModelVersionPropertiesArgs(
                    model_type="custom_model",
                    model_uri=f"azureml://datastores/{ds}/paths/models/{args.model_name}/{version}/",
                    description=f"{args.model_name} version {version}", tags=args.tags),
                opts=data_opts(self, args.keep_data, depends_on=depends))
        self.model_ids = {v: m.id for v, m in self.model_versions.items()}

        # ---- environment version (the one inference image)
        routes = args.routes
        inference_config = ml.InferenceContainerPropertiesArgs(
            liveness_route=ml.RouteArgs(path=routes.liveness_path, port=routes.port),
            readiness_route=ml.RouteArgs(path=routes.readiness_path, port=routes.port),
            scoring_route=ml.RouteArgs(path=routes.scoring_path, port=routes.port))
        if args.build_context is not None:
            context_files = build_context_files(args.build_context)
            self.environment_version = content_hash(args.build_context, context_files)
            prefix = f"images/{args.environment_name}/{self.environment_version}"
            context_blobs = upload(prefix, args.build_context, context_files, "image-context")

            def built_from(dockerfile: str) -> dict:
                return dict(build=ml.BuildContextArgs(
                    context_uri=f"azureml://datastores/{ds}/paths/{prefix}/", dockerfile_path=dockerfile))

            image_properties = built_from("Dockerfile")
            batch_version = self.environment_version
            batch_image_properties = built_from(args.batch_dockerfile)
        else:
            self.environment_version = hashlib.sha256(args.image_uri.encode()).hexdigest()[:12]
            context_blobs = []
            image_properties = dict(image=args.image_uri)
            batch_version = hashlib.sha256((args.batch_image_uri or "").encode()).hexdigest()[:12]
            batch_image_properties = dict(image=args.batch_image_uri)
        self.environment = ml.EnvironmentVersion(
            f"{name}-env", resource_group_name=rg, workspace_name=ws,
            name=args.environment_name, version=self.environment_version,
            properties=ml.EnvironmentVersionPropertiesArgs(
                os_type="Linux", inference_config=inference_config,
                description="twinserve common inference image", tags=args.tags, **image_properties),
            opts=child_opts(self, depends_on=context_blobs))
        self.environment_id = self.environment.id

        # ---- batch environment version: the same server plus Azure ML's batch runtime packages.
        # No inference_config: batch deployments call the entry script, never HTTP routes.
        self.batch_environment: ml.EnvironmentVersion | None = None
        self.batch_environment_version = self.environment_version
        self.batch_environment_id = self.environment_id
        if args.batch_environment_name is not None:
            self.batch_environment_version = batch_version
            self.batch_environment = ml.EnvironmentVersion(
                f"{name}-batch-env", resource_group_name=rg, workspace_name=ws,
                name=args.batch_environment_name, version=batch_version,
                properties=ml.EnvironmentVersionPropertiesArgs(
                    os_type="Linux", description="twinserve inference image with Azure ML's batch runtime",
                    tags=args.tags, **batch_image_properties),
                opts=child_opts(self, depends_on=context_blobs))
            self.batch_environment_id = self.batch_environment.id

        # ---- identity of the endpoints, with what it needs to pull the image and read the model
        self.identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity", resource_group_name=rg, location=args.location,
            resource_name_=args.identity_name, tags=args.tags, opts=child_opts(self))
        self.role_assignments = []
        for short, scope, role in (("acrpull", args.registry_id, ROLE_ACR_PULL),
                                   ("blobreader", args.storage_account_id, ROLE_STORAGE_BLOB_DATA_READER),
                                   ("metrics", args.workspace_id, ROLE_AZUREML_METRICS_WRITER)):
            self.role_assignments.append(authorization.RoleAssignment(
                f"{name}-{short}", scope=scope, principal_id=self.identity.principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=role_definition(args.subscription_id, role), opts=child_opts(self)))

        self.register_outputs({
            "model_ids": self.model_ids, "environment_id": self.environment_id,
            "environment_version": self.environment_version, "batch_environment_id": self.batch_environment_id,
            "identity_id": self.identity.id,
        })
