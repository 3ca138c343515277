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

from twinserve_serving.config import BATCH_MAX_DELAY_MS_LIMIT, BATCH_MAX_SIZE_LIMIT, DEFAULT_BATCH_MAX_DELAY_MS
from twinserve_serving.formats import FORMAT_NAMES

from ..platform import aws as aws_platform
from ..platform import azure as azure_platform
from ..platform.shared import EMAIL_HINT, EMAIL_PATTERN, INSTANCE_COUNT

ENVIRONMENT_NAMES = ("dev", "staging", "prod")
EnvironmentName = Literal["dev", "staging", "prod"]
Target = Literal["aws", "azure"]

# Names end up in CloudFormation logical ids, SageMaker names (<= 63 chars) and Azure ML names
# (<= 32 chars for endpoints, lower case): keep them short and DNS-safe.
_NAME = r"^[a-z]([a-z0-9-]{0,22}[a-z0-9])?$"
_VARIANT = r"^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$"
_VERSION = r"^[0-9]+$"
_EMAIL = f"^{EMAIL_PATTERN}$"
_AWS_INSTANCE_TYPE = f"^{aws_platform.INSTANCE_TYPE_PATTERN}$"
_AZURE_VM_SIZE = f"^{azure_platform.VM_SIZE_PATTERN}$"
Name = Annotated[str, Field(pattern=_NAME)]
VariantName = Annotated[str, Field(pattern=_VARIANT)]
Version = Annotated[str, Field(pattern=_VERSION)]
Email = Annotated[str, Field(pattern=_EMAIL)]

# What each pattern allows, in words, for error messages.
PATTERN_HINTS = {
    _NAME: "must be 1-24 characters: lower-case letters, digits and '-', starting with a letter",
    _VARIANT: "must be 1-16 characters: lower-case letters, digits and '-', starting with a letter",
    _VERSION: 'must be a whole version number written as a string, e.g. "3"',
    _EMAIL: EMAIL_HINT,
    _AWS_INSTANCE_TYPE: aws_platform.INSTANCE_TYPE_HINT,
    _AZURE_VM_SIZE: azure_platform.VM_SIZE_HINT,
}


def _within(bounds: tuple[int, int]):
    """``low <= value <= high`` for a platform's ``(low, high)`` range."""
    return Field(ge=bounds[0], le=bounds[1])


Percent = Annotated[int, Field(ge=0, le=100)]
InstanceCount = Annotated[int, _within(INSTANCE_COUNT)]
AwsInstanceType = Annotated[str, Field(pattern=_AWS_INSTANCE_TYPE)]
AzureVmSize = Annotated[str, Field(pattern=_AZURE_VM_SIZE)]


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
    """Where the model files are."""
    format: Literal[("auto", *FORMAT_NAMES)] = "auto"
    """The model's format, served with no code by the container's default handler: ``auto`` detects it
    from the files in ``artifact.path`` at synth time (``MLmodel``, ``*.onnx``, ``*.skops``/``*.joblib``,
    XGBoost ``*.ubj``/``*.json``, LightGBM ``*.txt``, ``*.pt``/``*.pt2``; docs/container.md). Stated,
    it is enforced in the container too (TWINSERVE_MODEL_FORMAT). With ``artifact.s3_uri`` nothing can
    be read at synth time: ``auto`` then means the core (ONNX) image."""
    trust_pickle: bool = False
    """Load a scikit-learn ``*.joblib``/``*.pkl`` model. Unpickling runs code from the file, so it is
    refused unless set; prefer skops (``*.skops``)."""
    trust_skops: bool = False
    """Load the types a ``*.skops`` file holds beyond skops' own trusted set (e.g. a custom
    transformer); unset, such a file is refused at synth time, naming the types."""
    requirements: list[Annotated[str, Field(min_length=1)]] = []
    """Python requirements of the model beyond what it declares itself (``code/requirements.txt``, an
    MLflow model's ``python_env.yaml``/``requirements.txt``), baked into the image at build time on
    both clouds; ``mlflow`` becomes ``mlflow-skinny``, and a pin that moves the server's numpy or
    onnxruntime is refused."""


class ContainerSpec(StrictModel):
    """The one inference image both clouds run. Exactly one of ``build`` or ``image_uri``."""

    build: str | None = None
    """A Docker build context (relative to the spec file), built as a CDK image asset for ECR and
    pushed to the workspace's Azure Container Registry."""
    image_uri: str | None = None
    """A pre-built image reference used as is on both clouds."""
    image_variant: Literal["auto", "core", "formats", "torch"] = "auto"
    """With ``build``: which of model_containers/'s images to build. ``auto`` is the smallest that
    serves ``model.format`` (ONNX: core; MLflow, scikit-learn, XGBoost, LightGBM: formats; PyTorch:
    torch); an environment with ``compute.gpu`` gets its GPU build (gpu, torch-gpu)."""
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
    """Instance sizes and counts of the live variants."""

    aws_instance_type: AwsInstanceType = "ml.m5.large"
    """SageMaker instance type of every instance variant, the shadow and batch transform."""
    azure_instance_type: AzureVmSize = "Standard_DS3_v2"
    """VM size of the managed online deployments. Kubernetes deployments run the attached cluster's
    instance type instead (``defaultinstancetype``; ``gpuinstancetype`` with ``gpu``, see ``azure.aks``)."""
    gpu: bool = False
    """Serve on NVIDIA GPUs with the CUDA 12 build of the image: ``aws_instance_type`` (and the batch
    transform) must be a CUDA GPU type (ml.g4dn, g5, g6, g6e, p4d, p5), ``azure_instance_type`` and
    ``azure.batch_vm_size`` a current NC T4/A100/H100 size, and a Kubernetes endpoint needs
    ``azure.aks.gpu_pool``. SageMaker serverless has no GPU."""
    instance_count: InstanceCount = 1
    """Instances per variant (SageMaker InitialInstanceCount, Azure ML sku.capacity). With scaling on it
    is the count a new endpoint starts with: neither cloud applies a change to a live autoscaled
    environment (AWS retains the autoscaled count, RetainAllVariantProperties; Azure ignores
    sku.capacity and refreshes it from the live value)."""


