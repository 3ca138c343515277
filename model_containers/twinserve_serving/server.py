"""HTTP/1.1 transport: a threaded socket server with keep-alive, TCP_NODELAY and a graceful drain.

Why not a framework: for small models the server's own overhead is the latency. A thread per
connection with a short parse-dispatch-send path measured fastest on the target machines (see
benchmarks/), and TCP_NODELAY is mandatory: without it Nagle's algorithm plus delayed ACKs add
~40 ms to every keep-alive response that is written in more than one segment.

Lifecycle: bind first, then load the model in the background (health says 503 meanwhile, so the
platforms see a socket within their 250 ms window and a truthful readiness). SIGTERM stops
accepting, closes idle keep-alive connections, lets in-flight requests finish (up to
``drain_timeout_s``), then exits 0. With ``workers > 1`` a parent process binds the socket and
forks that many copies of this server, forwarding SIGTERM to them. In lambda mode (config.py,
lambda_settings.py) there is one process, no idle keep-alive timeout (a connection outlives the
freeze between invocations) and a drain of at most 0.4 s.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus

from . import lambda_settings, logs
from .app import READY, App, Request, Response
from .config import ServerConfig
from .errors import BadRequest, HeadersTooLarge, NotImplementedByServer, PayloadTooLarge, ServingError

MAX_LINE_BYTES = 16 * 1024  # request line and each header line
MAX_HEADERS = 100
LINGER_SECONDS = 2.0  # how long to drain a rejected upload so the client can read the answer
_REASONS = {s.value: s.phrase for s in HTTPStatus}
# Metric labels must be a bounded set: the method comes from the client's request line.
_METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


class _Date:
    """The Date header, formatted once per second rather than once per response."""

    def __init__(self) -> None:
        self._second, self._value = 0, ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._value = now, formatdate(now, usegmt=True)
        return self._value


_date = _Date()


class _Connection(socketserver.BaseRequestHandler):
    """One client connection: requests are read and answered in turn until either side closes."""

    server: InferenceHTTPServer

    def setup(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.server.config.keepalive_timeout_s)
        self.rfile = sock.makefile("rb", buffering=64 * 1024)
        self.busy = False
        self.server.track(self)

    def finish(self) -> None:
        self.server.untrack(self)
        self.rfile.close()

    def handle(self) -> None:
        try:
            while not self.server.draining:
                line = self.rfile.readline(MAX_LINE_BYTES + 1)
                if not line:
                    return  # client closed (or drain shut the idle socket)
                if line in (b"\r\n", b"\n"):
                    continue  # RFC 9112 2.2: ignore empty lines before a request line
                self.busy = True
                keep_alive = self.handle_request(line)
                self.busy = False
                if not keep_alive:
                    return
        except (TimeoutError, ConnectionError, OSError):
            return  # idle past keepalive_timeout_s, or the peer went away mid-request

    def handle_request(self, request_line: bytes) -> bool:
        started = time.perf_counter()
        method = path = "-"
        keep_alive = False
        try:
            parts = request_line.split()
            if len(request_line) > MAX_LINE_BYTES:
                raise HeadersTooLarge(f"request line is longer than {MAX_LINE_BYTES} bytes")
            if len(parts) != 3:
                raise BadRequest("malformed request line; expected METHOD TARGET HTTP/1.1")
            method, target, version = (p.decode("latin-1") for p in parts)
            path = target.split("?", 1)[0]
            if version not in ("HTTP/1.1", "HTTP/1.0"):
                raise NotImplementedByServer(f"{version} is not supported", allowed=["HTTP/1.1", "HTTP/1.0"])
            headers = self.read_headers()
            connection = headers.get("connection", "").lower()
            keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
            body = self.read_body(headers)
            request = Request(method, path, headers, body)
        except ServingError as error:
            # framing errors: the rest of the stream cannot be trusted, so answer and close.
            # The headers may be unreadable, so the id is always a fresh one (logged and returned).
            request_id = uuid.uuid4().hex
            response = Response(error.status, error.to_json(request_id), headers={"x-request-id": request_id})
            self.send(response, False)
            self.server.finished(path, method, error.status, started, 0, response)
            self.linger()
            return False
        app = self.server.app
        app.metrics.request_started()
        try:
            response = app.dispatch(request)
        finally:
            app.metrics.request_ended()
        keep_alive = keep_alive and not self.server.draining
        self.send(response, keep_alive)
        self.server.finished(path, method, response.status, started, len(body), response)
        return keep_alive

    def read_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = self.rfile.readline(MAX_LINE_BYTES + 1)
            if line in (b"\r\n", b"\n"):
                return headers
            if not line:
                raise ConnectionError("client closed the connection inside the headers")
            if len(line) > MAX_LINE_BYTES:
                raise HeadersTooLarge(f"a header line is longer than {MAX_LINE_BYTES} bytes")
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise BadRequest(f"malformed header line {line[:80]!r}")
            key = name.decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        raise HeadersTooLarge(f"more than {MAX_HEADERS} header lines")

    def read_body(self, headers: dict[str, str]) -> bytes:
        limit = self.server.config.max_payload_bytes
        transfer_encoding = headers.get("transfer-encoding", "").lower()
        length_header = headers.get("content-length")
        if transfer_encoding:
            if transfer_encoding != "chunked":
                raise NotImplementedByServer(
                    f"Transfer-Encoding {transfer_encoding} is not supported", allowed=["chunked"]
                )
            self.continue_if_expected(headers)
            return self.read_chunked(limit)
        if length_header is None:
            return b""
        # ASCII digits only: str.isdigit() also accepts "²" (latin-1), which int() refuses
        if not (length_header.isascii() and length_header.isdigit()):
            raise BadRequest(f"Content-Length {length_header!r} is not a non-negative integer")
        if len(length_header) > 18 or int(length_header) > limit:  # int() refuses > 4300 digits
            raise self.too_large(length_header)
        length = int(length_header)
        if length == 0:
            return b""
        self.continue_if_expected(headers)
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionError("client closed the connection inside the body")
        return body

    def read_chunked(self, limit: int) -> bytes:
        chunks, total = [], 0
        while True:
            size_line = self.rfile.readline(MAX_LINE_BYTES + 1)
            digits = size_line.split(b";", 1)[0].strip()
            # hex digits only: int(, 16) also takes "-5" (then read(-5) waits for EOF), "0x", "_"
            if not digits or digits.strip(b"0123456789abcdefABCDEF"):
                raise BadRequest(f"malformed chunk size line {size_line[:40]!r}")
            size = int(digits, 16)
            if size == 0:
                while self.rfile.readline(MAX_LINE_BYTES + 1) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields are ignored
                return b"".join(chunks)
            total += size
            if total > limit:
                raise self.too_large(total)
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("chunked body ended early or a chunk lacks its CRLF")
            chunks.append(chunk)

    def too_large(self, size: int | str) -> PayloadTooLarge:
        mb = self.server.config.max_payload_mb
        return PayloadTooLarge(
            f"request body of {size} bytes is over the {mb:g} MB limit "
            f"({self.server.config.max_payload_bytes} bytes; set by SAGEMAKER_MAX_PAYLOAD_IN_MB)"
        )

    def continue_if_expected(self, headers: dict[str, str]) -> None:
        # curl and many SDKs send "Expect: 100-continue" for larger bodies and wait for this
        if headers.get("expect", "").lower() == "100-continue":
            self.request.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def linger(self) -> None:
        """Read and drop what the client is still sending before closing. Closing with unread
        data makes the kernel reset the connection, and the client then loses the error response
        (typically a 413 while it is still uploading the body)."""
        try:
            self.request.shutdown(socket.SHUT_WR)
            self.request.settimeout(LINGER_SECONDS)
            deadline = time.monotonic() + LINGER_SECONDS
            while time.monotonic() < deadline and self.rfile.read1(64 * 1024):
                pass
        except OSError:
            pass

    def send(self, response: Response, keep_alive: bool) -> None:
        head = [
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}\r\n"
            f"Content-Type: {response.content_type}\r\n"
            f"Content-Length: {len(response.body)}\r\n"
            f"Date: {_date()}\r\n"
        ]
        for name, value in response.headers.items():
            head.append(f"{name}: {value}\r\n")
        head.append("\r\n" if keep_alive else "Connection: close\r\n\r\n")
        # one write per response: header and body leave in the same segment(s)
        self.request.sendall("".join(head).encode("latin-1") + response.body)


class InferenceHTTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True  # the drain below decides how long to wait, not interpreter exit
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024  # bursts of new connections at high concurrency must not be refused

    def __init__(self, config: ServerConfig, app: App, sock: socket.socket | None = None) -> None:
        self.config, self.app = config, app
        self.draining = False
        self._connections: set[_Connection] = set()
        self._connections_lock = threading.Lock()
        super().__init__((config.host, config.port), _Connection, bind_and_activate=sock is None)
        if sock is not None:  # a socket bound by the parent process (workers > 1)
            self.socket.close()
            self.socket = sock

    def track(self, connection: _Connection) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: _Connection) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def finished(
        self, path: str, method: str, status: int, started: float, bytes_in: int, response: Response | None
    ) -> None:
        seconds = time.perf_counter() - started
        # bounded label sets for Prometheus: the client chooses the path and the method
        route = path if path in self.app.routes else "other"
        self.app.metrics.observe(route, method if method in _METRIC_METHODS else "other", status, seconds)
        if self.config.access_log:
            logs.info(
                "request",
                route=path,
                method=method,
                status=status,
                latency_ms=round(seconds * 1000, 3),
                request_id=response.headers.get("x-request-id") if response else None,
                bytes_in=bytes_in,
                bytes_out=len(response.body) if response else 0,
            )

    def drain(self) -> int:
        """Stop accepting, close idle connections, wait for in-flight requests. Returns how many
        were still running at the deadline."""
        self.draining = True
        self.shutdown()  # serve_forever returns; no new connections are accepted
        self.socket.close()
        deadline = time.monotonic() + self.config.drain_timeout_s
        while True:
            with self._connections_lock:
                connections = list(self._connections)
            busy = 0
            for connection in connections:
                if connection.busy:
                    busy += 1  # it closes itself after sending (draining => Connection: close)
                else:
                    try:  # wake the thread blocked reading the next request on an idle keep-alive socket
                        connection.request.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            if not connections or time.monotonic() >= deadline:
                return busy
            time.sleep(0.01)


def _install_stop_signals(stop: threading.Event) -> None:
    def on_signal(signum: int, frame: object) -> None:
        logs.info("stop_requested", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def serve(config: ServerConfig, on_listening: Callable[[str, int], None] | None = None) -> int:
    """Run the server until SIGTERM/SIGINT; returns the process exit code."""
    if config.lambda_mode:
        # before the handler is imported: its libraries read these variables when they load
        changed = lambda_settings.prepare_writable_dirs()
        sys.dont_write_bytecode = True  # the code folders are read-only there
        logs.info("lambda_mode", writable_dir=str(lambda_settings.writable_root()), variables_set=sorted(changed))
    if config.workers > 1 and not config.lambda_mode:  # no pre-fork on Lambda (config.py forces 1 too)
        return WorkerSupervisor(config).run(on_listening)
    app = App(config)
    server = InferenceHTTPServer(config, app)
    return _run(server, app, on_listening)


def _run(
    server: InferenceHTTPServer,
    app: App,
    on_listening: Callable[[str, int], None] | None,
    join_when_ready: Callable[[threading.Event], bool] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT, then drain. Without ``join_when_ready`` the socket is served at
    once and the model loads in the background; with it, the model loads first and the gate
    decides when this (sibling) worker starts taking connections."""
    stop = threading.Event()
    _install_stop_signals(stop)
    host, port = server.server_address[:2]
    logs.info(
        "listening",
        host=host,
        port=port,
        workers=server.config.workers,
        threads=server.config.threads,
        model_dir=str(server.config.model_dir),
        timeout_s=server.config.timeout_s,
        max_payload_mb=server.config.max_payload_mb,
        keepalive_timeout_s=server.config.keepalive_timeout_s,
        lambda_mode=server.config.lambda_mode,
    )
    if on_listening:
        on_listening(host, port)
    if join_when_ready is None:
        app.start_loading(on_ready)
    else:
        app.load_model()
        if app.state != READY or not join_when_ready(stop):
            stop.wait()  # never serves: a failed sibling leaves health to the first worker
            app.close()
            return 0
    loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="accept", daemon=True)
    loop.start()
    stop.wait()
    started = time.monotonic()
    abandoned = server.drain()
    app.close()
    logs.info("stopped", drain_seconds=round(time.monotonic() - started, 3), abandoned_requests=abandoned)
    return 0


