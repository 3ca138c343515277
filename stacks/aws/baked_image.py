"""The serving image with the model baked in, for the AWS platforms that cannot mount a model (ECS
Fargate, Lambda): one home for where the model folder and the staged context come from."""

from __future__ import annotations

from pathlib import Path

from twinserve.image_context import stage_model_image_context
from twinserve.spec import DeploymentSpec

from ..model_image import ModelImage, staging_dir


def baked_model_image_context(spec: DeploymentSpec, model_image: ModelImage, spec_dir: Path) -> Path:
    """The staged build context (the spec rules guarantee ``container.build`` and ``model.artifact.path``)."""
    model_dir = (spec_dir / spec.model.artifact.path).resolve()
    return stage_model_image_context(model_image.context, model_dir, staging_dir())
