"""Small helpers shared by the Azure components: built-in role ids, resource options, ARM templates."""

from __future__ import annotations

from typing import Any

import pulumi

# Built-in Azure role definition ids (the same in every tenant).
ROLE_ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ROLE_STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
ROLE_AZUREML_METRICS_WRITER = "635dd51f-9968-44d3-b7fb-6d9a6bd613ae"
ROLE_NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
# Includes Microsoft.MachineLearningServices/workspaces/onlineEndpoints/score/action (the API front's identity).
ROLE_AZUREML_DATA_SCIENTIST = "f6c7c914-8db3-469d-8ca1-694a8f32e121"
# The REST API version the ARM templates speak: the one pulumi-azure-native 3.x uses for
# machinelearningservices, so the templates and the typed resources agree on the schema.
ML_API_VERSION = "2025-12-01"


def role_definition(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(
        "/subscriptions/", subscription_id, "/providers/Microsoft.Authorization/roleDefinitions/", role
    )


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
