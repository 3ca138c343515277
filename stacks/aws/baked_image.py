"""The serving image with the model baked in, for the AWS platforms that cannot mount a model (ECS
Fargate, Lambda): one home for where the model folder and the staged context come from; and the AWS
Batch job's image of ECS Fargate: the same layers plus the S3 wrapper (``twinserve_batch_job``, with
boto3), so the serving image itself carries no SDK."""

from __future__ import annotations

from pathlib import Path

import twinserve_batch_job
from twinserve.image_context import stage_extended_image_context, stage_model_image_context
from twinserve.spec import DeploymentSpec

from ..model_image import ModelImage, staging_dir


def baked_model_image_context(spec: DeploymentSpec, model_image: ModelImage, spec_dir: Path) -> Path:
    """The staged build context (the spec rules guarantee ``container.build`` and ``model.artifact.path``)."""
    model_dir = (spec_dir / spec.model.artifact.path).resolve()
    return stage_model_image_context(model_image.context, model_dir, staging_dir())


BATCH_JOB_DIR_IN_CONTEXT = "batch-job/twinserve_batch_job"
"""Where the wrapper sits in the batch job's context (not at the root, which the server's .dockerignore
keeps out of every other image)."""
_BATCH_JOB_STEP = f"""
# The AWS Batch job (ecs_fargate batch): S3 in and out around the batch mode, outside the server package.
USER 0
COPY {BATCH_JOB_DIR_IN_CONTEXT} ./twinserve_batch_job
RUN pip install --no-cache-dir -r twinserve_batch_job/requirements.txt
USER 10001
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m", "twinserve_batch_job"]
CMD []
"""


def batch_job_image_context(baked_context: Path) -> Path:
    """The batch job's build context: ``baked_context`` (the serving image with the model) plus the wrapper."""
    source = Path(twinserve_batch_job.__file__).parent
    files = {
        f"{BATCH_JOB_DIR_IN_CONTEXT}/{path.relative_to(source).as_posix()}": path
        for path in sorted(source.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    return stage_extended_image_context(baked_context, files, _BATCH_JOB_STEP, staging_dir(), "batch-job")
