"""Azure ML batch deployment entry script: runs the common container's batch mode on each mini-batch.

Azure ML's batch runtime calls ``init()`` once per worker and ``run(mini_batch)`` with a list of
input file paths. Each mini-batch is scored by ``twinserve_serving.batch.run_batch`` - the same code
as ``python -m twinserve_serving batch`` and SageMaker batch transform - into the deployment's
output folder (output action ``SummaryOnly``: the container writes ``<input>.out`` files itself).
"""

import os
import tempfile
from pathlib import Path

from twinserve_serving.batch import run_batch
from twinserve_serving.config import ServerConfig

_config = None
_output_dir = None


def init():
    global _config, _output_dir
    _config = ServerConfig.from_env()
    _output_dir = Path(os.environ.get("AZUREML_BI_OUTPUT_PATH", "outputs"))
    _output_dir.mkdir(parents=True, exist_ok=True)


def run(mini_batch):
    with tempfile.TemporaryDirectory() as staging:
        for item in mini_batch:
            source = Path(item)
            os.symlink(source, Path(staging) / source.name)
        code = run_batch(Path(staging), _output_dir, _config)
    if code == 2:
        raise RuntimeError("the model could not be loaded or the batch could not start")
    # One line per input, so Azure ML counts successes; failures have an .error.json beside the outputs.
    return [str(item) for item in mini_batch]
