"""Disaster recovery (aws.regions), as synthesized from examples/aws/dr-two-regions.yaml.

Rules relied on, with their sources:
- Route 53 failover: one PRIMARY and one SECONDARY record per name, each with a health check; Route 53
  answers with the primary while its health check passes:
  https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-types.html
- HTTPS health checks request FullyQualifiedDomainName:Port/ResourcePath and count 2xx/3xx as healthy,
  FailureThreshold consecutive failures mark it unhealthy:
  https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html
- IAM roles, CloudWatch dashboards and budgets are account-global; SageMaker endpoints, alarms, KMS
  aliases and log groups are regional: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Dashboards.html
- a multi-region CloudTrail trail records every region: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/receive-cloudtrail-log-files-from-multiple-regions.html
- DescribeEndpoint (JSON 1.1, X-Amz-Target SageMaker.DescribeEndpoint) and its EndpointStatus values:
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html
"""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template
from aws_synth import DEPLOY_SPEC

from twinserve.platform import aws as aws_platform
from twinserve.spec import SpecError, load_spec, parse_spec

EXAMPLE = DEPLOY_SPEC.parents[1] / "examples" / "aws" / "dr-two-regions.yaml"
SPEC = load_spec(EXAMPLE)
ENV = SPEC.environment("prod")
PRIMARY, SECONDARY = "iris-dr-prod", "iris-dr-prod-us-west-2"


@pytest.fixture(scope="module")
def primary(synth) -> Template:
    return Template.from_json(synth.template(f"{PRIMARY}/Serving"))


@pytest.fixture(scope="module")
def secondary(synth) -> Template:
    return Template.from_json(synth.template(f"{SECONDARY}/Serving"))


def _one(template: Template, type_: str) -> dict:
    found = template.find_resources(type_)
    assert len(found) == 1, f"expected one {type_}, found {list(found)}"
    return next(iter(found.values()))["Properties"]


def test_each_region_gets_a_stage_and_only_the_primary_a_registry(synth):
    assert (ENV.aws.primary_region, ENV.aws.secondary_regions) == ("us-east-1", ["us-west-2"])
    assert synth.stages[PRIMARY].serving.region == "us-east-1"
    assert synth.stages[SECONDARY].serving.region == "us-west-2"
    assert synth.stages[PRIMARY].registry is not None
    assert synth.stages[SECONDARY].registry is None  # the model package group and repository stay primary
    assert "iris-dr-staging-us-west-2" not in synth.stages  # staging lists no regions


