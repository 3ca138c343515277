"""The SNS topic every alarm construct notifies: TLS only, encrypted with the given key (which
CloudWatch may use), publishable by this account's alarms of one name prefix, e-mail subscriptions."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs

from constructs import Construct

from ._nag import UNENCRYPTED_TOPIC_REASON, acknowledge, acknowledge_checkov


def alarm_topic(
    scope: Construct,
    *,
    display_name: str,
    alarm_name_prefix: str,
    encryption_key: kms.IKey | None,
    emails: Sequence[str],
) -> sns.Topic:
    """``scope``'s ``Topic``, which the alarms named ``<alarm_name_prefix>-*`` of this account publish to."""
    topic = sns.Topic(scope, "Topic", master_key=encryption_key, enforce_ssl=True, display_name=display_name)
    # enforce_ssl writes a topic policy, which replaces SNS's default one; without an Allow for the
    # CloudWatch service, alarm actions fail ("no resource-based policy allows the SNS:Publish action").
    # Scoped to this account's alarms of this prefix (confused deputy).
    stack = cdk.Stack.of(scope)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            conditions={
                "ArnLike": {
                    "aws:SourceArn": stack.format_arn(
                        service="cloudwatch",
                        resource="alarm",
                        resource_name=f"{alarm_name_prefix}-*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                },
                "StringEquals": {"aws:SourceAccount": stack.account},
            },
        )
    )
    if encryption_key is None:
        acknowledge(topic, "AwsSolutions-SNS2", UNENCRYPTED_TOPIC_REASON)
        acknowledge_checkov(topic, "CKV_AWS_26", UNENCRYPTED_TOPIC_REASON)
    else:
        # CloudWatch publishes to the encrypted topic with the key.
        encryption_key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
    for email in emails:
        topic.add_subscription(subs.EmailSubscription(email))
    return topic
