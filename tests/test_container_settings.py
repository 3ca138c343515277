"""The spec's serving settings reach the common container on both clouds, in each platform's names."""

from pathlib import Path

import yaml

from stacks.container_settings import container_environment
from stacks.model_image import ModelImage
from twinserve.spec import parse_spec

REPO_ROOT = Path(__file__).resolve().parents[1]
ONNX_IMAGE = ModelImage("onnx", None, None, {})
PICKLED_SKLEARN = ModelImage(
    "sklearn", None, None, {"TWINSERVE_MODEL_FORMAT": "sklearn", "TWINSERVE_TRUST_PICKLE": "true"}
)


def _env(**serving):
    raw = yaml.safe_load((REPO_ROOT / "deploy" / "twinserve.yaml").read_text())
    raw["environments"]["dev"]["serving"] = serving
    return parse_spec(raw).environments["dev"]


def test_deadline_is_one_second_under_the_platform_and_threads_match_concurrency():
    env = _env(request_timeout_seconds=30, max_concurrent_requests_per_instance=8)
    assert container_environment(env, "aws", ONNX_IMAGE) == {
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "29",
        "TWINSERVE_THREADS": "8",
    }
    assert container_environment(env, "azure", ONNX_IMAGE) == {"SCORING_TIMEOUT_MS": "29000", "TWINSERVE_THREADS": "8"}


def test_the_container_reads_exactly_these_variables():
    from twinserve_serving.config import ServerConfig

    env = _env(request_timeout_seconds=30, max_concurrent_requests_per_instance=8)
    for cloud in ("aws", "azure"):
        config = ServerConfig.from_env(container_environment(env, cloud, PICKLED_SKLEARN))
        assert config.timeout_s == 29 and config.threads == 8, cloud
        assert config.model_format == "sklearn" and config.trust_pickle and not config.trust_skops, cloud
