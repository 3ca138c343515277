"""Facts both clouds share."""

from __future__ import annotations

EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s]+"
"""An e-mail receiver: SNS e-mail subscriptions, AWS Budgets subscribers, Azure action groups and
budget contacts (a plain ``local@domain.tld``; the platforms check deliverability themselves)."""
EMAIL_HINT = "must be an e-mail address"
INSTANCE_COUNT = (1, 100)
"""Instances per variant / deployment, as twinserve bounds it on both clouds (SageMaker variants and
transform jobs, Azure ML sku.capacity); the accounts' quotas per instance type are usually lower."""


# Schedules (drift monitoring, and AWS Batch runs on ecs_fargate), written once in the spec: EventBridge Scheduler's
# expression syntax (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html), which
# the Azure program maps onto an Azure ML schedule's recurrence or cron trigger.
SCHEDULE_RATE_PATTERN = r"rate\(([1-9][0-9]*) (minute|minutes|hour|hours|day|days)\)"
SCHEDULE_CRON_PATTERN = r"cron\(([^ ()]+) ([^ ()]+) ([^ ()]+) ([^ ()]+) ([^ ()]+) ([^ ()]+)\)"
SCHEDULE_HINT = "use 'rate(N hours|days)' or a 6-field 'cron(minutes hours day-of-month month day-of-week year)'"
MIN_MONITORING_INTERVAL_MINUTES = 60
"""A drift check is a batch job that starts in minutes and reads the capture since the last one:
more often than hourly costs more than it tells."""
