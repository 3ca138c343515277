"""A test handler (AWS style) for the Lambda tests: model_fn reports the environment the libraries see
when the model loads (to TEST_ENV_REPORT), waits TEST_LOAD_SLEEP_S, then loads the model with the
default handler; the other stages are the default handler's."""

import json
import os
import time

from twinserve_serving import default_handler
from twinserve_serving.lambda_settings import CACHE_VARIABLES, NO_SUBPROCESS_VARIABLES


def model_fn(model_dir):
    names = ["HOME", "TMPDIR", *CACHE_VARIABLES, *NO_SUBPROCESS_VARIABLES]
    with open(os.environ["TEST_ENV_REPORT"], "w") as report:
        json.dump({name: os.environ.get(name) for name in names}, report)
    time.sleep(float(os.environ.get("TEST_LOAD_SLEEP_S", "0")))
    return default_handler.model_fn(model_dir)
