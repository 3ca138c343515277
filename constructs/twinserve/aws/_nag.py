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
ACCESS_LOG_BUCKET_REASON = "This is the server access log bucket itself; logging it into itself would loop."
"""Why a server access-log bucket has no access logs of its own (cdk-nag S1, checkov CKV_AWS_18)."""


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Accept ``finding`` (e.g. ``AwsSolutions-IAM5[Resource::*]``) on ``scope`` and its children."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{PACK}::{finding}", reason=reason))


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


# ---------------------------------------------------------------- checkov

CHECKOV_METADATA = "checkov"
"""The resource Metadata key checkov reads its skips from (``{"checkov": {"skip": [{"id", "comment"}]}}``)."""


def acknowledge_checkov(target: IConstruct, check_id: str, reason: str) -> None:
    """Accept checkov's ``check_id`` (e.g. ``CKV_AWS_18``) on one resource, with ``reason``: written into
    the resource's CloudFormation Metadata, merged with what is there. ``target`` is the
    ``CfnResource`` or an L2 construct whose default child is one (a bucket, a function, a log group).
    Unlike cdk-nag acknowledgments these do not reach children: each names its exact resource."""
    resource = target if isinstance(target, cdk.CfnResource) else target.node.default_child
    if not isinstance(resource, cdk.CfnResource):
        raise TypeError(f"acknowledge_checkov: {target.node.path} is not a CloudFormation resource")
    if not re.fullmatch(r"CKV_AWS_\d+", check_id) or len(reason) < 40:
        raise ValueError(f"acknowledge_checkov: name one check (CKV_AWS_<n>) and its reason (got {check_id!r})")
    metadata = dict(resource.get_metadata(CHECKOV_METADATA) or {})
    skips = [skip for skip in metadata.get("skip", []) if skip["id"] != check_id]
    metadata["skip"] = sorted([*skips, {"id": check_id, "comment": reason}], key=lambda skip: skip["id"])
    resource.add_metadata(CHECKOV_METADATA, metadata)


def provider_handler(scope: IConstruct, provider_id: str) -> cdk.CfnResource | None:
    """The Lambda function of aws-cdk-lib's singleton custom-resource provider ``provider_id`` of
    ``scope``'s stack (e.g. ``Custom::S3AutoDeleteObjectsCustomResourceProvider``), if the stack has one."""
    provider = cdk.Stack.of(scope).node.try_find_child(provider_id)
    handler = provider.node.try_find_child("Handler") if provider is not None else None
    return handler if isinstance(handler, cdk.CfnResource) else None


CDK_HELPER_FUNCTION_REASONS = {
    "CKV_AWS_115": "aws-cdk-lib's own custom-resource function, invoked only by CloudFormation while the stack "
    "deploys; reserving concurrency for it would take from the account's unreserved pool for no gain.",
    "CKV_AWS_116": "aws-cdk-lib's own custom-resource function: CloudFormation waits for its answer and fails "
    "the deployment when it fails, so there is nothing for a dead-letter queue to keep.",
    "CKV_AWS_117": "aws-cdk-lib's own custom-resource function: it calls AWS APIs only and reaches no resource "
    "inside a VPC; in a VPC it would need a NAT or endpoints to answer CloudFormation.",
    "CKV_AWS_173": "aws-cdk-lib's own custom-resource function: its environment variables are settings, not "
    "secrets; Lambda encrypts them at rest with its service key.",
}


def acknowledge_cdk_provider(scope: IConstruct, provider_id: str) -> None:
    """What cfn-lint and checkov report on aws-cdk-lib's singleton custom-resource provider ``provider_id``
    of ``scope``'s stack (e.g. ``Custom::S3AutoDeleteObjectsCustomResourceProvider``), accepted on its
    function, never globally: cfn-lint's W3005 (the function depends on its role although it already
    references it; harmless and not ours to change) and checkov's Lambda checks 115-117."""
    handler = provider_handler(scope, provider_id)
    if handler is not None:
        handler.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        acknowledge_cdk_helper_function(handler, "CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117")


def acknowledge_cdk_helper_function(function: IConstruct, *checks: str) -> None:
    """Accept checkov's Lambda checks ``checks`` on one of aws-cdk-lib's own helper functions (the
    BucketDeployment handler, the auto-delete and default-security-group providers), not ours to configure."""
    for check_id in checks:
        acknowledge_checkov(function, check_id, CDK_HELPER_FUNCTION_REASONS[check_id])
