"""AWS facts: SageMaker hosting and deployment guardrails, Application Auto Scaling, AWS Budgets.

Sources: SageMaker API reference (CreateEndpointConfig, ProductionVariant, ServerlessConfig,
DeploymentConfig), the deployment guardrails guide, and the AWS Budgets quotas page; each block
names its page. What a stack update replaces comes from the CloudFormation resource provider
schemas bundled with cfn-lint (read as data, cfn-lint is not imported).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path

# --------------------------------------------------------------------------- names and instance types

NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
"""SageMaker resource names (endpoints, endpoint configs, variants, models, transform jobs)."""
NAME_HINT = "use 1-63 letters, digits and '-' (not first or last)"
INSTANCE_TYPE_PATTERN = r"ml\.[a-z0-9]+\.[a-z0-9]+"
INSTANCE_TYPE_HINT = "use a SageMaker instance type such as 'ml.m5.large'"


def is_burstable(instance_type: str) -> bool:
    """Burstable ``ml.t*`` instances: SageMaker refuses to autoscale them
    (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-prerequisites.html)."""
    return instance_type.startswith("ml.t")


# Families whose volume is local NVMe instance storage (hardware-encrypted): SageMaker refuses a volume
# KMS key for them, on endpoint configs (KmsKeyId) and transform jobs (VolumeKmsKeyId) alike.
_INSTANCE_STORAGE_FAMILIES = {"g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "inf2", "trn1"}


def has_instance_storage(instance_type: str) -> bool:
    family = instance_family(instance_type)
    return family.endswith("d") or family.endswith("dn") or family in _INSTANCE_STORAGE_FAMILIES


_SIZE = re.compile(r"^(?:(\d+)?xlarge|large|medium|small)$")


def vcpus_of(instance_type: str) -> int:
    """vCPUs of an ml.* instance from its size (large = 2, xlarge = 4, Nxlarge = 4N, medium = 2).

    True for the general purpose, compute and memory optimised families SageMaker hosts on; used to
    normalise CPUUtilization, which CloudWatch reports summed over all cores (0..100 x vCPUs)."""
    size = instance_type.rsplit(".", 1)[-1]
    match = _SIZE.match(size)
    if not match:
        raise ValueError(f"instance_type: {instance_type!r} has a size twinserve cannot read; use e.g. 'ml.m5.large'")
    if size in ("large", "medium", "small"):
        return 2 if size != "small" else 1
    return 4 * int(match.group(1) or 1)


# --------------------------------------------------------------------------- GPU hosts

# NVIDIA GPU families SageMaker hosts on that run a CUDA 12 image (twinserve's GPU images: onnxruntime-gpu
# 1.26, torch +cu126) with GPU_INFERENCE_AMI_VERSION. Inferentia/Trainium (inf*, trn*) and AMD (g4ad) are
# not CUDA; p3 (V100) is left out: PyTorch's CUDA 12.6+ builds no longer target it.
CUDA_INSTANCE_FAMILIES = ("g4dn", "g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en")
ACCELERATOR_INSTANCE_FAMILIES = ("g4ad", "inf1", "inf2", "trn1", "trn2", "p2", "p3", "p3dn", *CUDA_INSTANCE_FAMILIES)
"""Every family with an accelerator: a CPU image on one of them pays for hardware it never uses."""
GPU_INFERENCE_AMI_VERSION = "al2-ami-sagemaker-inference-gpu-3-1"
"""ProductionVariant.InferenceAmiVersion for CUDA 12 images: NVIDIA driver 550, CUDA 12.4. The hosts'
default drivers are 470 (CUDA 11.4) on g4dn/g5/p4d, which cannot run a CUDA 12 image
(https://docs.aws.amazon.com/sagemaker/latest/dg/inference-gpu-drivers.html;
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariant.html)."""
INFERENCE_AMI_VERSIONS = (
    "al2-ami-sagemaker-inference-gpu-2",
    "al2-ami-sagemaker-inference-gpu-2-1",
    "al2-ami-sagemaker-inference-gpu-3-1",
    "al2-ami-sagemaker-inference-neuron-2",
)
"""ProductionVariantInferenceAmiVersion's values (GPU ones for NVIDIA families, neuron for inf2/trn1)."""


