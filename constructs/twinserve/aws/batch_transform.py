"""Batch transform with the same SageMaker model (and so the same container) as the endpoint.

Mechanism: a Step Functions state machine whose one task is ``SageMakerCreateTransformJob`` run
synchronously (``.sync``): every run is an auditable execution with its input, its outcome, retries
and the job's failure reason, it can be started by hand, by a schedule or by an S3 event, and it
needs no code of ours (no Lambda to patch). The job reads every object under ``<prefix>/input/`` of
the artifacts bucket and writes ``<prefix>/output/<execution name>/``. The execution name becomes the
transform job name, so start executions with a name SageMaker accepts (letters, digits, '-').
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from constructs import Construct

from ..platform import aws as aws_platform
from ..platform.shared import INSTANCE_COUNT
from ._grants import grant_key_use, grant_objects, trusted_by_own_state_machines
from ._logs import log_group
from ._nag import ack_prefix, acknowledge, arn_text
from ._validate import checks
from .sagemaker_model import SageMakerModel


@dataclass(frozen=True)
class BatchTransformProps:
    """Props of :class:`BatchTransform`."""

    model: SageMakerModel
    """The model the endpoint serves; its execution role reads the input and writes the output."""
    bucket: s3.IBucket
    """Holds ``<prefix>/input/`` (read) and ``<prefix>/output/`` (written)."""
    prefix: str = "batch"
    """The batch folder of ``bucket`` (lower-case letters, digits, '/', '_', '-')."""
    instance_type: str = "ml.m5.large"
    """SageMaker instance type of the transform job."""
    instance_count: int = 1
    """Instances of the transform job (1..100)."""
    strategy: Literal["SINGLE_RECORD", "MULTI_RECORD"] = "MULTI_RECORD"
    """One record per request, or as many as fit into ``max_payload_mb``."""
    max_payload_mb: int = 6
    """Largest request body sent to the container."""
    max_concurrent_transforms: int = 2
    """Concurrent requests per instance."""
    """max_concurrent_transforms x max_payload_mb must stay <= 100 (SageMaker)."""
    content_type: str = "application/json"
    """Content type of the records sent to the container, and of its answers."""
    split_type: Literal["NONE", "LINE", "RECORD_IO", "TF_RECORD"] = "LINE"
    """How input files are split into records (LINE: one request per line, batched by MULTI_RECORD)."""
    invocation_timeout: cdk.Duration = cdk.Duration.minutes(10)
    """How long one request to the container may take (1 s .. 1 h)."""
    encryption_key: kms.IKey | None = None
    """Encrypts the job's output and its volumes (not on NVMe instance-storage types, which are
    hardware-encrypted and for which SageMaker refuses a volume key); the role may use it."""
    timeout: cdk.Duration = cdk.Duration.hours(6)
    """Longest a run may take before Step Functions fails it."""
    retain_logs: bool = False
    """Keep the state machine's log group when the stack is deleted."""


