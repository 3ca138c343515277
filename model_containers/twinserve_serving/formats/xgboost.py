"""XGBoost models saved with save_model (JSON or UBJSON): a Booster, or an XGBClassifier/XGBRegressor
(the file then records its scikit-learn wrapper, and predictions are what its predict() gives)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..payload import Batch, Signature, to_array
from . import Outputs, metadata_signature


class XGBoostModel:
    merges_rows = True  # rows in, one prediction per row out: adaptive batching may merge requests

    def __init__(self, path: Path, metadata: dict[str, Any], threads: int) -> None:
        import xgboost

        self._xgboost = xgboost
        self.booster = xgboost.Booster(params={"nthread": threads}, model_file=str(path))
        wrapper = json.loads(self.booster.attr("scikit_learn") or "{}").get("_estimator_type")
        self.estimator = None
        if wrapper in ("classifier", "regressor"):
            self.estimator = (xgboost.XGBClassifier if wrapper == "classifier" else xgboost.XGBRegressor)(
                n_jobs=threads
            )
            self.estimator.load_model(str(path))
        names = self.booster.feature_names
        fallback = metadata_signature(metadata, np.float32)
        self.signature = Signature(
            names=tuple(names) if names else fallback.names, width=self.booster.num_features(), dtype=np.float32
        )
        self.class_labels = metadata.get("class_labels")

    def predict(self, batch: Batch) -> Outputs:
        array = to_array(batch, self.signature)
        if self.estimator is not None:
            predictions = self.estimator.predict(array)
        else:
            names = list(self.signature.names) if self.signature.names else None
            predictions = self.booster.predict(self._xgboost.DMatrix(array, feature_names=names))
        return Outputs({"predictions": predictions}, class_labels=self.class_labels)


def load(path: Path, metadata: dict[str, Any], config: Any) -> XGBoostModel:
    return XGBoostModel(path, metadata, config.onnx_threads)
