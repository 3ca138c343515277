"""Two mocked Pulumi plans of a stack -> what ``pulumi up`` would do, and what Azure or Pulumi would refuse.

Resources match by URN (parent, type, logical name). Inputs under ``ignore_changes`` are left out,
as Pulumi does. A resource is replaced when an input in
:func:`twinserve.platform.azure.azure_create_only_inputs` changes (its ARM name or a parent's, its
location, the few others listed there) or one named by its ``replace_on_changes`` option; otherwise
it is updated in place. The mocks answer ``<logical name>-id`` for every id, so a resource whose ARM
name changes gets a new id that the plan cannot show: every input holding the old mock id follows it
(a new environment version moves the deployments onto it), propagated until nothing changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..platform import azure as azure_platform
from .model import (
    MISSING,
    Change,
    Flag,
    Path,
    Section,
    parse_path,
    path_matches,
    path_under,
    show_change,
    show_path,
    summarize,
)

ONLINE_ENDPOINT = "azure-native:machinelearningservices:OnlineEndpoint"
ONLINE_DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
COMPUTE = "azure-native:machinelearningservices:Compute"
ENVIRONMENT_VERSION = "azure-native:machinelearningservices:EnvironmentVersion"
MODEL_VERSION = "azure-native:machinelearningservices:ModelVersion"
BLOB = "azure-native:storage:Blob"
MODEL_BLOB_PREFIX = "models/"
"""Where ModelEnvironment (twinserve/azure/model_environment.py) uploads ``models/<name>/<version>/``."""


@dataclass(frozen=True)
class _Diff:
    path: Path
    old: Any
    new: Any
    follows: str | None = None
    """The logical name of a resource with a new id that this input holds."""


@dataclass
class _Resource:
    key: tuple[str | None, str, str]
    action: str
    diffs: list[_Diff]
    base: dict | None
    new: dict | None
    forced: list[_Diff]
    """Diffs of create-only inputs."""
    by_option: list[_Diff]
    """Diffs that ``replace_on_changes`` names."""

    @property
    def name(self) -> str:
        return self.key[2]

    @property
    def type(self) -> str:
        return self.key[1]

    @property
    def replaced(self) -> bool:
        return self.action == "replace"

    @property
    def inputs(self) -> dict:
        return (self.new or self.base or {}).get("inputs", {})

    def option(self, name: str, side: str = "new") -> Any:
        resource = (self.new if side == "new" else self.base) or {}
        return resource.get("options", {}).get(name)

    @property
    def new_id(self) -> bool:
        """Replaced under another ARM name, so its id changes."""
        names = azure_platform.ARM_NAME_INPUTS.get(self.type, ())
        return self.replaced and any(d.path[:1] in [(n,) for n in names] for d in self.forced)

    @property
    def named(self) -> bool:
        names = azure_platform.ARM_NAME_INPUTS.get(self.type)
        return bool(names) and names[-1] in self.inputs

    @property
    def delete_first(self) -> bool:
        """azure-native deletes an explicitly named resource before creating its replacement."""
        return self.replaced and bool((self.forced and self.named) or self.option("delete_before_replace"))


def _mock_id(name: str) -> re.Pattern:
    """The id the mocks give resource ``name``, anywhere in a string (``<name>-id``, not a longer name's)."""
    return re.compile(rf"(?<![A-Za-z0-9-]){re.escape(name)}-id(?![A-Za-z0-9-])")


def _compare(old: Any, new: Any, path: Path, ids: dict[str, re.Pattern], out: list[_Diff]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            _compare(old.get(key, MISSING), new.get(key, MISSING), (*path, key), ids, out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _compare(a, b, (*path, i), ids, out)
    elif old != new:
        out.append(_Diff(path, old, new))
    elif isinstance(new, str):
        for name, pattern in ids.items():
            if pattern.search(new):
                out.append(_Diff(path, old, new, follows=name))
                return


def _key(resource: dict) -> tuple[str | None, str, str]:
    return (resource.get("parent"), resource["type"], resource["name"])


def _plan_resources(base: list[dict], new: list[dict]) -> dict[tuple, _Resource]:
    old_res = {_key(r): r for r in base if r.get("custom", True)}
    new_res = {_key(r): r for r in new if r.get("custom", True)}
    moved: set[str] = set()  # logical names whose id changes
    while True:
        ids = {n: _mock_id(n) for n in sorted(moved)}
        planned: dict[tuple, _Resource] = {}
        for key in sorted(set(old_res) | set(new_res), key=lambda k: (k[2], k[1], k[0] or "")):
            a, b = old_res.get(key), new_res.get(key)
            if a is None or b is None:
                planned[key] = _Resource(key, "create" if a is None else "delete", [], a, b, [], [])
                continue
            diffs: list[_Diff] = []
            _compare(a.get("inputs", {}), b.get("inputs", {}), (), ids, diffs)
            ignored = [parse_path(p) for p in b.get("options", {}).get("ignore_changes", [])]
            diffs = [d for d in diffs if not any(path_under(p, d.path) for p in ignored)]
            if not diffs:
                continue
            create_only = [parse_path(p) for p in azure_platform.azure_create_only_inputs(key[1])]
            forced = [d for d in diffs if any(path_matches(p, d.path) for p in create_only)]
            patterns = b.get("options", {}).get("replace_on_changes", [])
            by_option = [d for d in diffs if any(p == "*" or path_matches(parse_path(p), d.path) for p in patterns)]
            action = "replace" if forced or by_option else "update"
            planned[key] = _Resource(key, action, diffs, a, b, forced, by_option)
        now = {r.name for r in planned.values() if r.new_id}
        if now == moved:
            return planned
        moved = now


def _describe(diff: _Diff) -> str:
    where = show_path(diff.path)
    if diff.follows:
        return f"{where}: follows the new id of {diff.follows}"
    if "$asset-sha256" in diff.path:
        return f"{show_path(diff.path[: diff.path.index('$asset-sha256')])}: new content"
    return f"{where}: {show_change(diff.old, diff.new)}"


def _why(resource: _Resource) -> str:
    if resource.action == "create":
        return "new in the program"
    if resource.action == "delete":
        return "no longer in the program"
    parts = [f"{_describe(d)} (create-only)" for d in resource.forced]
    parts += [f"{_describe(d)} (replace_on_changes)" for d in resource.by_option if d not in resource.forced]
    parts += [_describe(d) for d in resource.diffs if d not in resource.forced and d not in resource.by_option]
    if resource.delete_first:
        parts.append("the old one is deleted before the new one is created")
    return summarize(parts)


def _short(type_token: str) -> str:
    return type_token.removeprefix("azure-native:")


def compare_plans(
    section: Section, base: list[dict], new: list[dict], *, stack: str, project: str, refresh_always: bool = False
) -> None:
    """Add to ``section`` the changes and flags of one Pulumi stack (environment)."""
    planned = _plan_resources(base, new)
    for r in planned.values():
        section.changes.append(Change(r.action, r.name, r.type, _why(r), [show_path(d.path) for d in r.diffs]))
    urns = _urns(base, stack, project)
    for r in planned.values():
        _flag_kept(section, r, urns)
    _flag_asset_versions(section, planned)
    _flag_cluster(section, planned)
    _flag_workspace_network(section, planned)
    _flag_compute(section, planned, new)
    if not refresh_always:  # a refresh first puts the autoscaler's capacity into the state
        _flag_capacity(section, planned)
    _story(section, planned)


def _urns(resources: list[dict], stack: str, project: str) -> dict[str, str]:
    """Pulumi URNs by logical name (for ``pulumi state unprotect``)."""
    by_name = {r["name"]: r for r in resources}

    def chain(resource: dict) -> str:
        parent = by_name.get(resource.get("parent") or "")
        return f"{chain(parent)}${resource['type']}" if parent else resource["type"]

    return {name: f"urn:pulumi:{stack}::{project}::{chain(r)}::{name}" for name, r in by_name.items()}


def _flag_kept(section: Section, r: _Resource, urns: dict[str, str]) -> None:
    if r.action not in ("delete", "replace"):
        return
    what = "deleted" if r.action == "delete" else "replaced"
    if r.option("protect", "base"):
        section.flag(
            Flag(
                "refused",
                "pulumi-protect",
                f"protected and {what}: `pulumi up` refuses to delete a protected resource, so the whole update fails",
                "unprotect it first - `pulumi state unprotect '<urn>'` (URNs in --json), then `pulumi up`"
                + ("; retain_on_delete keeps it in Azure" if r.option("retain_on_delete", "base") else "")
                + " - or keep declaring it while it must stay",
                azure_platform.PROTECT_SOURCE,
                [r.name],
                {"urns": [urns.get(r.name, r.name)]},
            )
        )
    elif r.option("retain_on_delete", "base"):
        if r.action == "replace" and not r.new_id:
            section.flag(
                Flag(
                    "refused",
                    "azure-retained-same-name",
                    "replaced under the same name while retain_on_delete keeps the old one in Azure: "
                    "creating the replacement fails (the resource already exists)",
                    "avoid the change of its create-only input, or delete the old resource by hand first",
                    azure_platform.RETAIN_ON_DELETE_SOURCE,
                    [r.name],
                )
            )
        else:
            section.flag(
                Flag(
                    "leftover",
                    "pulumi-retain-on-delete",
                    f"{what} with retain_on_delete: Pulumi forgets it and it stays in Azure",
                    "intended for kept data (artifact blobs are per version and never rewritten); delete it in "
                    "Azure once nothing needs it",
                    azure_platform.RETAIN_ON_DELETE_SOURCE,
                    [r.name],
                )
            )
    if r.replaced and r.named and not r.delete_first and not r.new_id:
        section.flag(
            Flag(
                "refused",
                "azure-same-name-replacement",
                "replaced under the same name, creating the new one before deleting the old: azure-native "
                "refuses to create a resource that already exists",
                "set delete_before_replace on it, or avoid the change",
                azure_platform.SAME_NAME_CREATE_SOURCE,
                [r.name],
            )
        )


def _flag_asset_versions(section: Section, planned: dict[tuple, _Resource]) -> None:
    mutable = [parse_path(p) for p in azure_platform.ASSET_VERSION_MUTABLE_INPUTS]
    for r in planned.values():
        if r.type in azure_platform.IMMUTABLE_ASSET_VERSIONS and r.action == "update":
            changed = [d for d in r.diffs if not any(path_under(m, d.path) for m in mutable)]
            if changed:
                version = f"{r.inputs.get('name')}:{r.inputs.get('version')}"
                section.flag(
                    Flag(
                        "refused",
                        "azureml-immutable-version",
                        f"{_short(r.type)} {version} is sent again with other content "
                        f"({summarize([show_path(d.path) for d in changed])}): Azure ML asset versions are "
                        "immutable, it refuses the update",
                        "create a new version (for the model: a new model.version; the environment version is "
                        "a hash of the build context only, so a route or port change needs a context change)",
                        azure_platform.ASSET_VERSION_SOURCE,
                        [r.name],
                    )
                )
        if r.type == BLOB and r.action == "update" and any(d.path[:1] == ("source",) for d in r.diffs):
            blob = str(r.inputs.get("blobName", ""))
            if blob.startswith(MODEL_BLOB_PREFIX):
                version = "/".join(blob.split("/")[1:3])
                section.flag(
                    Flag(
                        "disruptive",
                        "azureml-immutable-version",
                        f"the files of model version {version} are overwritten with new content: the registered "
                        "model version is immutable and deployments that read it change without a new version",
                        "give the new model a new model.version",
                        azure_platform.ASSET_VERSION_SOURCE,
                        [r.name],
                    )
                )


def _pools(resource: dict | None) -> dict[str, dict]:
    return {p.get("name"): p for p in (resource or {}).get("inputs", {}).get("agentPoolProfiles", [])}


def _flag_cluster(section: Section, planned: dict[tuple, _Resource]) -> None:
    for r in planned.values():
        if r.type != azure_platform.AKS_CLUSTER or r.action != "update":
            continue
        old, new = _pools(r.base), _pools(r.new)
        for name, pool in new.items():
            before = old.get(name)
            if before and before.get("vmSize") != pool.get("vmSize"):
                section.flag(
                    Flag(
                        "refused",
                        "aks-pool-vm-size",
                        f"node pool {name} changes VM size ({before.get('vmSize')} -> {pool.get('vmSize')}) "
                        "in place: AKS cannot resize a node pool, Azure refuses the cluster update",
                        "add a node pool with the new size, move the workloads and delete the old pool (the "
                        "cluster component has one inline pool: a component change), or replace the cluster "
                        "and attach the compute again",
                        azure_platform.AKS_POOL_VM_SIZE_SOURCE,
                        [r.name],
                    )
                )
        ignored = [parse_path(p) for p in r.option("ignore_changes") or []]
        for i, pool in enumerate(new.values()):
            if pool.get("enableAutoScaling") and not any(
                path_under(p, ("agentPoolProfiles", i, "count")) for p in ignored
            ):
                section.flag(
                    Flag(
                        "disruptive",
                        "aks-autoscaled-count",
                        f"the cluster update re-sends node pool {pool.get('name')}'s count "
                        f"({pool.get('count')}) while the cluster autoscaler owns it",
                        "add agentPoolProfiles[*].count to the cluster's ignore_changes (a component change), "
                        "or expect the pool to be scaled to the program's count",
                        azure_platform.AKS_AUTOSCALED_COUNT_SOURCE,
                        [r.name],
                    )
                )


def _isolation(resource: dict | None) -> str | None:
    mode = ((resource or {}).get("inputs", {}).get("managedNetwork") or {}).get("isolationMode")
    return None if mode is None else re.sub(r"(?<!^)(?=[A-Z])", "_", mode).lower()


def _flag_workspace_network(section: Section, planned: dict[tuple, _Resource]) -> None:
    """A workspace managed network cannot be switched off, nor go back from approved-only to internet outbound."""
    rank = azure_platform.MANAGED_NETWORK_RANK
    for r in planned.values():
        if r.type != azure_platform.ML_WORKSPACE or r.action != "update":
            continue
        before, after = _isolation(r.base) or "disabled", _isolation(r.new) or "disabled"
        if rank.get(after, 0) < rank.get(before, 0):
            section.flag(
                Flag(
                    "refused",
                    "azureml-managed-network-down",
                    f"the workspace's managed network goes from {before} to {after}: once on, a managed "
                    "network cannot be switched off, and allow_only_approved_outbound cannot go back to "
                    "allow_internet_outbound",
                    "keep azure.managed_network (and azure.public_network_access) as deployed, or create a new "
                    "workspace (a new environment or twinserve:namePrefix)",
                    azure_platform.MANAGED_NETWORK_SOURCE,
                    [r.name],
                )
            )


def _flag_compute(section: Section, planned: dict[tuple, _Resource], new: list[dict]) -> None:
    for r in planned.values():
        if r.type != COMPUTE or r.action not in ("replace", "delete"):
            continue
        if (r.base or {}).get("inputs", {}).get("properties", {}).get("computeType") != "Kubernetes":
            continue
        pattern = _mock_id(r.name)
        by_name = {p.name: p for p in planned.values()}
        live = [
            e["name"]
            for e in new
            if e["type"] == ONLINE_ENDPOINT
            and pattern.search(str(e.get("inputs", {}).get("properties", {})))
            and getattr(by_name.get(e["name"]), "action", "update") not in ("replace", "delete")
        ]
        if not live and r.action == "delete":
            continue
        if r.action == "delete":
            how = "removed"
        else:
            order = "detached, then attached again" if r.delete_first else "replaced"
            how = f"{order} because {summarize([show_path(d.path) for d in r.diffs])} changes"
        section.flag(
            Flag(
                "disruptive",
                "aks-compute-replaced",
                f"the attached Kubernetes compute {r.inputs.get('computeName')} is {how}: the Kubernetes "
                f"endpoints on it ({', '.join(live) or 'none'}) lose their compute",
                "avoid the change of the compute's inputs; if it must happen, plan it as an outage of the "
                "Kubernetes endpoints and redeploy their deployments after the compute is attached again",
                azure_platform.KUBERNETES_COMPUTE_SOURCE,
                [r.name],
            )
        )


def _flag_capacity(section: Section, planned: dict[tuple, _Resource]) -> None:
    for r in planned.values():
        if r.type != ONLINE_DEPLOYMENT or r.action != "update":
            continue
        if "sku.capacity" not in (r.option("ignore_changes") or []):
            continue
        old = (r.base or {}).get("inputs", {}).get("sku", {}).get("capacity")
        new = (r.new or {}).get("inputs", {}).get("sku", {}).get("capacity")
        ignored = f" (the program's new count {new} is ignored: {old} stays in the state)" if old != new else ""
        section.flag(
            Flag(
                "disruptive",
                "azure-autoscaled-capacity",
                "an autoscaled deployment is updated: with sku.capacity under ignore_changes Pulumi sends the "
                f"capacity from its state, not the one the autoscaler set{ignored}",
                "run `pulumi up --refresh` (or `pulumi refresh` first): the live capacity goes into the state "
                "and the update keeps it",
                azure_platform.IGNORED_CAPACITY_SOURCE,
                [r.name],
            )
        )


def _story(section: Section, planned: dict[tuple, _Resource]) -> None:
    """One sentence per new image or model version: what moves onto it."""
    created = {r.inputs.get("version"): r for r in planned.values() if r.type == MODEL_VERSION and r.action == "create"}
    dropped = [r.inputs.get("version") for r in planned.values() if r.type == MODEL_VERSION and r.action == "delete"]
    for version, r in created.items():
        pattern = _mock_id(r.name)
        users = [
            p.name
            for p in planned.values()
            if p.action == "update" and any(pattern.search(str(d.new)) for d in p.diffs)
        ]
        section.notes.append(
            f"model {r.inputs.get('name')} version {version} is registered"
            + (f" (version {', '.join(dropped)} no longer declared)" if dropped else "")
            + (f"; {', '.join(users)} move to it" if users else "")
        )
    if dropped and not created:
        section.notes.append(f"model version {', '.join(dropped)} no longer declared")
    for r in planned.values():
        if r.type == ENVIRONMENT_VERSION and r.new_id:
            users = [
                p.name for p in planned.values() if p.action == "update" and any(d.follows == r.name for d in p.diffs)
            ]
            old = (r.base or {}).get("inputs", {}).get("version")
            section.notes.append(
                f"new image: ML environment {r.inputs.get('name')} version {old} -> {r.inputs.get('version')}"
                + (f"; {', '.join(users)} move to it" if users else "")
            )
