"""The deployment spec: one typed description of a model deployment for both clouds.

Shapes, types and ranges live here (pydantic, strict: a YAML string is never silently turned into a
number). Rules that span several fields - the instance count a rollout needs, traffic that must sum
to 100, what one cloud cannot do - live in ``rules.py`` so each error can name its exact field path.

Cloud-neutral words are used where SageMaker and Azure ML share a concept:
  variant   = SageMaker production variant  = Azure ML online deployment
  weight    = InitialVariantWeight            = endpoint traffic percentage
  shadow    = ShadowProductionVariants        = mirror traffic
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ENVIRONMENT_NAMES = ("dev", "staging", "prod")
EnvironmentName = Literal["dev", "staging", "prod"]
Target = Literal["aws", "azure"]

# Names end up in CloudFormation logical ids, SageMaker names (<= 63 chars) and Azure ML names
# (<= 32 chars for endpoints, lower case): keep them short and DNS-safe.
_NAME = r"^[a-z]([a-z0-9-]{0,22}[a-z0-9])?$"
_VARIANT = r"^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$"
_VERSION = r"^[0-9]+$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
Name = Annotated[str, Field(pattern=_NAME)]
VariantName = Annotated[str, Field(pattern=_VARIANT)]
Version = Annotated[str, Field(pattern=_VERSION)]
Email = Annotated[str, Field(pattern=_EMAIL)]

# What each pattern allows, in words, for error messages.
PATTERN_HINTS = {
    _NAME: "must be 1-24 characters: lower-case letters, digits and '-', starting with a letter",
    _VARIANT: "must be 1-16 characters: lower-case letters, digits and '-', starting with a letter",
    _VERSION: "must be a whole version number written as a string, e.g. \"3\"",
    _EMAIL: "must be an e-mail address",
}
Percent = Annotated[int, Field(ge=0, le=100)]


class StrictModel(BaseModel):
    """Unknown fields are errors; types are not coerced (a typo must never be ignored)."""

    # Attribute docstrings become field descriptions: docs/spec.md is generated from them.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True)


# --------------------------------------------------------------------------- model and container


class ArtifactSpec(StrictModel):
    """Where the trained model comes from. Exactly one of ``path`` or ``s3_uri``."""

    path: str | None = None
    """A local directory holding the model files (relative to the spec file). It is packed as
    ``model.tar.gz`` for SageMaker and uploaded as a folder for Azure ML."""
    s3_uri: Annotated[str, Field(pattern=r"^s3://[a-z0-9.\-]{3,63}/.+\.tar\.gz$")] | None = None
    """An existing ``model.tar.gz`` in S3 (AWS only; Azure ML then needs ``path``)."""


class ModelSpec(StrictModel):
    name: Name
    """Model name: the SageMaker model package group and the Azure ML model container."""
    version: Version
    """The version every variant serves unless it names its own ``model_version``."""
    artifact: ArtifactSpec


class ContainerSpec(StrictModel):
    """The one inference image both clouds run. Exactly one of ``build`` or ``image_uri``."""

    build: str | None = None
    """A Docker build context (relative to the spec file), built as a CDK image asset for ECR and
    pushed to the workspace's Azure Container Registry."""
    image_uri: str | None = None
    """A pre-built image reference used as is on both clouds."""
    azure_batch_image_uri: str | None = None
    """Azure ML batch deployments only, with ``image_uri``: a pre-built image that adds Azure ML's batch
    runtime packages (``azureml-core``, ``azureml-dataset-runtime[fuse]``) to the serving image, e.g.
    built from ``model_containers/Dockerfile.azureml-batch``. Unset, the batch deployment runs
    ``image_uri``, which must then carry those packages. With ``build``, the batch image is built from
    ``Dockerfile.azureml-batch`` in the build context and this field is not allowed."""
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    """The port the container listens on (SageMaker requires 8080; Azure ML's routes use it too)."""
    liveness_path: str = "/live"
    """Azure ML liveness route: 200 while the server process is up."""
    readiness_path: str = "/ready"
    """Azure ML readiness route: 200 once the model is loaded (SageMaker's /ping behaves the same)."""
    scoring_path: str = "/score"
    """Azure ML scoring route (the container also answers SageMaker's /invocations)."""


