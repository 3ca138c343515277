"""spec -> the AWS serving of one environment on ECS Fargate (``aws.platform: ecs_fargate``).

The same image as on SageMaker, with the model baked in (Fargate has no model mount:
``twinserve.image_context.stage_model_image_context``), as a service behind an internal load
balancer (``twinserve.aws.FargateModelService``); alarms on the tasks' 5xx answers, p99 latency, CPU
and memory roll deployments back; the budget as on SageMaker.

Spec -> ECS: ``compute.instance_count`` tasks of ``aws.fargate`` size; ``rollout.strategy``
all_at_once -> BLUE_GREEN, canary -> CANARY (``step_percent`` of traffic, ``wait_seconds`` bake),
linear -> LINEAR, rolling -> ROLLING with the circuit breaker; ``rollout.termination_wait_seconds`` is
the bake time before the old tasks go; ``scaling`` -> task-count target tracking on CPU
(``cpu_scale_out_percent``) and requests per task (``target_invocations_per_instance``).

``aws.api`` (enabled) -> ``twinserve.aws.ApiFront`` over a VPC link V2 to the internal load balancer
(which strips the API's stage name from the path): an IAM-authorized URL for callers outside the VPC.

Callers outside the VPC (the pipeline's smoke test, `twinserve invoke`) reach the internal load
balancer through ``twinserve.aws.InternalProbe``, a function in the service's subnets that may POST to
the scoring route only, for IAM principals granted ``lambda:InvokeFunction`` on it.

``serving.batch`` (enabled) -> ``FargateBatchJob``: an AWS Batch job on Fargate in the service's VPC and
private subnets, sized by ``aws.batch_job``, running the batch-job image (the same serving layers and
model plus the S3 wrapper) over the batch bucket's ``batch/input/`` into ``batch/output/<job id>/``; on
demand, and on ``aws.batch_job.schedule``; failed jobs reach the alarm topic.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2

from constructs import Construct
from twinserve.aws.api_front import STAGE_PATH_PREFIX
from twinserve.aws.cost_budget import CostBudget
from twinserve.aws.fargate_batch_job import FargateBatchJob, FargateBatchJobProps
from twinserve.aws.fargate_service import (
    FargateModelService,
    FargateModelServiceProps,
    FargateRolloutProps,
    FargateScalingProps,
)
from twinserve.aws.inference_image import InferenceImage
from twinserve.aws.internal_probe import InternalProbe, InternalProbeProps
from twinserve.aws.service_alarms import ServiceAlarms, ServiceAlarmsProps, WatchedMetric
from twinserve.spec import DeploymentSpec
from twinserve.spec.models import AwsBatchJobSpec
from twinserve_serving.routes import INVOCATIONS_PATH

from ..container_settings import container_environment
from ..environment_policy import EnvironmentPolicy
from ..model_image import resolve_model_image
from .api import environment_api
from .baked_image import baked_model_image_context, batch_job_image_context
from .budget import environment_budget
from .encryption_key import environment_key
from .names import endpoint_name, probe_function_name
from .placement import PRIMARY, RegionPlacement
from .smoke_test_access import smoke_test_role

ROLLOUT_STRATEGIES = {"all_at_once": "blue_green", "canary": "canary", "linear": "linear", "rolling": "rolling"}
"""The spec's rollout strategy -> the ECS deployment strategy."""


