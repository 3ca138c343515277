"""Pulumi components for serving on Azure Machine Learning. Each is a ``ComponentResource`` with a
typed args dataclass validated on construction (``ValueError`` naming the field, the value and what
is allowed); children are parented to it. They know nothing of environments or of the twinserve
spec: the program in ``stacks/azure`` maps the spec onto them."""

from .aks_inference_cluster import AksGpuPoolArgs, AksInferenceCluster, AksInferenceClusterArgs
from .api_front import ApiFront, ApiFrontArgs
from .batch_endpoint import BatchEndpoint, BatchEndpointArgs
from .cost_budget import CostBudget, CostBudgetArgs
from .ml_workspace import MlWorkspace, MlWorkspaceArgs
from .model_environment import InferenceRoutes, ModelEnvironment, ModelEnvironmentArgs
from .monitoring import AlertRules, AutoscaleRules, AutoscaleTarget, EndpointMonitoring, EndpointMonitoringArgs
from .online_endpoint import (
    OnlineDeploymentSettings,
    OnlineEndpoint,
    OnlineEndpointArgs,
    ProbeSettings,
    TargetUtilizationScaling,
)
from .private_network import PrivateEndpointTarget, PrivateNetwork, PrivateNetworkArgs

__all__ = [
    "AksInferenceCluster",
    "ApiFront",
    "ApiFrontArgs",
    "AksGpuPoolArgs",
    "AksInferenceClusterArgs",
    "AlertRules",
    "AutoscaleRules",
    "AutoscaleTarget",
    "BatchEndpoint",
    "BatchEndpointArgs",
    "CostBudget",
    "CostBudgetArgs",
    "EndpointMonitoring",
    "EndpointMonitoringArgs",
    "InferenceRoutes",
    "MlWorkspace",
    "MlWorkspaceArgs",
    "ModelEnvironment",
    "ModelEnvironmentArgs",
    "OnlineDeploymentSettings",
    "OnlineEndpoint",
    "OnlineEndpointArgs",
    "PrivateEndpointTarget",
    "PrivateNetwork",
    "PrivateNetworkArgs",
    "ProbeSettings",
    "TargetUtilizationScaling",
]
