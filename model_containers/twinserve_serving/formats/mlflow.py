"""MLflow models (an ``MLmodel`` file with a python_function flavor), loaded with mlflow-skinny's
pyfunc. No environment is created: the model's dependencies are baked into the image at build time
(model_image/Dockerfile). MLflow models are code by design (a flavor's loader, a cloudpickled
python_model): serving one trusts it as much as a handler.

The signature, when the model has one, names and types the input: a column-based signature gets a
pandas DataFrame with those columns in that order and types; a tensor-based one a numpy array.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadRequest
from ..payload import Batch, Signature, ordered_rows, to_array
from . import Outputs


class MLflowModel:
    merges_rows = False  # a pyfunc may treat a request as a whole (a DataFrame): never merged

    def __init__(self, folder: Path) -> None:
        import mlflow.pyfunc
        import pandas

        self._pandas = pandas
        self.pyfunc = mlflow.pyfunc.load_model(str(folder))
        schema = self.pyfunc.metadata.get_input_schema()
        self.tensor = schema is not None and schema.is_tensor_spec()
        self.column_types: dict[str, Any] | None = None
        if schema is None:
            self.signature = Signature(dtype=object)
        elif self.tensor:
            spec = schema.inputs[0]
            width = spec.shape[-1] if len(spec.shape) == 2 and spec.shape[-1] > 0 else None
            self.signature = Signature(width=width, dtype=spec.type)
        elif schema.has_input_names():
            names = tuple(schema.input_names())
            self.column_types = dict(zip(names, schema.numpy_types(), strict=True))
            self.signature = Signature(names=names, width=len(names), dtype=object)
        else:
            self.signature = Signature(width=len(schema.inputs), dtype=object)

    def predict(self, batch: Batch) -> Outputs:
        if self.tensor:
            return _outputs(self.pyfunc.predict(to_array(batch, self.signature)))
        if self.column_types:  # built typed in one go: a DataFrame and astype() per column cost ~1 ms
            rows = ordered_rows(batch, self.signature)
            columns = zip(*rows, strict=True) if isinstance(rows, list) else rows.T
            frame = self._pandas.DataFrame(
                {
                    name: _column(name, values, self.column_types[name])
                    for name, values in zip(self.signature.names, columns, strict=True)
                }
            )
        else:  # no names in the signature (or no signature): the columns as sent
            rows = batch.rows if batch.columns is not None else ordered_rows(batch, self.signature)
            frame = self._pandas.DataFrame(list(rows), columns=batch.columns)
        return _outputs(self.pyfunc.predict(frame))


def _column(name: str, values: Any, dtype: Any) -> np.ndarray:
    try:
        return np.asarray(values, dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"column {name!r} must hold {np.dtype(dtype).name} values: {exc}") from None


def _outputs(result: Any) -> Outputs:
    """pyfunc returns a DataFrame, Series, array, list or dict; each becomes {"predictions": ...}."""
    if hasattr(result, "to_dict") and hasattr(result, "columns"):  # DataFrame: one object per row
        return Outputs({str(name): result[name].to_numpy() for name in result.columns}, named=True)
    if hasattr(result, "to_numpy"):  # Series
        return Outputs({"predictions": result.to_numpy()})
    if isinstance(result, dict):
        return Outputs({str(k): np.asarray(v) for k, v in result.items()}, named=True)
    return Outputs({"predictions": result if isinstance(result, (np.ndarray, list)) else np.asarray(result)})


def load(path: Path, metadata: dict[str, Any], config: Any) -> MLflowModel:
    return MLflowModel(path.parent)
