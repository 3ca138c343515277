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

from ..checks import Checks
from ..platform import azure as azure_platform
from ..platform.shared import EMAIL_HINT, EMAIL_PATTERN
from ._common import child_opts

ENDPOINT_NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
DEPLOYMENT_NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"


def iso_duration(seconds: int) -> str:
    """An ISO 8601 duration of exactly ``seconds`` (``PT5M``, ``PT1M30S``), as autoscale expects."""
    minutes, rest = divmod(seconds, 60)
    return "PT" + (f"{minutes}M" if minutes else "") + (f"{rest}S" if rest or not minutes else "")


@dataclass(frozen=True)
class AutoscaleTarget:
    """A managed online deployment to autoscale."""

    name: str
    """Short name used in logical names (the deployment name)."""
    deployment_id: pulumi.Input[str]
    """The deployment's resource id (the autoscale target and its CPU metric's resource)."""
    endpoint_id: pulumi.Input[str]
    """Its endpoint's resource id (the request latency metric's resource)."""
    default_instances: int = 1
    """Instances when the metrics cannot be read: the deployment's own instance count."""


@dataclass(frozen=True)
class AutoscaleRules:
    """Scale out on CPU or latency, in on CPU, within instance bounds (the same for every target)."""

    min_instances: int = 1
    """Fewest instances per deployment."""
    max_instances: int = 2
    """Most instances per deployment."""
    cpu_scale_out_percent: int = 70
    """Add an instance above this average CPU."""
    cpu_scale_in_percent: int = 25
    """Remove an instance below this average CPU."""
    latency_scale_out_ms: int = 500
    """Add an instance above this average request latency."""
    scale_out_cooldown_seconds: int = 60
    """Wait after adding an instance (60 s .. 1 week)."""
    scale_in_cooldown_seconds: int = 300
    """Wait after removing an instance (60 s .. 1 week)."""
    window_seconds: int = 300
    """The metrics' averaging window (at least 5 minutes)."""


@dataclass(frozen=True)
class AlertRules:
    """Latency and 5xx alerts per endpoint."""

    latency_p99_ms: int = 500
    """p99 request latency above which the alert fires."""
    errors_5xx: int = 5
    """5xx responses per period that raise the alert, as an average over the window (RequestsPerMinute
    is a per-minute rate averaged over the window)."""
    period_seconds: int = 60
    """How often the alert is evaluated (an evaluation frequency Azure Monitor offers)."""
    evaluation_periods: int = 3
    """The window covers this many periods, rounded up to a window size Azure Monitor offers."""
    severity: int = 2
    """0 (critical) .. 4 (verbose)."""

    @property
    def errors_5xx_per_minute(self) -> float:
        """``errors_5xx`` per period as the per-minute rate RequestsPerMinute reports."""
        return self.errors_5xx * 60 / self.period_seconds

    @property
    def window_seconds_needed(self) -> int:
        return self.period_seconds * self.evaluation_periods

    @property
    def window_size(self) -> str:
        """The smallest window Azure accepts that covers all evaluation periods."""
        windows = azure_platform.ALERT_WINDOWS
        return windows[min(s for s in windows if s >= self.window_seconds_needed)]

    @property
    def evaluation_frequency(self) -> str:
        return azure_platform.ALERT_FREQUENCIES[self.period_seconds]


@dataclass(frozen=True)
class EndpointMonitoringArgs:
    """Args of :class:`EndpointMonitoring`."""

    resource_group_name: pulumi.Input[str]
    """The resource group of the action group, alerts and autoscale settings."""
    location: pulumi.Input[str]
    """Azure region of the autoscale settings (alerts and action groups are global)."""
    action_group_name: str
    """1-60 letters, digits and '-'."""
    emails: list[str]
    """Receivers of the action group; with none, the alerts fire without notifying anybody."""
    endpoints: dict[str, pulumi.Input[str]]
    """Short name -> online endpoint id: each gets latency and 5xx alerts."""
    alerts: AlertRules = field(default_factory=AlertRules)
    """Thresholds and windows of the alerts."""
    autoscale_targets: list[AutoscaleTarget] = field(default_factory=list)
    """Managed deployments to autoscale (Kubernetes deployments scale inside the cluster)."""
    autoscale: AutoscaleRules | None = None
    """The rules of every autoscale target; required with targets."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags of every resource."""

    @property
    def short_name(self) -> str:
        """Action group short names are at most 12 characters."""
        return re.sub(r"[^a-zA-Z0-9]", "", self.action_group_name)[:12]


