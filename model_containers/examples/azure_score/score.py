"""An Azure ML score.py for the iris sample model, unchanged from what Azure's inference server
expects. Serve it with

    AZUREML_ENTRY_SCRIPT=model_containers/examples/azure_score/score.py twinserve local

init() runs once per worker with AZUREML_MODEL_DIR pointing at the model folder (the server sets
it to the model dir on SageMaker and locally too); run() gets the request body as a str.
"""

import json
import os

import numpy as np
import onnxruntime as ort

session = None
labels = None


def _find(model_root, name):
    # Azure mounts the registered folder inside AZUREML_MODEL_DIR (e.g. .../model/model.onnx)
    for root, _dirs, files in os.walk(model_root):
        if name in files:
            return os.path.join(root, name)
    raise FileNotFoundError(f"{name} not found under {model_root}")


def init():
    global session, labels
    model_root = os.environ["AZUREML_MODEL_DIR"]
    session = ort.InferenceSession(_find(model_root, "model.onnx"), providers=["CPUExecutionProvider"])
    with open(_find(model_root, "metadata.json")) as fh:
        labels = json.load(fh)["class_labels"]


def run(raw_data):
    rows = np.asarray(json.loads(raw_data)["data"], dtype=np.float32)
    label_index, probabilities = session.run(None, {session.get_inputs()[0].name: rows})
    return {"predictions": [labels[i] for i in label_index], "probabilities": probabilities.tolist()}
