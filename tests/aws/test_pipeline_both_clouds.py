"""The promotion pipeline of the sample spec (deploy/twinserve.yaml -> stack ``iris-pipeline``): both clouds
in every stage, build once, one approval before prod, least-privilege Azure steps, model promotion from
the registry. Expected values are read from the spec; the session's one synthesis is used."""

from __future__ import annotations

import json

import pytest
from aws_synth import DEPLOY_SPEC, LINT_REGIONS, normalise
from syrupy.extensions.json import JSONSnapshotExtension

from stacks.aws.pipeline_stack import PULUMI_CLI_VERSION, promotion_group_name
from twinserve.platform import aws as aws_platform
from twinserve.platform import azure as azure_platform
from twinserve.spec import load_spec

SPEC = load_spec(DEPLOY_SPEC)
PIPELINE = f"{SPEC.name}-pipeline"
ENVIRONMENTS = [n for n in ("dev", "staging", "prod") if n in SPEC.environments]


@pytest.fixture(scope="module")
def template(synth) -> dict:
    return synth.pipeline_template(PIPELINE)


@pytest.fixture(scope="module")
def stages(template) -> dict[str, list[dict]]:
    (pipeline,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    return {s["Name"]: s["Actions"] for s in pipeline["Properties"]["Stages"]}


def _order(actions: list[dict], name: str) -> int:
    (action,) = [a for a in actions if a["Name"] == name]
    return action["RunOrder"]


def _buildspec(template: dict, action: dict) -> dict:
    """The action's buildspec; tokens (Ref, GetAtt) inside it read as TOKEN."""
    project = template["Resources"][action["Configuration"]["ProjectName"]["Ref"]]
    source = project["Properties"]["Source"]["BuildSpec"]
    if isinstance(source, dict):
        source = "".join(part if isinstance(part, str) else "TOKEN" for part in source["Fn::Join"][1])
    return json.loads(source)


def _commands(template: dict, stages: dict, stage: str, name: str) -> list[str]:
    (action,) = [a for a in stages[stage] if a["Name"] == name]
    return _buildspec(template, action)["phases"]["build"]["commands"]


def test_the_sample_spec_has_a_pipeline_for_both_clouds():
    assert SPEC.pipeline is not None and SPEC.pipeline.azure is not None
    assert all(set(SPEC.environments[e].targets) == {"aws", "azure"} for e in ENVIRONMENTS)


def test_every_stage_deploys_aws_then_azure_each_smoke_tested(stages):
    assert list(stages) == ["Source", "Build", "UpdatePipeline", "Assets", *(f"{SPEC.name}-{e}" for e in ENVIRONMENTS)]
    for env in ENVIRONMENTS:
        actions = stages[f"{SPEC.name}-{env}"]
        deploy = max(a["RunOrder"] for a in actions if a["ActionTypeId"]["Provider"] == "CloudFormation")
        prepare = min(a["RunOrder"] for a in actions if a["ActionTypeId"]["Provider"] == "CloudFormation")
        # pre: the Azure preview; the stacks; post: AWS smoke test -> pulumi up -> Azure smoke test
        assert _order(actions, "AzurePreview") < prepare
        assert (
            deploy < _order(actions, "SmokeTest") < _order(actions, "AzureDeploy") < _order(actions, "AzureSmokeTest")
        )


def test_one_approval_before_prod_gates_both_clouds_and_notifies_with_a_link(template, stages):
    for env in ENVIRONMENTS:
        actions = stages[f"{SPEC.name}-{env}"]
        approvals = [a for a in actions if a["ActionTypeId"]["Category"] == "Approval"]
        if env not in SPEC.pipeline.manual_approval_before:
            assert approvals == [], env
            continue
        (approval,) = approvals
        first_aws = min(a["RunOrder"] for a in actions if a["ActionTypeId"]["Provider"] == "CloudFormation")
        assert _order(actions, "AzurePreview") < approval["RunOrder"] < first_aws < _order(actions, "AzureDeploy")
        config = approval["Configuration"]
        topic = next(k for k, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic")
        assert config["NotificationArn"] == {"Ref": topic}
        assert "codepipeline/pipelines/twinserve-iris/view" in json.dumps(config["ExternalEntityLink"])


def test_the_topic_reaches_every_alarm_email_and_failures_are_notified(template):
    emails = {e for env in SPEC.environments.values() for e in env.alarms.emails}
    subscribed = {
        r["Properties"]["Endpoint"] for r in template["Resources"].values() if r["Type"] == "AWS::SNS::Subscription"
    }
    assert subscribed == emails
    (rule,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodeStarNotifications::NotificationRule"]
    assert rule["Properties"]["EventTypeIds"] == ["codepipeline-pipeline-pipeline-execution-failed"]


def test_executions_queue_so_two_never_run_pulumi_on_one_stack(template):
    (pipeline,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    assert pipeline["Properties"]["ExecutionMode"] == "QUEUED"
    assert pipeline["Properties"]["PipelineType"] == "V2"


def test_the_image_is_built_once_and_each_azure_step_imports_its_stages_copy_by_digest(synth, template, stages):
    """One docker asset, built once by the Assets stage; each Azure step reads that stage's asset
    manifest (same image tag as its SageMaker model) and the image-reader role of its account."""
    (docker,) = [a for a in stages["Assets"] if a["Name"].startswith("DockerAsset")]
    assert docker["ActionTypeId"]["Provider"] == "CodeBuild"
    tags = set()
    for env in ENVIRONMENTS:
        (command,) = _commands(template, stages, f"{SPEC.name}-{env}", "AzureDeploy")
        stage = synth.pipelines[PIPELINE].stages[env]
        manifest_path = f"assembly-{PIPELINE}-{stage.node.id}/{stage.serving.artifact_id}.assets.json"
        assert f"--assets-manifest cdk.out/{manifest_path}" in command
        assert f"role/twinserve-{SPEC.name}-{env}-image-reader" in command
        manifest = json.loads((synth.outdir / manifest_path).read_text())
        (image,) = manifest["dockerImages"].values()
        (destination,) = image["destinations"].values()
        serving = json.loads((synth.outdir / manifest_path.replace(".assets.json", ".template.json")).read_text())
        images = [
            json.dumps(r["Properties"]["PrimaryContainer"]["Image"])
            for r in serving["Resources"].values()
            if r["Type"] == "AWS::SageMaker::Model"
        ]
        assert images and all(destination["imageTag"] in i for i in images)  # the SageMaker model runs it too
        tags.add(destination["imageTag"])
    assert len(tags) == 1  # the same image in every environment


def test_azure_steps_run_the_pinned_pulumi_cli_on_the_s3_backend_with_kms_secrets(template, stages):
    for env in ENVIRONMENTS:
        for step in ("AzurePreview", "AzureDeploy"):
            (action,) = [a for a in stages[f"{SPEC.name}-{env}"] if a["Name"] == step]
            spec = _buildspec(template, action)
            install = spec["phases"]["install"]["commands"]
            assert any(f"pulumi-v{PULUMI_CLI_VERSION}-linux-x64.tar.gz" in c for c in install)
            (command,) = spec["phases"]["build"]["commands"]
            verb = "preview" if step == "AzurePreview" else "up"
            assert command.startswith(f".venv/bin/python -m stacks.pipeline_scripts.azure_deploy {verb} --env {env} ")
            assert "--backend-url 's3://TOKEN?region=TOKEN&awssdk=v2'" in command
            assert f"--secrets-provider 'awskms://alias/twinserve/{SPEC.name}/pulumi?region=TOKEN'" in command
            assert f"--tenant-id {SPEC.pipeline.azure.tenant_id} --client-id {SPEC.pipeline.azure.client_id}" in command
            assert "--sign-in federated" in command


def test_the_azure_smoke_test_reads_each_stacks_outputs_from_the_backend_into_the_shared_script(template, stages):
    for env in ENVIRONMENTS:
        (action,) = [a for a in stages[f"{SPEC.name}-{env}"] if a["Name"] == "AzureSmokeTest"]
        spec = _buildspec(template, action)
        assert any(f"pulumi-v{PULUMI_CLI_VERSION}-linux-x64.tar.gz" in c for c in spec["phases"]["install"]["commands"])
        login, test = spec["phases"]["build"]["commands"]
        assert login == "pulumi login 's3://TOKEN?region=TOKEN&awssdk=v2'"
        # the keys travel in a pipe from the state to the script, never on a command line
        assert test == (
            f"pulumi stack output --stack {env} --json --show-secrets"
            " | python3 -m stacks.pipeline_scripts.smoke_test azure --stack-outputs -"
        )
        assert len(action["InputArtifacts"]) == 1  # the source: the script of this commit


def _role_statements(template: dict, role_name: str) -> list[dict]:
    (role_id,) = [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == role_name
    ]
    return [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_azure_steps_role_reads_only_its_backend_key_token_and_the_image_readers(template):
    statements = _role_statements(template, f"twinserve-{SPEC.name}-pipeline-azure")
    backend_bucket = next(
        k for k, r in template["Resources"].items() if r["Type"] == "AWS::S3::Bucket" and k.startswith("PulumiState")
    )
    backend_key = next(
        k for k, r in template["Resources"].items() if r["Type"] == "AWS::KMS::Key" and k.startswith("PulumiState")
    )
    artifacts = next(k for k in template["Resources"] if k.startswith("PipelineArtifactsBucket") and "Policy" not in k)
    allowed_resources = {backend_bucket, backend_key, artifacts}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        text = json.dumps(statement["Resource"])
        if actions == ["sts:GetWebIdentityToken"]:
            audience, duration = aws_platform.WEB_IDENTITY_TOKEN_CONDITIONS
            assert statement["Condition"] == {
                "ForAllValues:StringEquals": {audience: azure_platform.FEDERATED_TOKEN_AUDIENCE},
                "NumericLessThanEquals": {duration: aws_platform.WEB_IDENTITY_TOKEN_SECONDS[1]},
            }
        elif actions == ["sts:AssumeRole"]:
            assert "image-reader" in text and all(f"-{e}-image-reader" in text for e in ENVIRONMENTS)
        elif all(a.startswith(("logs:", "codebuild:")) for a in actions):
            assert "/aws/codebuild/" in text or "report-group" in text
        else:  # state, key, and the pipeline's own artifacts (the step's inputs)
            assert any(r in text for r in allowed_resources), statement
            assert not any(a in ("s3:*", "kms:*", "*") for a in actions)
    pulumi_objects = [s for s in statements if ".pulumi/*" in json.dumps(s["Resource"])]
    assert pulumi_objects and set(pulumi_objects[0]["Action"]) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}


def test_each_image_reader_role_trusts_only_the_azure_step_and_pulls_only_its_image(synth):
    for env in ENVIRONMENTS:
        serving = synth.template(f"{SPEC.name}-{env}/Serving")
        (role_id,) = [
            k
            for k, r in serving["Resources"].items()
            if r["Type"] == "AWS::IAM::Role"
            and r["Properties"].get("RoleName") == f"twinserve-{SPEC.name}-{env}-image-reader"
        ]
        (trust,) = serving["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        principal = json.dumps(trust["Condition"]["ArnEquals"]["aws:PrincipalArn"])
        assert principal.endswith(f':role/twinserve-{SPEC.name}-pipeline-azure"]]}}')
        statements = [
            s
            for r in serving["Resources"].values()
            if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
            for s in r["Properties"]["PolicyDocument"]["Statement"]
        ]
        actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
        assert actions == {
            "ecr:BatchCheckLayerAvailability",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchGetImage",
            "ecr:DescribeImages",
            "ecr:GetAuthorizationToken",
        }
        for statement in statements:
            if statement["Action"] != "ecr:GetAuthorizationToken":
                assert "container-assets" in json.dumps(statement["Resource"])
        assert {"ImageUri", "ImageReaderRoleArn"} <= set(serving["Outputs"])


def test_approving_a_model_version_starts_the_pipeline_which_promotes_it_to_both_clouds(template, stages):
    group = promotion_group_name(SPEC)
    (registry,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::ModelPackageGroup"]
    assert registry["Properties"]["ModelPackageGroupName"] == group and registry["DeletionPolicy"] == "Retain"
    rules = [r for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    (rule,) = [r for r in rules if "aws.sagemaker" in r["Properties"]["EventPattern"]["source"]]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["SageMaker Model Package State Change"]
    assert pattern["detail"] == {"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]}
    (target,) = rule["Properties"]["Targets"]
    assert "codepipeline" in json.dumps(target["Arn"])
    # the Build step resolves the version once; its output (model + inputs file) goes to every Azure step
    build = _commands(template, stages, "Build", "Synth")
    assert (
        build[1]
        == f".venv/bin/python -m stacks.pipeline_scripts.resolve_model --group {group} --out build/approved-model"
    )
    assert "TWINSERVE_DEPLOY_INPUTS" in build[2]
    (synth_action,) = stages["Build"]
    assert {o["Name"] for o in synth_action["OutputArtifacts"]} == {"Synth_Output", "Synth_build_approved_model"}
    for env in ENVIRONMENTS:
        (deploy,) = [a for a in stages[f"{SPEC.name}-{env}"] if a["Name"] == "AzureDeploy"]
        assert {i["Name"] for i in deploy["InputArtifacts"]} >= {"Synth_Output", "Synth_build_approved_model"}


def test_the_build_role_reads_only_the_promotion_group_and_its_archive_bucket(template, stages):
    (synth_action,) = stages["Build"]
    project = template["Resources"][synth_action["Configuration"]["ProjectName"]["Ref"]]
    role_id = project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    statements = [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    sagemaker = [s for s in statements if any("sagemaker:" in a for a in json.dumps(s["Action"]).split('"'))]
    (statement,) = sagemaker
    assert set(statement["Action"]) == {"sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"}
    assert f"model-package/{promotion_group_name(SPEC)}/*" in json.dumps(statement["Resource"])


def test_iris_pipeline_snapshot(template, snapshot):
    assert normalise(template) == snapshot.use_extension(JSONSnapshotExtension)


def test_iris_pipeline_cfn_lint_clean(template):
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(template), config=ManualArgs(regions=LINT_REGIONS))
    assert [f"{m.rule.id} {m.message} @ {'/'.join(map(str, m.path))}" for m in matches] == []


def test_the_azure_smoke_test_signs_in_to_entra_only_for_aad_token():
    from stacks.aws.pipeline_stack import azure_smoke_test_commands

    plain = azure_smoke_test_commands("prod", "s3://state")
    assert plain[-1].endswith("| python3 -m stacks.pipeline_scripts.smoke_test azure --stack-outputs -")
    entra = " --entra-sign-in federated --tenant-id t --client-id c --region us-east-1"
    signed = azure_smoke_test_commands("prod", "s3://state", entra)
    # the project's environment: the Entra sign-in is the Azure deploy step's code
    assert signed[-1].endswith(
        f"| .venv/bin/python -m stacks.pipeline_scripts.smoke_test azure --stack-outputs -{entra}"
    )
