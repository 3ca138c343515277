"""One environment's SageMaker serving stack: maps the spec onto the twinserve.aws constructs.

This is the only place that knows both the spec and the constructs: environment policy (RETAIN in
prod, which prefixes of the artifacts bucket hold what) lives here, the constructs stay generic.
The constructor reads as the steps it takes, one method each: encryption, model artifacts, image,
models, endpoint, alarms (and the rollback wiring), scaling, budget, batch, smoke-test access,
outputs. cdk-nag findings inherent to a construct's design are acknowledged inside that construct
(see twinserve/aws/_nag.py); each names the exact finding and the reason.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from constructs import Construct
from twinserve.aws import (
    AsyncInferenceProps,
    BatchTransform,
    BatchTransformProps,
    CostBudget,
    DataCaptureProps,
    EndpointAlarms,
    EndpointAlarmsProps,
    EndpointAutoscaling,
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
from twinserve.aws._nag import acknowledge
from twinserve.aws.audit_trail import AuditTrail, AuditTrailProps
from twinserve.aws.drift_monitor import DriftMonitor, DriftMonitorProps, RetrainTarget
from twinserve.aws.model_archive import pack_model_dir
from twinserve.aws.private_network import PrivateNetwork, PrivateNetworkProps
from twinserve.platform import aws as aws_platform
from twinserve.spec import DeploymentSpec
from twinserve.spec.models import ShadowSpec, VariantSpec

from ..container_settings import container_environment
from ..environment_policy import EnvironmentPolicy
from ..model_image import resolve_model_image
from ..monitoring import drift_baseline_file, drift_window_hours
from .api import environment_api
from .budget import environment_budget
from .encryption_key import environment_key
from .names import endpoint_name
from .placement import PRIMARY, RegionPlacement
from .smoke_test_access import smoke_test_role

DATA_CAPTURE_PREFIX = "data-capture"
"""Where SageMaker writes captured requests in the artifacts bucket (what drift checks read)."""


def image_reader_role_name(spec: DeploymentSpec, env_name: str) -> str:
    """The role in an environment's account through which the pipeline's Azure step reads the image the
    stage published (its digest, and a pull token Azure Container Registry imports it with)."""
    return f"twinserve-{spec.name}-{env_name}-image-reader"


def azure_step_role_name(spec: DeploymentSpec) -> str:
    """The pipeline's Azure CodeBuild role (Pulumi preview, up and smoke test), the one principal allowed
    to assume the image-reader roles."""
    return f"twinserve-{spec.name}-pipeline-azure"


class ServingStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        spec: DeploymentSpec,
        env_name: str,
        spec_dir: Path,
        placement: RegionPlacement = PRIMARY,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.placement = placement
        """The stack's region among the environment's (``aws.regions``): global names, primary-only parts."""
        self.spec, self.spec_dir = spec, spec_dir
        self.environment_spec = spec.environment(env_name)
        self.policy = EnvironmentPolicy(env_name)
        self.endpoint_name = endpoint_name(spec, env_name)

        self.model_image = resolve_model_image(
            spec, self.environment_spec, spec_dir, env_path=f"environments.{env_name}"
        )
        self.key = environment_key(
            self,
            self.environment_spec,
            self.policy,
            self.endpoint_name,
            protects="artifacts, endpoint volumes, captured data, topics, log groups",
        )
        self.network = self._private_network()
        self.artifacts = self._model_artifacts()
        self.image = self._inference_image()
        self.role = self._execution_role()
        self.models: dict[str, SageMakerModel] = {}
        self.endpoint = self._endpoint()
        self.alarms = self._alarms()
        self.endpoint.add_rollback_alarms(*self.alarms.rollback_alarms)
        self.autoscaling = self._scaling()
        self._budget()
        self.drift = self._drift_monitor()
        self.batch = self._batch()
        self.smoke_test_role, self.smoke_test_role_output = self._smoke_test_access(env_name)
        self.image_reader_outputs = self._image_reader_access(env_name)
        self.trail = self._audit_trail()
        self.endpoint_name_output = self._outputs()
        self.smoke_test_target_output = self.endpoint_name_output
        """What the smoke test calls (``stacks/aws/smoke_test_access.py``)."""
        self.api = environment_api(
            self,
            self.environment_spec,
            self.endpoint_name,
            retain_logs=self.policy.keep_data,
            sagemaker_endpoint_name=self.endpoint_name,
            encryption_key=self.key,
            placement=self.placement,
        )
        if self.api is not None:
            self.api.node.add_dependency(self.endpoint)  # the integration names the endpoint

    @property
    def _removal_policy(self) -> cdk.RemovalPolicy:
        return cdk.RemovalPolicy.RETAIN if self.policy.keep_data else cdk.RemovalPolicy.DESTROY

    def _model_artifacts(self) -> ModelArtifacts:
        """The current version goes to models/<name>/<version>/model.tar.gz; versions pinned by a variant
        or the shadow are read from their own keys, uploaded by earlier deployments (docs/aws.md)."""
        model, monitoring = self.spec.model, self.environment_spec.monitoring
        archive = None
        if model.artifact.path:  # the folder Azure ML registers, packed the way SageMaker unpacks it
            archive = str(pack_model_dir((self.spec_dir / model.artifact.path).resolve()))
        return ModelArtifacts(
            self,
            "Artifacts",
            ModelArtifactsProps(
                model_archive_path=archive,
                model_data_url=model.artifact.s3_uri,
                model_name=model.name,
                model_version=model.version,
                encryption_key=self.key,
                retain=self.policy.keep_data,
                # monitoring.retention_days bounds what drift checks read: captured requests
                expiring_prefixes={f"{DATA_CAPTURE_PREFIX}/": cdk.Duration.days(monitoring.retention_days)}
                if monitoring
                else {},
            ),
        )

    def _inference_image(self) -> InferenceImage:
        """The model's image variant built from its (possibly staged) context, or the pre-built image."""
        context = self.model_image.context
        if context is not None:
            return InferenceImage.from_asset(self, "Image", str(context.directory))
        return InferenceImage.from_image_uri(self.spec.container.image_uri)

    def _execution_role(self) -> iam.Role:
        """One role for every model version in use."""
        return iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"twinserve {self.endpoint_name}: runs the inference container",
        )

    def _model(self, version: str) -> SageMakerModel:
        """The SageMaker model serving ``version`` (one per model version in use)."""
        if version not in self.models:
            self.models[version] = SageMakerModel(
                self,
                f"ModelV{version}",
                SageMakerModelProps(
                    image=self.image,
                    artifacts=self.artifacts,
                    model_version=version,
                    role=self.role,
                    vpc=self._model_vpc(),
                    network_isolation=self._network_isolation(),
                    encryption_key=self.key,
                    environment=container_environment(self.environment_spec, "aws", self.model_image),
                ),
            )
            if self.network is not None:
                # The containers fetch the model through the S3 gateway endpoint and log through the
                # Logs endpoint: CloudFormation must not start them before the endpoints exist.
                self.models[version].node.add_dependency(self.network.ready)
        return self.models[version]

    def _private_network(self) -> PrivateNetwork | None:
        """twinserve's VPC for the containers (``aws.private_network``; unset: prod, unless the endpoint is
        serverless, which cannot run in a VPC, or ``aws.vpc`` names the user's own)."""
        env = self.environment_spec
        aws = env.aws
        wanted = aws.private_network
        if wanted is None:
            wanted = self.policy.private_network and env.serving.endpoint_type != "serverless" and aws.vpc is None
        if not wanted:
            return None
        network = PrivateNetwork(
            self,
            "Network",
            PrivateNetworkProps(
                name=self.endpoint_name,
                cidr=aws.network_cidr,
                retain_logs=self.policy.keep_data,
                encryption_key=self.key,
            ),
        )
        cdk.CfnOutput(self, "VpcId", value=network.vpc.vpc_id)
        return network

    def _model_vpc(self) -> ModelVpcConfig | None:
        """The VPC the models' containers join: the user's (``aws.vpc``), twinserve's, or none."""
        aws = self.environment_spec.aws
        if aws.vpc is not None:
            return ModelVpcConfig(aws.vpc.subnet_ids, aws.vpc.security_group_ids)
        if self.network is None:
            return None
        return ModelVpcConfig(self.network.subnets.subnet_ids, [self.network.security_group.security_group_id])

    def _network_isolation(self) -> bool:
        """The spec's choice, or the environment's default where the endpoint type supports it."""
        env = self.environment_spec
        if env.aws.network_isolation is not None:
            return env.aws.network_isolation
        return self.policy.network_isolation and env.serving.endpoint_type != "serverless"

    def _endpoint(self) -> SageMakerEndpoint:
        env = self.environment_spec
        serving, aws, monitoring = env.serving, env.aws, env.monitoring
        variants = [self._variant(v) for v in serving.variants]
        shadow = None
        if serving.shadow is not None:
            shadow = self._instance_variant(serving.shadow, weight=serving.shadow.sample_percent / 100)
        return SageMakerEndpoint(
            self,
            "Endpoint",
            SageMakerEndpointProps(
                endpoint_name=self.endpoint_name,
                variants=variants,
                shadow=shadow,
                encryption_key=self.key,
                data_capture=DataCaptureProps(
                    bucket=self.artifacts.bucket,
                    prefix=DATA_CAPTURE_PREFIX,
                    sampling_percent=monitoring.sampling_percent if monitoring else aws.data_capture.sampling_percent,
                )
                if aws.data_capture.enabled or monitoring
                else None,
                async_inference=AsyncInferenceProps(
                    bucket=self.artifacts.bucket,
                    prefix="async",
                    max_concurrent_invocations_per_instance=serving.async_inference.max_concurrent_invocations_per_instance,
                )
                if serving.endpoint_type == "async"
                else None,
                rollout=None if serving.endpoint_type == "serverless" else self._rollout(),
            ),
        )

    def _variant(self, variant: VariantSpec) -> InstanceVariant | ServerlessVariant:
        serving = self.environment_spec.serving
        if serving.endpoint_type != "serverless":
            return self._instance_variant(variant, weight=variant.weight / 100)
        serverless = serving.serverless
        return ServerlessVariant(
            name=variant.name,
            model=self._model(self.spec.model_version_of(variant)),
            weight=variant.weight / 100,
            memory_mb=serverless.memory_mb,
            max_concurrency=serverless.max_concurrency,
            provisioned_concurrency=serverless.provisioned_concurrency,
        )

    def _instance_variant(self, variant: VariantSpec | ShadowSpec, *, weight: float) -> InstanceVariant:
        env = self.environment_spec
        return InstanceVariant(
            name=variant.name,
            model=self._model(self.spec.model_version_of(variant)),
            weight=weight,
            instance_type=env.compute.aws_instance_type,
            instance_count=env.instance_count_of(variant),
            container_startup_timeout_seconds=env.aws.container_startup_timeout_seconds,
            # CUDA 12 images need a newer driver than the GPU families' default (platform/aws.py)
            inference_ami_version=aws_platform.GPU_INFERENCE_AMI_VERSION if env.compute.gpu else None,
        )

    def _rollout(self) -> RolloutProps:
        rollout = self.environment_spec.rollout
        return RolloutProps(
            strategy=rollout.strategy,
            step_percent=rollout.step_percent,
            wait_seconds=rollout.wait_seconds,
            termination_wait_seconds=rollout.termination_wait_seconds,
            max_execution_timeout_seconds=rollout.max_execution_timeout_seconds,
            auto_rollback=rollout.auto_rollback,
        )

    def _alarms(self) -> EndpointAlarms:
        """Alarms and dashboard; the stack hands their rollback alarms to the endpoint's rollout."""
        alarms = self.environment_spec.alarms
        return EndpointAlarms(
            self,
            "Alarms",
            EndpointAlarmsProps(
                endpoint=self.endpoint,
                emails=tuple(alarms.emails),
                errors_5xx=alarms.errors_5xx,
                errors_4xx=alarms.errors_4xx,
                model_latency_p99_ms=alarms.model_latency_p99_ms,
                overhead_latency_p99_ms=alarms.overhead_latency_p99_ms,
                cpu_utilization_percent=alarms.cpu_utilization_percent,
                memory_utilization_percent=alarms.memory_utilization_percent,
                disk_utilization_percent=alarms.disk_utilization_percent,
                zero_invocations=alarms.zero_invocations,
                period=cdk.Duration.seconds(alarms.period_seconds),
                evaluation_periods=alarms.evaluation_periods,
                encryption_key=self.key,
                dashboard_name=self.placement.global_name(self.endpoint_name),  # dashboards are account-global
            ),
        )

    def _drift_monitor(self) -> DriftMonitor | None:
        """The scheduled drift check of the captured requests (``monitoring``), alarming on the alarm topic."""
        monitoring = self.environment_spec.monitoring
        if monitoring is None:
            return None
        retrain = monitoring.retrain.aws if monitoring.retrain is not None else None
        return DriftMonitor(
            self,
            "Drift",
            DriftMonitorProps(
                endpoint_name=self.endpoint_name,
                image=self.image,
                bucket=self.artifacts.bucket,
                capture_prefix=DATA_CAPTURE_PREFIX,
                baseline_file=str(drift_baseline_file(monitoring, self.spec_dir)),
                schedule=monitoring.schedule,
                window_hours=drift_window_hours(monitoring),
                alarm_topic=self.alarms.topic,
                retrain=RetrainTarget(kind=retrain.kind, arn=retrain.arn)
                if monitoring.on_drift == "notify_and_retrain" and retrain is not None
                else None,
                encryption_key=self.key,
                retain_logs=self.policy.keep_data,
            ),
        )

    def _scaling(self) -> EndpointAutoscaling:
        """One scalable target per live variant (the shadow keeps its instance count, as on Azure),
        registered by the endpoint's reconciler before and after every endpoint update. The reconciler
        is there even when nothing scales, so switching scaling off deregisters before the update."""
        autoscaling = EndpointAutoscaling.of(self.endpoint)
        for variant in self.endpoint.variants:
            if (props := self._scaling_props(variant)) is not None:
                VariantAutoscaling(self, f"Scaling{_camel(variant.name)}", props)
        return autoscaling

    def _scaling_props(self, variant: InstanceVariant | ServerlessVariant) -> VariantAutoscalingProps | None:
        env = self.environment_spec
        serving, scaling = env.serving, env.scaling
        common = dict(
            endpoint=self.endpoint,
            variant_name=variant.name,
            scale_in_cooldown=cdk.Duration.seconds(scaling.scale_in_cooldown_seconds),
            scale_out_cooldown=cdk.Duration.seconds(scaling.scale_out_cooldown_seconds),
        )
        if serving.endpoint_type == "async" and serving.async_inference.scale_to_zero:
            return VariantAutoscalingProps(
                mode="async_backlog",
                min_capacity=0,
                max_capacity=scaling.max_instances if scaling.enabled else max(1, variant.instance_count),
                **common,
            )
        if not scaling.enabled:
            return None
        if serving.endpoint_type == "serverless":
            return VariantAutoscalingProps(
                mode="provisioned_concurrency",
                min_capacity=1,
                max_capacity=serving.serverless.max_concurrency,
                **common,
            )
        return VariantAutoscalingProps(
            min_capacity=scaling.min_instances,
            max_capacity=scaling.max_instances,
            target_invocations_per_instance=scaling.target_invocations_per_instance,
            **common,
        )

    def _audit_trail(self) -> AuditTrail | None:
        """Who changed the endpoint and who read or wrote model artifacts (CloudTrail)."""
        wanted = self.environment_spec.aws.audit_trail
        if not self.placement.primary:
            return None  # the primary's trail is multi-region: it records this region too
        if not (self.policy.audit_trail if wanted is None else wanted):
            return None
        return AuditTrail(
            self,
            "AuditTrail",
            AuditTrailProps(
                trail_name=f"twinserve-{self.endpoint_name}",
                data_event_buckets=(self.artifacts.bucket,),
                encryption_key=self.key,
                access_logs_bucket=self.artifacts.access_logs,
                retain=self.policy.keep_data,
            ),
        )

    def _budget(self) -> CostBudget | None:
        return environment_budget(self, self.spec, self.policy.name, self.endpoint_name, self.placement)

    def _batch(self) -> BatchTransform | None:
        """Batch transform with the same model and container as the endpoint."""
        env = self.environment_spec
        batch = env.serving.batch
        if not batch.enabled:
            return None
        return BatchTransform(
            self,
            "Batch",
            BatchTransformProps(
                model=self._model(self.spec.model.version),
                bucket=self.artifacts.bucket,
                prefix="batch",
                instance_type=env.compute.aws_instance_type,
                instance_count=batch.instance_count,
                strategy=batch.strategy,
                max_payload_mb=batch.max_payload_mb,
                max_concurrent_transforms=batch.max_concurrent_transforms,
                encryption_key=self.key,
                retain_logs=self.policy.keep_data,
            ),
        )

    def _smoke_test_access(self, env_name: str) -> tuple[iam.Role | None, cdk.CfnOutput | None]:
        """The promotion pipeline's smoke test invokes the endpoint through this role (SageMaker endpoints
        have no resource policy)."""
        role, output = smoke_test_role(self, self.spec, env_name, "invokes the endpoint", self.placement)
        if role is not None:
            role.add_to_policy(
                iam.PolicyStatement(actions=["sagemaker:InvokeEndpoint"], resources=[self.endpoint.endpoint_arn])
            )
        return role, output

    def _image_reader_access(self, env_name: str) -> dict[str, cdk.CfnOutput]:
        """Build once: the pipeline's Azure step imports this stage's image into the Azure workspace
        registry (docs/azure.md, "In the pipeline"). It reads the image's digest and a pull token through
        this role, trusted by that step's role only and limited to the one repository."""
        spec = self.spec
        env = self.environment_spec
        if spec.pipeline is None or "azure" not in env.targets or self.model_image.context is None:
            return {}
        if not self.placement.primary:
            return {}  # Azure imports the primary's image
        caller_account = spec.pipeline.account or self.account
        caller = f"arn:{self.partition}:iam::{caller_account}:role/{azure_step_role_name(spec)}"
        role = iam.Role(
            self,
            "ImageReaderRole",
            role_name=image_reader_role_name(spec, env_name),
            assumed_by=iam.AccountPrincipal(caller_account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": caller}}
            ),
            description=f"twinserve {self.endpoint_name}: the pipeline's Azure step reads the serving image",
        )
        self.image.grant_pull(role, describe=True)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource-level permissions; pulls are granted on the one repository.",
        )
        return {
            "IMAGE_URI": cdk.CfnOutput(self, "ImageUri", value=self.image.image_uri),
            "IMAGE_READER_ROLE_ARN": cdk.CfnOutput(self, "ImageReaderRoleArn", value=role.role_arn),
        }

    def _outputs(self) -> cdk.CfnOutput:
        """What smoke tests, pipelines and users read; returns the endpoint name output."""
        name = cdk.CfnOutput(self, "EndpointName", value=self.endpoint_name)
        cdk.CfnOutput(self, "ArtifactsBucketName", value=self.artifacts.bucket.bucket_name)
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)
        if self.endpoint.is_async:
            cdk.CfnOutput(self, "AsyncInputUri", value=self.endpoint.async_input_uri)
        if self.batch is not None:
            cdk.CfnOutput(self, "BatchStateMachineArn", value=self.batch.state_machine.state_machine_arn)
            cdk.CfnOutput(self, "BatchInputUri", value=self.batch.input_uri)
        return name


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.split("-"))
