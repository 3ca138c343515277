"""Alarms and a dashboard for a service that is not a SageMaker endpoint (ECS Fargate, Lambda).

The same shape as :class:`~.endpoint_alarms.EndpointAlarms`: explicit, stable alarm names
(``<prefix>-<name>``, which deployments refer to for rollback), one SNS topic (TLS only, the given
key, CloudWatch allowed to publish, e-mail subscriptions), a dashboard of the watched metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms

from constructs import Construct

from ..platform.shared import EMAIL_HINT, EMAIL_PATTERN
from ._alarm_topic import alarm_topic
from ._validate import checks


@dataclass(frozen=True)
class WatchedMetric:
    """One alarm: ``metric`` above ``threshold`` for the evaluation periods."""

    name: str
    """The alarm's name suffix (``<prefix>-<name>``), e.g. ``5xx``."""
    metric: cloudwatch.IMetric
    """What is watched (its period is the alarm's period)."""
    threshold: float
    """Alarm when the metric is greater than or equal to this."""
    description: str
    """What it means and where to look."""
    rollback: bool = True
    """Listed in ``rollback_alarm_names`` (deployments roll back when it fires)."""


@dataclass(frozen=True)
class ServiceAlarmsProps:
    """Props of :class:`ServiceAlarms`."""

    name_prefix: str
    """Prefix of every alarm name and the dashboard name (the service's name)."""
    metrics: Sequence[WatchedMetric]
    """The alarms."""
    emails: Sequence[str] = field(default_factory=tuple)
    """Subscribed to the topic (each confirms the subscription)."""
    evaluation_periods: int = 3
    """Consecutive breaching periods before an alarm fires."""
    encryption_key: kms.IKey | None = None
    """Key of the topic; ``None`` leaves it unencrypted (CloudWatch cannot use the AWS-managed key)."""
    dashboard_name: str | None = None
    """The dashboard's name (account-global); ``None``: ``name_prefix``."""


class ServiceAlarms(Construct):
    """Exposes ``topic``, ``alarms`` (name -> alarm), ``rollback_alarm_names`` and ``dashboard``."""

    def __init__(self, scope: Construct, id: str, props: ServiceAlarmsProps) -> None:
        super().__init__(scope, id)
        _check(props)
        self.topic = alarm_topic(
            self,
            display_name=f"{props.name_prefix} alarms",
            alarm_name_prefix=props.name_prefix,
            encryption_key=props.encryption_key,
            emails=props.emails,
        )
        action = cw_actions.SnsAction(self.topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for watched in props.metrics:
            alarm = cloudwatch.Alarm(
                self,
                _camel(watched.name),
                alarm_name=f"{props.name_prefix}-{watched.name}",
                alarm_description=watched.description,
                metric=watched.metric,
                threshold=watched.threshold,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=props.evaluation_periods,
                datapoints_to_alarm=props.evaluation_periods,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[watched.name] = alarm
        self.rollback_alarm_names = tuple(f"{props.name_prefix}-{m.name}" for m in props.metrics if m.rollback)
        """The names deployments watch (ECS deployment alarms, CodeDeploy alarms)."""
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=props.dashboard_name or props.name_prefix
        )
        self.dashboard.add_widgets(
            *[
                cloudwatch.GraphWidget(
                    title=m.name,
                    left=[m.metric],
                    width=8,
                    left_annotations=[cloudwatch.HorizontalAnnotation(value=m.threshold, label="alarm")],
                )
                for m in props.metrics
            ]
        )


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("_", "-").split("-"))


def _check(props: ServiceAlarmsProps) -> None:
    check = checks("ServiceAlarmsProps")
    check.pattern("name_prefix", props.name_prefix, r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,200}", "letters, digits, '-', '_'")
    names = [m.name for m in props.metrics]
    check.that(len(names) == len(set(names)), "metrics", names, "alarm names must be unique")
    for email in props.emails:
        check.pattern("emails", email, EMAIL_PATTERN, EMAIL_HINT)
    check.range("evaluation_periods", props.evaluation_periods, 1, 100)
