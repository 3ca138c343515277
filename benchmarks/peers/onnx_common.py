"""What every peer's adapter does with the model, written once so the peers differ only in their
server: the same onnxruntime session options as our default handler (one thread per call), the same
JSON answer ({"predictions": [{<output>: value, ...}, ...]}, integer classes mapped to
metadata.json's class_labels). Copied beside each peer's entry file by bench_serving.py; imports only
numpy and onnxruntime, which every peer's virtual environment has."""

import json
import os

import numpy as np
import onnxruntime as ort


class OnnxModel:
    def __init__(self, model_dir: str) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            os.path.join(model_dir, "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        metadata = os.path.join(model_dir, "metadata.json")
        self.labels = json.load(open(metadata)).get("class_labels") if os.path.isfile(metadata) else None
        self.input = self.session.get_inputs()[0].name
        self.names = [o.name for o in self.session.get_outputs()]

    def run(self, rows) -> list:
        return self.session.run(None, {self.input: np.asarray(rows, dtype=np.float32)})

    def predictions(self, outputs: list) -> list[dict]:
        columns = []
        for values in outputs:
            listed = values.tolist()
            if self.labels and values.ndim == 1 and np.issubdtype(values.dtype, np.integer):
                listed = [self.labels[v] for v in listed]
            columns.append(listed)
        return [dict(zip(self.names, row, strict=True)) for row in zip(*columns, strict=True)]
