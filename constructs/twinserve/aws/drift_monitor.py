"""A scheduled drift check of an endpoint's captured requests, run by the serving image itself.

Mechanism (no Lambda of ours, no cloud SDK in the image):

    EventBridge Scheduler ──► Step Functions state machine
        1. ListObjectsV2 on the capture prefix (MaxKeys 1): nothing captured yet -> report 0 rows, done
           (a Processing job with an empty S3 input fails, which would page people for an idle endpoint)
        2. CreateProcessingJob.sync: the serving image's ``drift`` command (``python -m twinserve_serving
           drift``) reads the baseline and the captured JSON Lines from folders SageMaker mounts, and writes
           ``drift.json`` and ``drift-report.md`` to ``<reports prefix>/<job name>/``; network isolation on
        3. GetObject ``drift.json`` -> PutMetricData ``twinserve/Drift``: ``DriftedFeatures``,
           ``MaxDriftScore`` (>= 1 means a feature crossed its threshold) and ``CapturedRows``, per endpoint
    CloudWatch alarm ``<endpoint>-drift`` (DriftedFeatures >= 1) ──► the environment's alarm topic
    CloudWatch alarm ``<endpoint>-drift-check-failed`` (a failed execution) ──► the same topic
    optionally: EventBridge rule on the drift alarm entering ALARM ──► the retraining target

SageMaker Model Monitor is not used: it is reported closed to new customers, and its statistics differ
from Azure's. This check is the same code, baseline and thresholds on both clouds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aws_cdk as cdk
import jsii
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from constructs import Construct

from ..platform import aws as aws_platform
from ..platform.shared import SCHEDULE_CRON_PATTERN, SCHEDULE_HINT, SCHEDULE_RATE_PATTERN
from ._grants import grant_key_use, grant_objects, trusted_by_own_state_machines
from ._logs import log_group
from ._nag import ack_prefix, acknowledge, arn_text
from ._validate import checks
from .inference_image import InferenceImage

_BASELINE_DIR = "/opt/ml/processing/baseline"
_CAPTURE_DIR = "/opt/ml/processing/capture"
_OUTPUT_DIR = "/opt/ml/processing/output"
RESULTS_FILE = "drift.json"
"""The machine-readable results the container writes (``twinserve_serving.drift``)."""


@dataclass(frozen=True)
class RetrainTarget:
    """What the drift alarm starts, in the environment's account."""

    kind: Literal["sagemaker_pipeline", "codepipeline", "codebuild"]
    """A SageMaker pipeline, a CodePipeline pipeline or a CodeBuild project."""
    arn: str
    """Its ARN (``twinserve.platform.aws.RETRAIN_TARGET_ARNS`` gives the shape per kind)."""


@dataclass(frozen=True)
class DriftMonitorProps:
    """Props of :class:`DriftMonitor`."""

    endpoint_name: str
    """The endpoint whose captures are checked (the metrics' ``Endpoint`` dimension, the alarm names)."""
    image: InferenceImage
    """The serving image: its ``drift`` command runs the check."""
    bucket: s3.IBucket
    """Holds the captured requests and, under ``reports_prefix``, the reports."""
    capture_prefix: str
    """Where SageMaker data capture writes this endpoint's requests (``<prefix>/<endpoint>/``)."""
    baseline_file: str
    """The baseline document (``twinserve.drift_baseline``), uploaded as an asset."""
    schedule: str = "rate(1 day)"
    """EventBridge Scheduler expression (``rate(...)`` or ``cron(...)``, UTC)."""
    window_hours: int = 24
    """Only requests captured this many hours before the check are compared (the schedule's interval)."""
    reports_prefix: str = "drift-reports"
    """Where reports go in ``bucket`` (``<prefix>/<endpoint>/<job>/``)."""
    alarm_topic: sns.ITopic | None = None
    """Receives the drift and check-failed alarms."""
    retrain: RetrainTarget | None = None
    """Started by an EventBridge rule when the drift alarm enters ALARM."""
    instance_type: str = "ml.t3.medium"
    """SageMaker Processing instance of the check (the statistics need little: numpy on the captured rows)."""
    max_runtime: cdk.Duration = cdk.Duration.hours(1)
    """Longest a check may run."""
    encryption_key: kms.IKey | None = None
    """The bucket's key: the job reads captures and writes reports with it, and encrypts its volume."""
    retain_logs: bool = False
    """Keep the state machine's log group when the stack is deleted."""