def instance_family(instance_type: str) -> str:
    return instance_type.split(".")[1] if instance_type.count(".") == 2 else ""


def is_cuda_instance(instance_type: str) -> bool:
    return instance_family(instance_type) in CUDA_INSTANCE_FAMILIES


def has_accelerator(instance_type: str) -> bool:
    return instance_family(instance_type) in ACCELERATOR_INSTANCE_FAMILIES


# --------------------------------------------------------------------------- endpoints (CreateEndpointConfig)

MAX_VARIANTS = 10
"""Production variants per endpoint config."""
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200
"""ServerlessConfig.MaxConcurrency and ProvisionedConcurrency are 1..200."""
STARTUP_TIMEOUT_SECONDS = (60, 3600)
"""ContainerStartupHealthCheckTimeoutInSeconds and ModelDataDownloadTimeoutInSeconds."""
DEFAULT_STARTUP_ALLOWANCE_SECONDS = 600
"""twinserve's allowance for a new instance to pass its health check when a variant sets no start-up
timeout (SageMaker documents only "a few minutes")."""
DEFAULT_STARTUP_ALLOWANCE_SECONDS = 600
"""twinserve's allowance for a new instance to pass its health check when a variant sets no start-up
timeout (SageMaker documents only "a few minutes")."""
INVOCATION_TIMEOUT_SECONDS = 60
"""Real-time and serverless invocations must be answered within 60 s; async requests may take up to an hour."""
ASYNC_MAX_CONCURRENT_INVOCATIONS = 1000
"""AsyncInferenceClientConfig.MaxConcurrentInvocationsPerInstance is 1..1000."""
MAX_ENVIRONMENT_VARIABLES = 100
"""ContainerDefinition.Environment holds at most 100 entries."""
ENVIRONMENT_VARIABLE_PATTERN = r"[a-zA-Z_][a-zA-Z0-9_]{0,1023}"
MAX_VPC_SUBNETS = 16
MAX_VPC_SECURITY_GROUPS = 5

# --------------------------------------------------------------------------- deployment guardrails
# https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails.html and the API reference pages
# BlueGreenUpdatePolicy, RollingUpdatePolicy, TrafficRoutingConfig and CapacitySize.

ROLLOUT_STRATEGIES = ("all_at_once", "canary", "linear", "rolling")
MIN_INSTANCES_FOR_ROLLOUT = {"all_at_once": 1, "canary": 3, "linear": 3, "rolling": 2}
"""twinserve's rule: with fewer than three instances a canary or linear step is the whole fleet (AWS's
own project templates require three), and a rolling update needs a second instance to roll onto."""
ROLLOUT_STEP_PERCENT = {"canary": (1, 50), "linear": (10, 50), "rolling": (5, 50)}
"""CanarySize at most 50 %, LinearStepSize 10-50 %, RollingUpdatePolicy.MaximumBatchSize 5-50 % of
the variant's instances."""
ROLLOUT_WAIT_SECONDS = (0, 3600)
"""WaitIntervalInSeconds (bake time after each step)."""
TERMINATION_WAIT_SECONDS = (0, 3600)
MAX_EXECUTION_TIMEOUT_SECONDS = (600, 28800)
"""MaximumExecutionTimeoutInSeconds of both policies; it must exceed the update's total waiting time."""
MAX_ROLLBACK_ALARMS = 10
"""AutoRollbackConfig.Alarms holds at most 10 alarms."""


