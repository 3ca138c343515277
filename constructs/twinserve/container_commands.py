"""`twinserve local` and `twinserve batch`: the container's own server and batch scorer, run on
this machine without Docker -- the SageMaker local-mode / Azure ML ``--local`` experience.

Both call the same code the image runs (``python -m twinserve_serving serve|batch``), with the same
environment variables honoured; only the bind address (127.0.0.1) differs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
import tarfile
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_MODEL_BUILDER = REPO_ROOT / "model_containers" / "sample_model" / "build_sample_model.py"
SAMPLE_MODEL_OUT = REPO_ROOT / "build" / "sample-model"
SAMPLE_ROW = [5.1, 3.5, 1.4, 0.2]


def add_container_commands(subparsers) -> None:
    """Register `local` and `batch` on the `twinserve` command's subparsers."""
    local = subparsers.add_parser(
        "local",
        help="serve a model on 127.0.0.1 exactly as the container image would (no Docker)",
        description="Serve a model on 127.0.0.1 with the container's own server: SageMaker routes (/ping, "
        "/invocations, /execution-parameters), Azure ML routes (/live, /ready, /score) and /metrics "
        "on one port. Prints the URL and a ready-to-paste curl. SIGTERM or Ctrl-C stops accepting, "
        "finishes in-flight requests and exits 0. The container's environment variables "
        "(SAGEMAKER_*, AZUREML_*, WORKER_COUNT, SCORING_TIMEOUT_MS, TWINSERVE_*) apply as in the image.",
    )
    local.add_argument(
        "--model-dir",
        type=Path,
        metavar="DIR",
        help="model folder or model.tar.gz to serve (default: the iris sample model, built into "
        "build/sample-model/ if missing)",
    )
    local.add_argument(
        "--port",
        type=int,
        default=8080,
        metavar="N",
        help="port on 127.0.0.1 (default 8080, the image's port; 0 picks a free one)",
    )
    local.add_argument("--workers", type=int, metavar="N", help="server processes (default 1)")
    local.add_argument("--threads", type=int, metavar="N", help="concurrent predictions per process (default 4)")
    local.add_argument(
        "--handler",
        metavar="FILE",
        help="handler script: AWS-style stages (model_fn/input_fn/predict_fn/output_fn) or an Azure "
        "score.py (init/run); default: none, the model folder is served by its format "
        "(ONNX, MLflow, scikit-learn, XGBoost, LightGBM, PyTorch; TWINSERVE_MODEL_FORMAT forces one)",
    )
    local.set_defaults(func=_cmd_local)

    batch = subparsers.add_parser(
        "batch",
        help="score every file in INPUT_DIR into OUTPUT_DIR, one output per input",
        description="Score every file under INPUT_DIR with the container's handler, as SageMaker batch transform "
        "and Azure ML batch deployments do: INPUT_DIR/a.csv -> OUTPUT_DIR/a.csv.out, or "
        "OUTPUT_DIR/a.csv.error.json when that file fails; OUTPUT_DIR/_manifest.json lists every "
        "input. A bad file never stops the others. Exit 0 when all files scored, 1 when some "
        "failed, 2 when the model could not be loaded.",
    )
    batch.add_argument("input_dir", type=Path, metavar="INPUT_DIR", help="folder of input files (read recursively)")
    batch.add_argument("output_dir", type=Path, metavar="OUTPUT_DIR", help="folder for the outputs (created)")
    batch.add_argument(
        "--model-dir",
        type=Path,
        metavar="DIR",
        help="model folder or model.tar.gz (default: the iris sample model, built if missing)",
    )
    batch.add_argument(
        "--content-type",
        metavar="TYPE",
        help="media type of every input (default: by extension: .json application/json, "
        ".csv text/csv, .npy application/x-npy, else application/octet-stream)",
    )
    batch.add_argument("--accept", metavar="TYPE", help="media type of the outputs (default application/json)")
    batch.add_argument("--handler", metavar="FILE", help="handler script, as for `twinserve local`")
    batch.set_defaults(func=_cmd_batch)


def _sample_model_dir() -> Path:
    model_dir = SAMPLE_MODEL_OUT / "model"
    if not (model_dir / "model.onnx").is_file():
        print(f"building the sample model into {SAMPLE_MODEL_OUT} ...", file=sys.stderr)
        spec = importlib.util.spec_from_file_location("build_sample_model", SAMPLE_MODEL_BUILDER)
        assert spec is not None and spec.loader is not None
        builder = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(builder)
        builder.build(SAMPLE_MODEL_OUT)
    return model_dir


def _resolve_model_dir(path: Path | None, scratch: Path) -> Path:
    """The folder to serve; a model.tar.gz is unpacked first, as SageMaker does into /opt/ml/model."""
    if path is None:
        return _sample_model_dir()
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(path) as archive:
            archive.extractall(scratch, filter="data")
        return scratch
    if not path.is_dir():
        raise FileNotFoundError(f"--model-dir {path} is neither a folder nor a .tar.gz archive")
    return path.resolve()


def _example_payload(model_dir: Path) -> str:
    metadata_path = next(iter(sorted(model_dir.glob("**/metadata.json"))), None)
    width = len(SAMPLE_ROW)
    if metadata_path is not None:
        width = len(json.loads(metadata_path.read_text()).get("features") or SAMPLE_ROW)
    row = SAMPLE_ROW if width == len(SAMPLE_ROW) else [1.0] * width
    return json.dumps({"instances": [row]})


def _cmd_local(args: argparse.Namespace) -> int:
    from twinserve_serving.config import ConfigError, ServerConfig
    from twinserve_serving.server import serve

    with tempfile.TemporaryDirectory(prefix="twinserve-model-") as scratch:
        try:
            model_dir = _resolve_model_dir(args.model_dir, Path(scratch))
            config = ServerConfig.from_env(
                host="127.0.0.1",
                port=args.port,
                model_dir=model_dir,
                workers=args.workers,
                threads=args.threads,
                handler=args.handler,
            )
        except (ConfigError, FileNotFoundError, ImportError, tarfile.TarError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        payload = _example_payload(model_dir)

        def banner(host: str, port: int) -> None:
            url = f"http://{host}:{port}"
            curl = f"curl -s -X POST {url}/invocations -H 'Content-Type: application/json' -d {shlex.quote(payload)}"
            print(
                f"twinserve local: serving {model_dir} at {url}\n"
                f"  SageMaker: {url}/ping  {url}/invocations    Azure ML: {url}/live  {url}/ready  {url}/score\n"
                f"  try:  {curl}\n"
                f"  stop: Ctrl-C or SIGTERM (in-flight requests finish first)",
                flush=True,
            )

        return serve(config, on_listening=banner)


def _cmd_batch(args: argparse.Namespace) -> int:
    from twinserve_serving.batch import MANIFEST_NAME, run_batch
    from twinserve_serving.config import ConfigError, ServerConfig

    with tempfile.TemporaryDirectory(prefix="twinserve-model-") as scratch:
        try:
            model_dir = _resolve_model_dir(args.model_dir, Path(scratch))
            config = ServerConfig.from_env(model_dir=model_dir, handler=args.handler)
        except (ConfigError, FileNotFoundError, ImportError, tarfile.TarError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        code = run_batch(args.input_dir, args.output_dir, config, args.content_type, args.accept)
    manifest = args.output_dir / MANIFEST_NAME
    if manifest.is_file():
        summary = json.loads(manifest.read_text())
        print(
            f"twinserve batch: {summary['files']} files, {summary['succeeded']} scored, {summary['failed']} failed; "
            f"outputs in {args.output_dir} (manifest: {manifest})"
        )
    return code