class DriftMonitor(Construct):
    """Schedule, state machine, processing role, drift metrics and alarms (and the retraining rule)."""

    def __init__(self, scope: Construct, id: str, props: DriftMonitorProps) -> None:
        super().__init__(scope, id)
        _check(props)
        self.props = props
        stack = cdk.Stack.of(self)
        bucket, key = props.bucket, props.encryption_key
        capture = f"{props.capture_prefix.strip('/')}/{props.endpoint_name}/"
        reports = f"{props.reports_prefix.strip('/')}/{props.endpoint_name}/"

        self.baseline = s3_assets.Asset(self, "Baseline", path=props.baseline_file)
        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description=f"twinserve drift check of {props.endpoint_name}: reads captures, writes reports",
        )
        props.image.grant_pull(self.job_role)
        # the one baseline object (asset.grant_read would allow s3:GetObject*/List* on the whole asset bucket)
        iam.Grant.add_to_principal(
            grantee=self.job_role,
            actions=["s3:GetObject"],
            resource_arns=[self.baseline.bucket.arn_for_objects(self.baseline.s3_object_key)],
        )
        iam.Grant.add_to_principal(
            grantee=self.job_role,
            actions=["s3:ListBucket"],
            resource_arns=[self.baseline.bucket.bucket_arn],
            conditions={"StringEquals": {"s3:prefix": [self.baseline.s3_object_key]}},
        )
        grant_objects(self.job_role, bucket, f"{capture}*", "s3:GetObject")
        grant_objects(self.job_role, bucket, f"{reports}*", "s3:PutObject")
        iam.Grant.add_to_principal(
            grantee=self.job_role,
            actions=["s3:ListBucket"],
            resource_arns=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{capture}*"]}},
        )
        grant_key_use(self.job_role, key)
        self.job_role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/sagemaker/ProcessingJobs:*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        self.job_role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/ProcessingJobs"}},
            )
        )
        ack_prefix(self.job_role, bucket, capture)
        ack_prefix(self.job_role, bucket, reports)
        acknowledge(
            self.job_role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level permissions "
            "(the latter is limited to the processing jobs' namespace by condition).",
        )
        acknowledge(
            self.job_role,
            f"AwsSolutions-IAM5[Resource::{arn_text(self, 'logs', 'log-group:/aws/sagemaker/ProcessingJobs:*')}]",
            "SageMaker names a processing job's log stream after the job, known only at run time.",
        )

        self.state_machine = self._state_machine(bucket, capture, reports)
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule=scheduler.ScheduleExpression.expression(props.schedule),
            target=scheduler_targets.StepFunctionsStartExecution(self.state_machine, input=None),
            description=f"twinserve drift check of {props.endpoint_name}",
        )
        self.drift_alarm, self.failure_alarm = self._alarms()
        self.retrain_rule = self._retrain_rule() if props.retrain is not None else None

    # ------------------------------------------------------------------ the state machine

    def _state_machine(self, bucket: s3.IBucket, capture: str, reports: str) -> sfn.StateMachine:
        props, stack = self.props, cdk.Stack.of(self)
        name = sfn.Pass(
            self,
            "Name",
            state_name="NameTheCheck",
            parameters={"JobName": sfn.JsonPath.format("twinserve-drift-{}", sfn.JsonPath.uuid())},
        )
        any_capture = tasks.CallAwsService(
            self,
            "AnyCapture",
            state_name="AnyCapturedRequests",
            service="s3",
            action="listObjectsV2",
            parameters={"Bucket": bucket.bucket_name, "Prefix": capture, "MaxKeys": 1},
            iam_resources=[bucket.bucket_arn],
            iam_action="s3:ListBucket",
            result_selector={"KeyCount.$": "$.KeyCount"},
            result_path="$.Capture",
        )
        report_uri = sfn.JsonPath.format(
            f"s3://{bucket.bucket_name}/{reports}{{}}/", sfn.JsonPath.string_at("$.JobName")
        )
        volume_key = None if aws_platform.has_instance_storage(props.instance_type) else props.encryption_key
        job_parameters: dict = {
            "ProcessingJobName.$": "$.JobName",
            "RoleArn": self.job_role.role_arn,
            "AppSpecification": {
                "ImageUri": props.image.image_uri,
                "ContainerEntrypoint": ["python", "-m", "twinserve_serving", "drift"],
                "ContainerArguments": [
                    "--baseline",
                    # SageMaker downloads the object into the folder under its key's last part
                    f"{_BASELINE_DIR}/{self.baseline.s3_object_key.rsplit('/', 1)[-1]}",
                    "--capture",
                    _CAPTURE_DIR,
                    "--output",
                    _OUTPUT_DIR,
                    "--since-hours",
                    str(props.window_hours),
                ],
            },
            "ProcessingInputs": [
                _input("baseline", self.baseline.s3_object_url, _BASELINE_DIR),
                _input("capture", f"s3://{bucket.bucket_name}/{capture}", _CAPTURE_DIR),
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "report",
                        "S3Output": {"S3Uri.$": report_uri, "LocalPath": _OUTPUT_DIR, "S3UploadMode": "EndOfJob"},
                    }
                ],
                **({"KmsKeyId": props.encryption_key.key_arn} if props.encryption_key else {}),
            },
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": props.instance_type,
                    "VolumeSizeInGB": 30,
                    **({"VolumeKmsKeyId": volume_key.key_arn} if volume_key else {}),
                }
            },
            # the check reads mounted folders only: no network at all
            "NetworkConfig": {"EnableNetworkIsolation": True},
            "StoppingCondition": {"MaxRuntimeInSeconds": int(props.max_runtime.to_seconds())},
            "Tags": [{"Key": "twinserve:endpoint", "Value": props.endpoint_name}],
        }
        run = sfn.CustomState(
            self,
            "Check",
            state_json={
                "Type": "Task",
                # https://docs.aws.amazon.com/step-functions/latest/dg/connect-sagemaker.html (.sync)
                "Resource": f"arn:{stack.partition}:states:::sagemaker:createProcessingJob.sync",
                "Parameters": job_parameters,
                "ResultPath": None,
                "Retry": [
                    {
                        "ErrorEquals": ["SageMaker.AmazonSageMakerException"],
                        "IntervalSeconds": 30,
                        "MaxAttempts": 2,
                        "BackoffRate": 2,
                    }
                ],
            },
        )
        read = tasks.CallAwsService(
            self,
            "ReadResults",
            state_name="ReadResults",
            service="s3",
            action="getObject",
            parameters={
                "Bucket": bucket.bucket_name,
                "Key": sfn.JsonPath.format(f"{reports}{{}}/{RESULTS_FILE}", sfn.JsonPath.string_at("$.JobName")),
            },
            iam_resources=[bucket.arn_for_objects(f"{reports}*")],
            iam_action="s3:GetObject",
            result_selector={"Results.$": "States.StringToJson($.Body)"},
            result_path="$.Check",
        )
        put = self._put_metrics("PutDriftMetrics", "$.Check.Results.", scored=True)
        put_rows = self._put_metrics("PutTooFewRows", "$.Check.Results.", scored=False)
        put_nothing = self._put_metrics("PutNoCapture", None, scored=False)
        enough = sfn.Choice(self, "Enough", state_name="EnoughRows").when(
            sfn.Condition.string_equals("$.Check.Results.status", "insufficient_data"), put_rows
        )
        captured = sfn.Choice(self, "Captured", state_name="AnythingCaptured")
        definition = name.next(any_capture).next(
            captured.when(sfn.Condition.number_equals("$.Capture.KeyCount", 0), put_nothing).otherwise(
                run.next(read).next(enough.otherwise(put))
            )
        )
        self.log_group = log_group(
            self,
            "Logs",
            encryption_key=props.encryption_key,
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=cdk.RemovalPolicy.RETAIN if props.retain_logs else cdk.RemovalPolicy.DESTROY,
        )
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=props.max_runtime.plus(cdk.Duration.minutes(30)),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        trusted_by_own_state_machines(machine)
        # What CreateProcessingJob.sync needs: https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html
        jobs = stack.format_arn(service="sagemaker", resource="processing-job", resource_name="twinserve-drift-*")
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:AddTags",
                    "sagemaker:ListTags",
                ],
                resources=[jobs],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    stack.format_arn(
                        service="events",
                        resource="rule",
                        resource_name="StepFunctionsGetEventsForSageMakerProcessingJobsRule",
                    )
                ],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.job_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": aws_platform.DRIFT_METRIC_NAMESPACE}},
            )
        )
        if props.encryption_key is not None:
            grant_key_use(machine, props.encryption_key)  # reads drift.json under the bucket key
            if volume_key is not None:
                # SageMaker creates a grant on the volume key in the name of the caller of CreateProcessingJob
                machine.add_to_role_policy(
                    iam.PolicyStatement(
                        actions=["kms:CreateGrant"],
                        resources=[volume_key.key_arn],
                        conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                    )
                )
        machine.node.default_child.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        acknowledge(
            machine,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray, CloudWatch Logs delivery and cloudwatch:PutMetricData have no resource-level permissions "
            "(PutMetricData is limited to the twinserve/Drift namespace by condition).",
        )
        acknowledge(
            machine,
            f"AwsSolutions-IAM5[Resource::{arn_text(self, 'sagemaker', 'processing-job/twinserve-drift-*')}]",
            "Each check creates a processing job with a fresh name (twinserve-drift-<uuid>), known only at run time.",
        )
        ack_prefix(machine, bucket, reports)
        return machine

    def _put_metrics(self, id: str, results: str | None, *, scored: bool) -> tasks.CallAwsService:
        """``results``: the JSONPath prefix of the container's results, or ``None`` for "nothing captured";
        ``scored``: the results carry scores (not so with too few rows: no feature is flagged then)."""

        def value(field: str):
            return sfn.JsonPath.number_at(f"{results}{field}") if results and (scored or field == "rows") else 0

        dimensions = [{"Name": "Endpoint", "Value": self.props.endpoint_name}]
        return tasks.CallAwsService(
            self,
            id,
            state_name=id,
            service="cloudwatch",
            action="putMetricData",
            parameters={
                "Namespace": aws_platform.DRIFT_METRIC_NAMESPACE,
                "MetricData": [
                    {
                        "MetricName": "DriftedFeatures",
                        "Dimensions": dimensions,
                        "Unit": "Count",
                        "Value": value("drifted_features"),
                    },
                    *(
                        [
                            {
                                "MetricName": "MaxDriftScore",
                                "Dimensions": dimensions,
                                "Unit": "None",
                                "Value": value("max_score"),
                            }
                        ]
                        if scored
                        else []
                    ),
                    {"MetricName": "CapturedRows", "Dimensions": dimensions, "Unit": "Count", "Value": value("rows")},
                ],
            },
            iam_resources=["*"],
            iam_action="cloudwatch:PutMetricData",
            result_path=sfn.JsonPath.DISCARD,
        )

    # ------------------------------------------------------------------ metrics, alarms, retraining

    def metric(self, name: Literal["DriftedFeatures", "MaxDriftScore", "CapturedRows"]) -> cloudwatch.Metric:
        """One of the check's metrics for this endpoint, per check period (at most a day)."""
        return cloudwatch.Metric(
            namespace=aws_platform.DRIFT_METRIC_NAMESPACE,
            metric_name=name,
            dimensions_map={"Endpoint": self.props.endpoint_name},
            statistic="Maximum",
            period=_alarm_period(self.props.window_hours),
        )

    def metric_drifted_features(self) -> cloudwatch.Metric:
        return self.metric("DriftedFeatures")

    def _alarms(self) -> tuple[cloudwatch.Alarm, cloudwatch.Alarm]:
        props = self.props
        drift = cloudwatch.Alarm(
            self,
            "DriftAlarm",
            alarm_name=f"{props.endpoint_name}-drift",
            alarm_description=(
                f"A feature of {props.endpoint_name}'s captured requests drifted from the baseline: read the "
                f"report under s3://<artifacts bucket>/{props.reports_prefix.strip('/')}/{props.endpoint_name}/ "
                "(docs/drift.md)."
            ),
            metric=self.metric_drifted_features(),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            # no check ran in the period (schedule paused, nothing deployed): not drift
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        failed = cloudwatch.Alarm(
            self,
            "CheckFailedAlarm",
            alarm_name=f"{props.endpoint_name}-drift-check-failed",
            alarm_description=f"The drift check of {props.endpoint_name} failed: see the state machine's execution.",
            metric=self.state_machine.metric_failed(period=_alarm_period(props.window_hours), statistic="Sum"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if props.alarm_topic is not None:
            for alarm in (drift, failed):
                alarm.add_alarm_action(cloudwatch_actions.SnsAction(props.alarm_topic))
        return drift, failed

    def _retrain_rule(self) -> events.Rule:
        target = self.props.retrain
        rule = events.Rule(
            self,
            "RetrainRule",
            description=f"Start retraining when {self.props.endpoint_name}'s drift alarm fires",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                resources=[self.drift_alarm.alarm_arn],
                detail={"state": {"value": ["ALARM"]}},
            ),
        )
        if target.kind == "codepipeline":
            rule.add_target(
                events_targets.CodePipeline(
                    codepipeline.Pipeline.from_pipeline_arn(self, "RetrainPipeline", target.arn)
                )
            )
        elif target.kind == "codebuild":
            rule.add_target(
                events_targets.CodeBuildProject(codebuild.Project.from_project_arn(self, "RetrainProject", target.arn))
            )
        else:
            rule.add_target(_SageMakerPipelineTarget(target.arn))
        return rule


@jsii.implements(events.IRuleTarget)
class _SageMakerPipelineTarget:
    """EventBridge target that starts a SageMaker pipeline execution by ARN (CDK's
    ``SageMakerPipeline`` target needs an ``IPipeline``, which aws-cdk-lib has no importer for)."""

    def __init__(self, pipeline_arn: str) -> None:
        self.pipeline_arn = pipeline_arn

    def bind(self, rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        role = iam.Role(rule, "RetrainRole", assumed_by=iam.ServicePrincipal("events.amazonaws.com"))
        role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[self.pipeline_arn])
        )
        return events.RuleTargetConfig(arn=self.pipeline_arn, role=role)


def _input(name: str, uri: str, local_path: str) -> dict:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def _alarm_period(window_hours: int) -> cdk.Duration:
    """One datapoint per check, within CloudWatch's longest alarm period (1 day)."""
    return cdk.Duration.hours(min(window_hours, 24))


def _check(props: DriftMonitorProps) -> None:
    check = checks("DriftMonitorProps")
    check.pattern("endpoint_name", props.endpoint_name, aws_platform.NAME_PATTERN, aws_platform.NAME_HINT)
    check.pattern("schedule", props.schedule, f"(?:{SCHEDULE_RATE_PATTERN})|(?:{SCHEDULE_CRON_PATTERN})", SCHEDULE_HINT)
    check.range("window_hours", props.window_hours, 1, 24 * 31, " h")
    check.that(Path(props.baseline_file).is_file(), "baseline_file", props.baseline_file, "must be an existing file")
    check.pattern(
        "instance_type", props.instance_type, aws_platform.INSTANCE_TYPE_PATTERN, aws_platform.INSTANCE_TYPE_HINT
    )
    check.range("max_runtime", props.max_runtime.to_seconds(), 60, 5 * 24 * 3600, " s")
    if props.retrain is not None:
        pattern = aws_platform.RETRAIN_TARGET_ARNS.get(props.retrain.kind)
        check.that(
            pattern is not None,
            "retrain.kind",
            props.retrain.kind,
            f"use one of {', '.join(aws_platform.RETRAIN_TARGET_ARNS)}",
        )
        if pattern is not None:
            check.pattern("retrain.arn", props.retrain.arn, pattern, f"a {props.retrain.kind} ARN")
