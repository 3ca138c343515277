"""The model and the serving image of an Azure ML workspace, plus the identity that runs them.

"ML environment" below is Azure ML's word for an image asset (an ``EnvironmentVersion``), never a
deployment environment such as dev or prod.

* Model versions: the artifact folder of the current version is uploaded file by file to the
  workspace's asset datastore (``models/<name>/<version>/``) and registered as a ``custom_model``
  version (model URIs in the long ``azureml://subscriptions/...`` form). Versions that live variants
  still pin (blue/green) are declared with the same path, so Pulumi keeps them. Blobs and asset
  versions are never ``protect``ed - a model bump or image change must be able to drop the old ones
  from the program - but always retained on delete: paths are per version and never rewritten, and
  versions are immutable, so what a pinned variant or the history needs stays in Azure.
* ML environment version: the one inference image, with ``inference_config`` liveness, readiness
  and scoring routes on the container's port. Either a pre-built ``image_uri`` used as is, or a Docker
  build context uploaded to the asset container (``images/<ML environment>/<content hash>/``, sent as
  its https blob URL) that Azure ML builds into the workspace's container registry itself - no Docker
  engine is needed where Pulumi runs. The version is a hash of everything sent with it (context
  content or image reference, Dockerfile, routes and port, OS), so any change is a new (immutable)
  ML environment version and the deployments roll onto it.
* Batch ML environment version (optional, ``batch_ml_environment_name``): Azure ML's batch runtime needs
  ``azureml-core`` and ``azureml-dataset-runtime[fuse]`` in the image, which the serving image does
  not carry. It is built from ``batch_dockerfile`` in the same uploaded build context (Azure ML
  takes a Dockerfile path but no build target or args), or is ``batch_image_uri`` as is. Without it,
  ``batch_ml_environment_id`` is the serving ML environment's.
* A user-assigned identity for the endpoints with AcrPull on the registry, Storage Blob Data Reader
  on the storage account and AzureML Metrics Writer on the workspace.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
from pulumi_azure_native import authorization, managedidentity, storage
from pulumi_azure_native import machinelearningservices as ml

from ..checks import Checks
from ..image_context import build_context_files
from ._common import (
    ROLE_ACR_PULL,
    ROLE_AZUREML_METRICS_WRITER,
    ROLE_STORAGE_BLOB_DATA_READER,
    child_opts,
    role_definition,
)

_ASSET_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")
_VERSION = re.compile(r"^[0-9]+$")


def content_hash(root: Path, files: list[Path]) -> str:
    """12 hex digits over the relative names and bytes of ``files``: the same content, the same hash."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _inference_config(routes: InferenceRoutes) -> dict:
    return {
        "liveness": [routes.liveness_path, routes.port],
        "readiness": [routes.readiness_path, routes.port],
        "scoring": [routes.scoring_path, routes.port],
        "os_type": "Linux",
    }


