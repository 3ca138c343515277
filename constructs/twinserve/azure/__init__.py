"""Pulumi components for serving on Azure Machine Learning. Each is a ``ComponentResource`` with a
typed args class; children are parented to it. They know nothing of environments or of the
twinserve spec: the program in ``stacks/azure`` maps the spec onto them."""

from .ml_workspace import MlWorkspace, MlWorkspaceArgs

__all__ = ["MlWorkspace", "MlWorkspaceArgs"]
