"""Azure's reference server (azureml-inference-server-http): the score.py an Azure user writes."""

import json
import os

from onnx_common import OnnxModel

model = None


def init():
    global model
    model = OnnxModel(os.environ["AZUREML_MODEL_DIR"])


def run(raw_data):
    return {"predictions": model.predictions(model.run(json.loads(raw_data)["instances"]))}
