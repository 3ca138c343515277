"""checkov, the second IaC security scanner (cdk-nag is the first, test_aws_templates.py), on every
synthesized CloudFormation template: zero findings that are not acknowledged on their resource, with
a reason. The acknowledgments are listed in docs/aws.md, generated from the templates.

One checkov run for the session (aws_checkov.py); its time is printed with ``-s``.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from aws_checkov import (
    acknowledgment_table,
    acknowledgments,
    documented_table,
    finding_text,
    run_checkov,
    synthesized_templates,
    write_documented_table,
)
from aws_synth import stack_cases


@pytest.fixture(scope="session")
def checkov(synth, tmp_path_factory):
    run = run_checkov(synth.outdir, tmp_path_factory.mktemp("checkov"))
    print(f"\ncheckov: {len(run.templates)} templates in {run.seconds:.0f} s")
    return run


def test_checkov_no_unacknowledged_findings(checkov):
    assert [finding_text(checkov, f) for f in checkov.results("failed_checks")] == []


def test_checkov_scanned_every_template(synth, checkov):
    """Every stack of the synthesis (stages, pipelines and the pipelines' stages) was parsed and
    checked: a template checkov could not read would otherwise pass silently."""
    assert checkov.results("parsing_errors") == []
    copied = {str(t.relative_to(checkov.folder)) for t in checkov.templates}
    assert {f"{case}.template.json" for case in stack_cases()} <= copied
    assert len(copied) == len(synthesized_templates(synth.outdir)) >= len(stack_cases()) + len(synth.pipelines)
    checked = {checkov.relative(r) for kind in ("passed_checks", "failed_checks") for r in checkov.results(kind)}
    assert checked == copied


def test_checkov_acknowledgments_are_used_and_reasoned(checkov):
    """Every skip written into a template names a check checkov ran on that resource (a mistyped id or
    a check of another resource type would skip nothing) and gives a reason."""
    skipped = {(checkov.relative(r), r["resource"], r["check_id"]) for r in checkov.results("skipped_checks")}
    written = set()
    for path in checkov.templates:
        for logical_id, resource in json.loads(path.read_text())["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), skip
                assert len(skip["comment"]) > 40, skip
                written.add((str(path.relative_to(checkov.folder)), f"{resource['Type']}.{logical_id}", skip["id"]))
    assert written, "expected acknowledged findings (the access-log bucket cannot log to itself)"
    assert written == skipped


def test_docs_list_the_acknowledgments(checkov):
    """docs/aws.md lists exactly the acknowledgments in the templates (generated from them: set
    TWINSERVE_WRITE_DOCS=1 to rewrite the table, then review the diff)."""
    table = acknowledgment_table(checkov.templates)
    if os.environ.get("TWINSERVE_WRITE_DOCS") == "1":
        write_documented_table(table)
    assert documented_table() == table, "docs/aws.md's checkov table is stale: rerun with TWINSERVE_WRITE_DOCS=1"
    assert len(acknowledgments(checkov.templates)) >= len(table.splitlines()) - 2


# ------------------------------------------------------------------ the helper


def test_acknowledge_checkov_merges_into_the_resource_metadata():
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from constructs import Construct
    from twinserve.aws._nag import acknowledge_checkov

    stack = cdk.Stack(cdk.App(), "Ack")
    bucket = s3.Bucket(stack, "Bucket")
    resource = bucket.node.default_child
    resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
    reason = "a reason long enough to say why the finding does not apply here"
    acknowledge_checkov(bucket, "CKV_AWS_21", reason)
    acknowledge_checkov(resource, "CKV_AWS_18", "first " + reason)
    acknowledge_checkov(resource, "CKV_AWS_18", "second " + reason)  # the same check again: replaced
    metadata = cdk.assertions.Template.from_stack(stack).to_json()["Resources"][stack.get_logical_id(resource)]
    assert metadata["Metadata"] == {
        "cfn-lint": {"config": {"ignore_checks": ["W3005"]}},
        "checkov": {
            "skip": [{"id": "CKV_AWS_18", "comment": "second " + reason}, {"id": "CKV_AWS_21", "comment": reason}]
        },
    }
    with pytest.raises(TypeError, match="Ack/Plain is not a CloudFormation resource"):
        acknowledge_checkov(Construct(stack, "Plain"), "CKV_AWS_18", reason)
    with pytest.raises(ValueError, match="got 'S1'"):
        acknowledge_checkov(bucket, "S1", reason)
    with pytest.raises(ValueError, match="got 'CKV_AWS_18'"):
        acknowledge_checkov(bucket, "CKV_AWS_18", "too short")


# ------------------------------------------------------------------ what was fixed, and the rules relied on


def _environment(case: str):
    from aws_synth import deployments

    from twinserve.spec import load_spec

    ((path, env_name),) = [(p, e) for p, e, stage in deployments() if stage == case.split("/")[0]]
    return load_spec(path).environment(env_name)


@pytest.mark.parametrize("case", [c for c in stack_cases() if c.endswith("/Serving")])
def test_log_groups_use_the_environment_key(synth, case):
    """checkov CKV_AWS_158, fixed: with ``aws.encryption: kms`` every log group is encrypted with the
    environment's key, whose policy lets the region's CloudWatch Logs use it for this account's log
    groups (the key policy CloudWatch Logs requires:
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html); with
    ``s3_managed`` the groups use CloudWatch Logs' own encryption and the finding is acknowledged."""
    template = synth.template(case)
    resources = template["Resources"]
    groups = {k: r for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert groups, case
    keys = [k for k, r in resources.items() if r["Type"] == "AWS::KMS::Key" and "ModelArchives" not in k]
    if _environment(case).aws.encryption == "kms":
        (key,) = keys
        assert {k: g["Properties"].get("KmsKeyId") for k, g in groups.items()} == {
            k: {"Fn::GetAtt": [key, "Arn"]} for k in groups
        }
        statements = resources[key]["Properties"]["KeyPolicy"]["Statement"]
        (statement,) = [s for s in statements if s.get("Sid") == "CloudWatchLogsMayEncrypt"]
        stack = synth.stack(case)  # the region and account as the template spells them (tokens or literals)
        assert statement["Principal"] == {"Service": stack.resolve(f"logs.{stack.region}.amazonaws.com")}
        assert statement["Condition"] == {
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": stack.resolve(
                    f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                )
            }
        }
        assert set(statement["Action"]) >= {"kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"}
    else:
        assert keys == []
        for group in groups.values():
            assert "KmsKeyId" not in group["Properties"]
            skips = group["Metadata"]["checkov"]["skip"]
            assert [s["id"] for s in skips] == ["CKV_AWS_158"]


