"""An Azure ML online endpoint (managed or Kubernetes) with its deployments, traffic and mirror traffic.

The ordering trap: an endpoint's ``traffic`` and ``mirrorTraffic`` may only name deployments that
already exist, and a deployment can only be created inside an existing endpoint. One declaration
of the endpoint cannot hold both. The component therefore splits the endpoint's life in two:

1. ``ml.OnlineEndpoint`` creates the endpoint with empty traffic. Its mutable parts (``properties``,
   ``tags``, ``identity``) are in ``ignore_changes``: Pulumi creates it and never rewrites it, so
   it can never send a stale (empty) traffic map over live traffic.
2. The deployments are created inside it, one after another (Azure ML runs one operation per
   endpoint at a time).
3. ``resources.Deployment`` (an ARM template deployment, mode Incremental) then PUTs the same
   endpoint with its complete desired state - auth mode, compute, identity, public access, tags,
   ``traffic`` and ``mirrorTraffic``. It depends on every deployment, so by the time it runs every
   name in the traffic map exists. Any change of weights, mirror or endpoint settings changes its
   template and is applied by the same single ``pulumi up``.

Removing a variant works too: Pulumi runs deletions after creates and updates, so the template
that no longer names the deployment is applied before the deployment is deleted (Azure refuses to
delete a deployment that still takes traffic).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import monitor, resources
from pulumi_azure_native import machinelearningservices as ml

from ._common import DEPLOYMENT_NAME, ENDPOINT_NAME, arm_template, check, child_opts

# The REST API version the template speaks: the one pulumi-azure-native 3.x uses for
# machinelearningservices, so the template and the typed resources agree on the schema.
ML_API_VERSION = "2025-12-01"
AUTH_MODES = {"key": "Key", "aml_token": "AMLToken", "aad_token": "AADToken"}
KINDS = ("managed", "kubernetes")
MAX_MIRROR_PERCENT = 50
MAX_MANAGED_REQUEST_TIMEOUT_MS = 180_000


@dataclass
class ProbeSettings:
    initial_delay_seconds: int = 10
    period_seconds: int = 10
    timeout_seconds: int = 2
    failure_threshold: int = 30
    success_threshold: int = 1

    def __post_init__(self) -> None:
        for name in ("initial_delay_seconds", "period_seconds", "timeout_seconds", "failure_threshold",
                     "success_threshold"):
            value = getattr(self, name)
            check(isinstance(value, int) and value >= (0 if name == "initial_delay_seconds" else 1),
                  "ProbeSettings", name, value, "must be a whole number >= 1 (initial delay >= 0)")
        check(self.timeout_seconds <= self.period_seconds, "ProbeSettings", "timeout_seconds",
              self.timeout_seconds, f"must not exceed period_seconds ({self.period_seconds})")

    def to_args(self) -> ml.ProbeSettingsArgs:
        return ml.ProbeSettingsArgs(
            initial_delay=f"PT{self.initial_delay_seconds}S", period=f"PT{self.period_seconds}S",
            timeout=f"PT{self.timeout_seconds}S", failure_threshold=self.failure_threshold,
            success_threshold=self.success_threshold)


@dataclass
class OnlineDeploymentSettings:
    """One deployment (a spec variant or the shadow)."""

    name: str
    model_id: pulumi.Input[str]
    environment_id: pulumi.Input[str]
    instance_type: str
    """A VM size (managed) or an instance type of the Kubernetes compute."""
    instance_count: int = 1
    request_timeout_ms: int = 60_000
    max_concurrent_requests_per_instance: int = 4
    liveness_probe: ProbeSettings = field(default_factory=ProbeSettings)
    readiness_probe: ProbeSettings = field(default_factory=lambda: ProbeSettings(failure_threshold=3))
    environment_variables: dict[str, str] = field(default_factory=dict)
    autoscaled: bool = False
    """An autoscale setting owns the instance count: Pulumi then ignores later changes of sku.capacity."""

    def __post_init__(self) -> None:
        owner = "OnlineDeploymentSettings"
        check(bool(DEPLOYMENT_NAME.match(self.name)), owner, "name", self.name,
              "must be 3-32 letters, digits and '-', starting with a letter")
        check(1 <= self.instance_count <= 100, owner, "instance_count", self.instance_count, "must be 1..100")
        check(1 <= self.request_timeout_ms <= MAX_MANAGED_REQUEST_TIMEOUT_MS, owner, "request_timeout_ms",
              self.request_timeout_ms, f"must be 1..{MAX_MANAGED_REQUEST_TIMEOUT_MS} ms")
        check(1 <= self.max_concurrent_requests_per_instance <= 1000, owner,
              "max_concurrent_requests_per_instance", self.max_concurrent_requests_per_instance, "must be 1..1000")


@dataclass
class OnlineEndpointArgs:
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    workspace_name: str
    endpoint_name: str
    kind: str
    """managed or kubernetes."""
    identity_id: pulumi.Input[str]
    """User-assigned identity of the endpoint (needs AcrPull on the registry, blob read on the storage)."""
    deployments: list[OnlineDeploymentSettings]
    traffic: dict[str, int]
    """Live traffic percent per deployment; sums to 100. Deployments left out get 0."""
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    """At most one deployment, at most 50 percent, managed endpoints only, never a live deployment."""
    compute_id: pulumi.Input[str] | None = None
    """The attached Kubernetes compute (kubernetes endpoints only)."""
    auth_mode: str = "key"
    public_network_access: bool = True
    log_analytics_id: pulumi.Input[str] | None = None
    """Send the endpoint's logs and metrics there (diagnostic setting)."""
    wait_for: list[pulumi.Resource] = field(default_factory=list)
    """Resources the deployments must wait for (e.g. the identity's role assignments)."""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        owner = "OnlineEndpointArgs"
        check(bool(ENDPOINT_NAME.match(self.endpoint_name)), owner, "endpoint_name", self.endpoint_name,
              "must be 3-32 letters, digits and '-', starting with a letter")
        check(self.kind in KINDS, owner, "kind", self.kind, f"must be one of {', '.join(KINDS)}")
        if self.kind == "kubernetes":
            check(self.compute_id is not None, owner, "compute_id", None,
                  "a kubernetes endpoint needs the attached Kubernetes compute")
        else:
            check(self.compute_id is None, owner, "compute_id", self.compute_id,
                  "a managed endpoint runs on Azure-managed compute; leave compute_id unset")
        check(self.auth_mode in AUTH_MODES, owner, "auth_mode", self.auth_mode,
              f"must be one of {', '.join(AUTH_MODES)}")
        check(not (self.kind == "kubernetes" and self.auth_mode == "aad_token"), owner, "auth_mode",
              self.auth_mode, "Microsoft Entra token auth is for managed endpoints; use key or aml_token")
        check(len(self.deployments) >= 1, owner, "deployments", [], "needs at least one deployment")
        names = [d.name for d in self.deployments]
        check(len(set(names)) == len(names), owner, "deployments", names, "deployment names must be unique")
        for name, percent in self.traffic.items():
            check(name in names, owner, "traffic", self.traffic,
                  f"names deployment {name!r}, which is not one of {', '.join(names)}")
            check(isinstance(percent, int) and 0 <= percent <= 100, owner, f"traffic.{name}", percent,
                  "must be a whole percent 0..100")
        check(sum(self.traffic.values()) == 100, owner, "traffic", self.traffic,
              f"live traffic must sum to 100, it sums to {sum(self.traffic.values())}")
        if self.mirror_traffic:
            check(self.kind == "managed", owner, "mirror_traffic", self.mirror_traffic,
                  "mirror traffic is only available on managed online endpoints")
            check(len(self.mirror_traffic) == 1, owner, "mirror_traffic", self.mirror_traffic,
                  "at most one deployment can receive mirror traffic")
            ((shadow, percent),) = self.mirror_traffic.items()
            check(shadow in names, owner, "mirror_traffic", self.mirror_traffic,
                  f"names deployment {shadow!r}, which is not one of {', '.join(names)}")
            check(isinstance(percent, int) and 1 <= percent <= MAX_MIRROR_PERCENT, owner,
                  f"mirror_traffic.{shadow}", percent, f"must be 1..{MAX_MIRROR_PERCENT} percent")
            check(self.traffic.get(shadow, 0) == 0, owner, "mirror_traffic", self.mirror_traffic,
                  f"deployment {shadow!r} takes live traffic; a deployment is live or mirror, not both")

    @property
    def full_traffic(self) -> dict[str, int]:
        """Every deployment with its percent (0 when not named), in declaration order."""
        return {d.name: self.traffic.get(d.name, 0) for d in self.deployments}