def _check(args: EndpointMonitoringArgs) -> None:
    check = Checks("EndpointMonitoringArgs")
    check.pattern(
        "action_group_name",
        args.action_group_name,
        r"[a-zA-Z0-9][a-zA-Z0-9-]{0,59}",
        "must be 1-60 letters, digits and '-'",
    )
    for email in args.emails:
        check.pattern("emails", email, EMAIL_PATTERN, EMAIL_HINT)
    check.that(len(set(args.emails)) == len(args.emails), "emails", args.emails, "must not repeat an address")
    _check_alerts(check, args.alerts)
    check.that(
        not args.autoscale_targets or args.autoscale is not None,
        "autoscale",
        None,
        "autoscale_targets need autoscale rules",
    )
    if args.autoscale is not None:
        _check_autoscale(check, args.autoscale, args.autoscale_targets)


def _check_alerts(check: Checks, rules: AlertRules) -> None:
    check.that(rules.latency_p99_ms >= 1, "alerts.latency_p99_ms", rules.latency_p99_ms, "must be >= 1")
    check.that(rules.errors_5xx >= 1, "alerts.errors_5xx", rules.errors_5xx, "must be >= 1")
    check.one_of("alerts.period_seconds", rules.period_seconds, azure_platform.ALERT_FREQUENCIES)
    check.that(
        rules.window_seconds_needed <= max(azure_platform.ALERT_WINDOWS),
        "alerts.evaluation_periods",
        rules.evaluation_periods,
        "period_seconds x evaluation_periods must be at most 24 hours",
    )
    check.range("alerts.severity", rules.severity, *azure_platform.ALERT_SEVERITIES, " (0 critical .. 4 verbose)")


def _check_autoscale(check: Checks, rules: AutoscaleRules, targets: list[AutoscaleTarget]) -> None:
    check.that(
        1 <= rules.min_instances <= rules.max_instances,
        "autoscale.min_instances",
        rules.min_instances,
        f"must be 1..max_instances ({rules.max_instances})",
    )
    check.that(
        0 < rules.cpu_scale_in_percent < rules.cpu_scale_out_percent <= 100,
        "autoscale.cpu_scale_in_percent",
        rules.cpu_scale_in_percent,
        f"must be above 0 and below cpu_scale_out_percent ({rules.cpu_scale_out_percent})",
    )
    check.that(
        rules.latency_scale_out_ms >= 1, "autoscale.latency_scale_out_ms", rules.latency_scale_out_ms, "must be >= 1"
    )
    check.that(
        rules.window_seconds >= azure_platform.AUTOSCALE_MIN_WINDOW_SECONDS,
        "autoscale.window_seconds",
        rules.window_seconds,
        "Azure autoscale needs a time window of at least 5 minutes",
    )
    for name in ("scale_out_cooldown_seconds", "scale_in_cooldown_seconds"):
        check.range(
            f"autoscale.{name}",
            getattr(rules, name),
            *azure_platform.AUTOSCALE_COOLDOWN_SECONDS,
            " s (1 minute .. 1 week)",
        )
    for i, target in enumerate(targets):
        check.that(
            rules.min_instances <= target.default_instances <= rules.max_instances,
            f"autoscale_targets[{i}].default_instances",
            target.default_instances,
            f"must lie within {rules.min_instances}..{rules.max_instances}",
        )


