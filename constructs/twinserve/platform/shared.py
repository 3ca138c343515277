"""Facts both clouds share."""

from __future__ import annotations

EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s]+"
"""An e-mail receiver: SNS e-mail subscriptions, AWS Budgets subscribers, Azure action groups and
budget contacts (a plain ``local@domain.tld``; the platforms check deliverability themselves)."""
EMAIL_HINT = "must be an e-mail address"
INSTANCE_COUNT = (1, 100)
"""Instances per variant / deployment, as twinserve bounds it on both clouds (SageMaker variants and
transform jobs, Azure ML sku.capacity); the accounts' quotas per instance type are usually lower."""
