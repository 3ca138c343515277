"""The constructs' CloudWatch log groups: encrypted with the deployment's customer-managed key when
there is one.

CloudWatch Logs encrypts with a KMS key only when the key policy lets the regional service principal
``logs.<region>.amazonaws.com`` use it, conditioned on the log group ARN in the encryption context
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html). The
condition names the account's log groups rather than each group: a group's ARN in its own key's
policy would be a circular reference. Without a key, CloudWatch Logs' own server-side encryption
applies and checkov's CKV_AWS_158 is acknowledged on the group."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct

from ._nag import acknowledge_checkov

_MARKER = "CloudWatchLogsMayEncrypt"
UNENCRYPTED_LOGS_REASON = (
    "No customer-managed key was given (encryption: s3_managed): CloudWatch Logs encrypts the log data at rest "
    "with its own keys; with a key (encryption: kms) the group uses it."
)


def log_group(
    scope: Construct,
    id: str,
    *,
    encryption_key: kms.IKey | None,
    retention: logs.RetentionDays,
    removal_policy: cdk.RemovalPolicy,
    log_group_name: str | None = None,
) -> logs.LogGroup:
    """A ``LogGroup`` encrypted with ``encryption_key`` (whose policy then lets CloudWatch Logs use it)."""
    if encryption_key is not None:
        allow_logs(encryption_key)
    group = logs.LogGroup(
        scope,
        id,
        log_group_name=log_group_name,
        retention=retention,
        removal_policy=removal_policy,
        encryption_key=encryption_key,
    )
    if encryption_key is None:
        acknowledge_checkov(group, "CKV_AWS_158", UNENCRYPTED_LOGS_REASON)
    return group


def allow_logs(key: kms.IKey) -> None:
    """Let CloudWatch Logs of ``key``'s stack account and region encrypt and decrypt its log groups'
    data with ``key`` (once per key; an imported key's policy is its owner's to change)."""
    if not isinstance(key, kms.Key) or key.node.try_find_child(_MARKER) is not None:
        return
    Construct(key, _MARKER)  # marks the statement as added
    stack = cdk.Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsMayEncrypt",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],  # in a key policy, "*" is this key
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                    )
                }
            },
        )
    )