class EndpointMonitoring(pulumi.ComponentResource):
    """Exposes ``action_group``, ``alerts`` (name -> MetricAlert) and ``autoscale_settings``."""

    def __init__(self, name: str, args: EndpointMonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check(args)
        super().__init__("twinserve:azure:EndpointMonitoring", name, None, opts)
        self._name, self._args = name, args
        self.action_group = self._action_group()
        self.alerts = {
            f"{short}-{kind}": self._alert(short, endpoint_id, kind, criterion, description)
            for short, endpoint_id in args.endpoints.items()
            for kind, criterion, description in _alert_criteria(args.alerts)
        }
        self.autoscale_settings = {target.name: self._autoscale_setting(target) for target in args.autoscale_targets}
        self.register_outputs(
            {
                "action_group_id": self.action_group.id if self.action_group is not None else None,
                "alerts": sorted(self.alerts),
                "autoscaled": sorted(self.autoscale_settings),
            }
        )

    def _action_group(self) -> monitor.ActionGroup | None:
        """E-mails every receiver; none without e-mails (the alerts then notify nobody)."""
        args = self._args
        if not args.emails:
            return None
        return monitor.ActionGroup(
            f"{self._name}-actions",
            resource_group_name=args.resource_group_name,
            location="global",
            tags=args.tags,
            action_group_name=args.action_group_name,
            group_short_name=args.short_name,
            enabled=True,
            email_receivers=[
                monitor.MicrosoftCommonEmailReceiverArgs(
                    name=f"email-{i}", email_address=email, use_common_alert_schema=True
                )
                for i, email in enumerate(args.emails)
            ],
            opts=child_opts(self),
        )

    def _alert(
        self,
        short: str,
        endpoint_id: pulumi.Input[str],
        kind: str,
        criterion: monitor.MetricCriteriaArgs,
        description: str,
    ) -> monitor.MetricAlert:
        args, rules = self._args, self._args.alerts
        return monitor.MetricAlert(
            f"{self._name}-{short}-{kind}",
            resource_group_name=args.resource_group_name,
            location="global",
            tags=args.tags,
            rule_name=f"{short}-{kind}",
            description=f"{short}: {description}",
            severity=rules.severity,
            enabled=True,
            auto_mitigate=True,
            scopes=[endpoint_id],
            evaluation_frequency=rules.evaluation_frequency,
            window_size=rules.window_size,
            target_resource_type=ENDPOINT_NAMESPACE,
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria", all_of=[criterion]
            ),
            actions=[monitor.MetricAlertActionArgs(action_group_id=self.action_group.id)]
            if self.action_group is not None
            else None,
            opts=child_opts(self),
        )

    def _autoscale_setting(self, target: AutoscaleTarget) -> monitor.AutoscaleSetting:
        """Out on CPU or latency, in on CPU, within the bounds; starting from the target's own count."""
        args = self._args
        scale = args.autoscale
        assert scale is not None  # _check: targets need rules
        window = iso_duration(scale.window_seconds)
        return monitor.AutoscaleSetting(
            f"{self._name}-{target.name}",
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=args.tags,
            autoscale_setting_name=f"{self._name}-{target.name}",
            enabled=True,
            target_resource_uri=target.deployment_id,
            profiles=[
                monitor.AutoscaleProfileArgs(
                    name="default",
                    capacity=monitor.ScaleCapacityArgs(
                        minimum=str(scale.min_instances),
                        maximum=str(scale.max_instances),
                        default=str(target.default_instances),
                    ),
                    rules=[
                        _scale_rule(
                            "CpuUtilizationPercentage",
                            DEPLOYMENT_NAMESPACE,
                            target.deployment_id,
                            "GreaterThan",
                            scale.cpu_scale_out_percent,
                            "Increase",
                            scale.scale_out_cooldown_seconds,
                            window,
                        ),
                        _scale_rule(
                            "RequestLatency",
                            ENDPOINT_NAMESPACE,
                            target.endpoint_id,
                            "GreaterThan",
                            scale.latency_scale_out_ms,
                            "Increase",
                            scale.scale_out_cooldown_seconds,
                            window,
                        ),
                        _scale_rule(
                            "CpuUtilizationPercentage",
                            DEPLOYMENT_NAMESPACE,
                            target.deployment_id,
                            "LessThan",
                            scale.cpu_scale_in_percent,
                            "Decrease",
                            scale.scale_in_cooldown_seconds,
                            window,
                        ),
                    ],
                )
            ],
            opts=child_opts(self),
        )


def _alert_criteria(rules: AlertRules) -> list[tuple[str, monitor.MetricCriteriaArgs, str]]:
    """(kind, criterion, description) of the alerts every endpoint gets. Both metrics support only the
    Average aggregation (https://learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/
    microsoft-machinelearningservices-workspaces-onlineendpoints-metrics), so Azure validates them
    as declared."""
    return [
        (
            "latency",
            monitor.MetricCriteriaArgs(
                criterion_type="StaticThresholdCriterion",
                name="p99-latency",
                metric_namespace=ENDPOINT_NAMESPACE,
                metric_name="RequestLatency_P99",
                time_aggregation="Average",
                operator="GreaterThan",
                threshold=rules.latency_p99_ms,
            ),
            f"p99 request latency above {rules.latency_p99_ms} ms",
        ),
        (
            "errors-5xx",
            monitor.MetricCriteriaArgs(
                criterion_type="StaticThresholdCriterion",
                name="5xx",
                metric_namespace=ENDPOINT_NAMESPACE,
                metric_name="RequestsPerMinute",
                dimensions=[monitor.MetricDimensionArgs(name="statusCodeClass", operator="Include", values=["5xx"])],
                time_aggregation="Average",
                operator="GreaterThanOrEqual",
                threshold=rules.errors_5xx_per_minute,
            ),
            f"{rules.errors_5xx} or more 5xx responses per {rules.period_seconds} s, averaged over {rules.window_size}",
        ),
    ]


def _scale_rule(
    metric: str,
    namespace: str,
    resource: pulumi.Input[str],
    operator: str,
    threshold: int,
    direction: str,
    cooldown_seconds: int,
    window: str,
) -> monitor.ScaleRuleArgs:
    """Change the count by one when ``metric`` (averaged over ``window``) crosses ``threshold``."""
    return monitor.ScaleRuleArgs(
        metric_trigger=monitor.MetricTriggerArgs(
            metric_name=metric,
            metric_namespace=namespace,
            metric_resource_uri=resource,
            operator=operator,
            statistic="Average",
            threshold=threshold,
            time_aggregation="Average",
            time_grain="PT1M",
            time_window=window,
        ),
        scale_action=monitor.ScaleActionArgs(
            direction=direction, type="ChangeCount", value="1", cooldown=iso_duration(cooldown_seconds)
        ),
    )
