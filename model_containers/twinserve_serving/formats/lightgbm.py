"""LightGBM models saved as text (Booster.save_model): predictions are the booster's output, the
class probabilities for a multiclass model. The image needs libgomp1 (LightGBM uses OpenMP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..payload import Batch, Signature, to_array
from . import Outputs


class LightGBMModel:
    merges_rows = True  # rows in, one prediction per row out: adaptive batching may merge requests

    def __init__(self, path: Path, threads: int) -> None:
        import lightgbm

        self.booster = lightgbm.Booster(model_file=str(path))
        self.threads = threads
        names = self.booster.feature_name()
        # Trained on an array, LightGBM names the features Column_0, Column_1, ...: no real names.
        generated = names == [f"Column_{i}" for i in range(len(names))]
        self.signature = Signature(
            names=None if generated else tuple(names), width=self.booster.num_feature(), dtype=np.float64
        )

    def predict(self, batch: Batch) -> Outputs:
        return Outputs({"predictions": self.booster.predict(to_array(batch, self.signature), num_threads=self.threads)})


def load(path: Path, metadata: dict[str, Any], config: Any) -> LightGBMModel:
    return LightGBMModel(path, config.onnx_threads)
