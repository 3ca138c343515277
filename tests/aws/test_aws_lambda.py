"""Lambda serving (aws.platform: lambda), as synthesized from examples/aws/lambda.yaml.

Rules relied on, with their sources:
- function URLs with AWS_IAM auth; callers need lambda:InvokeFunctionUrl and lambda:InvokeFunction:
  https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html
- the Lambda Web Adapter reads AWS_LWA_* (twinserve_serving.lambda_settings is their one home)
- CodeDeploy shifts an alias between versions; alarms roll it back:
  https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-configurations.html
"""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template
from aws_synth import DEPLOY_SPEC

from twinserve.spec import load_spec
from twinserve_serving.lambda_settings import lambda_environment

EXAMPLE = DEPLOY_SPEC.parents[1] / "examples" / "aws" / "lambda.yaml"
ENV = load_spec(EXAMPLE).environment("prod")
NAME = "iris-lambda-prod"


@pytest.fixture(scope="module")
def template(synth) -> Template:
    return Template.from_json(synth.template(f"{NAME}/Serving"))


def _one(template: Template, type_: str) -> dict:
    found = template.find_resources(type_)
    assert len(found) == 1, f"expected one {type_}, found {list(found)}"
    return next(iter(found.values()))["Properties"]


def test_the_function_runs_the_image_with_the_adapter_settings(template):
    function = _one(template, "AWS::Lambda::Function")
    assert function["PackageType"] == "Image"
    assert (function["MemorySize"], function["Timeout"]) == (
        ENV.aws.lambda_function.memory_mb,
        ENV.aws.lambda_function.timeout_seconds,
    )
    assert function["EphemeralStorage"] == {"Size": ENV.aws.lambda_function.ephemeral_storage_mb}
    variables = function["Environment"]["Variables"]
    for name, value in lambda_environment(8080).items():
        assert variables[name] == value, name
    assert variables["AWS_LWA_READINESS_CHECK_PATH"] == "/ping"  # 503 while loading: not ready
    assert variables["TWINSERVE_WORKERS"] == "1"  # one request per execution environment
    assert variables["SAGEMAKER_MODEL_SERVER_TIMEOUT"] == str(ENV.serving.request_timeout_seconds - 1)


def test_the_live_alias_has_an_iam_authenticated_url_and_warm_capacity(template):
    alias = _one(template, "AWS::Lambda::Alias")
    assert alias["Name"] == "live"
    assert alias["ProvisionedConcurrencyConfig"] == {
        "ProvisionedConcurrentExecutions": ENV.aws.lambda_function.provisioned_concurrency
    }
    url = _one(template, "AWS::Lambda::Url")
    assert url["AuthType"] == "AWS_IAM"
    assert url["Qualifier"] == "live"
    assert not [
        p for p in template.find_resources("AWS::Lambda::Permission").values() if p["Properties"]["Principal"] == "*"
    ]  # nothing public


def test_codedeploy_canary_rolls_back_on_the_function_alarms(template):
    config = _one(template, "AWS::CodeDeploy::DeploymentConfig")
    canary = config["TrafficRoutingConfig"]
    assert canary["Type"] == "TimeBasedCanary"
    assert canary["TimeBasedCanary"] == {
        "CanaryInterval": ENV.rollout.wait_seconds // 60,
        "CanaryPercentage": ENV.rollout.step_percent,
    }
    group = _one(template, "AWS::CodeDeploy::DeploymentGroup")
    names = [a["Name"] for a in group["AlarmConfiguration"]["Alarms"]]
    assert names == [f"{NAME}-5xx", f"{NAME}-latency-p99", f"{NAME}-errors", f"{NAME}-throttles"]
    assert group["AutoRollbackConfiguration"]["Events"] == ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
    alarms = {a["Properties"]["AlarmName"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
    assert set(names) <= alarms


def test_the_role_writes_only_its_log_group(template):
    function = _one(template, "AWS::Lambda::Function")
    role_id = function["Role"]["Fn::GetAtt"][0]
    role = template.to_json()["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role  # no AWSLambdaBasicExecutionRole (every log group)


def test_url_alarms_watch_the_alias(template):
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
    }
    five = alarms[f"{NAME}-5xx"]
    assert five["MetricName"] == "Url5xxCount" and five["Threshold"] == ENV.alarms.errors_5xx
    assert {d["Name"]: d["Value"] for d in five["Dimensions"]} == {"FunctionName": NAME, "Resource": f"{NAME}:live"}
    assert alarms[f"{NAME}-latency-p99"]["Threshold"] == ENV.alarms.model_latency_p99_ms


def test_the_api_front_proxies_to_the_alias(template):
    (method,) = [
        m["Properties"]
        for m in template.find_resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "POST"
    ]
    assert method["AuthorizationType"] == "AWS_IAM"
    assert method["Integration"]["Type"] == "AWS_PROXY"  # the adapter reads API Gateway events
    alias = next(iter(template.find_resources("AWS::Lambda::Alias")))
    assert alias in json.dumps(method["Integration"]["Uri"])
