"""A test handler (AWS style) whose behaviour the tests choose through the environment (load) and
the request body (per request): {"sleep": s}, {"raise": "message"}, {"echo": ...}."""

import json
import os
import time
from pathlib import Path


def model_fn(model_dir):
    time.sleep(float(os.environ.get("TEST_LOAD_SLEEP_S", "0")))
    if os.environ.get("TEST_LOAD_FAIL"):
        raise RuntimeError("weights are corrupt (test)")
    return {"model_dir": model_dir}


def input_fn(body, content_type):
    return json.loads(body)


def predict_fn(data, model, context):
    if marker := os.environ.get("TEST_STARTED_MARKER"):
        Path(marker).write_text(context.request_id)
    time.sleep(float(data.get("sleep", 0)))
    if "raise" in data:
        raise RuntimeError(data["raise"])
    return {"echo": data.get("echo"), "custom_attributes": context.custom_attributes}


def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
