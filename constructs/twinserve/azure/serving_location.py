"""A secondary serving location of an environment: its own resource group, and the parent of what serves
from it (workspace with its storage, key vault, registry and Log Analytics; model and ML environment; managed
online endpoint; autoscale and alerts), which the caller declares with ``opts=ResourceOptions(parent=...)``.

Everything a location holds stays in it: captured payloads and asset files in its storage account, images in
its registry, endpoint and workspace logs in its Log Analytics workspace. Nothing is replicated between
locations; each builds or imports the same image and registers the same model files itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import resources

from ..checks import Checks
from ..platform import azure as azure_platform

RESOURCE_GROUP_NAME = r"[-\w._()]{1,89}[-\w_()]"


@dataclass(frozen=True)
class ServingLocationArgs:
    """Args of :class:`ServingLocation`."""

    location: str
    """The Azure location (e.g. northeurope)."""
    resource_group_name: str
    """The location's resource group (1-90 letters, digits, '-', '_', '.', '(', ')'; not ending in '.')."""
    keep_data: bool = False
    """Protect and retain the resource group (prod): deleting it would delete the retained storage and
    registry in it."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags of the resource group."""


def _check(args: ServingLocationArgs) -> None:
    check = Checks("ServingLocationArgs")
    check.pattern("location", args.location, azure_platform.LOCATION_NAME, azure_platform.LOCATION_HINT)
    check.pattern(
        "resource_group_name",
        args.resource_group_name,
        RESOURCE_GROUP_NAME,
        "must be 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'",
    )


class ServingLocation(pulumi.ComponentResource):
    """Exposes ``location``, ``group`` (the resource group) and :meth:`complete`, which records the outputs of
    what the caller declared under it (workspace name, scoring URI)."""

    def __init__(self, name: str, args: ServingLocationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check(args)
        super().__init__("twinserve:azure:ServingLocation", name, None, opts)
        self.location = args.location
        keep = args.keep_data
        self.group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=keep, retain_on_delete=keep),
        )

    def complete(self, *, workspace_name: str, scoring_uri: pulumi.Input[str]) -> None:
        """Register the location's outputs once its children are declared."""
        self.register_outputs(
            {
                "location": self.location,
                "resource_group": self.group.name,
                "workspace_name": workspace_name,
                "scoring_uri": scoring_uri,
            }
        )
