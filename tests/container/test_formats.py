"""Every model format the default handler serves with no code, through `twinserve local` (HTTP, both
scoring routes, every request shape) and `twinserve batch`. Each format's sample is built from iris
at test time (build_sample_model.py --format); a format whose framework is not installed skips."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from serving_harness import (
    IRIS_ROWS,
    REPO_ROOT,
    TEST_IMAGE,
    TEST_IMAGE_VARIANT,
    TWINSERVE_CLI,
    ServerProcess,
    free_port,
)

from twinserve_serving.formats import FORMATS

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASS_LABELS = ["setosa", "versicolor", "virginica"]
EXPECTED = ["setosa", "virginica"]  # the classes of IRIS_ROWS
# sample name -> the modules it needs (to build it and to serve it)
SAMPLES = {
    "mlflow": ("mlflow", "pandas", "sklearn", "skops"),
    "sklearn-skops": ("sklearn", "skops"),
    "sklearn-joblib": ("sklearn", "joblib"),
    "xgboost": ("xgboost", "sklearn"),
    "lightgbm": ("lightgbm", "sklearn"),
    "torchscript": ("torch", "sklearn"),
    "torch-export": ("torch", "sklearn"),
}
SAMPLE_FORMAT = {
    "mlflow": "mlflow",
    "sklearn-skops": "sklearn",
    "sklearn-joblib": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "torchscript": "torch",
    "torch-export": "torch",
}
IMAGE_OF = {fmt.name: fmt.image for fmt in FORMATS}  # the image variant that serves each format
# Loading pickle runs code: the joblib sample is served only because the test says it trusts it.
SAMPLE_ENV = {"sklearn-joblib": {"TWINSERVE_TRUST_PICKLE": "true"}}


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_sample_model", REPO_ROOT / "model_containers/sample_model/build_sample_model.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require(sample: str) -> None:
    missing = [m for m in SAMPLES[sample] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{sample}: {', '.join(missing)} not installed (pip install -e '.[dev]')")


@pytest.fixture(scope="session")
def format_models(tmp_path_factory):
    """sample name -> its model folder, built on first use."""
    built: dict[str, Path] = {}

    def get(sample: str) -> Path:
        require(sample)
        if sample not in built:
            built[sample] = _builder().build_format(sample, tmp_path_factory.mktemp(sample))
        return built[sample]

    return get


def classes(sample: str, predictions: list) -> list:
    """The predicted class names: label strings, or the largest of per-class scores."""
    if predictions and isinstance(predictions[0], list):
        return [CLASS_LABELS[row.index(max(row))] for row in predictions]
    return predictions


def _env(sample: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "AZUREML_", "TWINSERVE_"))}
    return {**env, "SAGEMAKER_BIND_TO_PORT": str(port), **SAMPLE_ENV.get(sample, {})}


@pytest.fixture(scope="module", params=list(SAMPLES))
def served(request, format_models, tmp_path_factory):
    """(sample name, server): `twinserve local --model-dir <sample>` on a free port; or, under
    build_and_test_images.py, the built image serving the samples of its variant."""
    sample = request.param
    if TEST_IMAGE and IMAGE_OF[SAMPLE_FORMAT[sample]] != TEST_IMAGE_VARIANT:
        pytest.skip(f"{sample} is served by the {IMAGE_OF[SAMPLE_FORMAT[sample]]} image, not {TEST_IMAGE_VARIANT}")
    model_dir = format_models(sample)
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    if TEST_IMAGE:
        server = ServerProcess({**_env(sample, port), "TWINSERVE_MODEL_DIR": str(model_dir)}, log, [])
    else:
        server = ServerProcess(
            _env(sample, port),
            log,
            ["local", "--model-dir", str(model_dir), "--port", str(port)],
            command=[sys.executable, "-c", TWINSERVE_CLI],
        )
    try:
        server.wait_until("/ping", timeout=60)  # torch and mlflow take seconds to import
        yield sample, server
    finally:
        server.stop()


def _npy(rows) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(rows, dtype=np.float32))
    return buffer.getvalue()


SHUFFLED = ["petal_width", "sepal_length", "petal_length", "sepal_width"]  # names matched, not positions
SHUFFLED_ROWS = [[r[FEATURES.index(n)] for n in SHUFFLED] for r in IRIS_ROWS]
RECORDS = [dict(zip(FEATURES, r, strict=True)) for r in IRIS_ROWS]
REQUESTS = {
    "instances-rows": ("application/json", {"instances": IRIS_ROWS}),
    "instances-records": ("application/json", {"instances": RECORDS}),
    "inputs-rows": ("application/json", {"inputs": IRIS_ROWS}),
    "inputs-columns": (
        "application/json",
        {"inputs": {n: [r[FEATURES.index(n)] for r in IRIS_ROWS] for n in SHUFFLED}},
    ),
    "data-rows": ("application/json", {"data": IRIS_ROWS}),
    "bare-rows": ("application/json", IRIS_ROWS),
    "dataframe_split": ("application/json", {"dataframe_split": {"columns": SHUFFLED, "data": SHUFFLED_ROWS}}),
    "dataframe_records": ("application/json", {"dataframe_records": RECORDS}),
    "input_data-split": (
        "application/json",
        {"input_data": {"columns": SHUFFLED, "index": [0, 1], "data": SHUFFLED_ROWS}},
    ),
    "input_data-list": ("application/json", {"input_data": IRIS_ROWS}),
    "csv": ("text/csv", "\n".join(",".join(map(str, r)) for r in IRIS_ROWS) + "\n"),
    "csv-header": ("text/csv", ",".join(SHUFFLED) + "\n" + "\n".join(",".join(map(str, r)) for r in SHUFFLED_ROWS)),
    "npy": ("application/x-npy", _npy(IRIS_ROWS)),
}


@pytest.mark.parametrize("path", ["/invocations", "/score"])
@pytest.mark.parametrize("shape", list(REQUESTS))
def test_every_request_shape_on_both_routes(served, shape, path):
    sample, server = served
    content_type, payload = REQUESTS[shape]
    reply = server.score(payload, path=path, Content_Type=content_type)
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/json"
    assert classes(sample, reply.json()["predictions"]) == EXPECTED  # always {"predictions": ...}


def test_csv_and_npy_responses(served):
    _, server = served
    csv = server.score({"instances": IRIS_ROWS}, Accept="text/csv")
    assert csv.status == 200 and csv.headers["content-type"] == "text/csv"
    assert len(csv.body.decode().splitlines()) == 2
    npy = server.score({"instances": IRIS_ROWS}, Accept="application/x-npy")
    assert npy.status == 200 and npy.headers["content-type"] == "application/x-npy"


@pytest.mark.parametrize(
    "payload, fragments",
    [
        (
            {"dataframe_split": {"columns": FEATURES[:3], "data": [r[:3] for r in IRIS_ROWS]}},
            ["lacks feature 'petal_width'", "sepal_length, sepal_width, petal_length, petal_width"],
        ),
        ({"dataframe_records": [{**RECORDS[0], "colour": 1}]}, ["unknown column 'colour'"]),
        ({"instances": [[1, 2, 3]]}, ["expected rows of 4 features", "shape [1, 3]"]),
    ],
)
def test_a_request_that_does_not_fit_the_model_is_400_naming_why(served, payload, fragments):
    _, server = served
    reply = server.score(payload)
    assert reply.status == 400, reply.body
    for fragment in fragments:
        assert fragment in reply.json()["error"], reply.json()


def test_the_server_logs_the_format_it_detected(served):
    sample, server = served
    detected = [r for r in server.log_records() if r["event"] == "model_format_detected"]
    assert detected and detected[0]["model_format"] == SAMPLE_FORMAT[sample]


def test_mlflow_signature_types_are_enforced_with_a_400(format_models):
    from twinserve_serving.config import ServerConfig
    from twinserve_serving.errors import BadRequest
    from twinserve_serving.formats import load
    from twinserve_serving.payload import from_json

    model = load(format_models("mlflow"), ServerConfig())
    with pytest.raises(BadRequest, match="column 'sepal_length' must hold float64 values"):
        model.predict(from_json({"dataframe_records": [{**RECORDS[0], "sepal_length": "long"}]}))


@pytest.mark.parametrize("sample", list(SAMPLES))
def test_twinserve_batch_scores_each_format(sample, format_models, tmp_path):
    model_dir = format_models(sample)
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "split.json").write_text(json.dumps(REQUESTS["dataframe_split"][1]))
    (inputs / "rows.csv").write_text(REQUESTS["csv-header"][1])
    (inputs / "short.json").write_text(json.dumps({"instances": [[1, 2, 3]]}))
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            TWINSERVE_CLI,
            "batch",
            str(inputs),
            str(tmp_path / "out"),
            "--model-dir",
            str(model_dir),
        ],
        env=_env(sample, 0),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 1, result.stdout + result.stderr  # short.json fails, the rest score
    for name in ("split.json", "rows.csv"):
        assert classes(sample, json.loads((tmp_path / "out" / f"{name}.out").read_text())["predictions"]) == EXPECTED
    error = json.loads((tmp_path / "out" / "short.json.error.json").read_text())
    assert error["status"] == 400 and "expected rows of 4 features" in error["error"]


def test_a_pickle_is_refused_unless_trusted_saying_why(format_models, tmp_path):
    model_dir = format_models("sklearn-joblib")
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.json").write_text(json.dumps({"instances": IRIS_ROWS}))
    env = {k: v for k, v in _env("sklearn-joblib", 0).items() if k != "TWINSERVE_TRUST_PICKLE"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "twinserve_serving",
            "batch",
            str(inputs),
            str(tmp_path / "out"),
            "--model-dir",
            str(model_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "runs any code it holds" in result.stdout and "TWINSERVE_TRUST_PICKLE=true" in result.stdout
