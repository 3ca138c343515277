"""Autoscaling of endpoint variants (Application Auto Scaling) that stays valid across endpoint updates.

* instances: target tracking on ``SageMakerVariantInvocationsPerInstance`` between min and max;
* serverless: target tracking of the provisioned concurrency's utilization;
* asynchronous: scale to zero - track the queue (``ApproximateBacklogSizePerInstance``) and step
  from 0 to 1 instance when requests wait with no capacity (``HasBacklogWithoutCapacity``).

SageMaker refuses autoscaling for burstable ``ml.t*`` instances: that is a construct error here,
not a deployment failure later. Scaling uses Application Auto Scaling's service-linked role.

Why there are no ``AWS::ApplicationAutoScaling`` resources: SageMaker refuses an endpoint update that
changes the instance type of, or removes (so also renames), a variant registered as a scalable target
(https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling.html, "Update or delete endpoints
that use automatic scaling"), and CloudFormation cannot deregister first: it deletes an old target only
in its cleanup phase, after the refused update, and a replaced target shares its registration key with
the old one. So every endpoint gets one :class:`EndpointAutoscaling`: a Lambda function
(``autoscaling_handler/reconcile.py``) behind two custom resources, ``Before`` (the endpoint depends on
it) and ``After`` (it depends on the endpoint and runs after every endpoint-config change). Both apply
one rule - a variant is registered exactly when the live endpoint serves it on the instance type the
template asks for, every other registration of the endpoint is removed - so one ``cdk deploy`` changes
instance types, removes or renames variants, and rolls back (docs/aws.md, "Autoscaling and endpoint
updates").

:class:`VariantAutoscaling` checks one variant's props and hands its desired state to its endpoint's
:class:`EndpointAutoscaling` (``EndpointAutoscaling.of(endpoint)``, created on first use). Once a variant
scales, the endpoint keeps its live instance counts across updates (``RetainAllVariantProperties``) while
the template's weights still apply (``DesiredWeight`` is excluded), so a deploy during a scale-out does
not cut capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct

from ..platform import aws as aws_platform
from ..platform.shared import INSTANCE_COUNT
from ._lazy import Deferred
from ._logs import log_group
from ._nag import acknowledge, acknowledge_checkov, nag_text
from ._validate import checks
from .autoscaling_handler.reconcile import SERVERLESS, STEP_SCALING, alarm_name
from .endpoint import SageMakerEndpoint, ServerlessVariant

Mode = Literal["instances", "provisioned_concurrency", "async_backlog"]

HANDLER_DIR = Path(__file__).parent / "autoscaling_handler"
RESOURCE_TYPE = "Custom::EndpointAutoscaling"
FIRST_INSTANCE_POLICY = "backlog-without-capacity"
"""The step policy (and, with the endpoint and variant, the alarm) that adds the first instance."""


@dataclass(frozen=True)
class VariantAutoscalingProps:
    """Props of :class:`VariantAutoscaling`."""

    endpoint: SageMakerEndpoint
    """The endpoint the variant belongs to; its :class:`EndpointAutoscaling` registers the variant."""
    variant_name: str
    """A live variant of ``endpoint`` (shadow variants keep their fixed instance count)."""
    min_capacity: int = 1
    """Instances (or provisioned concurrency); 0 is allowed only for ``async_backlog`` (scale to zero)."""
    max_capacity: int = 2
    """Instances (or provisioned concurrency) at most."""
    mode: Mode = "instances"
    """instances (target tracking on invocations), provisioned_concurrency (serverless) or async_backlog."""
    target_invocations_per_instance: int = 200
    """``instances``: invocations per instance per minute to hold."""
    target_utilization: float = 0.7
    """``provisioned_concurrency``: provisioned concurrency utilization to hold (0.1..1)."""
    target_backlog_per_instance: int = 5
    """``async_backlog``: queued requests per instance to hold."""
    scale_in_cooldown: cdk.Duration = cdk.Duration.seconds(300)
    """Wait after a scale-in before the next one."""
    scale_out_cooldown: cdk.Duration = cdk.Duration.seconds(60)
    """Wait after a scale-out before the next one (also the async 0 -> 1 step's cooldown)."""


class VariantAutoscaling(Construct):
    """A scalable target on one variant plus its scaling policies. It declares no CloudFormation resource:
    the endpoint's :class:`EndpointAutoscaling` registers them before and after every endpoint update."""

    def __init__(self, scope: Construct, id: str, props: VariantAutoscalingProps) -> None:
        super().__init__(scope, id)
        variant = _check(props)
        serverless = isinstance(variant, ServerlessVariant)
        endpoint = props.endpoint
        self.variant_name = props.variant_name
        self.instance_type = SERVERLESS if serverless else variant.instance_type
        """What the variant must be served on for its registration to be allowed (``serverless`` or a type)."""
        self.scalable_dimension = (
            aws_platform.SCALABLE_DIMENSION_PROVISIONED_CONCURRENCY
            if serverless
            else aws_platform.SCALABLE_DIMENSION_INSTANCES
        )
        self.resource_id = f"endpoint/{endpoint.endpoint_name}/variant/{props.variant_name}"
        self.min_capacity, self.max_capacity = props.min_capacity, props.max_capacity
        self.policies = _policies(props)
        """The scaling policies as PutScalingPolicy takes them (plus the alarm of the step policy)."""
        self.autoscaling = EndpointAutoscaling.of(endpoint)
        self.autoscaling.add_variant(self)

    @property
    def desired(self) -> dict[str, Any]:
        """This variant in the reconciler's ``Variants`` property (``reconcile.parse`` reads it)."""
        return {
            "VariantName": self.variant_name,
            "InstanceType": self.instance_type,
            "ScalableDimension": self.scalable_dimension,
            "MinCapacity": self.min_capacity,
            "MaxCapacity": self.max_capacity,
            "Policies": self.policies,
        }


RECONCILER_CHECKOV_REASONS = {
    "CKV_AWS_115": "The reconciler runs only when CloudFormation updates the endpoint (before, after, on rollback); "
    "reserved concurrency would take from the account's unreserved pool for no gain.",
    "CKV_AWS_116": "CloudFormation waits for the reconciler's answer and fails (rolls back) the deployment when it "
    "fails, so a dead-letter queue would keep nothing.",
    "CKV_AWS_117": "The reconciler calls the SageMaker and Application Auto Scaling APIs only; in a VPC it would "
    "need a NAT or interface endpoints to reach them and CloudFormation's response URL.",
}
"""checkov's Lambda findings on the reconciler function, acknowledged with these reasons."""


class EndpointAutoscaling(Construct):
    """The endpoint's autoscaling registrations, reconciled before and after every endpoint update.

    One per endpoint, a child of it: ``EndpointAutoscaling.of(endpoint)`` finds or creates it (a second
    one would deregister the first one's variants). It exists even when no variant scales, so that
    switching scaling off deregisters before the endpoint update that may change instance types.
    Keep the endpoint's construct id stable: a new logical id would create a second reconciler, and
    deleting the old one in cleanup would deregister the endpoint's variants.
    """

    ID = "Autoscaling"

    @classmethod
    def of(cls, endpoint: SageMakerEndpoint) -> EndpointAutoscaling:
        found = endpoint.node.try_find_child(cls.ID)
        return found if isinstance(found, EndpointAutoscaling) else cls(endpoint)

    def __init__(self, endpoint: SageMakerEndpoint) -> None:
        super().__init__(endpoint, self.ID)
        self.endpoint = endpoint
        self.variants: list[VariantAutoscaling] = []
        self.log_group = log_group(
            self,
            "Logs",
            encryption_key=endpoint.encryption_key,
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"twinserve {endpoint.endpoint_name}: registers the endpoint's autoscaling around updates",
        )
        for statement, wildcard_reason in self._statements():
            self.role.add_to_policy(statement)
            for resource in statement.resources if wildcard_reason else ():
                acknowledge(self, f"AwsSolutions-IAM5[Resource::{nag_text(self, resource)}]", wildcard_reason)
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Handler",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="reconcile.handler",
            code=lambda_.Code.from_asset(str(HANDLER_DIR), exclude=["__pycache__", "*.pyc"]),
            timeout=cdk.Duration.minutes(15),
            role=self.role,
            log_group=self.log_group,
            description=f"twinserve {endpoint.endpoint_name}: reconciles autoscaling with the live endpoint",
        )
        # aws-cdk-lib makes the function depend on its role, which Role already references.
        self.function.node.default_child.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        for check_id, reason in RECONCILER_CHECKOV_REASONS.items():
            acknowledge_checkov(self.function, check_id, reason)
        variants = Deferred(lambda: [v.desired for v in self.variants], f"{self.node.path}: Variants")
        common = {"EndpointName": endpoint.endpoint_name, "Variants": variants}
        self.before = cdk.CustomResource(
            self,
            "Before",
            service_token=self.function.function_arn,
            resource_type=RESOURCE_TYPE,
            properties={**common, "Phase": "before"},
            service_timeout=cdk.Duration.minutes(20),
        )
        # The config's name changes with every endpoint-config change, so After runs after every update.
        self.after = cdk.CustomResource(
            self,
            "After",
            service_token=self.function.function_arn,
            resource_type=RESOURCE_TYPE,
            properties={**common, "Phase": "after", "EndpointConfigName": endpoint.config.attr_endpoint_config_name},
            service_timeout=cdk.Duration.minutes(20),
        )
        endpoint.resource.node.add_dependency(self.before)
        self.after.node.add_dependency(endpoint.resource)

    def add_variant(self, variant: VariantAutoscaling) -> None:
        """Scale ``variant`` (called by :class:`VariantAutoscaling`); the endpoint keeps live counts from now on."""
        checks("VariantAutoscalingProps").that(
            variant.variant_name not in {v.variant_name for v in self.variants},
            "variant_name",
            variant.variant_name,
            "scale each variant of an endpoint once",
        )
        self.variants.append(variant)
        # Keep the instance counts autoscaling chose when a new config is deployed (without this every
        # update resets them to InitialInstanceCount); the template's A/B weights still apply.
        resource = self.endpoint.resource
        resource.retain_all_variant_properties = True
        resource.exclude_retained_variant_properties = [
            sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type="DesiredWeight")
        ]

    def _statements(self) -> list[tuple[iam.PolicyStatement, str | None]]:
        """What the handler calls, each statement with the reason for its wildcard resource (cdk-nag
        IAM5, acknowledged here) where the API leaves no narrower one: read the endpoint, (de)register its
        variants and their policies, the step policies' alarms. Application Auto Scaling also checks that
        its caller may use the target service and CloudWatch (DescribeEndpoint(Config),
        UpdateEndpointWeightsAndCapacities, alarms):
        https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_permission_validation.html
        """
        stack = cdk.Stack.of(self)
        name = self.endpoint.endpoint_name

        def arn(service: str, resource: str) -> str:
            return f"arn:{stack.partition}:{service}:{stack.region}:{stack.account}:{resource}"

        alarm_actions = ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"]
        return [
            (
                iam.PolicyStatement(
                    sid="ReadAndResizeTheEndpoint",
                    actions=["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"],
                    resources=[arn("sagemaker", f"endpoint/{name.lower()}")],  # SageMaker ARNs are lower case
                ),
                None,
            ),
            (
                iam.PolicyStatement(
                    sid="ReadEndpointConfigs",
                    actions=["sagemaker:DescribeEndpointConfig"],
                    resources=[arn("sagemaker", "endpoint-config/*")],
                ),
                "Endpoint config names are generated by CloudFormation and change with every config; the "
                "handler reads whichever config the endpoint serves (the old one before an update, the new one "
                "after it, either during a rollback).",
            ),
            (
                iam.PolicyStatement(
                    sid="ListScalingAndAlarms",
                    actions=[
                        "application-autoscaling:DescribeScalableTargets",
                        "application-autoscaling:DescribeScalingPolicies",
                        "cloudwatch:DescribeAlarms",
                    ],
                    resources=["*"],
                ),
                "DescribeScalableTargets, DescribeScalingPolicies and cloudwatch:DescribeAlarms have no "
                "resource-level permissions; the handler lists the targets of its own endpoint with them.",
            ),
            (
                iam.PolicyStatement(
                    sid="ScaleSageMakerVariants",
                    actions=[
                        "application-autoscaling:RegisterScalableTarget",
                        "application-autoscaling:DeregisterScalableTarget",
                        "application-autoscaling:PutScalingPolicy",
                        "application-autoscaling:DeleteScalingPolicy",
                    ],
                    resources=[arn("application-autoscaling", "scalable-target/*")],
                    conditions={
                        "StringEquals": {
                            "application-autoscaling:service-namespace": "sagemaker",
                            "application-autoscaling:scalable-dimension": [
                                aws_platform.SCALABLE_DIMENSION_INSTANCES,
                                aws_platform.SCALABLE_DIMENSION_PROVISIONED_CONCURRENCY,
                            ],
                        }
                    },
                ),
                "Scalable target ARNs hold an id Application Auto Scaling assigns at registration; the "
                "statement is limited to the sagemaker namespace and the variant dimensions by its conditions.",
            ),
            (
                iam.PolicyStatement(
                    sid="TargetTrackingAlarms",
                    actions=alarm_actions,
                    resources=[arn("cloudwatch", "alarm:TargetTracking*")],
                    conditions={"StringEquals": {"aws:CalledViaLast": "application-autoscaling.amazonaws.com"}},
                ),
                "Application Auto Scaling creates and deletes target tracking alarms (TargetTracking-<uuid>...) "
                "in its caller's name; the statement holds only for calls made through it (aws:CalledViaLast).",
            ),
            (
                iam.PolicyStatement(
                    sid="FirstInstanceAlarms",
                    actions=alarm_actions,
                    resources=[arn("cloudwatch", f"alarm:{alarm_name(name, '*', FIRST_INSTANCE_POLICY)}")],
                ),
                "The alarm that adds the first instance of an endpoint scaled to zero is named after the "
                "endpoint, the variant and the policy; variants come and go with the template.",
            ),
            (
                iam.PolicyStatement(
                    sid="AutoscalingServiceLinkedRole",
                    actions=["iam:CreateServiceLinkedRole"],
                    resources=[
                        f"arn:{stack.partition}:iam::{stack.account}:role/{aws_platform.AUTOSCALING_SERVICE_LINKED_ROLE}"
                    ],
                    conditions={"StringLike": {"iam:AWSServiceName": aws_platform.AUTOSCALING_SERVICE}},
                ),
                None,
            ),
        ]


