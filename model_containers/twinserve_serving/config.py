"""Every environment variable the server reads, in one place.

Both platforms configure the container through the environment; each setting below names the
variables it honours, first match wins. Command-line flags (``twinserve local --port``) are
passed as overrides and win over the environment.

=====================  ==============================================  ===========================
setting                environment (first set wins)                    default
=====================  ==============================================  ===========================
port                   SAGEMAKER_BIND_TO_PORT                          8080
host                   TWINSERVE_HOST                                  0.0.0.0
model_dir              TWINSERVE_MODEL_DIR, AZUREML_MODEL_DIR,         /opt/ml/model
                       SM_MODEL_DIR
workers (processes)    TWINSERVE_WORKERS, SAGEMAKER_MODEL_SERVER_      1
                       WORKERS, WORKER_COUNT
threads (concurrent    TWINSERVE_THREADS                               4
predictions/worker)
timeout_s              SAGEMAKER_MODEL_SERVER_TIMEOUT (s),             60
                       SCORING_TIMEOUT_MS (ms)
max_payload_mb         SAGEMAKER_MAX_PAYLOAD_IN_MB                     6
handler                TWINSERVE_HANDLER, AZUREML_ENTRY_SCRIPT,        the default handler
                       SAGEMAKER_PROGRAM (see handler.py)
batch                  SAGEMAKER_BATCH                                 false
batch_strategy         SAGEMAKER_BATCH_STRATEGY                        MULTI_RECORD
max_concurrent_        SAGEMAKER_MAX_CONCURRENT_TRANSFORMS             workers*threads, capped so
transforms                                                             that n * max_payload <= 100
drain_timeout_s        TWINSERVE_DRAIN_TIMEOUT_S                       25 (SageMaker kills at 30)
keepalive_timeout_s    TWINSERVE_KEEPALIVE_TIMEOUT_S                   75
access_log             TWINSERVE_ACCESS_LOG (1/0)                      1
onnx_threads           TWINSERVE_ONNX_THREADS (threads per call of     1
                       onnxruntime, LightGBM, XGBoost and torch)
model_format           TWINSERVE_MODEL_FORMAT (onnx, mlflow, sklearn,  detected from the model
                       xgboost, lightgbm, torch)                       folder (formats/)
trust_pickle           TWINSERVE_TRUST_PICKLE (true/false): load       false
                       joblib/pickle files, which runs their code
trust_skops            TWINSERVE_TRUST_SKOPS (true/false): load the    false
                       types a .skops file holds beyond skops' own
                       trusted set
install_requirements   TWINSERVE_INSTALL_REQUIREMENTS (true/false):    false
                       pip install the model's requirements at start
                       (model_requirements.py; needs a network)
lambda_mode            TWINSERVE_LAMBDA (true/false)                   true when AWS_LAMBDA_
                                                                       FUNCTION_NAME is set
batch_max_size         TWINSERVE_BATCH_MAX_SIZE: adaptive batching,    1 (off)
                       most rows merged into one model call, 1..4096
                       (batching.py; >= 2 turns it on)
batch_max_delay_ms     TWINSERVE_BATCH_MAX_DELAY_MS: longest a         2
                       request waits for others to join, 0..1000 ms
=====================  ==============================================  ===========================

Lambda mode (the image on AWS Lambda behind the Lambda Web Adapter; lambda_settings.py) changes
defaults, not variables: one worker process whatever the worker variables say (no pre-fork, nothing
in /dev/shm), threads 1 unless TWINSERVE_THREADS is set (one request per execution environment), no
idle keep-alive timeout unless TWINSERVE_KEEPALIVE_TIMEOUT_S is set (connections survive the freeze
between invocations), drain 0.4 s unless TWINSERVE_DRAIN_TIMEOUT_S is set (Lambda kills ~500 ms after
SIGTERM), and at start HOME and the libraries' caches are pointed at TMPDIR (or /tmp).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import lambda_settings
from .formats import FORMAT_NAMES
from .routes import DEFAULT_PORT

SAGEMAKER_MODEL_DIR = Path("/opt/ml/model")
DEFAULT_MAX_PAYLOAD_MB = 6.0  # SageMaker real-time invocation limit
BATCH_STRATEGIES = ("MULTI_RECORD", "SINGLE_RECORD")
BATCH_TRANSFORM_MB_BUDGET = 100  # SageMaker: MaxConcurrentTransforms * MaxPayloadInMB <= 100
# Adaptive batching (batching.py); the spec's serving.adaptive_batching ranges are these.
BATCH_MAX_SIZE_LIMIT = 4096  # rows in one model call
BATCH_MAX_DELAY_MS_LIMIT = 1000.0  # a wait of a second is a queue, not a batch
DEFAULT_BATCH_MAX_DELAY_MS = 2.0


class ConfigError(ValueError):
    """An environment variable or flag has a value the server cannot use."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    model_dir: Path = SAGEMAKER_MODEL_DIR
    workers: int = 1
    threads: int = 4
    timeout_s: float = 60.0
    max_payload_mb: float = DEFAULT_MAX_PAYLOAD_MB
    handler: str | None = None
    batch: bool = False
    batch_strategy: str = "MULTI_RECORD"
    max_concurrent_transforms: int = 4
    drain_timeout_s: float = 25.0
    keepalive_timeout_s: float | None = 75.0
    """None: an idle keep-alive connection stays open until the client closes it (lambda mode)."""
    access_log: bool = True
    onnx_threads: int = 1
    model_format: str | None = None
    trust_pickle: bool = False
    trust_skops: bool = False
    install_requirements: bool = False
    lambda_mode: bool = False
    batch_max_size: int = 1  # adaptive batching: off at 1
    batch_max_delay_ms: float = DEFAULT_BATCH_MAX_DELAY_MS

    @property
    def batching(self) -> bool:
        return self.batch_max_size > 1

    @property
    def max_payload_bytes(self) -> int:
        return int(self.max_payload_mb * 1024 * 1024)

    def with_overrides(self, **overrides: Any) -> ServerConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        env = os.environ if env is None else env
        explicit = env.get("TWINSERVE_LAMBDA", "").strip()
        lambda_mode = _bool(env, "TWINSERVE_LAMBDA") if explicit else lambda_settings.detected(env)
        workers = _int(env, ("TWINSERVE_WORKERS", "SAGEMAKER_MODEL_SERVER_WORKERS", "WORKER_COUNT"), 1)
        threads = _int(env, ("TWINSERVE_THREADS",), 1 if lambda_mode else 4)
        max_payload_mb = _float(env, ("SAGEMAKER_MAX_PAYLOAD_IN_MB",), DEFAULT_MAX_PAYLOAD_MB)
        if "SAGEMAKER_MODEL_SERVER_TIMEOUT" in env:
            timeout_s = _float(env, ("SAGEMAKER_MODEL_SERVER_TIMEOUT",), 60.0)
        else:
            timeout_s = _float(env, ("SCORING_TIMEOUT_MS",), 60_000.0) / 1000.0
        strategy = env.get("SAGEMAKER_BATCH_STRATEGY", "MULTI_RECORD").strip().upper()
        if strategy not in BATCH_STRATEGIES:
            raise ConfigError(f"SAGEMAKER_BATCH_STRATEGY={strategy!r} is not one of {', '.join(BATCH_STRATEGIES)}")
        config = cls(
            host=env.get("TWINSERVE_HOST", "0.0.0.0"),
            port=_int(env, ("SAGEMAKER_BIND_TO_PORT",), DEFAULT_PORT, minimum=0),
            model_dir=_model_dir(env),
            workers=workers,
            threads=threads,
            timeout_s=timeout_s,
            max_payload_mb=max_payload_mb,
            handler=_handler_source(env),
            batch=env.get("SAGEMAKER_BATCH", "false").strip().lower() in ("1", "true", "yes"),
            batch_strategy=strategy,
            max_concurrent_transforms=_int(env, ("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS",), 0),  # 0: derived below
            drain_timeout_s=_float(
                env, ("TWINSERVE_DRAIN_TIMEOUT_S",), lambda_settings.LAMBDA_DRAIN_TIMEOUT_S if lambda_mode else 25.0
            ),
            keepalive_timeout_s=_float(env, ("TWINSERVE_KEEPALIVE_TIMEOUT_S",), None if lambda_mode else 75.0),
            access_log=env.get("TWINSERVE_ACCESS_LOG", "1").strip().lower() not in ("0", "false", "no"),
            onnx_threads=_int(env, ("TWINSERVE_ONNX_THREADS",), 1),
            model_format=_model_format(env),
            trust_pickle=_bool(env, "TWINSERVE_TRUST_PICKLE"),
            trust_skops=_bool(env, "TWINSERVE_TRUST_SKOPS"),
            install_requirements=_bool(env, "TWINSERVE_INSTALL_REQUIREMENTS"),
            lambda_mode=lambda_mode,
            batch_max_size=_ranged(env, "TWINSERVE_BATCH_MAX_SIZE", 1, int, 1, BATCH_MAX_SIZE_LIMIT, "rows; 1 is off"),
            batch_max_delay_ms=_ranged(
                env,
                "TWINSERVE_BATCH_MAX_DELAY_MS",
                DEFAULT_BATCH_MAX_DELAY_MS,
                float,
                0,
                BATCH_MAX_DELAY_MS_LIMIT,
                "ms",
            ),
        )
        # Flags (`twinserve local --threads 0`) bypass the parsing above: check the result.
        config = config.with_overrides(**overrides)
        if not 0 <= config.port <= 65535:
            raise ConfigError(f"port {config.port} is outside 0..65535")
        for name in ("workers", "threads"):
            if getattr(config, name) < 1:
                raise ConfigError(f"{name} {getattr(config, name)} must be >= 1")
        if config.lambda_mode and config.workers != 1:
            # no pre-fork on Lambda: one request per environment, and no /dev/shm for what workers share
            config = replace(config, workers=1)
        if config.max_concurrent_transforms == 0:  # from the effective workers and threads, flags included
            budget = int(BATCH_TRANSFORM_MB_BUDGET // config.max_payload_mb) or 1
            config = replace(config, max_concurrent_transforms=max(1, min(config.workers * config.threads, budget)))
        return config


def _model_dir(env: Mapping[str, str]) -> Path:
    # Azure ML mounts the model read-only and points AZUREML_MODEL_DIR at it; SageMaker unpacks
    # model.tar.gz into /opt/ml/model and sets nothing, so that is the fallback.
    value = _first(env, ("TWINSERVE_MODEL_DIR", "AZUREML_MODEL_DIR", "SM_MODEL_DIR"))
    return Path(value) if value else SAGEMAKER_MODEL_DIR


def _handler_source(env: Mapping[str, str]) -> str | None:
    if value := _first(env, ("TWINSERVE_HANDLER",)):
        return value
    if value := _first(env, ("AZUREML_ENTRY_SCRIPT",)):
        # Azure resolves the entry script against the app root (the code folder of the deployment)
        root = Path(env.get("AML_APP_ROOT", "/var/azureml-app"))
        return str(root / value) if not Path(value).is_absolute() and (root / value).is_file() else value
    if value := _first(env, ("SAGEMAKER_PROGRAM",)):
        code_dir = env.get("SAGEMAKER_SUBMIT_DIRECTORY") or str(_model_dir(env) / "code")
        return str(Path(code_dir) / value) if not Path(value).is_absolute() else value
    return None


def _model_format(env: Mapping[str, str]) -> str | None:
    value = env.get("TWINSERVE_MODEL_FORMAT", "").strip().lower()
    if value and value not in FORMAT_NAMES:
        raise ConfigError(f"TWINSERVE_MODEL_FORMAT={value!r} is not a model format; allowed: {', '.join(FORMAT_NAMES)}")
    return value or None


def _bool(env: Mapping[str, str], name: str) -> bool:
    # strict, unlike the logging switches: these grant trust or reach the network, so a typo must not pass silently
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ConfigError(f"{name}={value!r} is not a boolean; allowed: true, false, 1, 0, yes, no")


def _ranged(env: Mapping[str, str], name: str, default, parse, low, high, unit: str):
    """``name`` parsed and within low..high (inclusive); ``default`` when unset."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    allowed = f"allowed: {'an integer' if parse is int else 'a number'} from {low:g} to {high:g} ({unit})"
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {'an integer' if parse is int else 'a number'}; {allowed}") from None
    if not low <= value <= high:  # also refuses nan
        raise ConfigError(f"{name}={raw!r} is out of range; {allowed}")
    return value


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _int(env: Mapping[str, str], names: tuple[str, ...], default: int, minimum: int = 1) -> int:
    return _number(env, names, default, int, "an integer", lambda v: v >= minimum, f">= {minimum}")


def _float(env: Mapping[str, str], names: tuple[str, ...], default: float | None) -> float | None:
    return _number(env, names, default, float, "a number", lambda v: v > 0, "> 0")


def _number(env, names, default, parse, kind, acceptable, requirement):
    """The first of ``names`` that is set, parsed and checked; ``default`` when none is set."""
    for name in names:
        raw = env.get(name, "").strip()
        if raw:
            try:
                value = parse(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not {kind}") from None
            if not acceptable(value):
                raise ConfigError(f"{name}={raw!r} must be {requirement}")
            return value
    return default
