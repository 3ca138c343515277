"""Batch scoring without SageMaker: the serving image's batch mode as an AWS Batch job on Fargate.

Mechanism (no state machine, no Lambda of ours):

    aws batch submit-job (on demand, :meth:`FargateBatchJob.grant_submit`)  ─┐
    EventBridge Scheduler (``schedule``, optional) ── batch:SubmitJob ───────┴─► job queue
        ─► Fargate compute environment (the VPC's private subnets, a security group without ingress)
        ─► job definition: the batch-job image (the serving image with the model, plus the S3 wrapper
           ``python -m twinserve_batch_job``): ``<prefix>/input/`` -> the image's batch mode ->
           ``<prefix>/output/<job id>/`` (one ``.out`` or ``.error.json`` per input, ``_manifest.json``)
    EventBridge rule on the queue's FAILED jobs ─► the alarm topic (optional)

The job role reads only the input prefix and writes only the output prefix (and uses the bucket's key);
the execution role pulls the image and writes the job's log group. Retries: ``attempts`` per run, but a
run whose files failed to score (exit 1) or whose model did not load (exit 2) is not retried - only
infrastructure and S3 transfer failures are. In subnets without a NAT route, AWS Batch on Fargate
needs the ECR (api, dkr), S3 and CloudWatch Logs endpoints, not ECS's
(https://docs.aws.amazon.com/batch/latest/userguide/vpc-endpoint-considerations.html).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns

from constructs import Construct

from ..platform import aws as aws_platform
from ..platform.shared import SCHEDULE_CRON_PATTERN, SCHEDULE_HINT, SCHEDULE_RATE_PATTERN
from ._grants import grant_key_use, grant_objects
from ._logs import log_group
from ._nag import ACCESS_LOG_BUCKET_REASON, ack_prefix, acknowledge, acknowledge_cdk_provider, acknowledge_checkov
from ._validate import checks
from .inference_image import InferenceImage

INPUT_ENV = "TWINSERVE_BATCH_INPUT_URI"
OUTPUT_ENV = "TWINSERVE_BATCH_OUTPUT_URI"
"""Where the wrapper (``twinserve_batch_job``) reads its S3 folders."""
NO_RETRY_EXIT_CODES = ("1", "2")
"""The wrapper's exits a retry cannot change: files that failed to score, a model that does not load."""


@dataclass(frozen=True)
class FargateBatchJobProps:
    """Props of :class:`FargateBatchJob`."""

    name: str
    """Names the scheduled runs and describes the resources (the environment's service name)."""
    image: InferenceImage
    """The batch-job image: the serving image with the model baked in plus ``twinserve_batch_job`` as its
    entry point (``stacks/aws/baked_image.batch_job_image_context``)."""
    vpc: ec2.IVpc
    """Where the jobs run (the Fargate service's VPC), with the ECR, S3 and Logs endpoints or a NAT route."""
    vpc_subnets: ec2.SubnetSelection | None = None
    """The jobs' subnets (``None``: the VPC's private subnets)."""
    bucket: s3.IBucket | None = None
    """Holds ``<prefix>/input/`` (read) and ``<prefix>/output/`` (written); ``None`` creates one (versioned,
    TLS only, encrypted with ``encryption_key``, server access logs in a bucket of its own)."""
    prefix: str = "batch"
    """The batch folder of ``bucket`` (lower-case letters, digits, '/', '_', '-')."""
    cpu: int = 1024
    """CPU units of one job (1024 = 1 vCPU); Fargate sizes only (``twinserve.platform.aws.FARGATE_MEMORY_MIB``)."""
    memory_mib: int = 2048
    """Memory of one job; the sizes Fargate accepts with ``cpu``."""
    environment: dict[str, str] = field(default_factory=dict)
    """The container's settings (as for serving: model format, threads); no secrets."""
    timeout: cdk.Duration = cdk.Duration.hours(6)
    """Longest one attempt may run (at least 60 s)."""
    attempts: int = 2
    """Attempts per run (1..10); exits 1 and 2 are never retried."""
    max_concurrent_jobs: int = 2
    """Runs at the same time: the compute environment's vCPU ceiling is this times the job's vCPUs."""
    schedule: str | None = None
    """EventBridge Scheduler expression (``rate(...)``/``cron(...)``, UTC) that also submits a run."""
    encryption_key: kms.IKey | None = None
    """The bucket's key: the job reads inputs and writes outputs with it; a created bucket and the job's
    log group use it."""
    failure_topic: sns.ITopic | None = None
    """Told of every job of the queue that ends FAILED (an EventBridge rule)."""
    log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS
    """Retention of the jobs' log group."""
    retain_data: bool = False
    """Keep the created bucket (with its objects) and the log group when the stack is deleted."""


