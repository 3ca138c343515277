"""The Pulumi program: one environment of the spec on Azure ML. Stack name = environment.

Config (``Pulumi.<env>.yaml``) holds only Azure-only settings:
  azure-native:location   where everything is created
  twinserve:spec          path of the deployment spec (default: deploy/twinserve.yaml)
"""

from __future__ import annotations

from pathlib import Path

import pulumi
from pulumi_azure_native import authorization, resources

from twinserve.azure import MlWorkspace, MlWorkspaceArgs
from twinserve.spec import DeploymentSpec, load_spec

DEFAULT_SPEC = "deploy/twinserve.yaml"
REPO_ROOT = Path(__file__).resolve().parents[2]


def build_environment(spec: DeploymentSpec, env_name: str, *, location: str, spec_dir: Path) -> None:
    """Declare every Azure resource of one environment."""
    env = spec.environment(env_name)
    if "azure" not in env.targets:
        return
    tags = {"twinserve:deployment": spec.name, "twinserve:environment": env_name}
    client = authorization.get_client_config_output()
    group = resources.ResourceGroup(f"{spec.name}-{env_name}-rg", location=location, tags=tags)
    workspace = MlWorkspace(f"{spec.name}-{env_name}", MlWorkspaceArgs(
        resource_group_name=group.name, location=location, tenant_id=client.tenant_id,
        name_prefix=f"{spec.name}{env_name}".replace("-", "")[:16],
        purge_protection=env_name == "prod", tags=tags))
    pulumi.export("resource_group", group.name)
    pulumi.export("workspace_name", workspace.workspace_name)


def main() -> None:
    env_name = pulumi.get_stack()
    spec_path = Path(pulumi.Config("twinserve").get("spec") or DEFAULT_SPEC)
    if not spec_path.is_absolute():
        spec_path = REPO_ROOT / spec_path
    location = pulumi.Config("azure-native").require("location")
    build_environment(load_spec(spec_path), env_name, location=location, spec_dir=spec_path.parent)
