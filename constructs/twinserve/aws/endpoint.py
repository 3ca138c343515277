"""A SageMaker endpoint: endpoint config + endpoint, for every inference mode.

* real time on instances, one variant or several weighted ones (A/B testing, up to 10);
* a shadow variant that receives a sampled copy of live traffic (answers discarded);
* serverless (memory, max concurrency, provisioned concurrency);
* asynchronous (requests and results in S3, success/error SNS topics);
* data capture to S3 for Model Monitor; customer-managed KMS key for volumes, captured data and
  async results; the container start-up health-check timeout;
* the rollout (deployment guardrails) of :mod:`.deployment_config`. Its rollback alarms are handed
  over with :meth:`SageMakerEndpoint.add_rollback_alarms` (e.g. by the stack, from
  :class:`~.endpoint_alarms.EndpointAlarms`); the ``DeploymentConfig`` is rendered when the template
  is written, so alarms added after construction are in it.

``metric_*()`` give CloudWatch metrics of a variant, ``grant_invoke()`` lets a principal call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns

from constructs import Construct

from ..platform import aws as aws_platform
from ..platform.shared import INSTANCE_COUNT
from ._grants import grant_key_use, grant_objects, role_policy
from ._lazy import Deferred
from ._nag import UNENCRYPTED_TOPIC_REASON, ack_prefix, acknowledge, acknowledge_checkov
from ._validate import checks
from .deployment_config import RolloutProps, check_rollout, render_deployment_config
from .sagemaker_model import SageMakerModel


@dataclass(frozen=True)
class InstanceVariant:
    """A production (or shadow) variant on dedicated instances."""

    name: str
    """Variant name; keep it stable across updates (guarded rollouts require it)."""
    model: SageMakerModel
    """The model (image + model version) the variant serves."""
    instance_type: str = "ml.m5.large"
    """SageMaker instance type."""
    instance_count: int = 1
    """Initial instance count (1..100); autoscaling may change it later."""
    weight: float = 1.0
    """Relative share of live traffic (>= 0); for a shadow, its sampling ratio to the live variant (0..1]."""
    container_startup_timeout_seconds: int | None = None
    """How long SageMaker waits for ``GET /ping`` to answer after start-up (60..3600)."""
    model_data_download_timeout_seconds: int | None = None
    """How long SageMaker may take to download the model archive (60..3600)."""
    inference_ami_version: str | None = None
    """The host image (GPU driver) of an accelerated instance, e.g. ``al2-ami-sagemaker-inference-gpu-3-1``
    (driver 550, CUDA 12.4), which a CUDA 12 container needs; None: the family's default driver."""


@dataclass(frozen=True)
class ServerlessVariant:
    """A serverless variant: SageMaker provisions compute per request."""

    name: str
    """Variant name; keep it stable across updates."""
    model: SageMakerModel
    """The model (image + model version) the variant serves."""
    memory_mb: int = 2048
    """One of 1024, 2048, 3072, 4096, 5120, 6144."""
    max_concurrency: int = 5
    """Concurrent invocations (1..200)."""
    provisioned_concurrency: int | None = None
    """Pre-warmed concurrency (1..max_concurrency); ``None`` for none."""
    weight: float = 1.0
    """Relative share of live traffic (> 0)."""


@dataclass(frozen=True)
class DataCaptureProps:
    """Capture requests and responses to S3 for Model Monitor."""

    bucket: s3.IBucket
    """Where the capture files go; the serving roles may write under ``prefix`` only."""
    prefix: str = "data-capture"
    """The capture folder of ``bucket``."""
    sampling_percent: int = 20
    """Percent of requests captured (1..100)."""
    capture_input: bool = True
    """Capture the requests."""
    capture_output: bool = True
    """Capture the responses."""


