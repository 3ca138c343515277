"""Autoscaling of an endpoint variant (Application Auto Scaling).

* instances: target tracking on ``SageMakerVariantInvocationsPerInstance`` between min and max;
* serverless: target tracking of the provisioned concurrency's utilization;
* asynchronous: scale to zero - track the queue (``ApproximateBacklogSizePerInstance``) and step
  from 0 to 1 instance when requests wait with no capacity (``HasBacklogWithoutCapacity``).

SageMaker refuses autoscaling for burstable ``ml.t*`` instances: that is a construct error here,
not a deployment failure later. Scaling uses Application Auto Scaling's service-linked role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_iam as iam

from constructs import Construct

from ..platform import aws as aws_platform
from ..platform.shared import INSTANCE_COUNT
from ._validate import checks
from .endpoint import SageMakerEndpoint, ServerlessVariant

Mode = Literal["instances", "provisioned_concurrency", "async_backlog"]


@dataclass(frozen=True)
class VariantAutoscalingProps:
    """Props of :class:`VariantAutoscaling`."""

    endpoint: SageMakerEndpoint
    """The endpoint the variant belongs to; the scalable target waits for it."""
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
    """A scalable target on one variant plus its scaling policies."""

    def __init__(self, scope: Construct, id: str, props: VariantAutoscalingProps) -> None:
        super().__init__(scope, id)
        endpoint = props.endpoint
        variant = _check(props)
        serverless = isinstance(variant, ServerlessVariant)

        dimension = (
            "sagemaker:variant:DesiredProvisionedConcurrency"
            if serverless
            else "sagemaker:variant:DesiredInstanceCount"
        )
        stack = cdk.Stack.of(self)
        service_linked_role = iam.Role.from_role_arn(
            self,
            "ServiceLinkedRole",
            stack.format_arn(
                service="iam",
                region="",
                resource="role",
                resource_name="aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
            ),
        )
        self.target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{endpoint.endpoint_name}/variant/{props.variant_name}",
            scalable_dimension=dimension,
            min_capacity=props.min_capacity,
            max_capacity=props.max_capacity,
            role=service_linked_role,
        )
        self.target.node.add_dependency(endpoint.resource)

        if props.mode == "instances":
            self.target.scale_to_track_metric(
                "InvocationsPerInstance",
                target_value=props.target_invocations_per_instance,
                predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
                scale_in_cooldown=props.scale_in_cooldown,
                scale_out_cooldown=props.scale_out_cooldown,
            )
        elif props.mode == "provisioned_concurrency":
            self.target.scale_to_track_metric(
                "ProvisionedConcurrencyUtilization",
                target_value=props.target_utilization,
                predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_PROVISIONED_CONCURRENCY_UTILIZATION,
                scale_in_cooldown=props.scale_in_cooldown,
                scale_out_cooldown=props.scale_out_cooldown,
            )
        else:
            self.target.scale_to_track_metric(
                "BacklogPerInstance",
                target_value=props.target_backlog_per_instance,
                custom_metric=endpoint.metric_backlog_size_per_instance(),
                scale_in_cooldown=props.scale_in_cooldown,
                scale_out_cooldown=props.scale_out_cooldown,
            )
            # Target tracking cannot leave 0 instances (there is no per-instance backlog then):
            # a step policy adds the first instance when requests wait without capacity.
            self.target.scale_on_metric(
                "BacklogWithoutCapacity",
                metric=endpoint.metric_has_backlog_without_capacity(),
                scaling_steps=[
                    appscaling.ScalingInterval(upper=0.5, change=0),
                    appscaling.ScalingInterval(lower=0.5, change=1),
                ],
                adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
                cooldown=props.scale_out_cooldown,
                evaluation_periods=2,
                metric_aggregation_type=appscaling.MetricAggregationType.AVERAGE,
            )


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
