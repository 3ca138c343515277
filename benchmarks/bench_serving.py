"""Benchmark: our server side by side with the servers a user would pick instead, on the same
machine, model and closed-loop load, in alternating runs; then our server once per model format.

    .venv/bin/python benchmarks/bench_serving.py                    # the README tables (~10 min)
    .venv/bin/python benchmarks/bench_serving.py --quick            # one short round, c=1 and 16 (~3 min)
    .venv/bin/python benchmarks/bench_serving.py --models medium --peers mlserver --concurrency 16
    .venv/bin/python benchmarks/bench_serving.py --peers --formats   # only our server, no format rows

What it does, all on 127.0.0.1 and bounded in time:
  1. models: the iris ONNX sample (build_sample_model.py) and a "medium" model built here with
     onnx.helper + numpy (seed 15): a dense network 256 -> 2048 -> 2048 -> 1024 -> 10 (softmax),
     27 MB of float32 weights, where one call on 32 rows costs far less than 32 calls on one row
     (measured in-process with onnxruntime and printed);
  2. peers, each installed from PyPI into its own virtual environment under build/bench-venvs/<peer>
     on first use (pinned, PEERS below): Azure's reference server (azureml-inference-server-http),
     Seldon MLServer (a custom onnxruntime runtime, V2 protocol), KServe's Python model server (a
     kserve.Model), BentoML (a service) and TorchServe (a custom handler; needs Java). Every peer
     runs the same adapter code (benchmarks/peers/onnx_common.py: same onnxruntime options, same
     JSON answer) with one worker process, like our server; where a peer has adaptive batching of
     its own (MLServer, BentoML) it is also measured with it on, at the same size and delay as ours.
     A peer that fails to install or start is reported in the table with the reason;
  3. for each model, every server is started (start-to-ready: process start -> first successful
     prediction), then for each concurrency the servers take turns, in an order rotated each round,
     under one closed-loop generator (C connections, each sends a request and waits for its
     answer; keep-alive where the server allows it); a row sums its rounds;
  4. for each format sample (build_sample_model.py --format; skipped when its framework is missing)
     our server is measured the same way at --format-concurrency.

Our server runs one worker process (its default), 4 predict threads, batching off and, in a second
row, batching on (TWINSERVE_BATCH_MAX_SIZE=32, TWINSERVE_BATCH_MAX_DELAY_MS=2). Two vCPUs are shared
with the load generator, so absolute numbers move between runs; the alternation keeps the servers'
comparison fair under that drift.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PEER_FILES = ROOT / "benchmarks" / "peers"
VENVS = ROOT / "build" / "bench-venvs"
# the same onnxruntime and numpy as our server (pyproject.toml) in every peer's environment
COMMON = ["onnxruntime==1.31.1", "numpy==2.4.6"]
PEERS = {
    "azmlinfsrv": ["azureml-inference-server-http==1.5.1", *COMMON],
    "mlserver": ["mlserver==1.7.1", *COMMON],
    "kserve": ["kserve==0.21.0", *COMMON],
    "bentoml": ["bentoml==1.4.40", *COMMON],
    # TorchServe 0.12 imports yaml in its Python worker without declaring it
    "torchserve": ["torchserve==0.12.0", "torch-model-archiver==0.12.0", "pyyaml==6.0.4", *COMMON],
}
BATCH_SIZE, BATCH_DELAY_MS = 32, 2
MEDIUM_LAYERS = (256, 2048, 2048, 1024, 10)
MEDIUM_SEED = 15


@dataclass
class BenchModel:
    key: str  # iris | medium
    title: str
    model_dir: Path
    row: list[float]  # the one row every request sends
    input_name: str

    @property
    def instances_body(self) -> bytes:
        return json.dumps({"instances": [self.row]}).encode()

    @property
    def v2_body(self) -> bytes:  # MLServer's (and KServe's v2) inference protocol
        tensor = {"name": self.input_name, "shape": [1, len(self.row)], "datatype": "FP32", "data": self.row}
        return json.dumps({"inputs": [tensor]}).encode()


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    path: str
    port: int
    body: bytes
    cwd: Path | None = None
    stop_command: list[str] | None = None  # servers that run in the background of their command


@dataclass
class Unavailable:
    name: str
    reason: str


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0

    def add(self, other: LoadResult) -> None:
        self.latencies += other.latencies
        self.seconds += other.seconds
        self.errors += other.errors

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "AZUREML_", "TWINSERVE_"))}


# ---------------------------------------------------------------------------- models
def iris_model() -> BenchModel:
    out = RESULTS / "model-build"
    if not (out / "model" / "model.onnx").is_file():
        subprocess.run(
            [sys.executable, str(ROOT / "model_containers/sample_model/build_sample_model.py"), "--out", str(out)],
            check=True,
        )
    meta = json.loads((out / "model" / "metadata.json").read_text())
    return BenchModel(
        "iris", "iris (ONNX, 4 features)", out / "model", [5.1, 3.5, 1.4, 0.2], meta.get("input_name", "input")
    )


def medium_model() -> BenchModel:
    """A deterministic dense network (MEDIUM_LAYERS, ReLU, softmax), float32, dynamic batch."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model_dir = RESULTS / "medium-model" / "model"
    path = model_dir / "model.onnx"
    if not path.is_file():
        model_dir.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(MEDIUM_SEED)
        nodes, weights, previous = [], [], "input"
        for i, (n_in, n_out) in enumerate(zip(MEDIUM_LAYERS, MEDIUM_LAYERS[1:], strict=False)):
            w = (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(np.float32)
            b = np.zeros(n_out, np.float32)
            weights += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
            nodes += [
                helper.make_node("MatMul", [previous, f"w{i}"], [f"m{i}"]),
                helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
            ]
            last = i == len(MEDIUM_LAYERS) - 2
            nodes.append(
                helper.make_node(
                    "Softmax" if last else "Relu",
                    [f"a{i}"],
                    ["probabilities" if last else f"h{i}"],
                    **({"axis": 1} if last else {}),
                )
            )
            previous = f"h{i}"
        graph = helper.make_graph(
            nodes,
            "medium_mlp",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", MEDIUM_LAYERS[0]])],
            [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", MEDIUM_LAYERS[-1]])],
            weights,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    row = [round(float(v), 4) for v in np.random.default_rng(MEDIUM_SEED + 1).standard_normal(MEDIUM_LAYERS[0])]
    return BenchModel("medium", f"medium (ONNX MLP, {path.stat().st_size / 1e6:.0f} MB)", model_dir, row, "input")


def batch_cost_ratio(model: BenchModel, rows: int = BATCH_SIZE, repeats: int = 20) -> tuple[float, float]:
    """Milliseconds for `rows` calls on one row and for one call on `rows` rows (onnxruntime, one thread)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model.model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
    one = np.asarray([model.row], np.float32)
    many = np.repeat(one, rows, axis=0)
    for _ in range(3):
        session.run(None, {model.input_name: many})
    singles, batched = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(rows):
            session.run(None, {model.input_name: one})
        singles.append(time.perf_counter() - started)
        started = time.perf_counter()
        session.run(None, {model.input_name: many})
        batched.append(time.perf_counter() - started)
    return statistics.median(singles) * 1000, statistics.median(batched) * 1000


# ---------------------------------------------------------------------------- peers' environments
def peer_python(peer: str) -> Path:
    """The peer's virtual environment (created and pip-installed on first use, or when PEERS changes)."""
    venv = VENVS / peer
    stamp = venv / ".bench-packages"
    wanted = "\n".join(PEERS[peer])
    if not (stamp.is_file() and stamp.read_text() == wanted):
        print(f"installing {peer} into {venv}: {', '.join(PEERS[peer])} ...", file=sys.stderr)
        if not (venv / "bin" / "python").is_file():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *PEERS[peer]],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if "error" in line.lower()] or done.stderr.splitlines()
            raise RuntimeError(f"pip install failed: {(lines or ['?'])[-1][:160]}")
        stamp.write_text(wanted)
    return venv / "bin" / "python"


def app_dir(peer: str, model: BenchModel, *files: str, variant: str = "") -> Path:
    """A folder of its own per server, with the peer's entry file(s) and the shared adapter."""
    folder = RESULTS / "peer-apps" / f"{peer}{variant}-{model.key}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("onnx_common.py", *files):
        shutil.copy(PEER_FILES / name, folder / name)
    return folder


# ---------------------------------------------------------------------------- servers
def ours(model: BenchModel, batching: bool) -> Server:
    port = free_port()
    env = {**clean_env(), "SAGEMAKER_BIND_TO_PORT": str(port), "TWINSERVE_HOST": "127.0.0.1"}
    env["TWINSERVE_MODEL_DIR"] = str(model.model_dir)
    name = "twinserve"
    if batching:
        env |= {"TWINSERVE_BATCH_MAX_SIZE": str(BATCH_SIZE), "TWINSERVE_BATCH_MAX_DELAY_MS": str(BATCH_DELAY_MS)}
        name = f"twinserve (batching {BATCH_SIZE}/{BATCH_DELAY_MS} ms)"
    return Server(
        name, [sys.executable, "-m", "twinserve_serving", "serve"], env, "/invocations", port, model.instances_body
    )


def azmlinfsrv(model: BenchModel) -> Server:
    python = peer_python("azmlinfsrv")
    folder = app_dir("azmlinfsrv", model, "azmlinfsrv_score.py")
    port = free_port()
    env = {**clean_env(), "AZUREML_MODEL_DIR": str(model.model_dir), "WORKER_COUNT": "1", "PYTHONPATH": str(folder)}
    command = [
        str(python.parent / "azmlinfsrv"),
        "--entry_script",
        str(folder / "azmlinfsrv_score.py"),
        "--port",
        str(port),
    ]
    return Server("azmlinfsrv", command, env, "/score", port, model.instances_body, folder)


def mlserver(model: BenchModel, batching: bool) -> Server:
    python = peer_python("mlserver")
    folder = app_dir("mlserver", model, "mlserver_runtime.py", variant="-batching" if batching else "")
    port = free_port()
    settings = {
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,  # predict in the server process: the fastest setting for one worker
        "debug": False,
    }
    model_settings = {
        "name": model.key,
        "implementation": "mlserver_runtime.OnnxRuntime",
        "parameters": {"uri": str(model.model_dir)},
    }
    name = "mlserver"
    if batching:
        model_settings |= {"max_batch_size": BATCH_SIZE, "max_batch_time": BATCH_DELAY_MS / 1000}
        name = f"mlserver (batching {BATCH_SIZE}/{BATCH_DELAY_MS} ms)"
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / "model-settings.json").write_text(json.dumps(model_settings))
    env = {**clean_env(), "PYTHONPATH": str(folder)}
    command = [str(python.parent / "mlserver"), "start", str(folder)]
    return Server(name, command, env, f"/v2/models/{model.key}/infer", port, model.v2_body, folder)


