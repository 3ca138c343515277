"""The promotion pipeline (examples/aws/pipeline.yaml -> stack ``pipeline-pipeline``), from the session's
one synthesis: stage order, the approval gate, the smoke tests fed by the Serving stack's outputs, the
source, a snapshot and cfn-lint. cdk-nag covers it in test_aws_templates.py (one report for the app)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml
from aws_synth import EXAMPLES, LINT_REGIONS, normalise, pipeline_cases
from syrupy.extensions.json import JSONSnapshotExtension

from stacks.aws.pipeline_stack import BOTO3_VERSION

PIPELINE = "pipeline-pipeline"
EXAMPLE = next(p for p in EXAMPLES if p.stem == "pipeline")
ENVIRONMENTS = ["dev", "staging", "prod"]


@pytest.fixture(scope="module")
def template(synth) -> dict:
    return synth.pipeline_template(PIPELINE)


@pytest.fixture(scope="module")
def stages(template) -> dict[str, list[dict]]:
    """CodePipeline stage name -> its actions."""
    (pipeline,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    return {s["Name"]: s["Actions"] for s in pipeline["Properties"]["Stages"]}


def _project(template: dict, action: dict) -> dict:
    return template["Resources"][action["Configuration"]["ProjectName"]["Ref"]]


def test_only_specs_with_a_pipeline_section_get_a_pipeline_stack(synth):
    # the sample deploy/twinserve.yaml (both clouds); examples/aws/dr-two-regions.yaml, pipeline.yaml and
    # pipeline-platforms.yaml (AWS only), in file order (pipeline-platforms.yaml sorts before pipeline.yaml)
    cases = ["iris-pipeline", "iris-dr-pipeline", "platforms-pipeline", PIPELINE]
    assert pipeline_cases() == cases and set(synth.pipelines) == set(cases)


def test_stages_promote_dev_then_staging_then_prod(stages):
    assert list(stages) == [
        "Source",
        "Build",
        "UpdatePipeline",
        "Assets",
        "pipeline-dev",
        "pipeline-staging",
        "pipeline-prod",
    ]
    for env in ENVIRONMENTS:  # both stacks in every environment; independent, so side by side
        deploys = sorted(
            (a["RunOrder"], a["Name"])
            for a in stages[f"pipeline-{env}"]
            if a["ActionTypeId"]["Provider"] == "CloudFormation"
        )
        assert [name for _, name in deploys] == [
            "Registry.Prepare",
            "Serving.Prepare",
            "Registry.Deploy",
            "Serving.Deploy",
        ]


def test_a_manual_approval_gates_prod_and_nothing_else(stages):
    for env in ENVIRONMENTS:
        actions = stages[f"pipeline-{env}"]
        approvals = [a for a in actions if a["ActionTypeId"]["Category"] == "Approval"]
        if env != "prod":
            assert approvals == [], env
            continue
        (approval,) = approvals
        deploy_orders = [a["RunOrder"] for a in actions if a["ActionTypeId"]["Provider"] == "CloudFormation"]
        assert approval["ActionTypeId"]["Provider"] == "Manual"
        assert approval["RunOrder"] < min(deploy_orders)


def test_each_environment_is_smoke_tested_after_its_deployment_with_the_endpoint_name_output(template, stages):
    for env in ENVIRONMENTS:
        actions = stages[f"pipeline-{env}"]
        (serving,) = [a for a in actions if a["Name"] == "Serving.Deploy"]
        (smoke,) = [a for a in actions if a["Name"] == "SmokeTest"]
        assert smoke["ActionTypeId"]["Provider"] == "CodeBuild"
        assert smoke["RunOrder"] > max(a["RunOrder"] for a in actions if a is not smoke)
        variables = {v["name"]: v["value"] for v in json.loads(smoke["Configuration"]["EnvironmentVariables"])}
        namespace = serving["Namespace"]
        assert variables["ENDPOINT_NAME"] == f"#{{{namespace}.EndpointName}}"
        assert variables["SMOKE_TEST_ROLE_ARN"] == f"#{{{namespace}.SmokeTestRoleArn}}"
        commands = json.loads(_project(template, smoke)["Properties"]["Source"]["BuildSpec"])["phases"]["build"][
            "commands"
        ]
        # the shared smoke-test script (tests/test_smoke_test.py runs it against `twinserve local`), as the
        # environment's role; the source is its input, so the script is this commit's
        (run,) = [c for c in commands if "stacks.pipeline_scripts.smoke_test sagemaker" in c]
        assert '--endpoint-name "$ENDPOINT_NAME"' in run and '--role-arn "$SMOKE_TEST_ROLE_ARN"' in run
        assert any(c.startswith(f"python3 -m pip install --quiet boto3=={BOTO3_VERSION}") for c in commands)
        assert smoke["Configuration"].get("PrimarySource") or len(smoke["InputArtifacts"]) == 1


def test_the_source_is_the_specs_connection_repository_and_branch(stages):
    from twinserve.spec import load_spec

    source = load_spec(EXAMPLE).pipeline.source
    (action,) = stages["Source"]
    assert action["ActionTypeId"] == {
        "Category": "Source",
        "Owner": "AWS",
        "Provider": "CodeStarSourceConnection",
        "Version": "1",
    }
    config = action["Configuration"]
    assert (config["ConnectionArn"], config["FullRepositoryId"], config["BranchName"]) == (
        source.connection_arn,
        source.repository,
        source.branch,
    )


def test_synth_runs_the_projects_setup_then_cdk_synth_of_this_spec_with_nag(template, stages):
    (synth_action,) = stages["Build"]
    spec = json.loads(_project(template, synth_action)["Properties"]["Source"]["BuildSpec"])
    assert spec["phases"]["install"]["runtime-versions"] == {"python": "3.11", "nodejs": "20"}
    assert spec["phases"]["build"]["commands"] == [
        "make setup sample-model",
        ".venv/bin/twinserve validate examples/aws/pipeline.yaml",
        "node_modules/.bin/cdk synth --quiet -c spec=examples/aws/pipeline.yaml -c nag=true",
    ]
    assert spec["artifacts"]["base-directory"] == "cdk.out"


def test_stages_in_other_accounts_get_cross_account_keys_and_a_smoke_test_role_trusting_the_pipeline(synth, template):
    kinds = [r["Type"] for r in template["Resources"].values()]
    assert "AWS::KMS::Key" in kinds  # cross_account_keys: the artifact bucket is readable from dev/staging/prod
    for env, account in zip(ENVIRONMENTS, ["111111111111", "222222222222", "333333333333"], strict=True):
        serving = synth.template(f"pipeline-{env}/Serving")
        (role,) = [
            r
            for r in serving["Resources"].values()
            if r["Type"] == "AWS::IAM::Role"
            and r["Properties"].get("RoleName") == f"twinserve-pipeline-{env}-smoke-test"
        ]
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Condition"] == {
            "ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/twinserve-pipeline-pipeline-smoke-test"}
        }
        assert (
            serving["Outputs"]["SmokeTestRoleArn"] and serving["Outputs"]["EndpointName"]["Value"] == f"pipeline-{env}"
        )
        assert synth.pipelines[PIPELINE].stages[env].serving.account == account


def test_the_pipeline_deploys_the_same_stacks_as_cdk_deploy(synth):
    """Its stages are the app's top-level stages again: same stack names, same templates but for the
    model upload's ownership tag, which aws-cdk-lib derives from the construct path."""

    def comparable(template: dict) -> str:
        return re.sub(
            r"aws-cdk:cr-owned:([^\"]*):[0-9a-f]{8}", r"aws-cdk:cr-owned:\1:<path-hash>", json.dumps(template)
        )

    for env in ENVIRONMENTS:
        nested, top = synth.pipelines[PIPELINE].stages[env], synth.stages[f"pipeline-{env}"]
        for kind in ("registry", "serving"):
            a, b = getattr(nested, kind), getattr(top, kind)
            assert a.stack_name == b.stack_name == f"pipeline-{env}-{kind.capitalize()}"
            nested_template = json.loads(
                (synth.outdir / nested.artifact_id / f"{a.artifact_id}.template.json").read_text()
            )
            assert comparable(nested_template) == comparable(synth.template(f"pipeline-{env}/{kind.capitalize()}"))