class VariantSpec(StrictModel):
    """One live variant (SageMaker production variant / Azure ML deployment)."""

    name: VariantName
    """Variant name on SageMaker and deployment name on Azure ML (3 characters at least there); keep it
    stable across releases: guarded rollouts update a variant in place."""
    weight: Percent
    """Percent of live traffic; the weights of all variants sum to 100."""
    model_version: Version | None = None
    """The model version this variant serves (default ``model.version``): pin the old version on the
    blue variant while the green one takes the new."""
    instance_count: InstanceCount | None = None
    """This variant's instances (default ``compute.instance_count``)."""


class ShadowSpec(StrictModel):
    """A candidate that receives a copy of live traffic; its answers are discarded."""

    name: VariantName
    """Shadow variant name (SageMaker) / mirror deployment name (Azure ML)."""
    sample_percent: Annotated[int, Field(ge=1, le=100)]
    """Percent of live requests mirrored to the shadow (Azure ML allows at most 50)."""
    model_version: Version | None = None
    """The model version the shadow serves (default ``model.version``)."""
    instance_count: InstanceCount | None = None
    """The shadow's instances (default ``compute.instance_count``). A shadow is never autoscaled, on
    either cloud."""


class ServerlessSpec(StrictModel):
    """SageMaker Serverless Inference (AWS only)."""

    memory_mb: Literal[aws_platform.SERVERLESS_MEMORY_MB] = 2048
    """Memory of each serverless worker."""
    max_concurrency: Annotated[int, Field(ge=1, le=aws_platform.SERVERLESS_MAX_CONCURRENCY)] = 5
    """Concurrent invocations of the endpoint; also the upper bound when ``scaling`` scales the
    provisioned concurrency (from 1)."""
    provisioned_concurrency: Annotated[int, Field(ge=1, le=aws_platform.SERVERLESS_MAX_CONCURRENCY)] | None = None
    """Pre-warmed workers (none by default); ``scaling.enabled`` scales them."""


class AsyncSpec(StrictModel):
    """SageMaker Asynchronous Inference (AWS only)."""

    max_concurrent_invocations_per_instance: Annotated[
        int, Field(ge=1, le=aws_platform.ASYNC_MAX_CONCURRENT_INVOCATIONS)
    ] = 4
    """Requests SageMaker sends to one instance at a time."""
    scale_to_zero: bool = True
    """Scale the variant to 0 instances when the queue is empty and back to 1 on backlog."""


class BatchSpec(StrictModel):
    """Batch scoring with the same model and image: on AWS a SageMaker batch transform (state machine), or
    with ``aws.platform: ecs_fargate`` an AWS Batch job on Fargate (``aws.batch_job``); an Azure ML batch
    endpoint (always planned: its cluster scales to zero)."""

    enabled: bool = False
    """AWS: create the batch transform state machine (sagemaker) or the AWS Batch job queue and job
    definition (ecs_fargate; not on lambda). Azure: the batch endpoint exists either way."""
    instance_count: InstanceCount = 1
    """Instances (AWS SageMaker) / nodes (Azure) one batch job uses; an AWS Batch job on Fargate is one
    task (1)."""
    strategy: Literal["SINGLE_RECORD", "MULTI_RECORD"] = "MULTI_RECORD"
    """AWS SageMaker only: one record per request, or as many as fit into ``max_payload_mb``."""
    max_payload_mb: Annotated[int, Field(ge=1, le=aws_platform.BATCH_MAX_PAYLOAD_MB)] = 6
    """AWS SageMaker only: the largest request body a transform job sends."""
    max_concurrent_transforms: Annotated[int, Field(ge=1, le=aws_platform.BATCH_PAYLOAD_BUDGET_MB)] = 2
    """Concurrent requests per instance (AWS MaxConcurrentTransforms, Azure max_concurrency_per_instance);
    max_concurrent_transforms x max_payload_mb must stay <= 100 (SageMaker batch transform). An AWS Batch
    job scores ``serving.max_concurrent_requests_per_instance`` files at a time (the container's threads)."""
    mini_batch_size: Annotated[int, Field(ge=1, le=10000)] = 10
    """Azure only: files per mini-batch."""


class AdaptiveBatchingSpec(StrictModel):
    """Concurrent requests merged into one model call by the container, on both clouds.

    Worth it for models whose one call on many rows costs far less than many calls on one row (a
    dense network of tens of MB); a tiny model (the iris sample) answers one row faster than a batch
    can be gathered, so it is off by default (the numbers: README, "Serving performance"). Only the
    default handler's requests merge (every request format: JSON, CSV, NPY), for ONNX, scikit-learn,
    XGBoost, LightGBM and TorchScript models; a user handler, an MLflow pyfunc or a torch.export
    program runs one request per call. Each request is checked alone first, so a bad one gets its
    own error; if a merged call fails, its requests are predicted one by one.
    """

    enabled: bool = False
    """Merge concurrent requests (the container's ``TWINSERVE_BATCH_MAX_SIZE`` and
    ``TWINSERVE_BATCH_MAX_DELAY_MS``, the same on SageMaker and Azure ML)."""
    max_batch_size: Annotated[int, Field(ge=2, le=BATCH_MAX_SIZE_LIMIT)] = 32
    """Most rows in one model call; a request with more rows runs alone."""
    max_delay_ms: Annotated[float, Field(ge=0, le=BATCH_MAX_DELAY_MS_LIMIT)] = DEFAULT_BATCH_MAX_DELAY_MS
    """Longest a request waits for others to join its call. It waits only while other requests are
    arriving: a lone request never waits. 0 merges only the requests already queued."""


