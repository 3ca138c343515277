"""CDK constructs for serving on Amazon SageMaker. They take typed props (frozen dataclasses,
validated in the constructor) and know nothing of environments or of the twinserve spec: the
stacks in ``stacks/aws`` map the spec onto them. One concept per module."""

from .autoscaling import EndpointAutoscaling, VariantAutoscaling, VariantAutoscalingProps
from .batch_transform import BatchTransform, BatchTransformProps
from .cost_budget import CostBudget, CostBudgetProps
from .deployment_config import RolloutProps, check_update_compatible
from .endpoint import (
    AsyncInferenceProps,
    DataCaptureProps,
    InstanceVariant,
    SageMakerEndpoint,
    SageMakerEndpointProps,
    ServerlessVariant,
)
from .endpoint_alarms import EndpointAlarms, EndpointAlarmsProps
from .inference_image import ImageRepository, ImageRepositoryProps, InferenceImage
from .model_artifacts import ModelArtifacts, ModelArtifactsProps
from .model_registry import ModelRegistry, ModelRegistryProps
from .sagemaker_model import ModelVpcConfig, SageMakerModel, SageMakerModelProps

__all__ = [
    "AsyncInferenceProps",
    "BatchTransform",
    "BatchTransformProps",
    "CostBudget",
    "CostBudgetProps",
    "DataCaptureProps",
    "EndpointAlarms",
    "EndpointAlarmsProps",
    "EndpointAutoscaling",
    "ImageRepository",
    "ImageRepositoryProps",
    "InferenceImage",
    "InstanceVariant",
    "ModelArtifacts",
    "ModelArtifactsProps",
    "ModelRegistry",
    "ModelRegistryProps",
    "ModelVpcConfig",
    "RolloutProps",
    "SageMakerEndpoint",
    "SageMakerEndpointProps",
    "SageMakerModel",
    "SageMakerModelProps",
    "ServerlessVariant",
    "VariantAutoscaling",
    "VariantAutoscalingProps",
    "check_update_compatible",
]