class FargateServingStack(cdk.Stack):
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
        self.environment_spec = env = spec.environment(env_name)
        self.policy = EnvironmentPolicy(env_name)
        self.service_name = endpoint_name(spec, env_name)
        self.model_image = resolve_model_image(spec, env, spec_dir, env_path=f"environments.{env_name}")
        protects = "alarm topic, log groups, batch data" if env.serving.batch.enabled else "alarm topic, log groups"
        self.key = environment_key(self, env, self.policy, self.service_name, protects=protects)
        self.baked_context = baked_model_image_context(spec, self.model_image, spec_dir)
        self.image = self._image()
        period = cdk.Duration.seconds(env.alarms.period_seconds)
        names = self._alarm_names()
        self.service = FargateModelService(
            self,
            "Service",
            FargateModelServiceProps(
                service_name=self.service_name,
                image=self.image,
                cpu=env.aws.fargate.cpu,
                memory_mib=env.aws.fargate.memory_mib,
                desired_count=env.compute.instance_count,
                port=spec.container.port,
                environment=container_environment(env, "aws", self.model_image),
                request_timeout=cdk.Duration.seconds(env.serving.request_timeout_seconds),
                strip_path_prefix=STAGE_PATH_PREFIX if env.aws.api.enabled else None,
                rollout=FargateRolloutProps(
                    strategy=ROLLOUT_STRATEGIES[env.rollout.strategy],
                    step_percent=env.rollout.step_percent,
                    step_wait=cdk.Duration.seconds(env.rollout.wait_seconds),
                    bake_time=cdk.Duration.seconds(env.rollout.termination_wait_seconds),
                    deployment_alarm_names=names if env.rollout.auto_rollback else (),
                ),
                scaling=FargateScalingProps(
                    min_tasks=env.scaling.min_instances,
                    max_tasks=env.scaling.max_instances,
                    cpu_percent=env.scaling.cpu_scale_out_percent,
                    requests_per_target_per_minute=env.scaling.target_invocations_per_instance,
                    scale_in_cooldown=cdk.Duration.seconds(env.scaling.scale_in_cooldown_seconds),
                    scale_out_cooldown=cdk.Duration.seconds(env.scaling.scale_out_cooldown_seconds),
                )
                if env.scaling.enabled
                else None,
                vpc_cidr=env.aws.fargate.vpc_cidr,
                retain_logs=self.policy.keep_data,
                encryption_key=self.key,
            ),
        )
        self.alarms = self._alarms(period)
        assert self.alarms.rollback_alarm_names == names, "the deployment watches the alarms this stack creates"
        self.batch = self._batch()
        self._budget()
        self.probe = self._probe(env_name)
        self.api = environment_api(
            self,
            env,
            self.service_name,
            retain_logs=self.policy.keep_data,
            load_balancer=self.service.load_balancer,
            vpc=self.service.vpc,
            encryption_key=self.key,
            placement=self.placement,
        )
        self.smoke_test_role, self.smoke_test_role_output = smoke_test_role(
            self, spec, env_name, "calls the service through its probe function", self.placement
        )
        if self.smoke_test_role is not None:
            self.probe.grant_invoke(self.smoke_test_role)
        self.url_output = cdk.CfnOutput(self, "ServiceUrl", value=self.service.url)
        cdk.CfnOutput(self, "ServiceName", value=self.service_name)
        self.smoke_test_target_output = cdk.CfnOutput(
            self, "ProbeFunctionName", value=self.probe.function.function_name
        )
        """What the smoke test calls (``stacks/aws/smoke_test_access.py``)."""
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)
        if self.batch is not None:
            cdk.CfnOutput(self, "BatchJobQueueArn", value=self.batch.job_queue.job_queue_arn)
            cdk.CfnOutput(self, "BatchJobDefinitionArn", value=self.batch.job_definition.job_definition_arn)
            cdk.CfnOutput(self, "BatchInputUri", value=self.batch.input_uri)
            cdk.CfnOutput(self, "BatchOutputUri", value=self.batch.output_uri)

    def _image(self) -> InferenceImage:
        """The model's image variant with the model baked in (Fargate has no model mount)."""
        return InferenceImage.from_asset(self, "Image", str(self.baked_context))

    def _batch(self) -> FargateBatchJob | None:
        """``serving.batch`` as an AWS Batch job on Fargate beside the service (its VPC, its key)."""
        env = self.environment_spec
        if not env.serving.batch.enabled:
            return None
        job = env.aws.batch_job or AwsBatchJobSpec()
        image = InferenceImage.from_asset(self, "BatchImage", str(batch_job_image_context(self.baked_context)))
        return FargateBatchJob(
            self,
            "Batch",
            FargateBatchJobProps(
                name=self.service_name,
                image=image,
                vpc=self.service.vpc,
                vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
                cpu=job.cpu,
                memory_mib=job.memory_mib,
                environment=container_environment(env, "aws", self.model_image),
                timeout=cdk.Duration.minutes(job.timeout_minutes),
                attempts=job.attempts,
                max_concurrent_jobs=job.max_concurrent_jobs,
                schedule=job.schedule,
                encryption_key=self.key,
                failure_topic=self.alarms.topic,
                retain_data=self.policy.keep_data,
            ),
        )

    def _probe(self, env_name: str) -> InternalProbe:
        """The door to the internal load balancer for callers outside the VPC (smoke tests, `twinserve
        invoke`): IAM-authorized, scoring route only."""
        return InternalProbe(
            self,
            "Probe",
            InternalProbeProps(
                function_name=probe_function_name(self.spec, env_name),
                target_url=self.service.url,
                vpc=self.service.vpc,
                allowed_paths=(INVOCATIONS_PATH,),
                retain_logs=self.policy.keep_data,
                encryption_key=self.key,
            ),
        )

    def _alarm_names(self) -> tuple[str, ...]:
        return tuple(f"{self.service_name}-{name}" for name in ("5xx", "latency-p99", "cpu", "memory"))

    def _alarms(self, period: cdk.Duration) -> ServiceAlarms:
        alarms, service = self.environment_spec.alarms, self.service
        return ServiceAlarms(
            self,
            "Alarms",
            ServiceAlarmsProps(
                name_prefix=self.service_name,
                dashboard_name=self.placement.global_name(self.service_name),  # dashboards are account-global
                metrics=(
                    WatchedMetric(
                        "5xx",
                        service.metric_target_5xx(period),
                        alarms.errors_5xx,
                        "Server errors answered by the tasks (the container's 5xx), per period.",
                    ),
                    WatchedMetric(
                        "latency-p99",
                        service.metric_latency_p99(period),
                        alarms.model_latency_p99_ms / 1000,  # TargetResponseTime is in seconds
                        "p99 of the tasks' response time as the load balancer measures it.",
                    ),
                    WatchedMetric(
                        "cpu", service.metric_cpu(period), alarms.cpu_utilization_percent, "Average task CPU."
                    ),
                    WatchedMetric(
                        "memory",
                        service.metric_memory(period),
                        alarms.memory_utilization_percent,
                        "Average task memory.",
                    ),
                ),
                emails=tuple(alarms.emails),
                evaluation_periods=alarms.evaluation_periods,
                encryption_key=self.key,
            ),
        )

    def _budget(self) -> CostBudget | None:
        return environment_budget(self, self.spec, self.policy.name, self.service_name, self.placement)
