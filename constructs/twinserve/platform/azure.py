"""Azure facts: Azure ML online and batch endpoints, AKS inference clusters, Azure Monitor, budgets.

Sources: the Azure ML REST API (machinelearningservices 2025-12-01), "Azure Machine Learning
inference on Kubernetes" (AKS requirements), "Safe rollout for online endpoints" (mirror traffic),
Azure Monitor autoscale and metric-alert references, Cost Management budgets.
"""

from __future__ import annotations

import re

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
