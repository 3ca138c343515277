"""Private networking and audit on Azure (issue 14): what a private environment declares - prod by the
environment policy - and the platform rules it relies on, each with its source. Plans come from Pulumi's
mock engine (no CLI or subscription here)."""

from __future__ import annotations

import pytest
import yaml
from azure_plan_queries import DEPLOY_SPEC, ML, endpoint_groups, of_type, one
from test_azure_update_rules import plan_of, sample

from twinserve.azure import PrivateEndpointTarget, PrivateNetwork, PrivateNetworkArgs
from twinserve.change_plan.azure_diff import compare_plans
from twinserve.change_plan.model import Section
from twinserve.platform import azure as azure_platform
from twinserve.spec import SpecError, load_spec, parse_spec

NET = "azure-native:network:"
DNS = "azure-native:privatedns:"


@pytest.fixture(scope="module")
def prod(plan, sample_model):
    return plan(DEPLOY_SPEC, "prod")


def test_prod_is_private_by_the_environment_policy_and_dev_staging_stay_public(plan, sample_model):
    assert load_spec(DEPLOY_SPEC).environment("prod").azure.public_network_access is None  # the policy decides
    for env in ("dev", "staging"):
        planned = plan(DEPLOY_SPEC, env)
        assert not of_type(planned, NET + "PrivateEndpoint"), env
        assert one(planned, ML + "Workspace")["inputs"]["publicNetworkAccess"] == "Enabled"


def test_prod_has_no_public_endpoint(prod):
    # Workspace, storage, key vault and registry refuse public traffic; so does the managed online endpoint
    # (publicNetworkAccess is for managed endpoints only; the Kubernetes one is behind the cluster's internal
    # load balancer: https://learn.microsoft.com/azure/machine-learning/reference-yaml-endpoint-online).
    assert one(prod, ML + "Workspace")["inputs"]["publicNetworkAccess"] == "Disabled"
    assert one(prod, "azure-native:storage:StorageAccount")["inputs"]["publicNetworkAccess"] == "Disabled"
    assert one(prod, "azure-native:keyvault:Vault")["inputs"]["properties"]["publicNetworkAccess"] == "Disabled"
    registry = one(prod, "azure-native:containerregistry:Registry")["inputs"]
    assert registry["publicNetworkAccess"] == "Disabled"
    # Private endpoints need the Premium registry tier (container-registry-private-link).
    assert registry["sku"]["name"] == azure_platform.REGISTRY_SKU_FOR_PRIVATE_ENDPOINTS == "Premium"
    groups = {g["deployments"][0]["inputs"]["properties"]["endpointComputeType"]: g for g in endpoint_groups(prod)}
    managed = groups["Managed"]
    assert managed["endpoint"]["inputs"]["properties"]["publicNetworkAccess"] == "Disabled"
    assert managed["template"]["properties"]["publicNetworkAccess"] == "Disabled"
    kubernetes = one(prod, "kubernetesconfiguration:Extension".join(["azure-native:", ""]))
    assert kubernetes["inputs"]["configurationSettings"]["scoringFe.serviceType.internalLoadBalancer"] == "True"


def test_private_endpoints_and_their_group_ids(prod):
    # Sub-resources (groupId) per service: https://learn.microsoft.com/azure/private-link/private-endpoint-overview
    endpoints = {r["inputs"]["privateEndpointName"]: r for r in of_type(prod, NET + "PrivateEndpoint")}
    found = {
        name.rsplit("-pe-", 1)[1]: (
            r["inputs"]["privateLinkServiceConnections"][0]["groupIds"],
            r["inputs"]["privateLinkServiceConnections"][0]["privateLinkServiceId"],
        )
        for name, r in endpoints.items()
    }
    assert {k: v[0] for k, v in found.items()} == {
        "workspace": ["amlworkspace"],
        "blob": ["blob"],
        "file": ["file"],
        "vault": ["vault"],
        "registry": ["registry"],
    }
    assert found["blob"][1] == found["file"][1] == "iris-prod-storage-id"
    assert found["workspace"][1] == "iris-prod-mlw-id"
    subnet = one(prod, NET + "Subnet", **{"inputs.subnetName": "private-endpoints"})
    assert all(r["inputs"]["subnet"]["id"] == subnet["name"] + "-id" for r in endpoints.values())


