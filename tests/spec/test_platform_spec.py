"""aws.platform: what ECS Fargate (and, later, Lambda) can serve, refused by name before anything is
created, and the sizes Fargate accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from twinserve.spec import SpecError, parse_spec
from twinserve.spec.rules import PLATFORM_FEATURES

CONNECTION = "arn:aws:codeconnections:eu-west-1:111111111111:connection/0b3c4d5e-1111-2222-3333-444455556666"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "aws" / "fargate.yaml"


@pytest.fixture()
def raw() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def problems(raw: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(raw, file="spec.yaml")
    return [issue.render("spec.yaml") for issue in info.value.issues]


def test_the_example_is_valid_and_defaults_to_sagemaker(raw):
    spec = parse_spec(raw, file="spec.yaml")
    assert spec.environment("prod").aws.platform == "ecs_fargate"
    del raw["defaults"]["aws"]
    raw["defaults"]["rollout"] = {"strategy": "all_at_once"}  # SageMaker's canary needs 3 instances
    assert parse_spec(raw, file="spec.yaml").environment("prod").aws.platform == "sagemaker"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("serving", "endpoint_type"), "async", "serving.endpoint_type"),
        (("serving", "shadow"), {"name": "candidate", "sample_percent": 10}, "serving.shadow"),
        (("serving", "variants"), [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}], "serving.variants"),
        (("aws", "data_capture"), {"enabled": True}, "aws.data_capture.enabled"),
    ],
)
def test_what_fargate_lacks_is_refused_naming_the_field(raw, path, value, field):
    node = raw["defaults"]
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    raw["defaults"]["rollout"] = {"strategy": "all_at_once"}  # keep the rollout out of it
    found = [p for p in problems(raw) if f"defaults.{field}:" in p]
    assert found, problems(raw)
    assert f"aws.platform ecs_fargate: {PLATFORM_FEATURES['ecs_fargate'][field]}" in found[0]


def test_batch_on_fargate_is_an_aws_batch_job_with_fargate_sizes(raw):
    raw["defaults"]["serving"]["batch"] = {"enabled": True}
    env = parse_spec(raw, file="spec.yaml").environment("prod")
    assert env.serving.batch.enabled and env.aws.batch_job is None  # the stack uses AwsBatchJobSpec()'s defaults
    raw["defaults"]["aws"]["batch_job"] = {"cpu": 2048, "memory_mib": 4096, "schedule": "cron(0 2 * * ? *)"}
    assert parse_spec(raw, file="spec.yaml").environment("prod").aws.batch_job.cpu == 2048
    # the same pairs as ECS tasks: AWS Batch VCPU/MEMORY on Fargate
    # https://docs.aws.amazon.com/batch/latest/APIReference/API_ResourceRequirement.html
    raw["defaults"]["aws"]["batch_job"]["memory_mib"] = 2048
    (problem,) = problems(raw)
    assert problem.startswith("spec.yaml: defaults.aws.batch_job.memory_mib: with cpu 2048 Fargate accepts 4096..")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["serving"]["batch"].update(instance_count=2),
            "defaults.serving.batch.instance_count: aws.platform ecs_fargate runs a batch run as one AWS Batch job",
        ),
        (
            lambda d: d["aws"].update(batch_job={"schedule": "every day"}),
            "defaults.aws.batch_job.schedule: use 'rate(N hours|days)' or a 6-field 'cron(",
        ),
        (
            lambda d: d["serving"]["batch"].update(enabled=False) or d["aws"].update(batch_job={"attempts": 3}),
            "defaults.aws.batch_job: describes the batch job of serving.batch: set serving.batch.enabled true",
        ),
        # AWS Batch: 1..10 attempts (https://docs.aws.amazon.com/batch/latest/APIReference/API_RetryStrategy.html)
        (lambda d: d["aws"].update(batch_job={"attempts": 11}), "less than or equal to 10"),
        # AWS Batch: a timeout of at least 60 s (https://docs.aws.amazon.com/batch/latest/APIReference/API_JobTimeout.html)
        (lambda d: d["aws"].update(batch_job={"timeout_minutes": 0}), "greater than or equal to 1"),
    ],
)
def test_what_batch_on_fargate_refuses(raw, edit, expected):
    raw["defaults"]["serving"]["batch"] = {"enabled": True}
    edit(raw["defaults"])
    assert any(expected in p for p in problems(raw)), problems(raw)


def test_batch_job_settings_are_refused_on_sagemaker(raw):
    del raw["defaults"]["aws"]
    raw["defaults"]["rollout"] = {"strategy": "all_at_once"}
    raw["defaults"]["serving"]["batch"] = {"enabled": True}
    raw["defaults"]["aws"] = {"batch_job": {"cpu": 512, "memory_mib": 1024}}
    (problem,) = problems(raw)
    assert "defaults.aws.batch_job: only with aws.platform ecs_fargate (aws.platform sagemaker runs batch as a " in (
        problem
    )


def test_gpu_is_refused_on_fargate(raw):
    raw["defaults"]["compute"]["gpu"] = True
    raw["defaults"]["compute"]["aws_instance_type"] = "ml.g5.xlarge"
    assert any("compute.gpu: aws.platform ecs_fargate: no GPU on Fargate" in p for p in problems(raw))


@pytest.mark.parametrize(
    ("cpu", "memory", "ok"),
    [
        (256, 512, True),
        (256, 4096, False),
        (1024, 2048, True),
        (1024, 9216, False),
        (4096, 8192, True),
        (4096, 8000, False),
    ],
)
def test_fargate_task_sizes(raw, cpu, memory, ok):
    raw["defaults"]["aws"]["fargate"] = {"cpu": cpu, "memory_mib": memory}
    if ok:
        parse_spec(raw, file="spec.yaml")
    else:
        (problem,) = problems(raw)
        assert problem.startswith(f"spec.yaml: defaults.aws.fargate.memory_mib: with cpu {cpu} Fargate accepts ")


def test_fargate_needs_the_image_twinserve_builds_and_a_model_folder(raw):
    raw["container"] = {"image_uri": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/custom:1"}
    assert any("needs container.build and model.artifact.path" in p for p in problems(raw))


def test_fargate_canary_steps_are_traffic_percent_not_instances(raw):
    raw["defaults"]["compute"]["instance_count"] = 1  # SageMaker's canary needs 3 instances; ECS does not
    raw["defaults"]["scaling"] = {"enabled": False}
    parse_spec(raw, file="spec.yaml")
    raw["defaults"]["rollout"] = {"strategy": "linear", "step_percent": 2}
    (problem,) = problems(raw)
    assert "defaults.rollout.step_percent: ECS linear steps are 3..100 percent" in problem


def test_the_pipeline_promotes_fargate_environments(raw):
    raw["pipeline"] = {"source": {"connection_arn": CONNECTION, "repository": "o/r"}}
    assert parse_spec(raw, file="spec.yaml").pipeline.smoke_test


def test_a_pipelined_environment_on_both_clouds_serves_aws_from_sagemaker(raw):
    """Build once: the pipeline's Azure step imports the image the SageMaker stage published; a Fargate
    stage publishes one with the model baked in."""
    raw["pipeline"] = {
        "source": {"connection_arn": CONNECTION, "repository": "o/r"},
        "azure": {
            "tenant_id": "00000000-0000-0000-0000-000000000001",
            "client_id": "00000000-0000-0000-0000-000000000002",
        },
    }
    raw["defaults"]["targets"] = ["aws", "azure"]
    found = [p for p in problems(raw) if "aws.platform: in a pipeline" in p]  # reported where it is set
    assert len(found) == 1 and "the Azure step imports the image the SageMaker stage publishes" in found[0]
    assert "(got 'ecs_fargate')" in found[0]


LAMBDA = Path(__file__).resolve().parents[2] / "examples" / "aws" / "lambda.yaml"


@pytest.fixture()
def lambda_raw() -> dict:
    return yaml.safe_load(LAMBDA.read_text())


def test_the_lambda_example_is_valid(lambda_raw):
    function = parse_spec(lambda_raw, file="spec.yaml").environment("prod").aws.lambda_function
    assert (function.memory_mb, function.provisioned_concurrency) == (2048, 2)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["aws"]["lambda_function"].update(timeout_seconds=20),
            "must be at least serving.request_timeout_seconds",
        ),
        (lambda d: d.setdefault("compute", {}).update(instance_count=2), "Lambda has no instances"),
        (lambda d: d.setdefault("scaling", {}).update(enabled=True), "Lambda scales by itself"),
        (lambda d: d["rollout"].update(wait_seconds=90), "CodeDeploy waits whole minutes"),
        (lambda d: d["rollout"].update(strategy="rolling"), "no rolling batches"),
        (lambda d: d["aws"]["lambda_function"].update(memory_mb=64), "greater than or equal to 128"),
        (
            lambda d: d.setdefault("serving", {}).update(batch={"enabled": True}),
            "serving.batch.enabled: aws.platform lambda: no batch on Lambda",
        ),
        (lambda d: d["aws"]["lambda_function"].update(timeout_seconds=901), "less than or equal to 900"),
    ],
)
def test_what_lambda_refuses(lambda_raw, edit, expected):
    edit(lambda_raw["defaults"])
    assert any(expected in p for p in problems(lambda_raw)), problems(lambda_raw)


def test_an_api_front_on_fargate_must_answer_within_api_gateway_s_timeout(raw):
    # API Gateway's integration timeout is 29 s (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html)
    assert raw["defaults"]["aws"]["api"]["enabled"]
    assert parse_spec(raw, file="spec.yaml").environment("prod").aws.platform == "ecs_fargate"
    raw["defaults"]["serving"]["request_timeout_seconds"] = 45
    (problem,) = problems(raw)
    assert problem.startswith("spec.yaml: defaults.serving.request_timeout_seconds: with aws.api the request must end")
    raw["defaults"]["aws"]["api"]["enabled"] = False  # inside the VPC the load balancer allows longer requests
    assert parse_spec(raw, file="spec.yaml").environment("prod").serving.request_timeout_seconds == 45
