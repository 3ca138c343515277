"""Azure facts: Azure ML online and batch endpoints, AKS inference clusters, Azure Monitor, budgets.

Sources: the Azure ML REST API (machinelearningservices 2025-12-01), "Azure Machine Learning
inference on Kubernetes" (AKS requirements), "Safe rollout for online endpoints" (mirror traffic),
Azure Monitor autoscale and metric-alert references, Cost Management budgets.
"""

from __future__ import annotations

import hashlib
import re

from .shared import SCHEDULE_CRON_PATTERN, SCHEDULE_RATE_PATTERN

VM_SIZE_PATTERN = r"Standard_[A-Za-z0-9_]+"
VM_SIZE_HINT = "must be an Azure VM size such as 'Standard_DS3_v2'"

# --------------------------------------------------------------------------- online and batch endpoints

ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
"""Online and batch endpoint names: 3-32 letters, digits and '-', starting with a letter."""
DEPLOYMENT_NAME = ENDPOINT_NAME
"""Deployment names follow the endpoint rule (3-32 characters)."""
NAME_HINT = "must be 3-32 letters, digits and '-', starting with a letter"
AUTH_MODES = {"key": "Key", "aml_token": "AMLToken", "aad_token": "AADToken"}
"""Spec/args word -> REST value."""
KUBERNETES_AUTH_MODES = ("key", "aml_token")
"""Microsoft Entra token auth (aad_token) is for managed online endpoints only."""
APIM_SKUS = {"Consumption": 0, "BasicV2": 1, "StandardV2": 1}
"""API Management tiers twinserve offers -> the capacity (units) it creates them with: Consumption takes 0,
a v2 tier one unit. The classic tiers (Developer, Basic, Standard, Premium) take 30-45 minutes to create."""
APIM_SCORING_AUDIENCE = "https://ml.azure.com"
"""The token audience a managed online endpoint with Microsoft Entra token auth (AADToken) accepts."""
APIM_MAX_BACKEND_TIMEOUT_SECONDS = 240
"""``forward-request timeout`` beyond this may not be honoured: the network drops idle connections
(https://learn.microsoft.com/azure/api-management/forward-request-policy)."""
APIM_BACKEND_TIMEOUT_MARGIN_SECONDS = 5
"""APIM waits this much longer than the deployment's request timeout, so the endpoint's own answer
(the container's 504 a second before its deadline, Azure ML's 408) reaches the caller, not APIM's."""
APIM_VNET_SOURCE = "https://learn.microsoft.com/azure/api-management/virtual-network-concepts"
MAX_MIRROR_PERCENT = 50
"""Mirror traffic: one deployment, at most 50 % of live requests, managed endpoints only."""
MANAGED_MAX_REQUEST_TIMEOUT_MS = 180_000
"""request_settings.request_timeout of a managed online deployment (Kubernetes allows 300 s)."""
KUBERNETES_DEFAULT_INSTANCE_TYPE = "defaultinstancetype"
"""The instance type the AzureML extension creates on an attached cluster (1 CPU / 2 GiB by default);
Kubernetes deployments name it instead of a VM size."""
KUBERNETES_GPU_INSTANCE_TYPE = "gpuinstancetype"
"""The instance type twinserve declares on an attached cluster with a GPU node pool: pods request
``nvidia.com/gpu`` and are placed on that pool by its node label
(https://learn.microsoft.com/azure/machine-learning/how-to-manage-kubernetes-instance-types)."""
GPU_NODE_LABEL = {"accelerator": "nvidia"}
"""The label of twinserve's AKS GPU node pool, which the GPU instance type selects."""

# --------------------------------------------------------------------------- GPU VM sizes