def test_private_dns_zones_are_linked_to_the_network_and_fed_by_zone_groups(prod):
    # https://learn.microsoft.com/azure/private-link/private-endpoint-dns (Azure ML: api.azureml.ms and
    # notebooks.azure.net; storage blob and file; vaultcore; azurecr).
    zones = {r["inputs"]["privateZoneName"]: r for r in of_type(prod, DNS + "PrivateZone")}
    assert set(zones) == {
        "privatelink.api.azureml.ms",
        "privatelink.notebooks.azure.net",
        "privatelink.blob.core.windows.net",
        "privatelink.file.core.windows.net",
        "privatelink.vaultcore.azure.net",
        "privatelink.azurecr.io",
    }
    assert all(z["inputs"]["location"] == "global" for z in zones.values())
    vnet = one(prod, NET + "VirtualNetwork")
    links = of_type(prod, DNS + "VirtualNetworkLink")
    assert sorted(link["inputs"]["privateZoneName"] for link in links) == sorted(zones)
    assert all(link["inputs"]["virtualNetwork"]["id"] == vnet["name"] + "-id" for link in links)
    assert all(link["inputs"]["registrationEnabled"] is False for link in links)
    zone_ids = {z["name"] + "-id": name for name, z in zones.items()}
    groups = {
        g["inputs"]["privateEndpointName"].rsplit("-pe-", 1)[1]: sorted(
            zone_ids[c["privateDnsZoneId"]] for c in g["inputs"]["privateDnsZoneConfigs"]
        )
        for g in of_type(prod, NET + "PrivateDnsZoneGroup")
    }
    assert groups == {
        "workspace": ["privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"],
        "blob": ["privatelink.blob.core.windows.net"],
        "file": ["privatelink.file.core.windows.net"],
        "vault": ["privatelink.vaultcore.azure.net"],
        "registry": ["privatelink.azurecr.io"],
    }


def test_prod_workspace_allows_only_approved_outbound_with_the_builds_fqdns(prod):
    # Managed network (https://learn.microsoft.com/azure/machine-learning/how-to-managed-network): the
    # image build pulls the base image from Docker Hub and requirements from PyPI; FQDN rules need the
    # managed firewall.
    network = one(prod, ML + "Workspace")["inputs"]["managedNetwork"]
    assert network["isolationMode"] == "AllowOnlyApprovedOutbound"
    assert sorted(rule["destination"] for rule in network["outboundRules"].values()) == sorted(
        azure_platform.BUILD_OUTBOUND_FQDNS
    )
    assert all(rule["type"] == "FQDN" for rule in network["outboundRules"].values())
    assert network["firewallSku"] == "Basic"


def test_diagnostic_settings_and_their_categories(prod):
    # Online endpoint categories: Azure Monitor "Supported logs for .../workspaces/onlineEndpoints".
    settings = {r["name"]: r["inputs"] for r in of_type(prod, "azure-native:monitor:DiagnosticSetting")}
    for short in ("managed", "k8s"):
        endpoint = settings[f"iris-prod-{short}-diag"]
        assert [log["category"] for log in endpoint["logs"]] == [
            "AmlOnlineEndpointConsoleLog",
            "AmlOnlineEndpointTrafficLog",
            "AmlOnlineEndpointEventLog",
        ]
        assert endpoint["workspaceId"] == "iris-prod-logs-id"
    for short in ("mlw", "kv", "acr", "blob"):
        assert settings[f"iris-prod-{short}-diag"]["logs"] == [{"categoryGroup": "allLogs", "enabled": True}]
    assert settings["iris-prod-blob-diag"]["resourceUri"] == "iris-prod-storage-id/blobServices/default"


def test_prod_sends_the_subscription_activity_log_by_its_stack_config(prod, plan):
    # Pulumi.prod.yaml sets twinserve:subscriptionActivityLog; the others do not own their subscription.
    (activity,) = of_type(prod, "azure-native:monitor:SubscriptionDiagnosticSetting")
    assert activity["inputs"]["name"] == "iris-prod-activity-log"
    assert [log["category"] for log in activity["inputs"]["logs"]] == list(azure_platform.ACTIVITY_LOG_CATEGORIES)
    assert activity["inputs"]["workspaceId"] == "iris-prod-logs-id"
    assert not of_type(plan(DEPLOY_SPEC, "dev"), "azure-native:monitor:SubscriptionDiagnosticSetting")


def test_prod_aks_api_server_admits_only_the_clusters_own_egress_and_nodes_sit_in_the_network(prod):
    # https://learn.microsoft.com/azure/aks/api-server-authorized-ip-ranges (Standard load balancer; not with
    # private clusters). The nodes resolve the private endpoints through the zones linked to their network.
    cluster = one(prod, "azure-native:containerservice:ManagedCluster")["inputs"]
    assert cluster["apiServerAccessProfile"]["authorizedIPRanges"] == ["0.0.0.0/32"]
    assert cluster["networkProfile"]["loadBalancerSku"] == "standard"
    nodes = one(prod, NET + "Subnet", **{"inputs.subnetName": "nodes"})
    assert cluster["agentPoolProfiles"][0]["vnetSubnetID"] == nodes["name"] + "-id"
    role = one(prod, "azure-native:authorization:RoleAssignment", **{"inputs.scope": nodes["name"] + "-id"})
    assert role["inputs"]["roleDefinitionId"].endswith("4d97b98b-1d4f-4787-a291-c67834d212e7")  # Network Contributor