@dataclass(frozen=True)
class AsyncInferenceProps:
    """Asynchronous inference: requests under ``<prefix>/input/``, results under ``<prefix>/output/``,
    failures under ``<prefix>/failures/`` of ``bucket``; SNS topics report success and errors."""

    bucket: s3.IBucket
    """Holds the requests, results and failures; the serving roles may use those folders only."""
    prefix: str = "async"
    """The async folder of ``bucket``."""
    max_concurrent_invocations_per_instance: int = 4
    """Requests SageMaker sends to one instance at a time (1..1000)."""
    notifications: bool = True
    """Create success and error SNS topics (encrypted with the endpoint's key, TLS only)."""


@dataclass(frozen=True)
class SageMakerEndpointProps:
    """Props of :class:`SageMakerEndpoint`."""

    endpoint_name: str
    """Explicit, stable endpoint name: clients, alarms and autoscaling refer to it."""
    variants: Sequence[InstanceVariant | ServerlessVariant]
    """Live variants: 1..10 instance variants, or exactly one serverless variant."""
    shadow: InstanceVariant | None = None
    """A shadow variant (needs exactly one live instance variant)."""
    async_inference: AsyncInferenceProps | None = None
    """Make the endpoint asynchronous (requests and results in S3)."""
    data_capture: DataCaptureProps | None = None
    """Capture requests and responses to S3."""
    encryption_key: kms.IKey | None = None
    """Encrypts instance volumes (where allowed), captured data, async results and topics."""
    rollout: RolloutProps | None = None
    """Deployment guardrails; ``None`` leaves CloudFormation's default update (blue/green, all at once)."""


