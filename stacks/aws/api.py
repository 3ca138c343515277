"""The environment's API front (``aws.api``), the same for every platform that has one.

With ``aws.api.domain_name`` the API gets that name in each region (``ApiFront``'s custom domain) and
Route 53 records in ``hosted_zone_id`` point it there: one region, an alias record; several
(``aws.regions``), failover records, the primary ``PRIMARY`` and each other region ``SECONDARY``, each with
a health check on its own API's readiness route (``GET /v1/ping`` on the regional execute-api host, HTTPS,
every 30 s, 3 failures). Route 53 answers with the primary while its check passes, with the secondary
otherwise (a failover name has one primary and one secondary record: the spec allows two regions with a
domain).
https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-types.html
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_route53 as route53

from constructs import Construct
from twinserve.aws.api_front import ApiFront, ApiFrontProps
from twinserve.platform import aws as aws_platform
from twinserve.spec import EnvironmentSpec

from .placement import PRIMARY, RegionPlacement


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
    placement: RegionPlacement = PRIMARY,
) -> ApiFront | None:
    """``Api`` in ``scope`` when ``aws.api.enabled``, with its URL as the ``ApiUrl`` output; its access
    logs are encrypted with ``encryption_key`` (the environment's key) when there is one."""
    api = env.aws.api
    if not api.enabled:
        return None
    zone = (
        route53.HostedZone.from_hosted_zone_attributes(
            scope, "HostedZone", hosted_zone_id=api.hosted_zone_id, zone_name=api.hosted_zone_name
        )
        if api.domain_name
        else None
    )
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
            health_route=api.domain_name is not None,
            domain_name=api.domain_name,
            hosted_zone=zone,
            retain_logs=retain_logs,
            encryption_key=encryption_key,
        ),
    )
    cdk.CfnOutput(scope, "ApiUrl", value=front.url)
    if zone is not None:
        _dns_records(scope, env, front, zone, placement)
        cdk.CfnOutput(scope, "ApiDomainUrl", value=f"https://{api.domain_name}/invocations")
    return front


def _dns_records(
    scope: Construct, env: EnvironmentSpec, front: ApiFront, zone: route53.IHostedZone, placement: RegionPlacement
) -> None:
    """An alias record (one region), or this region's failover record and its health check."""
    domain = front.domain
    alias = route53.CfnRecordSet.AliasTargetProperty(
        dns_name=domain.domain_name_alias_domain_name,
        hosted_zone_id=domain.domain_name_alias_hosted_zone_id,
        evaluate_target_health=False,  # the health check decides, not the API's own (always healthy) alias
    )
    if not env.aws.secondary_regions:
        route53.CfnRecordSet(
            scope,
            "ApiRecord",
            hosted_zone_id=zone.hosted_zone_id,
            name=env.aws.api.domain_name,
            type="A",
            alias_target=alias,
        )
        return
    host, path = front.health_check_target
    check = route53.CfnHealthCheck(
        scope,
        "ApiHealthCheck",
        health_check_config=route53.CfnHealthCheck.HealthCheckConfigProperty(
            type="HTTPS",
            fully_qualified_domain_name=host,
            resource_path=path,
            port=443,
            enable_sni=True,
            request_interval=aws_platform.ROUTE53_HEALTH_CHECK_INTERVAL_SECONDS,
            failure_threshold=aws_platform.ROUTE53_HEALTH_CHECK_FAILURE_THRESHOLD,
        ),
        health_check_tags=[
            route53.CfnHealthCheck.HealthCheckTagProperty(key="Name", value=f"{front.props.api_name}-{host}")
        ],
    )
    region = cdk.Stack.of(scope).region
    route53.CfnRecordSet(
        scope,
        "ApiFailoverRecord",
        hosted_zone_id=zone.hosted_zone_id,
        name=env.aws.api.domain_name,
        type="A",
        alias_target=alias,
        failover="PRIMARY" if placement.primary else "SECONDARY",
        set_identifier=f"{front.props.api_name}-{region}",
        health_check_id=check.attr_health_check_id,
    )
