"""One environment's SageMaker serving stack: maps the spec onto the twinserve.aws constructs.

This is the only place that knows both the spec and the constructs: environment policy (RETAIN in
prod, which prefixes of the artifacts bucket hold what) lives here, the constructs stay generic.
cdk-nag findings inherent to a construct's design are acknowledged inside that construct (see
twinserve/aws/_nag.py); each names the exact finding and the reason.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from twinserve.aws import (
    AsyncInferenceProps,
    BatchTransform,
    BatchTransformProps,
    CostBudget,
    CostBudgetProps,
    DataCaptureProps,
    EndpointAlarms,
    EndpointAlarmsProps,
    InferenceImage,
    InstanceVariant,
    ModelArtifacts,
    ModelArtifactsProps,
    ModelVpcConfig,
    RolloutProps,
    SageMakerEndpoint,
    SageMakerEndpointProps,
    SageMakerModel,
    SageMakerModelProps,
    ServerlessVariant,
    VariantAutoscaling,
    VariantAutoscalingProps,
)
from twinserve.aws.model_archive import pack_model_dir
from twinserve.spec import DeploymentSpec

from ..container_settings import container_environment


def endpoint_name(spec: DeploymentSpec, env_name: str) -> str:
    return f"{spec.name}-{env_name}"


def smoke_test_role_name(spec: DeploymentSpec, env_name: str) -> str:
    """The role in an environment's account that the pipeline's smoke test assumes to invoke its endpoint."""
    return f"twinserve-{spec.name}-{env_name}-smoke-test"


def smoke_test_caller_role_name(spec: DeploymentSpec) -> str:
    """The pipeline's smoke-test CodeBuild role, the one principal allowed to assume the roles above."""
    return f"twinserve-{spec.name}-pipeline-smoke-test"


class ServingStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, spec: DeploymentSpec, env_name: str,
                 spec_dir: Path, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        env = spec.environment(env_name)
        prod = env_name == "prod"
        serving, aws = env.serving, env.aws
        name = endpoint_name(spec, env_name)
        retain = cdk.RemovalPolicy.RETAIN if prod else cdk.RemovalPolicy.DESTROY

        # ---- encryption
        self.key: kms.Key | None = None
        if aws.encryption == "kms":
            self.key = kms.Key(self, "Key", enable_key_rotation=True, removal_policy=retain,
                               alias=f"alias/twinserve/{name}",
                               description=f"twinserve {name}: artifacts, endpoint volumes, captured data, topics")

        # ---- model artifacts
        artifact = spec.model.artifact
        archive = None
        if artifact.path:  # the folder Azure ML registers, packed the way SageMaker unpacks it
            archive = str(pack_model_dir((spec_dir / artifact.path).resolve()))
        # The current version goes to models/<name>/<version>/model.tar.gz; versions pinned by a variant
        # or the shadow are read from their own keys, uploaded by earlier deployments (docs/aws.md).
        self.artifacts = ModelArtifacts(self, "Artifacts", ModelArtifactsProps(
            model_archive_path=archive, model_data_url=artifact.s3_uri, model_name=spec.model.name,
            model_version=spec.model.version, encryption_key=self.key, retain=prod))

        # ---- inference image
        if spec.container.build:
            image = InferenceImage.from_asset(self, "Image", str((spec_dir / spec.container.build).resolve()))
        else:
            image = InferenceImage.from_image_uri(spec.container.image_uri)

        # ---- models: one per model version in use, sharing one execution role
        self.role = iam.Role(self, "ExecutionRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                             description=f"twinserve {name}: runs the inference container")
        vpc = ModelVpcConfig(aws.vpc.subnet_ids, aws.vpc.security_group_ids) if aws.vpc else None
        self.models: dict[str, SageMakerModel] = {}

        def model_for(version: str) -> SageMakerModel:
            if version not in self.models:
                self.models[version] = SageMakerModel(self, f"ModelV{version}", SageMakerModelProps(
                    image=image, artifacts=self.artifacts, model_version=version, role=self.role, vpc=vpc,
                    network_isolation=aws.network_isolation, encryption_key=self.key,
                    environment=container_environment(env, "aws")))
            return self.models[version]

        # ---- endpoint
        instance_type = env.compute.aws_instance_type
        variants: list[InstanceVariant | ServerlessVariant] = []
        for v in serving.variants:
            model = model_for(spec.model_version_of(v))
            if serving.endpoint_type == "serverless":
                sl = serving.serverless
                variants.append(ServerlessVariant(
                    name=v.name, model=model, weight=v.weight / 100, memory_mb=sl.memory_mb,
                    max_concurrency=sl.max_concurrency, provisioned_concurrency=sl.provisioned_concurrency))
            else:
                variants.append(InstanceVariant(
                    name=v.name, model=model, weight=v.weight / 100, instance_type=instance_type,
                    instance_count=v.instance_count or env.compute.instance_count,
                    container_startup_timeout_seconds=aws.container_startup_timeout_seconds))
        shadow = None
        if serving.shadow is not None:
            s = serving.shadow
            shadow = InstanceVariant(
                name=s.name, model=model_for(spec.model_version_of(s)), weight=s.sample_percent / 100,
                instance_type=instance_type, instance_count=s.instance_count or env.compute.instance_count,
                container_startup_timeout_seconds=aws.container_startup_timeout_seconds)
        rollout = env.rollout
        self.endpoint = SageMakerEndpoint(self, "Endpoint", SageMakerEndpointProps(
            endpoint_name=name, variants=variants, shadow=shadow, encryption_key=self.key,
            data_capture=DataCaptureProps(bucket=self.artifacts.bucket, prefix="data-capture",
                                          sampling_percent=aws.data_capture.sampling_percent)
            if aws.data_capture.enabled else None,
            async_inference=AsyncInferenceProps(
                bucket=self.artifacts.bucket, prefix="async",
                max_concurrent_invocations_per_instance=serving.async_inference.max_concurrent_invocations_per_instance)
            if serving.endpoint_type == "async" else None,
            rollout=None if serving.endpoint_type == "serverless" else RolloutProps(
                strategy=rollout.strategy, step_percent=rollout.step_percent, wait_seconds=rollout.wait_seconds,
                termination_wait_seconds=rollout.termination_wait_seconds,
                max_execution_timeout_seconds=rollout.max_execution_timeout_seconds,
                auto_rollback=rollout.auto_rollback),
        ))

        # ---- alarms, dashboard (the alarms are the rollout's rollback alarms)
        al = env.alarms
        self.alarms = EndpointAlarms(self, "Alarms", EndpointAlarmsProps(
            endpoint=self.endpoint, emails=tuple(al.emails), errors_5xx=al.errors_5xx, errors_4xx=al.errors_4xx,
            model_latency_p99_ms=al.model_latency_p99_ms, overhead_latency_p99_ms=al.overhead_latency_p99_ms,
            cpu_utilization_percent=al.cpu_utilization_percent, memory_utilization_percent=al.memory_utilization_percent,
            disk_utilization_percent=al.disk_utilization_percent, zero_invocations=al.zero_invocations,
            period=cdk.Duration.seconds(al.period_seconds), evaluation_periods=al.evaluation_periods,
            encryption_key=self.key))

        # ---- autoscaling
        sc = env.scaling
        cooldowns = dict(scale_in_cooldown=cdk.Duration.seconds(sc.scale_in_cooldown_seconds),
                         scale_out_cooldown=cdk.Duration.seconds(sc.scale_out_cooldown_seconds))
        self.autoscaling: list[VariantAutoscaling] = []
        for v in variants:
            props = None
            if serving.endpoint_type == "async" and serving.async_inference.scale_to_zero:
                props = VariantAutoscalingProps(
                    endpoint=self.endpoint, variant_name=v.name, mode="async_backlog", min_capacity=0,
                    max_capacity=sc.max_instances if sc.enabled else max(1, v.instance_count), **cooldowns)
            elif sc.enabled and serving.endpoint_type == "serverless":
                props = VariantAutoscalingProps(
                    endpoint=self.endpoint, variant_name=v.name, mode="provisioned_concurrency",
                    min_capacity=1, max_capacity=serving.serverless.max_concurrency, **cooldowns)
            elif sc.enabled:
                props = VariantAutoscalingProps(
                    endpoint=self.endpoint, variant_name=v.name, min_capacity=sc.min_instances,
                    max_capacity=sc.max_instances, target_invocations_per_instance=sc.target_invocations_per_instance,
                    **cooldowns)
            if props is not None:
                self.autoscaling.append(VariantAutoscaling(self, f"Scaling{_camel(v.name)}", props))

        # ---- cost ceiling
        if env.budget is not None:
            CostBudget(self, "Budget", CostBudgetProps(
                budget_name=f"twinserve-{name}", monthly_limit_usd=env.budget.monthly_limit_usd,
                emails=tuple(al.emails), notify_at_percent=tuple(env.budget.notify_at_percent)))

        # ---- batch transform with the same model and container
        self.batch: BatchTransform | None = None
        batch = serving.batch
        if batch.enabled:
            self.batch = BatchTransform(self, "Batch", BatchTransformProps(
                model=model_for(spec.model.version), bucket=self.artifacts.bucket, prefix="batch",
                instance_type=instance_type, instance_count=batch.instance_count, strategy=batch.strategy,
                max_payload_mb=batch.max_payload_mb, max_concurrent_transforms=batch.max_concurrent_transforms,
                encryption_key=self.key, retain_logs=prod))

        # ---- the promotion pipeline's smoke test invokes the endpoint from the pipeline's account through
        # this role (SageMaker endpoints have no resource policy), whether the stage is deployed by the
        # pipeline or by hand: the stack is the same either way.
        self.smoke_test_role: iam.Role | None = None
        self.smoke_test_role_output: cdk.CfnOutput | None = None
        if spec.pipeline is not None and spec.pipeline.smoke_test:
            caller_account = spec.pipeline.account or self.account  # unset: every stage is in the pipeline's account
            caller = f"arn:{self.partition}:iam::{caller_account}:role/{smoke_test_caller_role_name(spec)}"
            self.smoke_test_role = iam.Role(
                self, "SmokeTestRole", role_name=smoke_test_role_name(spec, env_name),
                assumed_by=iam.AccountPrincipal(caller_account).with_conditions(
                    {"ArnEquals": {"aws:PrincipalArn": caller}}),
                description=f"twinserve {name}: the promotion pipeline's smoke test invokes the endpoint")
            self.smoke_test_role.add_to_policy(iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint"], resources=[self.endpoint.endpoint_arn]))
            self.smoke_test_role_output = cdk.CfnOutput(self, "SmokeTestRoleArn", value=self.smoke_test_role.role_arn)

        # ---- outputs (smoke tests and pipelines read them)
        self.endpoint_name_output = cdk.CfnOutput(self, "EndpointName", value=name)
        cdk.CfnOutput(self, "ArtifactsBucketName", value=self.artifacts.bucket.bucket_name)
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)
        if self.endpoint.is_async:
            cdk.CfnOutput(self, "AsyncInputUri", value=self.endpoint.async_input_uri)
        if self.batch is not None:
            cdk.CfnOutput(self, "BatchStateMachineArn", value=self.batch.state_machine.state_machine_arn)
            cdk.CfnOutput(self, "BatchInputUri", value=self.batch.input_uri)


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.split("-"))
