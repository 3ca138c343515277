"""The image on AWS Lambda: the Lambda Web Adapter's settings and what the server does differently there.

One home for both sides, standard library only (no cloud SDK):

* the deployment side (the CDK Lambda function) imports :func:`lambda_environment` for the variables
  the function must set, so the adapter and the server agree on the port, the health path and the
  single worker;
* the server calls :func:`prepare_writable_dirs` at start when ``ServerConfig.lambda_mode`` is on
  (``TWINSERVE_LAMBDA``, or detected from ``AWS_LAMBDA_FUNCTION_NAME``, which Lambda always sets).

The adapter (an extension in ``/opt/extensions``, copied into every CPU image at the pinned
``image_variants.LAMBDA_ADAPTER_IMAGE``) starts before the server, polls the readiness path until
the server answers, then turns each invocation into one HTTP request to ``127.0.0.1:AWS_LWA_PORT``.
Outside Lambda nothing starts it: SageMaker, Azure ML and ECS ignore ``/opt/extensions``.

Lambda's constraints, and the server's answer to each (docs/container.md, "Running on AWS Lambda"):

* read-only file system except ``/tmp``, and ``HOME`` may be unwritable: every cache a library
  writes under ``HOME`` or a fixed path is pointed at the temporary folder (:data:`CACHE_VARIABLES`);
* no ``/dev/shm``: one server process (the pre-fork supervisor is never used) and joblib told not to
  start worker processes or memory-map into ``/dev/shm``;
* one request per execution environment: one worker, one prediction thread;
* frozen between invocations: no idle keep-alive timeout, so a connection the adapter pooled before a
  freeze of any length is still open after it (the adapter closes its idle ones itself);
* a short shutdown (SIGTERM, then SIGKILL ~500 ms later): the drain waits at most 0.4 s, and nothing
  is in flight when Lambda shuts an environment down;
* 10 s init: the socket answers at once and the model loads behind it; ``AWS_LWA_ASYNC_INIT`` lets
  the adapter end init after ~9.8 s and wait for readiness on the first invocation instead, so a
  model that loads for longer is not loaded twice (Lambda re-runs a timed-out init from scratch).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from .routes import DEFAULT_PORT, SAGEMAKER_PING_PATH

LAMBDA_FUNCTION_VARIABLE = "AWS_LAMBDA_FUNCTION_NAME"
"""Set by Lambda in every execution environment (a reserved variable): its presence turns lambda mode on."""

LAMBDA_DRAIN_TIMEOUT_S = 0.4
"""The drain's bound under Lambda: it sends SIGTERM and kills ~500 ms later (when extensions are registered)."""

HEALTHY_STATUS = "200-299"
"""Readiness statuses the adapter counts as ready. Its default, 100-499, would count a 404 (a wrong
path) as ready; the server's health answers 200 when loaded and 503 while loading or after a failed
load, so 2xx alone is the truth."""

CACHE_VARIABLES = {
    "XDG_CACHE_HOME": "cache",
    "XDG_CONFIG_HOME": "config",
    "MPLCONFIGDIR": "matplotlib",
    "HF_HOME": "huggingface",
    "TORCH_HOME": "torch",
    "TORCHINDUCTOR_CACHE_DIR": "torchinductor",
    "TRITON_CACHE_DIR": "triton",
    "NUMBA_CACHE_DIR": "numba",
    "JOBLIB_TEMP_FOLDER": "joblib",
}
"""Where libraries the formats load write caches by default (under HOME or a fixed path) -> the
folder under the writable temporary directory they get instead. A variable already set is kept."""

NO_SUBPROCESS_VARIABLES = {"JOBLIB_MULTIPROCESSING": "0"}
"""joblib (scikit-learn's n_jobs) would start worker processes with semaphores in /dev/shm."""


def lambda_environment(port: int = DEFAULT_PORT, *, model_dir: str | None = None) -> dict[str, str]:
    """The environment a Lambda function running this image must set (the adapter's and the server's).

    ``port`` is where the server listens and the adapter sends requests and readiness checks;
    ``model_dir`` the model folder inside the image when it is not ``/opt/ml/model``.
    """
    if not 0 < port < 65536:
        raise ValueError(f"lambda_environment: port must be 1..65535 (got {port})")
    environment = {
        # the Lambda Web Adapter (pinned release: image_variants.LAMBDA_ADAPTER_IMAGE)
        "AWS_LWA_PORT": str(port),
        "AWS_LWA_READINESS_CHECK_PATH": SAGEMAKER_PING_PATH,
        "AWS_LWA_READINESS_CHECK_PROTOCOL": "http",
        "AWS_LWA_READINESS_CHECK_HEALTHY_STATUS": HEALTHY_STATUS,
        "AWS_LWA_ASYNC_INIT": "true",
        # the server (config.py): its port, lambda mode (also detected), one process, one prediction at a time
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "TWINSERVE_LAMBDA": "true",
        "TWINSERVE_WORKERS": "1",
        "TWINSERVE_THREADS": "1",
    }
    if model_dir:
        environment["TWINSERVE_MODEL_DIR"] = model_dir
    return environment


def detected(env: Mapping[str, str] | None = None) -> bool:
    """True inside a Lambda execution environment."""
    env = os.environ if env is None else env
    return bool(env.get(LAMBDA_FUNCTION_VARIABLE, "").strip())


def writable_root(env: Mapping[str, str] | None = None) -> Path:
    """The one writable folder: TMPDIR (or the platform's temporary directory, /tmp on Lambda)."""
    env = os.environ if env is None else env
    value = env.get("TMPDIR", "").strip()
    return Path(value) if value else Path(tempfile.gettempdir())


def prepare_writable_dirs(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Point HOME and every library cache at the temporary folder, create
    those folders, and keep joblib in-process. Changes ``env`` (default: ``os.environ``) before the
    handler is imported; returns the variables it set."""
    env = os.environ if env is None else env
    base = writable_root(env) / "twinserve"
    changed: dict[str, str] = {}
    # HOME is not probed: an unwritable HOME is the rule on Lambda, and root (tests, some hosts) can
    # write where the function's user cannot, so a probe would pass where Lambda fails.
    changed["HOME"] = str(base / "home")
    for name, folder in CACHE_VARIABLES.items():
        if not env.get(name, "").strip():
            changed[name] = str(base / folder)
    for name, value in NO_SUBPROCESS_VARIABLES.items():
        if not env.get(name, "").strip():
            changed[name] = value
    for name, value in changed.items():
        if name in NO_SUBPROCESS_VARIABLES:
            continue
        Path(value).mkdir(parents=True, exist_ok=True)
    env.update(changed)
    return changed