def test_the_same_endpoint_serves_in_both_regions_with_its_own_alarms(primary, secondary):
    for template in (primary, secondary):
        assert _one(template, "AWS::SageMaker::Endpoint")["EndpointName"] == PRIMARY
        names = {a["Properties"]["AlarmName"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
        assert f"{PRIMARY}-AllTraffic-5xx" in names or any(n.endswith("-5xx") for n in names)
        assert _one(template, "AWS::KMS::Key")["EnableKeyRotation"] is True  # each region's data, its own key


def test_account_global_things_are_not_duplicated(primary, secondary):
    assert _one(primary, "AWS::CloudWatch::Dashboard")["DashboardName"] == PRIMARY
    assert _one(secondary, "AWS::CloudWatch::Dashboard")["DashboardName"] == f"{PRIMARY}-us-west-2"
    assert primary.find_resources("AWS::CloudTrail::Trail")  # multi-region: it records us-west-2 too
    assert _one(primary, "AWS::CloudTrail::Trail")["IsMultiRegionTrail"] is True
    assert not secondary.find_resources("AWS::CloudTrail::Trail")
    assert not secondary.find_resources("AWS::Budgets::Budget")  # the primary's counts every region's tags
    assert _one(secondary, "AWS::SageMaker::Endpoint")["Tags"] == _one(primary, "AWS::SageMaker::Endpoint")["Tags"]


def test_one_name_fails_over_from_the_primary_to_the_secondary(primary, secondary):
    records = {}
    for label, template in (("primary", primary), ("secondary", secondary)):
        record = _one(template, "AWS::Route53::RecordSet")
        (check_id,) = template.find_resources("AWS::Route53::HealthCheck")
        (domain_id,) = template.find_resources("AWS::ApiGateway::DomainName")
        assert record["HealthCheckId"] == {"Fn::GetAtt": [check_id, "HealthCheckId"]}
        assert record["AliasTarget"]["DNSName"] == {"Fn::GetAtt": [domain_id, "RegionalDomainName"]}
        assert record["AliasTarget"]["EvaluateTargetHealth"] is False
        records[label] = record
    assert {r["Name"] for r in records.values()} == {ENV.aws.api.domain_name}
    assert {r["HostedZoneId"] for r in records.values()} == {ENV.aws.api.hosted_zone_id}
    assert (records["primary"]["Failover"], records["secondary"]["Failover"]) == ("PRIMARY", "SECONDARY")
    assert records["primary"]["SetIdentifier"] != records["secondary"]["SetIdentifier"]


@pytest.mark.parametrize(("stage", "region"), [("primary", "us-east-1"), ("secondary", "us-west-2")])
def test_each_health_check_asks_its_own_regions_readiness_route(request, stage, region):
    template = request.getfixturevalue(stage)
    config = _one(template, "AWS::Route53::HealthCheck")["HealthCheckConfig"]
    assert (config["Type"], config["Port"], config["ResourcePath"], config["EnableSNI"]) == (
        "HTTPS",
        443,
        "/v1/ping",
        True,
    )
    assert config["RequestInterval"] == aws_platform.ROUTE53_HEALTH_CHECK_INTERVAL_SECONDS
    assert config["FailureThreshold"] == aws_platform.ROUTE53_HEALTH_CHECK_FAILURE_THRESHOLD
    (api_id,) = template.find_resources("AWS::ApiGateway::RestApi")
    # the regional execute-api host, not the failover name (which would check whichever region answers)
    assert config["FullyQualifiedDomainName"]["Fn::Join"][1][:2] == [{"Ref": api_id}, f".execute-api.{region}."]


def test_the_readiness_route_reads_the_endpoint_status_without_auth(primary):
    (get,) = [
        m["Properties"]
        for m in primary.find_resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "GET"
    ]
    assert get["AuthorizationType"] == "NONE"  # Route 53 cannot sign; the route returns no model data
    integration = get["Integration"]
    assert integration["RequestParameters"]["integration.request.header.X-Amz-Target"] == (
        "'SageMaker.DescribeEndpoint'"
    )
    assert json.loads(integration["RequestTemplates"]["application/json"]) == {"EndpointName": PRIMARY}
    ready, unavailable = integration["IntegrationResponses"]
    template = ready["ResponseTemplates"]["application/json"]
    assert all(f'"{status}"' in template for status in aws_platform.SAGEMAKER_SERVING_STATUSES)
    assert "$context.responseOverride.status = 503" in template  # not serving: the check fails
    assert (unavailable["StatusCode"], unavailable["SelectionPattern"]) == ("503", r"[45]\d{2}")
    statements = [
        s
        for name, p in primary.find_resources("AWS::IAM::Policy").items()
        if name.startswith("ApiStatusRole")
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert [s["Action"] for s in statements] == ["sagemaker:DescribeEndpoint"]
    assert statements[0]["Resource"] == f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{PRIMARY}"


def test_each_region_has_a_dns_validated_certificate_for_the_name(primary, secondary):
    for template in (primary, secondary):
        certificate = _one(template, "AWS::CertificateManager::Certificate")
        assert certificate["DomainName"] == ENV.aws.api.domain_name
        assert certificate["ValidationMethod"] == "DNS"
        assert certificate["DomainValidationOptions"][0]["HostedZoneId"] == ENV.aws.api.hosted_zone_id
        assert _one(template, "AWS::ApiGateway::DomainName")["SecurityPolicy"] == "TLS_1_2"


def test_the_pipeline_deploys_the_secondary_right_after_the_primary(synth):
    template = synth.pipeline_template("iris-dr-pipeline")
    (pipeline,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    names = [s["Name"] for s in pipeline["Properties"]["Stages"]]
    prod = names.index(PRIMARY)
    assert names[prod + 1] == SECONDARY and names.index("iris-dr-staging") < prod
    actions = {s["Name"]: s["Actions"] for s in pipeline["Properties"]["Stages"]}
    deploy_regions = {a.get("Region") for a in actions[SECONDARY] if a["ActionTypeId"]["Category"] == "Deploy"}
    assert deploy_regions == {"us-west-2"}
    assert any(a["Name"] == "SmokeTest" for a in actions[SECONDARY])
    smoke_role_policy = json.dumps(template)
    assert "role/twinserve-iris-dr-prod-smoke-test-us-west-2" in smoke_role_policy


def _raw(**aws) -> dict:
    import yaml

    raw = yaml.safe_load(EXAMPLE.read_text())
    raw.pop("pipeline")
    raw["environments"]["prod"]["aws"].update(aws)
    return raw


def _problems(raw: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(raw, file="spec.yaml")
    return [issue.render("spec.yaml") for issue in info.value.issues]


@pytest.mark.parametrize(
    ("aws", "expected"),
    [
        ({"regions": ["us-east-1", "us-east-1"]}, "environments.prod.aws.regions.1: listed twice"),
        ({"regions": ["us-west-2", "us-east-1"]}, "aws.region: with aws.regions the primary is its first, 'us-west-2'"),
        ({"regions": ["us-east-1"]}, "environments.prod.aws.regions: list 2..3 regions"),
        (
            {"regions": ["us-east-1", "us-west-2", "eu-west-1"]},
            "environments.prod.aws.regions: a failover name has one primary and one secondary record",
        ),
        ({"vpc": {"subnet_ids": ["subnet-0a"], "security_group_ids": ["sg-0a"]}}, "aws.vpc: a VPC exists in one"),
    ],
)
def test_region_lists_that_cannot_fail_over_are_refused(aws, expected):
    problems = _problems(_raw(**aws))
    assert any(p.startswith(f"spec.yaml: {expected}") or expected in p for p in problems), problems


def test_a_domain_needs_its_zone_and_must_be_in_it():
    raw = _raw()
    raw["environments"]["prod"]["aws"]["api"]["domain_name"] = "api.other.example.org"
    assert any("must be a name in the hosted zone 'iris.example.com'" in p for p in _problems(raw))
    raw = _raw()
    del raw["environments"]["prod"]["aws"]["api"]["hosted_zone_id"]
    assert any("aws.api.hosted_zone_id: a custom domain needs all of" in p for p in _problems(raw))


def test_a_pipeline_over_regions_needs_its_own_region():
    import yaml

    raw = yaml.safe_load(EXAMPLE.read_text())
    del raw["pipeline"]["region"]
    del raw["defaults"]["aws"]["region"]
    assert any(p.startswith("spec.yaml: pipeline.region: set the pipeline's region") for p in _problems(raw))


def test_what_lives_in_one_region_cannot_serve_two():
    # SageMaker reads ModelDataUrl and pulls Image in the endpoint's region:
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContainerDefinition.html
    raw = _raw()
    raw["model"]["artifact"] = {"s3_uri": "s3://models-us-east-1/iris/model.tar.gz"}
    assert any("model.artifact.s3_uri names a bucket in one region" in p for p in _problems(raw))
    raw = _raw()
    raw["container"] = {"image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/iris:1"}
    assert any("container.image_uri is an ECR image of one region" in p for p in _problems(raw))


def test_one_spec_serves_two_regions_on_both_clouds(synth):
    """examples/two-clouds/dr-two-regions.yaml: its AWS side here, its Azure side in
    tests/azure/test_azure_disaster_recovery.py."""
    two_clouds = load_spec(EXAMPLE.parents[1] / "two-clouds" / "dr-two-regions.yaml").environment("prod")
    assert two_clouds.targets == ["aws", "azure"]
    assert synth.stages["twin-dr-prod"].serving.region == "us-east-1"
    assert synth.stages["twin-dr-prod-us-west-2"].serving.region == "us-west-2"
    failover = {
        Template.from_json(synth.template(f"{stage}/Serving")).find_resources("AWS::Route53::RecordSet")[
            "ApiFailoverRecord"
        ]["Properties"]["Failover"]
        for stage in ("twin-dr-prod", "twin-dr-prod-us-west-2")
    }
    assert failover == {"PRIMARY", "SECONDARY"}
