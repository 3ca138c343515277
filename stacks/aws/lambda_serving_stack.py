"""spec -> the AWS serving of one environment as a Lambda function (``aws.platform: lambda``).

The same image as on SageMaker with the model baked in (Lambda mounts nothing), run unchanged through
the Lambda Web Adapter (``twinserve_serving.lambda_settings.lambda_environment``), reached through the
``live`` alias's function URL with IAM authorization; CodeDeploy shifts the alias to each new version
(``rollout.strategy`` all_at_once, canary or linear, ``wait_seconds`` between steps) and rolls back on
the 5xx, latency, error and throttle alarms; the budget as on SageMaker.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk

from constructs import Construct
from twinserve.aws.cost_budget import CostBudget
from twinserve.aws.lambda_service import LambdaModelService, LambdaModelServiceProps, LambdaRolloutProps
from twinserve.aws.service_alarms import ServiceAlarms, ServiceAlarmsProps, WatchedMetric
from twinserve.spec import DeploymentSpec
from twinserve_serving.lambda_settings import lambda_environment

from ..container_settings import container_environment
from ..environment_policy import EnvironmentPolicy
from ..model_image import resolve_model_image
from .api import environment_api
from .baked_image import baked_model_image_context
from .budget import environment_budget
from .encryption_key import environment_key
from .names import endpoint_name
from .placement import PRIMARY, RegionPlacement
from .smoke_test_access import smoke_test_role

ALARMS = ("5xx", "latency-p99", "errors", "throttles")
"""The function's alarms, in the order deployments list them."""


class LambdaServingStack(cdk.Stack):
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
        self.function_name = endpoint_name(spec, env_name)
        self.model_image = resolve_model_image(spec, env, spec_dir, env_path=f"environments.{env_name}")
        self.key = environment_key(self, env, self.policy, self.function_name, protects="alarm topic and log groups")
        function = env.aws.lambda_function
        names = tuple(f"{self.function_name}-{name}" for name in ALARMS)
        self.service = LambdaModelService(
            self,
            "Service",
            LambdaModelServiceProps(
                function_name=self.function_name,
                image_directory=str(baked_model_image_context(spec, self.model_image, spec_dir)),
                # the container's settings, then the adapter's (one request per environment wins)
                environment={
                    **container_environment(env, "aws", self.model_image),
                    **lambda_environment(spec.container.port),
                },
                memory_mb=function.memory_mb,
                timeout=cdk.Duration.seconds(function.timeout_seconds),
                ephemeral_storage_mb=function.ephemeral_storage_mb,
                provisioned_concurrency=function.provisioned_concurrency,
                rollout=LambdaRolloutProps(
                    strategy=env.rollout.strategy,
                    step_percent=env.rollout.step_percent,
                    step_wait=cdk.Duration.seconds(env.rollout.wait_seconds),
                    rollback_alarm_names=names if env.rollout.auto_rollback else (),
                ),
                retain_logs=self.policy.keep_data,
                encryption_key=self.key,
            ),
        )
        self.alarms = self._alarms(cdk.Duration.seconds(env.alarms.period_seconds))
        assert self.alarms.rollback_alarm_names == names, "the deployment watches the alarms this stack creates"
        # CodeDeploy reads the alarms by name when a deployment starts: they must exist first
        self.service.deployment_group.node.add_dependency(self.alarms)
        self._budget()
        self.api = environment_api(
            self,
            env,
            self.function_name,
            retain_logs=self.policy.keep_data,
            lambda_alias=self.service.alias,
            encryption_key=self.key,
            placement=self.placement,
        )
        self.smoke_test_role, self.smoke_test_role_output = smoke_test_role(
            self, spec, env_name, "calls the function URL", self.placement
        )
        if self.smoke_test_role is not None:
            self.service.grant_invoke_url(self.smoke_test_role)
        self.url_output = cdk.CfnOutput(self, "FunctionUrl", value=self.service.url)
        self.smoke_test_target_output = self.url_output
        """What the smoke test calls (``stacks/aws/smoke_test_access.py``)."""
        cdk.CfnOutput(self, "FunctionName", value=self.function_name)
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)

    def _alarms(self, period: cdk.Duration) -> ServiceAlarms:
        alarms, service = self.environment_spec.alarms, self.service
        return ServiceAlarms(
            self,
            "Alarms",
            ServiceAlarmsProps(
                name_prefix=self.function_name,
                dashboard_name=self.placement.global_name(self.function_name),  # dashboards are account-global
                metrics=(
                    WatchedMetric("5xx", service.metric_url_5xx(period), alarms.errors_5xx, "5xx answers of the URL."),
                    WatchedMetric(
                        "latency-p99",
                        service.metric_url_latency_p99(period),
                        alarms.model_latency_p99_ms,
                        "p99 request latency through the function URL (ms).",
                    ),
                    WatchedMetric(
                        "errors",
                        service.metric_errors(period),
                        alarms.errors_5xx,
                        "Invocations Lambda itself failed (init, timeout, memory).",
                    ),
                    WatchedMetric(
                        "throttles",
                        service.metric_throttles(period),
                        1,
                        "Requests Lambda refused for want of concurrency (raise provisioned or account concurrency).",
                    ),
                ),
                emails=tuple(alarms.emails),
                evaluation_periods=alarms.evaluation_periods,
                encryption_key=self.key,
            ),
        )

    def _budget(self) -> CostBudget | None:
        return environment_budget(self, self.spec, self.policy.name, self.function_name, self.placement)