class OnlineEndpoint(pulumi.ComponentResource):
    """Exposes ``endpoint``, ``deployments`` (name -> OnlineDeployment), ``traffic_update`` and ``endpoint_id``."""

    def __init__(self, name: str, args: OnlineEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("twinserve:azure:OnlineEndpoint", name, None, opts)
        rg, ws, loc, tags = args.resource_group_name, args.workspace_name, args.location, args.tags
        public = "Enabled" if args.public_network_access else "Disabled"
        auth = AUTH_MODES[args.auth_mode]

        # 1. The endpoint, created with no traffic; later states come from the template in step 3.
        self.endpoint = ml.OnlineEndpoint(
            f"{name}-endpoint", resource_group_name=rg, workspace_name=ws, endpoint_name=args.endpoint_name,
            location=loc, tags=tags,
            identity=ml.ManagedServiceIdentityArgs(type="UserAssigned", user_assigned_identities=[args.identity_id]),
            properties=ml.OnlineEndpointPropertiesArgs(
                auth_mode=auth, compute=args.compute_id, public_network_access=public,
                traffic={}, mirror_traffic={}),
            opts=child_opts(self, ignore_changes=["properties", "tags", "identity"]))

        # 2. Deployments, one after another.
        self.deployments: dict[str, ml.OnlineDeployment] = {}
        previous: list[pulumi.Resource] = [self.endpoint, *args.wait_for]
        for d in args.deployments:
            common: dict[str, Any] = dict(
                instance_type=d.instance_type, model=d.model_id, environment_id=d.environment_id,
                app_insights_enabled=True, environment_variables=d.environment_variables or None,
                liveness_probe=d.liveness_probe.to_args(), readiness_probe=d.readiness_probe.to_args(),
                request_settings=ml.OnlineRequestSettingsArgs(
                    request_timeout=f"PT{d.request_timeout_ms / 1000:g}S",
                    max_concurrent_requests_per_instance=d.max_concurrent_requests_per_instance),
                scale_settings=ml.DefaultScaleSettingsArgs(scale_type="Default"),
                egress_public_network_access=public)
            if args.kind == "managed":
                properties = ml.ManagedOnlineDeploymentArgs(endpoint_compute_type="Managed", **common)
            else:
                properties = ml.KubernetesOnlineDeploymentArgs(endpoint_compute_type="Kubernetes", **common)
            deployment = ml.OnlineDeployment(
                f"{name}-{d.name}", resource_group_name=rg, workspace_name=ws, endpoint_name=args.endpoint_name,
                deployment_name=d.name, location=loc, tags=tags,
                sku=ml.SkuArgs(name="Default", capacity=d.instance_count), properties=properties,
                opts=child_opts(self, depends_on=previous,
                                ignore_changes=["sku.capacity"] if d.autoscaled else None))
            self.deployments[d.name] = deployment
            previous = [deployment]

        # 3. The endpoint's full desired state, traffic included, once every deployment exists.
        endpoint_properties: dict[str, Any] = {
            "authMode": auth, "publicNetworkAccess": public,
            "traffic": args.full_traffic, "mirrorTraffic": dict(args.mirror_traffic),
        }
        if args.compute_id is not None:
            endpoint_properties["compute"] = args.compute_id
        template = arm_template({
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "apiVersion": ML_API_VERSION,
            "name": f"{ws}/{args.endpoint_name}",
            "location": loc,
            "tags": tags,
            "identity": {"type": "UserAssigned",
                         "userAssignedIdentities": pulumi.Output.from_input(args.identity_id).apply(lambda i: {i: {}})},
            "properties": endpoint_properties,
        })
        self.traffic_update = resources.Deployment(
            f"{name}-traffic", resource_group_name=rg, deployment_name=f"{args.endpoint_name}-traffic",
            properties=resources.DeploymentPropertiesArgs(mode="Incremental", template=template),
            opts=child_opts(self, depends_on=[self.endpoint, *self.deployments.values()]))

        if args.log_analytics_id is not None:
            monitor.DiagnosticSetting(
                f"{name}-diag", name="to-log-analytics", resource_uri=self.endpoint.id,
                workspace_id=args.log_analytics_id,
                logs=[monitor.DiagnosticsLogSettingsArgs(category_group="allLogs", enabled=True)],
                metrics=[monitor.DiagnosticsMetricSettingsArgs(category="AllMetrics", enabled=True)],
                opts=child_opts(self))

        self.endpoint_id = self.endpoint.id
        self.register_outputs({
            "endpoint_id": self.endpoint.id, "endpoint_name": args.endpoint_name,
            "deployment_ids": {n: d.id for n, d in self.deployments.items()},
            "traffic": args.full_traffic, "mirror_traffic": dict(args.mirror_traffic),
        })
