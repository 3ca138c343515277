"""Pure parts of the model formats: request shapes -> Batch, Batch -> model input, format detection,
the format and trust variables, and the refusals (pickle, untrusted skops types, a missing package)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from twinserve_serving.config import ConfigError, ServerConfig
from twinserve_serving.content import parse_media_type
from twinserve_serving.errors import BadRequest
from twinserve_serving.formats import FORMAT_NAMES, ModelFormatError, detect, load
from twinserve_serving.payload import Batch, Signature, decode, from_json, to_array

NAMES = ("a", "b", "c")
SIGNATURE = Signature(names=NAMES, width=3, dtype=np.float64)


@pytest.mark.parametrize(
    "document",
    [
        {"instances": [[1, 2, 3], [4, 5, 6]]},
        {"inputs": [{"a": 1, "b": 2, "c": 3}, {"a": 4, "b": 5, "c": 6}]},
        {"inputs": {"c": [3, 6], "a": [1, 4], "b": [2, 5]}},
        {"data": [[1, 2, 3], [4, 5, 6]]},
        {"input_data": {"columns": ["b", "a", "c"], "index": [7, 8], "data": [[2, 1, 3], [5, 4, 6]]}},
        {"input_data": [[1, 2, 3], [4, 5, 6]]},
        {"dataframe_split": {"columns": ["c", "b", "a"], "data": [[3, 2, 1], [6, 5, 4]]}},
        {"dataframe_records": [{"b": 2, "a": 1, "c": 3}, {"c": 6, "a": 4, "b": 5}]},
        [[1, 2, 3], [4, 5, 6]],
    ],
    ids=lambda d: next(iter(d)) if isinstance(d, dict) else "list",
)
def test_every_json_shape_gives_the_same_model_input(document):
    assert to_array(from_json(document), SIGNATURE).tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize(
    "document, rows, columns",
    [
        ([1, 2, 3], [[1, 2, 3]], None),
        ({"a": 1, "b": 2}, [[1, 2]], ["a", "b"]),
        ({"instances": {"a": 1, "b": 2}}, [[1, 2]], ["a", "b"]),
        ({"dataframe_split": {"columns": ["a"], "data": [5]}}, [[5]], ["a"]),
    ],
)
def test_one_row_shapes(document, rows, columns):
    batch = from_json(document)
    assert (batch.rows, batch.columns) == (rows, columns)


def test_csv_header_is_a_first_line_without_numbers():
    media = parse_media_type("text/csv")
    assert decode(b"c,a,b\n3,1,2\n", media).columns == ["c", "a", "b"]
    assert to_array(decode(b"c,a,b\n3,1,2\n", media), SIGNATURE).tolist() == [[1, 2, 3]]
    assert decode(b"1,x,3\n", media).columns is None  # a number in it: data (and a 400 later)
    with pytest.raises(BadRequest, match="header line but no rows"):
        decode(b"a,b,c\n", media)


def test_npy_rows():
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array([1.0, 2.0, 3.0]))
    assert decode(buffer.getvalue(), parse_media_type("application/x-npy")).rows.shape == (1, 3)


@pytest.mark.parametrize(
    "document, message",
    [
        (
            {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}},
            "lacks feature 'c'; the model's features are: a, b, c",
        ),
        ({"dataframe_records": [{"a": 1, "b": 2, "c": 3, "d": 4}]}, "unknown column 'd'"),
        ({"instances": [[1, 2]]}, r"expected rows of 3 features \(a, b, c\); got an array of shape \[1, 2\]"),
        ({"instances": [{"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 2}]}, "row 1 lacks feature 'c'"),
        ({"instances": [{"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 2, "c": 3, "z": 0}]}, "row 1 has column 'z'"),
        ({"inputs": {"a": [1, 2], "b": [1], "c": [1, 2]}}, "columns differ in length: a=2, b=1, c=2"),
        ({"dataframe_split": {"columns": "abc", "data": [[1, 2, 3]]}}, "columns must be a list of names"),
        ({"dataframe_records": []}, "non-empty"),
        ({"rows": [[1, 2, 3]]}, "none of the keys 'instances', 'inputs', 'data', 'input_data', 'dataframe_split'"),
        ({"instances": [["x", 2, 3]]}, "equal-length lists of numbers"),
    ],
)
def test_requests_that_do_not_fit_name_why(document, message):
    with pytest.raises(BadRequest, match=message):
        to_array(from_json(document), SIGNATURE)


def test_named_columns_for_a_model_without_names_are_refused():
    with pytest.raises(BadRequest, match="carries no feature names"):
        to_array(from_json({"dataframe_records": [{"a": 1}]}), Signature(width=1))
    assert to_array(from_json({"instances": [[1]]}), Signature(width=1)).tolist() == [[1.0]]


def test_a_batch_is_still_array_like_for_old_user_predict_fns():
    assert np.asarray(Batch([[1, 2]]), dtype=np.float32).dtype == np.float32


# ---------------------------------------------------------------------------- detection
def _touch(folder: Path, *files: str, content: bytes = b"x") -> Path:
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return folder


@pytest.mark.parametrize(
    "files, expected",
    [
        (["model.onnx", "metadata.json"], ("onnx", "model.onnx")),
        (["iris/1/model/net.onnx"], None),  # three levels down: not searched
        (["model/MLmodel", "model/model.pkl", "model/input_example.json"], ("mlflow", "model/MLmodel")),
        (["model.skops"], ("sklearn", "model.skops")),
        (["model.joblib", "code/requirements.txt", "code/inference.py"], ("sklearn", "model.joblib")),
        (["model.onnx", "extra/other.onnx"], ("onnx", "model.onnx")),  # model.<suffix> at the top wins
        (["model.onnx", "scaler.pkl"], ("onnx", "model.onnx")),  # ... over files of other formats too
        (["model.pt2"], ("torch", "model.pt2")),
        (["sub/model.pt"], ("torch", "sub/model.pt")),
    ],
)
def test_detection_rules(tmp_path, files, expected):
    _touch(tmp_path, *files)
    if expected is None:
        with pytest.raises(ModelFormatError, match="no .onnx model found"):
            detect(tmp_path)
    else:
        fmt, path = detect(tmp_path)
        assert (fmt.name, path.relative_to(tmp_path).as_posix()) == expected


def test_json_and_txt_files_are_sniffed(tmp_path):
    (tmp_path / "metadata.json").write_text('{"features": []}')
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelFormatError, match="no .onnx model found"):
        detect(tmp_path)
    (tmp_path / "booster.json").write_text('{"learner": {}}')
    assert detect(tmp_path)[0].name == "xgboost"
    (tmp_path / "booster.json").unlink()
    (tmp_path / "model.txt").write_text("tree\nversion=v4\n")
    assert detect(tmp_path)[0].name == "lightgbm"


def test_several_formats_or_files_are_refused_naming_them(tmp_path):
    _touch(tmp_path, "a.onnx", "b.skops")
    with pytest.raises(
        ModelFormatError, match=r"several formats .*a.onnx \(onnx\), b.skops \(sklearn\).*TWINSERVE_MODEL_FORMAT"
    ):
        detect(tmp_path)
    assert detect(tmp_path, "sklearn")[1].name == "b.skops"  # forcing the format settles it
    _touch(tmp_path, "c.skops")
    with pytest.raises(ModelFormatError, match="2 sklearn model files .* name it model.skops"):
        detect(tmp_path, "sklearn")
    with pytest.raises(
        ModelFormatError, match=r"TWINSERVE_MODEL_FORMAT=xgboost but no xgboost model file \(\*.ubj, \*.json\)"
    ):
        detect(tmp_path, "xgboost")


def test_model_format_and_trust_variables_are_validated():
    assert ServerConfig.from_env({"TWINSERVE_MODEL_FORMAT": " LightGBM "}).model_format == "lightgbm"
    with pytest.raises(
        ConfigError,
        match="TWINSERVE_MODEL_FORMAT='tensorflow' is not a model format; allowed: " + ", ".join(FORMAT_NAMES),
    ):
        ServerConfig.from_env({"TWINSERVE_MODEL_FORMAT": "tensorflow"})
    assert ServerConfig.from_env({"TWINSERVE_TRUST_PICKLE": "TRUE"}).trust_pickle is True
    assert ServerConfig.from_env({}).trust_pickle is False and ServerConfig.from_env({}).trust_skops is False
    with pytest.raises(ConfigError, match="TWINSERVE_TRUST_SKOPS='sure' is not a boolean; allowed: true, false"):
        ServerConfig.from_env({"TWINSERVE_TRUST_SKOPS": "sure"})


def test_a_pickle_is_refused_without_trust(tmp_path):
    _touch(tmp_path, "model.pkl")
    with pytest.raises(
        ModelFormatError, match="model.pkl is a pkl file: loading it runs any code.*TWINSERVE_TRUST_PICKLE=true"
    ):
        load(tmp_path, ServerConfig())


def test_skops_types_beyond_its_trusted_set_need_trust(tmp_path):
    pytest.importorskip("skops")
    import operator

    import skops.io
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    pipeline = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression())
    skops.io.dump(pipeline.fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1]), tmp_path / "model.skops")
    with pytest.raises(
        ModelFormatError, match="types skops does not trust by default: _operator.neg; set TWINSERVE_TRUST_SKOPS=true"
    ):
        load(tmp_path, ServerConfig())
    model = load(tmp_path, ServerConfig(trust_skops=True))
    assert model.predict(Batch([[0.0], [3.0]])).columns["predictions"].tolist() == [0, 1]


def test_a_format_whose_package_is_missing_names_the_package_and_the_image(tmp_path, monkeypatch):
    (tmp_path / "model.txt").write_text("tree\nversion=v4\n")
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import lightgbm -> ImportError
    with pytest.raises(
        ModelFormatError, match="model.txt is a lightgbm model, but this image lacks lightgbm .*twinserve-formats image"
    ):
        load(tmp_path, ServerConfig())


def test_mlflow_tensor_signature_gives_an_array(tmp_path):
    pytest.importorskip("mlflow")
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input * 2

    example = np.zeros((1, 2), dtype=np.float32)
    mlflow.pyfunc.save_model(tmp_path / "m", python_model=Doubler(), signature=infer_signature(example, example))
    model = load(tmp_path, ServerConfig())
    assert model.signature.width == 2
    assert model.predict(from_json({"inputs": [[1, 2]]})).columns["predictions"].tolist() == [[2, 4]]
    with pytest.raises(BadRequest, match="expected rows of 2 features"):
        model.predict(from_json({"inputs": [[1, 2, 3]]}))
    json.dumps(model.signature.width)  # plain int, for the logs


# ---------------------------------------------------------------------------- ONNX execution provider
def test_cuda_is_chosen_when_onnxruntime_offers_it_else_cpu():
    from twinserve_serving.formats.onnx import choose_providers

    assert choose_providers(["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers(["AzureExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_a_gpu_onnxruntime_gets_cuda_requested_and_the_provider_in_use_logged(iris_model, monkeypatch, capfd):
    import onnxruntime as ort

    requested = {}

    class Session(ort.InferenceSession):  # the CPU build: CUDA cannot really start here
        def __init__(self, path, options, providers):
            requested["providers"] = providers
            super().__init__(path, options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "preload_dlls", lambda: requested.setdefault("preloaded", True), raising=False)
    monkeypatch.setattr(ort, "InferenceSession", Session)
    load(iris_model / "model", ServerConfig())
    assert requested == {"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"], "preloaded": True}
    logged = [json.loads(line) for line in capfd.readouterr().out.splitlines() if '"onnx_provider"' in line]
    assert logged[-1]["requested"] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert logged[-1]["provider"] == "CPUExecutionProvider"  # what the session really runs on is what is logged


def test_the_cpu_onnxruntime_serves_on_cpu_and_says_so(iris_model, capfd):
    model = load(iris_model / "model", ServerConfig())
    assert model.session.get_providers() == ["CPUExecutionProvider"]
    logged = [json.loads(line) for line in capfd.readouterr().out.splitlines() if '"onnx_provider"' in line]
    assert logged[-1]["provider"] == "CPUExecutionProvider" and logged[-1]["requested"] == ["CPUExecutionProvider"]


def test_mlflow_without_a_signature_gets_the_columns_as_sent(tmp_path):
    pytest.importorskip("mlflow")
    import mlflow.pyfunc

    class Columns(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return list(model_input.columns)

    mlflow.pyfunc.save_model(tmp_path / "m", python_model=Columns())
    model = load(tmp_path, ServerConfig())
    assert model.predict(from_json({"dataframe_records": [{"z": 1, "a": 2}]})).columns["predictions"] == ["z", "a"]
