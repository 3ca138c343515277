"""Batch without SageMaker (aws.platform ecs_fargate + serving.batch), as synthesized from
examples/aws/fargate-batch.yaml, and FargateBatchJob's own prop checks.

Each assertion states a rule the job relies on, with its source:
- AWS Batch on Fargate in subnets without a NAT route needs the ECR (api, dkr), S3 and CloudWatch Logs
  endpoints, not ECS's: https://docs.aws.amazon.com/batch/latest/userguide/vpc-endpoint-considerations.html
- Fargate jobs take VCPU/MEMORY pairs of the ECS task sizes:
  https://docs.aws.amazon.com/batch/latest/APIReference/API_ResourceRequirement.html
- a retry strategy has 1..10 attempts, and with evaluateOnExit whatever matches none of its entries is retried:
  https://docs.aws.amazon.com/batch/latest/APIReference/API_RetryStrategy.html
- the job timeout (attemptDurationSeconds) is at least 60 s:
  https://docs.aws.amazon.com/batch/latest/APIReference/API_JobTimeout.html
- EventBridge Scheduler's universal target calls an API (here batch:SubmitJob) as the schedule's role:
  https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-universal.html
"""

from __future__ import annotations

import json
import math
import re

import pytest
from aws_cdk.assertions import Template
from aws_synth import DEPLOY_SPEC

from twinserve.platform import aws as aws_platform
from twinserve.spec import load_spec

EXAMPLE = DEPLOY_SPEC.parents[1] / "examples" / "aws" / "fargate-batch.yaml"
SPEC = load_spec(EXAMPLE)
JOB = SPEC.environment("prod").aws.batch_job
NAME = "iris-fargate-batch-prod"


@pytest.fixture(scope="module")
def template(synth) -> Template:
    return Template.from_json(synth.template(f"{NAME}/Serving"))


@pytest.fixture(scope="module")
def dev_template(synth) -> Template:
    return Template.from_json(synth.template("iris-fargate-batch-dev/Serving"))


def _one(template: Template, type_: str) -> tuple[str, dict]:
    found = template.find_resources(type_)
    assert len(found) == 1, f"expected one {type_}, found {list(found)}"
    logical_id, resource = next(iter(found.items()))
    return logical_id, resource


def _props(template: Template, type_: str) -> dict:
    return _one(template, type_)[1]["Properties"]


def _statements(template: Template, role_id: str) -> list[dict]:
    """Every statement of the policies attached to ``role_id``."""
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def _role_of(template: Template, attribute: dict) -> str:
    return attribute["Fn::GetAtt"][0]


def test_no_sagemaker_resources_and_one_queue_one_job_definition(template):
    types = [r["Type"] for r in template.to_json()["Resources"].values()]
    assert not [t for t in types if t.startswith("AWS::SageMaker::")]
    assert (types.count("AWS::Batch::JobQueue"), types.count("AWS::Batch::JobDefinition")) == (1, 1)


def test_the_job_has_the_spec_fargate_size_timeout_and_attempts(template):
    job = _props(template, "AWS::Batch::JobDefinition")
    assert job["PlatformCapabilities"] == ["FARGATE"]
    container = job["ContainerProperties"]
    requirements = {r["Type"]: r["Value"] for r in container["ResourceRequirements"]}
    assert requirements == {"VCPU": f"{JOB.cpu / 1024:g}", "MEMORY": str(JOB.memory_mib)}
    assert JOB.memory_mib in aws_platform.FARGATE_MEMORY_MIB[JOB.cpu]  # a pair Fargate accepts
    assert container["NetworkConfiguration"] == {"AssignPublicIp": "DISABLED"}
    assert container["User"] == "10001"  # the image's non-root user
    assert job["Timeout"] == {"AttemptDurationSeconds": JOB.timeout_minutes * 60}
    # exits 1 (files failed to score) and 2 (model does not load) end the run; anything else is retried
    assert job["RetryStrategy"] == {
        "Attempts": JOB.attempts,
        "EvaluateOnExit": [{"Action": "EXIT", "OnExitCode": "1"}, {"Action": "EXIT", "OnExitCode": "2"}],
    }


