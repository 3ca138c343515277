"""BentoML: a service whose API runs the ONNX model with onnxruntime; POST /predict with
{"instances": [[...]]}. BENCH_MODEL_DIR names the model folder; BENCH_BATCHING=1 makes the API
batchable (BentoML's adaptive batching, max BENCH_MAX_BATCH rows)."""

import os

import bentoml
import numpy as np
from onnx_common import OnnxModel

MODEL_DIR = os.environ["BENCH_MODEL_DIR"]
BATCHING = os.environ.get("BENCH_BATCHING") == "1"
MAX_BATCH = int(os.environ.get("BENCH_MAX_BATCH", "32"))


@bentoml.service(workers=1, threads=4)
class OnnxService:
    def __init__(self) -> None:
        self.onnx = OnnxModel(MODEL_DIR)

    if BATCHING:

        @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=60000)
        def predict(self, instances: np.ndarray) -> list[dict]:
            return self.onnx.predictions(self.onnx.run(instances))

    else:

        @bentoml.api
        def predict(self, instances: list[list[float]]) -> dict:
            return {"predictions": self.onnx.predictions(self.onnx.run(instances))}