def rollout_steps(strategy: str, step_percent: int) -> int:
    """Traffic steps (blue/green) or batches (rolling) of an update, each followed by a bake:
    all at once 1; canary 2 (the canary, then the rest); linear and rolling one per step."""
    if strategy == "all_at_once":
        return 1
    if strategy == "canary":
        return 2
    return -(-100 // step_percent)


def rollout_seconds(
    strategy: str, step_percent: int, wait_seconds: int, termination_wait_seconds: int, provisioning_seconds: int
) -> int:
    """The longest a guarded update may run: every bake, the old fleet's termination wait (blue/green),
    and provisioning of the new instances (once for blue/green, per batch for rolling), which twinserve
    bounds by the container's start-up health-check timeout."""
    steps = rollout_steps(strategy, step_percent)
    if strategy == "rolling":
        return steps * (wait_seconds + provisioning_seconds)
    return steps * wait_seconds + termination_wait_seconds + provisioning_seconds


# --------------------------------------------------------------------------- Application Auto Scaling
# https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling.html and the Application Auto
# Scaling service-linked role page (application-auto-scaling-service-linked-roles).

SCALABLE_DIMENSION_INSTANCES = "sagemaker:variant:DesiredInstanceCount"
SCALABLE_DIMENSION_PROVISIONED_CONCURRENCY = "sagemaker:variant:DesiredProvisionedConcurrency"
"""Serverless variants scale their provisioned concurrency."""
AUTOSCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
"""The service principal of Application Auto Scaling for SageMaker (``iam:AWSServiceName``)."""
AUTOSCALING_SERVICE_LINKED_ROLE = (
    f"aws-service-role/{AUTOSCALING_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)
"""Path and name of the role Application Auto Scaling creates at the first RegisterScalableTarget."""

# --------------------------------------------------------------------------- batch transform

BATCH_PAYLOAD_BUDGET_MB = 100
"""MaxConcurrentTransforms x MaxPayloadInMB must not exceed 100 MB."""
BATCH_MAX_PAYLOAD_MB = 100

# --------------------------------------------------------------------------- AWS Budgets (quotas page)

BUDGET_MAX_NOTIFICATIONS = 5
"""Notifications per budget."""
BUDGET_MAX_SUBSCRIBERS = 10
"""E-mail subscribers per notification."""

# --------------------------------------------------------------------------- stack updates (`twinserve plan`)
# What CloudFormation and SageMaker do with a changed template. Replacement is read from the
# CloudFormation resource provider schemas (``createOnlyProperties``) that cfn-lint ships, never copied.

CFN_SCHEMA_REGION = "us-east-1"
"""The region whose provider schemas are read (cfn-lint bundles one pointer file per region)."""
CFN_SCHEMA_SOURCE = "https://github.com/aws-cloudformation/resource-provider-enhanced-schemas"
"""Where cfn-lint's bundled schemas come from (the CloudFormation registry schemas)."""


@dataclass(frozen=True)
class CfnResourceSchema:
    """What a CloudFormation resource provider schema says about updates of one resource type."""

    type_name: str
    """e.g. ``AWS::SageMaker::EndpointConfig``."""
    create_only: tuple[tuple[str, ...], ...]
    """``createOnlyProperties`` as paths below ``Properties`` (``*`` stands for any list item): a
    change of one of them replaces the resource."""

    @property
    def name_properties(self) -> tuple[tuple[str, ...], ...]:
        """Create-only properties that name the resource (``AlarmName``, ``Budget.BudgetName``, ``Name``):
        set in a template, they make it a custom-named resource."""
        return tuple(p for p in self.create_only if p and p[-1].endswith("Name"))


def _cfn_schema_folder() -> Path:
    """cfn-lint's bundled schema data, located without importing cfn-lint (it is a dev dependency)."""
    found = find_spec("cfnlint")
    if found is None or found.origin is None:
        raise ModuleNotFoundError(
            "twinserve plan reads CloudFormation's resource schemas from cfn-lint: pip install 'twinserve[dev]'",
            name="cfnlint",
        )
    return Path(found.origin).parent / "data" / "schemas"


@cache
def _cfn_schema_pointers() -> dict[str, str]:
    folder = _cfn_schema_folder()
    return json.loads((folder / "providers" / f"{CFN_SCHEMA_REGION}.json").read_text())


@cache
def cfn_resource_schema(type_name: str) -> CfnResourceSchema | None:
    """The update facts of ``type_name``, or None when CloudFormation publishes no schema for it
    (custom resources, ``AWS::CDK::Metadata``)."""
    digest = _cfn_schema_pointers().get(type_name)
    if digest is None:
        return None
    schema = json.loads((_cfn_schema_folder() / "resources" / f"{digest}.json").read_text())
    paths = []
    for pointer in schema.get("createOnlyProperties", []):
        parts = tuple(pointer.split("/")[2:])  # "/properties/A/B" -> ("A", "B")
        if parts:
            paths.append(parts)
    return CfnResourceSchema(type_name, tuple(paths))


CFN_RETAIN = "Retain"
"""``DeletionPolicy`` / ``UpdateReplacePolicy`` value that keeps the physical resource when
CloudFormation deletes or replaces it."""
CFN_RETAIN_SOURCE = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-updatereplacepolicy.html"
)
CFN_CUSTOM_NAME_SOURCE = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-name.html"
)
""""If you specify a name, you can't perform updates that require replacement of this resource.\""""
RETAINED_NAME_SOURCE = "https://repost.aws/knowledge-center/cdk-already-exists-error"
"""A retained resource with a fixed name blocks creating it again (``AlreadyExists``)."""