def test_the_job_runs_the_wrapper_image_not_the_serving_image(synth, template):
    job_image = _props(template, "AWS::Batch::JobDefinition")["ContainerProperties"]["Image"]["Fn::Sub"]
    (task,) = _props(template, "AWS::ECS::TaskDefinition")["ContainerDefinitions"]
    assert task["Image"]["Fn::Sub"] != job_image
    tag = job_image.rsplit(":", 1)[1]
    stage = synth.outdir / "assembly-iris-fargate-batch-prod"
    assets = json.loads(next(stage.glob("*Serving*.assets.json")).read_text())["dockerImages"]
    (source,) = [a["source"] for a in assets.values() if any(d["imageTag"] == tag for d in a["destinations"].values())]
    dockerfile = (stage / source["directory"] / "Dockerfile").read_text()  # relative to the stage's assembly
    # the serving image's layers (the model baked in) plus the wrapper as the entry point
    assert "COPY --chown=10001:10001" in dockerfile and "/opt/ml/model" in dockerfile
    assert dockerfile.rstrip().endswith('ENTRYPOINT ["python", "-m", "twinserve_batch_job"]\nCMD []')
    environment = {
        e["Name"]: e["Value"]
        for e in _props(template, "AWS::Batch::JobDefinition")["ContainerProperties"]["Environment"]
    }
    assert environment["TWINSERVE_BATCH_INPUT_URI"]["Fn::Join"][1][-1] == "/batch/input/"
    assert environment["TWINSERVE_BATCH_OUTPUT_URI"]["Fn::Join"][1][-1] == "/batch/output/"
    # the serving settings reach the batch mode as they reach the service
    assert environment["TWINSERVE_THREADS"] == str(
        SPEC.environment("prod").serving.max_concurrent_requests_per_instance
    )