# NVIDIA GPU sizes Azure ML managed online endpoints and AKS offer that run a CUDA 12 image, with their
# GPU count (https://learn.microsoft.com/azure/machine-learning/reference-managed-online-endpoints-vm-sku-list).
GPU_VM_SIZES = {
    "Standard_NC4as_T4_v3": 1,
    "Standard_NC8as_T4_v3": 1,
    "Standard_NC16as_T4_v3": 1,
    "Standard_NC64as_T4_v3": 4,
    "Standard_NC24ads_A100_v4": 1,
    "Standard_NC48ads_A100_v4": 2,
    "Standard_NC96ads_A100_v4": 4,
    "Standard_NC40ads_H100_v5": 1,
    "Standard_NC80adis_H100_v5": 2,
}
RETIRED_VM_SIZE = re.compile(r"^Standard_(NC\d+r?(s_v2|s_v3)?|ND\d+r?s|NV\d+)(_Promo)?$")
"""GPU sizes Azure has retired: NC, NCv2, ND and NV (2023-09-06) and NCv3 (2025-09-30); a deployment on
one fails (https://learn.microsoft.com/azure/virtual-machines/sizes/retirement/retired-sizes-list)."""


def is_gpu_vm(vm_size: str) -> bool:
    return vm_size in GPU_VM_SIZES


def has_gpu(vm_size: str) -> bool:
    """Any N-series size (NC, ND, NG, NV): GPU hardware, current or not."""
    return re.match(r"^Standard_N[CDGV]", vm_size) is not None


# --------------------------------------------------------------------------- AKS inference cluster

AKS_MIN_NODES = 3
AKS_MIN_VCPUS = 12
"""Azure ML inference on AKS needs at least 3 nodes and 12 vCPU (e.g. 3 x Standard_D4s_v3)."""

# vCPUs of common Azure sizes whose name does not carry the core count.
_VCPUS = {
    "Standard_DS2_v2": 2,
    "Standard_DS3_v2": 4,
    "Standard_DS4_v2": 8,
    "Standard_DS5_v2": 16,
    "Standard_D2_v2": 2,
    "Standard_D3_v2": 4,
    "Standard_D4_v2": 8,
    "Standard_D5_v2": 16,
    "Standard_F2s_v2": 2,
    "Standard_F4s_v2": 4,
    "Standard_F8s_v2": 8,
    "Standard_F16s_v2": 16,
}
# From the v3 generation on (and Fsv2), the number after the family letters is the vCPU count.
_VCPU_IN_NAME = re.compile(r"^Standard_[A-Z]+(\d+)[a-z]*_v[3-9]$")


# GPU sizes name their accelerator after the vCPU count: Standard_NC8as_T4_v3 has 8 vCPUs.
_GPU_VCPU_IN_NAME = re.compile(r"^Standard_N[CDV](\d+)[a-z]*_[A-Z0-9]+_v\d$")


def azure_vm_vcpus(vm_size: str) -> int | None:
    """vCPUs of an Azure VM size, or None when the name does not say."""
    if vm_size in _VCPUS:
        return _VCPUS[vm_size]
    match = _VCPU_IN_NAME.match(vm_size) or _GPU_VCPU_IN_NAME.match(vm_size)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------- Azure Monitor

AUTOSCALE_COOLDOWN_SECONDS = (60, 7 * 24 * 3600)
"""A scale action's cooldown is 1 minute .. 1 week."""
AUTOSCALE_MIN_WINDOW_SECONDS = 300
"""The metric trigger's time window is at least 5 minutes."""
ALERT_WINDOWS = {
    60: "PT1M",
    300: "PT5M",
    900: "PT15M",
    1800: "PT30M",
    3600: "PT1H",
    21600: "PT6H",
    43200: "PT12H",
    86400: "PT24H",
}
"""Window sizes metric alerts accept, in seconds."""
ALERT_FREQUENCIES = {60: "PT1M", 300: "PT5M", 900: "PT15M", 1800: "PT30M", 3600: "PT1H"}
"""Evaluation frequencies metric alerts accept, in seconds."""
ALERT_SEVERITIES = (0, 4)
"""0 critical .. 4 verbose."""

# --------------------------------------------------------------------------- Cost Management

BUDGET_MAX_NOTIFICATIONS = 5
"""Notifications per budget."""

