"""Seldon MLServer: a custom runtime (MLModel) running the ONNX model with onnxruntime, answering
the V2 inference protocol, as an MLServer user serves an ONNX model (there is no mlserver-onnx
runtime in the current releases)."""

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from onnx_common import OnnxModel


class OnnxRuntime(MLModel):
    async def load(self) -> bool:
        self.onnx = OnnxModel(self.settings.parameters.uri)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        rows = NumpyCodec.decode_input(payload.inputs[0])
        outputs = self.onnx.run(rows)
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                NumpyCodec.encode_output(name, values if values.dtype.kind != "U" else values.astype(object))
                for name, values in zip(self.onnx.names, outputs, strict=True)
            ],
        )