# --------------------------------------------------------------------------- serving


class ComputeSpec(StrictModel):
    aws_instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] = "ml.m5.large"
    azure_instance_type: Annotated[str, Field(pattern=r"^Standard_[A-Za-z0-9_]+$")] = "Standard_DS3_v2"
    instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    """Instances per variant (SageMaker InitialInstanceCount, Azure ML sku.capacity)."""


class VariantSpec(StrictModel):
    """One live variant (SageMaker production variant / Azure ML deployment)."""

    name: VariantName
    weight: Percent
    """Percent of live traffic; the weights of all variants sum to 100."""
    model_version: Version | None = None
    instance_count: Annotated[int, Field(ge=1, le=100)] | None = None


class ShadowSpec(StrictModel):
    """A candidate that receives a copy of live traffic; its answers are discarded."""

    name: VariantName
    sample_percent: Annotated[int, Field(ge=1, le=100)]
    """Percent of live requests mirrored to the shadow (Azure ML allows at most 50)."""
    model_version: Version | None = None
    instance_count: Annotated[int, Field(ge=1, le=100)] | None = None


class ServerlessSpec(StrictModel):
    memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 2048
    max_concurrency: Annotated[int, Field(ge=1, le=200)] = 5
    provisioned_concurrency: Annotated[int, Field(ge=1, le=200)] | None = None


class AsyncSpec(StrictModel):
    max_concurrent_invocations_per_instance: Annotated[int, Field(ge=1, le=1000)] = 4
    scale_to_zero: bool = True
    """Scale the variant to 0 instances when the queue is empty and back to 1 on backlog."""


class BatchSpec(StrictModel):
    enabled: bool = False
    instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    strategy: Literal["SINGLE_RECORD", "MULTI_RECORD"] = "MULTI_RECORD"
    max_payload_mb: Annotated[int, Field(ge=1, le=100)] = 6
    max_concurrent_transforms: Annotated[int, Field(ge=1, le=100)] = 2
    """max_concurrent_transforms x max_payload_mb must stay <= 100 (SageMaker batch transform)."""
    mini_batch_size: Annotated[int, Field(ge=1, le=10000)] = 10
    """Files per mini-batch on Azure ML batch endpoints."""


class ServingSpec(StrictModel):
    endpoint_type: Literal["realtime", "serverless", "async"] = "realtime"
    variants: Annotated[list[VariantSpec], Field(min_length=1, max_length=10)] = [
        VariantSpec(name="primary", weight=100)
    ]
    shadow: ShadowSpec | None = None
    serverless: ServerlessSpec = ServerlessSpec()
    async_inference: AsyncSpec = Field(default=AsyncSpec(), alias="async")
    batch: BatchSpec = BatchSpec()
    request_timeout_seconds: Annotated[int, Field(ge=1, le=180)] = 60
    max_concurrent_requests_per_instance: Annotated[int, Field(ge=1, le=1000)] = 4

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True,
                              use_attribute_docstrings=True)


class RolloutSpec(StrictModel):
    """How a change of model version or image reaches traffic.

    On AWS this becomes the endpoint's DeploymentConfig (blue/green with ALL_AT_ONCE, CANARY or
    LINEAR shifting, or a rolling update) with automatic rollback on the environment's alarms.
    On Azure ML the same spec is expressed with deployments and traffic weights (see docs).
    """

    strategy: Literal["all_at_once", "canary", "linear", "rolling"] = "all_at_once"
    step_percent: Annotated[int, Field(ge=1, le=99)] = 10
    """Canary size, linear step or rolling batch, as percent of capacity."""
    wait_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    """Bake time between steps, watched by the rollback alarms."""
    termination_wait_seconds: Annotated[int, Field(ge=0, le=3600)] = 120
    max_execution_timeout_seconds: Annotated[int, Field(ge=600, le=14400)] = 3600
    auto_rollback: bool = True


