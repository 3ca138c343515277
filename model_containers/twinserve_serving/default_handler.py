"""The handler used when the user brings none: serves the ``.onnx`` model in the model dir.

Written as AWS-style stages so a user handler can replace one stage and keep the others.

Request:  JSON (``{"instances": rows}``, ``{"inputs": rows}``, ``{"data": rows}``, a list of rows or
          one row; rows are arrays of numbers, or objects keyed by the feature names in
          metadata.json), CSV (one row per line, an optional header line of the feature names),
          or NPY (a 2-D array).
Response: JSON ``{"predictions": [{<output name>: value, ...}, ...]}`` (class indices of an integer
          ``label`` output are mapped to metadata.json's class_labels), CSV (one line per row: every
          output's values in order), or NPY (the first output as an array).

metadata.json (optional, beside the model): ``input_name``, ``features``, ``class_labels``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .content import (CSV, JSON, NPY, decode_csv, decode_json, decode_npy, encode_csv, encode_json,
                      encode_npy, json_rows, MediaType, parse_media_type)
from .errors import BadRequest, NotAcceptable, UnsupportedMediaType

REQUEST_TYPES = (JSON, CSV, NPY)
RESPONSE_TYPES = (JSON, CSV, NPY)
_ONNX_DTYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32,
}


def find_model_file(model_dir: Path) -> Path:
    """``model.onnx`` in the model dir, else the only ``.onnx`` file within two levels below it
    (Azure ML mounts a registered folder inside ``AZUREML_MODEL_DIR``)."""
    if (model_dir / "model.onnx").is_file():
        return model_dir / "model.onnx"
    found = sorted(model_dir.glob("*.onnx")) + sorted(model_dir.glob("*/*.onnx")) + sorted(model_dir.glob("*/*/*.onnx"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(f"no .onnx model found in {model_dir} (looked for model.onnx and *.onnx two levels deep)")
    raise FileNotFoundError(f"{len(found)} .onnx files in {model_dir}; keep one or name it model.onnx: "
                            + ", ".join(str(p.relative_to(model_dir)) for p in found))


class OnnxModel:
    def __init__(self, path: Path, metadata: dict[str, Any], threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # Small models: one thread per call beats a thread pool spinning up per call, and the
        # server already runs calls concurrently.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.input_name = metadata.get("input_name") or next(iter(inputs))
        if self.input_name not in inputs:
            raise ValueError(f"metadata.json input_name {self.input_name!r} is not a model input ({', '.join(inputs)})")
        model_input = inputs[self.input_name]
        self.dtype = _ONNX_DTYPES.get(model_input.type, np.float32)
        self.features: list[str] | None = metadata.get("features")
        width = model_input.shape[1] if len(model_input.shape) == 2 else None
        self.n_features: int | None = width if isinstance(width, int) else (len(self.features) if self.features else None)
        self.class_labels: list[str] | None = metadata.get("class_labels")
        self.output_names = [o.name for o in self.session.get_outputs()]

    def to_array(self, rows: Any) -> np.ndarray:
        if isinstance(rows, np.ndarray):
            array = rows
        else:
            if isinstance(rows[0], dict):
                rows = self._rows_from_objects(rows)
            try:
                array = np.asarray(rows, dtype=self.dtype)
            except (ValueError, TypeError) as exc:
                raise BadRequest(f"rows must be equal-length lists of numbers: {exc}") from None
        if array.ndim == 1:
            array = array.reshape(1, -1)
        expected = f"{self.n_features} features" if self.n_features else "features"
        if self.features:
            expected += f" ({', '.join(self.features)})"
        if array.ndim != 2 or array.shape[0] == 0 or (self.n_features and array.shape[1] != self.n_features):
            raise BadRequest(f"expected rows of {expected}; got an array of shape {list(array.shape)}")
        try:
            return array.astype(self.dtype, copy=False)
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"values must be numbers: {exc}") from None

    def _rows_from_objects(self, rows: list) -> list[list]:
        if not self.features:
            raise BadRequest("rows given as objects need feature names, but metadata.json lists none; send arrays")
        out = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise BadRequest(f"row {i} is not an object like row 0")
            try:
                out.append([row[name] for name in self.features])
            except KeyError as exc:
                raise BadRequest(f"row {i} lacks feature {exc.args[0]!r}; expected keys: {', '.join(self.features)}") from None
        return out

    def predict(self, array: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(None, {self.input_name: array})))


@dataclass
class OnnxPrediction:
    outputs: dict[str, np.ndarray]
    class_labels: list[str] | None


def model_fn(model_dir: str) -> OnnxModel:
    from .config import ServerConfig

    path = find_model_file(Path(model_dir))
    metadata_path = path.parent / "metadata.json"
    metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
    return OnnxModel(path, metadata, threads=ServerConfig.from_env().onnx_threads)


def input_fn(body: bytes, content_type: str) -> Any:
    return decode_request(body, parse_media_type(content_type))


def decode_request(body: bytes, media: MediaType) -> Any:
    """input_fn with the parsed media type, so a charset parameter is honoured."""
    if media.essence == JSON:
        return json_rows(decode_json(body, media))
    if media.essence == CSV:
        return decode_csv(body, media)
    if media.essence == NPY:
        return decode_npy(body)
    raise UnsupportedMediaType(f"Content-Type {media.essence} is not supported by the ONNX default handler",
                               allowed=REQUEST_TYPES)


def predict_fn(data: Any, model: OnnxModel) -> OnnxPrediction:
    if isinstance(data, list) and data and isinstance(data[0], list) and model.features and data[0] == model.features:
        data = data[1:]  # a CSV header line
        if not data:
            raise BadRequest("CSV body has a header line but no rows")
    return OnnxPrediction(model.predict(model.to_array(data)), model.class_labels)


def output_fn(prediction: OnnxPrediction, accept: str) -> tuple[bytes, str]:
    columns = {name: _labelled(name, array, prediction.class_labels) for name, array in prediction.outputs.items()}
    if accept == JSON:
        names = list(columns)
        return encode_json({"predictions": [dict(zip(names, row)) for row in zip(*columns.values())]}), JSON
    if accept == CSV:
        rows = []
        for values in zip(*columns.values()):
            line: list[Any] = []
            for value in values:
                line.extend(value if isinstance(value, list) else [value])
            rows.append(line)
        return encode_csv(rows), CSV
    if accept == NPY:
        return encode_npy(next(iter(prediction.outputs.values()))), NPY
    raise NotAcceptable(f"Accept {accept} is not produced by the ONNX default handler", allowed=RESPONSE_TYPES)


def _labelled(name: str, array: np.ndarray, class_labels: list[str] | None) -> list:
    values = array.tolist()
    if class_labels and array.ndim == 1 and np.issubdtype(array.dtype, np.integer):
        return [class_labels[v] if 0 <= v < len(class_labels) else v for v in values]
    return values