# --------------------------------------------------------------------------- what a change does (`twinserve plan`)
# pulumi-azure-native has no offline metadata in its Python SDK, so the inputs that force a new
# resource are written here for the types twinserve declares. An ARM resource id is built from the
# resource's name and its parents' names (the URL path parameters of its REST API), so a change of
# one is a different resource; azure-native replaces it, deleting the old one first when it is
# explicitly named (provider Diff: ``deleteBeforeReplace`` unless the name was generated).

ARM_NAME_INPUTS: dict[str, tuple[str, ...]] = {
    "azure-native:resources:ResourceGroup": ("resourceGroupName",),
    "azure-native:resources:Deployment": ("resourceGroupName", "deploymentName"),
    "azure-native:storage:StorageAccount": ("resourceGroupName", "accountName"),
    "azure-native:storage:BlobContainer": ("resourceGroupName", "accountName", "containerName"),
    "azure-native:storage:Blob": ("resourceGroupName", "accountName", "containerName", "blobName"),
    "azure-native:keyvault:Vault": ("resourceGroupName", "vaultName"),
    "azure-native:operationalinsights:Workspace": ("resourceGroupName", "workspaceName"),
    "azure-native:applicationinsights:Component": ("resourceGroupName", "resourceName"),
    "azure-native:containerregistry:Registry": ("resourceGroupName", "registryName"),
    "azure-native:managedidentity:UserAssignedIdentity": ("resourceGroupName", "resourceName"),
    "azure-native:authorization:RoleAssignment": ("scope", "roleAssignmentName"),
    "azure-native:containerservice:ManagedCluster": ("resourceGroupName", "resourceName"),
    "azure-native:containerservice:AgentPool": ("resourceGroupName", "resourceName", "agentPoolName"),
    "azure-native:containerservice:ManagedNamespace": ("resourceGroupName", "resourceName", "managedNamespaceName"),
    "azure-native:kubernetesconfiguration:Extension": (
        "resourceGroupName",
        "clusterRp",
        "clusterResourceName",
        "clusterName",
        "extensionName",
    ),
    "azure-native:machinelearningservices:Workspace": ("resourceGroupName", "workspaceName"),
    "azure-native:machinelearningservices:Datastore": ("resourceGroupName", "workspaceName", "name"),
    "azure-native:machinelearningservices:ModelVersion": ("resourceGroupName", "workspaceName", "name", "version"),
    "azure-native:machinelearningservices:EnvironmentVersion": (
        "resourceGroupName",
        "workspaceName",
        "name",
        "version",
    ),
    "azure-native:machinelearningservices:CodeVersion": ("resourceGroupName", "workspaceName", "name", "version"),
    "azure-native:machinelearningservices:Compute": ("resourceGroupName", "workspaceName", "computeName"),
    "azure-native:machinelearningservices:OnlineEndpoint": ("resourceGroupName", "workspaceName", "endpointName"),
    "azure-native:machinelearningservices:OnlineDeployment": (
        "resourceGroupName",
        "workspaceName",
        "endpointName",
        "deploymentName",
    ),
    "azure-native:machinelearningservices:BatchEndpoint": ("resourceGroupName", "workspaceName", "endpointName"),
    "azure-native:machinelearningservices:Schedule": ("resourceGroupName", "workspaceName", "name"),
    "azure-native:storage:ManagementPolicy": ("resourceGroupName", "accountName", "managementPolicyName"),
    "azure-native:machinelearningservices:BatchDeployment": (
        "resourceGroupName",
        "workspaceName",
        "endpointName",
        "deploymentName",
    ),
    "azure-native:monitor:ActionGroup": ("resourceGroupName", "actionGroupName"),
    "azure-native:monitor:MetricAlert": ("resourceGroupName", "ruleName"),
    "azure-native:monitor:AutoscaleSetting": ("resourceGroupName", "autoscaleSettingName"),
    "azure-native:monitor:DiagnosticSetting": ("resourceUri", "name"),
    "azure-native:consumption:Budget": ("scope", "budgetName"),
    "azure-native:monitor:SubscriptionDiagnosticSetting": ("name",),
    "azure-native:network:VirtualNetwork": ("resourceGroupName", "virtualNetworkName"),
    "azure-native:network:Subnet": ("resourceGroupName", "virtualNetworkName", "subnetName"),
    "azure-native:network:PrivateEndpoint": ("resourceGroupName", "privateEndpointName"),
    "azure-native:network:PrivateDnsZoneGroup": ("resourceGroupName", "privateEndpointName", "privateDnsZoneGroupName"),
    "azure-native:privatedns:PrivateZone": ("resourceGroupName", "privateZoneName"),
    "azure-native:privatedns:VirtualNetworkLink": ("resourceGroupName", "privateZoneName", "virtualNetworkLinkName"),
    "azure-native:cdn:Profile": ("resourceGroupName", "profileName"),
    "azure-native:cdn:AFDEndpoint": ("resourceGroupName", "profileName", "endpointName"),
    "azure-native:cdn:AFDOriginGroup": ("resourceGroupName", "profileName", "originGroupName"),
    "azure-native:cdn:AFDOrigin": ("resourceGroupName", "profileName", "originGroupName", "originName"),
    "azure-native:cdn:Route": ("resourceGroupName", "profileName", "endpointName", "routeName"),
}
"""Per type: the inputs its ARM id is built from. A change is a new resource with a new id."""
ARM_MOVE_REFUSED = ("location",)
"""An ARM resource cannot move to another region: a changed ``location`` is a new resource."""
CREATE_ONLY_INPUTS: dict[str, tuple[str, ...]] = {
    # "Tenant ID, application ID, principal ID, and scope are not allowed to be updated"
    # (ARM error RoleAssignmentUpdateNotPermitted): a role assignment is replaced, never updated.
    "azure-native:authorization:RoleAssignment": ("principalId", "roleDefinitionId"),
    # pulumi-azure-native replaces a separate AgentPool when its VM size changes (pulumi-azure-native#3655).
    "azure-native:containerservice:AgentPool": ("vmSize",),
}
"""Other inputs that force a new resource, with their source."""