class SageMakerEndpoint(Construct):
    """``AWS::SageMaker::EndpointConfig`` + ``AWS::SageMaker::Endpoint`` with metric and grant helpers."""

    def __init__(self, scope: Construct, id: str, props: SageMakerEndpointProps) -> None:
        super().__init__(scope, id)
        _check(props)
        self.endpoint_name = props.endpoint_name
        self.variants = list(props.variants)
        self.shadow = props.shadow
        self.serverless = isinstance(self.variants[0], ServerlessVariant)
        self.is_async = props.async_inference is not None
        self.encryption_key = props.encryption_key
        self._rollout = props.rollout
        self._rollback_alarms: list[cloudwatch.IAlarm] = []
        self._roles = _unique_roles([v.model for v in self.variants] + ([props.shadow.model] if props.shadow else []))

        key = props.encryption_key
        volume_key = (
            key
            if key is not None
            and not self.serverless
            and not any(aws_platform.has_instance_storage(v.instance_type) for v in self._instance_variants())
            else None
        )
        self.success_topic: sns.Topic | None = None
        self.error_topic: sns.Topic | None = None
        self.config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[self._render_variant(v) for v in self.variants],
            shadow_production_variants=[self._render_variant(props.shadow)] if props.shadow else None,
            kms_key_id=volume_key.key_arn if volume_key else None,
            data_capture_config=self._data_capture(props.data_capture),
            async_inference_config=self._async_inference(props.async_inference),
        )
        self.resource = sagemaker.CfnEndpoint(
            self,
            "Resource",
            endpoint_name=props.endpoint_name,
            endpoint_config_name=self.config.attr_endpoint_config_name,
            deployment_config=None
            if self._rollout is None or not self._rollout.guarded
            else Deferred(
                self._render_deployment_config, f"{self.node.path}: DeploymentConfig with the rollback alarms"
            ),
        )
        # Grants (image pull, data read, key use) must be in place before SageMaker starts containers.
        for role in self._roles:
            policy = role_policy(role)
            if policy is not None:
                self.resource.node.add_dependency(policy)
        self.endpoint_arn = self.resource.ref

    # ------------------------------------------------------------------ rendering

    def _instance_variants(self) -> list[InstanceVariant]:
        all_variants = self.variants + ([self.shadow] if self.shadow else [])
        return [v for v in all_variants if isinstance(v, InstanceVariant)]

    def _render_variant(
        self, v: InstanceVariant | ServerlessVariant
    ) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
        if isinstance(v, ServerlessVariant):
            return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=v.name,
                model_name=v.model.model_name,
                initial_variant_weight=v.weight,
                serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                    memory_size_in_mb=v.memory_mb,
                    max_concurrency=v.max_concurrency,
                    provisioned_concurrency=v.provisioned_concurrency,
                ),
            )
        return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=v.name,
            model_name=v.model.model_name,
            initial_variant_weight=v.weight,
            instance_type=v.instance_type,
            initial_instance_count=v.instance_count,
            container_startup_health_check_timeout_in_seconds=v.container_startup_timeout_seconds,
            model_data_download_timeout_in_seconds=v.model_data_download_timeout_seconds,
            inference_ami_version=v.inference_ami_version,
        )

    def _data_capture(
        self, capture: DataCaptureProps | None
    ) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | None:
        """Capture to ``s3://<bucket>/<prefix>``; every serving role may write there."""
        if capture is None:
            return None
        key = self.encryption_key
        prefix = capture.prefix.strip("/")
        modes = (["Input"] if capture.capture_input else []) + (["Output"] if capture.capture_output else [])
        for role in self._roles:
            grant_objects(role, capture.bucket, f"{prefix}/*", "s3:PutObject")
            grant_key_use(role, key)
            ack_prefix(role, capture.bucket, capture.prefix)
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=True,
            initial_sampling_percentage=capture.sampling_percent,
            destination_s3_uri=f"s3://{capture.bucket.bucket_name}/{prefix}",
            capture_options=[sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode) for mode in modes],
            capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                json_content_types=["application/json"], csv_content_types=["text/csv"]
            ),
            kms_key_id=key.key_arn if key else None,
        )

    def _async_inference(
        self, settings: AsyncInferenceProps | None
    ) -> sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty | None:
        """Requests, results and failures under ``<prefix>/`` of the bucket, optional SNS topics."""
        if settings is None:
            return None
        key = self.encryption_key
        base = settings.prefix.strip("/")
        bucket = settings.bucket
        self.async_input_uri = f"s3://{bucket.bucket_name}/{base}/input/"
        notification = None
        if settings.notifications:
            self.success_topic = sns.Topic(
                self,
                "AsyncSuccessTopic",
                master_key=key,
                enforce_ssl=True,
                display_name=f"{self.endpoint_name} async results",
            )
            self.error_topic = sns.Topic(
                self,
                "AsyncErrorTopic",
                master_key=key,
                enforce_ssl=True,
                display_name=f"{self.endpoint_name} async errors",
            )
            if key is None:
                for topic in (self.success_topic, self.error_topic):
                    acknowledge(topic, "AwsSolutions-SNS2", UNENCRYPTED_TOPIC_REASON)
                    acknowledge_checkov(topic, "CKV_AWS_26", UNENCRYPTED_TOPIC_REASON)
            notification = sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                success_topic=self.success_topic.topic_arn, error_topic=self.error_topic.topic_arn
            )
        for role in self._roles:
            grant_objects(role, bucket, f"{base}/input/*", "s3:GetObject")
            grant_objects(role, bucket, f"{base}/output/*", "s3:PutObject")
            grant_objects(role, bucket, f"{base}/failures/*", "s3:PutObject")
            grant_key_use(role, key)
            for sub in ("input", "output", "failures"):
                ack_prefix(role, bucket, f"{base}/{sub}")
            for topic in (self.success_topic, self.error_topic):
                if topic is not None:  # key use is granted above; no kms:GenerateDataKey* wildcard
                    iam.Grant.add_to_principal(grantee=role, actions=["sns:Publish"], resource_arns=[topic.topic_arn])
        return sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
            output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                s3_output_path=f"s3://{bucket.bucket_name}/{base}/output",
                s3_failure_path=f"s3://{bucket.bucket_name}/{base}/failures",
                kms_key_id=key.key_arn if key else None,
                notification_config=notification,
            ),
            client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                max_concurrent_invocations_per_instance=settings.max_concurrent_invocations_per_instance
            ),
        )

    # ------------------------------------------------------------------ rollout

    def add_rollback_alarms(self, *alarms: cloudwatch.IAlarm) -> None:
        """Alarms that roll a guarded update back (at most 10 in all; used when a rollout is set).

        The models' execution roles may describe them: SageMaker watches them with that role during
        the update (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html)."""
        total = len(self._rollback_alarms) + len(alarms)
        if total > aws_platform.MAX_ROLLBACK_ALARMS:
            checks("SageMakerEndpoint.add_rollback_alarms").fail(
                "alarms",
                f"{total} alarms",
                f"SageMaker watches at most {aws_platform.MAX_ROLLBACK_ALARMS} rollback alarms",
            )
        self._rollback_alarms.extend(alarms)
        if self._rollout is not None and self._rollout.auto_rollback and alarms:
            for role in self._roles:
                iam.Grant.add_to_principal(
                    grantee=role, actions=["cloudwatch:DescribeAlarms"], resource_arns=[a.alarm_arn for a in alarms]
                )

    @property
    def rollback_alarms(self) -> list[cloudwatch.IAlarm]:
        return list(self._rollback_alarms)

    def _render_deployment_config(self) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
        assert self._rollout is not None  # guardrails run on a single instance variant (checked)
        return render_deployment_config(
            self._rollout, [a.alarm_name for a in self._rollback_alarms], self.variants[0].instance_count
        )

    # ------------------------------------------------------------------ grants

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow ``grantee`` to invoke this endpoint (real time, streaming and async)."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            resource_arns=[self.endpoint_arn],
            actions=[
                "sagemaker:InvokeEndpoint",
                "sagemaker:InvokeEndpointAsync",
                "sagemaker:InvokeEndpointWithResponseStream",
            ],
        )

    # ------------------------------------------------------------------ metrics

    def metric(
        self,
        metric_name: str,
        variant_name: str | None = None,
        *,
        namespace: str = "AWS/SageMaker",
        statistic: str = "Sum",
        period: cdk.Duration = cdk.Duration.minutes(1),
        label: str | None = None,
    ) -> cloudwatch.Metric:
        """A metric of one variant (default: the first live variant)."""
        variant = variant_name or self.variants[0].name
        if variant not in {v.name for v in self.variants} | ({self.shadow.name} if self.shadow else set()):
            checks("SageMakerEndpoint.metric").fail("variant_name", variant, "name a variant of this endpoint")
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=metric_name,
            statistic=statistic,
            period=period,
            label=label,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": variant},
        )

    def metric_invocations(self, variant_name: str | None = None, **kw) -> cloudwatch.Metric:
        return self.metric("Invocations", variant_name, **kw)

    def metric_invocations_per_instance(self, variant_name: str | None = None, **kw) -> cloudwatch.Metric:
        return self.metric("InvocationsPerInstance", variant_name, **kw)

    def metric_invocation_5xx_errors(self, variant_name: str | None = None, **kw) -> cloudwatch.Metric:
        return self.metric("Invocation5XXErrors", variant_name, **kw)

    def metric_invocation_4xx_errors(self, variant_name: str | None = None, **kw) -> cloudwatch.Metric:
        return self.metric("Invocation4XXErrors", variant_name, **kw)

    def metric_model_latency(
        self, variant_name: str | None = None, *, statistic: str = "p99", **kw
    ) -> cloudwatch.Metric:
        """Model latency in microseconds."""
        return self.metric("ModelLatency", variant_name, statistic=statistic, **kw)

    def metric_overhead_latency(
        self, variant_name: str | None = None, *, statistic: str = "p99", **kw
    ) -> cloudwatch.Metric:
        """SageMaker's overhead latency in microseconds."""
        return self.metric("OverheadLatency", variant_name, statistic=statistic, **kw)

    def metric_cpu_utilization(
        self, variant_name: str | None = None, *, statistic: str = "Average", **kw
    ) -> cloudwatch.Metric:
        """CPU utilization summed over cores (0..100 x vCPUs)."""
        return self.metric(
            "CPUUtilization", variant_name, namespace="/aws/sagemaker/Endpoints", statistic=statistic, **kw
        )

    def metric_memory_utilization(
        self, variant_name: str | None = None, *, statistic: str = "Average", **kw
    ) -> cloudwatch.Metric:
        return self.metric(
            "MemoryUtilization", variant_name, namespace="/aws/sagemaker/Endpoints", statistic=statistic, **kw
        )

    def metric_disk_utilization(
        self, variant_name: str | None = None, *, statistic: str = "Average", **kw
    ) -> cloudwatch.Metric:
        return self.metric(
            "DiskUtilization", variant_name, namespace="/aws/sagemaker/Endpoints", statistic=statistic, **kw
        )

    def metric_backlog_size_per_instance(self, *, period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        """Async only: queued requests per instance (endpoint-level metric)."""
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name="ApproximateBacklogSizePerInstance",
            statistic="Average",
            period=period,
            dimensions_map={"EndpointName": self.endpoint_name},
        )

    def metric_has_backlog_without_capacity(
        self, *, period: cdk.Duration = cdk.Duration.minutes(1)
    ) -> cloudwatch.Metric:
        """Async only: 1 while requests wait and no instance runs (scaled to zero)."""
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name="HasBacklogWithoutCapacity",
            statistic="Average",
            period=period,
            dimensions_map={"EndpointName": self.endpoint_name},
        )


