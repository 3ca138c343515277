"""The `twinserve` command as a newcomer meets it: validate, and the full synth of both clouds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
TWINSERVE = [sys.executable, "-m", "twinserve.cli"]


def run(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    return subprocess.run([*TWINSERVE, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_validate_a_good_spec_prints_a_summary_and_exits_0():
    result = run("validate", "deploy/twinserve.yaml")
    assert result.returncode == 0, result.stderr
    assert "deploy/twinserve.yaml: valid - deployment 'iris', model iris v1" in result.stdout
    assert "prod     targets=aws+azure" in result.stdout and "rollout canary" in result.stdout


def test_validate_a_bad_spec_exits_2_with_file_path_value_and_allowed(tmp_path):
    raw = yaml.safe_load((REPO_ROOT / "deploy/twinserve.yaml").read_text())
    raw["environments"]["prod"]["compute"]["instance_count"] = 1
    raw["environments"]["prod"]["scaling"]["min_instances"] = 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    result = run("validate", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert (
        f"{bad}: environments.prod.compute.instance_count: a canary rollout needs at least 3 instances" in result.stderr
    )
    assert "(got 1)" in result.stderr


def test_help_lists_the_commands_the_readme_names():
    result = run("--help")
    assert result.returncode == 0
    for command in ("validate", "synth", "local", "batch"):
        assert command in result.stdout, command


@pytest.fixture(scope="module")
def synthesized(sample_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    result = run("synth", "--cdk-out", str(out / "cdk.out"), "--pulumi-out", str(out / "pulumi.out"))
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result.stdout


def _stage_resources(stage: Path) -> dict:
    """Every resource of every stack in one environment's Stage."""
    resources: dict = {}
    for template in stage.glob("*.template.json"):
        for logical_id, resource in json.loads(template.read_text())["Resources"].items():
            resources[f"{template.name}/{logical_id}"] = resource
    return resources


def test_synth_writes_every_environment_of_both_clouds(synthesized):
    out, stdout = synthesized
    for env in ("dev", "staging", "prod"):
        stage = out / "cdk.out" / f"assembly-iris-{env}"
        resources = _stage_resources(stage)
        assert resources, f"no CloudFormation template for {env}"
        assert any(r["Type"] == "AWS::SageMaker::Endpoint" for r in resources.values())
        plan = json.loads((out / "pulumi.out" / f"{env}.json").read_text())
        assert plan["stack"] == env and plan["project"] == "twinserve"
        types = {r["type"] for r in plan["resources"]}
        assert "azure-native:machinelearningservices:Workspace" in types


def test_synth_summary_counts_match_the_outputs(synthesized):
    out, stdout = synthesized
    lines = {line.split()[1]: line.split() for line in stdout.splitlines() if line.startswith("iris ")}
    # the sample spec has a pipeline section: its stack (both clouds' promotion) is a row of its own
    assert set(lines) == {"dev", "staging", "prod", "pipeline"}
    pipeline = json.loads((out / "cdk.out" / "iris-pipeline.template.json").read_text())
    assert int(lines.pop("pipeline")[2]) == len(pipeline["Resources"])
    for env, cells in lines.items():
        plan = json.loads((out / "pulumi.out" / f"{env}.json").read_text())
        assert int(cells[4]) == sum(1 for r in plan["resources"] if r["custom"])
        assert int(cells[2]) == len(_stage_resources(out / "cdk.out" / f"assembly-iris-{env}"))


def test_synth_refuses_a_bad_spec_before_writing_anything(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: iris\nmodel: {name: iris, version: '1', artifact: {path: x}}\n"
        "container: {image_uri: x}\nenvironments: {qa: {}}\n"
    )
    result = run(
        "synth",
        "--spec",
        str(bad),
        "--cdk-out",
        str(tmp_path / "cdk.out"),
        "--pulumi-out",
        str(tmp_path / "pulumi.out"),
    )
    assert result.returncode == 2
    assert "environments.qa: unknown environment; allowed: dev, staging, prod" in result.stderr
    assert not (tmp_path / "cdk.out").exists() and not (tmp_path / "pulumi.out").exists()
