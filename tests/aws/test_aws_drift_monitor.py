"""Drift monitoring on AWS, as synthesized from the spec: capture, the scheduled check, its metrics,
alarms and the retraining rule (deploy/twinserve.yaml staging/prod, examples/aws/drift-retrain.yaml).

The snapshots of test_aws_templates.py guard against unintended change; these state the intent.
"""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Template
from aws_synth import DEPLOY_SPEC

from twinserve.platform.aws import DRIFT_METRIC_NAMESPACE
from twinserve.spec import load_spec

SPEC = load_spec(DEPLOY_SPEC)
RETRAIN = DEPLOY_SPEC.parents[1] / "examples" / "aws" / "drift-retrain.yaml"


@pytest.fixture(scope="module")
def serving(synth):
    return lambda stage: Template.from_json(synth.template(f"{stage}/Serving"))


def _definition(template: Template) -> dict:
    """The drift state machine's definition, with CloudFormation references replaced by placeholders."""
    machines = [
        m
        for m in template.find_resources("AWS::StepFunctions::StateMachine").values()
        if "createProcessingJob" in json.dumps(m["Properties"]["DefinitionString"])
    ]
    assert len(machines) == 1
    parts = machines[0]["Properties"]["DefinitionString"]["Fn::Join"][1]
    # Fn::Sub strings kept as written (${AWS::AccountId}...), Ref/GetAtt as REF
    return json.loads("".join(p if isinstance(p, str) else p.get("Fn::Sub", "REF") for p in parts))


def _alarm(template: Template, name: str) -> dict:
    found = [
        a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName") == name
    ]
    assert len(found) == 1, name
    return found[0]


@pytest.mark.parametrize("env_name", ["staging", "prod"])
def test_monitored_environments_capture_at_the_monitoring_rate(serving, env_name):
    template = serving(f"iris-{env_name}")
    config = next(iter(template.find_resources("AWS::SageMaker::EndpointConfig").values()))["Properties"]
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == SPEC.environment(env_name).monitoring.sampling_percent
    assert capture["DestinationS3Uri"]["Fn::Join"][1][-1].endswith("/data-capture")


def test_dev_has_no_drift_monitoring(serving):
    template = serving("iris-dev")
    assert template.find_resources("AWS::Scheduler::Schedule") == {}
    assert (
        "DataCaptureConfig"
        not in next(iter(template.find_resources("AWS::SageMaker::EndpointConfig").values()))["Properties"]
    )