def _unique_roles(models: list[SageMakerModel]) -> list[iam.IRole]:
    seen: dict[str, iam.IRole] = {}
    for model in models:
        seen.setdefault(model.role.node.path, model.role)
    return list(seen.values())


def _check(props: SageMakerEndpointProps) -> None:
    """What SageMaker accepts in one endpoint config, reported at the prop to change."""
    check = checks("SageMakerEndpointProps")
    check.pattern("endpoint_name", props.endpoint_name, aws_platform.NAME_PATTERN, aws_platform.NAME_HINT)
    variants = list(props.variants)
    check.that(
        1 <= len(variants) <= aws_platform.MAX_VARIANTS,
        "variants",
        [getattr(v, "name", v) for v in variants],
        f"give 1..{aws_platform.MAX_VARIANTS} variants",
    )
    names = [v.name for v in variants] + ([props.shadow.name] if props.shadow else [])
    check.unique("variants", names, "variant names (including the shadow)")
    serverless = [v for v in variants if isinstance(v, ServerlessVariant)]
    check.that(
        not serverless or len(serverless) == len(variants),
        "variants",
        names,
        "serverless and instance variants cannot be mixed in one endpoint",
    )
    check.that(not serverless or len(variants) == 1, "variants", names, "a serverless endpoint has exactly one variant")
    for i, variant in enumerate(variants + ([props.shadow] if props.shadow else [])):
        _check_variant(check, f"variants[{i}]" if i < len(variants) else "shadow", variant)
    check.that(
        sum(v.weight for v in variants) > 0,
        "variants",
        [v.weight for v in variants],
        "at least one live variant needs a weight > 0",
    )
    if props.shadow is not None:
        check.that(
            not serverless and len(variants) == 1,
            "shadow",
            props.shadow.name,
            "a shadow variant needs exactly one live instance variant (ShadowProductionVariants)",
        )
        check.that(
            0 < props.shadow.weight <= 1,
            "shadow.weight",
            props.shadow.weight,
            "the shadow's weight is its sampling ratio of live traffic: 0 < weight <= 1",
        )
        check.that(
            props.async_inference is None,
            "shadow",
            props.shadow.name,
            "shadow variants are for real-time endpoints, not async",
        )
    if props.async_inference is not None:
        check.that(
            not serverless, "async_inference", "set", "asynchronous inference needs instance variants, not serverless"
        )
        check.range(
            "async_inference.max_concurrent_invocations_per_instance",
            props.async_inference.max_concurrent_invocations_per_instance,
            1,
            aws_platform.ASYNC_MAX_CONCURRENT_INVOCATIONS,
        )
    if props.data_capture is not None:
        check.that(not serverless, "data_capture", "set", "serverless endpoints do not support data capture")
        check.range("data_capture.sampling_percent", props.data_capture.sampling_percent, 1, 100)
        check.that(
            props.data_capture.capture_input or props.data_capture.capture_output,
            "data_capture",
            "capture nothing",
            "capture the input, the output or both",
        )
    if props.rollout is not None:
        _check_rollout_fits(check, props.rollout, variants, bool(serverless))


