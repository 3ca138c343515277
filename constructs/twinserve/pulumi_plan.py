"""Runs a Pulumi program without the Pulumi engine and records the resource graph it declares.

No Pulumi CLI can run on the build machines (and no cloud credentials exist there), so the program
is run under ``pulumi.runtime.set_mocks``: the real Pulumi SDK and the real pulumi-azure-native
resource classes build every resource, and a recording mock monitor answers the engine's part.
What is recorded is what the program *declares* - type, logical name, parent, inputs as sent to
the provider (camelCase wire names), explicit dependencies and resource options - never what
Azure would compute. That makes the plan deterministic and fit for snapshots.

The mock answers: ids are ``<name>-id``; outputs echo the inputs plus an ``id``, a ``name`` (the
Azure name input listed in ``NAME_INPUTS``, else the logical name) and the attributes the program
reads back (principal ids of identities, a storage account's blob endpoint, an online endpoint's
scoring URI, an API Management service's gateway URL, endpoint and subscription keys from ``FAKE_CALLS``).
File assets and archives are recorded by path, relative to the working directory when under it, never by content.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.sync_await import _sync_await

# Output attributes that the cloud would compute and the program reads (fixed, so plans are stable).
FAKE_OUTPUTS: dict[str, dict[str, Any]] = {
    "azure-native:managedidentity:UserAssignedIdentity": {
        "principalId": "00000000-0000-0000-0000-00000000a001",
        "clientId": "00000000-0000-0000-0000-00000000c001",
    },
    # the workspace GUID Azure assigns (its default blob container is azureml-blobstore-<GUID>)
    "azure-native:machinelearningservices:Workspace": {"workspaceId": "00000000-0000-0000-0000-0000000000ws"},
}
# The input that holds a resource's Azure name: the mock returns it as the ``name`` output, as Azure does.
NAME_INPUTS: dict[str, str] = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:containerregistry:Registry": "registryName",
    "azure-native:machinelearningservices:Workspace": "workspaceName",
    "azure-native:containerservice:ManagedCluster": "resourceName",
    "azure-native:managedidentity:UserAssignedIdentity": "resourceName",
    "azure-native:apimanagement:ApiManagementService": "serviceName",
    "azure-native:cdn:Profile": "profileName",
    "azure-native:cdn:AFDEndpoint": "endpointName",
    "azure-native:cdn:AFDOriginGroup": "originGroupName",
}
FAKE_CALLS: dict[str, dict[str, Any]] = {
    "azure-native:machinelearningservices:listOnlineEndpointKeys": {
        "primaryKey": "fake-primary-key",
        "secondaryKey": "fake-secondary-key",
    },
    "azure-native:apimanagement:listSubscriptionSecrets": {
        "primaryKey": "fake-subscription-primary-key",
        "secondaryKey": "fake-subscription-secondary-key",
    },
    "azure-native:authorization:getClientConfig": {
        "clientId": "00000000-0000-0000-0000-0000000000c1",
        "objectId": "00000000-0000-0000-0000-0000000000b1",
        "subscriptionId": "00000000-0000-0000-0000-000000000000",
        "tenantId": "00000000-0000-0000-0000-0000000000a1",
    },
}


@dataclass
class PlannedResource:
    type: str
    name: str
    parent: str | None
    """Logical name of the parent (None for children of the stack)."""
    inputs: dict[str, Any]
    depends_on: list[str] = field(default_factory=list)
    """Logical names of the resources this one waits for: ``depends_on`` and those whose outputs it uses."""
    options: dict[str, Any] = field(default_factory=dict)
    """Resource options that matter for safety: protect, retain_on_delete, replace_on_changes..."""
    custom: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "inputs": self.inputs,
            "depends_on": self.depends_on,
            "options": self.options,
        }


class _RecordingMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        name_input = NAME_INPUTS.get(args.typ)
        if name_input and isinstance(args.inputs.get(name_input), str):
            outputs["name"] = args.inputs[name_input]
        outputs.setdefault("name", args.name)
        outputs.update(FAKE_OUTPUTS.get(args.typ, {}))
        identity = outputs.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
            # Inputs list the identity ids; Azure answers with a map id -> {principalId, clientId}.
            outputs["identity"] = {
                **identity,
                "userAssignedIdentities": {i: {} for i in identity["userAssignedIdentities"]},
            }
        if args.typ == "azure-native:containerregistry:Registry":
            outputs["loginServer"] = f"{outputs['name']}.azurecr.io"
        if args.typ == "azure-native:storage:StorageAccount":
            outputs["primaryEndpoints"] = {"blob": f"https://{outputs['name']}.blob.core.windows.net/"}
        if isinstance(identity, dict) and identity.get("type") == "SystemAssigned":
            outputs["identity"] = {**identity, "principalId": f"{args.name}-principal"}
        if args.typ == "pulumi-python:dynamic:Resource" and "source_image" in args.inputs:
            # twinserve's ImportedImage: the provider answers with the image by digest in the registry
            from twinserve.azure.image_import import imported_reference

            outputs["image"] = imported_reference(
                args.inputs["login_server"], args.inputs["target_repository"], args.inputs["source_image"]
            )
        if args.typ == "azure-native:apimanagement:ApiManagementService":
            outputs["gatewayUrl"] = f"https://{args.inputs.get('serviceName', args.name)}.azure-api.net"
        if args.typ == "azure-native:machinelearningservices:OnlineEndpoint":
            endpoint = args.inputs.get("endpointName", args.name)
            region = args.inputs.get("location", "westeurope")  # the endpoint's host names its region
            outputs["properties"] = {
                **outputs.get("properties", {}),
                "scoringUri": f"https://{endpoint}.{region}.inference.ml.azure.com/score",
            }
        if args.typ == "azure-native:cdn:AFDEndpoint":
            # Azure appends a hash to the endpoint's name (autoGeneratedDomainNameLabelScope TenantReuse).
            outputs["hostName"] = f"{args.inputs.get('endpointName', args.name)}-fakehash.z01.azurefd.net"
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return FAKE_CALLS.get(args.token, {})


DYNAMIC_PROVIDER_INPUT = "__provider"
"""The input holding a Pulumi dynamic resource's serialized provider."""


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, keeping the parts of each registration it normally drops."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registrations: list[tuple[Any, dict]] = []
        self.stack_outputs: dict[str, Any] = {}

    def RegisterResource(self, request):  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = pulumi.runtime.rpc.deserialize_properties(request.object)
            # a dynamic resource's provider travels as a pickled blob: code, not a declared input
            inputs.pop(DYNAMIC_PROVIDER_INPUT, None)
            self.registrations.append((request, inputs))
        return response

    def RegisterResourceOutputs(self, request):  # noqa: N802 - the gRPC method name
        if _is_stack(request.urn):  # the program's pulumi.export()s
            self.stack_outputs = pulumi.runtime.rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        return super().RegisterResourceOutputs(request)