class WorkerSupervisor:
    """Pre-fork (``workers > 1``): bind once, fork that many servers sharing the socket, forward
    SIGTERM to them, restart any that crash. Read ``run`` top-down.

    Health must agree across workers, since the platform's probe reaches just one of them. So
    worker 0 alone accepts while loading (answering /ping 503 truthfully); its siblings load, then
    wait for worker 0 to be ready (a byte each on a pipe) before taking connections. A worker
    restarted after a crash joins as soon as its own model is loaded."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.children: dict[int, int] = {}  # pid -> worker index
        self.stopping = False
        self.pid = os.getpid()

    def run(self, on_listening: Callable[[str, int], None] | None) -> int:
        self.bind()
        if on_listening:
            on_listening(self.host, self.port)
        self.open_readiness_gate()
        for index in range(self.config.workers):
            self.spawn(index, first_start=True)
        signal.signal(signal.SIGTERM, self.forward_signal)
        signal.signal(signal.SIGINT, self.forward_signal)
        exit_code = self.reap_and_restart()
        self.sock.close()
        return exit_code

    # -- the shared socket -------------------------------------------------------------------
    def bind(self) -> None:
        self.sock = socket.create_server(
            (self.config.host, self.config.port), backlog=InferenceHTTPServer.request_queue_size
        )
        # Non-blocking accept: several processes wake for one connection and all but one must not
        # block in accept() (socketserver treats the resulting BlockingIOError as "nothing to do").
        self.sock.setblocking(False)
        self.host, self.port = self.sock.getsockname()[:2]
        self.worker_config = self.config.with_overrides(port=self.port)

    # -- readiness gate: worker 0 announces, first-start siblings wait -------------------------
    def open_readiness_gate(self) -> None:
        self.ready_read, self.ready_write = os.pipe()
        # A restarted worker 0 announces again; bytes nobody waits for stay in the pipe, so a full pipe
        # (after very many restarts) must drop the announcement rather than block the worker.
        os.set_blocking(self.ready_write, False)

    def announce_first_worker_ready(self) -> None:
        try:
            os.write(self.ready_write, b"r" * (self.config.workers - 1))
        except BlockingIOError:
            pass  # every sibling already passed the gate; nobody needs these bytes

    def wait_for_first_worker(self, stop: threading.Event) -> bool:
        while not stop.is_set():
            if select.select([self.ready_read], [], [], 0.1)[0]:
                return bool(os.read(self.ready_read, 1))
        return False

    # -- workers ---------------------------------------------------------------------------------
    def spawn(self, index: int, first_start: bool) -> None:
        pid = os.fork()
        if pid == 0:  # child: serve on the inherited socket, never return into the parent's code
            code = 1
            try:
                code = self.serve_as_worker(index, first_start)
            finally:
                os._exit(code)
        self.children[pid] = index

    def serve_as_worker(self, index: int, first_start: bool) -> int:
        threading.Thread(target=self.stop_when_orphaned, name="orphan-watch", daemon=True).start()
        app = App(self.worker_config)
        server = InferenceHTTPServer(self.worker_config, app, self.sock)
        if index == 0 and first_start:
            return _run(server, app, None, on_ready=self.announce_first_worker_ready)
        if index == 0:  # restarted: siblings may still be waiting for it
            return _run(server, app, None, join_when_ready=lambda stop: self.announce_first_worker_ready() or True)
        gate = self.wait_for_first_worker if first_start else (lambda stop: True)
        return _run(server, app, None, join_when_ready=gate)

    def stop_when_orphaned(self) -> None:
        # If the supervisor is killed outright (SIGKILL, OOM) nobody forwards SIGTERM: drain anyway
        # rather than serve on unsupervised.
        while os.getppid() == self.pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    # -- signals and the reap loop ---------------------------------------------------------------
    def forward_signal(self, signum: int, frame: object) -> None:
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def reap_and_restart(self) -> int:
        """Wait for workers; restart one that dies unless stopping. Returns the exit code."""
        exit_code = 0
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index = self.children.pop(pid, None)
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                exit_code = exit_code or (code if code > 0 else 0)
            elif index is not None:
                logs.error("worker_died", worker_pid=pid, worker=index, exit_code=code)
                time.sleep(0.5)  # do not spin if workers die at once
                self.spawn(index, first_start=False)
        return exit_code