def test_the_compute_environment_is_fargate_in_the_service_private_subnets_without_ingress(template):
    compute = _props(template, "AWS::Batch::ComputeEnvironment")
    resources = compute["ComputeResources"]
    assert (compute["Type"], resources["Type"]) == ("managed", "FARGATE")  # on demand, not FARGATE_SPOT
    assert resources["MaxvCpus"] == math.ceil(JOB.cpu / 1024 * JOB.max_concurrent_jobs)
    service = _props(template, "AWS::ECS::Service")
    assert resources["Subnets"] == service["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
    (group,) = resources["SecurityGroupIds"]
    group_props = template.to_json()["Resources"][group["Fn::GetAtt"][0]]["Properties"]
    assert "SecurityGroupIngress" not in group_props
    ingress = template.find_resources("AWS::EC2::SecurityGroupIngress")
    assert not [i for i in ingress.values() if i["Properties"]["GroupId"] == group]
    queue = _props(template, "AWS::Batch::JobQueue")
    (order,) = queue["ComputeEnvironmentOrder"]
    assert order["ComputeEnvironment"]["Fn::GetAtt"][0] == _one(template, "AWS::Batch::ComputeEnvironment")[0]


def test_the_private_subnets_have_the_endpoints_batch_on_fargate_needs_and_no_internet_route(template):
    assert not template.find_resources("AWS::EC2::NatGateway")
    assert not template.find_resources("AWS::EC2::InternetGateway")
    services = set()
    for endpoint in template.find_resources("AWS::EC2::VPCEndpoint").values():
        name = json.dumps(endpoint["Properties"]["ServiceName"])
        services |= {s for s in aws_platform.BATCH_FARGATE_VPC_ENDPOINTS if re.search(rf"\.{re.escape(s)}\b", name)}
    assert services == set(aws_platform.BATCH_FARGATE_VPC_ENDPOINTS)


def test_the_job_role_reads_only_the_input_and_writes_only_the_output(template):
    job = _props(template, "AWS::Batch::JobDefinition")["ContainerProperties"]
    role = _role_of(template, job["JobRoleArn"])
    trust = template.to_json()["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "ecs-tasks.amazonaws.com"}]
    by_action = {}
    for statement in _statements(template, role):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            by_action[action] = statement
    assert set(by_action) == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:DescribeKey",
    }
    assert json.dumps(by_action["s3:GetObject"]["Resource"]).endswith('"/batch/input/*"]]}')
    assert json.dumps(by_action["s3:PutObject"]["Resource"]).endswith('"/batch/output/*"]]}')
    assert by_action["s3:ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": ["batch/input/*"]}}
    key_id = _one(template, "AWS::KMS::Key")[0]
    assert by_action["kms:Decrypt"]["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_the_execution_role_only_pulls_the_image_and_writes_the_job_logs(template):
    job = _props(template, "AWS::Batch::JobDefinition")["ContainerProperties"]
    role = _role_of(template, job["ExecutionRoleArn"])
    actions = set()
    for statement in _statements(template, role):
        actions |= set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    assert actions <= {
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "ecr:GetAuthorizationToken",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    assert "ecr:BatchGetImage" in actions and "logs:PutLogEvents" in actions
    log_group = job["LogConfiguration"]["Options"]["awslogs-group"]["Ref"]
    assert template.to_json()["Resources"][log_group]["Properties"]["RetentionInDays"] == 90


def test_the_schedule_submits_a_run_to_the_queue_with_only_that_permission(template):
    schedule = _props(template, "AWS::Scheduler::Schedule")
    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == (JOB.schedule, "Etc/UTC")
    target = schedule["Target"]
    assert target["Arn"]["Fn::Join"][1][-1] == ":scheduler:::aws-sdk:batch:submitJob"
    queue_id = _one(template, "AWS::Batch::JobQueue")[0]
    definition_id = _one(template, "AWS::Batch::JobDefinition")[0]
    body = json.dumps(target["Input"])
    assert queue_id in body and definition_id in body and f"{NAME}-scheduled" in body
    statements = _statements(template, _role_of(template, target["RoleArn"]))
    submit = [s for s in statements if s["Action"] == "batch:SubmitJob"]
    assert len(submit) == 1 and {json.dumps(r) for r in submit[0]["Resource"]} == {
        json.dumps({"Fn::GetAtt": [queue_id, "JobQueueArn"]}),
        json.dumps({"Ref": definition_id}),
    }


def test_failed_jobs_reach_the_alarm_topic_which_eventbridge_may_encrypt_for(template):
    rule = _props(template, "AWS::Events::Rule")
    pattern = rule["EventPattern"]
    assert (pattern["source"], pattern["detail-type"], pattern["detail"]["status"]) == (
        ["aws.batch"],
        ["Batch Job State Change"],
        ["FAILED"],
    )
    queue_id = _one(template, "AWS::Batch::JobQueue")[0]
    assert pattern["detail"]["jobQueue"] == [{"Fn::GetAtt": [queue_id, "JobQueueArn"]}]
    (target,) = rule["Targets"]
    topic_id = _one(template, "AWS::SNS::Topic")[0]
    assert target["Arn"] == {"Ref": topic_id}
    topic_policy = _props(template, "AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
    assert any(s.get("Principal") == {"Service": "events.amazonaws.com"} for s in topic_policy)
    key_policy = _props(template, "AWS::KMS::Key")["KeyPolicy"]["Statement"]
    assert any(
        "events.amazonaws.com" in json.dumps(s.get("Principal", {}).get("Service"))
        and "kms:GenerateDataKey*" in s["Action"]
        for s in key_policy
    )


def _batch_bucket(template: Template) -> tuple[str, dict]:
    (found,) = [
        (logical_id, bucket)
        for logical_id, bucket in template.find_resources("AWS::S3::Bucket").items()
        if logical_id.startswith("BatchBucket")
    ]
    return found


def test_the_batch_bucket_is_encrypted_with_the_environment_key_tls_only_logged_and_kept_in_prod(
    template, dev_template
):
    logical_id, bucket = _batch_bucket(template)
    props = bucket["Properties"]
    key_id = _one(template, "AWS::KMS::Key")[0]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
    }
    assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"].startswith("BatchAccessLogs")
    assert props["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in template.find_resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": logical_id}
    ]
    (statements,) = policies
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    # EnvironmentPolicy.keep_data: prod keeps the batch data (and the job logs), dev deletes them
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert _batch_bucket(dev_template)[1]["DeletionPolicy"] == "Delete"
    (logs,) = [v for k, v in template.find_resources("AWS::Logs::LogGroup").items() if k.startswith("BatchLogs")]
    assert logs["DeletionPolicy"] == "Retain"


def test_the_outputs_name_the_queue_the_job_definition_and_the_folders(template):
    outputs = template.to_json()["Outputs"]
    assert outputs["BatchJobQueueArn"]["Value"] == {
        "Fn::GetAtt": [_one(template, "AWS::Batch::JobQueue")[0], "JobQueueArn"]
    }
    assert outputs["BatchJobDefinitionArn"]["Value"] == {"Ref": _one(template, "AWS::Batch::JobDefinition")[0]}
    bucket_id = _batch_bucket(template)[0]
    assert outputs["BatchInputUri"]["Value"] == {"Fn::Join": ["", ["s3://", {"Ref": bucket_id}, "/batch/input/"]]}
    assert outputs["BatchOutputUri"]["Value"] == {"Fn::Join": ["", ["s3://", {"Ref": bucket_id}, "/batch/output/"]]}


def test_the_fargate_example_without_batch_has_no_batch_resources(synth):
    template = synth.template("iris-fargate-prod/Serving")
    assert not [r for r in template["Resources"].values() if r["Type"].startswith("AWS::Batch::")]
    assert "BatchJobQueueArn" not in template["Outputs"]


# --------------------------------------------------------------------------- props


@pytest.fixture(scope="module")
def job_base(tmp_path_factory):
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2

    from twinserve.aws import InferenceImage
    from twinserve.aws.fargate_batch_job import FargateBatchJobProps

    app = cdk.App(outdir=str(tmp_path_factory.mktemp("unused")))
    stack = cdk.Stack(app, "BatchValidation")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    image = InferenceImage.from_image_uri("111111111111.dkr.ecr.eu-west-1.amazonaws.com/twinserve:1")
    return stack, FargateBatchJobProps(name="iris-dev", image=image, vpc=vpc)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"cpu": 1000}, "FargateBatchJobProps.cpu: use one of 256, 512, 1024"),
        ({"cpu": 1024, "memory_mib": 1024}, "FargateBatchJobProps.memory_mib: with cpu 1024: one of 2048..8192"),
        ({"attempts": 11}, "FargateBatchJobProps.attempts:"),
        ({"attempts": 0}, "FargateBatchJobProps.attempts:"),
        ({"timeout": "30s"}, "FargateBatchJobProps.timeout: at least 60 s (AWS Batch)"),
        ({"schedule": "daily"}, "FargateBatchJobProps.schedule: use 'rate("),
        ({"prefix": "Batch Data"}, "FargateBatchJobProps.prefix:"),
        ({"name": "iris dev"}, "FargateBatchJobProps.name:"),
    ],
)
def test_bad_props_are_refused_naming_the_prop(job_base, changes, expected, request):
    from dataclasses import replace

    import aws_cdk as cdk

    from twinserve.aws.fargate_batch_job import FargateBatchJob

    stack, props = job_base
    if changes.get("timeout") == "30s":
        changes = {**changes, "timeout": cdk.Duration.seconds(30)}
    with pytest.raises(ValueError, match=re.escape(expected)):
        FargateBatchJob(stack, f"Job-{request.node.callspec.id}", replace(props, **changes))