def _version_of(*parts: str | dict) -> str:
    """12 hex digits over what an environment version is sent with: another part, another version."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def _resource_suffix(rel: str) -> str:
    return re.sub(r"[^a-zA-Z0-9-]+", "-", rel).strip("-").lower()


@dataclass(frozen=True)
class InferenceRoutes:
    """The container's HTTP routes, all on one port (the environment's ``inference_config``)."""

    port: int = 8080
    """The port the container listens on."""
    liveness_path: str = "/live"
    """200 while the server process is up."""
    readiness_path: str = "/ready"
    """200 once the model is loaded."""
    scoring_path: str = "/score"
    """Where Azure ML sends scoring requests."""


@dataclass(frozen=True)
class ModelEnvironmentArgs:
    """Args of :class:`ModelEnvironment`. "ML environment" is an Azure ML environment (an image
    asset), never a deployment environment such as dev or prod."""

    resource_group_name: pulumi.Input[str]
    """The workspace's resource group."""
    location: pulumi.Input[str]
    """Azure region of the identity."""
    subscription_id: pulumi.Input[str]
    """The subscription of the role definitions."""
    workspace_name: str
    """The Azure ML workspace the assets are registered in."""
    workspace_id: pulumi.Input[str]
    """Scope of the identity's AzureML Metrics Writer role."""
    storage_account_name: pulumi.Input[str]
    """Where the model files and the build context are uploaded."""
    storage_account_id: pulumi.Input[str]
    """Scope of the identity's Storage Blob Data Reader role."""
    storage_blob_endpoint: pulumi.Input[str]
    """The storage account's blob endpoint (``https://<account>.blob.core.windows.net/``): the build
    context's URL starts with it."""
    asset_container_name: str
    """The blob container of ``asset_datastore_name``."""
    asset_datastore_name: str
    """The datastore the model and image URIs point at."""
    registry_id: pulumi.Input[str]
    """The workspace's container registry (scope of the identity's AcrPull role)."""
    model_name: str
    """Azure ML model name (letters, digits, '_', '.', '-')."""
    model_version: str
    """The version uploaded from ``model_dir`` now."""
    model_dir: Path
    """The model folder (uploaded file by file)."""
    ml_environment_name: str
    """Azure ML environment name of the serving image."""
    identity_name: str
    """Name of the endpoints' user-assigned identity."""
    routes: InferenceRoutes = field(default_factory=InferenceRoutes)
    """The container's routes (liveness, readiness, scoring)."""
    image_uri: str | None = None
    """A pre-built serving image, used as is."""
    build_context: Path | None = None
    """Exactly one of ``image_uri`` (pre-built, used as is) or ``build_context`` (built by Azure ML)."""
    imported_image: pulumi.Input[str] | None = None
    """With ``build_context``: the same context's image as already built elsewhere (a pipeline
    execution's ECR image) and imported into the workspace registry, by digest
    (``<login server>/<repository>@sha256:...``, :class:`~twinserve.azure.image_import.ImportedImage`).
    The serving ML environment then uses it instead of building the context; the batch image is still
    built from the context (it adds Azure ML's batch packages)."""
    imported_image_digest: str | None = None
    """The digest of ``imported_image`` (its version hash needs a plain value at plan time)."""
    batch_ml_environment_name: str | None = None
    """Declare a second ML environment version under this name for batch deployments: built from
    ``batch_dockerfile`` with ``build_context``, or ``batch_image_uri`` with ``image_uri``. Unset:
    batch deployments use the serving ML environment, whose image must then carry the batch packages."""
    batch_dockerfile: str = "Dockerfile.azureml-batch"
    """The batch image's Dockerfile, relative to ``build_context`` (with ``batch_ml_environment_name``)."""
    batch_image_uri: str | None = None
    """The pre-built batch image, with ``image_uri`` and ``batch_ml_environment_name`` only."""
    pinned_model_versions: list[str] = field(default_factory=list)
    """Older versions still served by a variant: declared (already uploaded) so Pulumi keeps them."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags of every resource."""

    @property
    def all_model_versions(self) -> list[str]:
        return sorted({self.model_version, *self.pinned_model_versions}, key=int)


