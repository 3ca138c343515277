"""KServe's Python model server: a kserve.Model running the ONNX model with onnxruntime, answering
KServe's v1 protocol ({"instances": ...} -> {"predictions": ...}).

    python kserve_model.py --model_name NAME --model_dir DIR --http_port N --enable_grpc false
"""

import argparse

import kserve
from onnx_common import OnnxModel


class OnnxKServeModel(kserve.Model):
    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.load()

    def load(self) -> bool:
        self.onnx = OnnxModel(self.model_dir)
        self.ready = True
        return self.ready

    async def predict(self, payload, headers=None, response_headers=None):
        return {"predictions": self.onnx.predictions(self.onnx.run(payload["instances"]))}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    kserve.ModelServer().start([OnnxKServeModel(args.model_name, args.model_dir)])
