"""Command line of the container: ``python -m twinserve_serving serve`` is the image's command.

serve        run the HTTP server (SageMaker passes "serve"; Azure ML runs the image's CMD)
batch        score a folder of files (see batch.py)
healthcheck  exit 0 if the local server answers /ping with 200 (the Dockerfile HEALTHCHECK)
"""

from __future__ import annotations

import argparse
import http.client
import sys
from pathlib import Path

from .config import ConfigError, ServerConfig
from .routes import SAGEMAKER_PING_PATH


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m twinserve_serving", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server; settings come from the environment (config.py)")
    serve.add_argument("--host", help="bind address (default 0.0.0.0, or TWINSERVE_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8080, or SAGEMAKER_BIND_TO_PORT)")
    serve.add_argument("--model-dir", type=Path, help="model folder (default AZUREML_MODEL_DIR or /opt/ml/model)")
    serve.add_argument("--workers", type=int, help="server processes (default 1)")
    serve.add_argument("--threads", type=int, help="concurrent predictions per process (default 4)")

    batch = commands.add_parser("batch", help="score every file in INPUT_DIR into OUTPUT_DIR")
    batch.add_argument("input_dir", type=Path)
    batch.add_argument("output_dir", type=Path)
    batch.add_argument("--model-dir", type=Path, help="model folder (default as for serve)")
    batch.add_argument("--content-type", help="media type of every input (default: by file extension)")
    batch.add_argument("--accept", help="media type of the outputs (default application/json)")

    commands.add_parser("healthcheck", help="exit 0 when GET /ping on the local server answers 200")
    return parser


def healthcheck(config: ServerConfig) -> int:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", config.port, timeout=2)
        connection.request("GET", SAGEMAKER_PING_PATH)
        return 0 if connection.getresponse().status == 200 else 1
    except OSError:
        return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = ServerConfig.from_env(
            **{k: getattr(args, k, None) for k in ("host", "port", "model_dir", "workers", "threads")}
        )
    except ConfigError as exc:
        print(f"twinserve_serving: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        from .server import serve

        return serve(config)
    if args.command == "batch":
        from .batch import run_batch

        return run_batch(args.input_dir, args.output_dir, config, args.content_type, args.accept)
    return healthcheck(config)


if __name__ == "__main__":
    sys.exit(main())
