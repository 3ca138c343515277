"""The S3 bucket that holds model artifacts and what the endpoint writes (captured data, async output)."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct


@dataclass(frozen=True)
class ModelArtifactsProps:
    model_archive_path: str
    """Local path of a ``model.tar.gz`` (SageMaker's layout), uploaded as a CDK asset."""
    retain: bool = True
    """Keep the bucket and its objects when the stack is deleted (always on in prod)."""


class ModelArtifacts(Construct):
    """A versioned, encrypted, TLS-only bucket plus the model archive as an S3 asset."""

    def __init__(self, scope: Construct, id: str, props: ModelArtifactsProps) -> None:
        super().__init__(scope, id)
        removal = cdk.RemovalPolicy.RETAIN if props.retain else cdk.RemovalPolicy.DESTROY
        self.bucket = s3.Bucket(
            self, "Bucket",
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            removal_policy=removal,
            auto_delete_objects=False,
        )
        self.model_archive = s3_assets.Asset(self, "ModelArchive", path=props.model_archive_path)

    @property
    def model_data_url(self) -> str:
        return self.model_archive.s3_object_url