def test_a_log_group_takes_its_key_in_place():
    """Encrypting the existing log groups updates them (KmsKeyId is not create-only), so no log is lost:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-logs-loggroup.html"""
    from twinserve.platform.aws import cfn_resource_schema

    create_only = cfn_resource_schema("AWS::Logs::LogGroup").create_only
    assert ("KmsKeyId",) not in create_only
    assert ("LogGroupName",) in create_only  # the schema is read: the name is create-only


def test_an_aes_repository_is_acknowledged_only_where_the_spec_asks_for_it(synth):
    """CKV_AWS_136 (ECR with KMS) is fixed with aws.encryption: kms (the Registry's key) and acknowledged
    only on the repositories of s3_managed environments, whose images are AES-256 by choice."""
    for case in [c for c in stack_cases() if c.endswith("/Registry")]:
        registry = synth.template(case)
        (repository,) = [r for r in registry["Resources"].values() if r["Type"] == "AWS::ECR::Repository"]
        acknowledged = {c["id"] for c in repository.get("Metadata", {}).get("checkov", {}).get("skip", [])}
        encryption = repository["Properties"].get("EncryptionConfiguration", {"EncryptionType": "AES256"})
        kms = encryption["EncryptionType"] == "KMS"
        assert ("CKV_AWS_136" in acknowledged) is not kms, case
