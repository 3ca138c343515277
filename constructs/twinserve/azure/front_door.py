"""One name that fails over between locations: an Azure Front Door (Standard) profile in front of the managed
online endpoints of several locations, priority routing, health probes.

What is created, all parented to the component:

1. ``cdn.Profile`` (sku ``Standard_AzureFrontDoor``, location ``global``) with an origin response timeout.
2. ``cdn.AFDEndpoint``: the global host name ``<endpoint>-<hash>.z01.azurefd.net``.
3. ``cdn.AFDOriginGroup``: health probes (protocol, method, path, interval) and load-balancing samples.
4. ``cdn.AFDOrigin`` per location: host name and origin host header = the endpoint's scoring host
   (``<endpoint>.<region>.inference.ml.azure.com``), HTTPS 443, certificate name check on, a priority
   (1 = primary) and a weight, enabled unless the location is drained.
5. ``cdn.Route``: ``/*`` over HTTPS only to the origin group, forwarded over HTTPS, no caching.
6. With ``log_analytics_id``: ``monitor.DiagnosticSetting`` of the profile (access, health-probe and WAF logs,
   all metrics) to that Log Analytics workspace: which origin served each request, and each probe's answer.

Why Front Door and not Traffic Manager (docs/azure.md, "Disaster recovery (second location)"):

- TLS. Traffic Manager answers DNS only (https://learn.microsoft.com/azure/traffic-manager/traffic-manager-overview):
  a client calling ``<name>.trafficmanager.net`` connects straight to the endpoint, whose certificate is for
  ``<endpoint>.<region>.inference.ml.azure.com``, and Azure ML online endpoints take no custom domain: the
  name check fails. Front Door terminates TLS on its own certificate and connects to each origin with the
  origin's host name as host header and SNI (https://learn.microsoft.com/azure/frontdoor/origin), so the
  endpoint's certificate matches and Azure ML's gateway routes the request.
- Authentication. Front Door forwards the caller's ``Authorization`` header unchanged. With Microsoft Entra
  tokens (aad_token) the same token is accepted by every location; keys and Azure ML tokens are per endpoint.
- Health. Front Door probes each origin (GET or HEAD, HTTP or HTTPS, every 1..255 s) and counts only
  ``200 OK`` as healthy (https://learn.microsoft.com/azure/frontdoor/health-probes). Its probes carry no
  credentials (https://learn.microsoft.com/answers/questions/1018320/how-can-azure-front-door-health-probe-authenicate)
  and an Azure ML endpoint answers ``401`` to an unauthenticated request, so the probe cannot tell a healthy
  location from a failed one on its own: the dependable switch is ``drained`` (the origin is disabled,
  priority routing sends everything to the next location). With every origin failing its probe Front Door
  keeps sending requests to enabled origins (https://azure.github.io/PSRule.Rules.Azure/en/rules/Azure.FrontDoor.Probe),
  so the probes never take the service down. Traffic Manager could accept 401 as healthy
  (``expectedStatusCodeRanges``) but, above, its name cannot be called over TLS.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import cdn, monitor

from ..checks import Checks
from ..platform import azure as azure_platform
from ._common import child_opts

PROBE_PROTOCOLS = ("Http", "Https")
PROBE_METHODS = ("GET", "HEAD")
NAME = r"[a-zA-Z0-9][a-zA-Z0-9-]{0,44}[a-zA-Z0-9]"


@dataclass(frozen=True)
class FrontDoorOrigin:
    """One location behind the front."""

    name: str
    """The origin's name, e.g. the location (letters, digits and '-')."""
    scoring_uri: pulumi.Input[str]
    """The location's endpoint scoring URI; the origin is its host."""
    priority: int
    """1 = primary; lower numbers take all traffic while healthy and enabled (1..5)."""
    weight: int = 1000
    """Share among origins of the same priority (1..1000)."""
    drained: bool = False
    """Disabled origin: takes no traffic (the failover switch)."""


@dataclass(frozen=True)
class GlobalFrontArgs:
    """Args of :class:`GlobalFront`."""

    resource_group_name: pulumi.Input[str]
    """The resource group of the profile (the primary location's)."""
    profile_name: str
    """The Front Door profile's name (1-260 letters, digits and '-'; twinserve keeps it short)."""
    endpoint_name: str
    """The endpoint's name, the first label of its ``azurefd.net`` host name (2-46 letters, digits, '-')."""
    origins: Sequence[FrontDoorOrigin]
    """The locations, each once; priorities as given."""
    scoring_path: str = "/score"
    """Appended to the endpoint's host name in the ``url`` output."""
    probe_path: str = "/score"
    """The path probed on each origin."""
    probe_protocol: str = "Https"
    """Http or Https (Azure ML endpoints answer HTTPS only)."""
    probe_method: str = "HEAD"
    """GET or HEAD (HEAD: no body, Front Door's recommendation)."""
    probe_interval_seconds: int = 30
    """Seconds between probes from each Front Door edge (1..255)."""
    sample_size: int = 4
    """Probe results considered per origin."""
    successful_samples_required: int = 3
    """Healthy results among ``sample_size`` for an origin to count as healthy."""
    origin_response_timeout_seconds: int = 60
    """How long Front Door waits for an origin's answer (16..240); above the deployment's request timeout."""
    log_analytics_id: pulumi.Input[str] | None = None
    """Where the profile's logs and metrics go (a Log Analytics workspace id); unset: not exported."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags of the profile and endpoint."""


