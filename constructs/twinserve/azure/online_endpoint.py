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
from pulumi_azure_native import machinelearningservices as ml
from pulumi_azure_native import monitor, resources

from ..checks import Checks
from ..platform import azure as azure_platform
from ..platform.shared import INSTANCE_COUNT
from ._common import ML_API_VERSION, arm_template, child_opts

KINDS = ("managed", "kubernetes")


@dataclass(frozen=True)
class ProbeSettings:
    """A liveness or readiness probe (Azure ML's defaults)."""

    initial_delay_seconds: int = 10
    """Wait after the container starts before the first probe (>= 0)."""
    period_seconds: int = 10
    """Time between probes."""
    timeout_seconds: int = 2
    """How long one probe may take (at most ``period_seconds``)."""
    failure_threshold: int = 30
    """Failed probes in a row before the container is restarted (liveness) or taken out (readiness)."""
    success_threshold: int = 1
    """Successful probes in a row before it counts as healthy again."""

    def to_args(self) -> ml.ProbeSettingsArgs:
        return ml.ProbeSettingsArgs(
            initial_delay=f"PT{self.initial_delay_seconds}S",
            period=f"PT{self.period_seconds}S",
            timeout=f"PT{self.timeout_seconds}S",
            failure_threshold=self.failure_threshold,
            success_threshold=self.success_threshold,
        )


@dataclass(frozen=True)
class TargetUtilizationScaling:
    """How the AzureML extension scales a Kubernetes deployment."""

    min_instances: int = 1
    """Fewest instances."""
    max_instances: int = 2
    """Most instances."""
    target_utilization_percent: int = 70
    """CPU utilization the extension holds by adding or removing instances."""


@dataclass(frozen=True)
class OnlineDeploymentSettings:
    """One deployment (a spec variant or the shadow)."""

    name: str
    """Deployment name (3-32 letters, digits and '-')."""
    model_id: pulumi.Input[str]
    """The model version it serves."""
    environment_id: pulumi.Input[str]
    """The Azure ML environment version (the image) it runs."""
    instance_type: str
    """A VM size (managed) or an instance type of the Kubernetes compute."""
    instance_count: int = 1
    """Instances (sku.capacity); the initial count when an autoscale setting owns it."""
    request_timeout_ms: int = 60_000
    """request_settings.request_timeout (at most 180 s on managed endpoints)."""
    max_concurrent_requests_per_instance: int = 4
    """Requests Azure ML sends to one instance at a time."""
    liveness_probe: ProbeSettings = field(default_factory=ProbeSettings)
    """Restarts the container when it stops answering."""
    readiness_probe: ProbeSettings = field(default_factory=lambda: ProbeSettings(failure_threshold=3))
    """Takes the instance out of the load balancer while the model is not ready."""
    environment_variables: dict[str, str] = field(default_factory=dict)
    """Passed to the container."""
    payload_collection_percent: int | None = None
    """Log this percent of HTTP request and response payloads with Azure ML's data collector (to the
    workspace's default blob datastore, ``modelDataCollector/<endpoint>/<deployment>/``); ``None``: off,
    which is Azure ML's default too."""
    autoscaled: bool = False
    """An autoscale setting owns the instance count: Pulumi then ignores later changes of sku.capacity."""
    target_utilization: TargetUtilizationScaling | None = None
    """Kubernetes endpoints only: let the AzureML extension scale the deployment on CPU utilization
    (scale type TargetUtilization); ``None`` keeps the fixed ``instance_count`` (scale type Default)."""


