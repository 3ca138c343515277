"""aws.private_network: which VPC the SageMaker containers join, refused by name where it cannot apply.

https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html (serverless endpoints have no
VPC configuration), https://docs.aws.amazon.com/sagemaker/latest/dg/host-vpc.html (a model's VpcConfig)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from twinserve.spec import SpecError, parse_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "deploy" / "twinserve.yaml"
FARGATE = REPO_ROOT / "examples" / "aws" / "fargate.yaml"


def problems(raw: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(raw, file="spec.yaml")
    return [issue.render("spec.yaml") for issue in info.value.issues]


def _prod_aws(raw: dict) -> dict:
    return raw["environments"].setdefault("prod", {}).setdefault("aws", {})


def test_unset_by_default_and_the_cidr_has_a_default():
    spec = parse_spec(yaml.safe_load(SAMPLE.read_text()), file="spec.yaml")
    aws = spec.environment("prod").aws
    assert aws.private_network is None and aws.network_cidr == "10.50.0.0/16"


def test_a_given_vpc_and_twinserves_vpc_exclude_each_other():
    raw = yaml.safe_load(SAMPLE.read_text())
    _prod_aws(raw).update(private_network=True, vpc={"subnet_ids": ["subnet-0abc"], "security_group_ids": ["sg-0abc"]})
    (problem,) = [p for p in problems(raw) if "private_network" in p]
    assert "environments.prod.aws.private_network: aws.vpc already names the VPC" in problem


def test_serverless_endpoints_cannot_run_in_a_vpc():
    raw = yaml.safe_load(SAMPLE.read_text())
    prod = raw["environments"].setdefault("prod", {})
    prod.setdefault("serving", {})["endpoint_type"] = "serverless"
    _prod_aws(raw)["private_network"] = True
    assert any("aws.private_network: SageMaker serverless endpoints cannot run in a VPC" in p for p in problems(raw))


def test_fargate_has_a_vpc_of_its_own():
    raw = yaml.safe_load(FARGATE.read_text())
    _prod_aws(raw)["private_network"] = True
    assert any(
        "aws.private_network: SageMaker containers only: on aws.platform ecs_fargate" in p for p in problems(raw)
    )


@pytest.mark.parametrize("cidr", ["10.50.0.0/22", "10.50.0.0/8", "10.50.0/16"])
def test_the_cidr_must_hold_a_22_per_zone(cidr):
    raw = yaml.safe_load(SAMPLE.read_text())
    _prod_aws(raw)["network_cidr"] = cidr
    assert any("aws.network_cidr" in p for p in problems(raw))