def test_captured_requests_expire_after_retention_but_models_never(serving):
    template = serving("iris-prod")
    buckets = template.find_resources("AWS::S3::Bucket")
    (rules,) = [
        b["Properties"]["LifecycleConfiguration"]["Rules"]
        for b in buckets.values()
        if any(
            r.get("Prefix") == "data-capture/"
            for r in b["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
        )
    ]  # the artifacts bucket's
    capture_rules = [r for r in rules if r.get("Prefix") == "data-capture/"]
    assert capture_rules == [
        {
            "Id": "expire-data-capture",
            "Prefix": "data-capture/",
            "ExpirationInDays": SPEC.environment("prod").monitoring.retention_days,
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
            "Status": "Enabled",
        }
    ]
    assert rules == capture_rules  # nothing else expires there: models/ never


def test_schedule_starts_the_check_at_the_spec_schedule(serving):
    template = serving("iris-prod")
    (schedule,) = template.find_resources("AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["ScheduleExpression"] == SPEC.environment("prod").monitoring.schedule
    assert schedule["Properties"]["Target"]["Arn"]["Ref"].startswith("DriftStateMachine")


def test_the_check_runs_the_serving_image_drift_command_on_the_endpoint_captures(serving):
    definition = _definition(serving("iris-prod"))
    states = definition["States"]
    # nothing captured yet: report zero rows instead of failing a Processing job on an empty input
    assert states["AnythingCaptured"]["Choices"][0] == {
        "Variable": "$.Capture.KeyCount",
        "NumericEquals": 0,
        "Next": "PutNoCapture",
    }
    job = states["Check"]["Parameters"]
    assert states["Check"]["Resource"].endswith(":states:::sagemaker:createProcessingJob.sync")
    assert job["AppSpecification"]["ContainerEntrypoint"] == ["python", "-m", "twinserve_serving", "drift"]
    args = job["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--since-hours") + 1] == "24"  # rate(1 day)
    assert args[args.index("--baseline") + 1].startswith("/opt/ml/processing/baseline/")
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in job["ProcessingInputs"]}
    assert inputs["capture"] == "s3://REF/data-capture/iris-prod/"
    assert re.fullmatch(
        r"s3://cdk-[a-z0-9]+-assets-\$\{AWS::AccountId\}-\$\{AWS::Region\}/[0-9a-f]{64}\.json", inputs["baseline"]
    )
    assert job["NetworkConfig"] == {"EnableNetworkIsolation": True}
    assert "KmsKeyId" in job["ProcessingOutputConfig"]  # prod: reports under the environment key
    assert job["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "REF"


def test_results_become_metrics_per_endpoint(serving):
    states = _definition(serving("iris-prod"))["States"]
    assert states["ReadResults"]["ResultSelector"] == {"Results.$": "States.StringToJson($.Body)"}
    put = states["PutDriftMetrics"]["Parameters"]
    assert put["Namespace"] == DRIFT_METRIC_NAMESPACE
    assert {m["MetricName"]: m["Value.$"] for m in put["MetricData"]} == {
        "DriftedFeatures": "$.Check.Results.drifted_features",
        "MaxDriftScore": "$.Check.Results.max_score",
        "CapturedRows": "$.Check.Results.rows",
    }
    assert all(m["Dimensions"] == [{"Name": "Endpoint", "Value": "iris-prod"}] for m in put["MetricData"])
    # too few rows: no score exists, so none is published (a null would fail PutMetricData)
    too_few = states["PutTooFewRows"]["Parameters"]["MetricData"]
    assert [m["MetricName"] for m in too_few] == ["DriftedFeatures", "CapturedRows"]


def test_drift_and_failed_checks_alarm_to_the_alarm_topic(serving):
    template = serving("iris-prod")
    drift = _alarm(template, "iris-prod-drift")
    assert (drift["Namespace"], drift["MetricName"], drift["Statistic"]) == (
        DRIFT_METRIC_NAMESPACE,
        "DriftedFeatures",
        "Maximum",
    )
    assert (drift["Threshold"], drift["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert drift["TreatMissingData"] == "notBreaching"
    assert drift["Period"] == 86400
    failed = _alarm(template, "iris-prod-drift-check-failed")
    assert failed["MetricName"] == "ExecutionsFailed"
    topics = list(template.find_resources("AWS::SNS::Topic"))
    for alarm in (drift, failed):
        assert [a["Ref"] for a in alarm["AlarmActions"]] == topics


def test_job_role_reads_only_the_endpoint_captures_and_writes_only_its_reports(serving):
    template = serving("iris-prod")
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for name, p in template.find_resources("AWS::IAM::Policy").items()
        if name.startswith("DriftJobRole")
    ]
    assert len(policies) == 1
    text = json.dumps(policies[0])
    s3_objects = [s for s in policies[0] if s["Action"] in ("s3:GetObject", "s3:PutObject")]
    resources = {s["Action"]: json.dumps(s["Resource"]) for s in s3_objects}
    assert "/data-capture/iris-prod/*" in resources["s3:GetObject"]
    assert "/drift-reports/iris-prod/*" in resources["s3:PutObject"]
    assert "sagemaker:" not in text  # the job itself calls no SageMaker API


def test_notify_and_retrain_starts_the_retraining_target_on_alarm(serving):
    template = serving("iris-drift-prod")
    (rule,) = template.find_resources("AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.cloudwatch"]
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert pattern["detail"] == {"state": {"value": ["ALARM"]}}
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == "arn:aws:codebuild:eu-west-1:111111111111:project/iris-retrain"
    schedule = next(iter(template.find_resources("AWS::Scheduler::Schedule").values()))
    assert schedule["Properties"]["ScheduleExpression"] == "rate(6 hours)"
    args = _definition(template)["States"]["Check"]["Parameters"]["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--since-hours") + 1] == "6"


def test_the_baseline_asset_is_the_reference_dataset_baseline(synth, serving):
    """The shipped baseline is computed from the spec's reference dataset with its thresholds."""
    from twinserve.drift_baseline import baseline_for_monitoring

    monitoring = load_spec(RETRAIN).environment("prod").monitoring
    expected = baseline_for_monitoring(monitoring, RETRAIN.parent)
    inputs = _definition(serving("iris-drift-prod"))["States"]["Check"]["Parameters"]["ProcessingInputs"]
    asset_hash = next(i for i in inputs if i["InputName"] == "baseline")["S3Input"]["S3Uri"].rsplit("/", 1)[1]
    shipped = json.loads(next(synth.outdir.rglob(f"asset.{asset_hash.split('.')[0]}*")).read_text())
    assert shipped == expected
    assert [f["statistic"] for f in shipped["features"]] == ["jensen_shannon"] * 4
