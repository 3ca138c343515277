"""The environment's API front (``aws.api``), the same for every platform that has one."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_

from constructs import Construct
from twinserve.aws.api_front import ApiFront, ApiFrontProps
from twinserve.spec import EnvironmentSpec


def environment_api(
    scope: Construct,
    env: EnvironmentSpec,
    name: str,
    *,
    retain_logs: bool,
    sagemaker_endpoint_name: str | None = None,
    lambda_alias: lambda_.IAlias | None = None,
    load_balancer: elbv2.IApplicationLoadBalancer | None = None,
    vpc: ec2.IVpc | None = None,
    encryption_key: kms.IKey | None = None,
) -> ApiFront | None:
    """``Api`` in ``scope`` when ``aws.api.enabled``, with its URL as the ``ApiUrl`` output; its access
    logs are encrypted with ``encryption_key`` (the environment's key) when there is one."""
    api = env.aws.api
    if not api.enabled:
        return None
    front = ApiFront(
        scope,
        "Api",
        ApiFrontProps(
            api_name=name,
            sagemaker_endpoint_name=sagemaker_endpoint_name,
            lambda_alias=lambda_alias,
            load_balancer=load_balancer,
            vpc=vpc,
            auth=api.auth,
            throttle_rate_per_second=api.throttle_rate_per_second,
            throttle_burst=api.throttle_burst,
            daily_quota=api.daily_quota,
            waf=api.waf,
            retain_logs=retain_logs,
            encryption_key=encryption_key,
        ),
    )
    cdk.CfnOutput(scope, "ApiUrl", value=front.url)
    return front
