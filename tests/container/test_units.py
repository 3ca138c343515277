"""Pure functions: media types, Accept negotiation, configuration from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinserve_serving.config import ConfigError, ServerConfig
from twinserve_serving.content import negotiate, parse_media_type, preferred
from twinserve_serving.errors import BadRequest

OFFERED = ("application/json", "text/csv", "application/x-npy")


def test_parse_media_type():
    media = parse_media_type('Text/CSV; Charset="UTF-8"; header=present')
    assert media.essence == "text/csv" and media.charset == "utf-8" and media.params["header"] == "present"
    assert parse_media_type(None).essence == "application/json"
    assert parse_media_type("image/PNG").is_bytes
    with pytest.raises(BadRequest):
        parse_media_type("nonsense")


@pytest.mark.parametrize(
    "accept, expected",
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("application/x-npy;q=0.9, text/csv;q=0.8", "application/x-npy"),
        ("text/*;q=0.5, application/json;q=0.4", "text/csv"),
        ("application/json;q=0", None),
        ("image/png", None),
        ("*/*;q=0.1, text/csv", "text/csv"),
        ("text/csv;q=bogus", None),
    ],
)
def test_negotiate(accept, expected):
    assert negotiate(accept, OFFERED, "application/json") == expected


@pytest.mark.parametrize(
    "accept, expected",
    [
        # RFC 9110 12.5.1: the most specific range decides, so an explicit q=0 excludes under a wildcard
        ("*/*;q=0.1, application/json;q=0", "text/csv"),
        ("text/csv;q=0, text/*", None),
        ("text/csv, application/json", "text/csv"),
        ("*/*;q=0", None),
    ],
)
def test_negotiate_lets_the_most_specific_range_decide(accept, expected):
    assert negotiate(accept, OFFERED, "application/json") == expected


@pytest.mark.parametrize(
    "accept, expected",
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("text/*", "application/json"),  # was handed on as the response type "text/*"
        ("application/xml;q=0.2, text/csv", "text/csv"),
        ("text/csv;q=0, application/json", "application/json"),
    ],
)
def test_preferred_is_the_concrete_type_a_handler_is_told_the_client_wants(accept, expected):
    assert preferred(accept, "application/json") == expected


def test_defaults_are_the_sagemaker_contract():
    config = ServerConfig.from_env({})
    assert (config.port, config.model_dir, config.workers, config.timeout_s) == (8080, Path("/opt/ml/model"), 1, 60.0)
    assert config.max_payload_bytes == 6 * 1024 * 1024


def test_each_platform_spelling_is_honoured():
    sagemaker = ServerConfig.from_env(
        {
            "SAGEMAKER_BIND_TO_PORT": "9090",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "30",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20",
        }
    )
    assert (sagemaker.port, sagemaker.workers, sagemaker.timeout_s, sagemaker.max_payload_mb) == (9090, 3, 30.0, 20.0)
    assert sagemaker.max_concurrent_transforms * 20 <= 100
    azure = ServerConfig.from_env(
        {
            "AZUREML_MODEL_DIR": "/var/azureml-app/azureml-models/iris/1",
            "WORKER_COUNT": "2",
            "SCORING_TIMEOUT_MS": "5000",
        }
    )
    assert (azure.model_dir, azure.workers, azure.timeout_s) == (Path("/var/azureml-app/azureml-models/iris/1"), 2, 5.0)


def test_overrides_win_over_the_environment():
    assert ServerConfig.from_env({"SAGEMAKER_BIND_TO_PORT": "9090"}, port=7000, workers=None).port == 7000


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SAGEMAKER_BIND_TO_PORT": "http"}, "SAGEMAKER_BIND_TO_PORT='http' is not an integer"),
        ({"WORKER_COUNT": "0"}, "WORKER_COUNT='0' must be >= 1"),
        ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "-1"}, "must be > 0"),
        ({"SAGEMAKER_BATCH_STRATEGY": "ALL"}, "is not one of MULTI_RECORD, SINGLE_RECORD"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        ServerConfig.from_env(env)


def test_handler_source_resolution(tmp_path):
    (tmp_path / "score.py").write_text("")
    assert ServerConfig.from_env({"AML_APP_ROOT": str(tmp_path), "AZUREML_ENTRY_SCRIPT": "score.py"}).handler == str(
        tmp_path / "score.py"
    )
    assert (
        ServerConfig.from_env(
            {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/code"}
        ).handler
        == "/opt/ml/code/inference.py"
    )
    assert (
        ServerConfig.from_env({"TWINSERVE_HANDLER": "my.module", "AZUREML_ENTRY_SCRIPT": "x.py"}).handler == "my.module"
    )


def test_flag_overrides_are_validated_and_feed_derived_settings():
    # `twinserve local --threads 0` used to reach ThreadPoolExecutor(0) and crash with a traceback
    with pytest.raises(ConfigError, match="threads 0 must be >= 1"):
        ServerConfig.from_env({}, threads=0)
    with pytest.raises(ConfigError, match="workers -1 must be >= 1"):
        ServerConfig.from_env({}, workers=-1)
    # the batch-transform default follows the effective workers x threads, not the environment's
    assert ServerConfig.from_env({}, workers=2, threads=3).max_concurrent_transforms == 6
    assert ServerConfig.from_env({"SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "2"}, workers=8).max_concurrent_transforms == 2


def test_a_request_racing_the_end_of_the_model_load_is_503_not_500():
    # The loader thread sets the handler, then the state. A request that read the handler just
    # before that and the state just after used to go on with no handler (a 500 "internal error").
    from twinserve_serving.app import LOADING, READY, App, Request
    from twinserve_serving.handler import load_handler

    class LoadFinishesMidRequest(App):
        _loaded = None

        @property
        def handler(self):
            loaded, self._loaded = self._loaded, load_handler(None, Path("."))
            self.state = READY  # the loader thread completes right after this read
            return loaded

        @handler.setter
        def handler(self, value):
            self._loaded = value

    app = LoadFinishesMidRequest(ServerConfig())
    try:
        assert app.state == LOADING
        reply = app.dispatch(Request("POST", "/invocations", {}, b"[1, 2, 3, 4]"))
        assert reply.status == 503, reply.body
    finally:
        app.close()