SCALABLE_VARIANT = re.compile(r"^endpoint/(?P<endpoint>[^/]+)/variant/(?P<variant>[^/]+)$")
"""Application Auto Scaling ``ResourceId`` of a SageMaker production variant."""
AUTOSCALED_UPDATE_SOURCE = "https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling.html"
"""UpdateEndpoint fails when it changes the instance type of, or removes, a variant that is a scalable
target (a model-only change is the exception); deregister it around the update."""
GUARDED_UPDATE_POLICIES = {"BlueGreenUpdatePolicy": "blue/green", "RollingUpdatePolicy": "rolling"}
"""``DeploymentConfig`` members that make an endpoint update a guarded (deployment guardrails) update."""
GUARDRAIL_VARIANT_NAME_SOURCE = "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html"
""""When doing a blue/green or rolling deployment, your new endpoint configuration must have the same
variant name as the old endpoint configuration.\""""
RETAIN_VARIANT_PROPERTIES_SOURCE = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpoint.html"
"""Without ``RetainAllVariantProperties`` an update sets each variant's instance count to the new
config's ``InitialInstanceCount``, whatever autoscaling had chosen."""

# --------------------------------------------------------------------------- outbound identity federation

WEB_IDENTITY_TOKEN_SECONDS = (60, 3600)
"""GetWebIdentityToken's DurationSeconds: a signed JWT for an external service lives 1 minute .. 1 hour; the
API is served by regional STS endpoints only
(https://docs.aws.amazon.com/STS/latest/APIReference/API_GetWebIdentityToken.html)."""
WEB_IDENTITY_TOKEN_CONDITIONS = ("sts:IdentityTokenAudience", "sts:DurationSeconds")
"""Condition keys that bound which tokens a principal may mint
(https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_outbound_policies.html)."""


RETRAIN_TARGET_ARNS = {
    "sagemaker_pipeline": r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:pipeline/[a-zA-Z0-9-]{1,256}",
    "codepipeline": r"arn:aws[a-z-]*:codepipeline:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9.@_-]{1,100}",
    "codebuild": r"arn:aws[a-z-]*:codebuild:[a-z0-9-]+:[0-9]{12}:project/[A-Za-z0-9][A-Za-z0-9_-]{1,254}",
}
"""The ARNs of the EventBridge targets a drift alarm can start (retraining): SageMaker pipelines,
CodePipeline pipelines, CodeBuild projects (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html)."""

DRIFT_METRIC_NAMESPACE = "twinserve/Drift"
"""CloudWatch namespace of the drift check's metrics (DriftedFeatures, MaxDriftScore, CapturedRows per Endpoint)."""


# --------------------------------------------------------------------------- serving without SageMaker

