"""The handler used when the user brings none: serves the model in the model dir, whatever its
format (formats/: ONNX, MLflow pyfunc, scikit-learn, XGBoost, LightGBM, PyTorch).

Written as AWS-style stages so a user handler can replace one stage and keep the others.

Request:  any shape payload.py reads (``instances``/``inputs``/``data``/``input_data`` rows, records
          or columns, MLflow's ``dataframe_split``/``dataframe_records``, CSV with an optional
          header line, NPY); named columns are matched to the model's feature names.
Response: JSON ``{"predictions": [...]}`` on both clouds -- one value per row, or, for a model with
          several named outputs (ONNX), one ``{<output name>: value, ...}`` object per row (integer
          class outputs mapped to metadata.json's ``class_labels``); CSV (one line per row: every
          output's values in order); NPY (the first output as an array).

metadata.json (optional, beside the model): ``input_name`` (ONNX), ``features``, ``class_labels``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import formats
from .content import CSV, JSON, NPY, MediaType, encode_csv, encode_json, encode_npy, parse_media_type
from .errors import NotAcceptable
from .formats import Outputs
from .payload import Batch, decode

RESPONSE_TYPES = (JSON, CSV, NPY)


def model_fn(model_dir: str) -> Any:
    from .config import ServerConfig

    return formats.load(Path(model_dir), ServerConfig.from_env())


def input_fn(body: bytes, content_type: str) -> Batch:
    return decode(body, parse_media_type(content_type))


def decode_request(body: bytes, media: MediaType) -> Batch:
    """input_fn with the parsed media type, so a charset parameter is honoured."""
    return decode(body, media)


def predict_fn(data: Batch, model: Any) -> Outputs:
    return model.predict(data)


def output_fn(prediction: Outputs, accept: str) -> tuple[bytes, str]:
    columns = {name: _labelled(values, prediction.class_labels) for name, values in prediction.columns.items()}
    if accept == JSON:
        if not prediction.named:
            return encode_json({"predictions": next(iter(columns.values()))}), JSON
        names = list(columns)
        return encode_json(
            {"predictions": [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]}
        ), JSON
    if accept == CSV:
        rows = []
        for values in zip(*columns.values(), strict=True):
            line: list[Any] = []
            for value in values:
                line.extend(value if isinstance(value, list) else [value])
            rows.append(line)
        return encode_csv(rows), CSV
    if accept == NPY:
        first = np.asarray(next(iter(prediction.columns.values())))
        if first.dtype == object:  # NPY cannot hold Python objects without pickle; labels become text
            first = np.asarray(first.tolist())
        if first.dtype == object:
            raise NotAcceptable(
                "the model's output is neither numbers nor text, so it has no NPY form", allowed=[JSON, CSV]
            )
        return encode_npy(first), NPY
    raise NotAcceptable(f"Accept {accept} is not produced by the default handler", allowed=RESPONSE_TYPES)


def _labelled(values: Any, class_labels: list[str] | None) -> list:
    if not isinstance(values, np.ndarray):
        return list(values)
    listed = values.tolist()
    if class_labels and values.ndim == 1 and np.issubdtype(values.dtype, np.integer):
        return [class_labels[v] if 0 <= v < len(class_labels) else v for v in listed]
    return listed