class ScalingSpec(StrictModel):
    enabled: bool = False
    min_instances: Annotated[int, Field(ge=1, le=100)] = 1
    max_instances: Annotated[int, Field(ge=1, le=100)] = 2
    target_invocations_per_instance: Annotated[int, Field(ge=1, le=100000)] = 200
    """AWS target tracking on SageMakerVariantInvocationsPerInstance (per minute)."""
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    cpu_scale_out_percent: Annotated[int, Field(ge=1, le=100)] = 70
    """Azure ML autoscale: add an instance above this average CPU."""
    cpu_scale_in_percent: Annotated[int, Field(ge=1, le=100)] = 25
    latency_scale_out_ms: Annotated[int, Field(ge=1, le=180000)] = 500
    """Azure ML autoscale: add an instance above this average request latency."""


class AlarmSpec(StrictModel):
    emails: list[Email] = []
    """Subscribed to the alarm topic / action group, and to budget notifications."""
    errors_5xx: Annotated[int, Field(ge=1)] = 5
    """Invocation 5XX errors per period that raise the alarm (and roll back a deployment)."""
    errors_4xx: Annotated[int, Field(ge=1)] = 50
    model_latency_p99_ms: Annotated[int, Field(ge=1)] = 500
    overhead_latency_p99_ms: Annotated[int, Field(ge=1)] = 100
    cpu_utilization_percent: Annotated[int, Field(ge=1, le=100)] = 80
    """Average CPU across the instance's cores (normalised per core)."""
    memory_utilization_percent: Annotated[int, Field(ge=1, le=100)] = 85
    disk_utilization_percent: Annotated[int, Field(ge=1, le=100)] = 85
    zero_invocations: bool = False
    """Alarm when the endpoint gets no traffic for ``evaluation_periods`` periods."""
    period_seconds: Literal[60, 300, 900, 3600] = 60
    evaluation_periods: Annotated[int, Field(ge=1, le=60)] = 3


class BudgetSpec(StrictModel):
    monthly_limit_usd: Annotated[int, Field(ge=1)]
    notify_at_percent: Annotated[list[Annotated[int, Field(ge=1, le=1000)]], Field(min_length=1)] = [80, 100]


# --------------------------------------------------------------------------- per-cloud settings


class AwsVpcSpec(StrictModel):
    subnet_ids: Annotated[list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")]], Field(min_length=1)]
    security_group_ids: Annotated[list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]+$")]], Field(min_length=1)]


class DataCaptureSpec(StrictModel):
    enabled: bool = False
    sampling_percent: Annotated[int, Field(ge=1, le=100)] = 20


class AwsSpec(StrictModel):
    account: Annotated[str, Field(pattern=r"^[0-9]{12}$")] | None = None
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")] | None = None
    encryption: Literal["kms", "s3_managed"] = "kms"
    """Customer-managed KMS key for artifacts, endpoint volumes and captured data, or S3-managed keys."""
    vpc: AwsVpcSpec | None = None
    network_isolation: bool = False
    data_capture: DataCaptureSpec = DataCaptureSpec()
    container_startup_timeout_seconds: Annotated[int, Field(ge=60, le=3600)] = 600


class AksSpec(StrictModel):
    node_count: Annotated[int, Field(ge=1, le=100)] = 3
    vm_size: Annotated[str, Field(pattern=r"^Standard_[A-Za-z0-9_]+$")] = "Standard_D4s_v3"
    vcpus_per_node: Annotated[int, Field(ge=1, le=416)] | None = None
    """Only needed for a vm_size whose core count twinserve cannot read from its name."""
    autoscale_min_nodes: Annotated[int, Field(ge=1, le=100)] | None = None
    autoscale_max_nodes: Annotated[int, Field(ge=1, le=1000)] | None = None


class AzureSpec(StrictModel):
    """Azure ML settings of an environment. The location is Pulumi config (Pulumi.<env>.yaml)."""

    online_endpoints: Annotated[
        list[Literal["managed", "kubernetes"]], Field(min_length=1, max_length=2)
    ] = ["managed", "kubernetes"]
    auth_mode: Literal["key", "aml_token", "aad_token"] = "key"
    public_network_access: bool = True
    managed_network: Literal["disabled", "allow_internet_outbound", "allow_only_approved_outbound"] = "disabled"
    aks: AksSpec = AksSpec()
    batch_vm_size: Annotated[str, Field(pattern=r"^Standard_[A-Za-z0-9_]+$")] = "Standard_DS3_v2"
    batch_max_nodes: Annotated[int, Field(ge=1, le=100)] = 2


# --------------------------------------------------------------------------- promotion pipeline

_CONNECTION_ARN = r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}:connection/[0-9a-f-]{36}$"
_REPOSITORY = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
PATTERN_HINTS[_CONNECTION_ARN] = ("must be a CodeConnections (or CodeStar Connections) connection ARN, "
                                  "arn:aws:codeconnections:<region>:<account>:connection/<uuid>")