def kserve(model: BenchModel) -> Server:
    python = peer_python("kserve")
    folder = app_dir("kserve", model, "kserve_model.py")
    port = free_port()
    command = [
        str(python), str(folder / "kserve_model.py"), "--model_name", model.key, "--model_dir", str(model.model_dir),
        "--http_port", str(port), "--grpc_port", str(free_port()), "--enable_grpc", "false", "--workers", "1",
    ]  # fmt: skip
    env = {**clean_env(), "PYTHONPATH": str(folder)}
    return Server("kserve", command, env, f"/v1/models/{model.key}:predict", port, model.instances_body, folder)


def bentoml(model: BenchModel, batching: bool) -> Server:
    python = peer_python("bentoml")
    folder = app_dir("bentoml", model, "bentoml_service.py", variant="-batching" if batching else "")
    port = free_port()
    env = {**clean_env(), "BENCH_MODEL_DIR": str(model.model_dir), "PYTHONPATH": str(folder)}
    env |= {"BENTOML_HOME": str(RESULTS / "bentoml-home"), "BENTOML_DO_NOT_TRACK": "True"}
    name = "bentoml"
    if batching:
        env |= {"BENCH_BATCHING": "1", "BENCH_MAX_BATCH": str(BATCH_SIZE)}
        name = f"bentoml (batching {BATCH_SIZE})"
    command = [
        str(python.parent / "bentoml"),
        "serve",
        "bentoml_service:OnnxService",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    return Server(name, command, env, "/predict", port, model.instances_body, folder)


def torchserve(model: BenchModel) -> Server:
    python = peer_python("torchserve")
    if shutil.which("java") is None:
        raise RuntimeError("TorchServe needs Java (java is not on PATH)")
    folder = app_dir("torchserve", model, "torchserve_handler.py")
    store = folder / "model-store"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir()
    extra = [str(folder / "onnx_common.py"), str(model.model_dir / "model.onnx")]
    if (model.model_dir / "metadata.json").is_file():
        extra.append(str(model.model_dir / "metadata.json"))
    subprocess.run(
        [
            str(python.parent / "torch-model-archiver"),
            "--model-name",
            model.key,
            "--version",
            "1",
            "--handler",
            str(folder / "torchserve_handler.py"),
            "--extra-files",
            ",".join(extra),
            "--export-path",
            str(store),
            "--archive-format",
            "no-archive",
        ],  # fmt: skip
        check=True,
        capture_output=True,
    )
    port = free_port()
    config = folder / "config.properties"
    config.write_text(
        f"inference_address=http://127.0.0.1:{port}\nmanagement_address=http://127.0.0.1:{free_port()}\n"
        f"metrics_address=http://127.0.0.1:{free_port()}\ndefault_workers_per_model=1\n"
        "disable_token_authorization=true\nenable_envvars_config=false\ninstall_py_dep_per_model=false\n"
    )
    env = {**clean_env(), "PATH": f"{python.parent}:{os.environ.get('PATH', '')}"}
    command = [
        str(python.parent / "torchserve"), "--start", "--foreground", "--ncs", "--disable-token-auth",
        "--model-store", str(store), "--models", f"{model.key}={model.key}", "--ts-config", str(config),
    ]  # fmt: skip
    stop = [str(python.parent / "torchserve"), "--stop"]
    return Server("torchserve", command, env, f"/predictions/{model.key}", port, model.instances_body, folder, stop)


def servers_for(model: BenchModel, peers: list[str]) -> list[Server | Unavailable]:
    builders: list[tuple[str, str, Callable[[], Server]]] = [
        ("ours", "twinserve", lambda: ours(model, batching=False)),
        ("ours", "twinserve (batching)", lambda: ours(model, batching=True)),
        ("azmlinfsrv", "azmlinfsrv", lambda: azmlinfsrv(model)),
        ("mlserver", "mlserver", lambda: mlserver(model, batching=False)),
        ("kserve", "kserve", lambda: kserve(model)),
        ("bentoml", "bentoml", lambda: bentoml(model, batching=False)),
        ("torchserve", "torchserve", lambda: torchserve(model)),
    ]
    if model.key != "iris":  # peers' own batching where batching can pay off
        builders.insert(4, ("mlserver", "mlserver (batching)", lambda: mlserver(model, batching=True)))
        builders.insert(7, ("bentoml", "bentoml (batching)", lambda: bentoml(model, batching=True)))
    out: list[Server | Unavailable] = []
    for peer, name, build in builders:
        if peer != "ours" and peer not in peers:
            continue
        try:
            out.append(build())
        except Exception as exc:  # noqa: BLE001 - reported in the table, never dropped
            out.append(Unavailable(name, f"not installed: {exc}"))
    return out


# ---------------------------------------------------------------------------- load generator
def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def drive(server: Server, concurrency: int, seconds: float) -> LoadResult:
    """Closed loop: `concurrency` connections, each with one request outstanding, sending new
    requests for `seconds`, then collecting the last answers. One selector loop in this process:
    the cheapest client Python can be, so the generator is not what limits the servers."""
    port, body = server.port, server.body
    request = (
        f"POST {server.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    selector = selectors.DefaultSelector()
    result = LoadResult()
    outstanding = 0

    def send(state: dict, started: float) -> None:
        nonlocal outstanding
        outstanding += 1
        state["started"], state["buffer"] = started, b""
        state["sock"].sendall(request)

    began = time.perf_counter()
    stop_sending = began + seconds
    hard_deadline = stop_sending + 60
    for _ in range(concurrency):
        state = {"sock": _connect(port)}
        selector.register(state["sock"], selectors.EVENT_READ, state)
        send(state, time.perf_counter())
    while outstanding:
        if time.perf_counter() > hard_deadline:
            raise TimeoutError(f"{server.name}: answers did not arrive within 60 s")
        for key, _ in selector.select(timeout=1):
            state = key.data
            chunk = state["sock"].recv(262144)
            if not chunk:
                raise ConnectionError(f"{server.name} closed a connection without answering")
            state["buffer"] += chunk
            buffer = state["buffer"]
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                continue
            head = buffer[:end].lower()
            at = head.find(b"content-length:")
            if at >= 0:
                line_end = head.find(b"\r\n", at)
                length = int(head[at + 15 : line_end if line_end > 0 else None])
            elif b"transfer-encoding: chunked" in head:
                if not buffer.endswith(b"0\r\n\r\n"):
                    continue
                length = len(buffer) - end - 4
            else:
                length = 0
            if len(buffer) < end + 4 + length:
                continue
            now = time.perf_counter()
            outstanding -= 1
            result.latencies.append(now - state["started"])
            if buffer[9:12] != b"200":
                result.errors += 1
            more = now < stop_sending
            if b"connection: close" in head:  # reconnecting is part of the next request's latency
                selector.unregister(state["sock"])
                state["sock"].close()
                if more:
                    state["sock"] = _connect(port)
                    selector.register(state["sock"], selectors.EVENT_READ, state)
                    send(state, now)
                continue
            if more:
                send(state, now)
            else:
                selector.unregister(state["sock"])
                state["sock"].close()
    result.seconds = time.perf_counter() - began
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    return result


def start(server: Server, log: Path, timeout_s: float = 60) -> tuple[subprocess.Popen, float]:
    """Start the server and time process start -> first 200 on the scoring route."""
    import http.client

    started = time.perf_counter()
    process = subprocess.Popen(
        server.command, env=server.env, cwd=server.cwd, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    while True:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
            raise RuntimeError(f"exited with {process.returncode} before answering: {tail[0][:160]}")
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            connection.request("POST", server.path, server.body, {"Content-Type": "application/json"})
            if connection.getresponse().status == 200:
                return process, time.perf_counter() - started
        except OSError:
            pass
        finally:
            connection.close()
        if time.perf_counter() - started > timeout_s:
            stop(server, process)
            raise TimeoutError(f"no successful prediction within {timeout_s:g} s; see {log}")
        time.sleep(0.005)


def stop(server: Server, process: subprocess.Popen) -> None:
    if server.stop_command:
        subprocess.run(server.stop_command, env=server.env, cwd=server.cwd, capture_output=True, timeout=60)
    try:
        os.killpg(process.pid, 15)  # the server's whole session: some peers fork workers
    except ProcessLookupError:
        pass
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()


# ---------------------------------------------------------------------------- measuring
@dataclass
class Row:
    name: str
    ready_s: float | None = None
    results: dict[int, LoadResult] = field(default_factory=dict)
    failure: str | None = None


def measure(
    servers: list[Server | Unavailable], concurrencies: list[int], rounds: int, seconds: float, warmup: float
) -> list[Row]:
    rows: list[Row] = []
    running: list[tuple[Server, subprocess.Popen, Row]] = []
    try:
        for server in servers:
            row = Row(server.name)
            rows.append(row)
            if isinstance(server, Unavailable):
                row.failure = server.reason
                continue
            log = RESULTS / f"{server.name.split()[0]}-{server.port}.log"
            try:
                process, row.ready_s = start(server, log)
            except Exception as exc:  # noqa: BLE001 - reported in the table
                row.failure = f"did not start: {exc}"
                continue
            running.append((server, process, row))
            print(f"  {server.name:38} ready in {row.ready_s:.2f} s", file=sys.stderr)
        for concurrency in concurrencies:
            for turn in range(rounds):
                order = running[turn % len(running) :] + running[: turn % len(running)] if running else []
                for server, _, row in order:
                    if row.failure:
                        continue
                    try:
                        drive(server, concurrency, warmup)
                        result = drive(server, concurrency, seconds)
                    except Exception as exc:  # noqa: BLE001
                        row.failure = f"failed under load (c={concurrency}): {exc}"
                        continue
                    row.results.setdefault(concurrency, LoadResult()).add(result)
                    print(
                        f"  {server.name:38} c={concurrency:<3} round {turn + 1}: {result.rps:8.0f} req/s  "
                        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  errors {result.errors}",
                        file=sys.stderr,
                    )
    finally:
        for server, process, _ in running:
            stop(server, process)
    return rows


def print_rows(rows: list[Row]) -> None:
    print("| server | concurrency | req/s | p50 ms | p99 ms | errors | start-to-ready s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if row.failure and not row.results:
            print(f"| {row.name} | - | {row.failure} | | | | |")
            continue
        for concurrency, r in row.results.items():
            print(
                f"| {row.name} | {concurrency} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} "
                f"| {row.ready_s:.2f} |"
            )
        if row.failure:
            print(f"| {row.name} | - | {row.failure} | | | | |")


def print_ratios(rows: list[Row], concurrencies: list[int]) -> None:
    peers = [r for r in rows if not r.name.startswith("twinserve") and r.results]
    if not peers:
        return
    print(
        "\n| ours | concurrency | best peer by req/s | req/s ratio | best peer by p99 | p99 ratio (lower is better) |"
    )
    print("|---|---:|---|---:|---|---:|")
    for row in rows:
        if not row.name.startswith("twinserve"):
            continue
        for c in concurrencies:
            measured = [p for p in peers if c in p.results]
            if c not in row.results or not measured:
                continue
            ours_r = row.results[c]
            fastest = max(measured, key=lambda p: p.results[c].rps)
            tightest = min(measured, key=lambda p: p.results[c].p99_ms)
            print(
                f"| {row.name} | {c} | {fastest.name} ({fastest.results[c].rps:,.0f}) | "
                f"{ours_r.rps / fastest.results[c].rps:.2f}x | {tightest.name} ({tightest.results[c].p99_ms:.2f} ms) "
                f"| {ours_r.p99_ms / tightest.results[c].p99_ms:.2f}x |"
            )


def format_servers(samples: list[str]) -> list[Server]:
    """Our server (1 worker) on each format sample; a sample whose framework is missing is skipped."""
    sys.path.insert(0, str(ROOT / "model_containers" / "sample_model"))
    from build_sample_model import build_format

    iris = iris_model()
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
        env = {**clean_env(), "SAGEMAKER_BIND_TO_PORT": str(port), "TWINSERVE_HOST": "127.0.0.1"}
        env |= {"TWINSERVE_MODEL_DIR": str(model_dir), **trust}
        command = [sys.executable, "-m", "twinserve_serving", "serve"]
        out.append(Server(f"twinserve {sample}", command, env, "/invocations", port, iris.instances_body))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one 1-second round at c=1 and 16, format rows at c=4")
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="measured seconds per server, concurrency and round (3)"
    )
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each measurement (0.5)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per concurrency (2)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=None, help="default: 1 4 16 64")
    parser.add_argument("--models", nargs="+", choices=["iris", "medium"], default=["iris", "medium"])
    parser.add_argument(
        "--peers", nargs="*", choices=list(PEERS), default=None, help=f"default: all ({' '.join(PEERS)}); none: --peers"
    )
    parser.add_argument(
        "--formats", nargs="*", default=None, metavar="SAMPLE",
        help="format samples to measure (default: all of build_sample_model.FORMAT_BUILDERS; none: --formats)",
    )  # fmt: skip
    parser.add_argument("--format-concurrency", type=int, default=4, help="concurrency of the format rows (4)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.warmup = 1.0, 1, 0.3
        args.concurrency = args.concurrency or [1, 16]
    args.concurrency = args.concurrency or [1, 4, 16, 64]
    peers = list(PEERS) if args.peers is None else args.peers
    if args.formats is None:
        sys.path.insert(0, str(ROOT / "model_containers" / "sample_model"))
        from build_sample_model import FORMAT_BUILDERS

        args.formats = list(FORMAT_BUILDERS)

    RESULTS.mkdir(parents=True, exist_ok=True)
    python = subprocess.run([sys.executable, "-V"], capture_output=True, text=True).stdout.strip()
    print(
        f"{os.cpu_count()} CPUs ({python}), load generator on the same machine; per row {args.rounds} alternating "
        f"round(s) of {args.seconds:g} s after {args.warmup:g} s warm-up, 1-row JSON requests, one worker process "
        "per server.\n"
    )
    for key in args.models:
        model = iris_model() if key == "iris" else medium_model()
        singles_ms, batch_ms = batch_cost_ratio(model)
        print(f"### {model.title}\n")
        print(
            f"{BATCH_SIZE} calls on one row: {singles_ms:.2f} ms; one call on {BATCH_SIZE} rows: {batch_ms:.2f} ms "
            f"(onnxruntime, one thread): batching {BATCH_SIZE} rows is {singles_ms / batch_ms:.1f}x cheaper.\n"
        )
        rows = measure(servers_for(model, peers), args.concurrency, args.rounds, args.seconds, args.warmup)
        print_rows(rows)
        print_ratios(rows, args.concurrency)
        print()
    if args.formats:
        rows = measure(format_servers(args.formats), [args.format_concurrency], 1, args.seconds, args.warmup)
        print(f"### model formats (iris classifier, our server, c={args.format_concurrency})\n")
        print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
