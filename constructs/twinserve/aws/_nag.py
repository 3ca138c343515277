"""Acknowledging cdk-nag findings (cdk-nag 3 reads CDK's native ``Validations`` acknowledgments).

Every acknowledgment names one exact finding - ``<rule>[<what it applies to>]`` - and the reason.
The constructs acknowledge only findings that are inherent to their design; they do not import
cdk-nag (the acknowledgment is plain CDK metadata)."""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

from constructs import IConstruct

PACK = "AwsSolutions"
UNENCRYPTED_TOPIC_REASON = (
    "No customer-managed key was given (encryption: s3_managed); CloudWatch alarms and SageMaker cannot publish "
    "to topics under the AWS-managed aws/sns key. The topic carries notices only (no payloads) and requires TLS."
)


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Accept ``finding`` (e.g. ``AwsSolutions-IAM5[Resource::*]``) on ``scope`` and its children."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{PACK}::{finding}", reason=reason))


def ignore_provider_depends_on(scope: IConstruct, provider_id: str) -> None:
    """cfn-lint's W3005 on aws-cdk-lib's singleton custom-resource provider ``provider_id`` of
    ``scope``'s stack (e.g. ``Custom::S3AutoDeleteObjectsCustomResourceProvider``): its function depends
    on its role although it already references the role; harmless and not ours to change. Set as the
    function's own metadata, never as a global ignore."""
    provider = cdk.Stack.of(scope).node.try_find_child(provider_id)
    handler = provider.node.try_find_child("Handler") if provider is not None else None
    if isinstance(handler, cdk.CfnResource):
        handler.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})


def nag_text(scope: IConstruct, value: str) -> str:
    """How cdk-nag spells ``value`` (a string that may hold tokens) in a finding: literals as they are,
    ``Ref`` as ``<Id>``, ``Fn::GetAtt`` as ``<Id.Attr>``. An ARN of a stack whose account and region are
    known is all literals (``arn:aws:logs:eu-west-1:111111111111:...``); of an environment-agnostic stack
    it holds ``<AWS::Partition>``, ``<AWS::Region>``, ``<AWS::AccountId>``."""
    return render(cdk.Stack.of(scope).resolve(value))


def render(value) -> str:
    """How cdk-nag spells a resolved CloudFormation value (``Ref``, ``Fn::GetAtt``, ``Fn::Join``,
    ``Fn::Sub`` of a string) in a finding."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(render(part) for part in parts)
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        return re.sub(r"\$\{([^}]+)\}", r"<\1>", value["Fn::Sub"])
    raise ValueError(f"cannot spell {value!r} the way cdk-nag does")


def arn_text(scope: IConstruct, service: str, resource: str) -> str:
    """``arn:<partition>:<service>:<region>:<account>:<resource>`` of ``scope``'s stack, spelled as in a finding."""
    stack = cdk.Stack.of(scope)
    return nag_text(scope, f"arn:{stack.partition}:{service}:{stack.region}:{stack.account}:{resource}")


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
        acknowledge(
            grantee,
            f"AwsSolutions-IAM5[{objects_of(bucket, prefix.strip('/') + '/*')}]",
            f"Access is limited to the objects under the {prefix.strip('/')}/ prefix; their keys are chosen "
            "at run time (per request, capture file or job).",
        )
