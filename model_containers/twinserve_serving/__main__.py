"""Command line of the container: ``python -m twinserve_serving serve`` is the image's command.

serve        run the HTTP server (SageMaker passes "serve"; Azure ML runs the image's CMD)
batch        score a folder of files (see batch.py)
healthcheck  exit 0 if the local server answers /ping with 200 (the Dockerfile HEALTHCHECK)
drift        compare captured requests with a baseline and write a drift report (see drift.py);
             needs no model. Exit 0 checked, 3 drift found with --fail-on-drift, 2 bad input
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
from datetime import UTC, datetime, timedelta
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

    drift = commands.add_parser(
        "drift",
        help="compare captured requests with a baseline; write drift.json and drift-report.md (no model needed)",
        description="Read every *.jsonl under the capture folder (SageMaker data capture or Azure ML data "
        "collector payload logging), compare the requests' features with the baseline and write "
        "OUTPUT/drift.json and OUTPUT/drift-report.md. Prints one JSON summary line. Exit 0 when checked "
        "(drift or not), 3 when drift was found and --fail-on-drift is given, 2 on bad input.",
    )
    drift.add_argument(
        "--baseline",
        type=Path,
        default=_env_path(DRIFT_ENV["baseline"]),
        help=f"baseline JSON (or {DRIFT_ENV['baseline']})",
    )
    drift.add_argument(
        "--capture",
        type=Path,
        default=_env_path(DRIFT_ENV["capture"]),
        help=f"capture folder (or {DRIFT_ENV['capture']})",
    )
    drift.add_argument(
        "--output", type=Path, default=_env_path(DRIFT_ENV["output"]), help=f"report folder (or {DRIFT_ENV['output']})"
    )
    drift.add_argument(
        "--since-hours",
        default=os.environ.get(DRIFT_ENV["since_hours"]),
        help=f"only requests of the last H hours (or {DRIFT_ENV['since_hours']}; default: all)",
    )
    drift.add_argument(
        "--fail-on-drift", action="store_true", help="exit 3 when a feature drifted (a failed job an alert can watch)"
    )
    return parser


DRIFT_ENV = {
    "baseline": "TWINSERVE_DRIFT_BASELINE",
    "capture": "TWINSERVE_DRIFT_CAPTURE",
    "output": "TWINSERVE_DRIFT_OUTPUT",
    "since_hours": "TWINSERVE_DRIFT_SINCE_HOURS",
}
"""Where a platform's job tells the drift command its mounted folders (the arguments win)."""


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value) if value else None


def run_drift(args: argparse.Namespace) -> int:
    from .drift import DriftInputError, check_drift, load_baseline, read_capture, summary_line, write_report

    def bad(argument: str, value: object, allowed: str) -> int:
        print(f"twinserve_serving drift: {argument} {value}: {allowed}", file=sys.stderr)
        return 2

    for name in ("baseline", "capture", "output"):
        if getattr(args, name) is None:
            return bad(f"--{name}", "(not set)", f"give --{name} or set {DRIFT_ENV[name]}")
    since = None
    if args.since_hours not in (None, ""):
        try:
            hours = float(args.since_hours)
        except ValueError:
            hours = -1.0
        if not hours > 0:
            return bad("--since-hours", repr(args.since_hours), "a number of hours > 0")
        since = datetime.now(UTC) - timedelta(hours=hours)
    try:
        baseline = load_baseline(args.baseline)
    except DriftInputError as exc:
        return bad("--baseline", args.baseline, f"{exc}; a baseline JSON written by twinserve is allowed")
    if not args.capture.is_dir():
        return bad("--capture", args.capture, "a folder of captured *.jsonl files (SageMaker or Azure ML) is allowed")
    results = check_drift(baseline, read_capture(args.capture, baseline, since))
    try:
        json_path, _ = write_report(results, args.output)
    except OSError as exc:
        return bad("--output", args.output, f"a writable folder is allowed ({exc})")
    print(summary_line(results, json_path), flush=True)
    return 3 if args.fail_on_drift and results["status"] == "drift" else 0


def healthcheck(config: ServerConfig) -> int:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", config.port, timeout=2)
        connection.request("GET", SAGEMAKER_PING_PATH)
        return 0 if connection.getresponse().status == 200 else 1
    except OSError:
        return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "drift":  # needs no model and no server settings
        return run_drift(args)
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
