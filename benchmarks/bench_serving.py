"""Benchmark: our server vs Azure's reference server on the same ONNX model, same load generator;
then our server once per model format (the same iris classifier as MLflow, skops, joblib, XGBoost,
LightGBM, TorchScript and torch.export samples), same load, same request.

    .venv/bin/python benchmarks/bench_serving.py                 # the README table
    .venv/bin/python benchmarks/bench_serving.py --requests 2000 --concurrency 1 4
    .venv/bin/python benchmarks/bench_serving.py --no-reference --formats lightgbm xgboost

What it does, all on 127.0.0.1 and bounded in requests and time:
  1. builds the iris sample model into benchmarks/results/model (scikit-learn, build time only);
  2. creates benchmarks/.venv-ref with azureml-inference-server-http (pinned, from PyPI) once, so
     its Flask/gunicorn never enter the project's venv;
  3. writes an equivalent score.py (same onnxruntime session options, same JSON in and out);
  4. for each server: starts it, records process start -> first successful scoring response, then
     for each concurrency runs a warm-up and a fixed number of requests through one closed-loop
     generator (C connections, each sends a request and waits for its answer; keep-alive where the
     server allows it -- gunicorn's sync worker closes after every response, so reconnecting is
     part of its latency, as for its real clients);
  5. prints a markdown table: req/s, p50, p99, start-to-ready, and our/reference ratios;
  6. for each format sample (build_sample_model.py --format; skipped when its framework is missing)
     starts our server on it and measures it the same way (start-to-ready includes the framework's
     import).

Both servers run one worker process, their default (Azure: WORKER_COUNT=1) and the right size
for a 2-vCPU box where the load generator needs the other core.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REF_VENV = ROOT / "benchmarks" / ".venv-ref"
REF_PACKAGES = ["azureml-inference-server-http==1.5.1", "onnxruntime==1.31.1", "numpy==2.4.6"]
BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()

# The reference's score.py: what an Azure user writes for this model, made equivalent to our
# default handler (same session options, same request and response JSON).
REFERENCE_SCORE_PY = """
import json, os
import numpy as np
import onnxruntime as ort

session = labels = names = None

