"""TorchServe: a custom handler running the ONNX model with onnxruntime (TorchServe serves any
Python handler); POST /predictions/<model> with {"instances": [[...]]}."""

import json

from onnx_common import OnnxModel


class OnnxHandler:
    def initialize(self, context) -> None:
        self.onnx = OnnxModel(context.system_properties["model_dir"])

    def handle(self, data, context) -> list:
        answers = []
        for request in data:  # one entry per request (several when TorchServe batches)
            body = request.get("body") or request.get("data")
            document = json.loads(body) if isinstance(body, (bytes, bytearray, str)) else body
            answers.append({"predictions": self.onnx.predictions(self.onnx.run(document["instances"]))})
        return answers


_service = OnnxHandler()


def handle(data, context):
    if data is None:  # TorchServe's initialisation call
        _service.initialize(context)
        return None
    if not hasattr(_service, "onnx"):
        _service.initialize(context)
    return _service.handle(data, context)
