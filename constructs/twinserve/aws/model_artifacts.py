"""Model artifacts: the bucket a deployment keeps its data in, and the model archive it serves.

The bucket holds everything the endpoint and batch jobs write (captured requests for Model Monitor,
async results and failures, batch input and output). It is versioned, encrypted (customer-managed
KMS key or S3-managed keys), TLS-only, blocks public access and logs access to a second bucket.
The model archive (``model.tar.gz``, SageMaker's layout) is uploaded as a CDK file asset at deploy
time, or an archive already in S3 is referenced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from ._grants import grant_key_use, grant_objects
from ._nag import ack_prefix as _ack_prefix
from ._nag import acknowledge
from ._validate import S3_URI, fail

_PROPS = "ModelArtifactsProps"


@dataclass(frozen=True)
class ModelArtifactsProps:
    """Props of :class:`ModelArtifacts`. Set exactly one of ``model_archive_path`` / ``model_data_url``."""

    model_archive_path: str | None = None
    """Local path of a ``model.tar.gz``; uploaded as a CDK asset when the stack is deployed."""
    model_data_url: str | None = None
    """An existing ``s3://bucket/key.tar.gz``; the serving role is granted read on that one object."""
    encryption_key: kms.IKey | None = None
    """Customer-managed key for the bucket; ``None`` means S3-managed keys (SSE-S3)."""
    retain: bool = True
    """Keep both buckets and their objects when the stack is deleted (use it in production)."""
    access_log_retention: cdk.Duration = cdk.Duration.days(365)
    """How long server access logs are kept."""


class ModelArtifacts(Construct):
    """A secure artifacts bucket (with an access-log bucket) plus the model archive to serve."""

    def __init__(self, scope: Construct, id: str, props: ModelArtifactsProps) -> None:
        super().__init__(scope, id)
        if (props.model_archive_path is None) == (props.model_data_url is None):
            fail(_PROPS, "model_archive_path/model_data_url",
                 (props.model_archive_path, props.model_data_url), "set exactly one of them")
        if props.model_archive_path is not None:
            archive = Path(props.model_archive_path)
            if not archive.name.endswith(".tar.gz"):
                fail(_PROPS, "model_archive_path", str(archive), "SageMaker needs a 'model.tar.gz' archive")
            if not archive.is_file():
                fail(_PROPS, "model_archive_path", str(archive), "the file must exist (build it first)")
        if props.model_data_url is not None and not re.fullmatch(S3_URI, props.model_data_url or ""):
            fail(_PROPS, "model_data_url", props.model_data_url, "use s3://bucket/key.tar.gz")
        if props.model_data_url is not None and not props.model_data_url.endswith(".tar.gz"):
            fail(_PROPS, "model_data_url", props.model_data_url, "SageMaker needs a .tar.gz archive")

        removal = cdk.RemovalPolicy.RETAIN if props.retain else cdk.RemovalPolicy.DESTROY
        self.encryption_key = props.encryption_key
        # Server access logs: SSE-S3 is the only encryption S3 log delivery supports.
        self.access_logs = s3.Bucket(
            self, "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=props.access_log_retention,
                                              noncurrent_version_expiration=cdk.Duration.days(30))],
            removal_policy=removal,
        )
        acknowledge(self.access_logs, "AwsSolutions-S1",
                    "This is the server access log bucket itself; logging it into itself would loop.")
        self.bucket = s3.Bucket(
            self, "Bucket",
            versioned=True,
            encryption=s3.BucketEncryption.KMS if props.encryption_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=props.encryption_key,
            bucket_key_enabled=props.encryption_key is not None,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
            removal_policy=removal,
        )
        self.model_archive: s3_assets.Asset | None = None
        if props.model_archive_path is not None:
            self.model_archive = s3_assets.Asset(self, "ModelArchive", path=props.model_archive_path)
            self.model_data_url = self.model_archive.s3_object_url
        else:
            self.model_data_url = props.model_data_url

    def s3_uri(self, prefix: str) -> str:
        """``s3://<bucket>/<prefix>`` of a location in the artifacts bucket."""
        return f"s3://{self.bucket.bucket_name}/{prefix.strip('/')}/"

    def grant_model_read(self, grantee: iam.IGrantable) -> None:
        """Read access to the model archive only (not to the whole bootstrap or source bucket)."""
        if self.model_archive is not None:
            asset = self.model_archive
            grant_objects(grantee, asset.bucket, asset.s3_object_key, "s3:GetObject")
            return
        bucket, key = self.model_data_url[len("s3://"):].split("/", 1)
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:GetObject"],
            resource_arns=[cdk.Arn.format(cdk.ArnComponents(service="s3", region="", account="",
                                                            resource=bucket, resource_name=key),
                                          cdk.Stack.of(self))])

    def grant_prefix_read(self, grantee: iam.IGrantable, prefix: str) -> None:
        """``s3:GetObject`` under one prefix of the artifacts bucket (plus use of its key)."""
        grant_objects(grantee, self.bucket, f"{prefix.strip('/')}/*", "s3:GetObject")
        grant_key_use(grantee, self.encryption_key)
        _ack_prefix(grantee, self.bucket, prefix)

    def grant_prefix_write(self, grantee: iam.IGrantable, prefix: str) -> None:
        """``s3:PutObject`` under one prefix of the artifacts bucket (plus use of its key)."""
        grant_objects(grantee, self.bucket, f"{prefix.strip('/')}/*", "s3:PutObject")
        grant_key_use(grantee, self.encryption_key)
        _ack_prefix(grantee, self.bucket, prefix)