def init():
    global session, labels, names
    model_dir = os.environ["AZUREML_MODEL_DIR"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(os.path.join(model_dir, "model.onnx"), options, providers=["CPUExecutionProvider"])
    labels = json.load(open(os.path.join(model_dir, "metadata.json")))["class_labels"]
    names = [o.name for o in session.get_outputs()]

def run(raw_data):
    rows = np.asarray(json.loads(raw_data)["instances"], dtype=np.float32)
    label, probabilities = session.run(None, {session.get_inputs()[0].name: rows})
    return {"predictions": [{"label": labels[i], "probabilities": p}
                            for i, p in zip(label.tolist(), probabilities.tolist())]}
"""


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    path: str
    port: int


@dataclass
class LoadResult:
    concurrency: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_model() -> Path:
    out = RESULTS / "model-build"
    if not (out / "model" / "model.onnx").is_file():
        subprocess.run(
            [sys.executable, str(ROOT / "model_containers/sample_model/build_sample_model.py"), "--out", str(out)],
            check=True,
        )
    return out / "model"


def ensure_reference_venv() -> Path:
    server = REF_VENV / "bin" / "azmlinfsrv"
    if not server.is_file():
        print(f"creating {REF_VENV} with {', '.join(REF_PACKAGES)} (once) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(REF_VENV)], check=True)
        subprocess.run(
            [str(REF_VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *REF_PACKAGES],
            check=True,
        )
    return server


# ---------------------------------------------------------------------------- load generator
def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def drive(port: int, path: str, concurrency: int, total: int, timeout_s: float = 120) -> LoadResult:
    """Closed loop: `concurrency` connections, each with one request outstanding, until `total`
    responses. One selector loop in this process: the cheapest client Python can be, so the
    generator is not what limits the servers."""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    selector = selectors.DefaultSelector()
    latencies: list[float] = []
    errors = sent = 0

    def send(state: dict, started: float) -> None:
        nonlocal sent
        sent += 1
        state["started"], state["buffer"] = started, b""
        state["sock"].sendall(request)

    for _ in range(min(concurrency, total)):
        state = {"sock": _connect(port)}
        selector.register(state["sock"], selectors.EVENT_READ, state)
        send(state, time.perf_counter())
    began = time.perf_counter()
    deadline = began + timeout_s
    while len(latencies) < total:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"load did not finish within {timeout_s} s")
        for key, _ in selector.select(timeout=1):
            state = key.data
            chunk = state["sock"].recv(65536)
            if not chunk:
                raise ConnectionError("server closed a connection without answering")
            state["buffer"] += chunk
            buffer = state["buffer"]
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                continue
            head = buffer[:end].lower()
            at = head.find(b"content-length:")
            length = (
                int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None]) if at >= 0 else 0
            )
            if len(buffer) < end + 4 + length:
                continue
            now = time.perf_counter()
            latencies.append(now - state["started"])
            if buffer[9:12] != b"200":
                errors += 1
            if b"connection: close" in head:  # reconnecting is part of the next request's latency
                selector.unregister(state["sock"])
                state["sock"].close()
                if sent < total:
                    state["sock"] = _connect(port)
                    selector.register(state["sock"], selectors.EVENT_READ, state)
                    send(state, now)
                continue
            if sent < total:
                send(state, now)
            else:
                selector.unregister(state["sock"])
                state["sock"].close()
    seconds = time.perf_counter() - began
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    latencies.sort()
    return LoadResult(
        concurrency,
        total,
        seconds,
        statistics.median(latencies) * 1000,
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        errors,
    )


# ---------------------------------------------------------------------------- servers
def start(server: Server, log: Path, timeout_s: float = 60) -> tuple[subprocess.Popen, float]:
    """Start the server and time process start -> first 200 on the scoring route."""
    import http.client

    started = time.perf_counter()
    process = subprocess.Popen(server.command, env=server.env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {process.returncode}; see {log}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            connection.request("POST", server.path, BODY, {"Content-Type": "application/json"})
            if connection.getresponse().status == 200:
                return process, time.perf_counter() - started
        except OSError:
            pass
        finally:
            connection.close()
        if time.perf_counter() - started > timeout_s:
            process.kill()
            raise TimeoutError(f"{server.name} not ready within {timeout_s} s; see {log}")
        time.sleep(0.002)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def format_servers(samples: list[str]) -> list[Server]:
    """Our server (1 worker) on each format sample; a sample whose framework is missing is skipped."""
    sys.path.insert(0, str(ROOT / "model_containers" / "sample_model"))
    from build_sample_model import build_format

    base = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "AZUREML_", "TWINSERVE_"))}
    out = []
    for sample in samples:
        model_dir = RESULTS / "models" / sample / "model"
        if not model_dir.is_dir():
            try:
                build_format(sample, model_dir.parent)
            except ImportError as exc:
                print(f"  skipping {sample}: {exc}", file=sys.stderr)
                continue
        port = free_port()
        # the benchmark trusts its own joblib sample; loading pickle is refused otherwise
        trust = {"TWINSERVE_TRUST_PICKLE": "true"} if sample == "sklearn-joblib" else {}
        out.append(
            Server(
                f"twinserve {sample} (1 worker)",
                [sys.executable, "-m", "twinserve_serving", "serve"],
                {
                    **base,
                    "SAGEMAKER_BIND_TO_PORT": str(port),
                    "TWINSERVE_HOST": "127.0.0.1",
                    "TWINSERVE_MODEL_DIR": str(model_dir),
                    **trust,
                },
                "/invocations",
                port,
            )
        )
    return out


def servers(model_dir: Path, ref_server: Path | None, workers: list[int]) -> list[Server]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "AZUREML_", "TWINSERVE_"))}
    out = []
    for n in workers:
        port = free_port()
        out.append(
            Server(
                f"twinserve ({n} worker{'s' if n > 1 else ''})",
                [sys.executable, "-m", "twinserve_serving", "serve"],
                {
                    **base,
                    "SAGEMAKER_BIND_TO_PORT": str(port),
                    "TWINSERVE_HOST": "127.0.0.1",
                    "TWINSERVE_MODEL_DIR": str(model_dir),
                    "TWINSERVE_WORKERS": str(n),
                },
                "/invocations",
                port,
            )
        )
    if ref_server is not None:
        app_root = RESULTS / "reference-app"
        app_root.mkdir(parents=True, exist_ok=True)
        (app_root / "score.py").write_text(REFERENCE_SCORE_PY)
        port = free_port()
        out.append(
            Server(
                "azmlinfsrv (reference, 1 worker)",
                [str(ref_server), "--entry_script", str(app_root / "score.py"), "--port", str(port)],
                {**base, "AZUREML_MODEL_DIR": str(model_dir), "WORKER_COUNT": "1"},
                "/score",
                port,
            )
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="measured requests per concurrency (default 5000)")
    parser.add_argument("--warmup", type=int, default=500, help="unmeasured requests first (default 500)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16], help="default: 1 4 16")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1], help="our server's worker-process counts to measure (default: 1)"
    )
    parser.add_argument("--no-reference", action="store_true", help="skip azureml-inference-server-http")
    parser.add_argument(
        "--formats",
        nargs="*",
        default=None,
        metavar="SAMPLE",
        help="format samples to measure (default: all of build_sample_model.FORMAT_BUILDERS; "
        "none: --formats with no name)",
    )
    args = parser.parse_args()
    if args.formats is None:
        sys.path.insert(0, str(ROOT / "model_containers" / "sample_model"))
        from build_sample_model import FORMAT_BUILDERS

        args.formats = list(FORMAT_BUILDERS)

    RESULTS.mkdir(parents=True, exist_ok=True)
    model_dir = build_model()
    ref_server = None if args.no_reference else ensure_reference_venv()
    table: dict[str, tuple[float, dict[int, LoadResult]]] = {}
    for server in servers(model_dir, ref_server, args.workers) + format_servers(args.formats):
        log = RESULTS / f"{server.name.split()[0]}-{server.port}.log"
        process, ready_s = start(server, log)
        results = {}
        try:
            for concurrency in args.concurrency:
                drive(server.port, server.path, concurrency, args.warmup)
                results[concurrency] = drive(server.port, server.path, concurrency, args.requests)
                r = results[concurrency]
                print(
                    f"  {server.name:34} c={concurrency:<3} {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
                    f"p99 {r.p99_ms:6.2f} ms  errors {r.errors}",
                    file=sys.stderr,
                )
        finally:
            stop(process)
        table[server.name] = (ready_s, results)

    print(
        f"\n{args.requests} requests per row after {args.warmup} warm-up, 1-row JSON, iris model "
        "(ONNX unless the row names another format), "
        f"{os.cpu_count()} CPUs, load generator on the same machine.\n"
    )
    print("| server | concurrency | req/s | p50 ms | p99 ms | errors | start-to-ready s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (ready_s, results) in table.items():
        for concurrency, r in results.items():
            print(
                f"| {name} | {concurrency} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} "
                f"| {ready_s:.2f} |"
            )
    reference = next((v for k, v in table.items() if k.startswith("azmlinfsrv")), None)
    ours = next((v for k, v in table.items() if k.startswith("twinserve")), None)
    if reference and ours:
        print("\n| concurrency | throughput ratio (ours / reference) | p99 ratio (ours / reference) |")
        print("|---:|---:|---:|")
        for concurrency in args.concurrency:
            o, r = ours[1][concurrency], reference[1][concurrency]
            print(f"| {concurrency} | {o.rps / r.rps:.2f}x | {o.p99_ms / r.p99_ms:.2f}x |")
        print(f"\nstart-to-ready: ours {ours[0]:.2f} s, reference {reference[0]:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
