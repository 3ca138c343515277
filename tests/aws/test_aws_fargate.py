"""ECS Fargate serving (aws.platform: ecs_fargate), as synthesized from examples/aws/fargate.yaml.

Each assertion states a rule the service relies on, with its source:
- native ECS canary/linear/blue-green with alarm rollback and an alternate target group behind one
  listener rule: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-blue-green.html
- Fargate has no model mount: the model is baked into the image (the same server layers).
- target groups count only 2xx as healthy: the container's /ping answers 503 while the model loads.
- REST API private integrations to an ALB: HTTP_PROXY, connection type VPC_LINK with a VPC link V2 id and
  the load balancer's ARN as integration target; the stage name is sent in front of the path:
  https://docs.aws.amazon.com/apigateway/latest/developerguide/private-integration.html
  https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-private-integration.html
- ALB URL rewrites: a regex on the path, no match -> the request passes unchanged:
  https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-transforms.html
"""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Template
from aws_synth import DEPLOY_SPEC

from twinserve.aws.api_front import STAGE_NAME
from twinserve.spec import load_spec

EXAMPLE = DEPLOY_SPEC.parents[1] / "examples" / "aws" / "fargate.yaml"
ENV = load_spec(EXAMPLE).environment("prod")
NAME = "iris-fargate-prod"


@pytest.fixture(scope="module")
def template(synth) -> Template:
    return Template.from_json(synth.template(f"{NAME}/Serving"))


def _one(template: Template, type_: str) -> dict:
    found = template.find_resources(type_)
    assert len(found) == 1, f"expected one {type_}, found {list(found)}"
    return next(iter(found.values()))["Properties"]


def test_no_sagemaker_resources(template):
    types = {r["Type"] for r in template.to_json()["Resources"].values()}
    assert not [t for t in types if t.startswith("AWS::SageMaker::")]


