"""Autoscale and alerts for Azure ML online endpoints.

* ``monitor.AutoscaleSetting`` per managed deployment: scale out on average CPU above a threshold
  or on endpoint request latency above a threshold, scale in on low CPU, within instance bounds.
* ``monitor.MetricAlert`` per endpoint: p99 request latency and 5xx responses, sent to an
  ``monitor.ActionGroup`` that e-mails the given addresses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import monitor

from ._common import EMAIL, check, child_opts

ENDPOINT_NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
DEPLOYMENT_NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"
# Window sizes and evaluation frequencies Azure Monitor metric alerts accept, in seconds.
_WINDOWS = {60: "PT1M", 300: "PT5M", 900: "PT15M", 1800: "PT30M", 3600: "PT1H", 21600: "PT6H",
            43200: "PT12H", 86400: "PT24H"}
_FREQUENCIES = {60: "PT1M", 300: "PT5M", 900: "PT15M", 1800: "PT30M", 3600: "PT1H"}


def _iso_minutes(seconds: int) -> str:
    return f"PT{max(1, seconds // 60)}M"


@dataclass
class AutoscaleTarget:
    name: str
    """Short name used in logical names (the deployment name)."""
    deployment_id: pulumi.Input[str]
    endpoint_id: pulumi.Input[str]


@dataclass
class AutoscaleRules:
    min_instances: int = 1
    max_instances: int = 2
    default_instances: int = 1
    cpu_scale_out_percent: int = 70
    cpu_scale_in_percent: int = 25
    latency_scale_out_ms: int = 500
    scale_out_cooldown_seconds: int = 60
    scale_in_cooldown_seconds: int = 300
    window_seconds: int = 300

    def __post_init__(self) -> None:
        owner = "AutoscaleRules"
        check(1 <= self.min_instances <= self.max_instances, owner, "min_instances", self.min_instances,
              f"must be 1..max_instances ({self.max_instances})")
        check(self.min_instances <= self.default_instances <= self.max_instances, owner, "default_instances",
              self.default_instances, f"must lie within {self.min_instances}..{self.max_instances}")
        check(0 < self.cpu_scale_in_percent < self.cpu_scale_out_percent <= 100, owner, "cpu_scale_in_percent",
              self.cpu_scale_in_percent, f"must be above 0 and below cpu_scale_out_percent ({self.cpu_scale_out_percent})")
        check(self.latency_scale_out_ms >= 1, owner, "latency_scale_out_ms", self.latency_scale_out_ms, "must be >= 1")
        check(self.window_seconds >= 300, owner, "window_seconds", self.window_seconds,
              "Azure autoscale needs a time window of at least 5 minutes")
        for name in ("scale_out_cooldown_seconds", "scale_in_cooldown_seconds"):
            value = getattr(self, name)
            check(60 <= value <= 604800, owner, name, value, "must be 60 s .. 1 week")


@dataclass
class AlertRules:
    latency_p99_ms: int = 500
    errors_5xx: int = 5
    """5xx responses within the window that raise the alert."""
    period_seconds: int = 60
    evaluation_periods: int = 3
    severity: int = 2

    def __post_init__(self) -> None:
        owner = "AlertRules"
        check(self.latency_p99_ms >= 1, owner, "latency_p99_ms", self.latency_p99_ms, "must be >= 1")
        check(self.errors_5xx >= 1, owner, "errors_5xx", self.errors_5xx, "must be >= 1")
        check(self.period_seconds in _FREQUENCIES, owner, "period_seconds", self.period_seconds,
              f"must be one of {', '.join(map(str, _FREQUENCIES))}")
        check(self.window_seconds_needed <= max(_WINDOWS), owner, "evaluation_periods", self.evaluation_periods,
              "period_seconds x evaluation_periods must be at most 24 hours")
        check(0 <= self.severity <= 4, owner, "severity", self.severity, "must be 0 (critical) .. 4 (verbose)")

    @property
    def window_seconds_needed(self) -> int:
        return self.period_seconds * self.evaluation_periods

    @property
    def window_size(self) -> str:
        """The smallest window Azure accepts that covers all evaluation periods."""
        return _WINDOWS[min(s for s in _WINDOWS if s >= self.window_seconds_needed)]

    @property
    def evaluation_frequency(self) -> str:
        return _FREQUENCIES[self.period_seconds]


@dataclass
class EndpointMonitoringArgs:
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    action_group_name: str
    emails: list[str]
    """Receivers of the action group; with none, the alerts fire without notifying anybody."""
    endpoints: dict[str, pulumi.Input[str]]
    """Short name -> online endpoint id: each gets latency and 5xx alerts."""
    alerts: AlertRules = field(default_factory=AlertRules)
    autoscale_targets: list[AutoscaleTarget] = field(default_factory=list)
    """Managed deployments to autoscale (Kubernetes deployments scale inside the cluster)."""
    autoscale: AutoscaleRules | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        owner = "EndpointMonitoringArgs"
        check(bool(re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9-]{0,59}", self.action_group_name)), owner,
              "action_group_name", self.action_group_name, "must be 1-60 letters, digits and '-'")
        for email in self.emails:
            check(bool(EMAIL.match(email)), owner, "emails", email, "must be an e-mail address")
        check(len(set(self.emails)) == len(self.emails), owner, "emails", self.emails, "must not repeat an address")
        check(not self.autoscale_targets or self.autoscale is not None, owner, "autoscale", None,
              "autoscale_targets need autoscale rules")

    @property
    def short_name(self) -> str:
        """Action group short names are at most 12 characters."""
        return re.sub(r"[^a-zA-Z0-9]", "", self.action_group_name)[:12]


class EndpointMonitoring(pulumi.ComponentResource):
    """Exposes ``action_group``, ``alerts`` (name -> MetricAlert) and ``autoscale_settings``."""

    def __init__(self, name: str, args: EndpointMonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("twinserve:azure:EndpointMonitoring", name, None, opts)
        rg, tags = args.resource_group_name, args.tags

        self.action_group = None if not args.emails else monitor.ActionGroup(
            f"{name}-actions", resource_group_name=rg, location="global", tags=tags,
            action_group_name=args.action_group_name, group_short_name=args.short_name, enabled=True,
            email_receivers=[monitor.MicrosoftCommonEmailReceiverArgs(name=f"email-{i}", email_address=email,
                                                       use_common_alert_schema=True)
                             for i, email in enumerate(args.emails)],
            opts=child_opts(self))

        rules = args.alerts
        self.alerts: dict[str, monitor.MetricAlert] = {}
        for short, endpoint_id in args.endpoints.items():
            for kind, criterion, description in (
                ("latency", monitor.MetricCriteriaArgs(
                    criterion_type="StaticThresholdCriterion", name="p99-latency",
                    metric_namespace=ENDPOINT_NAMESPACE, metric_name="RequestLatency_P99",
                    time_aggregation="Average", operator="GreaterThan", threshold=rules.latency_p99_ms,
                    skip_metric_validation=True),
                 f"p99 request latency above {rules.latency_p99_ms} ms"),
                ("errors-5xx", monitor.MetricCriteriaArgs(
                    criterion_type="StaticThresholdCriterion", name="5xx",
                    metric_namespace=ENDPOINT_NAMESPACE, metric_name="RequestsPerMinute",
                    dimensions=[monitor.MetricDimensionArgs(name="statusCodeClass", operator="Include", values=["5xx"])],
                    time_aggregation="Total", operator="GreaterThanOrEqual", threshold=rules.errors_5xx,
                    skip_metric_validation=True),
                 f"{rules.errors_5xx} or more 5xx responses within {rules.window_size}"),
            ):
                self.alerts[f"{short}-{kind}"] = monitor.MetricAlert(
                    f"{name}-{short}-{kind}", resource_group_name=rg, location="global", tags=tags,
                    rule_name=f"{short}-{kind}", description=f"{short}: {description}",
                    severity=rules.severity, enabled=True, auto_mitigate=True, scopes=[endpoint_id],
                    evaluation_frequency=rules.evaluation_frequency, window_size=rules.window_size,
                    target_resource_type=ENDPOINT_NAMESPACE,
                    criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                        odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                        all_of=[criterion]),
                    actions=[monitor.MetricAlertActionArgs(action_group_id=self.action_group.id)]
                    if self.action_group is not None else None,
                    opts=child_opts(self))

        self.autoscale_settings: dict[str, monitor.AutoscaleSetting] = {}
        scale = args.autoscale
        for target in args.autoscale_targets:
            assert scale is not None
            window = _iso_minutes(scale.window_seconds)

            def rule(metric: str, namespace: str, resource: pulumi.Input[str], operator: str, threshold: int,
                     direction: str, cooldown: int) -> monitor.ScaleRuleArgs:
                return monitor.ScaleRuleArgs(
                    metric_trigger=monitor.MetricTriggerArgs(
                        metric_name=metric, metric_namespace=namespace, metric_resource_uri=resource,
                        operator=operator, statistic="Average", threshold=threshold, time_aggregation="Average",
                        time_grain="PT1M", time_window=window),
                    scale_action=monitor.ScaleActionArgs(direction=direction, type="ChangeCount", value="1",
                                                         cooldown=_iso_minutes(cooldown)))

            self.autoscale_settings[target.name] = monitor.AutoscaleSetting(
                f"{name}-{target.name}", resource_group_name=rg, location=args.location, tags=tags,
                autoscale_setting_name=f"{name}-{target.name}", enabled=True,
                target_resource_uri=target.deployment_id,
                profiles=[monitor.AutoscaleProfileArgs(
                    name="default",
                    capacity=monitor.ScaleCapacityArgs(minimum=str(scale.min_instances),
                                                       maximum=str(scale.max_instances),
                                                       default=str(scale.default_instances)),
                    rules=[
                        rule("CpuUtilizationPercentage", DEPLOYMENT_NAMESPACE, target.deployment_id, "GreaterThan",
                             scale.cpu_scale_out_percent, "Increase", scale.scale_out_cooldown_seconds),
                        rule("RequestLatency", ENDPOINT_NAMESPACE, target.endpoint_id, "GreaterThan",
                             scale.latency_scale_out_ms, "Increase", scale.scale_out_cooldown_seconds),
                        rule("CpuUtilizationPercentage", DEPLOYMENT_NAMESPACE, target.deployment_id, "LessThan",
                             scale.cpu_scale_in_percent, "Decrease", scale.scale_in_cooldown_seconds),
                    ])],
                opts=child_opts(self))

        self.register_outputs({
            "action_group_id": self.action_group.id if self.action_group is not None else None,
            "alerts": sorted(self.alerts), "autoscaled": sorted(self.autoscale_settings),
        })