PATTERN_HINTS[_REPOSITORY] = "must be a repository as owner/name, e.g. my-org/twinserve"


class PipelineSourceSpec(StrictModel):
    """The repository the pipeline watches, through an AWS CodeConnections connection."""

    connection_arn: Annotated[str, Field(pattern=_CONNECTION_ARN)]
    """The connection to GitHub, GitLab or Bitbucket, created once in the pipeline's account and
    confirmed in the console (docs/aws.md, "Promotion pipeline")."""
    repository: Annotated[str, Field(pattern=_REPOSITORY)]
    """The repository holding this spec, as ``owner/name``."""
    branch: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\s]+$")] = "main"
    """A push to this branch starts the pipeline."""


class PipelineSpec(StrictModel):
    """AWS only: a CodePipeline that synthesizes this spec and promotes its AWS environments dev -> staging -> prod.

    Built with CDK Pipelines, deployed once with ``cdk deploy <name>-pipeline``; it then updates itself
    on every push (docs/aws.md, "Promotion pipeline")."""

    source: PipelineSourceSpec
    """Where the pipeline gets this repository from."""
    account: Annotated[str, Field(pattern=r"^[0-9]{12}$")] | None = None
    """The account the pipeline runs in (a tools account). Required when an environment names its
    own ``aws.account``; unset, the pipeline and every stage deploy to the CLI's account."""
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")] | None = None
    """The pipeline's region. Required when an environment names its own ``aws.region``."""
    manual_approval_before: list[EnvironmentName] = ["prod"]
    """Environments whose deployment waits for a person to approve it in CodePipeline."""
    smoke_test: bool = True
    """After each environment deploys, invoke its endpoint with a sample request and fail the
    pipeline unless it answers 200 with predictions."""


# --------------------------------------------------------------------------- environments


class EnvironmentSpec(StrictModel):
    """One environment after ``defaults`` and its own overrides are merged."""

    targets: Annotated[list[Target], Field(min_length=1, max_length=2)] = ["aws", "azure"]
    compute: ComputeSpec = ComputeSpec()
    serving: ServingSpec = ServingSpec()
    rollout: RolloutSpec = RolloutSpec()
    scaling: ScalingSpec = ScalingSpec()
    alarms: AlarmSpec = AlarmSpec()
    budget: BudgetSpec | None = None
    aws: AwsSpec = AwsSpec()
    azure: AzureSpec = AzureSpec()


class DeploymentSpec(StrictModel):
    """The whole file, with every environment already merged and checked."""

    name: Name
    """Deployment name: prefixes stage, stack and resource names on both clouds."""
    model: ModelSpec
    container: ContainerSpec
    environments: dict[EnvironmentName, EnvironmentSpec]
    """dev, staging and/or prod, each the result of ``defaults`` merged with its own section."""
    pipeline: PipelineSpec | None = None
    """The promotion pipeline on AWS (optional)."""

    def environment(self, name: str) -> EnvironmentSpec:
        try:
            return self.environments[name]  # type: ignore[index]
        except KeyError:
            raise KeyError(
                f"environment {name!r} is not in the spec; defined: {', '.join(self.environments)}"
            ) from None

    def model_version_of(self, variant: VariantSpec | ShadowSpec) -> str:
        return variant.model_version or self.model.version
