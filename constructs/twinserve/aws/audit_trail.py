"""An audit trail of an environment's account: who changed what (management events, SageMaker and
endpoint changes included) and who read or wrote model artifacts (S3 data events on the given buckets).

A CloudTrail trail with log file validation (digest files prove the logs were not altered), all
regions' management events and global service events, delivered to a bucket of its own: versioned,
TLS only, public access blocked, server access logs to the given bucket, encrypted with the given key
(whose policy lets CloudTrail encrypt for this account's trails only), kept for ``retention_days``.
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/encrypting-cloudtrail-log-files-with-aws-kms.html
Where an organization trail already records the account, leave this out (spec ``aws.audit_trail: false``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct

from ._validate import checks


@dataclass(frozen=True)
class AuditTrailProps:
    """Props of :class:`AuditTrail`."""

    trail_name: str
    """The trail's name."""
    data_event_buckets: Sequence[s3.IBucket] = field(default_factory=tuple)
    """Buckets whose object reads and writes are recorded (S3 data events)."""
    encryption_key: kms.IKey | None = None
    """Encrypts the log files (a customer-managed key; ``None``: SSE-S3)."""
    access_logs_bucket: s3.IBucket | None = None
    """Server access logs of the trail's bucket (prefix ``trail/``)."""
    retention_days: int = 365
    """Log files (and their older versions) are deleted after this."""
    retain: bool = True
    """Keep the trail's bucket when the stack is deleted."""


class AuditTrail(Construct):
    """Exposes ``trail`` and ``bucket``."""

    def __init__(self, scope: Construct, id: str, props: AuditTrailProps) -> None:
        super().__init__(scope, id)
        check = checks("AuditTrailProps")
        check.pattern(
            "trail_name", props.trail_name, r"[a-zA-Z0-9][a-zA-Z0-9._-]{2,127}", "3-128 letters, digits, '.', '_', '-'"
        )
        check.range("retention_days", props.retention_days, 1, 3650)
        key = props.encryption_key
        stack = cdk.Stack.of(self)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS if key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=key,
            bucket_key_enabled=key is not None,
            versioned=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=props.access_logs_bucket,
            server_access_logs_prefix="trail/" if props.access_logs_bucket else None,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(props.retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(props.retention_days),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN if props.retain else cdk.RemovalPolicy.DESTROY,
            auto_delete_objects=not props.retain,
        )
        if key is not None:
            trails = f"arn:{stack.partition}:cloudtrail:*:{stack.account}:trail/*"
            # CloudTrail encrypts for this account's trails only (confused deputy)
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="CloudTrailEncryptLogs",
                    actions=["kms:GenerateDataKey*", "kms:DescribeKey"],
                    principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                    resources=["*"],
                    conditions={
                        "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trails},
                        "StringEquals": {"aws:SourceAccount": stack.account},
                    },
                )
            )
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            trail_name=props.trail_name,
            bucket=self.bucket,
            encryption_key=key,
            enable_file_validation=True,
            include_global_service_events=True,
            is_multi_region_trail=True,
            management_events=cloudtrail.ReadWriteType.ALL,
        )
        if props.data_event_buckets:
            self.trail.add_s3_event_selector(
                [cloudtrail.S3EventSelector(bucket=b) for b in props.data_event_buckets],
                include_management_events=False,
                read_write_type=cloudtrail.ReadWriteType.ALL,
            )
