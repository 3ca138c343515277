"""A monthly consumption budget on a resource group with e-mail notifications."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import consumption

from ..checks import Checks
from ..platform import azure as azure_platform
from ..platform.shared import EMAIL_HINT, EMAIL_PATTERN
from ._common import child_opts


@dataclass(frozen=True)
class CostBudgetArgs:
    """Args of :class:`CostBudget`."""

    scope: pulumi.Input[str]
    """``/subscriptions/<id>/resourceGroups/<name>``: the budget counts this group's cost."""
    budget_name: str
    """1-63 letters, digits, '_' and '-'."""
    monthly_amount: int
    """In the billing currency of the subscription."""
    emails: list[str]
    """Contacts of every notification (at least one)."""
    start_date: str
    """First day of a month, ``YYYY-MM-01``: Azure refuses other days, a past month, and any change
    after creation - so it is only sent when the budget is created (later runs ignore it)."""
    notify_at_percent: list[int] = field(default_factory=lambda: [80, 100])
    """Thresholds of actual cost in percent of the amount (1..1000, distinct)."""
    forecast: bool = True
    """Also warn when the month's forecast reaches the amount (100 %)."""


def _check(args: CostBudgetArgs) -> None:
    check = Checks("CostBudgetArgs")
    check.pattern("budget_name", args.budget_name, r"[a-zA-Z0-9_-]{1,63}", "must be 1-63 letters, digits, '_' and '-'")
    check.that(
        isinstance(args.monthly_amount, int) and args.monthly_amount >= 1,
        "monthly_amount",
        args.monthly_amount,
        "must be a whole amount >= 1",
    )
    check.that(len(args.emails) >= 1, "emails", args.emails, "a budget needs at least one e-mail to notify")
    for email in args.emails:
        check.pattern("emails", email, EMAIL_PATTERN, EMAIL_HINT)
    check.pattern(
        "start_date", args.start_date, r"20[0-9]{2}-(0[1-9]|1[0-2])-01", "must be the first day of a month, YYYY-MM-01"
    )
    thresholds = args.notify_at_percent
    check.that(len(thresholds) >= 1, "notify_at_percent", thresholds, "needs at least one threshold")
    most = azure_platform.BUDGET_MAX_NOTIFICATIONS
    check.that(
        len(thresholds) + (1 if args.forecast else 0) <= most,
        "notify_at_percent",
        thresholds,
        f"Azure allows {most} notifications per budget (one is the forecast when forecast=True)",
    )
    for percent in thresholds:
        check.that(
            isinstance(percent, int) and 1 <= percent <= 1000,
            "notify_at_percent",
            percent,
            "thresholds must be 1..1000 percent",
        )
    check.that(len(set(thresholds)) == len(thresholds), "notify_at_percent", thresholds, "must not repeat a threshold")


class CostBudget(pulumi.ComponentResource):
    def __init__(self, name: str, args: CostBudgetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check(args)
        super().__init__("twinserve:azure:CostBudget", name, None, opts)
        notifications = {
            f"actual-{p}-percent": consumption.NotificationArgs(
                enabled=True,
                operator="GreaterThanOrEqualTo",
                threshold=p,
                threshold_type="Actual",
                contact_emails=list(args.emails),
            )
            for p in sorted(args.notify_at_percent)
        }
        if args.forecast:  # at the limit itself, as the AWS budget's forecast alert
            notifications["forecast-100-percent"] = consumption.NotificationArgs(
                enabled=True,
                operator="GreaterThanOrEqualTo",
                threshold=100,
                threshold_type="Forecasted",
                contact_emails=list(args.emails),
            )
        self.budget = consumption.Budget(
            f"{name}-budget",
            scope=args.scope,
            budget_name=args.budget_name,
            amount=args.monthly_amount,
            category="Cost",
            time_grain="Monthly",
            time_period=consumption.BudgetTimePeriodArgs(start_date=f"{args.start_date}T00:00:00Z"),
            notifications=notifications,
            # The start is fixed at creation: a later run (next month, a new default) must not try to move it.
            opts=child_opts(self, ignore_changes=["timePeriod.startDate"]),
        )
        self.register_outputs({"budget_id": self.budget.id, "amount": args.monthly_amount})