def _check_variant(check, where: str, variant: InstanceVariant | ServerlessVariant) -> None:
    check.pattern(f"{where}.name", variant.name, aws_platform.NAME_PATTERN, aws_platform.NAME_HINT)
    check.that(variant.weight >= 0, f"{where}.weight", variant.weight, "weights must be >= 0")
    if isinstance(variant, ServerlessVariant):
        check.one_of(f"{where}.memory_mb", variant.memory_mb, aws_platform.SERVERLESS_MEMORY_MB)
        check.range(f"{where}.max_concurrency", variant.max_concurrency, 1, aws_platform.SERVERLESS_MAX_CONCURRENCY)
        check.range(f"{where}.provisioned_concurrency", variant.provisioned_concurrency, 1, variant.max_concurrency)
        check.that(
            not (variant.model.vpc_enabled or variant.model.network_isolation),
            f"{where}.model",
            "vpc/network isolation",
            "serverless endpoints support neither VPC configuration nor network isolation",
        )
        return
    check.pattern(
        f"{where}.instance_type",
        variant.instance_type,
        aws_platform.INSTANCE_TYPE_PATTERN,
        aws_platform.INSTANCE_TYPE_HINT,
    )
    check.range(f"{where}.instance_count", variant.instance_count, *INSTANCE_COUNT)
    check.range(
        f"{where}.container_startup_timeout_seconds",
        variant.container_startup_timeout_seconds,
        *aws_platform.STARTUP_TIMEOUT_SECONDS,
    )
    check.range(
        f"{where}.model_data_download_timeout_seconds",
        variant.model_data_download_timeout_seconds,
        *aws_platform.STARTUP_TIMEOUT_SECONDS,
    )
    if variant.inference_ami_version is not None:
        check.one_of(
            f"{where}.inference_ami_version", variant.inference_ami_version, aws_platform.INFERENCE_AMI_VERSIONS
        )
        check.that(
            aws_platform.has_accelerator(variant.instance_type),
            f"{where}.inference_ami_version",
            variant.inference_ami_version,
            f"selects an accelerator driver; {variant.instance_type} has no accelerator",
        )


