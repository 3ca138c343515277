"""A SageMaker model: the inference image plus the model archive, run by a least-privilege role."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct

from ..platform import aws as aws_platform
from ._grants import grant_key_use, role_policy
from ._nag import acknowledge, acknowledge_checkov, arn_text
from ._validate import checks
from .inference_image import InferenceImage
from .model_artifacts import ModelArtifacts

VPC_NETWORK_INTERFACE_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
)
"""What SageMaker does with the execution role to attach a model's containers to its VPC
(https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html, "CreateModel API: execution role
permissions"); granted only with ``vpc``."""
VPC_NETWORK_INTERFACE_REASON = (
    "SageMaker attaches the model's containers to the VPC with the execution role, creating and deleting "
    "network interfaces and their permissions; it documents these EC2 actions on Resource '*' (the interfaces "
    "do not exist before), granted only to a model with a VPC."
)


@dataclass(frozen=True)
class ModelVpcConfig:
    """Run the model's containers in these subnets with these security groups."""

    subnet_ids: Sequence[str]
    """Private subnets with VPC endpoints or a NAT route (1..16)."""
    security_group_ids: Sequence[str]
    """Security groups of the containers' network interfaces (1..5)."""


@dataclass(frozen=True)
class SageMakerModelProps:
    """Props of :class:`SageMakerModel`."""

    image: InferenceImage
    """The serving image; the role is granted pull on its repository only."""
    artifacts: ModelArtifacts
    """Where the model archive is; the role is granted read on the served version's archive only."""
    model_version: str | None = None
    """The version of ``artifacts``' model to serve (``models/<name>/<version>/model.tar.gz``); default
    the current one. An older version must have been uploaded by an earlier deployment."""
    role: iam.IRole | None = None
    """Execution role shared by several models; by default the model creates its own."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Environment variables of the container (names: letters, digits, '_'; at most 100)."""
    vpc: ModelVpcConfig | None = None
    """Attach the containers to a VPC (private subnets with endpoints or NAT)."""
    network_isolation: bool = False
    """No network access at all for the container (model data is still provided by SageMaker)."""
    encryption_key: kms.IKey | None = None
    """The deployment's KMS key; the role may use it to read/write encrypted artifacts."""


class SageMakerModel(Construct):
    """``AWS::SageMaker::Model`` with its execution role and the grants the container needs."""

    def __init__(self, scope: Construct, id: str, props: SageMakerModelProps) -> None:
        super().__init__(scope, id)
        _check(props)
        env = dict(props.environment)

        self.role: iam.IRole = props.role or iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Runs the twinserve inference container",
        )
        props.image.grant_pull(self.role)
        self.model_version = props.model_version or props.artifacts.model_version
        self.model_data_url = props.artifacts.model_version_url(self.model_version)
        props.artifacts.grant_model_read(self.role, self.model_version)
        grant_key_use(self.role, props.encryption_key)
        if props.vpc is not None:
            # SageMaker creates and removes the container's network interfaces with this role.
            # These EC2 calls do not support resource-level permissions (hence Resource "*").
            iam.Grant.add_to_principal(
                grantee=self.role,
                resource_arns=["*"],
                actions=list(VPC_NETWORK_INTERFACE_ACTIONS),
            )
            policy = self.role.node.try_find_child("DefaultPolicy")
            if policy is not None:
                for check_id in ("CKV_AWS_109", "CKV_AWS_111"):
                    acknowledge_checkov(policy, check_id, VPC_NETWORK_INTERFACE_REASON)
        # Container logs and the container's own metrics.
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resource_arns=[
                cdk.Stack.of(self).format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name="/aws/sagemaker/*",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["cloudwatch:PutMetricData"],
            resource_arns=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}},
        )

        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken, cloudwatch:PutMetricData (limited by a namespace condition) and the "
            "VPC network-interface calls have no resource-level permissions.",
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{arn_text(self, 'logs', 'log-group:/aws/sagemaker/*')}]",
            "SageMaker writes container logs to log groups and streams it names per endpoint/job under "
            "/aws/sagemaker/ (e.g. /aws/sagemaker/Endpoints/<name>, /aws/sagemaker/TransformJobs).",
        )
        self.resource = sagemaker.CfnModel(
            self,
            "Resource",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=props.image.image_uri,
                model_data_url=self.model_data_url,
                environment=env or None,
                mode="SingleModel",
            ),
            enable_network_isolation=props.network_isolation,
            vpc_config=sagemaker.CfnModel.VpcConfigProperty(
                subnets=list(props.vpc.subnet_ids),
                security_group_ids=list(props.vpc.security_group_ids),
            )
            if props.vpc
            else None,
        )
        # The role's grants must exist before SageMaker validates the model (image pull, data read).
        policy = role_policy(self.role)
        if policy is not None:
            self.resource.node.add_dependency(policy)
        # The current version's archive is copied into place during the same deployment.
        props.artifacts.depend_on_model(self.resource, self.model_version)
        self.model_name = self.resource.attr_model_name
        self.vpc_enabled = props.vpc is not None
        self.network_isolation = props.network_isolation
        if not props.network_isolation:
            acknowledge_checkov(
                self.resource,
                "CKV_AWS_370",
                "Network isolation is off here (SageMakerModelProps.network_isolation): the container may reach "
                "the network, e.g. a VPC's resources or a model's start-up installs. twinserve's stacks turn it on "
                "in prod (spec aws.network_isolation); serverless endpoints do not support it.",
            )


def _check(props: SageMakerModelProps) -> None:
    check = checks("SageMakerModelProps")
    env = dict(props.environment)
    most = aws_platform.MAX_ENVIRONMENT_VARIABLES
    check.that(len(env) <= most, "environment", f"{len(env)} variables", f"SageMaker allows at most {most}")
    for key in env:
        check.pattern(
            "environment",
            key,
            aws_platform.ENVIRONMENT_VARIABLE_PATTERN,
            "variable names use letters, digits and '_' (not starting with a digit)",
        )
    if props.vpc is not None:
        check.that(
            bool(props.vpc.subnet_ids) and bool(props.vpc.security_group_ids),
            "vpc",
            props.vpc,
            "give at least one subnet and one security group",
        )
        check.that(
            len(props.vpc.subnet_ids) <= aws_platform.MAX_VPC_SUBNETS
            and len(props.vpc.security_group_ids) <= aws_platform.MAX_VPC_SECURITY_GROUPS,
            "vpc",
            props.vpc,
            f"at most {aws_platform.MAX_VPC_SUBNETS} subnets and {aws_platform.MAX_VPC_SECURITY_GROUPS} "
            "security groups",
        )