def _check(args: GlobalFrontArgs) -> None:
    check = Checks("GlobalFrontArgs")
    check.pattern("profile_name", args.profile_name, NAME, "must be 2-46 letters, digits and '-'")
    check.pattern("endpoint_name", args.endpoint_name, NAME, "must be 2-46 letters, digits and '-'")
    check.that(bool(args.origins), "origins", list(args.origins), "give at least one origin")
    check.unique("origins", [o.name for o in args.origins], "origin names")
    for i, origin in enumerate(args.origins):
        check.pattern(f"origins.{i}.name", origin.name, NAME, "must be 2-46 letters, digits and '-'")
        check.range(f"origins.{i}.priority", origin.priority, 1, 5)
        check.range(f"origins.{i}.weight", origin.weight, 1, 1000)
    check.that(
        not all(o.drained for o in args.origins),
        "origins",
        [o.name for o in args.origins],
        "at least one origin must stay enabled (not drained), or the front answers nothing",
    )
    check.one_of("probe_protocol", args.probe_protocol, PROBE_PROTOCOLS)
    check.one_of("probe_method", args.probe_method, PROBE_METHODS)
    check.that(args.probe_path.startswith("/"), "probe_path", args.probe_path, "must start with '/'")
    low, high = azure_platform.FRONT_DOOR_PROBE_INTERVAL_SECONDS
    check.range("probe_interval_seconds", args.probe_interval_seconds, low, high, " s")
    check.range("sample_size", args.sample_size, 1, 255)
    check.range("successful_samples_required", args.successful_samples_required, 1, args.sample_size)
    low, high = azure_platform.FRONT_DOOR_ORIGIN_TIMEOUT_SECONDS
    check.range("origin_response_timeout_seconds", args.origin_response_timeout_seconds, low, high, " s")


def _host(uri: str) -> str:
    return urllib.parse.urlsplit(uri).hostname or uri


class GlobalFront(pulumi.ComponentResource):
    """Exposes ``profile``, ``endpoint``, ``origin_group``, ``origins`` (name -> origin), ``route``, ``host_name``
    (``<endpoint>-<hash>.z01.azurefd.net``) and ``url`` (``https://<host_name><scoring_path>``)."""

    def __init__(self, name: str, args: GlobalFrontArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check(args)
        super().__init__("twinserve:azure:GlobalFront", name, None, opts)
        group = args.resource_group_name
        self.profile = cdn.Profile(
            f"{name}-profile",
            resource_group_name=group,
            profile_name=args.profile_name,
            location="global",
            sku=cdn.SkuArgs(name=azure_platform.FRONT_DOOR_SKU),
            origin_response_timeout_seconds=args.origin_response_timeout_seconds,
            tags=args.tags,
            opts=child_opts(self),
        )
        self.endpoint = cdn.AFDEndpoint(
            f"{name}-endpoint",
            resource_group_name=group,
            profile_name=self.profile.name,
            endpoint_name=args.endpoint_name,
            location="global",
            enabled_state="Enabled",
            tags=args.tags,
            opts=child_opts(self),
        )
        self.origin_group = cdn.AFDOriginGroup(
            f"{name}-origins",
            resource_group_name=group,
            profile_name=self.profile.name,
            origin_group_name="locations",
            health_probe_settings=cdn.HealthProbeParametersArgs(
                probe_path=args.probe_path,
                probe_protocol=args.probe_protocol,
                probe_request_type=args.probe_method,
                probe_interval_in_seconds=args.probe_interval_seconds,
            ),
            load_balancing_settings=cdn.LoadBalancingSettingsParametersArgs(
                sample_size=args.sample_size,
                successful_samples_required=args.successful_samples_required,
                additional_latency_in_milliseconds=0,
            ),
            session_affinity_state="Disabled",
            opts=child_opts(self),
        )
        self.origins: dict[str, cdn.AFDOrigin] = {}
        for origin in args.origins:
            host = pulumi.Output.from_input(origin.scoring_uri).apply(_host)
            self.origins[origin.name] = cdn.AFDOrigin(
                f"{name}-origin-{origin.name}",
                resource_group_name=group,
                profile_name=self.profile.name,
                origin_group_name=self.origin_group.name,
                origin_name=origin.name,
                host_name=host,
                origin_host_header=host,
                https_port=443,
                http_port=80,
                priority=origin.priority,
                weight=origin.weight,
                enabled_state="Disabled" if origin.drained else "Enabled",
                enforce_certificate_name_check=True,
                opts=child_opts(self),
            )
        self.route = cdn.Route(
            f"{name}-route",
            resource_group_name=group,
            profile_name=self.profile.name,
            endpoint_name=self.endpoint.name,
            route_name="score",
            origin_group=cdn.ResourceReferenceArgs(id=self.origin_group.id),
            patterns_to_match=["/*"],
            supported_protocols=["Https"],
            https_redirect="Disabled",
            forwarding_protocol="HttpsOnly",
            link_to_default_domain="Enabled",
            enabled_state="Enabled",
            # A route is accepted once its origin group has origins.
            opts=child_opts(self, depends_on=list(self.origins.values())),
        )
        if args.log_analytics_id is not None:
            monitor.DiagnosticSetting(
                f"{name}-diag",
                name="to-log-analytics",
                resource_uri=self.profile.id,
                workspace_id=args.log_analytics_id,
                logs=[monitor.DiagnosticsLogSettingsArgs(category_group="allLogs", enabled=True)],
                metrics=[monitor.DiagnosticsMetricSettingsArgs(category="AllMetrics", enabled=True)],
                opts=child_opts(self),
            )
        self.host_name = self.endpoint.host_name
        self.url = pulumi.Output.concat("https://", self.endpoint.host_name, args.scoring_path)
        self.register_outputs(
            {
                "profile_id": self.profile.id,
                "host_name": self.host_name,
                "url": self.url,
                "origins": {n: o.id for n, o in self.origins.items()},
            }
        )