def _check_rollout_fits(check, rollout: RolloutProps, variants: list, serverless: bool) -> None:
    """The rollout's own ranges, and what it needs of the endpoint (deployment guardrails)."""
    check.one_of("rollout.strategy", rollout.strategy, aws_platform.ROLLOUT_STRATEGIES)
    check.that(
        not serverless,
        "rollout",
        rollout.strategy,
        "deployment guardrails (blue/green traffic shifting, rolling) do not apply to serverless endpoints; "
        "leave rollout unset",
    )
    check.that(
        rollout.strategy == "all_at_once" or len(variants) == 1,
        "rollout.strategy",
        rollout.strategy,
        "canary, linear and rolling updates need a single-variant endpoint; use all_at_once for A/B variants",
    )
    needed = aws_platform.MIN_INSTANCES_FOR_ROLLOUT[rollout.strategy]
    for i, variant in enumerate(variants):
        check.that(
            variant.instance_count >= needed,
            f"variants[{i}].instance_count",
            variant.instance_count,
            f"a {rollout.strategy} rollout needs at least {needed} instances",
        )
    provisioning = max(
        v.container_startup_timeout_seconds or aws_platform.DEFAULT_STARTUP_ALLOWANCE_SECONDS for v in variants
    )
    check_rollout(rollout, check, provisioning)
