"""An Azure ML workspace with the dependencies it needs, secure by default.

Storage account (TLS 1.2, HTTPS only, no public blob access), key vault
(RBAC authorization, soft delete, purge protection as an option), Application Insights on a Log
Analytics workspace, container registry (admin user off), the workspace itself with a
system-assigned identity, optional managed-network isolation, a private blob container plus an
identity-based datastore for twinserve's assets, and diagnostic settings to Log Analytics.

With ``keep_data`` the storage account, the asset container and the registry are protected and
retained on delete: a stack delete never deletes model artifacts or images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import applicationinsights, containerregistry, keyvault, monitor, operationalinsights, storage
from pulumi_azure_native import machinelearningservices as ml

from ..checks import Checks
from ._common import child_opts, data_opts

MANAGED_NETWORK_MODES = {
    "disabled": "Disabled",
    "allow_internet_outbound": "AllowInternetOutbound",
    "allow_only_approved_outbound": "AllowOnlyApprovedOutbound",
}
REGISTRY_SKUS = ("Basic", "Standard", "Premium")
ASSET_CONTAINER = "twinserve-assets"
ASSET_DATASTORE = "twinserveassets"


@dataclass(frozen=True)
class MlWorkspaceArgs:
    """Args of :class:`MlWorkspace`."""

    resource_group_name: pulumi.Input[str]
    """The resource group of the workspace and its dependencies."""
    location: pulumi.Input[str]
    """Azure region of everything."""
    tenant_id: pulumi.Input[str]
    """The Entra tenant of the key vault."""
    name_prefix: str
    """Short prefix for names that must be globally unique (storage, registry: letters and digits)."""
    purge_protection: bool = True
    """Key vault purge protection: cannot be turned off once on, so it is a prod default."""
    public_network_access: bool = True
    """Whether the workspace, storage, key vault and registry are reachable over the public internet."""
    managed_network: str = "disabled"
    """Workspace managed-network isolation: disabled, allow_internet_outbound or allow_only_approved_outbound."""
    registry_sku: str = "Standard"
    """Premium is needed when public network access is off (private endpoints)."""
    outbound_fqdns: tuple[str, ...] = ()
    """With ``managed_network`` allow_only_approved_outbound: host names the managed network may reach
    besides Azure ML's required rules (FQDN rules; Azure adds a managed Azure Firewall for them, charged)."""
    firewall_sku: str = "Basic"
    """The managed network's firewall tier when ``outbound_fqdns`` is given: Basic or Standard."""
    log_retention_days: int = 30
    """Log Analytics retention (30..730 days)."""
    allow_shared_key_access: bool = True
    """pulumi-azure-native's ``storage.Blob`` uploads twinserve's assets with the account key; switch
    this off only when the assets are uploaded another way (everything else uses Entra ID)."""
    keep_data: bool = False
    """Protect and retain the storage account, asset container and registry (prod)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags of every resource."""

    @property
    def workspace_name(self) -> str:
        return f"{self.name_prefix}-mlw"


def _check(args: MlWorkspaceArgs) -> None:
    check = Checks("MlWorkspaceArgs")
    check.pattern(
        "name_prefix",
        args.name_prefix,
        r"[a-z][a-z0-9]{0,15}",
        "must be 1-16 lower-case letters and digits, starting with a letter (storage and registry names)",
    )
    check.one_of("managed_network", args.managed_network, MANAGED_NETWORK_MODES)
    check.one_of("registry_sku", args.registry_sku, REGISTRY_SKUS)
    check.that(
        args.public_network_access or args.registry_sku == "Premium",
        "registry_sku",
        args.registry_sku,
        "must be Premium when public_network_access is off (only Premium registries take private endpoints)",
    )
    check.that(
        args.public_network_access or args.managed_network != "disabled",
        "managed_network",
        args.managed_network,
        "must be allow_internet_outbound or allow_only_approved_outbound when public_network_access is off: "
        "managed deployments and compute reach the private storage, key vault and registry through the "
        "workspace's managed network",
    )
    check.range("log_retention_days", args.log_retention_days, 30, 730, " days")
    check.that(
        not args.outbound_fqdns or args.managed_network == "allow_only_approved_outbound",
        "outbound_fqdns",
        args.outbound_fqdns,
        "FQDN rules are for managed_network allow_only_approved_outbound (the other modes reach the internet anyway)",
    )
    check.one_of("firewall_sku", args.firewall_sku, ("Basic", "Standard"))


