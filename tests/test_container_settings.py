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


def test_adaptive_batching_reaches_the_container_on_both_clouds_only_when_enabled():
    from twinserve_serving.config import ServerConfig

    off = _env(adaptive_batching={"max_batch_size": 16})  # settings without enabled: still off
    for cloud in ("aws", "azure"):
        variables = container_environment(off, cloud, ONNX_IMAGE)
        assert not any(name.startswith("TWINSERVE_BATCH") for name in variables), cloud
        assert not ServerConfig.from_env(variables).batching, cloud
    on = _env(adaptive_batching={"enabled": True, "max_batch_size": 64, "max_delay_ms": 1.5})
    for cloud in ("aws", "azure"):
        variables = container_environment(on, cloud, ONNX_IMAGE)
        assert variables["TWINSERVE_BATCH_MAX_SIZE"] == "64" and variables["TWINSERVE_BATCH_MAX_DELAY_MS"] == "1.5"
        config = ServerConfig.from_env(variables)
        assert config.batching and config.batch_max_size == 64 and config.batch_max_delay_ms == 1.5, cloud
    defaults = container_environment(_env(adaptive_batching={"enabled": True}), "azure", ONNX_IMAGE)
    assert defaults["TWINSERVE_BATCH_MAX_SIZE"] == "32" and defaults["TWINSERVE_BATCH_MAX_DELAY_MS"] == "2"


def test_adaptive_batching_ranges_are_the_containers():
    import pytest

    from twinserve.spec import SpecError

    for bad in ({"max_batch_size": 1}, {"max_batch_size": 4097}, {"max_delay_ms": -1}, {"max_delay_ms": 1001}):
        with pytest.raises(SpecError, match="adaptive_batching"):
            _env(adaptive_batching={"enabled": True, **bad})
    assert _env(adaptive_batching={"enabled": True, "max_delay_ms": 0}).serving.adaptive_batching.max_delay_ms == 0
