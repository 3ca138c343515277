"""The promotion pipeline across AWS platforms (examples/aws/pipeline-platforms.yaml -> stack
``platforms-pipeline``): dev on Lambda, staging on ECS Fargate, prod on SageMaker, each smoke-tested the
way its platform is called, through a role that may call that environment's serving only.
tests/test_smoke_test.py runs the script's three modes (and the probe's code) against `twinserve local`."""

from __future__ import annotations

import json

import pytest
from aws_synth import LINT_REGIONS, normalise
from syrupy.extensions.json import JSONSnapshotExtension

PIPELINE = "platforms-pipeline"
PLATFORMS = {"dev": "lambda", "staging": "ecs_fargate", "prod": "sagemaker"}
TARGETS = {  # smoke-test mode and argument, the variable, the Serving output that fills it
    "dev": ("lambda --function-url", "FUNCTION_URL", "FunctionUrl"),
    "staging": ("fargate --probe-function", "PROBE_FUNCTION", "ProbeFunctionName"),
    "prod": ("sagemaker --endpoint-name", "ENDPOINT_NAME", "EndpointName"),
}
CALLER = "arn:aws:iam::123456789012:role/twinserve-platforms-pipeline-smoke-test"


@pytest.fixture(scope="module")
def template(synth) -> dict:
    return synth.pipeline_template(PIPELINE)


def _resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _smoke_test_role(serving: dict, env: str) -> dict:
    (role,) = [
        r
        for r in _resources(serving, "AWS::IAM::Role").values()
        if r["Properties"].get("RoleName") == f"twinserve-platforms-{env}-smoke-test"
    ]
    return role


