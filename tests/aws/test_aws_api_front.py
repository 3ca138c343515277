"""The API front (aws.api) as synthesized from examples/aws/api-front.yaml (SageMaker backend).

Rules relied on, with their sources:
- API Gateway answers 200 for every backend status unless integration responses map them:
  https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-integration-settings-integration-response.html
- the default integration timeout is 29 s:
  https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
- IAM authorization: callers sign with SigV4 and need execute-api:Invoke on the method.
"""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template
from aws_synth import DEPLOY_SPEC

from twinserve.aws.api_front import SAGEMAKER_ERROR_MAPPINGS
from twinserve.spec import SpecError, load_spec, parse_spec

EXAMPLE = DEPLOY_SPEC.parents[1] / "examples" / "aws" / "api-front.yaml"
ENV = load_spec(EXAMPLE).environment("prod")
NAME = "iris-api-prod"


@pytest.fixture(scope="module")
def template(synth) -> Template:
    return Template.from_json(synth.template(f"{NAME}/Serving"))


def _method(template: Template) -> dict:
    (method,) = [
        m["Properties"]
        for m in template.find_resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "POST"
    ]
    return method


def test_post_invocations_requires_iam_and_an_api_key(template):
    method = _method(template)
    assert method["AuthorizationType"] == "AWS_IAM"
    assert method["ApiKeyRequired"] is True
    assert method["RequestParameters"]["method.request.header.Content-Type"] is True
    assert "RequestValidatorId" in method
    (resource,) = template.find_resources("AWS::ApiGateway::Resource").values()
    assert resource["Properties"]["PathPart"] == "invocations"
    assert len(template.find_resources("AWS::ApiGateway::Method")) == 1  # nothing else is exposed


def test_the_integration_invokes_the_endpoint_and_maps_its_errors(template):
    integration = _method(template)["Integration"]
    assert integration["Type"] == "AWS"
    assert json.dumps(integration["Uri"]).endswith(f':runtime.sagemaker:path/endpoints/{NAME}/invocations"]]}}')
    assert integration["TimeoutInMillis"] == 29000
    mapped = {r.get("SelectionPattern"): int(r["StatusCode"]) for r in integration["IntegrationResponses"]}
    assert mapped == {r"2\d{2}": 200, **dict(SAGEMAKER_ERROR_MAPPINGS)}  # never a 200 for a backend error
    statuses = {int(r["StatusCode"]) for r in _method(template)["MethodResponses"]}
    assert statuses == set(mapped.values())


def test_the_invoke_role_may_call_only_this_endpoint(template):
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for name, p in template.find_resources("AWS::IAM::Policy").items()
        if name.startswith("ApiInvokeRole")
    ]
    assert policies == [
        [
            {
                "Action": "sagemaker:InvokeEndpoint",
                "Effect": "Allow",
                "Resource": policies[0][0]["Resource"],
            }
        ]
    ]
    assert json.dumps(policies[0][0]["Resource"]).endswith(f':endpoint/{NAME}"]]}}')


def test_stage_throttling_logs_tracing_usage_plan_and_waf(template):
    (stage,) = template.find_resources("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    assert "AccessLogSetting" in props
    (settings,) = props["MethodSettings"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (
        ENV.aws.api.throttle_rate_per_second,
        ENV.aws.api.throttle_burst,
    )
    assert settings["DataTraceEnabled"] is False  # payloads never logged
    (plan,) = template.find_resources("AWS::ApiGateway::UsagePlan").values()
    assert plan["Properties"]["Quota"] == {"Limit": ENV.aws.api.daily_quota, "Period": "DAY"}
    (acl,) = template.find_resources("AWS::WAFv2::WebACL").values()
    names = [r["Name"] for r in acl["Properties"]["Rules"]]
    assert names == ["aws-common", "rate-per-ip", "aws-known-bad-inputs"]
    # AWS's known-bad-inputs group blocks request patterns known to be malicious, Log4j's JNDI lookups
    # (CVE-2021-44228) among them (checkov CKV_AWS_192):
    # https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html
    groups = [
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for r in acl["Properties"]["Rules"]
        if "ManagedRuleGroupStatement" in r["Statement"]
    ]
    assert groups == ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"]
    assert template.find_resources("AWS::WAFv2::WebACLAssociation")


def _sample_with_api(**api) -> dict:
    import yaml

    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["defaults"]["aws"]["api"] = {"enabled": True, **api}
    return raw


def test_a_request_timeout_above_api_gateways_is_refused():
    raw = _sample_with_api()
    raw["defaults"]["serving"]["request_timeout_seconds"] = 60
    with pytest.raises(SpecError, match=r"serving.request_timeout_seconds: with aws.api the request must end within"):
        parse_spec(raw, file="spec.yaml")


def test_fargate_and_async_fronts_and_quota_without_keys_are_refused():
    raw = _sample_with_api(auth="iam", daily_quota=10)
    with pytest.raises(SpecError, match="a quota is per API key"):
        parse_spec(raw, file="spec.yaml")
    raw = _sample_with_api()
    raw["defaults"]["serving"]["endpoint_type"] = "async"
    with pytest.raises(SpecError, match="InvokeEndpointAsync"):
        parse_spec(raw, file="spec.yaml")
