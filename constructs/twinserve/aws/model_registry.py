"""Model registry: a SageMaker ModelPackageGroup per model, so versions can be registered,
approved and rolled back (approve an older version again)."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct

from ..platform import aws as aws_platform
from ._validate import checks


@dataclass(frozen=True)
class ModelRegistryProps:
    """Props of :class:`ModelRegistry`."""

    group_name: str
    """Model package group name (1-63 letters, digits, '-'); stable, it is referenced by pipelines."""
    description: str = ""
    """Shown in SageMaker Studio and the console (at most 1024 characters)."""
    retain: bool = True
    """Keep the group (and so every registered version) when the stack is deleted. Default on:
    the registry is the record of what was approved."""


class ModelRegistry(Construct):
    """``AWS::SageMaker::ModelPackageGroup`` with helpers for approval events and registration."""

    def __init__(self, scope: Construct, id: str, props: ModelRegistryProps) -> None:
        super().__init__(scope, id)
        check = checks("ModelRegistryProps")
        check.pattern("group_name", props.group_name, aws_platform.NAME_PATTERN, aws_platform.NAME_HINT)
        check.that(
            len(props.description) <= 1024,
            "description",
            f"{len(props.description)} characters",
            "at most 1024 characters",
        )
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Resource",
            model_package_group_name=props.group_name,
            model_package_group_description=props.description or None,
        )
        self.group.apply_removal_policy(cdk.RemovalPolicy.RETAIN if props.retain else cdk.RemovalPolicy.DESTROY)
        self.group_name = props.group_name
        self.group_arn = self.group.attr_model_package_group_arn

    def on_package_state_change(self, id: str, *, approval_status: str | None = None) -> events.Rule:
        """An EventBridge rule for version state changes of this group (e.g. ``Approved``); add targets to it."""
        detail: dict = {"ModelPackageGroupName": [self.group_name]}
        if approval_status:
            detail["ModelApprovalStatus"] = [approval_status]
        return events.Rule(
            self,
            id,
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"], detail_type=["SageMaker Model Package State Change"], detail=detail
            ),
        )

    def grant_register(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow ``grantee`` (e.g. a training pipeline) to register and describe versions of this group."""
        stack = cdk.Stack.of(self)
        packages = stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{self.group_name}/*")
        return iam.Grant.add_to_principal(
            grantee=grantee,
            resource_arns=[self.group_arn, packages],
            actions=[
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
                "sagemaker:ListModelPackages",
                "sagemaker:DescribeModelPackageGroup",
            ],
        )