class FargateBatchJob(Construct):
    """Compute environment, job queue, job definition, roles, logs (and bucket, schedule, failure rule)."""

    def __init__(self, scope: Construct, id: str, props: FargateBatchJobProps) -> None:
        super().__init__(scope, id)
        _check(props)
        self.props = props
        removal = cdk.RemovalPolicy.RETAIN if props.retain_data else cdk.RemovalPolicy.DESTROY
        self.bucket = props.bucket or self._bucket(removal)
        base = props.prefix.strip("/")
        self.input_uri = f"s3://{self.bucket.bucket_name}/{base}/input/"
        """Where runs read their inputs (every object under it)."""
        self.output_uri = f"s3://{self.bucket.bucket_name}/{base}/output/"
        """Where each run writes ``<job id>/``."""

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=props.vpc,
            description=f"{props.name} batch jobs (no ingress: they only call ECR, S3 and Logs)",
            allow_all_outbound=True,
        )
        vcpus = props.cpu / 1024
        self.compute_environment = batch.FargateComputeEnvironment(
            self,
            "ComputeEnvironment",
            vpc=props.vpc,
            vpc_subnets=props.vpc_subnets,
            security_groups=[self.security_group],
            maxv_cpus=math.ceil(vcpus * props.max_concurrent_jobs),
            spot=False,
        )
        self.job_queue = batch.JobQueue(
            self,
            "Queue",
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.compute_environment, order=1)
            ],
        )
        self.log_group = log_group(
            self, "Logs", encryption_key=props.encryption_key, retention=props.log_retention, removal_policy=removal
        )
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"{props.name} batch jobs: pull the image, write the job logs",
        )
        props.image.grant_pull(self.execution_role)
        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"{props.name} batch jobs: read {base}/input/, write {base}/output/",
        )
        grant_objects(self.job_role, self.bucket, f"{base}/input/*", "s3:GetObject")
        grant_objects(self.job_role, self.bucket, f"{base}/output/*", "s3:PutObject")
        iam.Grant.add_to_principal(
            grantee=self.job_role,
            actions=["s3:ListBucket"],
            resource_arns=[self.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{base}/input/*"]}},
        )
        grant_key_use(self.job_role, props.encryption_key)
        ack_prefix(self.job_role, self.bucket, f"{base}/input")
        ack_prefix(self.job_role, self.bucket, f"{base}/output")

        self.container = batch.EcsFargateContainerDefinition(
            self,
            "Container",
            image=ecs.ContainerImage.from_registry(props.image.image_uri),
            cpu=vcpus,
            memory=cdk.Size.mebibytes(props.memory_mib),
            environment={**props.environment, INPUT_ENV: self.input_uri, OUTPUT_ENV: self.output_uri},
            execution_role=self.execution_role,
            job_role=self.job_role,
            logging=ecs.LogDriver.aws_logs(stream_prefix="batch", log_group=self.log_group),
            assign_public_ip=False,
            fargate_cpu_architecture=ecs.CpuArchitecture.X86_64,
            fargate_operating_system_family=ecs.OperatingSystemFamily.LINUX,
            fargate_platform_version=ecs.FargatePlatformVersion.LATEST,
            user="10001",
        )
        self.job_definition = batch.EcsJobDefinition(
            self,
            "JobDefinition",
            container=self.container,
            retry_attempts=props.attempts,
            # A job definition with evaluateOnExit retries whatever matches none of them (AWS Batch).
            retry_strategies=[
                batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_exit_code=code))
                for code in NO_RETRY_EXIT_CODES
            ]
            if props.attempts > 1
            else None,
            timeout=props.timeout,
            propagate_tags=True,
        )
        acknowledge(
            self.execution_role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource-level permissions; pulls are granted on the image's repository.",
        )
        self.schedule = self._schedule() if props.schedule is not None else None
        self.failure_rule = self._failure_rule(props.failure_topic) if props.failure_topic is not None else None

    # ------------------------------------------------------------------ pieces

    def _bucket(self, removal: cdk.RemovalPolicy) -> s3.Bucket:
        props = self.props
        auto_delete = removal == cdk.RemovalPolicy.DESTROY
        # Server access logs: SSE-S3 is the only encryption S3 log delivery supports.
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,  # a deleted or overwritten log stays recoverable for 30 days
            lifecycle_rules=[
                s3.LifecycleRule(expiration=cdk.Duration.days(365), noncurrent_version_expiration=cdk.Duration.days(30))
            ],
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )
        acknowledge_checkov(access_logs, "CKV_AWS_18", ACCESS_LOG_BUCKET_REASON)
        bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            encryption=s3.BucketEncryption.KMS if props.encryption_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=props.encryption_key,
            bucket_key_enabled=props.encryption_key is not None,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="batch/",
            # overwritten outputs of a re-run keep their last version for a week, not forever
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=cdk.Duration.days(7))],
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )
        if auto_delete:
            acknowledge_cdk_provider(self, "Custom::S3AutoDeleteObjectsCustomResourceProvider")
        return bucket

    def _schedule(self) -> scheduler.Schedule:
        """EventBridge Scheduler's universal target calls batch:SubmitJob (no Lambda of ours)."""
        props = self.props
        return scheduler.Schedule(
            self,
            "Schedule",
            schedule=scheduler.ScheduleExpression.expression(props.schedule),
            target=scheduler_targets.Universal(
                service="batch",
                action="submitJob",
                input=scheduler.ScheduleTargetInput.from_text(
                    cdk.Stack.of(self).to_json_string(
                        {
                            "JobName": f"{props.name}-scheduled",
                            "JobQueue": self.job_queue.job_queue_arn,
                            "JobDefinition": self.job_definition.job_definition_arn,
                        }
                    )
                ),
                policy_statements=[
                    iam.PolicyStatement(
                        actions=["batch:SubmitJob"],
                        resources=[self.job_queue.job_queue_arn, self.job_definition.job_definition_arn],
                    )
                ],
            ),
            description=f"twinserve batch run of {props.name}",
        )

    def _failure_rule(self, topic: sns.ITopic) -> events.Rule:
        """EventBridge's job state changes of this queue, FAILED only, to ``topic`` (SnsTopic adds the
        topic policy for events.amazonaws.com; an encrypted topic's key must let EventBridge use it)."""
        key = getattr(topic, "master_key", None)
        if key is not None:
            key.grant(iam.ServicePrincipal("events.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        rule = events.Rule(
            self,
            "FailedJobs",
            description=f"twinserve: a batch job of {self.props.name} failed",
            event_pattern=events.EventPattern(
                source=["aws.batch"],
                detail_type=["Batch Job State Change"],
                detail={"status": ["FAILED"], "jobQueue": [self.job_queue.job_queue_arn]},
            ),
        )
        rule.add_target(
            events_targets.SnsTopic(
                topic,
                message=events.RuleTargetInput.from_text(
                    f"twinserve batch job {events.EventField.from_path('$.detail.jobName')} "
                    f"({events.EventField.from_path('$.detail.jobId')}) of {self.props.name} failed: "
                    f"{events.EventField.from_path('$.detail.statusReason')}"
                ),
            )
        )
        return rule

    # ------------------------------------------------------------------ grants

    def grant_submit(self, grantee: iam.IGrantable) -> None:
        """Allow ``grantee`` to submit runs of this job definition to this queue (and nothing else)."""
        self.job_definition.grant_submit_job(grantee, self.job_queue)

    def grant_inputs(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow ``grantee`` to upload inputs (``<prefix>/input/``)."""
        grant_key_use(grantee, self.props.encryption_key)
        return grant_objects(grantee, self.bucket, f"{self.props.prefix.strip('/')}/input/*", "s3:PutObject")


def _check(props: FargateBatchJobProps) -> None:
    check = checks("FargateBatchJobProps")
    check.pattern(
        "name", props.name, r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,99}", "1-100 letters, digits, '-' and '_' (job names)"
    )
    allowed = aws_platform.FARGATE_MEMORY_MIB.get(props.cpu)
    check.that(
        allowed is not None, "cpu", props.cpu, f"use one of {', '.join(map(str, aws_platform.FARGATE_MEMORY_MIB))}"
    )
    if allowed is not None:
        check.that(
            props.memory_mib in allowed,
            "memory_mib",
            props.memory_mib,
            f"with cpu {props.cpu}: one of {allowed[0]}..{allowed[-1]} (Fargate sizes)",
        )
    check.range("attempts", props.attempts, *aws_platform.BATCH_JOB_ATTEMPTS)
    check.that(
        props.timeout.to_seconds() >= aws_platform.BATCH_JOB_MIN_TIMEOUT_SECONDS,
        "timeout",
        f"{props.timeout.to_seconds()} s",
        f"at least {aws_platform.BATCH_JOB_MIN_TIMEOUT_SECONDS} s (AWS Batch)",
    )
    check.range("max_concurrent_jobs", props.max_concurrent_jobs, 1, 100)
    check.pattern(
        "prefix", props.prefix.strip("/"), r"[a-z0-9][a-z0-9/_-]*", "use lower-case letters, digits, '/', '_' and '-'"
    )
    if props.schedule is not None:
        check.that(
            bool(
                re.fullmatch(SCHEDULE_RATE_PATTERN, props.schedule)
                or re.fullmatch(SCHEDULE_CRON_PATTERN, props.schedule)
            ),
            "schedule",
            props.schedule,
            SCHEDULE_HINT,
        )