class MlWorkspace(pulumi.ComponentResource):
    """Exposes ``workspace_name`` (plain string), ``workspace``, ``storage_account``, ``blob_endpoint``
    (the storage account's, ``https://<account>.blob.<suffix>/``), ``registry``, ``log_analytics``,
    ``asset_container_name`` and ``asset_datastore_name``."""

    def __init__(self, name: str, args: MlWorkspaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check(args)
        super().__init__("twinserve:azure:MlWorkspace", name, None, opts)
        child = child_opts(self)
        group, location, tags = args.resource_group_name, args.location, args.tags
        public = "Enabled" if args.public_network_access else "Disabled"
        self.workspace_name = args.workspace_name

        self.storage_account = storage.StorageAccount(
            f"{name}-storage",
            resource_group_name=group,
            location=location,
            tags=tags,
            account_name=f"{args.name_prefix}st",
            kind="StorageV2",
            sku=storage.SkuArgs(name="Standard_LRS"),
            minimum_tls_version="TLS1_2",
            allow_blob_public_access=False,
            allow_shared_key_access=args.allow_shared_key_access,
            enable_https_traffic_only=True,
            public_network_access=public,
            opts=data_opts(self, args.keep_data),
        )
        self.blob_endpoint = self.storage_account.primary_endpoints.apply(lambda endpoints: endpoints.blob)
        self.asset_container = storage.BlobContainer(
            f"{name}-asset-container",
            resource_group_name=group,
            account_name=self.storage_account.name,
            container_name=ASSET_CONTAINER,
            public_access="None",
            opts=data_opts(self, args.keep_data),
        )
        self.asset_container_name = ASSET_CONTAINER
        self.key_vault = keyvault.Vault(
            f"{name}-kv",
            resource_group_name=group,
            location=location,
            tags=tags,
            vault_name=f"{args.name_prefix}-kv",
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family="A", name="standard"),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=90,
                enable_purge_protection=True if args.purge_protection else None,
                public_network_access=public,
            ),
            opts=child,
        )
        self.log_analytics = operationalinsights.Workspace(
            f"{name}-logs",
            resource_group_name=group,
            location=location,
            tags=tags,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        self.app_insights = applicationinsights.Component(
            f"{name}-appi",
            resource_group_name=group,
            location=location,
            tags=tags,
            kind="web",
            application_type="web",
            workspace_resource_id=self.log_analytics.id,
            ingestion_mode="LogAnalytics",
            opts=child,
        )
        self.registry = containerregistry.Registry(
            f"{name}-acr",
            resource_group_name=group,
            location=location,
            tags=tags,
            registry_name=f"{args.name_prefix}acr",
            sku=containerregistry.SkuArgs(name=args.registry_sku),
            admin_user_enabled=False,
            public_network_access=public,
            opts=data_opts(self, args.keep_data),
        )
        self.workspace = ml.Workspace(
            f"{name}-mlw",
            resource_group_name=group,
            location=location,
            tags=tags,
            workspace_name=args.workspace_name,
            identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
            storage_account=self.storage_account.id,
            key_vault=self.key_vault.id,
            application_insights=self.app_insights.id,
            container_registry=self.registry.id,
            public_network_access=public,
            system_datastores_auth_mode="identity",
            managed_network=ml.ManagedNetworkSettingsArgs(
                isolation_mode=MANAGED_NETWORK_MODES[args.managed_network],
                outbound_rules={
                    f"fqdn-{i}": ml.FqdnOutboundRuleArgs(type="FQDN", category="UserDefined", destination=fqdn)
                    for i, fqdn in enumerate(args.outbound_fqdns)
                }
                or None,
                firewall_sku=args.firewall_sku if args.outbound_fqdns else None,
            ),
            sku=ml.SkuArgs(name="Basic", tier="Basic"),
            opts=child,
        )
        # twinserve's own assets (model files, image build context, batch driver) live in a private
        # container reached through the workspace identity: no keys or SAS in the datastore.
        self.asset_datastore = ml.Datastore(
            f"{name}-datastore",
            resource_group_name=group,
            workspace_name=args.workspace_name,
            name=ASSET_DATASTORE,
            properties=ml.AzureBlobDatastoreArgs(
                datastore_type="AzureBlob",
                account_name=self.storage_account.name,
                container_name=ASSET_CONTAINER,
                credentials=ml.NoneDatastoreCredentialsArgs(credentials_type="None"),
                service_data_access_auth_identity="WorkspaceSystemAssignedIdentity",
            ),
            opts=child_opts(self, depends_on=[self.workspace, self.asset_container]),
        )
        self.asset_datastore_name = ASSET_DATASTORE

        all_logs = [monitor.DiagnosticsLogSettingsArgs(category_group="allLogs", enabled=True)]
        all_metrics = [monitor.DiagnosticsMetricSettingsArgs(category="AllMetrics", enabled=True)]
        for short, target in (("mlw", self.workspace), ("kv", self.key_vault), ("acr", self.registry)):
            monitor.DiagnosticSetting(
                f"{name}-{short}-diag",
                name="to-log-analytics",
                resource_uri=target.id,
                workspace_id=self.log_analytics.id,
                logs=all_logs,
                metrics=all_metrics,
                opts=child,
            )

        # The storage account's resource logs live on its blob service (reads, writes, deletes of the
        # model files and captured payloads); the account itself has metrics only.
        monitor.DiagnosticSetting(
            f"{name}-blob-diag",
            name="to-log-analytics",
            resource_uri=pulumi.Output.concat(self.storage_account.id, "/blobServices/default"),
            workspace_id=self.log_analytics.id,
            logs=all_logs,
            metrics=[monitor.DiagnosticsMetricSettingsArgs(category="Transaction", enabled=True)],
            opts=child,
        )

        self.register_outputs(
            {
                "workspace_id": self.workspace.id,
                "workspace_name": args.workspace_name,
                "registry_id": self.registry.id,
                "registry_login_server": self.registry.login_server,
                "storage_account_id": self.storage_account.id,
                "log_analytics_id": self.log_analytics.id,
            }
        )