def _policies(props: VariantAutoscalingProps) -> list[dict[str, Any]]:
    """The variant's scaling policies, as PutScalingPolicy takes them."""
    endpoint = props.endpoint
    cooldowns = {
        "ScaleInCooldown": props.scale_in_cooldown.to_seconds(),
        "ScaleOutCooldown": props.scale_out_cooldown.to_seconds(),
    }
    if props.mode == "instances":
        return [
            _target_tracking(
                "invocations-per-instance",
                props.target_invocations_per_instance,
                {"PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}},
                cooldowns,
            )
        ]
    if props.mode == "provisioned_concurrency":
        return [
            _target_tracking(
                "provisioned-concurrency-utilization",
                props.target_utilization,
                {
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"
                    }
                },
                cooldowns,
            )
        ]
    without_capacity = endpoint.metric_has_backlog_without_capacity()
    return [
        _target_tracking(
            "backlog-per-instance",
            props.target_backlog_per_instance,
            {"CustomizedMetricSpecification": _metric(endpoint.metric_backlog_size_per_instance())},
            cooldowns,
        ),
        # Target tracking cannot leave 0 instances (there is no per-instance backlog then): a step policy
        # adds the first instance when requests wait without capacity. The handler puts its alarm, whose
        # action is the policy's ARN.
        {
            "PolicyName": FIRST_INSTANCE_POLICY,
            "PolicyType": STEP_SCALING,
            "StepScalingPolicyConfiguration": {
                "AdjustmentType": "ChangeInCapacity",
                "Cooldown": props.scale_out_cooldown.to_seconds(),
                "MetricAggregationType": "Average",
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
            },
            "Alarm": {
                **_metric(without_capacity),
                "Period": without_capacity.period.to_seconds(),
                "EvaluationPeriods": 2,
                "Threshold": 0.5,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "AlarmDescription": f"{endpoint.endpoint_name}/{props.variant_name}: requests wait and no "
                "instance runs; adds the first instance (twinserve autoscaling)",
            },
        },
    ]