def test_pipeline_snapshot(template, snapshot):
    text = json.dumps(normalise(template))
    assert "<asset-hash>" in text
    assert normalise(template) == snapshot.use_extension(JSONSnapshotExtension)


def test_pipeline_cfn_lint_clean(template):
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(template), config=ManualArgs(regions=LINT_REGIONS))
    assert [f"{m.rule.id} {m.message} @ {'/'.join(map(str, m.path))}" for m in matches] == []


def _install_commands(template: dict, outdir) -> list[str]:
    """Every command the pipeline's CodeBuild projects run in their install phase (the asset jobs'
    buildspecs are files of the cloud assembly)."""
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::CodeBuild::Project":
            source = resource["Properties"]["Source"]["BuildSpec"]
            spec = yaml.safe_load((outdir / source).read_text() if source.endswith(".yaml") else source)
            found += spec.get("phases", {}).get("install", {}).get("commands", [])
    return found


def test_the_tools_the_pipeline_installs_are_pinned_to_package_json(synth, template, repo_root):
    pins = json.loads((repo_root / "package.json").read_text())["devDependencies"]
    installs = [c for c in _install_commands(template, synth.outdir) if c.startswith("npm install -g")]
    assert {c.split()[-1].rpartition("@")[0] for c in installs} == {"aws-cdk", "cdk-assets"}
    assert installs, "the pipeline installs its CLI tools"
    for command in installs:
        tool, _, version = command.split()[-1].rpartition("@")
        assert version == pins[tool], command  # never @latest: it may not read this cloud assembly


def test_the_pinned_cdk_assets_reads_every_asset_manifest(synth, repo_root):
    # CDK Pipelines publishes each asset with `cdk-assets --path <manifest> publish`; a cdk-assets that
    # does not know the manifest's schema version stops with "Cloud assembly schema version mismatch".
    manifests = sorted(synth.outdir.rglob("*.assets.json"))
    assert manifests
    cdk_assets = repo_root / "node_modules" / ".bin" / "cdk-assets"
    for manifest in manifests:
        listed = subprocess.run([str(cdk_assets), "--path", str(manifest), "ls"], capture_output=True, text=True)
        assert listed.returncode == 0, f"{manifest.name}: {listed.stderr}"