class ServingSpec(StrictModel):
    """How requests are served."""

    endpoint_type: Literal["realtime", "serverless", "async"] = "realtime"
    """realtime on both clouds; serverless and async exist on SageMaker only (``targets: [aws]``)."""
    variants: Annotated[list[VariantSpec], Field(min_length=1, max_length=aws_platform.MAX_VARIANTS)] = [
        VariantSpec(name="primary", weight=100)
    ]
    """The live variants and their traffic weights (A/B tests, blue/green)."""
    shadow: ShadowSpec | None = None
    """A candidate that gets a copy of live traffic (SageMaker shadow variant, Azure ML mirror traffic)."""
    serverless: ServerlessSpec = ServerlessSpec()
    """Settings of ``endpoint_type: serverless``."""
    async_inference: AsyncSpec = Field(default=AsyncSpec(), alias="async")
    """Settings of ``endpoint_type: async``."""
    batch: BatchSpec = BatchSpec()
    """Batch scoring with the same model and image."""
    request_timeout_seconds: Annotated[int, Field(ge=1, le=azure_platform.MANAGED_MAX_REQUEST_TIMEOUT_MS // 1000)] = 60
    """Longest a request may take. Azure ML: the deployments' request timeout (at most 180 s); SageMaker:
    its real-time and serverless limit is a fixed 60 s, so at most 60 there. The container answers 504
    one second earlier on both clouds."""
    max_concurrent_requests_per_instance: Annotated[int, Field(ge=1, le=1000)] = 4
    """Requests one instance works on at once: Azure ML's max_concurrent_requests_per_instance, and the
    container's predicting threads on both clouds."""
    adaptive_batching: AdaptiveBatchingSpec = AdaptiveBatchingSpec()
    """Merge concurrent requests into one model call (off by default)."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, populate_by_name=True, use_attribute_docstrings=True
    )


class RolloutSpec(StrictModel):
    """How a change of model version or image reaches traffic.

    On AWS this becomes the endpoint's DeploymentConfig (blue/green with ALL_AT_ONCE, CANARY or
    LINEAR shifting, or a rolling update) with automatic rollback on the environment's alarms.
    Azure ML has no traffic-shifting policy on one deployment: it replaces a changed deployment's
    instances in place (a rolling update of its own), and shifting between versions is done with
    variants, weights and ``model_version`` (docs/azure.md, "Blue/green"). These settings are AWS
    behaviour; on Azure only the instance-count rule below applies.
    """

    strategy: Literal[aws_platform.ROLLOUT_STRATEGIES] = "all_at_once"
    """all_at_once, canary, linear (blue/green traffic shifting) or rolling (in-place batches)."""
    step_percent: Annotated[int, Field(ge=1, le=99)] = 10
    """Canary size (at most 50), linear step (10..50) or rolling batch (5..50), as percent of the
    variant's instances. A canary smaller than one instance is sent as one instance (with 3 instances,
    a 10 % canary is 1 instance: a third of the traffic)."""
    wait_seconds: Annotated[int, _within(aws_platform.ROLLOUT_WAIT_SECONDS)] = 300
    """Bake time between steps, watched by the rollback alarms."""
    termination_wait_seconds: Annotated[int, _within(aws_platform.TERMINATION_WAIT_SECONDS)] = 120
    """How long the old fleet is kept after the shift (blue/green), for a fast rollback."""
    max_execution_timeout_seconds: Annotated[int, _within(aws_platform.MAX_EXECUTION_TIMEOUT_SECONDS)] = 3600
    """Upper bound of the whole update; SageMaker rolls back when it is exceeded. It must cover every
    bake, the termination wait and the new instances' start-up (a spec rule computes the total)."""
    auto_rollback: bool = True
    """Roll back when one of the environment's alarms fires during the update. With ``all_at_once``
    and ``false`` the SageMaker endpoint carries no DeploymentConfig (a plain blue/green update, no
    bake): deploy once like that to remove or rename a variant, which guarded updates refuse."""


class ScalingSpec(StrictModel):
    """Autoscaling of the live variants (never the shadow) on both clouds."""

    enabled: bool = False
    """Scale the live variants (AWS Application Auto Scaling; Azure autoscale settings on the managed
    endpoint's deployments). Kubernetes deployments keep their instance count; the AKS node pool
    scales with ``azure.aks.autoscale_*``. Serverless endpoints scale their provisioned concurrency
    between 1 and ``serving.serverless.max_concurrency`` instead of instances."""
    min_instances: InstanceCount = 1
    """Fewest instances per live variant."""
    max_instances: InstanceCount = 2
    """Most instances per live variant (also the async endpoint's upper bound)."""
    target_invocations_per_instance: Annotated[int, Field(ge=1, le=100000)] = 200
    """AWS only: target tracking on SageMakerVariantInvocationsPerInstance (per minute)."""
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    """Wait after removing an instance before removing another (Azure: at least 60)."""
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    """Wait after adding an instance before adding another (Azure: at least 60)."""
    cpu_scale_out_percent: Annotated[int, Field(ge=1, le=100)] = 70
    """Azure only: add an instance above this average CPU."""
    cpu_scale_in_percent: Annotated[int, Field(ge=1, le=100)] = 25
    """Azure only: remove an instance below this average CPU."""
    latency_scale_out_ms: Annotated[int, Field(ge=1, le=180000)] = 500
    """Azure only: add an instance above this average request latency."""