class BatchTransform(Construct):
    """A state machine that runs one SageMaker transform job per execution."""

    def __init__(self, scope: Construct, id: str, props: BatchTransformProps) -> None:
        super().__init__(scope, id)
        _check(props)

        base = props.prefix.strip("/")
        self.input_uri = f"s3://{props.bucket.bucket_name}/{base}/input/"
        self.output_uri = f"s3://{props.bucket.bucket_name}/{base}/output/"
        role = props.model.role
        grant_objects(role, props.bucket, f"{base}/input/*", "s3:GetObject")
        grant_objects(role, props.bucket, f"{base}/output/*", "s3:PutObject")
        iam.Grant.add_to_principal(
            grantee=role,
            actions=["s3:ListBucket"],
            resource_arns=[props.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{base}/input/*"]}},
        )
        grant_key_use(role, props.encryption_key)
        ack_prefix(role, props.bucket, f"{base}/input")
        ack_prefix(role, props.bucket, f"{base}/output")

        family_size = props.instance_type[len("ml.") :]
        volume_key = None if aws_platform.has_instance_storage(props.instance_type) else props.encryption_key
        transform = tasks.SageMakerCreateTransformJob(
            self,
            "Transform",
            state_name="RunTransformJob",
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            transform_job_name=sfn.JsonPath.string_at("$$.Execution.Name"),
            model_name=props.model.model_name,
            role=role,
            batch_strategy=tasks.BatchStrategy(props.strategy),
            max_payload=cdk.Size.mebibytes(props.max_payload_mb),
            max_concurrent_transforms=props.max_concurrent_transforms,
            model_client_options=tasks.ModelClientOptions(
                invocations_max_retries=1, invocations_timeout=props.invocation_timeout
            ),
            transform_input=tasks.TransformInput(
                transform_data_source=tasks.TransformDataSource(
                    s3_data_source=tasks.TransformS3DataSource(
                        s3_uri=self.input_uri, s3_data_type=tasks.S3DataType.S3_PREFIX
                    )
                ),
                content_type=props.content_type,
                split_type=tasks.SplitType(props.split_type),
            ),
            transform_output=tasks.TransformOutput(
                s3_output_path=sfn.JsonPath.format(self.output_uri + "{}", sfn.JsonPath.string_at("$$.Execution.Name")),
                assemble_with=tasks.AssembleWith.LINE,
                accept=props.content_type,
                encryption_key=props.encryption_key,
            ),
            transform_resources=tasks.TransformResources(
                instance_count=props.instance_count,
                instance_type=ec2.InstanceType(family_size),
                volume_encryption_key=volume_key,
            ),
            result_selector={
                "TransformJobName.$": "$.TransformJobName",
                "TransformJobStatus.$": "$.TransformJobStatus",
                "TransformOutput.$": "$.TransformOutput",
            },
        )
        transform.add_retry(
            errors=["SageMaker.AmazonSageMakerException"],
            max_attempts=2,
            interval=cdk.Duration.seconds(30),
            backoff_rate=2,
        )
        self.log_group = log_group(
            self,
            "Logs",
            encryption_key=props.encryption_key,
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=cdk.RemovalPolicy.RETAIN if props.retain_logs else cdk.RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(transform),
            timeout=props.timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        trusted_by_own_state_machines(self.state_machine)

        if volume_key is not None:
            # SageMaker creates a grant on the volume key for the job's instances, in the name of the
            # principal that calls CreateTransformJob: the state machine's role. Only for AWS resources.
            self.state_machine.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["kms:CreateGrant"],
                    resources=[volume_key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                )
            )
            self.state_machine.add_to_role_policy(
                iam.PolicyStatement(actions=["kms:DescribeKey"], resources=[volume_key.key_arn])
            )

        # CDK's StateMachine depends on its role and on the role's policy; the role is also referenced
        # by GetAtt, so cfn-lint flags that DependsOn as redundant (W3005). Harmless; not ours to change.
        self.state_machine.node.default_child.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing and CloudWatch Logs delivery actions have no resource-level permissions "
            "(added by Step Functions for tracing and logging).",
        )
        acknowledge(
            self.state_machine,
            f"AwsSolutions-IAM5[Resource::{arn_text(self, 'sagemaker', 'transform-job/*')}]",
            "Each run creates a transform job named after its execution, so the job name is only known at "
            "run time; the actions are limited to Create/Describe/Stop/tag of transform jobs.",
        )

    def grant_start(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow ``grantee`` to start a batch run."""
        return self.state_machine.grant_start_execution(grantee)


def _check(props: BatchTransformProps) -> None:
    check = checks("BatchTransformProps")
    check.pattern(
        "instance_type", props.instance_type, aws_platform.INSTANCE_TYPE_PATTERN, aws_platform.INSTANCE_TYPE_HINT
    )
    check.range("instance_count", props.instance_count, *INSTANCE_COUNT)
    check.range("max_payload_mb", props.max_payload_mb, 0, aws_platform.BATCH_MAX_PAYLOAD_MB)
    check.range("max_concurrent_transforms", props.max_concurrent_transforms, 1, aws_platform.BATCH_PAYLOAD_BUDGET_MB)
    budget = aws_platform.BATCH_PAYLOAD_BUDGET_MB
    check.that(
        props.max_concurrent_transforms * props.max_payload_mb <= budget,
        "max_payload_mb",
        props.max_payload_mb,
        f"max_concurrent_transforms x max_payload_mb must be <= {budget} ({props.max_concurrent_transforms} x "
        f"{props.max_payload_mb})",
    )
    check.one_of("split_type", props.split_type, ("NONE", "LINE", "RECORD_IO", "TF_RECORD"))
    check.one_of("strategy", props.strategy, ("SINGLE_RECORD", "MULTI_RECORD"))
    check.pattern(
        "prefix", props.prefix.strip("/"), r"[a-z0-9][a-z0-9/_-]*", "use lower-case letters, digits, '/', '_' and '-'"
    )
    check.range("invocation_timeout", props.invocation_timeout.to_seconds(), 1, 3600, " s")
