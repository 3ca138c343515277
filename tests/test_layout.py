"""The design card's layout, and the trap in it: a top-level folder named `constructs/` must not
shadow the CDK base library `constructs` that aws-cdk-lib is built on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_design_card_top_level():
    for name in ("cdk.json", "Pulumi.yaml", "pyproject.toml"):
        assert (REPO_ROOT / name).is_file(), name
    for name in ("stacks", "constructs", "model_containers", "tests"):
        assert (REPO_ROOT / name).is_dir(), name


def test_constructs_folder_is_a_source_root_not_a_package():
    assert not (REPO_ROOT / "constructs" / "__init__.py").exists()
    assert (REPO_ROOT / "constructs" / "twinserve" / "__init__.py").is_file()


def test_import_constructs_resolves_to_the_cdk_library_from_the_repo_root():
    # Run from the repository root, where `constructs/` is right there on sys.path[0] ('').
    code = (
        "import constructs, aws_cdk, twinserve;"
        "print(constructs.__file__); print(hasattr(constructs, 'Construct')); print(twinserve.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
            "PATH": "/usr/bin:/bin",
        },
        check=True,
    ).stdout.splitlines()
    assert "site-packages" in out[0] and out[0].endswith("constructs/__init__.py")
    assert out[1] == "True"
    assert out[2] == str(REPO_ROOT / "constructs" / "twinserve" / "__init__.py")


def test_cdk_app_and_pulumi_main_point_into_stacks():
    cdk = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert cdk["app"].endswith("-m stacks.aws.app")
    assert (REPO_ROOT / "stacks" / "aws" / "app.py").is_file()
    pulumi_project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    assert pulumi_project["main"].rstrip("/") == "stacks/azure"
    assert (REPO_ROOT / "stacks" / "azure" / "__main__.py").is_file()
    assert pulumi_project["runtime"]["name"] == "python"


def test_every_environment_has_its_pulumi_stack_file_with_a_location():
    for env in ("dev", "staging", "prod"):
        config = yaml.safe_load((REPO_ROOT / f"Pulumi.{env}.yaml").read_text())["config"]
        assert config["azure-native:location"], env


def test_cdk_tools_are_pinned_to_versions_that_read_the_cloud_assembly():
    # aws-cdk-lib 2.273 writes cloud assembly schema 54: the CDK CLI 2.1148.1 and cdk-assets 4.7.3 read it
    # (test_pipeline runs cdk-assets on every synthesized manifest; 2.274+ write 55, which no cdk-assets reads)
    package = json.loads((REPO_ROOT / "package.json").read_text())
    assert package["devDependencies"] == {"aws-cdk": "2.1148.1", "cdk-assets": "4.7.3"}
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == "2.1148.1"
    assert lock["packages"]["node_modules/cdk-assets"]["version"] == "4.7.3"
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert '"aws-cdk-lib==2.273.0"' in pyproject
