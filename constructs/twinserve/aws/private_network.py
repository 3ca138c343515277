"""A private network for serving without internet: a VPC of isolated subnets and the VPC endpoints
the serving needs to reach AWS APIs.

* Two zones of ``PRIVATE_ISOLATED`` subnets (no internet or NAT gateway), the zones resolved at deploy
  time (``Fn::GetAZs``: no context lookup, so a pipeline's synth needs no credentials of the target
  account); flow logs of all traffic to a log group; the default security group without rules.
* Interface endpoints with private DNS for ``interface_services`` (default: SageMaker API and runtime,
  ECR api and dkr, CloudWatch Logs, STS, KMS), reachable on 443 from the VPC's CIDR only, and the S3
  gateway endpoint (model archives, data capture, ECR layers).
* ``security_group``: for the workload's network interfaces (SageMaker containers); no ingress, egress
  on 443 only, where the subnets' routes lead nowhere but the endpoints (no internet, no NAT).

https://docs.aws.amazon.com/sagemaker/latest/dg/host-vpc.html,
https://docs.aws.amazon.com/sagemaker/latest/dg/interface-vpc-endpoint.html
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct, DependencyGroup

from ._logs import log_group
from ._nag import acknowledge, acknowledge_cdk_provider
from ._validate import checks

DEFAULT_INTERFACE_SERVICES = (
    "sagemaker.api",
    "sagemaker.runtime",
    "ecr.api",
    "ecr.dkr",
    "logs",
    "sts",
    "kms",
)
"""Endpoint service names (``com.amazonaws.<region>.<name>``) a private SageMaker serving uses."""
_OVER_PATH_NAMES = 101
"""Tag priority above the ``Name`` tags aws-cdk-lib's Vpc sets to construct paths (default 100)."""
_VPC_CIDR_ONLY = "Ingress is the VPC's own CIDR (HTTPS to the endpoints), never 0.0.0.0/0."


@dataclass(frozen=True)
class PrivateNetworkProps:
    """Props of :class:`PrivateNetwork`."""

    name: str
    """Names the security groups' descriptions (the serving's name)."""
    cidr: str = "10.50.0.0/16"
    """The VPC's address range, /16../21 (a /22 subnet per zone is taken from it)."""
    interface_services: tuple[str, ...] = DEFAULT_INTERFACE_SERVICES
    """Interface endpoints to create (``com.amazonaws.<region>.<name>``)."""
    log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS
    """Flow log retention."""
    retain_logs: bool = False
    """Keep the flow logs when the stack is deleted."""
    encryption_key: kms.IKey | None = None
    """Encrypts the flow logs (CloudWatch Logs' own keys without one)."""


class PrivateNetwork(Construct):
    """Exposes ``vpc``, ``subnets`` (selected private subnets), ``security_group``, ``endpoints``
    (service name -> interface endpoint), ``s3_endpoint``, ``flow_logs``, and ``ready``: the endpoints,
    for workloads to depend on (a SageMaker endpoint created before them cannot fetch its model)."""

    def __init__(self, scope: Construct, id: str, props: PrivateNetworkProps) -> None:
        super().__init__(scope, id)
        _check(props)
        removal = cdk.RemovalPolicy.RETAIN if props.retain_logs else cdk.RemovalPolicy.DESTROY
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            vpc_name=props.name,
            ip_addresses=ec2.IpAddresses.cidr(props.cidr),
            availability_zones=[cdk.Fn.select(i, cdk.Fn.get_azs()) for i in range(2)],
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22)
            ],
            restrict_default_security_group=True,
        )
        acknowledge_cdk_provider(self, "Custom::VpcRestrictDefaultSGCustomResourceProvider")
        self.subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.flow_logs = log_group(
            self, "FlowLogs", encryption_key=props.encryption_key, retention=props.log_retention, removal_policy=removal
        )
        flow_log = self.vpc.add_flow_log(
            "FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_logs)
        )
        # Name tags from the serving's name, not CDK's construct path: the same stack deployed by
        # `cdk deploy` and by the pipeline (a deeper path) must not differ, or update, by its tags.
        for index, subnet in enumerate(self.vpc.isolated_subnets, start=1):
            cdk.Tags.of(subnet).add("Name", f"{props.name}-private-{index}", priority=_OVER_PATH_NAMES)
        cdk.Tags.of(flow_log).add("Name", f"{props.name}-flow-log", priority=_OVER_PATH_NAMES)
        self.s3_endpoint = self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        endpoint_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description=f"{props.name}: VPC interface endpoints, HTTPS from inside the VPC",
        )
        endpoint_group.add_ingress_rule(ec2.Peer.ipv4(self.vpc.vpc_cidr_block), ec2.Port.tcp(443), "HTTPS from the VPC")
        acknowledge(endpoint_group, "AwsSolutions-EC23", _VPC_CIDR_ONLY)
        self.endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        for service in props.interface_services:
            self.endpoints[service] = self.vpc.add_interface_endpoint(
                _construct_id(service),
                service=ec2.InterfaceVpcEndpointAwsService(service),
                private_dns_enabled=True,
                security_groups=[endpoint_group],
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            )
        self.ready = DependencyGroup(self.s3_endpoint, *self.endpoints.values())
        self.security_group = ec2.SecurityGroup(
            self,
            "WorkloadSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description=f"{props.name}: serving containers, HTTPS to the VPC endpoints and S3 only",
        )
        # HTTPS to any address, because S3's addresses (the gateway endpoint's prefix list) cannot be named
        # without a lookup: the subnets' routes reach only the VPC endpoints and the S3 gateway endpoint.
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS: the routes reach only the VPC and S3 endpoints"
        )


def _construct_id(service: str) -> str:
    """``sagemaker.runtime`` -> ``SagemakerRuntime`` (stable logical ids per service)."""
    return "".join(part.capitalize() for part in service.replace("-", ".").split("."))


def _check(props: PrivateNetworkProps) -> None:
    check = checks("PrivateNetworkProps")
    check.pattern(
        "cidr",
        props.cidr,
        r"[0-9]{1,3}(\.[0-9]{1,3}){3}/(1[6-9]|2[01])",
        "an IPv4 CIDR of /16../21 (a /22 subnet per zone)",
    )
    check.that(bool(props.interface_services), "interface_services", props.interface_services, "at least one")
    check.unique("interface_services", list(props.interface_services), "services")