def azure_create_only_inputs(type_token: str) -> tuple[str, ...]:
    """Input paths (dotted, ``*`` for any list item) whose change replaces a resource of ``type_token``."""
    return (
        ARM_NAME_INPUTS.get(type_token, ("resourceGroupName",))
        + ARM_MOVE_REFUSED
        + CREATE_ONLY_INPUTS.get(type_token, ())
    )


IMMUTABLE_ASSET_VERSIONS = (
    "azure-native:machinelearningservices:ModelVersion",
    "azure-native:machinelearningservices:EnvironmentVersion",
    "azure-native:machinelearningservices:CodeVersion",
)
"""Azure ML asset versions: a name + version is immutable once created."""
ASSET_VERSION_MUTABLE_INPUTS = ("properties.description", "properties.tags", "properties.isArchived")
"""What an existing asset version accepts: "only description and tags can be updated. All other
properties are immutable" (how-to-manage-models), plus archiving."""
ASSET_VERSION_SOURCE = "https://learn.microsoft.com/azure/machine-learning/how-to-manage-models"

AKS_CLUSTER = "azure-native:containerservice:ManagedCluster"
AKS_POOL_VM_SIZE_SOURCE = "https://learn.microsoft.com/azure/aks/resize-node-pool"
"""AKS cannot change a node pool's VM size in place ("You can't change the VM size of a node pool
after you create it", manage-node-pools#limitations): add a pool with the new size, move the
workloads, delete the old pool. pulumi-azure-native sends an edited inline ``agentPoolProfiles``
entry as a cluster update, which Azure refuses for the VM size (pulumi-azure-native#2774)."""
AKS_AUTOSCALED_COUNT_SOURCE = "https://learn.microsoft.com/azure/aks/cluster-autoscaler"
"""With the cluster autoscaler on, the pool's ``count`` is the autoscaler's; a cluster update that
re-sends the program's count works against it unless the count is in ``ignore_changes``."""
KUBERNETES_COMPUTE_SOURCE = "https://learn.microsoft.com/azure/machine-learning/how-to-attach-kubernetes-to-workspace"
"""Kubernetes online endpoints run on the attached compute; detaching it (a replacement deletes
before it creates) leaves them without compute until it is attached again."""
IGNORED_CAPACITY_SOURCE = "https://www.pulumi.com/docs/iac/concepts/options/ignorechanges/"
"""An ignored input is sent from the stack state on later updates: "Skipping the refresh step leaves
stale values in the state, and Pulumi will continue to send those stale values"."""
SAME_NAME_CREATE_SOURCE = "https://github.com/pulumi/pulumi-azure-native/blob/master/provider/pkg/provider/provider.go"
"""azure-native's Create checks that the resource does not exist yet ("cannot create already existing
resource"), so a same-name replacement must delete first; its Diff asks for that whenever a create-only
input of an explicitly named resource changes."""
PROTECT_SOURCE = "https://www.pulumi.com/docs/iac/concepts/options/protect/"
"""A protected resource cannot be deleted (or replaced): ``pulumi up`` fails until it is unprotected."""
RETAIN_ON_DELETE_SOURCE = "https://www.pulumi.com/docs/iac/concepts/options/retainondelete/"
"""A retained resource is removed from the stack, not from Azure."""