@dataclass(frozen=True)
class OnlineEndpointArgs:
    """Args of :class:`OnlineEndpoint`."""

    resource_group_name: pulumi.Input[str]
    """The workspace's resource group."""
    location: pulumi.Input[str]
    """Azure region of the endpoint."""
    workspace_name: str
    """The Azure ML workspace."""
    endpoint_name: str
    """Endpoint name, unique in the region (3-32 letters, digits and '-')."""
    kind: str
    """managed or kubernetes."""
    identity_id: pulumi.Input[str]
    """User-assigned identity of the endpoint (needs AcrPull on the registry, blob read on the storage)."""
    deployments: list[OnlineDeploymentSettings]
    """The deployments, created in this order."""
    traffic: dict[str, int]
    """Live traffic percent per deployment; sums to 100. Deployments left out get 0."""
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    """At most one deployment, at most 50 percent, managed endpoints only, never a live deployment."""
    compute_id: pulumi.Input[str] | None = None
    """The attached Kubernetes compute (kubernetes endpoints only)."""
    auth_mode: str = "key"
    """key, aml_token or aad_token (managed endpoints only)."""
    public_network_access: bool = True
    """Whether the scoring URI (and the deployments' egress) is reachable over the public internet."""
    workspace_managed_network: bool = False
    """The workspace has a managed virtual network: it controls the deployments' outbound traffic, and
    their ``egressPublicNetworkAccess`` (the legacy per-deployment isolation, which then "no longer
    applies") is not sent."""
    log_analytics_id: pulumi.Input[str] | None = None
    """Send the endpoint's logs and metrics there (diagnostic setting)."""
    wait_for: list[pulumi.Resource] = field(default_factory=list)
    """Resources the deployments must wait for (e.g. the identity's role assignments)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags of every resource."""

    @property
    def full_traffic(self) -> dict[str, int]:
        """Every deployment with its percent (0 when not named), in declaration order."""
        return {d.name: self.traffic.get(d.name, 0) for d in self.deployments}


def _payload_collector(percent: int | None) -> ml.DataCollectorArgs | None:
    """Payload logging: the ``request`` and ``response`` collections need no code in the container
    (custom ``model_inputs`` logging would need the azureml-ai-monitoring SDK inside it), one JSON Lines
    file per hour. https://learn.microsoft.com/azure/machine-learning/how-to-collect-production-data
    ("Log payload")."""
    if percent is None:
        return None
    collection = ml.CollectionArgs(data_collection_mode="Enabled", sampling_rate=percent / 100)
    return ml.DataCollectorArgs(
        collections={name: collection for name in azure_platform.PAYLOAD_COLLECTIONS}, rolling_rate="Hour"
    )


def _check(args: OnlineEndpointArgs) -> None:
    check = Checks("OnlineEndpointArgs")
    check.that(
        bool(azure_platform.ENDPOINT_NAME.match(args.endpoint_name)),
        "endpoint_name",
        args.endpoint_name,
        azure_platform.NAME_HINT,
    )
    check.one_of("kind", args.kind, KINDS)
    if args.kind == "kubernetes":
        check.that(
            args.compute_id is not None,
            "compute_id",
            None,
            "a kubernetes endpoint needs the attached Kubernetes compute",
        )
    else:
        check.that(
            args.compute_id is None,
            "compute_id",
            args.compute_id,
            "a managed endpoint runs on Azure-managed compute; leave compute_id unset",
        )
    check.one_of("auth_mode", args.auth_mode, azure_platform.AUTH_MODES)
    check.that(
        args.kind != "kubernetes" or args.auth_mode in azure_platform.KUBERNETES_AUTH_MODES,
        "auth_mode",
        args.auth_mode,
        "Microsoft Entra token auth is for managed endpoints; use key or aml_token",
    )
    check.that(len(args.deployments) >= 1, "deployments", [], "needs at least one deployment")
    names = [d.name for d in args.deployments]
    check.unique("deployments", names, "deployment names")
    for i, deployment in enumerate(args.deployments):
        _check_deployment(check, f"deployments[{i}]", deployment)
        check.that(
            args.kind == "kubernetes" or deployment.target_utilization is None,
            f"deployments[{i}].target_utilization",
            deployment.target_utilization,
            "target-utilization scaling is for Kubernetes deployments; managed ones scale with autoscale settings",
        )
    for name, percent in args.traffic.items():
        check.that(
            name in names, "traffic", args.traffic, f"names deployment {name!r}, which is not one of {', '.join(names)}"
        )
        check.that(
            isinstance(percent, int) and 0 <= percent <= 100,
            f"traffic.{name}",
            percent,
            "must be a whole percent 0..100",
        )
    total = sum(args.traffic.values())
    check.that(total == 100, "traffic", args.traffic, f"live traffic must sum to 100, it sums to {total}")
    if args.mirror_traffic:
        check.that(
            args.kind == "managed",
            "mirror_traffic",
            args.mirror_traffic,
            "mirror traffic is only available on managed online endpoints",
        )
        check.that(
            len(args.mirror_traffic) == 1,
            "mirror_traffic",
            args.mirror_traffic,
            "at most one deployment can receive mirror traffic",
        )
        ((shadow, percent),) = args.mirror_traffic.items()
        check.that(
            shadow in names,
            "mirror_traffic",
            args.mirror_traffic,
            f"names deployment {shadow!r}, which is not one of {', '.join(names)}",
        )
        most = azure_platform.MAX_MIRROR_PERCENT
        check.that(
            isinstance(percent, int) and 1 <= percent <= most,
            f"mirror_traffic.{shadow}",
            percent,
            f"must be 1..{most} percent",
        )
        check.that(
            args.traffic.get(shadow, 0) == 0,
            "mirror_traffic",
            args.mirror_traffic,
            f"deployment {shadow!r} takes live traffic; a deployment is live or mirror, not both",
        )


