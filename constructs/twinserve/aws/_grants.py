"""Least-privilege grants with explicit actions (CDK's ``grant_read``/``grant_put`` add wildcard
actions such as ``s3:GetObject*``/``s3:List*`` and ``kms:ReEncrypt*`` the serving role never needs)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn

KEY_USE = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")


def grant_objects(grantee: iam.IGrantable, bucket: s3.IBucket, pattern: str, *actions: str) -> iam.Grant:
    """``actions`` on the objects matching ``pattern`` (e.g. ``async/output/*``) of ``bucket``."""
    return iam.Grant.add_to_principal(
        grantee=grantee, actions=list(actions), resource_arns=[bucket.arn_for_objects(pattern)]
    )


def grant_key_use(grantee: iam.IGrantable, key: kms.IKey | None) -> None:
    if key is not None:
        key.grant(grantee, *KEY_USE)


def role_policy(role: iam.IRole) -> iam.Policy | None:
    """The default policy holding a role's grants (what a resource must wait for), if we own the role."""
    return role.node.try_find_child("DefaultPolicy") if isinstance(role, iam.Role) else None


def trusted_by_own_state_machines(machine: sfn.StateMachine) -> None:
    """Only this account's state machines may assume ``machine``'s role (confused deputy:
    https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html)."""
    stack = cdk.Stack.of(machine)
    machine.role.node.default_child.add_property_override(
        "AssumeRolePolicyDocument.Statement.0.Condition",
        {
            "ArnLike": {
                "aws:SourceArn": stack.format_arn(
                    service="states",
                    resource="stateMachine",
                    resource_name="*",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            },
            "StringEquals": {"aws:SourceAccount": stack.account},
        },
    )
