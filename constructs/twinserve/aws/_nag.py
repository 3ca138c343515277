"""Acknowledging cdk-nag findings (cdk-nag 3 reads CDK's native ``Validations`` acknowledgments).

Every acknowledgment names one exact finding - ``<rule>[<what it applies to>]`` - and the reason.
The constructs acknowledge only findings that are inherent to their design; they do not import
cdk-nag (the acknowledgment is plain CDK metadata)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

PACK = "AwsSolutions"
UNENCRYPTED_TOPIC_REASON = (
    "No customer-managed key was given (encryption: s3_managed); CloudWatch alarms and SageMaker cannot publish "
    "to topics under the AWS-managed aws/sns key. The topic carries notices only (no payloads) and requires TLS.")


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Accept ``finding`` (e.g. ``AwsSolutions-IAM5[Resource::*]``) on ``scope`` and its children."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{PACK}::{finding}", reason=reason))


def objects_of(bucket: s3.IBucket, pattern: str) -> str:
    """How cdk-nag spells a resource ``<bucket ARN>/<pattern>`` in an IAM5 finding."""
    child = bucket.node.default_child
    if child is None:  # an imported bucket: its ARN is a literal
        return f"Resource::{bucket.bucket_arn}/{pattern}"
    stack = cdk.Stack.of(bucket)
    return f"Resource::<{stack.resolve(stack.get_logical_id(child))}.Arn>/{pattern}"


def ack_prefix(grantee, bucket: s3.IBucket, prefix: str) -> None:
    """Accept the object wildcard of a grant scoped to one prefix of ``bucket``."""
    if hasattr(grantee, "node"):  # a construct (role), not a bare principal
        acknowledge(grantee, f"AwsSolutions-IAM5[{objects_of(bucket, prefix.strip('/') + '/*')}]",
                    f"Access is limited to the objects under the {prefix.strip('/')}/ prefix; their keys are chosen "
                    "at run time (per request, capture file or job).")