def _target_tracking(name: str, target: float, metric: dict[str, Any], cooldowns: dict[str, float]) -> dict[str, Any]:
    return {
        "PolicyName": name,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {"TargetValue": target, **metric, **cooldowns},
    }


def _metric(metric: cloudwatch.Metric) -> dict[str, Any]:
    """A CloudWatch metric as PutScalingPolicy's customized metric and PutMetricAlarm take it."""
    return {
        "MetricName": metric.metric_name,
        "Namespace": metric.namespace,
        "Dimensions": [{"Name": key, "Value": value} for key, value in (metric.dimensions or {}).items()],
        "Statistic": metric.statistic,
    }


def _check(props: VariantAutoscalingProps):
    """The variant to scale, after checking what Application Auto Scaling and SageMaker accept."""
    check = checks("VariantAutoscalingProps")
    endpoint = props.endpoint
    variant = next((v for v in endpoint.variants if v.name == props.variant_name), None)
    if variant is None:
        check.fail(
            "variant_name",
            props.variant_name,
            f"name a live variant of the endpoint ({', '.join(v.name for v in endpoint.variants)})",
        )
    serverless = isinstance(variant, ServerlessVariant)
    check.that(
        props.mode != "provisioned_concurrency" or serverless,
        "mode",
        props.mode,
        "provisioned concurrency scaling is for serverless variants",
    )
    check.that(
        props.mode == "provisioned_concurrency" or not serverless,
        "mode",
        props.mode,
        "a serverless variant scales itself; use mode 'provisioned_concurrency'",
    )
    check.that(
        not serverless or variant.provisioned_concurrency is not None,
        "variant_name",
        props.variant_name,
        "the serverless variant has no provisioned concurrency to scale; set provisioned_concurrency",
    )
    check.that(
        props.mode != "async_backlog" or endpoint.is_async,
        "mode",
        props.mode,
        "backlog scaling needs an asynchronous endpoint",
    )
    check.that(
        serverless or not aws_platform.is_burstable(variant.instance_type),
        "variant_name",
        f"{props.variant_name} ({getattr(variant, 'instance_type', '')})",
        "SageMaker cannot autoscale burstable ml.t* instances; use e.g. ml.m5.large or drop autoscaling",
    )
    low = 0 if props.mode == "async_backlog" else 1
    upper = aws_platform.SERVERLESS_MAX_CONCURRENCY if serverless else INSTANCE_COUNT[1]
    check.range("min_capacity", props.min_capacity, low, upper)
    check.range("max_capacity", props.max_capacity, max(1, props.min_capacity), upper)
    check.range("target_invocations_per_instance", props.target_invocations_per_instance, 1, 100000)
    check.range("target_utilization", props.target_utilization, 0.1, 1.0)
    check.range("target_backlog_per_instance", props.target_backlog_per_instance, 1, 10000)
    return variant
