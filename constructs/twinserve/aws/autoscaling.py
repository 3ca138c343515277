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

from ._validate import check_range, fail, is_burstable
from .endpoint import SageMakerEndpoint, ServerlessVariant

_PROPS = "VariantAutoscalingProps"
Mode = Literal["instances", "provisioned_concurrency", "async_backlog"]


@dataclass(frozen=True)
class VariantAutoscalingProps:
    """Props of :class:`VariantAutoscaling`."""

    endpoint: SageMakerEndpoint
    variant_name: str
    min_capacity: int = 1
    """Instances (or provisioned concurrency); 0 is allowed only for ``async_backlog`` (scale to zero)."""
    max_capacity: int = 2
    mode: Mode = "instances"
    target_invocations_per_instance: int = 200
    """``instances``: invocations per instance per minute to hold."""
    target_utilization: float = 0.7
    """``provisioned_concurrency``: provisioned concurrency utilization to hold (0.1..1)."""
    target_backlog_per_instance: int = 5
    """``async_backlog``: queued requests per instance to hold."""
    scale_in_cooldown: cdk.Duration = cdk.Duration.seconds(300)
    scale_out_cooldown: cdk.Duration = cdk.Duration.seconds(60)


class VariantAutoscaling(Construct):
    """A scalable target on one variant plus its scaling policies."""

    def __init__(self, scope: Construct, id: str, props: VariantAutoscalingProps) -> None:
        super().__init__(scope, id)
        endpoint = props.endpoint
        variant = next((v for v in endpoint.variants if v.name == props.variant_name), None)
        if variant is None:
            fail(_PROPS, "variant_name", props.variant_name,
                 f"name a live variant of the endpoint ({', '.join(v.name for v in endpoint.variants)})")
        serverless = isinstance(variant, ServerlessVariant)
        if props.mode == "provisioned_concurrency" and not serverless:
            fail(_PROPS, "mode", props.mode, "provisioned concurrency scaling is for serverless variants")
        if props.mode != "provisioned_concurrency" and serverless:
            fail(_PROPS, "mode", props.mode, "a serverless variant scales itself; use mode 'provisioned_concurrency'")
        if serverless and variant.provisioned_concurrency is None:
            fail(_PROPS, "variant_name", props.variant_name,
                 "the serverless variant has no provisioned concurrency to scale; set provisioned_concurrency")
        if props.mode == "async_backlog" and not endpoint.is_async:
            fail(_PROPS, "mode", props.mode, "backlog scaling needs an asynchronous endpoint")
        if not serverless and is_burstable(variant.instance_type):
            fail(_PROPS, "variant_name", f"{props.variant_name} ({variant.instance_type})",
                 "SageMaker cannot autoscale burstable ml.t* instances; use e.g. ml.m5.large or drop autoscaling")
        low = 0 if props.mode == "async_backlog" else 1
        upper = 200 if serverless else 100
        check_range(_PROPS, "min_capacity", props.min_capacity, low, upper)
        check_range(_PROPS, "max_capacity", props.max_capacity, max(1, props.min_capacity), upper)
        check_range(_PROPS, "target_invocations_per_instance", props.target_invocations_per_instance, 1, 100000)
        check_range(_PROPS, "target_utilization", props.target_utilization, 0.1, 1.0)
        check_range(_PROPS, "target_backlog_per_instance", props.target_backlog_per_instance, 1, 10000)

        dimension = ("sagemaker:variant:DesiredProvisionedConcurrency" if serverless
                     else "sagemaker:variant:DesiredInstanceCount")
        stack = cdk.Stack.of(self)
        service_linked_role = iam.Role.from_role_arn(
            self, "ServiceLinkedRole", stack.format_arn(
                service="iam", region="", resource="role",
                resource_name="aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                              "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"))
        self.target = appscaling.ScalableTarget(
            self, "Target",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{endpoint.endpoint_name}/variant/{props.variant_name}",
            scalable_dimension=dimension,
            min_capacity=props.min_capacity, max_capacity=props.max_capacity,
            role=service_linked_role,
        )
        self.target.node.add_dependency(endpoint.resource)

        if props.mode == "instances":
            self.target.scale_to_track_metric(
                "InvocationsPerInstance",
                target_value=props.target_invocations_per_instance,
                predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
                scale_in_cooldown=props.scale_in_cooldown, scale_out_cooldown=props.scale_out_cooldown)
        elif props.mode == "provisioned_concurrency":
            self.target.scale_to_track_metric(
                "ProvisionedConcurrencyUtilization",
                target_value=props.target_utilization,
                predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_PROVISIONED_CONCURRENCY_UTILIZATION,
                scale_in_cooldown=props.scale_in_cooldown, scale_out_cooldown=props.scale_out_cooldown)
        else:
            self.target.scale_to_track_metric(
                "BacklogPerInstance",
                target_value=props.target_backlog_per_instance,
                custom_metric=endpoint.metric_backlog_size_per_instance(),
                scale_in_cooldown=props.scale_in_cooldown, scale_out_cooldown=props.scale_out_cooldown)
            # Target tracking cannot leave 0 instances (there is no per-instance backlog then):
            # a step policy adds the first instance when requests wait without capacity.
            self.target.scale_on_metric(
                "BacklogWithoutCapacity",
                metric=endpoint.metric_has_backlog_without_capacity(),
                scaling_steps=[appscaling.ScalingInterval(upper=0.5, change=0),
                               appscaling.ScalingInterval(lower=0.5, change=1)],
                adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
                cooldown=props.scale_out_cooldown,
                evaluation_periods=2,
                metric_aggregation_type=appscaling.MetricAggregationType.AVERAGE,
            )