class AlarmSpec(StrictModel):
    """Alarms (AWS CloudWatch, one set per variant) and alerts (Azure Monitor, per endpoint).

    The clouds measure differently: CloudWatch raises an alarm when ``evaluation_periods``
    consecutive periods breach; Azure Monitor evaluates every ``period_seconds`` over a window of
    ``period_seconds x evaluation_periods`` rounded up to a window it offers (1, 5, 15, 30 or 60
    minutes, 6, 12 or 24 hours)."""

    emails: list[Email] = []
    """Subscribed to the alarm topic / action group, and to budget notifications."""
    errors_5xx: Annotated[int, Field(ge=1)] = 5
    """Server errors that raise the alarm (and roll back a guarded AWS deployment): per period on AWS,
    within the window on Azure."""
    errors_4xx: Annotated[int, Field(ge=1)] = 50
    """AWS only: client errors per period that raise an alarm."""
    model_latency_p99_ms: Annotated[int, Field(ge=1)] = 500
    """p99 latency that raises the alarm: the container's own time on AWS (ModelLatency), the whole
    request on Azure (RequestLatency_P99)."""
    overhead_latency_p99_ms: Annotated[int, Field(ge=1)] = 100
    """AWS only: SageMaker's own p99 time around the container (OverheadLatency)."""
    cpu_utilization_percent: Annotated[int, Field(ge=1, le=100)] = 80
    """AWS only: average CPU across the instance's cores (normalised per core)."""
    memory_utilization_percent: Annotated[int, Field(ge=1, le=100)] = 85
    """AWS only: average memory utilization of the instances."""
    disk_utilization_percent: Annotated[int, Field(ge=1, le=100)] = 85
    """AWS only: average disk utilization of the instances."""
    zero_invocations: bool = False
    """AWS only: alarm when the endpoint gets no traffic for ``evaluation_periods`` periods."""
    period_seconds: Literal[60, 300, 900, 3600] = 60
    """One datapoint (AWS) / the evaluation frequency (Azure)."""
    evaluation_periods: Annotated[int, Field(ge=1, le=60)] = 3
    """Consecutive breaching periods (AWS) / periods the window covers (Azure)."""


class BudgetSpec(StrictModel):
    """A monthly cost ceiling per environment: AWS Budgets and an Azure consumption budget on the
    environment's resource group."""

    monthly_limit_usd: Annotated[int, Field(ge=1)]
    """The monthly limit: US dollars on AWS; on Azure the amount is in the subscription's billing
    currency (Azure budgets have no currency of their own)."""
    notify_at_percent: Annotated[list[Annotated[int, Field(ge=1, le=1000)]], Field(min_length=1)] = [80, 100]
    """Thresholds of actual cost in percent of the limit, each e-mailed to ``alarms.emails``; both
    clouds also warn when the month's forecast reaches the limit."""


# --------------------------------------------------------------------------- per-cloud settings


