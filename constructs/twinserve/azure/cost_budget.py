"""A monthly consumption budget on a resource group with e-mail notifications."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import consumption

from ._common import EMAIL, check, child_opts

MAX_NOTIFICATIONS = 5  # Azure Cost Management allows five notifications per budget


@dataclass
class CostBudgetArgs:
    scope: pulumi.Input[str]
    """``/subscriptions/<id>/resourceGroups/<name>``: the budget counts this group's cost."""
    budget_name: str
    monthly_amount: int
    """In the billing currency of the subscription."""
    emails: list[str]
    start_date: str
    """First day of a month, ``YYYY-MM-01``: Azure refuses other days, a past month, and any change
    after creation - so it is only sent when the budget is created (later runs ignore it)."""
    notify_at_percent: list[int] = field(default_factory=lambda: [80, 100])
    forecast: bool = True
    """Also warn when the forecast for the month reaches the highest threshold."""

    def __post_init__(self) -> None:
        owner = "CostBudgetArgs"
        check(bool(re.fullmatch(r"[a-zA-Z0-9_-]{1,63}", self.budget_name)), owner, "budget_name", self.budget_name,
              "must be 1-63 letters, digits, '_' and '-'")
        check(isinstance(self.monthly_amount, int) and self.monthly_amount >= 1, owner, "monthly_amount",
              self.monthly_amount, "must be a whole amount >= 1")
        check(len(self.emails) >= 1, owner, "emails", self.emails, "a budget needs at least one e-mail to notify")
        for email in self.emails:
            check(bool(EMAIL.match(email)), owner, "emails", email, "must be an e-mail address")
        check(bool(re.fullmatch(r"20[0-9]{2}-(0[1-9]|1[0-2])-01", self.start_date)), owner, "start_date",
              self.start_date, "must be the first day of a month, YYYY-MM-01")
        check(1 <= len(self.notify_at_percent), owner, "notify_at_percent", self.notify_at_percent,
              "needs at least one threshold")
        check(len(self.notify_at_percent) + (1 if self.forecast else 0) <= MAX_NOTIFICATIONS, owner,
              "notify_at_percent", self.notify_at_percent,
              f"Azure allows {MAX_NOTIFICATIONS} notifications per budget (one is the forecast when forecast=True)")
        for percent in self.notify_at_percent:
            check(isinstance(percent, int) and 1 <= percent <= 1000, owner, "notify_at_percent", percent,
                  "thresholds must be 1..1000 percent")
        check(len(set(self.notify_at_percent)) == len(self.notify_at_percent), owner, "notify_at_percent",
              self.notify_at_percent, "must not repeat a threshold")


class CostBudget(pulumi.ComponentResource):
    def __init__(self, name: str, args: CostBudgetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("twinserve:azure:CostBudget", name, None, opts)
        notifications = {
            f"actual-{p}-percent": consumption.NotificationArgs(
                enabled=True, operator="GreaterThanOrEqualTo", threshold=p, threshold_type="Actual",
                contact_emails=list(args.emails))
            for p in sorted(args.notify_at_percent)}
        if args.forecast:
            top = max(args.notify_at_percent)
            notifications[f"forecast-{top}-percent"] = consumption.NotificationArgs(
                enabled=True, operator="GreaterThanOrEqualTo", threshold=top, threshold_type="Forecasted",
                contact_emails=list(args.emails))
        self.budget = consumption.Budget(
            f"{name}-budget", scope=args.scope, budget_name=args.budget_name, amount=args.monthly_amount,
            category="Cost", time_grain="Monthly",
            time_period=consumption.BudgetTimePeriodArgs(start_date=f"{args.start_date}T00:00:00Z"),
            notifications=notifications,
            # The start is fixed at creation: a later run (next month, a new default) must not try to move it.
            opts=child_opts(self, ignore_changes=["timePeriod.startDate"]))
        self.register_outputs({"budget_id": self.budget.id, "amount": args.monthly_amount})
