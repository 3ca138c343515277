"""Least privilege, re-checked on every synthesized template: every IAM role says why it exists, none
may do everything, and docs/aws.md's role table is generated from the sample templates (set
TWINSERVE_WRITE_DOCS=1 to rewrite it, then review the diff).

Actions on ``*`` are the ones IAM offers no resource-level permission for (e.g. ``ecr:GetAuthorizationToken``,
``cloudwatch:PutMetricData``, the EC2 network-interface calls SageMaker makes for a VPC):
https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
"""

from __future__ import annotations

import os
import re

import pytest
from aws_roles import DOCUMENTED_STACKS, documented_table, role_rows, role_table, write_documented_table
from aws_synth import pipeline_cases, stack_cases


@pytest.fixture(scope="module")
def every_role(synth):
    rows = [row for case in stack_cases() for row in role_rows(case, synth.template(case))]
    rows += [row for case in pipeline_cases() for row in role_rows(case, synth.pipeline_template(case))]
    assert len(rows) > 50  # the templates were read
    return rows


def test_every_role_says_why_it_exists(every_role):
    assert [f"{row.stack} {row.role}" for row in every_role if not row.purpose] == []


def test_no_role_may_do_everything(every_role):
    everything = re.compile(r"^(\*|[a-z0-9-]+:\*)$")  # "*" or a whole service
    broad = [(row.stack, row.role, a) for row in every_role for a in row.scoped_actions + row.unscoped_actions]
    assert [b for b in broad if everything.match(b[2])] == []
    assert not [row for row in every_role if "AdministratorAccess" in row.managed_policies]


def test_the_serving_roles_touch_only_what_they_serve(every_role):
    # the SageMaker execution role's '*' actions are those without resource-level permissions
    (execution,) = [r for r in every_role if r.stack == "iris-prod/Serving" and r.role == "ExecutionRole"]
    assert set(execution.unscoped_actions) <= {
        "cloudwatch:PutMetricData",
        "ecr:GetAuthorizationToken",
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
    }
    (task,) = [r for r in every_role if r.stack == "iris-fargate-prod/Serving" and r.role == "ServiceTaskTaskRole"]
    assert task.scoped_actions == task.unscoped_actions == ()  # the server calls no AWS API


def test_docs_list_the_roles(synth):
    rows = [row for case in DOCUMENTED_STACKS for row in role_rows(case, synth.template(case))]
    rows += [row for row in role_rows("iris-pipeline", synth.pipeline_template("iris-pipeline"))]
    table = role_table(rows)
    if os.environ.get("TWINSERVE_WRITE_DOCS") == "1":
        write_documented_table(table)
    assert documented_table() == table, "docs/aws.md's role table is stale: rerun with TWINSERVE_WRITE_DOCS=1"
