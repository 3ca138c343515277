"""A SageMaker-style handler for the iris sample model: the four stages, unchanged from what the
SageMaker inference toolkit expects. Serve it with

    TWINSERVE_HANDLER=model_containers/examples/aws_handler/inference.py twinserve local

(or put it in the model archive as code/inference.py, or set SAGEMAKER_PROGRAM=inference.py).
"""

import json
import os

import numpy as np
import onnxruntime as ort


def model_fn(model_dir):
    """Load once per worker. Returns whatever predict_fn needs."""
    session = ort.InferenceSession(os.path.join(model_dir, "model.onnx"), providers=["CPUExecutionProvider"])
    with open(os.path.join(model_dir, "metadata.json")) as fh:
        labels = json.load(fh)["class_labels"]
    return session, labels


def input_fn(request_body, content_type):
    """Bytes in, model input out. content_type arrives lowercased without parameters."""
    if content_type != "application/json":
        # the server turns ValueError from input_fn into a 400 naming the problem
        raise ValueError(f"this handler reads application/json only, not {content_type}")
    return np.asarray(json.loads(request_body)["instances"], dtype=np.float32)


def predict_fn(data, model):
    session, labels = model
    label_index, probabilities = session.run(None, {session.get_inputs()[0].name: data})
    return [{"species": labels[i], "confidence": float(p[i])} for i, p in zip(label_index, probabilities, strict=True)]


def output_fn(prediction, accept, context=None):
    """The optional trailing `context` gives access to headers, e.g. SageMaker custom attributes."""
    if context is not None and context.custom_attributes:
        context.set_custom_attributes(context.custom_attributes)  # echo them back to the caller
    # A str/bytes body is sent with the negotiated Accept type; return (body, content_type) to choose.
    return json.dumps({"predictions": prediction})