def _check_deployment(check: Checks, at: str, deployment: OnlineDeploymentSettings) -> None:
    scaling = deployment.target_utilization
    if scaling is not None:
        check.that(
            1 <= scaling.min_instances <= deployment.instance_count <= scaling.max_instances,
            f"{at}.target_utilization",
            scaling,
            f"needs 1 <= min_instances <= instance_count ({deployment.instance_count}) <= max_instances",
        )
        check.range(f"{at}.target_utilization.target_utilization_percent", scaling.target_utilization_percent, 1, 100)
    check.that(
        bool(azure_platform.DEPLOYMENT_NAME.match(deployment.name)),
        f"{at}.name",
        deployment.name,
        azure_platform.NAME_HINT,
    )
    check.range(f"{at}.instance_count", deployment.instance_count, *INSTANCE_COUNT)
    check.range(
        f"{at}.request_timeout_ms",
        deployment.request_timeout_ms,
        1,
        azure_platform.MANAGED_MAX_REQUEST_TIMEOUT_MS,
        " ms",
    )
    check.range(f"{at}.max_concurrent_requests_per_instance", deployment.max_concurrent_requests_per_instance, 1, 1000)
    if deployment.payload_collection_percent is not None:
        check.range(f"{at}.payload_collection_percent", deployment.payload_collection_percent, 1, 100)
    for probe_name in ("liveness_probe", "readiness_probe"):
        probe = getattr(deployment, probe_name)
        for name in (
            "initial_delay_seconds",
            "period_seconds",
            "timeout_seconds",
            "failure_threshold",
            "success_threshold",
        ):
            value = getattr(probe, name)
            check.that(
                isinstance(value, int) and value >= (0 if name == "initial_delay_seconds" else 1),
                f"{at}.{probe_name}.{name}",
                value,
                "must be a whole number >= 1 (initial delay >= 0)",
            )
        check.that(
            probe.timeout_seconds <= probe.period_seconds,
            f"{at}.{probe_name}.timeout_seconds",
            probe.timeout_seconds,
            f"must not exceed period_seconds ({probe.period_seconds})",
        )


