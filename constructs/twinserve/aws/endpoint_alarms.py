"""Alarms and a dashboard for a SageMaker endpoint.

Per live (and shadow) variant: invocation 5XX and 4XX errors, model latency p99, overhead latency
p99, and for instance variants CPU (normalised per core), memory and disk utilization; optionally
an alarm when the endpoint receives no invocations. Actions go to one SNS topic (TLS only,
encrypted with the given key, its policy and the key's letting CloudWatch publish) with e-mail
subscriptions. Alarm names are explicit and stable (``<endpoint>-<variant>-<metric>``): the
endpoint's rollout refers to them by name.

``rollback_alarms`` lists the live variants' alarms - except "no invocations", which an idle endpoint
would always raise - most important first, within SageMaker's limit of 10: hand them to the
endpoint with :meth:`~.endpoint.SageMakerEndpoint.add_rollback_alarms` to roll guarded updates back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms

from constructs import Construct

from ..platform import aws as aws_platform
from ..platform.shared import EMAIL_HINT, EMAIL_PATTERN
from ._alarm_topic import alarm_topic
from ._validate import checks
from .endpoint import InstanceVariant, SageMakerEndpoint

# Rollback priority when an endpoint has more alarms than SageMaker watches.
_ROLLBACK_ORDER = ("5xx", "model-latency", "4xx", "overhead-latency", "cpu", "memory", "disk")


@dataclass(frozen=True)
class EndpointAlarmsProps:
    """Props of :class:`EndpointAlarms`. Thresholds are per variant and per period."""

    endpoint: SageMakerEndpoint
    """The endpoint whose live and shadow variants are watched."""
    emails: Sequence[str] = field(default_factory=tuple)
    """E-mail addresses subscribed to the alarm topic (each confirms the subscription)."""
    errors_5xx: int = 5
    """Invocation5XXErrors (sum per period) at or above which the alarm fires."""
    errors_4xx: int = 50
    """Invocation4XXErrors (sum per period) at or above which the alarm fires."""
    model_latency_p99_ms: int = 500
    """ModelLatency p99 (the container's own time) at or above which the alarm fires."""
    overhead_latency_p99_ms: int = 100
    """OverheadLatency p99 (SageMaker's time around the container) at or above which the alarm fires."""
    cpu_utilization_percent: int = 80
    """Average CPU per core (the metric sums cores; the threshold is scaled by the vCPU count)."""
    memory_utilization_percent: int = 85
    """MemoryUtilization average at or above which the alarm fires (instance variants)."""
    disk_utilization_percent: int = 85
    """DiskUtilization average at or above which the alarm fires (instance variants)."""
    zero_invocations: bool = False
    """Alarm when the first live variant receives no invocation for ``evaluation_periods`` periods."""
    period: cdk.Duration = cdk.Duration.minutes(1)
    """Length of one datapoint: 10 s, 30 s or a multiple of 60 s."""
    evaluation_periods: int = 3
    """Consecutive breaching datapoints that raise an alarm (1..60)."""
    encryption_key: kms.IKey | None = None
    """Key of the alarm topic; ``None`` leaves the topic unencrypted (CloudWatch cannot publish to
    topics under the AWS-managed ``aws/sns`` key)."""
    dashboard_name: str | None = None
    """Default: the endpoint name."""


class EndpointAlarms(Construct):
    """CloudWatch alarms, their SNS topic and a dashboard for one endpoint."""

    def __init__(self, scope: Construct, id: str, props: EndpointAlarmsProps) -> None:
        super().__init__(scope, id)
        _check(props)

        endpoint = props.endpoint
        self.endpoint = endpoint
        self.topic = alarm_topic(
            self,
            display_name=f"{endpoint.endpoint_name} alarms",
            alarm_name_prefix=endpoint.endpoint_name,
            encryption_key=props.encryption_key,
            emails=props.emails,
        )
        action = cw_actions.SnsAction(self.topic)

        self.alarms: dict[str, cloudwatch.Alarm] = {}
        rollback: dict[str, list[cloudwatch.Alarm]] = {k: [] for k in _ROLLBACK_ORDER}
        variants = [(v, False) for v in endpoint.variants] + ([(endpoint.shadow, True)] if endpoint.shadow else [])
        period = props.period
        threshold_kw = dict(evaluation_periods=props.evaluation_periods, datapoints_to_alarm=props.evaluation_periods)

        def add(
            variant: str,
            kind: str,
            metric: cloudwatch.IMetric,
            threshold: float,
            description: str,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            shadow: bool = False,
        ) -> None:
            alarm = cloudwatch.Alarm(
                self,
                f"{_camel(variant)}{_camel(kind)}",
                alarm_name=f"{endpoint.endpoint_name}-{variant}-{kind}",
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                comparison_operator=comparison,
                treat_missing_data=missing,
                **threshold_kw,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[f"{variant}-{kind}"] = alarm
            if not shadow and kind in rollback:
                rollback[kind].append(alarm)

        for variant, shadow in variants:
            name = variant.name
            add(
                name,
                "5xx",
                endpoint.metric_invocation_5xx_errors(name, period=period),
                props.errors_5xx,
                f"{name}: >= {props.errors_5xx} server errors per period",
                shadow=shadow,
            )
            add(
                name,
                "4xx",
                endpoint.metric_invocation_4xx_errors(name, period=period),
                props.errors_4xx,
                f"{name}: >= {props.errors_4xx} client errors per period",
                shadow=shadow,
            )
            add(
                name,
                "model-latency",
                endpoint.metric_model_latency(name, period=period),
                props.model_latency_p99_ms * 1000,
                f"{name}: model latency p99 >= {props.model_latency_p99_ms} ms",
                shadow=shadow,
            )
            add(
                name,
                "overhead-latency",
                endpoint.metric_overhead_latency(name, period=period),
                props.overhead_latency_p99_ms * 1000,
                f"{name}: overhead latency p99 >= {props.overhead_latency_p99_ms} ms",
                shadow=shadow,
            )
            if isinstance(variant, InstanceVariant):
                vcpus = aws_platform.vcpus_of(variant.instance_type)
                add(
                    name,
                    "cpu",
                    endpoint.metric_cpu_utilization(name, period=period),
                    props.cpu_utilization_percent * vcpus,
                    f"{name}: CPU >= {props.cpu_utilization_percent} % per core ({vcpus} vCPU)",
                    shadow=shadow,
                )
                add(
                    name,
                    "memory",
                    endpoint.metric_memory_utilization(name, period=period),
                    props.memory_utilization_percent,
                    f"{name}: memory >= {props.memory_utilization_percent} %",
                    shadow=shadow,
                )
                add(
                    name,
                    "disk",
                    endpoint.metric_disk_utilization(name, period=period),
                    props.disk_utilization_percent,
                    f"{name}: disk >= {props.disk_utilization_percent} %",
                    shadow=shadow,
                )
        if props.zero_invocations:
            first = endpoint.variants[0].name
            add(
                first,
                "no-invocations",
                endpoint.metric_invocations(first, period=period),
                1,
                f"{first}: no invocations for {props.evaluation_periods} periods",
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                missing=cloudwatch.TreatMissingData.BREACHING,
                shadow=True,
            )

        # Most important first, one kind at a time across variants, within SageMaker's limit.
        self.rollback_alarms: list[cloudwatch.Alarm] = [a for kind in _ROLLBACK_ORDER for a in rollback[kind]][
            : aws_platform.MAX_ROLLBACK_ALARMS
        ]

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=props.dashboard_name or endpoint.endpoint_name,
            default_interval=cdk.Duration.hours(3),
        )
        names = [v.name for v, _ in variants]
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# SageMaker endpoint `{endpoint.endpoint_name}`\nVariants: {', '.join(names)}",
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            _graph("Invocations", [endpoint.metric_invocations(n, period=period, label=n) for n in names]),
            _graph(
                "Errors (5XX / 4XX)",
                [endpoint.metric_invocation_5xx_errors(n, period=period, label=f"{n} 5XX") for n in names]
                + [endpoint.metric_invocation_4xx_errors(n, period=period, label=f"{n} 4XX") for n in names],
            ),
            _graph("Model latency p99 (us)", [endpoint.metric_model_latency(n, period=period, label=n) for n in names]),
            _graph(
                "Overhead latency p99 (us)",
                [endpoint.metric_overhead_latency(n, period=period, label=n) for n in names],
            ),
        )
        instance_names = [v.name for v, _ in variants if isinstance(v, InstanceVariant)]
        if instance_names:
            self.dashboard.add_widgets(
                _graph(
                    "CPU utilization (sum over cores)",
                    [endpoint.metric_cpu_utilization(n, period=period, label=n) for n in instance_names],
                ),
                _graph(
                    "Memory utilization %",
                    [endpoint.metric_memory_utilization(n, period=period, label=n) for n in instance_names],
                ),
                _graph(
                    "Disk utilization %",
                    [endpoint.metric_disk_utilization(n, period=period, label=n) for n in instance_names],
                ),
                _graph(
                    "Invocations per instance",
                    [endpoint.metric_invocations_per_instance(n, period=period, label=n) for n in instance_names],
                ),
            )
        if endpoint.is_async:
            self.dashboard.add_widgets(
                _graph("Async backlog per instance", [endpoint.metric_backlog_size_per_instance(period=period)])
            )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24)
        )


def _graph(title: str, metrics: list[cloudwatch.IMetric]) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=metrics, width=6, height=6)


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("_", "-").split("-"))


def _check(props: EndpointAlarmsProps) -> None:
    check = checks("EndpointAlarmsProps")
    for name in ("errors_5xx", "errors_4xx", "model_latency_p99_ms", "overhead_latency_p99_ms"):
        check.range(name, getattr(props, name), 1, 10**7)
    for name in ("cpu_utilization_percent", "memory_utilization_percent", "disk_utilization_percent"):
        check.range(name, getattr(props, name), 1, 100)
    check.range("evaluation_periods", props.evaluation_periods, 1, 60)
    seconds = props.period.to_seconds()
    check.that(
        seconds in (10, 30) or seconds % 60 == 0, "period", f"{seconds}s", "use 10, 30 or a multiple of 60 seconds"
    )
    for email in props.emails:
        check.pattern("emails", email, EMAIL_PATTERN, EMAIL_HINT)
    check.pattern(
        "dashboard_name", props.dashboard_name, r"[A-Za-z0-9_-]{1,255}", "use 1-255 letters, digits, '-' and '_'"
    )
