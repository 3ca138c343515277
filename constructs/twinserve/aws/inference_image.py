"""The inference image: an ECR repository for it, and where the serving image comes from.

:class:`ImageRepository` is the deployment's own ECR repository for images built outside CDK (scan
on push, immutable tags, lifecycle rule, encrypted with a customer-managed KMS key or AES-256; retained,
or emptied and deleted with the stack). Images
built from a local Docker context are CDK image assets, published to the CDK bootstrap
container-assets repository of the stack's environment.

:class:`InferenceImage` says where a model's image comes from, and grants pull on exactly that
repository: a Docker build context (CDK image asset), a repository + tag, an existing ECR image URI,
or AWS's prebuilt framework images looked up with the ``sagemaker`` SDK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from constructs import Construct

from ._nag import acknowledge_checkov
from ._validate import checks

_REPOSITORY_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
_ECR_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9][a-z0-9._/-]*)(?::(?P<tag>[\w.-]+)|@sha256:[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class ImageRepositoryProps:
    """Props of :class:`ImageRepository`."""

    repository_name: str
    """Explicit, stable name: pipelines and clients push to it by name."""
    retain: bool = True
    """Keep the repository and its images when the stack is deleted (use it in production); otherwise
    deleting the stack deletes its images too (EmptyOnDelete), so it can be deployed again."""
    max_image_count: int = 30
    """Lifecycle rule: keep at most this many images (1..1000)."""
    encryption_key: kms.IKey | None = None
    """Customer-managed key of the images (ECR creates grants on it for the repository, so pulls need no
    KMS permission of their own); ``None``: AES-256. A repository's encryption is fixed when it is created
    (``EncryptionConfiguration`` requires replacement): changing this on an existing repository needs a
    new ``repository_name``."""


class ImageRepository(Construct):
    """An ECR repository with scan on push, immutable tags, a lifecycle rule and encryption at rest."""

    def __init__(self, scope: Construct, id: str, props: ImageRepositoryProps) -> None:
        super().__init__(scope, id)
        check = checks("ImageRepositoryProps")
        check.that(
            bool(_REPOSITORY_NAME.fullmatch(props.repository_name)) and len(props.repository_name) <= 256,
            "repository_name",
            props.repository_name,
            "use lower-case letters, digits, '.', '_', '-' and '/' (ECR naming), at most 256 characters",
        )
        check.range("max_image_count", props.max_image_count, 1, 1000)
        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=props.repository_name,
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.KMS if props.encryption_key else ecr.RepositoryEncryption.AES_256,
            encryption_key=props.encryption_key,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description=f"keep the newest {props.max_image_count} images", max_image_count=props.max_image_count
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN if props.retain else cdk.RemovalPolicy.DESTROY,
            # ECR refuses to delete a repository that still holds images
            # (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DeleteRepository.html).
            empty_on_delete=None if props.retain else True,
        )
        if props.encryption_key is None:
            acknowledge_checkov(
                self.repository,
                "CKV_AWS_136",
                "Images are encrypted at rest with AES-256, as the spec asks (aws.encryption: s3_managed); with "
                "aws.encryption kms the repository is encrypted with the Registry stack's customer-managed key.",
            )


class InferenceImage:
    """Where the serving container comes from. Build one with a ``from_*`` factory."""

    def __init__(
        self,
        image_uri: str,
        repository: ecr.IRepository | None,
        repository_arn: str | None = None,
        asset: ecr_assets.DockerImageAsset | None = None,
    ) -> None:
        self.image_uri = image_uri
        self._repository = repository
        self._repository_arn = repository_arn
        self.asset = asset

    @classmethod
    def from_asset(
        cls,
        scope: Construct,
        id: str,
        directory: str,
        *,
        platform_amd64: bool = True,
        build_args: dict[str, str] | None = None,
    ) -> InferenceImage:
        """Build ``directory`` (which must hold a Dockerfile) as a CDK image asset.

        The image lands in the repository the stack's synthesizer names (by default the CDK bootstrap
        container-assets repository), tagged with the asset's content hash."""
        if not (Path(directory) / "Dockerfile").is_file():
            checks("InferenceImage.from_asset").fail("directory", directory, "it must contain a Dockerfile")
        asset = ecr_assets.DockerImageAsset(
            scope,
            id,
            directory=directory,
            build_args=build_args,
            platform=ecr_assets.Platform.LINUX_AMD64 if platform_amd64 else None,
            exclude=["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/tests"],
        )
        return cls(asset.image_uri, asset.repository, asset=asset)

    @classmethod
    def from_repository(cls, repository: ecr.IRepository, tag: str) -> InferenceImage:
        """An image already pushed to ``repository`` under ``tag``."""
        if not re.fullmatch(r"[\w][\w.-]{0,127}", tag):
            checks("InferenceImage.from_repository").fail(
                "tag", tag, "use a Docker tag (letters, digits, '_', '.', '-')"
            )
        return cls(repository.repository_uri_for_tag(tag), repository)

    @classmethod
    def from_image_uri(cls, image_uri: str) -> InferenceImage:
        """An existing ECR image ``<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`` (or ``@sha256:``)."""
        match = _ECR_URI.match(image_uri)
        if not match:
            checks("InferenceImage.from_image_uri").fail(
                "image_uri",
                image_uri,
                "SageMaker pulls from Amazon ECR: use <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>",
            )
        partition = "aws-cn" if ".amazonaws.com.cn/" in image_uri else "aws"
        arn = f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repo']}"
        return cls(image_uri, None, repository_arn=arn)

    @classmethod
    def from_prebuilt(
        cls, framework: str, version: str, *, region: str, instance_type: str, py_version: str | None = None
    ) -> InferenceImage:
        """AWS's prebuilt inference image of ``framework`` (e.g. 'sklearn', 'pytorch', 'xgboost').

        Resolved at synth time with the ``sagemaker`` SDK's image-URI table (no AWS call), so the
        region must be a literal. The SDK is imported only here: it is slow to import."""
        if cdk.Token.is_unresolved(region) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
            checks("InferenceImage.from_prebuilt").fail("region", region, "give a literal region such as 'eu-west-1'")
        from sagemaker.core import image_uris  # noqa: PLC0415 - lazy: importing the SDK takes seconds

        check = checks("InferenceImage.from_prebuilt")
        try:
            uri = image_uris.retrieve(
                framework,
                region=region,
                version=version,
                py_version=py_version,
                instance_type=instance_type,
                image_scope="inference",
            )
        except FileNotFoundError:  # the SDK keeps one table per framework
            problem = (
                "framework",
                framework,
                "the sagemaker SDK knows no prebuilt image of that name (e.g. 'sklearn', 'pytorch', 'xgboost')",
            )
        except ValueError as exc:
            problem = ("version", version, f"framework {framework!r}: {exc}")
        else:
            return cls.from_image_uri(uri)
        check.fail(*problem)

    def grant_pull(self, grantee: iam.IGrantable, *, describe: bool = False) -> None:
        """Pull access on this image's repository only (plus the account-wide ECR token call);
        ``describe`` adds ``ecr:DescribeImages`` there (to read a tag's digest)."""
        extra = ["ecr:DescribeImages"] if describe else []
        if self._repository is not None:
            self._repository.grant_pull(grantee)
            if extra:
                self._repository.grant(grantee, *extra)
            return
        iam.Grant.add_to_principal(
            grantee=grantee,
            resource_arns=[self._repository_arn],
            actions=["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", *extra],
        )
        iam.Grant.add_to_principal(grantee=grantee, resource_arns=["*"], actions=["ecr:GetAuthorizationToken"])
