"""Small helpers shared by the Azure components: argument checks and built-in role ids."""

from __future__ import annotations

import re
from typing import Any

import pulumi

# Built-in Azure role definition ids (the same in every tenant).
ROLE_ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ROLE_STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
ROLE_AZUREML_METRICS_WRITER = "635dd51f-9968-44d3-b7fb-6d9a6bd613ae"

# What the action group and the budget accept as an e-mail receiver.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Azure ML online/batch endpoint names: 3-32 characters, letters, digits and '-', starting with a letter.
ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
# Azure ML deployment names: 3-32 characters of the same kind.
DEPLOYMENT_NAME = ENDPOINT_NAME


def fail(owner: str, field: str, value: Any, allowed: str) -> None:
    """Raise the ValueError every args class uses: which field, what value, what is allowed."""
    raise ValueError(f"{owner}.{field}: {allowed} (got {value!r})")


def check(condition: bool, owner: str, field: str, value: Any, allowed: str) -> None:
    if not condition:
        fail(owner, field, value, allowed)


def role_definition(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("/subscriptions/", subscription_id,
                                "/providers/Microsoft.Authorization/roleDefinitions/", role)


def child_opts(parent: pulumi.Resource, **kwargs: Any) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, **kwargs)


def data_opts(parent: pulumi.Resource, keep: bool, **kwargs: Any) -> pulumi.ResourceOptions:
    """Options of a resource that holds data: with ``keep`` it is protected and retained on delete,
    so neither a stack delete nor a replacement can remove model artifacts or images."""
    return pulumi.ResourceOptions(parent=parent, protect=keep, retain_on_delete=keep, **kwargs)


def arm_template(resource: dict[str, Any]) -> dict[str, Any]:
    """An ARM deployment template declaring ``resource`` alone (the endpoints' traffic/defaults updates)."""
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [resource],
    }
