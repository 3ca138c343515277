"""`twinserve plan`: realistic edits of the sample spec, each planned on both clouds.

Every side is synthesized once for the module, all in one batch (the CDK runs two at a time beside
the Azure plans), exactly as the command does it: one CDK CLI run per side, the Pulumi program under
the recording mocks. The specs are written to a temporary folder with absolute paths to the sample
model and the build context, so each edit is the only difference between two sides. The expected
values are read from the specs, and each test names the platform rule it checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from twinserve.change_plan import compare_sides
from twinserve.change_plan.aws_diff import compare_stacks
from twinserve.change_plan.model import ChangePlan, Section
from twinserve.change_plan.sides import SideRequest, synthesize
from twinserve.platform import aws as aws_platform
from twinserve.platform import azure as azure_platform
from twinserve.spec import parse_spec
from twinserve.synth import Project

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "deploy" / "twinserve.yaml"
PULUMI_PROJECT = "twinserve"
ENDPOINT_CONFIG = "AWS::SageMaker::EndpointConfig"
ENDPOINT = "AWS::SageMaker::Endpoint"
MODEL = "AWS::SageMaker::Model"
ML = "azure-native:machinelearningservices:"


def sample(model_dir: Path | None = None, context: Path | None = None) -> dict:
    """The sample spec with its folders as absolute paths (it is written outside the repository)."""
    raw = yaml.safe_load(SAMPLE.read_text())
    raw["model"]["artifact"]["path"] = str(model_dir or REPO / "build" / "sample-model" / "model")
    raw["container"]["build"] = str(context or REPO / "model_containers")
    for env in raw["environments"].values():
        if "monitoring" in env:
            env["monitoring"]["reference_dataset"] = str(SAMPLE.parent / env["monitoring"]["reference_dataset"])
    return raw


def ab_test(raw: dict, weights: tuple[int, int] = (80, 20)) -> dict:
    """dev and staging serve two variants (an A/B test; staging's shadow goes, SageMaker shadows one
    live variant only). prod is left out: its canary needs one variant, and it keeps the module fast."""
    del raw["environments"]["prod"]
    raw["pipeline"]["manual_approval_before"] = []  # it gated prod
    for env in ("dev", "staging"):
        serving = raw["environments"][env].setdefault("serving", {})
        serving.pop("shadow", None)
        serving["variants"] = [
            {"name": "current", "weight": weights[0]},
            {"name": "challenger", "weight": weights[1]},
        ]
    return raw


def edited(raw: dict, *path_and_value) -> dict:
    *path, value = path_and_value
    node = raw
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return raw


def _specs() -> dict[str, tuple[dict, str | None]]:
    """name -> (spec document, only this environment)."""
    ab_edit = ab_test(sample(), weights=(50, 50))  # staging: traffic shift
    ab_edit["environments"]["dev"]["serving"]["variants"] = [{"name": "challenger", "weight": 100}]  # dev: removal
    aks = edited(sample(), "environments", "dev", "azure", "aks", "node_count", 4)
    edited(aks, "environments", "staging", "azure", "aks", "vm_size", "Standard_D8s_v3")
    return {
        "base": (sample(), None),
        "bump": (edited(sample(), "model", "version", "2"), "prod"),
        "instance-type": (
            edited(sample(), "environments", "prod", "compute", "aws_instance_type", "ml.m5.xlarge"),
            "prod",
        ),
        "aks": (aks, None),
        "ab": (ab_test(sample()), None),
        "ab-edit": (ab_edit, None),
    }


@pytest.fixture(scope="module")
def sides(sample_model, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("change-plan")
    requests = []
    for name, (raw, only_env) in _specs().items():
        path = scratch / name / "twinserve.yaml"
        path.parent.mkdir()
        path.write_text(yaml.safe_dump(raw))
        requests.append(SideRequest(name, parse_spec(raw, file=str(path)), path, only_env))
    return {s.request.name: s for s in synthesize(Project.find(REPO), requests, scratch)}


def plan(sides, base: str, new: str) -> dict[tuple[str, str], Section]:
    found = compare_sides(sides[base], sides[new], pulumi_project=PULUMI_PROJECT)
    return {(s.environment, s.cloud): s for s in found}


def actions(section: Section) -> dict[str, set[str]]:
    """type -> the actions on resources of that type."""
    found: dict[str, set[str]] = {}
    for change in section.changes:
        found.setdefault(change.type, set()).add(change.action)
    return found


def rules(section: Section) -> dict[str, str]:
    return {f.rule: f.severity for f in section.flags}


def flag(section: Section, rule: str):
    return next(f for f in section.flags if f.rule == rule)


# --------------------------------------------------------------------------- facts the plan relies on


def test_replacement_facts_come_from_the_cloudformation_schemas_cfn_lint_ships():
    config = aws_platform.cfn_resource_schema(ENDPOINT_CONFIG)
    endpoint = aws_platform.cfn_resource_schema(ENDPOINT)
    # An endpoint config is immutable; an endpoint takes a new config in place (UpdateEndpoint).
    assert ("ProductionVariants",) in config.create_only
    assert endpoint.create_only == (("EndpointName",),)
    assert ("Budget", "BudgetName") in aws_platform.cfn_resource_schema("AWS::Budgets::Budget").name_properties
    assert aws_platform.cfn_resource_schema("Custom::CDKBucketDeployment") is None


def test_every_azure_type_the_program_declares_has_its_create_only_inputs(sides):
    declared = {r["type"] for resources in sides["base"].azure.values() for r in resources if r["custom"]}
    assert declared - set(azure_platform.ARM_NAME_INPUTS) == set()


# --------------------------------------------------------------------------- no-op


def test_an_unchanged_environment_plans_nothing_and_exits_0(sides):
    """prod is the same in the base and the AKS edit (which only touches dev and staging)."""
    sections = compare_sides(sides["base"], sides["aks"], pulumi_project=PULUMI_PROJECT)
    prod = [s for s in sections if s.environment == "prod"]
    assert {s.cloud for s in prod} == {"aws", "azure"}
    assert all(not s.changes and not s.flags and not s.notes for s in prod)
    assert ChangePlan("spec", "base", "0" * 40, [], prod).exit_code == 0


def test_only_refused_or_disruptive_flags_fail_the_plan(sides):
    """A model bump leaves the old Azure version behind (a leftover, by design): reported, exit 0;
    removing a guarded A/B variant is refused: exit 1."""
    bump = compare_sides(sides["base"], sides["bump"], pulumi_project=PULUMI_PROJECT, refresh_always=True)
    assert {f.severity for s in bump for f in s.flags} == {"leftover"}
    assert ChangePlan("spec", "base", "0" * 40, [], bump).exit_code == 0
    removal = compare_sides(sides["ab"], sides["ab-edit"], pulumi_project=PULUMI_PROJECT, refresh_always=True)
    assert ChangePlan("spec", "ab", "0" * 40, [], removal).exit_code == 1


# --------------------------------------------------------------------------- model version bump (prod)


def test_model_version_bump_creates_the_new_model_and_rolls_the_endpoint_with_the_canary(sides):
    prod = plan(sides, "base", "bump")
    new_version = _specs()["bump"][0]["model"]["version"]
    aws = prod[("prod", "aws")]
    assert actions(aws)[MODEL] == {"create", "delete"}  # one SageMaker model per version
    assert actions(aws)[ENDPOINT_CONFIG] == {"replace"}  # create-only ProductionVariants
    assert actions(aws)[ENDPOINT] == {"update"}  # UpdateEndpoint, not a new endpoint
    assert "ModelV" + new_version in " ".join(c.id for c in aws.changes if c.action == "create")
    story = " ".join(aws.notes)
    # prod's 10 % canary of 3 instances is sent as one instance (deployment_config.py)
    assert "the endpoint config is replaced" in story and "blue/green canary 1 instances" in story
    # A model-only change of an autoscaled variant is SageMaker's documented exception (A2), and the
    # endpoint keeps its live instance counts (RetainAllVariantProperties, A3): nothing to flag. The
    # scaling reconciler runs around the update.
    assert rules(aws) == {}
    assert actions(aws)["Custom::EndpointAutoscaling"] == {"update"}


def test_model_version_bump_in_prod_leaves_the_old_version_in_azure_without_blocking_the_update(sides):
    azure = plan(sides, "base", "bump")[("prod", "azure")]
    assert actions(azure)[ML + "ModelVersion"] == {"create", "delete"}
    assert actions(azure)[ML + "OnlineDeployment"] == {"update"}  # they move to the new model version
    # Old versions are retained on delete, never protected: protection would refuse this update.
    assert "pulumi-protect" not in rules(azure)
    leftover = flag(azure, "pulumi-retain-on-delete")
    assert leftover.severity == "leftover" and "iris-prod-model-model-v1" in leftover.resources
    # The managed deployment is autoscaled: sku.capacity is sent from the state (Z9) ...
    assert "pulumi up --refresh" in flag(azure, "azure-autoscaled-capacity").todo
    # ... unless every update refreshes first, as this project's Pulumi.yaml says (options.refresh: always)
    assert yaml.safe_load((REPO / "Pulumi.yaml").read_text())["options"]["refresh"] == "always"
    refreshed = compare_sides(sides["base"], sides["bump"], pulumi_project=PULUMI_PROJECT, refresh_always=True)
    (prod_azure,) = [s for s in refreshed if (s.environment, s.cloud) == ("prod", "azure")]
    assert "azure-autoscaled-capacity" not in rules(prod_azure)


# --------------------------------------------------------------------------- instance type (prod, autoscaled)


def test_instance_type_change_of_an_autoscaled_variant_goes_through_the_scaling_reconciler(sides):
    """SageMaker refuses an UpdateEndpoint that changes the instance type of a scalable target (A1);
    the stacks register targets through the reconciler (Custom::EndpointAutoscaling), which releases
    them around the update, so no CloudFormation scalable target is there to block it."""
    prod = plan(sides, "base", "instance-type")
    aws = prod[("prod", "aws")]
    assert actions(aws)[ENDPOINT_CONFIG] == {"replace"} and actions(aws)[ENDPOINT] == {"update"}
    assert actions(aws)["Custom::EndpointAutoscaling"] == {"update"}
    assert "AWS::ApplicationAutoScaling::ScalableTarget" not in actions(aws)
    assert "sagemaker-autoscaled-variant" not in rules(aws)
    new_type = _specs()["instance-type"][0]["environments"]["prod"]["compute"]["aws_instance_type"]
    assert f"-> {new_type}" in " ".join(aws.notes)
    # compute.aws_instance_type is SageMaker's: nothing changes on Azure.
    assert not prod[("prod", "azure")].changes and not prod[("prod", "azure")].flags


# --------------------------------------------------------------------------- A/B: removal and traffic shift


def test_removing_an_ab_variant_under_guardrails_is_refused_with_the_way_out(sides):
    dev = plan(sides, "ab", "ab-edit")
    aws = dev[("dev", "aws")]
    assert actions(aws)[ENDPOINT_CONFIG] == {"replace"} and actions(aws)[ENDPOINT] == {"update"}
    assert rules(aws) == {"guardrail-variant-names": "refused"}  # blue/green needs the same variant names
    guardrails = flag(aws, "guardrail-variant-names")
    assert "(challenger, current -> challenger)" in guardrails.message
    assert "all_at_once and auto_rollback false" in guardrails.todo
    # the removed variant's scaling is the reconciler's to release, not a CloudFormation target's
    assert actions(aws)["Custom::EndpointAutoscaling"] == {"update"}
    azure = dev[("dev", "azure")]
    removed = {c.id for c in azure.changes if c.action == "delete"}
    assert {"iris-dev-managed-current", "iris-dev-k8s-current"} <= removed  # one deployment per endpoint
    assert actions(azure)["azure-native:resources:Deployment"] == {"update"}  # traffic first, then delete
    assert rules(azure).get("pulumi-protect") is None


def test_a_traffic_shift_is_a_config_replacement_and_in_place_updates_only(sides):
    staging = plan(sides, "ab", "ab-edit")
    aws, azure = staging[("staging", "aws")], staging[("staging", "azure")]
    assert actions(aws) == {
        ENDPOINT_CONFIG: {"replace"},
        ENDPOINT: {"update"},
        "Custom::EndpointAutoscaling": {"update"},
    }
    weights = [c.why for c in aws.changes if c.type == ENDPOINT_CONFIG][0]
    assert "InitialVariantWeight: 0.8 -> 0.5" in weights
    assert actions(azure) == {"azure-native:resources:Deployment": {"update"}}  # the traffic templates
    traffic = " ".join(c.why for c in azure.changes)
    assert "traffic.current: 80 -> 50" in traffic
    assert not [f for f in aws.flags + azure.flags if f.severity == "refused"]


# --------------------------------------------------------------------------- AKS (Azure only)


def test_aks_node_count_change_updates_the_cluster_in_place(sides):
    dev = plan(sides, "base", "aks")
    azure = dev[("dev", "azure")]
    assert actions(azure)[azure_platform.AKS_CLUSTER] == {"update"}  # count-only: in place (Z2)
    assert "agentPoolProfiles[0].count: 3 -> 4" in " ".join(c.why for c in azure.changes)
    assert "aks-pool-vm-size" not in rules(azure)
    assert not dev[("dev", "aws")].changes  # azure.aks is Azure's


def test_aks_node_count_change_leaves_the_attached_compute_alone(sides):
    azure = plan(sides, "base", "aks")[("dev", "azure")]
    assert ML + "Compute" not in actions(azure)
    assert "aks-compute-replaced" not in rules(azure)


def test_aks_vm_size_change_is_flagged_as_refused(sides):
    staging = plan(sides, "base", "aks")
    azure = staging[("staging", "azure")]
    new_size = _specs()["aks"][0]["environments"]["staging"]["azure"]["aks"]["vm_size"]
    assert actions(azure)[azure_platform.AKS_CLUSTER] == {"update"}  # azure-native sends it as an update
    refused = flag(azure, "aks-pool-vm-size")
    assert refused.severity == "refused" and f"-> {new_size}" in refused.message
    # The attached compute holds nothing that follows the pool: it is not replaced.
    assert ML + "Compute" not in actions(azure) and "aks-compute-replaced" not in rules(azure)
    assert not staging[("staging", "aws")].changes


# --------------------------------------------------------------------------- CloudFormation rules on real templates


def _serving(sides, env: str) -> dict:
    return next(t for name, t in sides["base"].aws[env].items() if name.endswith("-Serving"))


def test_a_budget_with_new_subscribers_is_a_custom_named_replacement_cloudformation_refuses(sides):
    base = _serving(sides, "dev")
    new = json.loads(json.dumps(base.template))
    budget = next(r for r in new["Resources"].values() if r["Type"] == "AWS::Budgets::Budget")
    budget["Properties"]["NotificationsWithSubscribers"][0]["Subscribers"].append(
        {"Address": "new-oncall@example.com", "SubscriptionType": "EMAIL"}
    )
    section = Section("iris", "dev", "aws", "test")
    compare_stacks(section, {base.stack_name: base}, {base.stack_name: _with(base, new)})
    assert actions(section) == {"AWS::Budgets::Budget": {"replace"}}  # NotificationsWithSubscribers: create-only
    refused = flag(section, "cfn-custom-name-replacement")
    assert refused.severity == "refused" and "Budget.BudgetName" in refused.message


def test_a_retained_resource_that_leaves_the_template_is_left_behind(sides):
    base = _serving(sides, "prod")
    new = json.loads(json.dumps(base.template))
    key = next(k for k, r in new["Resources"].items() if r["Type"] == "AWS::KMS::Key")
    assert base.template["Resources"][key]["DeletionPolicy"] == aws_platform.CFN_RETAIN  # prod keeps data
    del new["Resources"][key]
    section = Section("iris", "prod", "aws", "test")
    compare_stacks(section, {base.stack_name: base}, {base.stack_name: _with(base, new)})
    assert f"Serving/{key}" in flag(section, "cfn-retain").resources


def _with(stack, template: dict):
    return replace(stack, template=template)


# --------------------------------------------------------------------------- the command, on a git repository


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=plan@example.com", "-c", "user.name=plan", *args],
        check=True,
        capture_output=True,
    )


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1"}
    cmd = [sys.executable, "-m", "twinserve.cli", "plan", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture
def repository(sample_model, tmp_path) -> Path:
    """A repository holding a spec and its build context; the model folder stays outside (untracked)."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "model_containers", repo / "model_containers", ignore=shutil.ignore_patterns("__pycache__"))
    raw = sample(context=repo / "model_containers")
    raw["container"]["build"] = "../model_containers"
    (repo / "deploy").mkdir()
    (repo / "deploy" / "twinserve.yaml").write_text(yaml.safe_dump(raw))
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "deployed")
    return repo


