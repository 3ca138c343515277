"""The serving image as a Lambda function, without SageMaker: the unchanged server behind the AWS Lambda
Web Adapter (an extension in every CPU image, inert elsewhere; ``twinserve_serving.lambda_settings``).

* One function from the image with the model baked in (Lambda mounts nothing), one request per
  execution environment, memory/timeout/``/tmp`` from the props; its log group with a retention.
* A ``live`` alias carries the traffic: its function URL (``AWS_IAM`` auth: callers sign with SigV4 and
  need ``lambda:InvokeFunctionUrl`` and ``lambda:InvokeFunction``, :meth:`grant_invoke_url`) and its
  provisioned concurrency. A new image publishes a new version; CodeDeploy shifts the alias to it all at
  once, as a canary or linearly, and rolls back when one of ``rollback_alarm_names`` fires.
  https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html,
  https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-configurations.html
* Limits the caller must respect (``twinserve.platform.aws``): 6 MB request and response, 15 min, 10 GB
  image, 10 s init (the adapter's async init lets a slow model load finish on the first request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct

from ..platform import aws as aws_platform
from ._logs import log_group
from ._nag import acknowledge, acknowledge_checkov
from ._validate import checks

ALIAS_NAME = "live"
"""The alias callers reach (its URL) and deployments shift."""


@dataclass(frozen=True)
class LambdaRolloutProps:
    """How a new version reaches the alias."""

    strategy: Literal["all_at_once", "canary", "linear"] = "all_at_once"
    """CodeDeploy traffic shifting of the alias."""
    step_percent: int = 10
    """Canary size or linear step, percent of traffic."""
    step_wait: cdk.Duration = cdk.Duration.minutes(5)
    """Minutes between steps (whole minutes: CodeDeploy's unit)."""
    rollback_alarm_names: tuple[str, ...] = ()
    """Alarms (by name, in this account and region) whose ALARM state rolls the deployment back."""


@dataclass(frozen=True)
class LambdaModelServiceProps:
    """Props of :class:`LambdaModelService`."""

    function_name: str
    """The function's name (also names its log group and alarms)."""
    image_directory: str
    """A build context whose Dockerfile is the serving image with the model baked in."""
    environment: dict[str, str] = field(default_factory=dict)
    """The container's variables, the adapter's included (``twinserve_serving.lambda_settings``)."""
    memory_mb: int = 2048
    """Memory (and CPU) of an execution environment."""
    timeout: cdk.Duration = cdk.Duration.seconds(60)
    """Longest an invocation may run."""
    ephemeral_storage_mb: int = 512
    """Size of /tmp."""
    provisioned_concurrency: int | None = None
    """Pre-initialized environments on the alias."""
    rollout: LambdaRolloutProps = LambdaRolloutProps()
    """Traffic shifting of new versions."""
    log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS
    """Function log retention."""
    retain_logs: bool = False
    """Keep the log group when the stack is deleted."""
    encryption_key: kms.IKey | None = None
    """Customer-managed key of the function's log group (its policy is extended to let CloudWatch Logs
    use it); ``None``: CloudWatch Logs' own encryption."""


SERVING_FUNCTION_CHECKOV_REASONS = {
    "CKV_AWS_115": "The function's concurrency is what serving needs: the alias's provisioned concurrency plus "
    "on-demand environments; a reserved limit would throttle callers and take from the account's pool.",
    "CKV_AWS_116": "Callers invoke it synchronously (its function URL, API Gateway) and get its error; a dead-letter "
    "queue receives only failed asynchronous invocations, which it never gets.",
    "CKV_AWS_117": "It serves the model baked into its image and reaches no resource inside a VPC; in one it would "
    "need interface endpoints or a NAT for its logs and traces.",
    "CKV_AWS_173": "Its environment variables are the container's settings (timeouts, threads, the adapter's port), "
    "never secrets; Lambda encrypts them at rest with its service key.",
}
"""checkov's Lambda findings on the serving function, acknowledged with these reasons."""


class LambdaModelService(Construct):
    """Exposes ``function``, ``alias``, ``url`` (the alias's function URL), ``deployment_group``."""

    def __init__(self, scope: Construct, id: str, props: LambdaModelServiceProps) -> None:
        super().__init__(scope, id)
        _check(props)
        self.props = props
        self.log_group = log_group(
            self,
            "Logs",
            encryption_key=props.encryption_key,
            log_group_name=f"/aws/lambda/{props.function_name}",
            retention=props.log_retention,
            removal_policy=cdk.RemovalPolicy.RETAIN if props.retain_logs else cdk.RemovalPolicy.DESTROY,
        )
        # Its own role with the one log group (the managed AWSLambdaBasicExecutionRole allows every group).
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"twinserve {props.function_name}: runs the serving image",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],  # arn:...:log-group:<name>:* (its streams)
            )
        )
        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            function_name=props.function_name,
            code=lambda_.DockerImageCode.from_image_asset(
                props.image_directory,
                platform=ecr_assets.Platform.LINUX_AMD64,
                exclude=["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/tests"],
            ),
            architecture=lambda_.Architecture.X86_64,
            memory_size=props.memory_mb,
            timeout=props.timeout,
            ephemeral_storage_size=cdk.Size.mebibytes(props.ephemeral_storage_mb),
            environment=props.environment,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            description=f"twinserve {props.function_name}: the serving image through the Lambda Web Adapter",
        )
        for check_id, reason in SERVING_FUNCTION_CHECKOV_REASONS.items():
            acknowledge_checkov(self.function, check_id, reason)
        self.alias = lambda_.Alias(
            self,
            "Alias",
            alias_name=ALIAS_NAME,
            version=self.function.current_version,
            provisioned_concurrent_executions=props.provisioned_concurrency,
        )
        self.function_url = self.alias.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)
        self.url = self.function_url.url
        """The alias's HTTPS URL (SigV4-signed requests, service ``lambda``)."""
        self.deployment_group = codedeploy.LambdaDeploymentGroup(
            self,
            "Deployment",
            alias=self.alias,
            deployment_config=_deployment_config(self, props.rollout),
            alarms=[
                cloudwatch.Alarm.from_alarm_name(self, f"RollbackAlarm{i}", name)
                for i, name in enumerate(props.rollout.rollback_alarm_names)
            ],
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, deployment_in_alarm=bool(props.rollout.rollback_alarm_names)
            ),
        )
        # aws-cdk-lib's Function depends on its role (and policy) although Role already references it (W3005)
        self.function.node.default_child.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        acknowledge(
            self.deployment_group,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSCodeDeployRoleForLambdaLimited]",
            "CodeDeploy's documented service-role policy for Lambda deployments (alias updates, its own "
            "hooks), limited by AWS to what a Lambda deployment does.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing (PutTraceSegments, PutTelemetryRecords) has no resource-level permissions.",
        )

    def grant_invoke_url(self, grantee: iam.IGrantable) -> iam.Grant:
        """What a caller needs to call the function URL: ``lambda:InvokeFunctionUrl`` and, since October
        2025, ``lambda:InvokeFunction`` - aws-cdk-lib grants the latter only with the condition
        ``lambda:InvokedViaFunctionUrl``, so the grantee cannot invoke the function directly."""
        return self.alias.grant_invoke_url(grantee)

    def metric_url_5xx(self, period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        """5xx answers through the function URL (the container's, and Lambda's own errors)."""
        return self._url_metric("Url5xxCount", "Sum", period)

    def metric_url_latency_p99(self, period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        """p99 of the function URL's request latency, in milliseconds."""
        return self._url_metric("UrlRequestLatency", "p99", period)

    def metric_throttles(self, period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        return self.alias.metric_throttles(period=period, statistic="Sum")

    def metric_errors(self, period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        """Invocations that failed in Lambda itself (init, timeout, out of memory)."""
        return self.alias.metric_errors(period=period, statistic="Sum")

    def _url_metric(self, name: str, statistic: str, period: cdk.Duration) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name=name,
            dimensions_map={
                "FunctionName": self.props.function_name,
                "Resource": f"{self.props.function_name}:{ALIAS_NAME}",
            },
            statistic=statistic,
            period=period,
        )


def _deployment_config(scope: Construct, rollout: LambdaRolloutProps) -> codedeploy.ILambdaDeploymentConfig:
    if rollout.strategy == "all_at_once":
        return codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE
    interval = cdk.Duration.minutes(max(1, round(rollout.step_wait.to_minutes())))
    routing = (
        codedeploy.TrafficRouting.time_based_canary(interval=interval, percentage=rollout.step_percent)
        if rollout.strategy == "canary"
        else codedeploy.TrafficRouting.time_based_linear(interval=interval, percentage=rollout.step_percent)
    )
    return codedeploy.LambdaDeploymentConfig(scope, "DeploymentConfig", traffic_routing=routing)


def _check(props: LambdaModelServiceProps) -> None:
    check = checks("LambdaModelServiceProps")
    check.pattern("function_name", props.function_name, r"[a-zA-Z0-9_-]{1,64}", "1-64 letters, digits, '-', '_'")
    check.range("memory_mb", props.memory_mb, *aws_platform.LAMBDA_MEMORY_MB, " MB")
    check.range("timeout", props.timeout.to_seconds(), *aws_platform.LAMBDA_TIMEOUT_SECONDS, " s")
    check.range("ephemeral_storage_mb", props.ephemeral_storage_mb, *aws_platform.LAMBDA_EPHEMERAL_STORAGE_MB, " MB")
    check.range("provisioned_concurrency", props.provisioned_concurrency, 1, 10000)
    check.one_of("rollout.strategy", props.rollout.strategy, ("all_at_once", "canary", "linear"))
    if props.rollout.strategy != "all_at_once":
        check.range("rollout.step_percent", props.rollout.step_percent, 1, 99)