def _check(args: ModelEnvironmentArgs) -> None:
    check = Checks("ModelEnvironmentArgs")
    asset_hint = "must be letters, digits, '_', '.', '-' (Azure ML asset name)"
    check.pattern("model_name", args.model_name, _ASSET_NAME, asset_hint)
    check.pattern("ml_environment_name", args.ml_environment_name, _ASSET_NAME, asset_hint)
    for version in [args.model_version, *args.pinned_model_versions]:
        check.pattern("model_version", version, _VERSION, "must be a whole number as a string")
    check.that(
        len(set(args.pinned_model_versions)) == len(args.pinned_model_versions),
        "pinned_model_versions",
        args.pinned_model_versions,
        "must not repeat a version",
    )
    check.that(
        args.model_dir.is_dir() and any(args.model_dir.iterdir()),
        "model_dir",
        str(args.model_dir),
        "must be an existing, non-empty folder of model files",
    )
    check.that(
        (args.image_uri is None) != (args.build_context is None),
        "image_uri",
        args.image_uri,
        "set exactly one of image_uri or build_context",
    )
    check.that(
        args.imported_image is None or (args.build_context is not None and args.imported_image_digest is not None),
        "imported_image",
        args.imported_image,
        "an imported image replaces building build_context: set build_context and imported_image_digest with it",
    )
    if args.build_context is not None:
        check.that(
            (args.build_context / "Dockerfile").is_file(),
            "build_context",
            str(args.build_context),
            "must be a folder holding a Dockerfile",
        )
    for port_or_path in ("port", "liveness_path", "readiness_path", "scoring_path"):
        value = getattr(args.routes, port_or_path)
        if port_or_path == "port":
            check.range("routes.port", value, 1, 65535)
        else:
            check.that(
                isinstance(value, str) and value.startswith("/"),
                f"routes.{port_or_path}",
                value,
                "must be an absolute URL path starting with '/'",
            )
    _check_batch_ml_environment(check, args)


def _check_batch_ml_environment(check: Checks, args: ModelEnvironmentArgs) -> None:
    name = args.batch_ml_environment_name
    if name is not None:
        check.pattern(
            "batch_ml_environment_name",
            name,
            _ASSET_NAME,
            "must be letters, digits, '_', '.', '-' (Azure ML asset name)",
        )
        check.that(
            name != args.ml_environment_name, "batch_ml_environment_name", name, "must differ from ml_environment_name"
        )
    check.that(
        args.batch_image_uri is None or args.image_uri is not None,
        "batch_image_uri",
        args.batch_image_uri,
        "set only with image_uri; with build_context the batch image is built from batch_dockerfile",
    )
    check.that(
        args.batch_image_uri is None or name is not None,
        "batch_image_uri",
        args.batch_image_uri,
        "needs batch_ml_environment_name (the ML environment it becomes)",
    )
    if name is not None and args.image_uri is not None:
        check.that(
            args.batch_image_uri is not None,
            "batch_ml_environment_name",
            name,
            "with image_uri, set batch_image_uri too, or leave both unset to run batch on image_uri",
        )
    if name is not None and args.build_context is not None:
        dockerfile = args.build_context / args.batch_dockerfile
        check.that(
            dockerfile.is_file() and dockerfile in build_context_files(args.build_context),
            "batch_dockerfile",
            args.batch_dockerfile,
            f"must be a file in build_context ({args.build_context}) not excluded by its .dockerignore",
        )


@dataclass(frozen=True)
class _ImageSources:
    blobs: list[storage.Blob]
    """The uploaded build context (empty for pre-built images)."""
    serving: dict
    """The serving ML environment's image properties (``build`` or ``image``)."""
    batch: dict
    """The batch ML environment's image properties."""
    serving_version: str
    batch_version: str


