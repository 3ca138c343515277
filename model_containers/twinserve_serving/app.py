"""What the server does with a parsed request: the route table, health state and scoring.

Knows nothing of sockets (server.py frames HTTP) nor of clouds' SDKs; it honours both platforms'
contracts through the routes in routes.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from . import logs
from .batching import Batcher
from .config import ServerConfig
from .content import JSON, encode_json, negotiate, parse_media_type, preferred
from .errors import (
    HandlerError,
    MethodNotAllowed,
    ModelNotReady,
    NotAcceptable,
    NotFound,
    PredictionTimeout,
    ServingError,
)
from .handler import Handler, RequestContext, load_handler
from .metrics import PROMETHEUS_CONTENT_TYPE, Metrics
from .routes import (
    EXECUTION_PARAMETERS_PATH,
    INVOCATIONS_PATH,
    LIVENESS_PATH,
    METRICS_PATH,
    READINESS_PATH,
    SAGEMAKER_PING_PATH,
    SCORING_PATH,
    V2_LIVE_PATH,
    V2_READY_PATH,
)

LOADING, READY, FAILED = "loading", "ready", "failed"
MAX_ECHOED_ID_LENGTH = 128


@dataclass(slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes = b""


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


def _printable(value: str | None) -> str | None:
    if value and len(value) <= MAX_ECHOED_ID_LENGTH and value.isascii() and value.isprintable():
        return value
    return None


class App:
    def __init__(self, config: ServerConfig, handler: Handler | None = None) -> None:
        self.config = config
        self.handler = handler
        self.state = LOADING
        self.load_error: str | None = None
        self.load_seconds = 0.0
        self.metrics = Metrics()
        self.metrics.gauge(
            "twinserve_model_ready", "1 once the model is loaded, else 0.", lambda: 1.0 if self.state == READY else 0.0
        )
        self.metrics.gauge("twinserve_model_load_seconds", "Time the model took to load.", lambda: self.load_seconds)
        # Predictions run on a bounded pool so a request can be answered 504 at its deadline
        # while a stuck handler call keeps its thread; `threads` also caps concurrent model calls.
        self._predict_pool = ThreadPoolExecutor(config.threads, thread_name_prefix="predict")
        self.batcher: Batcher | None = None  # adaptive batching, set once the model is loaded
        health = {"GET": self.health}
        self.routes: dict[str, dict[str, Callable[[Request, str], Response]]] = {
            SAGEMAKER_PING_PATH: health,
            READINESS_PATH: health,
            V2_READY_PATH: health,
            LIVENESS_PATH: {"GET": self.live},
            V2_LIVE_PATH: {"GET": self.live},
            INVOCATIONS_PATH: {"POST": self.score},
            SCORING_PATH: {"POST": self.score},
            EXECUTION_PARAMETERS_PATH: {"GET": self.execution_parameters},
            METRICS_PATH: {"GET": self.prometheus},
        }

    # -- lifecycle -------------------------------------------------------------------------
    def load_model(self) -> None:
        """Import and load the handler; run in the background so the socket answers meanwhile."""
        started = time.perf_counter()
        try:
            if self.config.install_requirements:
                from .model_requirements import install_at_start

                install_at_start(self.config.model_dir, self.config.handler)
            handler = self.handler or load_handler(self.config.handler, self.config.model_dir)
            handler.load()
        except BaseException as exc:  # noqa: BLE001 - any failure must show up in health, not kill the process
            self.load_error = f"{type(exc).__name__}: {exc}"
            self.state = FAILED
            logs.error("model_load_failed", exc, model_dir=str(self.config.model_dir))
            return
        self.handler = handler
        self.batcher = self._batcher_for(handler)
        self.load_seconds = time.perf_counter() - started
        self.state = READY
        logs.info(
            "model_loaded",
            model_dir=str(self.config.model_dir),
            handler_style=handler.style,
            handler=str(getattr(handler, "source", "?")),
            seconds=round(self.load_seconds, 4),
        )

    def _batcher_for(self, handler: Handler) -> Batcher | None:
        if not self.config.batching:
            return None
        model = handler.batching_model()
        if model is None:
            logs.warning(
                "adaptive_batching_off",
                reason="only the default handler batches, and only models that take rows (not MLflow "
                "pyfunc, torch.export or a fixed batch dimension); every request runs alone",
                handler_style=handler.style,
            )
            return None
        logs.info(
            "adaptive_batching_on",
            max_batch_size=self.config.batch_max_size,
            max_delay_ms=self.config.batch_max_delay_ms,
        )
        return Batcher(
            model.predict,
            self._predict_pool,
            slots=self.config.threads,
            max_rows=self.config.batch_max_size,
            max_delay_s=self.config.batch_max_delay_ms / 1000.0,
            metrics=self.metrics,
        )

    def start_loading(self, on_ready: Callable[[], None] | None = None) -> threading.Thread:
        def load() -> None:
            self.load_model()
            if self.state == READY and on_ready is not None:
                on_ready()

        thread = threading.Thread(target=load, name="model-loader", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
        self._predict_pool.shutdown(wait=False, cancel_futures=True)

    # -- dispatch ----------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        request_id = _printable(request.headers.get("x-request-id")) or uuid.uuid4().hex
        try:
            methods = self.routes.get(request.path)
            if methods is None:
                raise NotFound(f"no route {request.path}", allowed=sorted(self.routes))
            endpoint = methods.get(request.method)
            if endpoint is None:
                error = MethodNotAllowed(f"{request.method} is not allowed on {request.path}", allowed=list(methods))
                response = Response(error.status, error.to_json(request_id), headers={"Allow": ", ".join(methods)})
            else:
                response = endpoint(request, request_id)
        except ServingError as error:
            response = Response(error.status, error.to_json(request_id))
        except Exception as exc:  # a bug in the server itself: say so, keep serving
            logs.error("server_error", exc, request_id=request_id, route=request.path)
            error = ServingError("internal server error; see the server log", allowed=None)
            response = Response(500, error.to_json(request_id))
        response.headers["x-request-id"] = request_id
        client_id = _printable(request.headers.get("x-ms-client-request-id"))
        if client_id:
            response.headers["x-ms-client-request-id"] = client_id
        return response

    # -- endpoints -----------------------------------------------------------------------------
    def health(self, request: Request, request_id: str) -> Response:
        if self.state == READY:
            return Response(200, b'{"status":"ready"}')
        if self.state == LOADING:
            raise ModelNotReady("the model is still loading")
        raise ModelNotReady(f"the model failed to load ({self.load_error}); see the server log")

    def live(self, request: Request, request_id: str) -> Response:
        return Response(200, encode_json({"status": "alive", "model": self.state}))

    def execution_parameters(self, request: Request, request_id: str) -> Response:
        return Response(
            200,
            encode_json(
                {
                    "MaxConcurrentTransforms": self.config.max_concurrent_transforms,
                    "BatchStrategy": self.config.batch_strategy,
                    "MaxPayloadInMB": max(1, int(self.config.max_payload_mb)),
                }
            ),
        )

    def prometheus(self, request: Request, request_id: str) -> Response:
        return Response(200, self.metrics.render(), PROMETHEUS_CONTENT_TYPE)

    def score(self, request: Request, request_id: str) -> Response:
        if self.state != READY:
            self.health(request, request_id)  # raises the matching 503
        handler = self.handler  # read after the state: load_model sets it before READY
        media = parse_media_type(request.headers.get("content-type"))
        accept_header = request.headers.get("accept")
        if handler.response_types is not None:
            accept = negotiate(accept_header, handler.response_types, handler.default_response_type)
            if accept is None:
                raise NotAcceptable(
                    f"Accept {accept_header!r} matches no response type of this handler",
                    allowed=list(handler.response_types),
                )
        else:  # the user's output stage decides: hand it the client's preferred concrete type
            accept = preferred(accept_header, handler.default_response_type)
        context = RequestContext(request_id, request.headers)
        batcher = self.batcher  # read after the state, like the handler
        if batcher is None:
            future = self._predict_pool.submit(handler.handle, request.body, media, accept, context)
            prediction = self._result(future, request_id)
        else:  # decoded and checked here (its 400s are its own), predicted with whoever else is queued
            future = batcher.submit(lambda: handler.model_input(request.body, media))
            outputs = self._result(future, request_id)
            try:
                prediction = handler.encode(outputs, accept, context)
            except ServingError:
                raise
            except Exception as exc:
                raise self._handler_error(exc, request_id) from exc
        return Response(200, prediction.body, prediction.content_type, context.response_headers)

    def _result(self, future: Future, request_id: str) -> Any:
        """The prediction, or the 504 at the deadline, or the handler's error."""
        try:
            return future.result(timeout=self.config.timeout_s)
        except ServingError:
            raise
        except TimeoutError as exc:
            if future.done():  # the handler itself raised TimeoutError
                raise self._handler_error(exc, request_id) from exc
            future.cancel()
            logs.warning("prediction_timeout", request_id=request_id, timeout_s=self.config.timeout_s)
            raise PredictionTimeout(
                f"prediction did not finish within {self.config.timeout_s:g} s "
                "(SAGEMAKER_MODEL_SERVER_TIMEOUT / SCORING_TIMEOUT_MS)"
            ) from None
        except Exception as exc:
            raise self._handler_error(exc, request_id) from exc

    @staticmethod
    def _handler_error(exc: BaseException, request_id: str) -> HandlerError:
        logs.error("handler_error", exc, request_id=request_id)
        return HandlerError(
            f"the handler raised {type(exc).__name__}: {str(exc)[:300]} "
            "(traceback in the server log under this request_id)"
        )
