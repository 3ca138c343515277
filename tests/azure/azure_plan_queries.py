"""Queries over a planned resource graph (lists of ``PlannedResource.as_dict()``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEPLOY_SPEC = REPO / "deploy" / "twinserve.yaml"
EXAMPLES = sorted((REPO / "examples" / "azure").glob("*.yaml")) + sorted(
    (REPO / "examples" / "two-clouds").glob("*.yaml")
)
"""The Azure examples, then the ones for both clouds (examples/two-clouds)."""
ML = "azure-native:machinelearningservices:"


def of_type(plan: list[dict], typ: str) -> list[dict]:
    return [r for r in plan if r["type"] == typ]


def one(plan: list[dict], typ: str, **where: Any) -> dict:
    found = [r for r in of_type(plan, typ) if all(_get(r, k) == v for k, v in where.items())]
    assert len(found) == 1, f"expected one {typ} with {where}, found {[r['name'] for r in found]}"
    return found[0]


def by_name(plan: list[dict], name: str) -> dict:
    (found,) = [r for r in plan if r["name"] == name]
    return found


def _get(resource: dict, dotted: str) -> Any:
    node: Any = resource
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def children(plan: list[dict], parent: str) -> list[dict]:
    return [r for r in plan if r["parent"] == parent]


def endpoint_groups(plan: list[dict]) -> list[dict]:
    """For each online endpoint component: its endpoint, deployments and traffic template."""
    groups = []
    for component in of_type(plan, "twinserve:azure:OnlineEndpoint"):
        kids = children(plan, component["name"])
        (endpoint,) = [r for r in kids if r["type"] == ML + "OnlineEndpoint"]
        deployments = [r for r in kids if r["type"] == ML + "OnlineDeployment"]
        (traffic,) = [r for r in kids if r["type"] == "azure-native:resources:Deployment"]
        (template_resource,) = traffic["inputs"]["properties"]["template"]["resources"]
        groups.append(
            {
                "component": component,
                "endpoint": endpoint,
                "deployments": deployments,
                "traffic": traffic,
                "template": template_resource,
            }
        )
    return groups


IMAGE_CONTEXT = re.compile(r"-image-context-")


def snapshot_view(plan: list[dict]) -> list[dict]:
    """The plan as snapshotted: everything the program declares, except what follows the content of
    the container's build context (model_containers/, owned and changed by the container work): one
    blob per context file, the context's content hash and the ML environment versions derived from it.
    Those are checked by dedicated tests instead (test_image_context_*)."""
    placeholders = build_context_hashes(plan)
    view = []
    for resource in plan:
        if IMAGE_CONTEXT.search(resource["name"]):
            continue
        for value, placeholder in placeholders.items():
            resource = _replace(resource, value, placeholder)
        resource = dict(resource)
        resource["depends_on"] = [d for d in resource["depends_on"] if not IMAGE_CONTEXT.search(d)]
        view.append(resource)
    return view


CONTEXT_PREFIX = re.compile(r"/images/[^/]+/([0-9a-f]{12})/")


def build_context_hashes(plan: list[dict]) -> dict[str, str]:
    """{hash: placeholder} of the values that follow the build context's content."""
    found = {}
    for env in of_type(plan, ML + "EnvironmentVersion"):
        kind = "serving" if env["inputs"]["name"].endswith("-serving") else "batch"
        found[env["inputs"]["version"]] = f"<{kind}-ml-environment-version>"
        match = CONTEXT_PREFIX.search(env["inputs"]["properties"].get("build", {}).get("contextUri", ""))
        if match:
            found[match.group(1)] = "<build-context-hash>"
    return found


def _replace(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    return value


def serving_ml_environment(plan: list[dict]) -> dict:
    """The environment version of the online deployments (``<spec name>-serving``)."""
    (env,) = [r for r in of_type(plan, ML + "EnvironmentVersion") if r["inputs"]["name"].endswith("-serving")]
    return env


def batch_ml_environment(plan: list[dict]) -> dict:
    """The environment version of the batch deployment (``<spec name>-batch``)."""
    (env,) = [r for r in of_type(plan, ML + "EnvironmentVersion") if r["inputs"]["name"].endswith("-batch")]
    return env


def build_context_hash(plan: list[dict]) -> str:
    """The content hash of the uploaded build context (its folder in the asset container)."""
    build = serving_ml_environment(plan)["inputs"]["properties"]["build"]
    return CONTEXT_PREFIX.search(build["contextUri"]).group(1)