# --------------------------------------------------------------------------- sign-in of automation

FEDERATED_TOKEN_AUDIENCE = "api://AzureADTokenExchange"
"""The audience an Entra federated identity credential expects in an external token
(https://learn.microsoft.com/entra/workload-id/workload-identity-federation-create-trust)."""
CLIENT_SECRET_VARIABLES = ("ARM_CLIENT_SECRET", "AZURE_CLIENT_SECRET", "ARM_CLIENT_CERTIFICATE_PATH")
"""Credentials the azure-native provider prefers over an OIDC token when they are set: a federated
sign-in must not have them in its environment."""


PAYLOAD_COLLECTIONS = ("request", "response")
"""The data collector's payload-logging collections of an online deployment (no SDK in the container)."""
PAYLOAD_COLLECTION_FOLDER = "modelDataCollector"
"""Where the data collector writes in the workspace's default blob datastore:
``modelDataCollector/<endpoint>/<deployment>/<collection>/yyyy/MM/dd/HH/*.jsonl``."""
DEFAULT_BLOB_DATASTORE = "workspaceblobstore"
"""The datastore every workspace has over its default blob container (``azureml-blobstore-<workspace guid>``),
where the data collector writes unless told otherwise."""


def schedule_trigger(expression: str) -> tuple[str, int] | str | None:
    """An EventBridge Scheduler expression (the spec's syntax) as an Azure ML schedule trigger:
    ``(frequency, interval)`` for a recurrence (``Hour``/``Day``), a 5-field NCronTab string for a cron,
    ``None`` where Azure ML has no equivalent (minutes that are not whole hours; a cron with a year, or with
    ``L``, ``W`` or ``#``, which NCronTab lacks)."""
    rate = re.fullmatch(SCHEDULE_RATE_PATTERN, expression)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        if unit == "minute":
            return ("Hour", count // 60) if count % 60 == 0 else None
        return ("Hour" if unit == "hour" else "Day", count)
    cron = re.fullmatch(SCHEDULE_CRON_PATTERN, expression)
    if cron is None:
        return None
    minutes, hours, day_of_month, month, day_of_week, year = cron.groups()
    fields = [minutes, hours, day_of_month, month, day_of_week]
    if year != "*" or any(c in f for f in fields for c in "LW#"):
        return None
    return " ".join("*" if f == "?" else f for f in fields)


ARM_ENDPOINT = "https://management.azure.com"
"""Azure Resource Manager of the public cloud (sovereign clouds have their own)."""
LOGIN_AUTHORITY = "https://login.microsoftonline.com"
"""Microsoft Entra ID's token authority of the public cloud."""
ACR_API_VERSION = "2023-07-01"
"""Container registry REST API version of ``importImage`` (GA)."""

# --------------------------------------------------------------------------- private networking and audit
# Sources: "Configure a private endpoint for an Azure Machine Learning workspace" (how-to-configure-private-link),
# "Azure Private Endpoint private DNS zone values" (private-link/private-endpoint-dns), "Workspace managed
# virtual network isolation" (how-to-managed-network), "Network isolation with managed online endpoints"
# (concept-secure-online-endpoint), Azure Monitor's supported log categories, AKS API server authorized ranges.

PRIVATE_LINK_SOURCE = "https://learn.microsoft.com/azure/private-link/private-endpoint-dns"
PRIVATE_ENDPOINT_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "workspace": ("amlworkspace", ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net")),
    "blob": ("blob", ("privatelink.blob.core.windows.net",)),
    "file": ("file", ("privatelink.file.core.windows.net",)),
    "vault": ("vault", ("privatelink.vaultcore.azure.net",)),
    "registry": ("registry", ("privatelink.azurecr.io",)),
}
"""Per private endpoint twinserve declares: its Private Link sub-resource (``groupId``) and the private DNS
zones its records go to (public cloud names). The workspace endpoint needs two zones: the workspace API
and the notebooks FQDN."""
PRIVATE_DNS_ZONES = tuple(dict.fromkeys(z for _, zones in PRIVATE_ENDPOINT_GROUPS.values() for z in zones))
"""Every private DNS zone of a private twinserve environment, each linked to its virtual network."""
PREMIUM_REGISTRY_SOURCE = "https://learn.microsoft.com/azure/container-registry/container-registry-private-link"
"""Private endpoints and disabled public access need the Premium registry tier."""
REGISTRY_SKU_FOR_PRIVATE_ENDPOINTS = "Premium"

ML_WORKSPACE = "azure-native:machinelearningservices:Workspace"
MANAGED_NETWORK_SOURCE = "https://learn.microsoft.com/azure/machine-learning/how-to-managed-network"
MANAGED_NETWORK_RANK = {"disabled": 0, "allow_internet_outbound": 1, "allow_only_approved_outbound": 2}
"""How isolated each workspace managed-network mode is. A workspace's managed network, once on, cannot be
switched off again, and allow_only_approved_outbound cannot go back to allow_internet_outbound: only
changes up this order are accepted ("twinserve plan" refuses the others)."""
EGRESS_FLAG_SOURCE = "https://learn.microsoft.com/azure/machine-learning/how-to-secure-online-endpoint"
"""With a workspace managed network the deployments' ``egress_public_network_access`` flag (the legacy
per-deployment isolation) "no longer applies": the managed network controls their outbound traffic."""
BUILD_OUTBOUND_FQDNS = (
    "docker.io",
    "*.docker.io",
    "*.docker.com",
    "production.cloudflare.docker.com",
    "pypi.org",
    "files.pythonhosted.org",
)
"""What Azure ML's image build of the twinserve context pulls from (the base image from Docker Hub, the
requirements from PyPI): FQDN outbound rules of an allow_only_approved_outbound managed network, which Azure
implements with a managed Azure Firewall (charged)."""
MANAGED_NETWORK_FIREWALL_SKU = "Basic"
"""The managed network's firewall tier for FQDN rules: Basic is enough for these few rules."""

ONLINE_ENDPOINT_LOG_CATEGORIES = (
    "AmlOnlineEndpointConsoleLog",
    "AmlOnlineEndpointTrafficLog",
    "AmlOnlineEndpointEventLog",
)
"""Resource log categories of Microsoft.MachineLearningServices/workspaces/onlineEndpoints
(https://learn.microsoft.com/azure/azure-monitor/reference/supported-logs/microsoft-machinelearningservices-workspaces-onlineendpoints-logs)."""
ACTIVITY_LOG_CATEGORIES = (
    "Administrative",
    "Security",
    "ServiceHealth",
    "Alert",
    "Recommendation",
    "Policy",
    "Autoscale",
    "ResourceHealth",
)
"""The subscription activity log's categories (a subscription diagnostic setting names them one by one;
https://learn.microsoft.com/azure/azure-monitor/essentials/activity-log-schema)."""
MAX_DIAGNOSTIC_SETTINGS = 5
"""Diagnostic settings per resource (a subscription too): why the activity-log setting is optional."""

AKS_AUTHORIZED_RANGES_SOURCE = "https://learn.microsoft.com/azure/aks/api-server-authorized-ip-ranges"
AKS_OWN_EGRESS_ONLY = "0.0.0.0/32"
"""The authorized range that admits only the cluster's own outbound IP (the Standard load balancer's):
in-cluster clients such as the AzureML extension keep reaching the API server, nobody outside does."""

# --------------------------------------------------------------------------- disaster recovery (locations)

LOCATION_NAME = re.compile(r"^[a-z]{4,}[a-z0-9]*$")
"""An Azure location's programmatic name (``az account list-locations --query [].name``): lower-case
letters, then maybe digits, e.g. westeurope, eastus2, germanywestcentral."""
LOCATION_HINT = "must be an Azure location name such as westeurope or eastus2 (lower case, no spaces)"
MAX_LOCATIONS = 3
"""Serving locations per environment twinserve plans (the primary and up to two secondaries): each one is a
whole workspace with its storage, key vault, registry, Log Analytics and a managed endpoint."""


def location_code(location: str) -> str:
    """A short, stable code of ``location`` for globally unique names (storage, key vault, registry): its
    first letter and following consonants and digits, cut to four, plus two hex digits of its SHA-256, so
    locations with the same start (westus, westus2, westeurope) still differ. ``northeurope`` -> ``nrth`` + 2."""
    compact = location[0] + re.sub(r"[aeiou]", "", location[1:])
    return compact[:4] + hashlib.sha256(location.encode()).hexdigest()[:2]


FRONT_DOOR_SKU = "Standard_AzureFrontDoor"
"""The global front of a multi-location environment: Azure Front Door Standard. It terminates TLS on its own
certificate (``*.azurefd.net``) and connects to each origin with the origin's host name as host header and
SNI, so the endpoint's ``<endpoint>.<region>.inference.ml.azure.com`` certificate matches
(https://learn.microsoft.com/azure/frontdoor/origin#origin-host-header). Traffic Manager is DNS only: a
client calling its name would be answered with the endpoint's certificate for another host name."""
FRONT_DOOR_PROBE_SOURCE = "https://learn.microsoft.com/azure/frontdoor/health-probes"
"""Front Door health probes: GET or HEAD over HTTP or HTTPS, every 1..255 s; only 200 OK counts as healthy."""
FRONT_DOOR_PROBE_AUTH_SOURCE = (
    "https://learn.microsoft.com/answers/questions/1018320/how-can-azure-front-door-health-probe-authenicate"
)
"""Front Door health probes carry no credentials (Microsoft Q&A); an Azure ML endpoint answers 401 to them."""
FRONT_DOOR_ROUTING_SOURCE = "https://learn.microsoft.com/azure/frontdoor/routing-methods"
"""Priority routing: the lowest priority number among the healthy enabled origins takes all traffic."""
FRONT_DOOR_PRIVATE_LINK_SOURCE = "https://learn.microsoft.com/azure/frontdoor/private-link"
"""Private Link origins are a Front Door Premium feature; Standard reaches origins on public addresses."""
FRONT_DOOR_PROBE_INTERVAL_SECONDS = (1, 255)
FRONT_DOOR_ORIGIN_TIMEOUT_SECONDS = (16, 240)
"""The profile's ``originResponseTimeoutSeconds`` range."""
AUTH_SOURCE = "https://learn.microsoft.com/azure/machine-learning/how-to-authenticate-online-endpoint"
"""Keys and Azure ML tokens belong to one endpoint; a Microsoft Entra token (aad_token, audience
https://ml.azure.com) is accepted by every endpoint whose score action the caller holds."""