class AwsVpcSpec(StrictModel):
    """An existing VPC the SageMaker containers join."""

    subnet_ids: Annotated[list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")]], Field(min_length=1)]
    """Private subnets with VPC endpoints or a NAT route."""
    security_group_ids: Annotated[list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]+$")]], Field(min_length=1)]
    """Security groups of the containers' network interfaces."""


class DataCaptureSpec(StrictModel):
    """SageMaker data capture of requests and responses to the artifacts bucket."""

    enabled: bool = False
    """Capture to ``data-capture/`` of the artifacts bucket (encrypted with the environment's key)."""
    sampling_percent: Annotated[int, Field(ge=1, le=100)] = 20
    """Percent of requests captured."""


class FargateSpec(StrictModel):
    """The ECS Fargate service of ``aws.platform: ecs_fargate`` (tasks = ``compute.instance_count``)."""

    cpu: Literal[256, 512, 1024, 2048, 4096, 8192, 16384] = 1024
    """CPU units per task (1024 = 1 vCPU)."""
    memory_mib: Annotated[int, Field(ge=512, le=122880)] = 2048
    """Memory per task; Fargate accepts only certain sizes per ``cpu`` (a rule lists them)."""
    vpc_cidr: Annotated[str, Field(pattern=r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/(1[6-9]|2[0-4])$")] = "10.40.0.0/16"
    """The VPC twinserve creates for the service: private subnets in two zones, no internet route,
    VPC endpoints for ECR, CloudWatch Logs and S3 (the image pull)."""


class AwsBatchJobSpec(StrictModel):
    """The AWS Batch job on Fargate that runs ``serving.batch`` when ``aws.platform`` is ``ecs_fargate``:
    the serving image's batch mode over ``s3://<batch bucket>/batch/input/`` into
    ``batch/output/<job id>/``, started on demand (``aws batch submit-job``) or on ``schedule``."""

    cpu: Literal[256, 512, 1024, 2048, 4096, 8192, 16384] = 1024
    """CPU units of the job (1024 = 1 vCPU; AWS Batch takes them as VCPU 0.25..16)."""
    memory_mib: Annotated[int, Field(ge=512, le=122880)] = 2048
    """Memory of the job; Fargate accepts only certain sizes per ``cpu`` (a rule lists them)."""
    timeout_minutes: Annotated[int, Field(ge=aws_platform.BATCH_JOB_MIN_TIMEOUT_SECONDS // 60, le=10080)] = 360
    """Longest one attempt may run before AWS Batch stops it."""
    attempts: Annotated[int, _within(aws_platform.BATCH_JOB_ATTEMPTS)] = 2
    """Attempts per run: a failure of the infrastructure or of the S3 transfer is retried; a run whose files
    failed to score (exit 1) or whose model did not load (exit 2) is not."""
    max_concurrent_jobs: Annotated[int, Field(ge=1, le=100)] = 2
    """Runs at the same time (the compute environment's vCPU ceiling is this times the job's vCPUs)."""
    schedule: str | None = None
    """Also submit a run on this EventBridge Scheduler expression (``rate(N minutes|hours|days)`` or a
    6-field ``cron(...)``, UTC); unset: runs are submitted on demand only."""


class LambdaFunctionSpec(StrictModel):
    """The Lambda function of ``aws.platform: lambda``: the same image through the Lambda Web Adapter."""

    memory_mb: Annotated[int, _within(aws_platform.LAMBDA_MEMORY_MB)] = 2048
    """Memory (and with it CPU) of each execution environment."""
    timeout_seconds: Annotated[int, _within(aws_platform.LAMBDA_TIMEOUT_SECONDS)] = 60
    """Longest an invocation may run; at least ``serving.request_timeout_seconds``."""
    ephemeral_storage_mb: Annotated[int, _within(aws_platform.LAMBDA_EPHEMERAL_STORAGE_MB)] = 512
    """Size of /tmp, the only writable place (model caches)."""
    provisioned_concurrency: Annotated[int, Field(ge=1, le=10000)] | None = None
    """Pre-initialized execution environments (no cold start for that many concurrent requests)."""


class ApiFrontSpec(StrictModel):
    """An authenticated API Gateway (REST) in front of the environment's serving on AWS."""

    enabled: bool = False
    """Create the API: ``POST /invocations`` to the SageMaker endpoint, the Lambda function or (over a VPC
    link) the Fargate service's internal load balancer."""
    auth: Literal["iam", "iam_and_api_key"] = "iam"
    """IAM (SigV4, ``execute-api:Invoke``) on every call; ``iam_and_api_key`` also requires an API key."""
    throttle_rate_per_second: Annotated[int, Field(ge=1, le=10000)] = 100
    """Steady requests per second the stage (and the API key's usage plan) allows."""
    throttle_burst: Annotated[int, Field(ge=1, le=5000)] = 200
    """Burst the stage allows."""
    daily_quota: Annotated[int, Field(ge=1)] | None = None
    """With API keys: requests per day per key."""
    waf: bool = False
    """A WAF web ACL in front (AWS managed common and known-bad-inputs rules, a per-IP rate limit)."""
    domain_name: Annotated[str, Field(pattern=aws_platform.DOMAIN_NAME_PATTERN, max_length=253)] | None = None
    """A custom domain for the API (``api.example.com``) in ``hosted_zone_id``: a regional API Gateway
    domain with an ACM certificate validated by DNS in that zone, per region; with ``aws.regions``, Route 53
    failover records (primary first) with health checks on each region's readiness route (``GET /ping``)."""
    hosted_zone_id: Annotated[str, Field(pattern=aws_platform.HOSTED_ZONE_ID_PATTERN)] | None = None
    """The public Route 53 hosted zone of ``domain_name`` (in the environment's account)."""
    hosted_zone_name: Annotated[str, Field(pattern=aws_platform.DOMAIN_NAME_PATTERN, max_length=253)] | None = None
    """That zone's name (``example.com``); ``domain_name`` must be in it."""


class AwsSpec(StrictModel):
    """SageMaker settings of an environment."""

    account: Annotated[str, Field(pattern=r"^[0-9]{12}$")] | None = None
    """The account the stacks deploy to (default: the CLI's)."""
    region: Annotated[str, Field(pattern=aws_platform.AWS_REGION_PATTERN)] | None = None
    """The region the stacks deploy to (default: the CLI's; with ``regions``, its first)."""
    regions: list[Annotated[str, Field(pattern=aws_platform.AWS_REGION_PATTERN)]] | None = None
    """Disaster recovery: serve in each of these regions, the first the primary (``region``, if set, must
    be it). Each secondary region gets the environment's Serving stack of its own (stage
    ``<name>-<env>-<region>``: the same endpoint name, alarms, dashboard and key per region; the model
    registry, the ECR repository, the budget and the audit trail stay with the primary); with
    ``api.domain_name`` one name fails over between the regions' API fronts (Route 53)."""
    encryption: Literal["kms", "s3_managed"] = "kms"
    """Customer-managed KMS keys for artifacts, endpoint volumes, captured data, logs, the alarm topic and the
    ECR repository's images (repository ``twinserve/<name>-<env>-kms``), or S3-managed keys (and AES-256
    images in ``twinserve/<name>-<env>``)."""
    vpc: AwsVpcSpec | None = None
    """Run the containers in this VPC (not with serverless endpoints)."""
    private_network: bool | None = None
    """Run the SageMaker containers in a VPC twinserve creates (``network_cidr``): isolated subnets in two
    zones, no internet or NAT gateway, interface endpoints for the SageMaker API and runtime, ECR, CloudWatch
    Logs, STS and KMS, the S3 gateway endpoint, flow logs. Unset: on in prod, off elsewhere, always off on
    serverless endpoints (they cannot run in a VPC) and when ``vpc`` names your own. SageMaker platform only
    (Fargate has a VPC of its own; Lambda runs outside one). Changing it replaces the SageMaker model (a
    new endpoint config, rolled out like a new version)."""
    network_cidr: Annotated[str, Field(pattern=r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/(1[6-9]|2[01])$")] = "10.50.0.0/16"
    """Address range of the ``private_network`` VPC (/16../21: a /22 subnet per zone)."""
    network_isolation: bool | None = None
    """No network access at all for the container (SageMaker still provides the model and writes the
    captures and async outputs). Unset: on in prod (the image installs nothing at start: the model's
    requirements are baked in at build time), off elsewhere and always off on serverless endpoints,
    which do not support it. Changing it replaces the SageMaker model (a new endpoint config, rolled
    out like a new version)."""
    data_capture: DataCaptureSpec = DataCaptureSpec()
    """Capture requests and responses for monitoring."""
    container_startup_timeout_seconds: Annotated[int, _within(aws_platform.STARTUP_TIMEOUT_SECONDS)] = 600
    """How long SageMaker waits for the container's /ping after start."""
    platform: Literal["sagemaker", "ecs_fargate", "lambda"] = "sagemaker"
    """Where the image serves on AWS: a SageMaker endpoint, an ECS Fargate service behind an internal
    Application Load Balancer, or a Lambda function (the same image through the Lambda Web Adapter).
    README's feature table shows what each supports; a spec asking a platform for what it lacks is
    refused naming the feature."""
    fargate: FargateSpec = FargateSpec()
    """Settings of ``platform: ecs_fargate``."""
    lambda_function: LambdaFunctionSpec = LambdaFunctionSpec()
    """Settings of ``platform: lambda``."""
    batch_job: AwsBatchJobSpec | None = None
    """Settings of the AWS Batch job of ``serving.batch`` on ``platform: ecs_fargate`` (unset: the defaults);
    SageMaker runs batch as a transform job (``serving.batch``)."""
    api: ApiFrontSpec = ApiFrontSpec()
    """An authenticated API in front (off by default)."""
    audit_trail: bool | None = None
    """A CloudTrail trail for the environment (management events of all regions, S3 data events on the
    artifacts bucket, log file validation, the environment's key, kept a year). Unset: on in prod only;
    ``false`` where an organization trail already records the account."""

    @property
    def primary_region(self) -> str | None:
        """Where the Registry and the primary Serving stack deploy: ``regions[0]``, else ``region``."""
        return self.regions[0] if self.regions else self.region

    @property
    def secondary_regions(self) -> list[str]:
        """The disaster-recovery regions: ``regions`` after the first."""
        return list(self.regions[1:]) if self.regions else []


class AksGpuPoolSpec(StrictModel):
    """A GPU node pool in the AKS cluster, for environments with ``compute.gpu``. Its pods request
    GPUs through the Azure ML instance type ``gpuinstancetype``; the AzureML extension installs the
    NVIDIA device plugin."""

    vm_size: AzureVmSize = "Standard_NC4as_T4_v3"
    """GPU node size (a current NC T4/A100/H100 size)."""
    node_count: Annotated[int, Field(ge=1, le=100)] = 1
    """GPU nodes."""
    instance_cpu: Annotated[int, Field(ge=1, le=96)] = 2
    """CPU cores each inference pod requests (the node must have them, with room for the system pods)."""
    instance_memory_gib: Annotated[int, Field(ge=1, le=880)] = 8
    """Memory (GiB) each inference pod requests."""
    instance_gpus: Annotated[int, Field(ge=1, le=8)] = 1
    """GPUs each inference pod requests (at most the node size's GPU count)."""


class AksSpec(StrictModel):
    """The AKS inference cluster of the Kubernetes online endpoint."""

    node_count: Annotated[int, Field(ge=1, le=100)] = 3
    """Nodes of the cluster's pool (at least 3, and 12 vCPU in all)."""
    vm_size: AzureVmSize = "Standard_D4s_v3"
    """Node VM size."""
    vcpus_per_node: Annotated[int, Field(ge=1, le=416)] | None = None
    """Only needed for a vm_size whose core count twinserve cannot read from its name."""
    autoscale_min_nodes: Annotated[int, Field(ge=1, le=100)] | None = None
    """With ``autoscale_max_nodes``: let the cluster autoscaler add and remove nodes (at least 3)."""
    autoscale_max_nodes: Annotated[int, Field(ge=1, le=1000)] | None = None
    """With ``autoscale_min_nodes``: the cluster autoscaler's upper bound."""
    gpu_pool: AksGpuPoolSpec | None = None
    """A GPU node pool beside the system pool (needed by ``compute.gpu`` with a Kubernetes endpoint)."""
    api_server_authorized_ip_ranges: list[str] | None = None
    """IPv4 CIDR ranges that may reach the cluster's Kubernetes API server (kubectl, CI). Unset: open with a
    public network, only the cluster's own outbound IP (``0.0.0.0/32``) with a private one."""


class ApiManagementSpec(StrictModel):
    """An Azure API Management front on the managed online endpoint: callers send an APIM subscription key
    (``Ocp-Apim-Subscription-Key``), APIM calls the endpoint with its own managed identity (a Microsoft
    Entra token for ``https://ml.azure.com``), so no endpoint key is stored anywhere. Needs
    ``azure.auth_mode: aad_token`` and a public managed endpoint (docs/azure.md, "API Management front").

    Only the tiers that are created in minutes are offered: Consumption (serverless, billed per call) and
    the v2 tiers BasicV2 and StandardV2. The classic Developer, Basic, Standard and Premium tiers take
    30-45 minutes to create (and as long to change), too slow for an environment's ``pulumi up``."""

    enabled: bool = False
    """Create the API Management service, an API with ``POST /score`` forwarding to the managed online
    endpoint, and the role assignment that lets the service's identity score on the endpoint."""
    sku: Literal[tuple(azure_platform.APIM_SKUS)] = "Consumption"
    """Consumption (capacity 0: no units, pay per call), BasicV2 or StandardV2 (one unit)."""
    publisher_email: Email | None = None
    """Required with ``enabled``: the address API Management sends its system notifications to."""
    publisher_name: Annotated[str, Field(min_length=1, max_length=100)] = "twinserve"
    """The organization name shown in the developer portal and in notification e-mails."""
    subscription_required: bool = True
    """Callers must send an API Management subscription key (``Ocp-Apim-Subscription-Key``); twinserve
    creates a subscription scoped to the API. ``false``: the API is open to anyone who knows its URL."""
    rate_limit_calls_per_minute: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    """Calls one subscription may make per minute (APIM ``rate-limit``; 429 beyond it). Needs
    ``subscription_required``: the counter is per subscription key."""


class AzureSpec(StrictModel):
    """Azure ML settings of an environment. The location is Pulumi config (Pulumi.<env>.yaml)."""

    online_endpoints: Annotated[list[Literal["managed", "kubernetes"]], Field(min_length=1, max_length=2)] = [
        "managed",
        "kubernetes",
    ]
    """A managed online endpoint, a Kubernetes (AKS) online endpoint, or both, each with a deployment
    per variant."""
    auth_mode: Literal[tuple(azure_platform.AUTH_MODES)] = "key"
    """How clients authenticate: endpoint keys, Azure ML tokens, or Microsoft Entra tokens (managed
    endpoints only)."""
    public_network_access: bool | None = None
    """The one network switch. ``true``: the workspace, its storage, key vault and registry and the managed
    endpoint answer on public addresses. ``false``: all of them refuse public traffic and are reached
    through private endpoints in a virtual network twinserve creates (private DNS zones linked to it), the
    managed endpoint's ``publicNetworkAccess`` is Disabled, the registry is Premium and the AKS API server
    is restricted. Unset: the environment decides - private in prod, public elsewhere (docs/azure.md,
    "Private networking")."""
    managed_network: Literal["disabled", "allow_internet_outbound", "allow_only_approved_outbound"] | None = None
    """Workspace managed virtual network isolation (the outbound side). Unset: allow_only_approved_outbound
    when the network is private, disabled otherwise. Once on it cannot be switched off, and
    allow_only_approved_outbound cannot go back to allow_internet_outbound."""
    network_address_space: str = "10.60.0.0/22"
    """With a private network: the IPv4 range of the virtual network twinserve creates (at most /23: its
    first /24 holds the private endpoints, the second the AKS nodes). Choose one that does not overlap the
    networks you peer it with."""
    aks: AksSpec = AksSpec()
    """The AKS inference cluster (with a Kubernetes endpoint)."""
    batch_vm_size: AzureVmSize = "Standard_DS3_v2"
    """Node size of the batch endpoint's compute cluster."""
    batch_max_nodes: Annotated[int, Field(ge=1, le=100)] = 2
    """Largest size of the batch compute cluster (it scales to zero when idle)."""
    api_management: ApiManagementSpec = ApiManagementSpec()
    """An authenticated API Management front on the managed online endpoint (off by default)."""
    locations: list[str] | None = None
    """Disaster recovery: the locations that serve this environment, the primary first. The primary must be
    the stack's ``azure-native:location`` (Pulumi.<env>.yaml) and keeps everything it has today; each other
    location gets its own resource group, workspace (storage, key vault, registry, Log Analytics), model and
    ML environment, and managed online endpoint with the same deployments, and an Azure Front Door (Standard)
    in front of all of them sends traffic to the primary first (priority routing). The Kubernetes endpoint,
    the batch endpoint, API Management and drift monitoring stay in the primary. Needs a managed endpoint,
    aad_token auth and a public network (docs/azure.md, "Disaster recovery (second location)"). Unset: the
    stack's location alone, no front."""


# --------------------------------------------------------------------------- promotion pipeline

_CONNECTION_ARN = (
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}"
    r":connection/[0-9a-f-]{36}$"
)
_REPOSITORY = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
PATTERN_HINTS[_CONNECTION_ARN] = (
    "must be a CodeConnections (or CodeStar Connections) connection ARN, "
    "arn:aws:codeconnections:<region>:<account>:connection/<uuid>"
)
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


_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_SECRET_ARN = r"^arn:aws[a-z-]*:secretsmanager:[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$"
PATTERN_HINTS[_UUID] = "must be a GUID such as 00000000-0000-0000-0000-000000000000 (lower case)"
PATTERN_HINTS[_SECRET_ARN] = (
    "must be a Secrets Manager secret ARN, arn:aws:secretsmanager:<region>:<account>:secret:<name>"
)


class PipelineAzureSpec(StrictModel):
    """How the pipeline signs in to Azure to run the Pulumi program of each Azure environment. No secret
    is written here: identifiers only (docs/azure.md, "Promotion pipeline: Azure sign-in")."""

    tenant_id: Annotated[str, Field(pattern=_UUID)]
    """The Microsoft Entra tenant of the subscriptions."""
    client_id: Annotated[str, Field(pattern=_UUID)]
    """The application (client) id of the Entra app registration or user-assigned managed identity the
    pipeline acts as (Contributor and User Access Administrator on the environments' subscriptions)."""
    sign_in: Literal["federated", "client_secret"] = "federated"
    """``federated`` (keyless): the Azure step's role gets a signed token from AWS STS
    (GetWebIdentityToken, outbound identity federation) that a federated credential of the app trusts;
    ``client_secret``: the app's secret, read from ``client_secret_arn`` at run time."""
    client_secret_arn: Annotated[str, Field(pattern=_SECRET_ARN)] | None = None
    """With ``sign_in: client_secret`` only: the Secrets Manager secret holding the client secret."""


class PipelineSpec(StrictModel):
    """A CodePipeline that synthesizes this spec and promotes its environments dev -> staging -> prod on
    both clouds: each stage deploys AWS (CDK) then Azure (the Pulumi program), with one manual approval
    before prod for both.

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
    model_source: Literal["spec", "registry"] = "spec"
    """``spec``: deploy ``model.version`` from ``model.artifact`` as written. ``registry``: each execution
    deploys the newest Approved version of the pipeline's model package group (named like the
    deployment), to every environment of both clouds; approving a version starts the pipeline. Until
    a version is approved the spec's model is deployed."""
    azure: PipelineAzureSpec | None = None
    """Azure sign-in of the pipeline; required when an environment targets Azure."""


# --------------------------------------------------------------------------- drift monitoring


class DriftCheckSpec(StrictModel):
    """One statistic and its threshold (a feature drifts when its statistic crosses the threshold)."""

    statistic: str
    """psi or jensen_shannon for numeric features; linf or chi_squared for categorical ones."""
    threshold: float
    """psi: > 0 (0.1 moderate, 0.25 significant); jensen_shannon and linf: 0-1; chi_squared: the p-value
    below which a feature drifts, 0-0.5."""


class RetrainAwsSpec(StrictModel):
    """What an EventBridge rule starts on AWS when the drift alarm fires."""

    kind: Literal["sagemaker_pipeline", "codepipeline", "codebuild"]
    """The kind of target."""
    arn: str
    """Its ARN (a SageMaker pipeline, a CodePipeline pipeline or a CodeBuild project) in the environment's account."""


class RetrainAzureSpec(StrictModel):
    """What the drift alert's action group calls on Azure."""

    webhook_secret_name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9-]{1,127}$")]
    """The Pulumi config secret (``twinserve:<name>``) holding the webhook URL that starts retraining (a
    Logic App, an Azure Function, a GitHub or Azure DevOps dispatch): URLs carry keys, so never in the spec."""


class RetrainSpec(StrictModel):
    """The retraining target per cloud (``on_drift: notify_and_retrain``)."""

    aws: RetrainAwsSpec | None = None
    """Needed when the environment targets AWS."""
    azure: RetrainAzureSpec | None = None
    """Needed when the environment targets Azure."""


class MonitoringSpec(StrictModel):
    """Drift monitoring: captured requests compared with a baseline, by the common image, on both clouds."""

    reference_dataset: str
    """The training (or a reference) dataset the baseline is computed from at synth time: a CSV file with
    a header, JSON Lines or .npy, relative to the spec file."""
    features: list[str] | None = None
    """The features watched (default: every column of the reference dataset)."""
    categorical_features: list[str] = []
    """Features compared as categories (the others are numeric)."""
    numeric: DriftCheckSpec = DriftCheckSpec(statistic="psi", threshold=0.2)
    """Statistic and threshold of numeric features."""
    categorical: DriftCheckSpec = DriftCheckSpec(statistic="linf", threshold=0.1)
    """Statistic and threshold of categorical features."""
    schedule: str = "rate(1 day)"
    """How often the check runs: ``rate(N hours|days)`` or a 6-field ``cron(...)`` (UTC), at most hourly."""
    sampling_percent: Annotated[int, Field(ge=1, le=100)] = 20
    """Percent of requests captured on both clouds (SageMaker data capture, Azure ML data collection)."""
    min_rows: Annotated[int, Field(ge=1)] = 100
    """Fewer captured rows than this: the check reports insufficient data, not drift."""
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    """Captured data and drift reports are kept this long."""
    on_drift: Literal["notify", "notify_and_retrain"] = "notify"
    """The alarm notifies the environment's alarm e-mails; ``notify_and_retrain`` also starts ``retrain``."""
    retrain: RetrainSpec | None = None
    """The retraining targets (with ``notify_and_retrain``)."""


# --------------------------------------------------------------------------- environments


class EnvironmentSpec(StrictModel):
    """One environment after ``defaults`` and its own overrides are merged."""

    targets: Annotated[list[Target], Field(min_length=1, max_length=2)] = ["aws", "azure"]
    """The clouds this environment is deployed to."""
    compute: ComputeSpec = ComputeSpec()
    """Instance sizes and counts."""
    serving: ServingSpec = ServingSpec()
    """Endpoint type, variants, shadow, batch and request limits."""
    rollout: RolloutSpec = RolloutSpec()
    """How a new model version or image reaches traffic."""
    scaling: ScalingSpec = ScalingSpec()
    """Autoscaling of the live variants."""
    alarms: AlarmSpec = AlarmSpec()
    """Alarms, alerts and who is told."""
    budget: BudgetSpec | None = None
    """A monthly cost ceiling (none by default)."""
    monitoring: MonitoringSpec | None = None
    """Drift monitoring of the captured requests (none by default)."""
    aws: AwsSpec = AwsSpec()
    """SageMaker-only settings."""
    azure: AzureSpec = AzureSpec()
    """Azure ML-only settings."""

    def instance_count_of(self, variant: VariantSpec | ShadowSpec) -> int:
        """A variant's (or the shadow's) own instance count, else ``compute.instance_count``."""
        return variant.instance_count or self.compute.instance_count


class DeploymentSpec(StrictModel):
    """The whole file, with every environment already merged and checked."""

    name: Name
    """Deployment name: prefixes stage, stack and resource names on both clouds."""
    model: ModelSpec
    """The trained model that is served."""
    container: ContainerSpec
    """The one inference image both clouds run."""
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
