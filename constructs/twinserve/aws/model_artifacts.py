"""Model artifacts: the bucket a deployment keeps its data in, and the model archive it serves.

The bucket holds everything the endpoint and batch jobs write (captured requests for Model Monitor,
async results and failures, batch input and output). It is versioned, encrypted (customer-managed
KMS key or S3-managed keys), TLS-only, blocks public access and logs access to a second bucket.
Model versions (mirroring the Azure ML datastore layout): the archive of every version lives at a
stable key, ``s3://<bucket>/models/<model name>/<version>/model.tar.gz``. The current version's
archive (``model_archive_path``, SageMaker's layout) is copied there at deploy time by a
``BucketDeployment`` that never deletes (no pruning, retained on delete and on a change of
destination), so older versions uploaded by earlier deployments stay where variants pinned to them
read them (``model_version_url``). The bucket is versioned, so even an overwritten key keeps its
earlier bytes as a non-current version. Alternatively an archive already in S3 is referenced
(``model_data_url``); it is the only version then.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment

from constructs import Construct

from ..platform import aws as aws_platform
from ._grants import grant_key_use, grant_objects
from ._nag import (
    ACCESS_LOG_BUCKET_REASON,
    acknowledge,
    acknowledge_cdk_helper_function,
    acknowledge_cdk_provider,
    acknowledge_checkov,
    objects_of,
    render,
)
from ._nag import ack_prefix as _ack_prefix
from ._validate import S3_URI, checks

ARCHIVE_NAME = "model.tar.gz"
MODELS_PREFIX = "models"
_VERSION = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?"
_VERSION_HINT = "use 1-64 letters, digits, '.', '_', '-' (a letter or digit first and last)"
# The upload handler holds the zipped source and the extracted archive in /tmp at the same time.
_LAMBDA_TMP_MIB = (512, 10240)


@dataclass(frozen=True)
class ModelArtifactsProps:
    """Props of :class:`ModelArtifacts`. Set exactly one of ``model_archive_path`` / ``model_data_url``."""

    model_archive_path: str | None = None
    """Local path of a ``.tar.gz`` archive of ``model_version``; copied at deploy time to
    ``models/<model_name>/<model_version>/model.tar.gz`` in the bucket and kept there (never pruned
    or deleted by later deployments). At most about 4.5 GiB (the copy runs in a Lambda function with
    up to 10 GiB of /tmp); reference larger archives with ``model_data_url``."""
    model_data_url: str | None = None
    """An existing ``s3://bucket/key.tar.gz`` of ``model_version``; the serving role is granted read
    on that one object. Other versions cannot be served then (:meth:`ModelArtifacts.model_version_url`)."""
    model_name: str = "model"
    """The model's name: the ``models/<model_name>/`` folder holding its versions (a SageMaker name:
    1-63 letters, digits and '-')."""
    model_version: str = "1"
    """The version ``model_archive_path``/``model_data_url`` holds (the current version)."""
    encryption_key: kms.IKey | None = None
    """Customer-managed key for the bucket; ``None`` means S3-managed keys (SSE-S3)."""
    retain: bool = True
    """Keep both buckets and their objects when the stack is deleted (use it in production); otherwise
    deleting the stack empties and deletes them (a non-empty bucket cannot be deleted), so the
    environment can be destroyed and deployed again."""
    access_log_retention: cdk.Duration = cdk.Duration.days(365)
    """How long server access logs are kept."""
    expiring_prefixes: dict[str, cdk.Duration] = field(default_factory=dict)
    """Key prefixes (e.g. captured requests) whose objects expire after the given time, older versions
    included; model archives are never under one."""


class ModelArtifacts(Construct):
    """A secure artifacts bucket (with an access-log bucket) plus the model archive to serve."""

    def __init__(self, scope: Construct, id: str, props: ModelArtifactsProps) -> None:
        super().__init__(scope, id)
        _check(props)
        self.model_name, self.model_version = props.model_name, props.model_version

        removal = cdk.RemovalPolicy.RETAIN if props.retain else cdk.RemovalPolicy.DESTROY
        self.encryption_key = props.encryption_key
        # Server access logs: SSE-S3 is the only encryption S3 log delivery supports.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=props.access_log_retention, noncurrent_version_expiration=cdk.Duration.days(30)
                )
            ],
            removal_policy=removal,
            auto_delete_objects=not props.retain,
        )
        acknowledge(self.access_logs, "AwsSolutions-S1", ACCESS_LOG_BUCKET_REASON)
        acknowledge_checkov(self.access_logs, "CKV_AWS_18", ACCESS_LOG_BUCKET_REASON)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            encryption=s3.BucketEncryption.KMS if props.encryption_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=props.encryption_key,
            bucket_key_enabled=props.encryption_key is not None,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id=f"expire-{prefix.strip('/')}",
                    prefix=prefix,
                    expiration=after,
                    noncurrent_version_expiration=cdk.Duration.days(1),
                )
                for prefix, after in sorted(props.expiring_prefixes.items())
            ]
            or None,
            removal_policy=removal,
            auto_delete_objects=not props.retain,
        )
        if not props.retain:
            _acknowledge_auto_delete(self)
        self.model_upload: s3_deployment.BucketDeployment | None = None
        """Copies the current version's archive to its key; models serving it must depend on it."""
        if props.model_archive_path is not None:
            archive = Path(props.model_archive_path)
            tmp_mib = _upload_tmp_mib(archive.stat().st_size)
            checks("ModelArtifactsProps").that(
                tmp_mib <= _LAMBDA_TMP_MIB[1],
                "model_archive_path",
                str(archive),
                f"at most about {_LAMBDA_TMP_MIB[1] // 2 // 1024} GiB can be uploaded by the stack "
                "(Lambda /tmp); upload it yourself and set model_data_url",
            )
            # extract=True unpacks the asset's zip - a folder holding exactly one model.tar.gz - under the
            # version's prefix. prune=False and retain_on_delete=True: neither this deployment, nor a later
            # one with another version (a changed destination), nor deleting the stack removes an archive
            # a pinned variant may still serve.
            self.model_upload = s3_deployment.BucketDeployment(
                self,
                "ModelUpload",
                sources=[s3_deployment.Source.asset(str(_upload_folder(archive)))],
                destination_bucket=self.bucket,
                destination_key_prefix=self._version_key(props.model_version).rsplit("/", 1)[0] + "/",
                extract=True,
                prune=False,
                retain_on_delete=True,
                output_object_keys=False,
                server_side_encryption=s3_deployment.ServerSideEncryption.AWS_KMS
                if props.encryption_key
                else s3_deployment.ServerSideEncryption.AES_256,
                server_side_encryption_aws_kms_key_id=props.encryption_key.key_id if props.encryption_key else None,
                ephemeral_storage_size=cdk.Size.mebibytes(tmp_mib) if tmp_mib > _LAMBDA_TMP_MIB[0] else None,
            )
            _acknowledge_upload(self, self.model_upload)
            self.model_data_url = self.model_version_url(props.model_version)
        else:
            self.model_data_url = props.model_data_url

    def _version_key(self, version: str) -> str:
        return f"{MODELS_PREFIX}/{self.model_name}/{version}/{ARCHIVE_NAME}"

    def s3_uri(self, prefix: str) -> str:
        """``s3://<bucket>/<prefix>`` of a location in the artifacts bucket."""
        return f"s3://{self.bucket.bucket_name}/{prefix.strip('/')}/"

    def model_version_url(self, version: str | None = None) -> str:
        """``s3://<bucket>/models/<model_name>/<version>/model.tar.gz``: where ``version`` (default: the
        current one) is served from. A version other than the current one must have been uploaded by an
        earlier deployment of this bucket; with ``model_data_url`` only the current version exists."""
        version = version or self.model_version
        if version == self.model_version and self.model_upload is None:
            return self.model_data_url
        check = checks("ModelArtifacts.model_version_url")
        check.pattern("version", version, _VERSION, _VERSION_HINT)
        check.that(
            self.model_upload is not None,
            "version",
            version,
            f"only {self.model_version!r}: the artifacts were given as model_data_url (one archive, no "
            "versioned layout)",
        )
        return f"s3://{self.bucket.bucket_name}/{self._version_key(version)}"

    def depend_on_model(self, resource: Construct, version: str | None = None) -> None:
        """Make ``resource`` wait until ``version``'s archive (default: the current one) is in place."""
        if self.model_upload is not None and (version or self.model_version) == self.model_version:
            resource.node.add_dependency(self.model_upload)

    def grant_model_read(self, grantee: iam.IGrantable, version: str | None = None) -> None:
        """Read access to one version's archive object only (default: the current version)."""
        version = version or self.model_version
        if self.model_upload is not None:
            self.model_version_url(version)  # validates the version
            grant_objects(grantee, self.bucket, self._version_key(version), "s3:GetObject")
            grant_key_use(grantee, self.encryption_key)
            return
        self.model_version_url(version)  # only the current version exists
        bucket, key = self.model_data_url[len("s3://") :].split("/", 1)
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:GetObject"],
            resource_arns=[
                cdk.Arn.format(
                    cdk.ArnComponents(service="s3", region="", account="", resource=bucket, resource_name=key),
                    cdk.Stack.of(self),
                )
            ],
        )

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