class OnlineEndpoint(pulumi.ComponentResource):
    """Exposes ``endpoint``, ``deployments`` (name -> OnlineDeployment), ``traffic_update``,
    ``endpoint_id``, ``scoring_uri`` and ``keys`` (primary/secondary, secret; ``None`` unless
    ``auth_mode`` is key)."""

    def __init__(self, name: str, args: OnlineEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check(args)
        super().__init__("twinserve:azure:OnlineEndpoint", name, None, opts)
        self._name, self._args = name, args
        self.managed = args.kind == "managed"
        self.endpoint = self._endpoint()
        self.deployments = self._deployments()
        self.traffic_update = self._traffic_update()
        if args.log_analytics_id is not None:
            self._diagnostics()
        self.endpoint_id = self.endpoint.id
        self.scoring_uri = self.endpoint.properties.apply(lambda properties: properties.scoring_uri)
        self.keys = self._keys()
        self.register_outputs(
            {
                "endpoint_id": self.endpoint.id,
                "endpoint_name": args.endpoint_name,
                "scoring_uri": self.scoring_uri,
                "deployment_ids": {n: d.id for n, d in self.deployments.items()},
                "traffic": args.full_traffic,
                "mirror_traffic": dict(args.mirror_traffic),
            }
        )

    @property
    def _public_network_access(self) -> str | None:
        """Managed endpoints only: a Kubernetes endpoint is reached through its cluster's router, and the
        setting is not for it (https://learn.microsoft.com/azure/machine-learning/reference-yaml-endpoint-online)."""
        if not self.managed:
            return None
        return "Enabled" if self._args.public_network_access else "Disabled"

    def _endpoint(self) -> ml.OnlineEndpoint:
        """1. The endpoint, created with no traffic; its later states come from the traffic update."""
        args = self._args
        return ml.OnlineEndpoint(
            f"{self._name}-endpoint",
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            endpoint_name=args.endpoint_name,
            location=args.location,
            tags=args.tags,
            identity=ml.ManagedServiceIdentityArgs(type="UserAssigned", user_assigned_identities=[args.identity_id]),
            properties=ml.OnlineEndpointPropertiesArgs(
                auth_mode=azure_platform.AUTH_MODES[args.auth_mode],
                compute=args.compute_id,
                public_network_access=self._public_network_access,
                traffic={},
                mirror_traffic={},
            ),
            opts=child_opts(self, ignore_changes=["properties", "tags", "identity"]),
        )

    def _deployments(self) -> dict[str, ml.OnlineDeployment]:
        """2. The deployments, one after another (Azure ML runs one operation per endpoint at a time)."""
        args = self._args
        deployments: dict[str, ml.OnlineDeployment] = {}
        previous: list[pulumi.Resource] = [self.endpoint, *args.wait_for]
        for settings in args.deployments:
            deployment = ml.OnlineDeployment(
                f"{self._name}-{settings.name}",
                resource_group_name=args.resource_group_name,
                workspace_name=args.workspace_name,
                endpoint_name=args.endpoint_name,
                deployment_name=settings.name,
                location=args.location,
                tags=args.tags,
                sku=ml.SkuArgs(name="Default", capacity=settings.instance_count),
                properties=self._deployment_properties(settings),
                # An autoscaler owns the count from then on; Pulumi.yaml's `refresh: always` makes every
                # `pulumi up` read the live count first, so an update for another reason re-sends that.
                opts=child_opts(
                    self,
                    depends_on=previous,
                    ignore_changes=["sku.capacity"] if settings.autoscaled or settings.target_utilization else None,
                ),
            )
            deployments[settings.name] = deployment
            previous = [deployment]
        return deployments

    def _deployment_properties(self, settings: OnlineDeploymentSettings):
        args = self._args
        common: dict[str, Any] = dict(
            instance_type=settings.instance_type,
            model=settings.model_id,
            environment_id=settings.environment_id,
            app_insights_enabled=True,
            environment_variables=settings.environment_variables or None,
            liveness_probe=settings.liveness_probe.to_args(),
            readiness_probe=settings.readiness_probe.to_args(),
            request_settings=ml.OnlineRequestSettingsArgs(
                request_timeout=f"PT{settings.request_timeout_ms / 1000:g}S",
                max_concurrent_requests_per_instance=settings.max_concurrent_requests_per_instance,
            ),
            data_collector=_payload_collector(settings.payload_collection_percent),
        )
        if self.managed:
            # Managed deployments scale through Azure Monitor autoscale settings (EndpointMonitoring).
            return ml.ManagedOnlineDeploymentArgs(
                endpoint_compute_type="Managed",
                scale_settings=ml.DefaultScaleSettingsArgs(scale_type="Default"),
                egress_public_network_access=None if args.workspace_managed_network else self._public_network_access,
                **common,
            )
        scaling = settings.target_utilization
        scale_settings = (
            ml.TargetUtilizationScaleSettingsArgs(
                scale_type="TargetUtilization",
                min_instances=scaling.min_instances,
                max_instances=scaling.max_instances,
                target_utilization_percentage=scaling.target_utilization_percent,
            )
            if scaling is not None
            else ml.DefaultScaleSettingsArgs(scale_type="Default")  # Default is a fixed count
        )
        return ml.KubernetesOnlineDeploymentArgs(
            endpoint_compute_type="Kubernetes", scale_settings=scale_settings, **common
        )

    def _traffic_update(self) -> resources.Deployment:
        """3. The endpoint's full desired state, traffic included, once every deployment exists."""
        args = self._args
        properties: dict[str, Any] = {
            "authMode": azure_platform.AUTH_MODES[args.auth_mode],
            "traffic": args.full_traffic,
            "mirrorTraffic": dict(args.mirror_traffic),
        }
        if self._public_network_access is not None:
            properties["publicNetworkAccess"] = self._public_network_access
        if args.compute_id is not None:
            properties["compute"] = args.compute_id
        template = arm_template(
            {
                "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
                "apiVersion": ML_API_VERSION,
                "name": f"{args.workspace_name}/{args.endpoint_name}",
                "location": args.location,
                "tags": args.tags,
                "identity": {
                    "type": "UserAssigned",
                    "userAssignedIdentities": pulumi.Output.from_input(args.identity_id).apply(lambda i: {i: {}}),
                },
                "properties": properties,
            }
        )
        return resources.Deployment(
            f"{self._name}-traffic",
            resource_group_name=args.resource_group_name,
            deployment_name=f"{args.endpoint_name}-traffic",
            properties=resources.DeploymentPropertiesArgs(mode="Incremental", template=template),
            opts=child_opts(self, depends_on=[self.endpoint, *self.deployments.values()]),
        )

    def _diagnostics(self) -> monitor.DiagnosticSetting:
        args = self._args
        return monitor.DiagnosticSetting(
            f"{self._name}-diag",
            name="to-log-analytics",
            resource_uri=self.endpoint.id,
            workspace_id=args.log_analytics_id,
            # The endpoint's own categories, named one by one: console output of the containers, every
            # request (status, duration, failure reason) and the inference server's life-cycle events.
            logs=[
                monitor.DiagnosticsLogSettingsArgs(category=category, enabled=True)
                for category in azure_platform.ONLINE_ENDPOINT_LOG_CATEGORIES
            ],
            metrics=[monitor.DiagnosticsMetricSettingsArgs(category="AllMetrics", enabled=True)],
            opts=child_opts(self),
        )

    def _keys(self) -> pulumi.Output[dict[str, str]] | None:
        """The endpoint keys clients call it with (auth_mode key only), as a secret: they are read
        with listKeys once the endpoint exists."""
        args = self._args
        if args.auth_mode != "key":
            return None
        keys = ml.list_online_endpoint_keys_output(
            endpoint_name=args.endpoint_name,
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            opts=pulumi.InvokeOutputOptions(depends_on=[self.endpoint]),
        )
        return pulumi.Output.secret(keys.apply(lambda k: {"primary": k.primary_key, "secondary": k.secondary_key}))
