"""A self-managed Pulumi state backend on S3, with an AWS KMS key as its secrets provider.

Pulumi keeps a stack's state (and the lock that stops two updates of one stack at once) as objects
under ``.pulumi/`` of the bucket (https://www.pulumi.com/docs/iac/concepts/state-and-backends/#aws-s3);
secrets in the state (endpoint keys) are encrypted with the key (``awskms://``,
https://www.pulumi.com/docs/iac/concepts/secrets/#aws-key-management-service-kms). The bucket is
versioned (every earlier state stays recoverable), encrypted with the same key, TLS-only and private;
it is retained when the stack is deleted unless told otherwise: it is the record of what Azure holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct

from ._nag import acknowledge, acknowledge_checkov
from ._validate import checks

STATE_PREFIX = ".pulumi"
"""Where Pulumi's S3 backend writes stacks, history, backups and locks."""


@dataclass(frozen=True)
class PulumiBackendProps:
    """Props of :class:`PulumiBackend`."""

    key_alias: str
    """Alias of the state and secrets key (``alias/...``): the secrets provider names the key by it."""
    retain: bool = True
    """Keep the bucket (and the key) when the stack is deleted: losing the state orphans what Azure runs."""


class PulumiBackend(Construct):
    """The state bucket and key; ``login_url`` and ``secrets_provider`` are what ``pulumi`` is given."""

    def __init__(self, scope: Construct, id: str, props: PulumiBackendProps) -> None:
        super().__init__(scope, id)
        checks("PulumiBackendProps").pattern(
            "key_alias", props.key_alias, r"alias/[a-zA-Z0-9/_-]{1,250}", "use alias/<letters, digits, '/', '_', '-'>"
        )
        policy = cdk.RemovalPolicy.RETAIN if props.retain else cdk.RemovalPolicy.DESTROY
        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            alias=props.key_alias,
            description="twinserve: Pulumi state and secrets of the Azure environments",
            removal_policy=policy,
        )
        self.bucket = s3.Bucket(
            self,
            "State",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            versioned=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=policy,
            auto_delete_objects=not props.retain,
        )
        state_access = (
            "The Pulumi state bucket is read and written only by the pipeline's Azure steps, whose calls "
            "CloudTrail records; server access logs would need a second bucket for that one principal."
        )
        acknowledge(self.bucket, "AwsSolutions-S1", state_access)
        acknowledge_checkov(self.bucket, "CKV_AWS_18", state_access)
        stack = cdk.Stack.of(self)
        self.key_alias = props.key_alias
        self.login_url = f"s3://{self.bucket.bucket_name}?region={stack.region}&awssdk=v2"
        """``pulumi login`` argument (the region the bucket is in; Pulumi's AWS SDK v2 client)."""
        self.secrets_provider = f"awskms://{props.key_alias}?region={stack.region}"
        """``--secrets-provider`` of a new stack."""

    def grant_state(self, grantee: iam.IGrantable) -> None:
        """Read and write state and locks (nothing else in the bucket), and use the key for both the
        bucket's encryption and Pulumi's secrets."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            resource_arns=[self.bucket.arn_for_objects(f"{STATE_PREFIX}/*")],
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:ListBucket", "s3:GetBucketLocation"],
            resource_arns=[self.bucket.bucket_arn],
        )
        self.key.grant(grantee, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")