def test_plan_command_reports_a_new_image_from_an_edited_build_context(repository):
    """The build context is tracked: the base side gets it from the commit, the working copy has the edit."""
    server = repository / "model_containers" / "twinserve_serving" / "app.py"
    server.write_text(server.read_text() + "\n# a change to the serving code\n")
    result = _run("--base", "HEAD", "--spec", str(repository / "deploy" / "twinserve.yaml"), "--env", "dev", "--json")
    doc = json.loads(result.stdout)
    # the old ML environment versions and context blobs stay in Azure (retained on delete): a leftover,
    # reported without failing the plan
    assert {f["severity"] for s in doc["sections"] for f in s["flags"]} == {"leftover"}
    assert result.returncode == 0 == doc["exit_code"], result.stderr
    folders = {f["field"]: f for f in doc["folders"]}
    assert folders["container.build"]["from_revision"] is True
    assert folders["model.artifact.path"]["from_revision"] is False  # outside the repository
    sections = {(s["environment"], s["cloud"]): s for s in doc["sections"]}
    aws = sections[("dev", "aws")]
    model = [c for c in aws["changes"] if c["type"] == MODEL]
    assert [c["action"] for c in model] == ["replace"] and "new image (create-only)" in model[0]["why"]
    assert aws["notes"][0].startswith("new image: model ") and "the endpoint config are replaced" in aws["notes"][0]
    azure = sections[("dev", "azure")]
    versions = [c for c in azure["changes"] if c["type"] == ML + "EnvironmentVersion"]
    assert {c["action"] for c in versions} == {"replace"}  # the version is the context hash: a new version
    assert any(n.startswith("new image: ML environment iris-serving") for n in azure["notes"])
    deployments = [c for c in azure["changes"] if c["type"] == ML + "OnlineDeployment"]
    assert deployments and all("follows the new id" in c["why"] for c in deployments)


def test_plan_command_with_an_unknown_revision_exits_2(repository):
    result = _run("--base", "no-such-branch", "--spec", str(repository / "deploy" / "twinserve.yaml"))
    assert result.returncode == 2 and result.stdout == ""
    assert "--base no-such-branch: not a commit" in result.stderr


def test_plan_command_names_the_revision_when_its_spec_is_invalid(repository):
    spec = repository / "deploy" / "twinserve.yaml"
    raw = yaml.safe_load(spec.read_text())
    raw["environments"]["prod"]["compute"]["instance_count"] = 1  # canary needs 3
    spec.write_text(yaml.safe_dump(raw))
    _git(repository, "commit", "-qam", "bad")
    spec.write_text(yaml.safe_dump(sample()))
    result = _run("--base", "HEAD", "--spec", str(spec))
    assert result.returncode == 2
    assert "HEAD:deploy/twinserve.yaml: environments.prod.compute.instance_count: a canary rollout" in result.stderr
