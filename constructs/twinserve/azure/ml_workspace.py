"""An Azure ML workspace with the dependencies it needs, secure by default."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import applicationinsights, containerregistry, keyvault, operationalinsights, storage
from pulumi_azure_native import machinelearningservices as ml


@dataclass
class MlWorkspaceArgs:
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    name_prefix: str
    """Short prefix for names that must be globally unique (storage, registry: letters and digits)."""
    purge_protection: bool = True
    """Key vault purge protection: cannot be turned off once on, so it is a prod default."""
    public_network_access: bool = True
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name_prefix.isalnum() or not self.name_prefix.islower() or len(self.name_prefix) > 16:
            raise ValueError(f"MlWorkspaceArgs.name_prefix: must be 1-16 lower-case letters and digits (got {self.name_prefix!r})")


class MlWorkspace(pulumi.ComponentResource):
    def __init__(self, name: str, args: MlWorkspaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("twinserve:azure:MlWorkspace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rg, loc, tags = args.resource_group_name, args.location, args.tags
        public = "Enabled" if args.public_network_access else "Disabled"

        self.storage_account = storage.StorageAccount(
            f"{name}-storage", resource_group_name=rg, location=loc, tags=tags,
            account_name=f"{args.name_prefix}st", kind="StorageV2",
            sku=storage.SkuArgs(name="Standard_LRS"),
            minimum_tls_version="TLS1_2", allow_blob_public_access=False,
            enable_https_traffic_only=True, opts=child)
        self.key_vault = keyvault.Vault(
            f"{name}-kv", resource_group_name=rg, location=loc, tags=tags,
            vault_name=f"{args.name_prefix}-kv",
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id, sku=keyvault.SkuArgs(family="A", name="standard"),
                enable_rbac_authorization=True, enable_soft_delete=True,
                enable_purge_protection=True if args.purge_protection else None,
                public_network_access=public),
            opts=child)
        self.log_analytics = operationalinsights.Workspace(
            f"{name}-logs", resource_group_name=rg, location=loc, tags=tags,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"), retention_in_days=30, opts=child)
        self.app_insights = applicationinsights.Component(
            f"{name}-appi", resource_group_name=rg, location=loc, tags=tags, kind="web",
            application_type="web", workspace_resource_id=self.log_analytics.id,
            ingestion_mode="LogAnalytics", opts=child)
        self.registry = containerregistry.Registry(
            f"{name}-acr", resource_group_name=rg, location=loc, tags=tags,
            registry_name=f"{args.name_prefix}acr", sku=containerregistry.SkuArgs(name="Premium"),
            admin_user_enabled=False, public_network_access=public, opts=child)
        self.workspace = ml.Workspace(
            f"{name}-mlw", resource_group_name=rg, location=loc, tags=tags,
            workspace_name=f"{args.name_prefix}-mlw",
            identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
            storage_account=self.storage_account.id, key_vault=self.key_vault.id,
            application_insights=self.app_insights.id, container_registry=self.registry.id,
            public_network_access=public, sku=ml.SkuArgs(name="Basic", tier="Basic"), opts=child)

        self.workspace_name = self.workspace.name
        self.register_outputs({
            "workspace_id": self.workspace.id, "workspace_name": self.workspace.name,
            "registry_login_server": self.registry.login_server,
        })
