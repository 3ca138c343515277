"""What the stacks of both clouds tell the common container, from the spec.

The container reads each platform's own variable names (model_containers/twinserve_serving/config.py);
the stacks set them so that the spec's serving settings reach the server on either cloud:

  serving.request_timeout_seconds              -> the server's per-request deadline, one second
                                                  under the platform's, so a slow request gets the
                                                  container's JSON 504 rather than a bare platform
                                                  timeout (SageMaker: 60 s fixed; Azure ML: request_settings)
  serving.max_concurrent_requests_per_instance -> the server's concurrent predictions (threads), matching
                                                  Azure ML's max_concurrent_requests_per_instance
  model.format / trust_pickle / trust_skops     -> TWINSERVE_MODEL_FORMAT / TWINSERVE_TRUST_PICKLE /
                                                  TWINSERVE_TRUST_SKOPS (model_image.py)
  serving.adaptive_batching (when enabled)     -> TWINSERVE_BATCH_MAX_SIZE / TWINSERVE_BATCH_MAX_DELAY_MS,
                                                  the same names on both clouds (the container's own);
                                                  nothing when disabled (the container's default is off)
"""

from __future__ import annotations

from typing import Literal

from twinserve.spec import EnvironmentSpec
from twinserve.spec.models import AdaptiveBatchingSpec

from .model_image import ModelImage

PLATFORM_MARGIN_SECONDS = 1


def container_environment(
    env: EnvironmentSpec, cloud: Literal["aws", "azure"], model_image: ModelImage
) -> dict[str, str]:
    serving = env.serving
    deadline = max(1, serving.request_timeout_seconds - PLATFORM_MARGIN_SECONDS)
    threads = str(serving.max_concurrent_requests_per_instance)
    model = model_image.environment
    batching = _batching_environment(serving.adaptive_batching)
    if cloud == "aws":
        return {"SAGEMAKER_MODEL_SERVER_TIMEOUT": str(deadline), "TWINSERVE_THREADS": threads, **batching, **model}
    return {"SCORING_TIMEOUT_MS": str(deadline * 1000), "TWINSERVE_THREADS": threads, **batching, **model}


def _batching_environment(batching: AdaptiveBatchingSpec) -> dict[str, str]:
    if not batching.enabled:
        return {}
    return {
        "TWINSERVE_BATCH_MAX_SIZE": str(batching.max_batch_size),
        "TWINSERVE_BATCH_MAX_DELAY_MS": f"{batching.max_delay_ms:g}",
    }