def _role_statements(serving: dict, role_id: str) -> list[dict]:
    return [
        statement
        for policy in _resources(serving, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_each_environment_is_served_by_its_platform(synth):
    for env, platform in PLATFORMS.items():
        assert synth.stack(f"platforms-{env}/Serving").environment_spec.aws.platform == platform


def test_every_environment_is_smoke_tested_the_way_its_platform_is_called(synth, template):
    (pipeline,) = _resources(template, "AWS::CodePipeline::Pipeline").values()
    stages = {s["Name"]: s["Actions"] for s in pipeline["Properties"]["Stages"]}
    assert [name for name in stages if name.startswith("platforms-")] == [f"platforms-{e}" for e in PLATFORMS]
    for env, (mode, variable, output) in TARGETS.items():
        actions = stages[f"platforms-{env}"]
        (serving,) = [a for a in actions if a["Name"] == "Serving.Deploy"]
        (smoke,) = [a for a in actions if a["Name"] == "SmokeTest"]
        assert smoke["RunOrder"] > serving["RunOrder"]
        variables = {v["name"]: v["value"] for v in json.loads(smoke["Configuration"]["EnvironmentVariables"])}
        namespace = serving["Namespace"]
        assert variables == {
            variable: f"#{{{namespace}.{output}}}",
            "SMOKE_TEST_ROLE_ARN": f"#{{{namespace}.SmokeTestRoleArn}}",
        }
        project = template["Resources"][smoke["Configuration"]["ProjectName"]["Ref"]]
        commands = json.loads(project["Properties"]["Source"]["BuildSpec"])["phases"]["build"]["commands"]
        (run,) = [c for c in commands if "stacks.pipeline_scripts.smoke_test" in c]
        assert f'smoke_test {mode} "${variable}" --role-arn "$SMOKE_TEST_ROLE_ARN" --region eu-west-1' in run
        assert output in synth.template(f"platforms-{env}/Serving")["Outputs"]


def test_the_pipeline_may_assume_exactly_the_three_smoke_test_roles(template):
    (role_id,) = [
        k
        for k, r in _resources(template, "AWS::IAM::Role").items()
        if r["Properties"].get("RoleName") == "twinserve-platforms-pipeline-smoke-test"
    ]
    statements = [s for s in _role_statements(template, role_id) if s["Action"] == "sts:AssumeRole"]
    assumed = sorted(
        r for s in statements for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    )
    assert assumed == [
        f"arn:aws:iam::{account}:role/twinserve-platforms-{env}-smoke-test"
        for env, account in (("dev", "111111111111"), ("staging", "222222222222"), ("prod", "333333333333"))
    ]


def test_each_smoke_test_role_trusts_only_the_pipelines_role(synth):
    for env in PLATFORMS:
        role = _smoke_test_role(synth.template(f"platforms-{env}/Serving"), env)
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Condition"] == {"ArnEquals": {"aws:PrincipalArn": CALLER}}


def test_the_lambda_role_may_call_the_live_alias_url_only(synth):
    """Function URLs with AWS_IAM auth need lambda:InvokeFunctionUrl (and, since October 2025,
    lambda:InvokeFunction) on the function or alias the URL belongs to; InvokeFunction only through the
    URL (condition lambda:InvokedViaFunctionUrl): https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"""
    serving = synth.template("platforms-dev/Serving")
    (role_id,) = [k for k, r in _resources(serving, "AWS::IAM::Role").items() if r is _smoke_test_role(serving, "dev")]
    statements = _role_statements(serving, role_id)
    (alias_id,) = _resources(serving, "AWS::Lambda::Alias")
    by_action = {s["Action"]: s for s in statements}
    assert sorted(by_action) == ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"] and len(statements) == 2
    assert by_action["lambda:InvokeFunctionUrl"]["Condition"] == {
        "StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}
    }
    assert by_action["lambda:InvokeFunction"]["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": True}}
    for statement in statements:
        assert statement["Resource"] == {"Ref": alias_id}


def test_the_fargate_probe_sits_in_the_service_vpc_and_may_reach_the_service_port_only(synth):
    serving = synth.template("platforms-staging/Serving")
    (probe,) = [
        r
        for r in _resources(serving, "AWS::Lambda::Function").values()
        if r["Properties"].get("FunctionName") == "platforms-staging-probe"
    ]
    props = probe["Properties"]
    (balancer_id,) = _resources(serving, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    variables = props["Environment"]["Variables"]
    assert variables["ALLOWED_PATHS"] == "/invocations"
    assert variables["TARGET_URL"] == {"Fn::Join": ["", ["http://", {"Fn::GetAtt": [balancer_id, "DNSName"]}]]}
    (vpc_id,) = _resources(serving, "AWS::EC2::VPC")
    subnets = {
        k for k, r in _resources(serving, "AWS::EC2::Subnet").items() if r["Properties"]["VpcId"] == {"Ref": vpc_id}
    }
    assert {s["Ref"] for s in props["VpcConfig"]["SubnetIds"]} <= subnets
    (group,) = props["VpcConfig"]["SecurityGroupIds"]
    group_props = serving["Resources"][group["Fn::GetAtt"][0]]["Properties"]
    assert "SecurityGroupIngress" not in group_props
    (egress,) = group_props["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 80, 80)
    assert egress["CidrIp"] == {"Fn::GetAtt": [vpc_id, "CidrBlock"]}
    # the smoke-test role may invoke the probe and nothing else
    role = _smoke_test_role(serving, "staging")
    (role_id,) = [k for k, r in serving["Resources"].items() if r is role]
    (probe_id,) = [k for k, r in serving["Resources"].items() if r is probe]
    (statement,) = _role_statements(serving, role_id)
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Resource"] == {"Fn::GetAtt": [probe_id, "Arn"]}  # the function, no version wildcard
    assert serving["Outputs"]["ProbeFunctionName"]["Value"] == {"Ref": probe_id}


def test_platforms_pipeline_snapshot(template, snapshot):
    assert normalise(template) == snapshot.use_extension(JSONSnapshotExtension)


def test_platforms_pipeline_cfn_lint_clean(template):
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(template), config=ManualArgs(regions=LINT_REGIONS))
    assert [f"{m.rule.id} {m.message} @ {'/'.join(map(str, m.path))}" for m in matches] == []
