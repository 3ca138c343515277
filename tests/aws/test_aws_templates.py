"""Every synthesized AWS template: a stable snapshot, zero cfn-lint findings, zero unacknowledged
cdk-nag findings. Intent (variant weights, thresholds, rollouts...) is asserted in
test_aws_properties.py; together they catch both unintended and intended-but-wrong changes.

Update the snapshots deliberately: ``pytest tests/aws --snapshot-update`` and review the diff.
"""

from __future__ import annotations

import pytest
from aws_synth import LINT_REGIONS, normalise, stack_cases
from syrupy.extensions.json import JSONSnapshotExtension

# cfn-lint rules ignored, in one place, with the reason. Resource-level ignores written into the
# templates by the constructs are listed here too (they are matched by resource, not globally):
CFN_LINT_IGNORED: dict[str, str] = {}
CFN_LINT_RESOURCE_IGNORES = {
    "W3005 on AWS::StepFunctions::StateMachine (BatchTransform)": (
        "aws-cdk-lib's StateMachine adds DependsOn its role although RoleArn already references it; harmless and "
        "not ours to change (set as resource Metadata cfn-lint.config.ignore_checks by BatchTransform)."
    ),
    "W3005 on the model upload handler's AWS::Lambda::Function (ModelArtifacts)": (
        "aws-cdk-lib's BucketDeployment function depends on its role (and policy) although Role already "
        "references it; set as resource Metadata by ModelArtifacts."
    ),
    "W3005 on the bucket auto-delete handler's AWS::Lambda::Function (ModelArtifacts, the Fargate access-log "
    "bucket, FargateBatchJob; outside prod)": (
        "aws-cdk-lib's S3AutoDeleteObjects provider function depends on its role although Role already references "
        "it; set as resource Metadata (_nag.acknowledge_cdk_provider) by ModelArtifacts, FargateModelService and "
        "FargateBatchJob (its batch bucket)."
    ),
    "W3005 on the autoscaling reconciler's AWS::Lambda::Function (EndpointAutoscaling)": (
        "aws-cdk-lib's Function depends on its role (and policy) although Role already references it; set as "
        "resource Metadata by EndpointAutoscaling."
    ),
    "W3005 on the VPC default-security-group handler's AWS::Lambda::Function (FargateModelService)": (
        "aws-cdk-lib's Custom::VpcRestrictDefaultSG provider function depends on its role although Role already "
        "references it; set as resource Metadata by FargateModelService."
    ),
    "W3005 on the ECS Fargate AWS::ECS::Service (FargateModelService)": (
        "aws-cdk-lib's FargateService depends on its listener rule and task role although the service already "
        "references them; set as resource Metadata by FargateModelService."
    ),
    "W3005 on the Lambda platform's AWS::Lambda::Function (LambdaModelService)": (
        "aws-cdk-lib's Function depends on its role and policy although Role already references it; set as "
        "resource Metadata by LambdaModelService."
    ),
    "W3005 on the promotion pipeline's AWS::CodePipeline::Pipeline (PipelineStack)": (
        "aws-cdk-lib's Pipeline depends on its role although RoleArn already references it; set as resource "
        "Metadata by PipelineStack."
    ),
    "E3703 on the promotion pipeline's AWS::CodePipeline::Pipeline (PipelineStack)": (
        "a cross-account deploy action's RoleArn is CDK's Fn::Join 'arn:${AWS::Partition}:iam::<account>:role/"
        "cdk-<qualifier>-...', a valid ARN at deploy time that cfn-lint cannot match against the role ARN format; "
        "set as resource Metadata by PipelineStack."
    ),
}

CASES = stack_cases()


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("case", CASES)
def test_template_snapshot(synth, case, snapshot_json):
    assert normalise(synth.template(case)) == snapshot_json


def test_snapshots_are_machine_independent(synth):
    """No absolute paths, user names or asset hashes survive normalisation."""
    import json
    import os

    for case in CASES:
        text = json.dumps(normalise(synth.template(case)))
        assert str(synth.outdir) not in text
        assert os.getcwd() not in text, case
        assert "<asset-hash>" in text or case.endswith("/Registry"), "expected normalised asset references"


@pytest.mark.parametrize("case", CASES)
def test_cfn_lint_clean(synth, case):
    import json

    from cfnlint.api import ManualArgs, lint

    config = ManualArgs(regions=LINT_REGIONS, ignore_checks=list(CFN_LINT_IGNORED))
    matches = lint(json.dumps(synth.template(case)), config=config)
    assert [f"{m.rule.id} {m.message} @ {'/'.join(map(str, m.path))}" for m in matches] == []


def test_cdk_nag_no_unacknowledged_findings(synth):
    report = synth.validation_report
    violations = [
        f"{v['ruleName']}: {c['constructPath']}"
        for plugin in report["pluginReports"]
        for v in plugin["violations"]
        for c in v["violatingConstructs"]
    ]
    assert violations == []
    assert [p["pluginName"] for p in report["pluginReports"]] == ["AwsSolutions"]
    assert synth.error is None


def test_cdk_nag_checked_every_stack(synth):
    """The nag plugin saw every stage (a stage left out of the app would pass silently)."""
    stage_ids = {case.split("/")[0] for case in CASES}
    assert stage_ids == set(synth.stages)
    # Registry and Serving per stage; a disaster-recovery region's stage has Serving only
    secondary = {stage for stage in stage_ids if synth.stages[stage].registry is None}
    assert len(CASES) == 2 * len(stage_ids) - len(secondary) >= 20


def test_acknowledgments_name_rule_and_reason(synth):
    """Every acknowledged cdk-nag finding names one exact rule and gives a reason."""
    import aws_cdk as cdk

    seen = 0
    for scope in [*synth.stages.values(), *synth.pipelines.values()]:
        for construct in scope.node.find_all():
            for entry in construct.node.metadata:
                if entry.type != cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                    continue
                for rule, reason in dict(entry.data).items():  # {"<pack>::<rule>[<finding>]": reason}
                    if rule.startswith("CloudFormation-Validate::"):
                        # aws-cdk-lib's own template validation (e.g. literal AZs on a Vpc's subnets), never
                        # written by twinserve: _nag.acknowledge writes AwsSolutions findings only
                        continue
                    seen += 1
                    assert rule.startswith("AwsSolutions::AwsSolutions-"), rule
                    assert len(reason) > 40, (rule, reason)
    assert seen > 0
