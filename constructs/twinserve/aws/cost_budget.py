"""A cost ceiling: an AWS Budgets monthly cost budget with e-mail notifications.

The budget covers the whole account unless ``cost_filter_tag`` limits it to the resources carrying
a cost-allocation tag. That tag must be activated in the Billing console of the payer account
(https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/activating-tags.html); until it is,
the filtered budget sees no cost at all.

CloudFormation replaces a budget whose ``NotificationsWithSubscribers`` change (a create-only
property, like ``BudgetName``), and a custom-named resource cannot be replaced under the same name.
So the name ends in a hash of the notifications: a new e-mail or threshold is a new budget, created
before the old one is deleted."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_budgets as budgets

from constructs import Construct

from ..platform import aws as aws_platform
from ..platform.shared import EMAIL_HINT, EMAIL_PATTERN
from ._validate import checks


@dataclass(frozen=True)
class CostBudgetProps:
    """Props of :class:`CostBudget`."""

    budget_name: str
    """Name prefix, unique in the account (1-91 characters, no ':' or '\\'); the budget is named
    ``<budget_name>-<8 hex digits of the notifications>``."""
    monthly_limit_usd: int
    """The monthly cost limit in US dollars."""
    emails: Sequence[str]
    """Notified at each threshold (1..10 addresses)."""
    notify_at_percent: Sequence[int] = (80, 100)
    """Thresholds of actual spend in percent of the limit (1..5 distinct values, 1..1000)."""
    forecast_alert: bool = True
    """Also warn when the month's forecast exceeds the limit (uses one of the 5 notification slots)."""
    cost_filter_tag: tuple[str, str] | None = None
    """Only count cost of resources with this (activated) cost-allocation tag ``(key, value)``."""


class CostBudget(Construct):
    """``AWS::Budgets::Budget`` (COST, MONTHLY, USD)."""

    def __init__(self, scope: Construct, id: str, props: CostBudgetProps) -> None:
        super().__init__(scope, id)
        _check(props)
        thresholds = list(props.notify_at_percent)

        subscribers = [budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=e) for e in props.emails]

        def notification(kind: str, percent: int) -> budgets.CfnBudget.NotificationWithSubscribersProperty:
            return budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind,
                    comparison_operator="GREATER_THAN",
                    threshold=percent,
                    threshold_type="PERCENTAGE",
                ),
                subscribers=subscribers,
            )

        notifications = [notification("ACTUAL", p) for p in sorted(thresholds)]
        if props.forecast_alert:
            notifications.append(notification("FORECASTED", 100))
        self.budget_name = f"{props.budget_name}-{notifications_digest(props)}"
        self.resource = budgets.CfnBudget(
            self,
            "Resource",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=self.budget_name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=props.monthly_limit_usd, unit="USD"),
                cost_filters={"TagKeyValue": [f"user:{props.cost_filter_tag[0]}${props.cost_filter_tag[1]}"]}
                if props.cost_filter_tag
                else None,
            ),
            notifications_with_subscribers=notifications,
        )


def notifications_digest(props: CostBudgetProps) -> str:
    """8 hex digits over what NotificationsWithSubscribers is made of: the same notifications, the same name
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-budgets-budget.html)."""
    made_of = [sorted(props.emails), sorted(props.notify_at_percent), props.forecast_alert]
    return hashlib.sha256(json.dumps(made_of).encode()).hexdigest()[:8]


def _check(props: CostBudgetProps) -> None:
    check = checks("CostBudgetProps")
    check.pattern("budget_name", props.budget_name, r"[^:\\]{1,91}", "use 1-91 characters without ':' or '\\'")
    check.range("monthly_limit_usd", props.monthly_limit_usd, 1, 10**9)
    most = aws_platform.BUDGET_MAX_SUBSCRIBERS
    check.that(1 <= len(props.emails) <= most, "emails", list(props.emails), f"give 1..{most} addresses")
    for email in props.emails:
        check.pattern("emails", email, EMAIL_PATTERN, EMAIL_HINT)
    thresholds = list(props.notify_at_percent)
    slots = aws_platform.BUDGET_MAX_NOTIFICATIONS - (1 if props.forecast_alert else 0)
    check.that(
        1 <= len(thresholds) <= slots and len(set(thresholds)) == len(thresholds),
        "notify_at_percent",
        thresholds,
        f"give 1..{slots} distinct thresholds (AWS Budgets allows "
        f"{aws_platform.BUDGET_MAX_NOTIFICATIONS} notifications"
        + (", one is the forecast alert)" if props.forecast_alert else ")"),
    )
    for value in thresholds:
        check.range("notify_at_percent", value, 1, 1000)