def test_authorized_ranges_from_the_spec(sample_model):
    raw = sample()
    raw["environments"]["dev"]["azure"] = {"aks": {"api_server_authorized_ip_ranges": ["203.0.113.0/24"]}}
    cluster = one(plan_of(raw), "azure-native:containerservice:ManagedCluster")["inputs"]
    assert cluster["apiServerAccessProfile"]["authorizedIPRanges"] == ["203.0.113.0/24"]


def test_a_private_network_without_the_managed_network_is_refused_at_the_field():
    # Managed deployments and compute reach private storage/vault/registry through the managed network.
    raw = sample()
    raw["environments"]["dev"]["azure"] = {"public_network_access": False, "managed_network": "disabled"}
    with pytest.raises(SpecError) as error:
        parse_spec(raw)
    (issue,) = error.value.issues
    assert issue.path == "environments.dev.azure.managed_network" and "allow_only_approved_outbound" in issue.message


def test_prod_default_without_the_managed_network_is_refused_by_the_program(sample_model):
    raw = sample()
    raw["environments"]["prod"]["azure"] = {"managed_network": "disabled"}
    with pytest.raises(SpecError) as error:
        plan_of(raw, "prod")
    assert "environments.prod.azure.managed_network" in str(error.value)


@pytest.mark.parametrize(
    "azure, path",
    [
        ({"network_address_space": "10.60.0.0/24"}, "azure.network_address_space"),
        ({"network_address_space": "8.8.0.0/16"}, "azure.network_address_space"),
        ({"aks": {"api_server_authorized_ip_ranges": ["not-a-range"]}}, "azure.aks.api_server_authorized_ip_ranges.0"),
        ({"aks": {"api_server_authorized_ip_ranges": []}}, "azure.aks.api_server_authorized_ip_ranges"),
    ],
)
def test_network_ranges_are_checked(azure, path):
    raw = sample()
    raw["environments"]["dev"]["azure"] = azure
    with pytest.raises(SpecError) as error:
        parse_spec(raw)
    assert [i.path for i in error.value.issues] == [f"environments.dev.{path}"]


def test_twinserve_plan_refuses_a_managed_network_going_down(sample_model):
    # "Once you enable managed virtual network isolation, you can't disable it", and approved-only cannot go
    # back to internet outbound (https://learn.microsoft.com/azure/machine-learning/how-to-managed-network).
    private, public = sample(), sample()
    private["environments"]["dev"]["azure"] = {"public_network_access": False}
    public["environments"]["dev"]["azure"] = {
        "public_network_access": False,
        "managed_network": "allow_internet_outbound",
    }
    section = Section("iris", "dev", "azure", "test")
    compare_plans(section, plan_of(private), plan_of(public), stack="dev", project="twinserve")
    assert [f.rule for f in section.flags if f.severity == "refused"] == ["azureml-managed-network-down"]
    upward = Section("iris", "dev", "azure", "test")
    compare_plans(upward, plan_of(public), plan_of(private), stack="dev", project="twinserve")
    assert "azureml-managed-network-down" not in [f.rule for f in upward.flags]


def test_sample_spec_keeps_prod_private_only_through_the_policy():
    raw = yaml.safe_load(DEPLOY_SPEC.read_text())
    assert "public_network_access" not in (raw["environments"]["prod"].get("azure") or {})


@pytest.mark.parametrize(
    "change, field",
    [
        ({"address_space": "10.60.0.0/24"}, "PrivateNetworkArgs.address_space"),
        ({"address_space": "20.0.0.0/16"}, "PrivateNetworkArgs.address_space"),
        (
            {"targets": [PrivateEndpointTarget("blob", "id", "blob", ("privatelink.blob.core.windows.net",))]},
            "PrivateNetworkArgs.targets[0].dns_zones",
        ),
    ],
)
def test_private_network_component_checks_its_args(change, field):
    args = {"resource_group_name": "rg", "location": "westeurope", "name_prefix": "x", **change}
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        PrivateNetwork("x", PrivateNetworkArgs(**args))


def test_going_private_updates_the_services_in_place(sample_model):
    # publicNetworkAccess is an updatable property of each service (workspace, storage, key vault, registry;
    # a registry SKU moves up in place: https://learn.microsoft.com/azure/container-registry/container-registry-skus),
    # and a managed network may move up (how-to-managed-network): nothing is replaced.
    public, private = sample(), sample()
    private["environments"]["dev"]["azure"] = {"public_network_access": False}
    section = Section("iris", "dev", "azure", "test")
    compare_plans(section, plan_of(public), plan_of(private), stack="dev", project="twinserve")
    changed = {c.id: c.action for c in section.changes}
    for name in ("iris-dev-mlw", "iris-dev-storage", "iris-dev-kv", "iris-dev-acr"):
        assert changed[name] == "update", name
    assert not [f for f in section.flags if f.severity == "refused"]
