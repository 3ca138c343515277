"""Prod's SageMaker containers in a private network (issue 14, AWS part): a VPC of isolated subnets,
no internet or NAT gateway, VPC endpoints for every AWS API the serving calls, the model in that VPC.

https://docs.aws.amazon.com/sagemaker/latest/dg/host-vpc.html (VpcConfig of a model; the execution
role's network-interface permissions), https://docs.aws.amazon.com/sagemaker/latest/dg/interface-vpc-endpoint.html
(the SageMaker API and runtime endpoints), https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html
(ECR api + dkr and the S3 gateway endpoint for image layers).
"""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from twinserve.aws.private_network import DEFAULT_INTERFACE_SERVICES

EXPECTED_INTERFACES = {"sagemaker.api", "sagemaker.runtime", "ecr.api", "ecr.dkr", "logs", "sts", "kms"}


@pytest.fixture(scope="module")
def serving(synth):
    return lambda stage: Template.from_json(synth.template(f"{stage}/Serving"))


def _service(endpoint: dict) -> str:
    """``sagemaker.runtime`` of ``com.amazonaws.<region>.sagemaker.runtime`` (literal or joined)."""
    name = endpoint["Properties"]["ServiceName"]
    text = name if isinstance(name, str) else "".join(p for p in name["Fn::Join"][1] if isinstance(p, str))
    return text.split(".", 2)[-1] if isinstance(name, str) else text.removeprefix("com.amazonaws.").lstrip(".")


def test_the_default_endpoints_are_the_ones_the_serving_calls():
    assert set(DEFAULT_INTERFACE_SERVICES) == EXPECTED_INTERFACES


def test_prod_serves_from_isolated_subnets_with_endpoints_and_no_route_out(serving):
    template = serving("iris-prod")
    assert template.find_resources("AWS::EC2::InternetGateway") == {}
    assert template.find_resources("AWS::EC2::NatGateway") == {}
    (vpc_id,) = template.find_resources("AWS::EC2::VPC")
    endpoints = template.find_resources("AWS::EC2::VPCEndpoint")
    interfaces = {_service(e): e for e in endpoints.values() if e["Properties"].get("VpcEndpointType") == "Interface"}
    assert set(interfaces) == EXPECTED_INTERFACES
    for endpoint in interfaces.values():
        assert endpoint["Properties"]["PrivateDnsEnabled"] is True
        assert endpoint["Properties"]["VpcId"] == {"Ref": vpc_id}
    gateways = [e for e in endpoints.values() if e["Properties"].get("VpcEndpointType") == "Gateway"]
    assert len(gateways) == 1 and json.dumps(gateways[0]["Properties"]["ServiceName"]).endswith('.s3"]]}')
    for subnet in template.find_resources("AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    routes = template.find_resources("AWS::EC2::Route")
    assert routes == {}  # isolated: only the local route (and the S3 endpoint's prefix list routes)
    assert len(template.find_resources("AWS::EC2::FlowLog")) == 1


def test_the_prod_model_runs_in_that_vpc_with_the_workload_group(serving):
    template = serving("iris-prod")
    subnets = set(template.find_resources("AWS::EC2::Subnet"))
    models = template.find_resources("AWS::SageMaker::Model")
    assert models
    groups = template.find_resources("AWS::EC2::SecurityGroup")
    (workload,) = [k for k, g in groups.items() if "serving containers" in g["Properties"]["GroupDescription"]]
    for model in models.values():
        config = model["Properties"]["VpcConfig"]
        assert {s["Ref"] for s in config["Subnets"]} == subnets
        assert config["SecurityGroupIds"] == [{"Fn::GetAtt": [workload, "GroupId"]}]
    props = groups[workload]["Properties"]
    assert "SecurityGroupIngress" not in props
    (egress,) = props["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)


def test_the_endpoints_take_https_from_the_vpc_only(serving):
    template = serving("iris-prod")
    groups = template.find_resources("AWS::EC2::SecurityGroup")
    (vpc_id,) = template.find_resources("AWS::EC2::VPC")
    (group,) = [g for g in groups.values() if "VPC interface endpoints" in g["Properties"]["GroupDescription"]]
    (ingress,) = group["Properties"]["SecurityGroupIngress"]
    assert (ingress["FromPort"], ingress["ToPort"]) == (443, 443)
    assert ingress["CidrIp"] == {"Fn::GetAtt": [vpc_id, "CidrBlock"]}


def test_dev_and_staging_stay_on_sagemakers_network_unless_asked(serving):
    for stage in ("iris-dev", "iris-staging"):
        template = serving(stage)
        assert template.find_resources("AWS::EC2::VPC") == {}
        for model in template.find_resources("AWS::SageMaker::Model").values():
            assert "VpcConfig" not in model["Properties"]


def test_network_resources_are_named_after_the_serving_not_the_construct_path(serving):
    # The pipeline deploys the same stack at a deeper construct path; path-derived Name tags would make
    # its template differ from `cdk deploy`'s (tests/aws/test_pipeline.py compares them).
    template = serving("iris-prod")

    def names(kind: str) -> set[str]:
        return {
            tag["Value"]
            for resource in template.find_resources(kind).values()
            for tag in resource["Properties"].get("Tags", [])
            if tag["Key"] == "Name"
        }

    assert names("AWS::EC2::VPC") == {"iris-prod"}
    assert names("AWS::EC2::Subnet") == {"iris-prod-private-1", "iris-prod-private-2"}
    assert names("AWS::EC2::FlowLog") == {"iris-prod-flow-log"}


def test_models_wait_for_the_endpoints_and_can_be_replaced(serving):
    # A model in an isolated subnet fetches its archive through the S3 gateway endpoint
    # (https://docs.aws.amazon.com/sagemaker/latest/dg/host-vpc.html): created before it, the endpoint fails.
    # VpcConfig is create-only ("Update requires: Replacement",
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sagemaker-model.html):
    # turning the network on or off replaces the models, which works only while they are unnamed.
    template = serving("iris-prod")
    endpoints = set(template.find_resources("AWS::EC2::VPCEndpoint"))
    configs = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    for model in template.find_resources("AWS::SageMaker::Model").values():
        assert endpoints <= set(model["DependsOn"])
        assert "ModelName" not in model["Properties"]
    assert all("EndpointConfigName" not in c["Properties"] for c in configs)
