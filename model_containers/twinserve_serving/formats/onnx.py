"""ONNX models with onnxruntime: the core image's format (metadata.json gives names and labels).

Execution provider: CUDA when onnxruntime offers it (onnxruntime-gpu, the GPU images), else CPU;
the one the session really uses is logged (``onnx_provider``), since onnxruntime falls back to CPU
by itself when CUDA cannot start (no GPU, or a driver too old for CUDA 12)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import logs
from ..payload import Batch, Signature, to_array
from . import Outputs

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"

_ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


class OnnxModel:
    merges_rows = True  # unless the model fixes its batch dimension (set in __init__)

    def __init__(self, path: Path, metadata: dict[str, Any], threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # Small models: one thread per call beats a thread pool spinning up per call, and the
        # server already runs calls concurrently.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        available = ort.get_available_providers()
        providers = choose_providers(available)
        if CUDA in providers and hasattr(ort, "preload_dlls"):
            # CUDA and cuDNN come as pip packages (onnxruntime-gpu[cuda,cudnn]), not system libraries
            ort.preload_dlls()
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        logs.info("onnx_provider", provider=self.session.get_providers()[0], requested=providers, available=available)
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.input_name = metadata.get("input_name") or next(iter(inputs))
        if self.input_name not in inputs:
            raise ValueError(f"metadata.json input_name {self.input_name!r} is not a model input ({', '.join(inputs)})")
        model_input = inputs[self.input_name]
        # a fixed first dimension (a model exported for one row) cannot take merged rows
        self.merges_rows = not (model_input.shape and isinstance(model_input.shape[0], int))
        features = metadata.get("features")
        width = model_input.shape[1] if len(model_input.shape) == 2 else None
        self.signature = Signature(
            names=tuple(features) if features else None,
            width=width if isinstance(width, int) else (len(features) if features else None),
            dtype=_ONNX_DTYPES.get(model_input.type, np.float32),
        )
        self.class_labels: list[str] | None = metadata.get("class_labels")
        self.output_names = [o.name for o in self.session.get_outputs()]

    def predict(self, batch: Batch) -> Outputs:
        results = self.session.run(None, {self.input_name: to_array(batch, self.signature)})
        return Outputs(dict(zip(self.output_names, results, strict=True)), named=True, class_labels=self.class_labels)


def choose_providers(available: list[str]) -> list[str]:
    """CUDA first (CPU behind it for the operators CUDA lacks) when onnxruntime offers it, else CPU."""
    return [CUDA, CPU] if CUDA in available else [CPU]


def load(path: Path, metadata: dict[str, Any], config: Any) -> OnnxModel:
    return OnnxModel(path, metadata, threads=config.onnx_threads)