def _name_of(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _is_stack(urn: str) -> bool:
    qualified_type = urn.split("::")[2]
    return qualified_type.split("$")[-1] == "pulumi:pulumi:Stack"


def _asset_path(path: str) -> str:
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path


# How the engine's wire format marks a secret value (shown in plans as {"$secret": value}).
_SIG_KEY, _SECRET_SIG = pulumi.runtime.rpc._special_sig_key, pulumi.runtime.rpc._special_secret_sig


def _plain(value: Any) -> Any:
    """Floats that are whole numbers come back from the mock as floats: show them as ints.
    Assets and archives are shown by path (never by content hash, which is not declared)."""
    if isinstance(value, pulumi.FileAsset):
        return {"$asset": _asset_path(value.path)}
    if isinstance(value, pulumi.FileArchive):
        return {"$archive": _asset_path(value.path)}
    if isinstance(value, pulumi.StringAsset):
        return {"$asset-text": value.text}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict) and value.get(_SIG_KEY) == _SECRET_SIG:
        return {"$secret": _plain(value["value"])}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def plan_program(
    program: Callable[[], Any],
    *,
    project: str,
    stack: str,
    config: dict[str, Any] | None = None,
    exports: dict[str, Any] | None = None,
) -> list[PlannedResource]:
    """Run ``program`` under mocks as stack ``stack`` and return every resource it declared.

    ``config`` uses Pulumi's fully-qualified keys (``azure-native:location``), as in Pulumi.<stack>.yaml.
    ``exports``, when given, receives the stack outputs (``pulumi.export``); secrets come as
    ``{"$secret": value}``. Errors the program raises (e.g. a spec validation error) propagate unchanged.
    """
    mocks = _RecordingMocks()
    monitor = _RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()})
    settings = pulumi.runtime.settings.SETTINGS
    settings.rpc_manager.clear()
    settings.outputs.clear()
    pulumi.runtime.settings.set_root_resource(None)  # one plan after another in the same process
    try:
        # In a Stack resource, as `pulumi up` runs a program: its exports become the stack outputs.
        _sync_await(pulumi.runtime.stack.run_in_stack(program))
    finally:
        pulumi.runtime.set_all_config({})

    if exports is not None:
        exports.update(_plain(monitor.stack_outputs))
    planned = []
    for request, inputs in monitor.registrations:
        parent = _name_of(request.parent) if request.parent and not _is_stack(request.parent) else None
        options = {}
        if request.protect:
            options["protect"] = True
        if getattr(request, "retainOnDelete", False):
            options["retain_on_delete"] = True
        if request.deleteBeforeReplace:
            options["delete_before_replace"] = True
        if list(request.ignoreChanges):
            options["ignore_changes"] = sorted(request.ignoreChanges)
        if list(request.replaceOnChanges):
            options["replace_on_changes"] = sorted(request.replaceOnChanges)
        planned.append(
            PlannedResource(
                type=request.type,
                name=request.name,
                parent=parent,
                inputs=_plain(inputs),
                depends_on=sorted({_name_of(urn) for urn in request.dependencies}),
                options=options,
                custom=bool(request.custom),
            )
        )
    # Registration order depends on when outputs resolve; sort so plans diff and snapshot cleanly.
    return sorted(planned, key=lambda r: (r.name, r.type))