def _check(props: ModelArtifactsProps) -> None:
    check = checks("ModelArtifactsProps")
    check.that(
        (props.model_archive_path is None) != (props.model_data_url is None),
        "model_archive_path/model_data_url",
        (props.model_archive_path, props.model_data_url),
        "set exactly one of them",
    )
    if props.model_archive_path is not None:
        archive = Path(props.model_archive_path)
        check.that(
            archive.name.endswith(".tar.gz"),
            "model_archive_path",
            str(archive),
            "SageMaker needs a 'model.tar.gz' archive",
        )
        check.that(archive.is_file(), "model_archive_path", str(archive), "the file must exist (build it first)")
    if props.model_data_url is not None:
        check.pattern("model_data_url", props.model_data_url, S3_URI, "use s3://bucket/key.tar.gz")
        check.that(
            props.model_data_url.endswith(".tar.gz"),
            "model_data_url",
            props.model_data_url,
            "SageMaker needs a .tar.gz archive",
        )
    check.pattern("model_name", props.model_name, aws_platform.NAME_PATTERN, aws_platform.NAME_HINT)
    check.pattern("model_version", props.model_version, _VERSION, _VERSION_HINT)
    for prefix in props.expiring_prefixes:
        # an expiring prefix above models/ would delete the archives variants serve
        check.that(
            bool(prefix.strip("/")) and not f"{MODELS_PREFIX}/".startswith(prefix.lstrip("/")),
            "expiring_prefixes",
            prefix,
            f"must be a non-empty prefix that does not cover {MODELS_PREFIX}/",
        )