class ModelEnvironment(pulumi.ComponentResource):
    """Exposes ``model_ids`` (version -> id), ``ml_environment_id``, ``ml_environment_version``,
    ``batch_ml_environment_id`` (the serving ML environment's without ``batch_ml_environment_name``),
    ``identity`` (``id``, ``principal_id``, ``client_id``) and ``role_assignments``."""

    def __init__(self, name: str, args: ModelEnvironmentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check(args)
        super().__init__("twinserve:azure:ModelEnvironment", name, None, opts)
        self._name, self._args = name, args
        self.model_versions = self._model_versions()
        self.model_ids = {v: m.id for v, m in self.model_versions.items()}
        images = self._image_sources()
        self.ml_environment_version = images.serving_version
        self.ml_environment = self._serving_ml_environment(images)
        self.ml_environment_id = self.ml_environment.id
        self.batch_ml_environment = self._batch_ml_environment(images)
        self.batch_ml_environment_version = (
            images.batch_version if self.batch_ml_environment else images.serving_version
        )
        self.batch_ml_environment_id = (self.batch_ml_environment or self.ml_environment).id
        self.identity, self.role_assignments = self._identity()
        self.register_outputs(
            {
                "model_ids": self.model_ids,
                "ml_environment_id": self.ml_environment_id,
                "ml_environment_version": self.ml_environment_version,
                "batch_ml_environment_id": self.batch_ml_environment_id,
                "identity_id": self.identity.id,
            }
        )

    def _upload(self, prefix: str, root: Path, files: list[Path], logical: str) -> list[storage.Blob]:
        """One blob per file under ``prefix``. Paths are per version and never rewritten: the files are
        kept when a version leaves the spec (a pinned variant may still need them)."""
        args = self._args
        return [
            storage.Blob(
                f"{self._name}-{logical}-{_resource_suffix(path.relative_to(root).as_posix())}",
                resource_group_name=args.resource_group_name,
                account_name=args.storage_account_name,
                container_name=args.asset_container_name,
                blob_name=f"{prefix}/{path.relative_to(root).as_posix()}",
                type="Block",
                source=pulumi.FileAsset(str(path)),
                # never protected: a model bump or image change removes the old blobs from the program, and
                # `protect` would make that `pulumi up` fail; retain_on_delete keeps them in Azure
                opts=child_opts(self, retain_on_delete=True),
            )
            for path in files
        ]

    def _model_versions(self) -> dict[str, ml.ModelVersion]:
        """The current version uploaded from ``model_dir``; pinned versions declared with their paths."""
        args = self._args
        model_files = sorted(p for p in args.model_dir.rglob("*") if p.is_file())
        model_blobs = self._upload(
            f"models/{args.model_name}/{args.model_version}",
            args.model_dir,
            model_files,
            f"model-v{args.model_version}",
        )
        return {
            version: ml.ModelVersion(
                f"{self._name}-model-v{version}",
                resource_group_name=args.resource_group_name,
                workspace_name=args.workspace_name,
                name=args.model_name,
                version=version,
                properties=ml.ModelVersionPropertiesArgs(
                    model_type="custom_model",
                    model_uri=self._datastore_uri(f"models/{args.model_name}/{version}/"),
                    description=f"{args.model_name} version {version}",
                    tags=args.tags,
                ),
                opts=child_opts(
                    self, retain_on_delete=True, depends_on=model_blobs if version == args.model_version else []
                ),
            )
            for version in args.all_model_versions
        }

    def _datastore_uri(self, path: str) -> pulumi.Output[str]:
        """The long ``azureml://subscriptions/.../datastores/<ds>/paths/<path>`` form the REST API stores
        (the short ``azureml://datastores/...`` one is CLI and SDK input syntax)."""
        args = self._args
        return pulumi.Output.concat(
            "azureml://subscriptions/",
            args.subscription_id,
            "/resourceGroups/",
            args.resource_group_name,
            "/workspaces/",
            args.workspace_name,
            "/datastores/",
            args.asset_datastore_name,
            "/paths/",
            path,
        )

    def _image_sources(self) -> _ImageSources:
        """Where the serving and the batch images come from: the uploaded build context (built by Azure
        ML) or the pre-built images. An environment version is immutable, so its version is a hash of
        everything sent with it: the context's content (or the image reference), the Dockerfile, the
        routes and port, the OS."""
        args = self._args
        inference = _inference_config(args.routes)
        if args.build_context is None:
            return _ImageSources(
                blobs=[],
                serving=dict(image=args.image_uri),
                batch=dict(image=args.batch_image_uri),
                serving_version=_version_of(args.image_uri, inference),
                batch_version=_version_of(args.batch_image_uri or ""),
            )
        context_files = build_context_files(args.build_context)
        context = content_hash(args.build_context, context_files)
        prefix = f"images/{args.ml_environment_name}/{context}"

        def built_from(dockerfile: str) -> dict:
            # EnvironmentVersion build contextUri: "Supports blob URIs on environment creation"
            # (machinelearningservices 2025-12-01 BuildContext): the https URL of the uploaded folder.
            return dict(
                build=ml.BuildContextArgs(
                    context_uri=pulumi.Output.concat(
                        args.storage_blob_endpoint, args.asset_container_name, "/", prefix, "/"
                    ),
                    dockerfile_path=dockerfile,
                )
            )

        imported = args.imported_image is not None
        return _ImageSources(
            blobs=self._upload(prefix, args.build_context, context_files, "image-context"),
            serving=dict(image=args.imported_image) if imported else built_from("Dockerfile"),
            batch=built_from(args.batch_dockerfile),
            serving_version=_version_of(args.imported_image_digest, inference)
            if imported
            else _version_of(context, "Dockerfile", inference),
            batch_version=_version_of(context, args.batch_dockerfile),
        )

    def _serving_ml_environment(self, images: _ImageSources) -> ml.EnvironmentVersion:
        """The one inference image, with the container's routes as its ``inference_config``."""
        args = self._args
        routes = args.routes
        return ml.EnvironmentVersion(
            f"{self._name}-env",
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            name=args.ml_environment_name,
            version=self.ml_environment_version,
            properties=ml.EnvironmentVersionPropertiesArgs(
                os_type="Linux",
                inference_config=ml.InferenceContainerPropertiesArgs(
                    liveness_route=ml.RouteArgs(path=routes.liveness_path, port=routes.port),
                    readiness_route=ml.RouteArgs(path=routes.readiness_path, port=routes.port),
                    scoring_route=ml.RouteArgs(path=routes.scoring_path, port=routes.port),
                ),
                description="twinserve common inference image",
                tags=args.tags,
                **images.serving,
            ),
            # Versions are immutable and may still be referenced: kept in Azure when they leave the program.
            opts=child_opts(self, retain_on_delete=True, depends_on=images.blobs),
        )

    def _batch_ml_environment(self, images: _ImageSources) -> ml.EnvironmentVersion | None:
        """The same server plus Azure ML's batch runtime packages. No inference_config: batch
        deployments call the entry script, never HTTP routes."""
        args = self._args
        if args.batch_ml_environment_name is None:
            return None
        return ml.EnvironmentVersion(
            f"{self._name}-batch-env",
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            name=args.batch_ml_environment_name,
            version=images.batch_version,
            properties=ml.EnvironmentVersionPropertiesArgs(
                os_type="Linux",
                description="twinserve inference image with Azure ML's batch runtime",
                tags=args.tags,
                **images.batch,
            ),
            opts=child_opts(self, retain_on_delete=True, depends_on=images.blobs),
        )

    def _identity(self) -> tuple[managedidentity.UserAssignedIdentity, list[authorization.RoleAssignment]]:
        """The endpoints' identity, with what it needs to pull the image and read the model."""
        args = self._args
        identity = managedidentity.UserAssignedIdentity(
            f"{self._name}-identity",
            resource_group_name=args.resource_group_name,
            location=args.location,
            resource_name_=args.identity_name,
            tags=args.tags,
            opts=child_opts(self),
        )
        assignments = [
            authorization.RoleAssignment(
                f"{self._name}-{short}",
                scope=scope,
                principal_id=identity.principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=role_definition(args.subscription_id, role),
                opts=child_opts(self),
            )
            for short, scope, role in (
                ("acrpull", args.registry_id, ROLE_ACR_PULL),
                ("blobreader", args.storage_account_id, ROLE_STORAGE_BLOB_DATA_READER),
                ("metrics", args.workspace_id, ROLE_AZUREML_METRICS_WRITER),
            )
        ]
        return identity, assignments
