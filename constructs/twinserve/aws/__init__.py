"""CDK constructs for serving on Amazon SageMaker. They take typed props and know nothing of
environments or of the twinserve spec: the stacks in ``stacks/aws`` map the spec onto them."""

from .model_artifacts import ModelArtifacts, ModelArtifactsProps
from .realtime_endpoint import RealtimeEndpoint, RealtimeEndpointProps, VariantProps

__all__ = ["ModelArtifacts", "ModelArtifactsProps", "RealtimeEndpoint", "RealtimeEndpointProps", "VariantProps"]