def _upload_tmp_mib(archive_bytes: int) -> int:
    """Lambda /tmp (MiB) the upload needs: the zipped source plus the extracted archive plus slack,
    rounded up to 512 MiB steps so small model changes do not change the template."""
    need = 2 * archive_bytes / 2**20 + 256
    return max(_LAMBDA_TMP_MIB[0], math.ceil(need / 512) * 512)


def _upload_folder(archive: Path) -> Path:
    """A folder holding exactly ``model.tar.gz`` with the archive's bytes: the archive's own folder
    when that is already so (``pack_model_dir`` writes one), else a hard link (or copy) in a staging
    folder named by the archive's digest."""
    if archive.name == ARCHIVE_NAME and [p.name for p in archive.parent.iterdir()] == [ARCHIVE_NAME]:
        return archive.parent
    digest = hashlib.sha256()
    with open(archive, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    folder = Path(tempfile.gettempdir()) / "twinserve-model-uploads" / digest.hexdigest()[:16]
    target = folder / ARCHIVE_NAME
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder.parent / f"{folder.name}.{os.getpid()}.partial"
        try:
            os.link(archive, partial)
        except OSError:
            shutil.copyfile(archive, partial)
        partial.replace(target)  # atomic: a concurrent synth never sees half an archive
    return folder


def _acknowledge_auto_delete(artifacts: ModelArtifacts) -> None:
    """aws-cdk-lib's bucket auto-delete handler (one per stack) depends on its role although Role
    already references it: cfn-lint's W3005, harmless and not ours to change."""
    acknowledge_cdk_provider(artifacts, "Custom::S3AutoDeleteObjectsCustomResourceProvider")


def _acknowledge_upload(artifacts: ModelArtifacts, upload: s3_deployment.BucketDeployment) -> None:
    """cdk-nag findings and a cfn-lint warning of the upload's Lambda function: aws-cdk-lib's
    BucketDeployment handler, one per stack, invoked only by CloudFormation during deployments. Its role
    and grants are built by aws-cdk-lib (not configurable), so each exact finding is acknowledged."""
    stack = cdk.Stack.of(artifacts)
    handler = next(c for c in stack.node.children if c.node.id.startswith("Custom::CDKBucketDeployment"))
    handler.node.default_child.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
    acknowledge_cdk_helper_function(handler, "CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173")
    acknowledge(
        handler,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "aws-cdk-lib's BucketDeployment handler role; the managed policy only lets the function write its own "
        "CloudWatch logs.",
    )
    acknowledge(
        handler,
        "AwsSolutions-L1",
        "aws-cdk-lib's BucketDeployment handler pins the Python runtime its bundled AWS CLI is built for; "
        "it moves with aws-cdk-lib upgrades.",
    )
    copy = (
        "The upload handler (aws-cdk-lib BucketDeployment) reads the model's zipped asset and copies it into "
        "the artifacts bucket with the AWS CLI; aws-cdk-lib grants read on the source and read/write on the "
        "destination bucket with these wildcard actions. It runs only when CloudFormation deploys the stack, "
        "and twinserve never prunes or deletes with it."
    )
    for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:Abort*", "s3:DeleteObject*"):
        acknowledge(handler, f"AwsSolutions-IAM5[Action::{action}]", copy)
    if artifacts.encryption_key is not None:
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            acknowledge(
                handler,
                f"AwsSolutions-IAM5[Action::{action}]",
                "The upload handler writes the archive encrypted with the deployment's key (aws-cdk-lib's "
                "grant on the destination bucket's key).",
            )
    acknowledge(
        handler,
        f"AwsSolutions-IAM5[{objects_of(artifacts.bucket, '*')}]",
        "The upload handler writes under models/<name>/<version>/ of the artifacts bucket; aws-cdk-lib's "
        "BucketDeployment grants on the whole destination bucket.",
    )
    source = upload.handler_role.node.try_find_child("DefaultPolicy")
    for resource in _wildcard_resources(stack, source):
        if "-assets-" in resource:  # the bootstrap asset bucket the CDK CLI uploads the zipped archive to
            acknowledge(
                handler,
                f"AwsSolutions-IAM5[Resource::{resource}]",
                "The upload handler reads the zipped model archive from the CDK bootstrap asset bucket; "
                "the object key is the asset hash, known only after synthesis.",
            )


def _wildcard_resources(stack: cdk.Stack, policy) -> list[str]:
    """The wildcard resources of ``policy`` spelled the way cdk-nag reports them."""
    found = []
    if policy is None:
        return found
    for statement in stack.resolve(policy.document.to_json()).get("Statement", []):
        resources = statement.get("Resource", [])
        for resource in resources if isinstance(resources, list) else [resources]:
            text = render(resource)
            if "*" in text and text not in found:
                found.append(text)
    return found