SERVING_PLATFORMS = ("sagemaker", "ecs_fargate", "lambda")
"""Where an environment's AWS side serves the image (``aws.platform``)."""
FARGATE_MEMORY_MIB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}
"""Fargate task CPU units -> the memory sizes (MiB) Fargate accepts with them (Linux tasks,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#task_size).
AWS Batch jobs on Fargate take the same pairs as ``VCPU`` (units / 1024) and ``MEMORY``
(https://docs.aws.amazon.com/batch/latest/APIReference/API_ResourceRequirement.html)."""
BATCH_JOB_ATTEMPTS = (1, 10)
"""AWS Batch retry strategy: attempts per job (https://docs.aws.amazon.com/batch/latest/APIReference/API_RetryStrategy.html)."""
BATCH_JOB_MIN_TIMEOUT_SECONDS = 60
"""AWS Batch job timeout (``attemptDurationSeconds``) is at least 60 s
(https://docs.aws.amazon.com/batch/latest/APIReference/API_JobTimeout.html)."""
BATCH_FARGATE_VPC_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "s3")
"""What an AWS Batch job on Fargate in subnets without a NAT route needs to start and log: ECR (api,
dkr) and S3 (image layers, and here the job's data) and CloudWatch Logs; Fargate jobs do not need the
ECS endpoints (https://docs.aws.amazon.com/batch/latest/userguide/vpc-endpoint-considerations.html)."""
LAMBDA_MEMORY_MB = (128, 10240)
"""Lambda function memory, MB (CPU grows with it: 1 vCPU at 1,769 MB, 6 vCPU at 10,240 MB)."""
LAMBDA_TIMEOUT_SECONDS = (1, 900)
"""Lambda function timeout (15 minutes at most)."""
LAMBDA_EPHEMERAL_STORAGE_MB = (512, 10240)
"""Lambda /tmp size, MB."""
LAMBDA_PAYLOAD_MB = 6
"""Largest synchronous request and response payload of a Lambda invocation (6 MB)."""
LAMBDA_INIT_SECONDS = 10
"""Lambda's init phase limit for on-demand environments: the model must load within it (or asynchronously)."""
LAMBDA_IMAGE_GB = 10
"""Largest container image a Lambda function runs (uncompressed)."""
ALB_IDLE_TIMEOUT_SECONDS = (1, 4000)
"""Application Load Balancer idle timeout: the longest a request may run before the ALB closes it."""
ECS_LINEAR_STEP_PERCENT = (3, 100)
"""ECS native linear deployments: percent of traffic per step (canaries: 0.1..100)."""
API_GATEWAY_TIMEOUT_SECONDS = 29
"""API Gateway's default integration timeout (REST APIs): the backend's answer must come within it."""

AWS_REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-[0-9]$"
"""An AWS region name (``us-east-1``, ``ap-southeast-2``, ``us-gov-west-1``)."""
MAX_REGIONS = 3
"""Regions an environment may serve in (``aws.regions``): a primary and up to two for disaster recovery."""
HOSTED_ZONE_ID_PATTERN = r"^Z[A-Z0-9]{1,31}$"
"""A Route 53 hosted zone id."""
DOMAIN_NAME_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
"""A lower-case DNS name (an API's custom domain, a hosted zone's name; at most 253 characters)."""
ROUTE53_HEALTH_CHECK_INTERVAL_SECONDS = 30
"""Route 53 health checks every 30 s (10 s costs more); 3 failures in a row mark a region unhealthy."""
ROUTE53_HEALTH_CHECK_FAILURE_THRESHOLD = 3
"""Consecutive failed checks before Route 53 fails over."""

SAGEMAKER_SERVING_STATUSES = ("InService", "Updating", "SystemUpdating", "RollingBack")
"""Endpoint statuses in which a SageMaker endpoint answers InvokeEndpoint (during an update or rollback the
old fleet keeps serving): the API front's readiness route (``GET /ping``) answers 200 in these, 503 otherwise.
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html#sagemaker-DescribeEndpoint-response-EndpointStatus"""