def test_canary_rollout_rolls_back_on_the_service_alarms(template):
    config = _one(template, "AWS::ECS::Service")["DeploymentConfiguration"]
    assert config["Strategy"] == "CANARY"
    assert config["CanaryConfiguration"] == {
        "CanaryPercent": ENV.rollout.step_percent,
        "CanaryBakeTimeInMinutes": ENV.rollout.wait_seconds // 60,
    }
    assert config["BakeTimeInMinutes"] == ENV.rollout.termination_wait_seconds // 60
    assert config["Alarms"] == {
        "AlarmNames": [f"{NAME}-5xx", f"{NAME}-latency-p99", f"{NAME}-cpu", f"{NAME}-memory"],
        "Enable": True,
        "Rollback": True,
    }
    alarm_names = {a["Properties"]["AlarmName"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
    assert set(config["Alarms"]["AlarmNames"]) <= alarm_names  # the deployment watches alarms that exist


def test_two_target_groups_behind_one_weighted_rule(template):
    service = _one(template, "AWS::ECS::Service")
    (balancer,) = service["LoadBalancers"]
    assert (balancer["ContainerName"], balancer["ContainerPort"]) == ("server", 8080)
    advanced = balancer["AdvancedConfiguration"]
    blue, green = balancer["TargetGroupArn"]["Ref"], advanced["AlternateTargetGroupArn"]["Ref"]
    rule = _one(template, "AWS::ElasticLoadBalancingV2::ListenerRule")
    assert advanced["ProductionListenerRule"]["Ref"] in template.find_resources(
        "AWS::ElasticLoadBalancingV2::ListenerRule"
    )
    (action,) = rule["Actions"]
    weights = {g["TargetGroupArn"]["Ref"]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]}
    assert weights == {blue: 100, green: 0}


def test_target_groups_count_only_2xx_as_healthy_on_ping(template):
    groups = template.find_resources("AWS::ElasticLoadBalancingV2::TargetGroup")
    assert len(groups) == 2
    for group in groups.values():
        props = group["Properties"]
        assert (props["HealthCheckPath"], props["Matcher"], props["TargetType"], props["Port"]) == (
            "/ping",
            {"HttpCode": "200"},
            "ip",
            8080,
        )


def test_internal_load_balancer_in_a_vpc_without_internet(template):
    balancer = _one(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert balancer["Scheme"] == "internal"
    attributes = {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}
    assert attributes["idle_timeout.timeout_seconds"] == str(ENV.serving.request_timeout_seconds)
    assert template.find_resources("AWS::EC2::InternetGateway") == {}
    assert template.find_resources("AWS::EC2::NatGateway") == {}
    services = json.dumps(
        [e["Properties"]["ServiceName"] for e in template.find_resources("AWS::EC2::VPCEndpoint").values()]
    )
    for needed in ("ecr.api", "ecr.dkr", "logs", ".s3"):
        assert needed in services, needed
    assert template.find_resources("AWS::EC2::FlowLog")
    service = _one(template, "AWS::ECS::Service")
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"


def test_task_runs_the_image_with_the_spec_size_and_settings(template):
    task = _one(template, "AWS::ECS::TaskDefinition")
    assert (task["Cpu"], task["Memory"]) == (str(ENV.aws.fargate.cpu), str(ENV.aws.fargate.memory_mib))
    (container,) = task["ContainerDefinitions"]
    assert container["Command"] == ["serve"]
    assert container["User"] == "10001"
    assert container["StopTimeout"] == 30  # the server drains on SIGTERM
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["SAGEMAKER_MODEL_SERVER_TIMEOUT"] == str(ENV.serving.request_timeout_seconds - 1)
    assert env["TWINSERVE_THREADS"] == str(ENV.serving.max_concurrent_requests_per_instance)
    assert _one(template, "AWS::ECS::Service")["DesiredCount"] == ENV.compute.instance_count


def test_the_model_is_baked_into_the_image(synth, template):
    task = _one(template, "AWS::ECS::TaskDefinition")
    image = json.dumps(task["ContainerDefinitions"][0]["Image"])
    asset_hash = next(part for part in image.replace('"', " ").split() if len(part) > 60 and ":" in part).split(":")[-1]
    (context,) = [p for p in synth.outdir.rglob(f"asset.{asset_hash}") if p.is_dir()]
    assert "COPY --chown=10001:10001 model /opt/ml/model" in (context / "Dockerfile").read_text()
    assert (context / "model" / "model.onnx").is_file()
    assert (context / "twinserve_serving" / "server.py").is_file()  # the same server


def test_scaling_on_cpu_and_requests_per_task(template):
    target = _one(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (ENV.scaling.min_instances, ENV.scaling.max_instances)
    policies = [
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        for p in template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    ]
    by_metric = {p["PredefinedMetricSpecification"]["PredefinedMetricType"]: p["TargetValue"] for p in policies}
    assert by_metric == {
        "ECSServiceAverageCPUUtilization": ENV.scaling.cpu_scale_out_percent,
        "ALBRequestCountPerTarget": ENV.scaling.target_invocations_per_instance,
    }


def test_alarm_thresholds_follow_the_spec(template):
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
    }
    assert alarms[f"{NAME}-5xx"]["Threshold"] == ENV.alarms.errors_5xx
    assert alarms[f"{NAME}-5xx"]["MetricName"] == "HTTPCode_Target_5XX_Count"
    assert alarms[f"{NAME}-latency-p99"]["Threshold"] == ENV.alarms.model_latency_p99_ms / 1000
    assert alarms[f"{NAME}-latency-p99"]["ExtendedStatistic"] == "p99"
    topic = list(template.find_resources("AWS::SNS::Topic"))
    assert all([a["Ref"] for a in alarm["AlarmActions"]] == topic for alarm in alarms.values())


def _post_method(template: Template) -> dict:
    (method,) = [
        m["Properties"]
        for m in template.find_resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "POST"
    ]
    return method


def test_the_api_front_reaches_the_internal_load_balancer_over_a_vpc_link_v2(template):
    assert ENV.aws.api.enabled
    method = _post_method(template)
    assert method["AuthorizationType"] == "AWS_IAM"
    integration = method["Integration"]
    (link_id,) = template.find_resources("AWS::ApiGatewayV2::VpcLink")
    (alb_id,) = template.find_resources("AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert (integration["Type"], integration["ConnectionType"]) == ("HTTP_PROXY", "VPC_LINK")
    assert integration["ConnectionId"] == {"Ref": link_id}
    assert integration["IntegrationTarget"] == {"Ref": alb_id}  # the load balancer's ARN
    assert integration["Uri"]["Fn::Join"][1][-1] == ":80/invocations"
    assert integration["TimeoutInMillis"] == 29000
    assert ENV.serving.request_timeout_seconds < 29  # the container answers its own 504 first
    # a proxy passes the service's statuses through: no mapping to a 200
    assert [r["StatusCode"] for r in method["MethodResponses"]] == ["200"]
    assert "IntegrationResponses" not in integration


def test_the_vpc_link_sits_in_the_private_subnets_and_sends_only_to_the_listener(template):
    link = _one(template, "AWS::ApiGatewayV2::VpcLink")
    subnets = {
        name
        for name, s in template.find_resources("AWS::EC2::Subnet").items()
        if s["Properties"].get("MapPublicIpOnLaunch") is not True
    }
    assert {s["Ref"] for s in link["SubnetIds"]} == subnets and len(subnets) == 2
    (group_ref,) = link["SecurityGroupIds"]
    group = template.to_json()["Resources"][group_ref["Fn::GetAtt"][0]]["Properties"]
    (egress,) = group["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 80, 80)
    (vpc_id,) = template.find_resources("AWS::EC2::VPC")
    assert egress["CidrIp"] == {"Fn::GetAtt": [vpc_id, "CidrBlock"]}


def test_the_load_balancer_strips_the_stage_name_the_api_sends(template):
    rule = _one(template, "AWS::ElasticLoadBalancingV2::ListenerRule")
    (transform,) = rule["Transforms"]
    assert transform["Type"] == "url-rewrite"
    (rewrite,) = transform["UrlRewriteConfig"]["Rewrites"]
    # ALB regexes are RE2-like; Python's re agrees on this one (no lookarounds, one group)
    regex, replace = rewrite["Regex"], rewrite["Replace"].replace("$1", r"\1")
    assert re.sub(regex, replace, f"/{STAGE_NAME}/invocations") == "/invocations"
    assert re.sub(regex, replace, "/invocations") == "/invocations"  # the probe's calls pass unchanged
    assert re.sub(regex, replace, f"/{STAGE_NAME}x/invocations") == f"/{STAGE_NAME}x/invocations"
