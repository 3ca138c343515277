"""PyTorch models: TorchScript (``.pt``, torch.jit.save) or a torch.export archive (``.pt2``,
torch.export.save). Only the torch image variants carry torch. The input is one float32 tensor
of rows; metadata.json ``features`` names its columns. The model runs on the GPU when torch sees
one (the torch GPU image on a GPU host), else on the CPU; the device is logged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import logs
from ..payload import Batch, Signature, to_array
from . import Outputs, metadata_signature


class TorchModel:
    def __init__(self, path: Path, metadata: dict[str, Any], threads: int) -> None:
        import torch

        self._torch = torch
        torch.set_num_threads(threads)
        width = None
        # TorchScript takes any number of rows; an exported program may have traced a fixed one
        self.merges_rows = path.suffix.lower() != ".pt2"
        if path.suffix.lower() == ".pt2":
            program = torch.export.load(str(path))
            width = _export_width(program)
            self.module = program.module()
        else:
            self.module = torch.jit.load(str(path), map_location="cpu")
            self.module.eval()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.module = self.module.to(self.device)
        logs.info("torch_device", device=self.device)
        fallback = metadata_signature(metadata, np.float32)
        self.signature = Signature(fallback.names, width or fallback.width, np.float32)
        self.class_labels = metadata.get("class_labels")

    def predict(self, batch: Batch) -> Outputs:
        with self._torch.inference_mode():
            output = self.module(self._torch.from_numpy(to_array(batch, self.signature)).to(self.device))
        return Outputs({"predictions": output.cpu().numpy()}, class_labels=self.class_labels)


def _export_width(program: Any) -> int | None:
    """The feature count an exported program was traced with: the last dimension of its one input."""
    user_inputs = [spec.arg.name for spec in program.graph_signature.input_specs if spec.kind.name == "USER_INPUT"]
    if len(user_inputs) != 1:
        return None
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name == user_inputs[0]:
            shape = getattr(node.meta.get("val"), "shape", None)
            return int(shape[-1]) if shape is not None and len(shape) == 2 and isinstance(shape[-1], int) else None
    return None


def load(path: Path, metadata: dict[str, Any], config: Any) -> TorchModel:
    return TorchModel(path, metadata, config.onnx_threads)
