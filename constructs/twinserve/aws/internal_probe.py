"""A function inside a VPC that sends one request to a service only the VPC can reach.

An internal load balancer (``FargateModelService``) has no address outside its VPC, and a caller in
another account or in CodeBuild has no route to it. ``InternalProbe`` is the narrow door: a small
function in the service's subnets that POSTs the caller's body to one fixed URL (``target_url``,
set here, never by the caller) on the paths listed in ``allowed_paths``, and returns the status and
body (``internal_probe_handler/probe.py``). Callers need ``lambda:InvokeFunction`` on it
(:meth:`grant_invoke`): IAM decides who may send, the security group where the probe may send to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct

from ._logs import log_group
from ._nag import acknowledge, acknowledge_checkov
from ._validate import checks

HANDLER_DIR = Path(__file__).resolve().parent / "internal_probe_handler"


PROBE_CHECKOV_REASONS = {
    "CKV_AWS_115": "Called by hand and by the pipeline's smoke test, one request at a time; a reserved limit "
    "would take from the account's unreserved pool for no gain.",
    "CKV_AWS_116": "Invoked synchronously only (the caller gets its answer or error); a dead-letter queue "
    "receives only failed asynchronous invocations, which it never gets.",
    "CKV_AWS_173": "Its environment variables are the internal URL and the allowed paths, no secrets; Lambda "
    "encrypts them at rest with its service key.",
}
"""checkov's Lambda findings on the probe function, acknowledged with these reasons."""


@dataclass(frozen=True)
class InternalProbeProps:
    """Props of :class:`InternalProbe`."""

    function_name: str
    """The function's name (callers invoke it by name)."""
    target_url: str
    """Base URL of the service inside the VPC (``http://internal-...elb.amazonaws.com``)."""
    vpc: ec2.IVpc
    """The service's VPC."""
    target_port: int = 80
    """The only port the probe may connect to (its security group's one egress rule)."""
    vpc_subnets: ec2.SubnetSelection | None = None
    """Subnets of the function; default: the VPC's private subnets."""
    allowed_paths: tuple[str, ...] = ("/invocations",)
    """Paths a caller may POST to (SageMaker's scoring route by default)."""
    timeout: cdk.Duration = cdk.Duration.seconds(70)
    """Longest invocation: the probe waits at most 60 s for the service, then answers."""
    log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS
    """Function log retention."""
    retain_logs: bool = False
    """Keep the log group when the stack is deleted."""
    encryption_key: kms.IKey | None = None
    """Encrypts the function's log group (CloudWatch Logs' own keys without one)."""


class InternalProbe(Construct):
    """Exposes ``function``, ``security_group``, ``log_group``."""

    def __init__(self, scope: Construct, id: str, props: InternalProbeProps) -> None:
        super().__init__(scope, id)
        _check(props)
        removal = cdk.RemovalPolicy.RETAIN if props.retain_logs else cdk.RemovalPolicy.DESTROY
        self.log_group = log_group(
            self, "Logs", encryption_key=props.encryption_key, retention=props.log_retention, removal_policy=removal
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=props.vpc,
            allow_all_outbound=False,
            description=f"{props.function_name}: no ingress; egress to the service port inside the VPC only",
        )
        self.security_group.add_egress_rule(
            ec2.Peer.ipv4(props.vpc.vpc_cidr_block), ec2.Port.tcp(props.target_port), "the service, inside the VPC"
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"twinserve {props.function_name}: a function in the VPC (network interfaces, its logs)",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaVPCAccessExecutionRole")
            ],
        )
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaVPCAccessExecutionRole]",
            "The AWS-managed policy Lambda documents for functions in a VPC: the network-interface actions "
            "(create, describe, delete, assign addresses), which take no narrower resource.",
        )
        self.log_group.grant_write(role)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=props.function_name,
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="probe.handler",
            code=lambda_.Code.from_asset(str(HANDLER_DIR), exclude=["__pycache__", "*.pyc"]),
            timeout=props.timeout,
            memory_size=128,
            role=role,
            log_group=self.log_group,
            vpc=props.vpc,
            vpc_subnets=props.vpc_subnets or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.security_group],
            environment={"TARGET_URL": props.target_url, "ALLOWED_PATHS": ",".join(props.allowed_paths)},
            description=f"twinserve {props.function_name}: one request to the service inside its VPC",
        )
        # aws-cdk-lib's Function depends on its role (and policy) although Role already references it (W3005)
        self.function.node.default_child.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        for check_id, reason in PROBE_CHECKOV_REASONS.items():
            acknowledge_checkov(self.function, check_id, reason)

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """``lambda:InvokeFunction`` on the probe's unqualified ARN: what sending through it takes (not
        ``<arn>:*``, aws-cdk-lib's default, which would also allow versions the probe never publishes)."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["lambda:InvokeFunction"], resource_arns=[self.function.function_arn]
        )


def _check(props: InternalProbeProps) -> None:
    check = checks("InternalProbeProps")
    check.pattern(
        "function_name", props.function_name, r"[a-zA-Z0-9_-]{1,64}", "1-64 letters, digits, '-' and '_' (Lambda)"
    )
    if not cdk.Token.is_unresolved(props.target_url):
        check.that(
            props.target_url.startswith(("http://", "https://")), "target_url", props.target_url, "an http(s) URL"
        )
    check.range("target_port", props.target_port, 1, 65535)
    check.that(bool(props.allowed_paths), "allowed_paths", props.allowed_paths, "at least one path")
    for path in props.allowed_paths:
        check.that(path.startswith("/") and "," not in path, "allowed_paths", path, "paths starting with '/', no ','")
    check.range("timeout", props.timeout.to_seconds(), 5, 900, " s")
