"""The handler interface, and loading a user's handler from either cloud's convention.

Two styles are accepted unchanged, detected from what the user's module defines:

AWS style (SageMaker inference toolkit): ``model_fn(model_dir)``, ``input_fn(body, content_type)``,
``predict_fn(data, model)``, ``output_fn(prediction, accept)`` -- or one ``transform_fn(model, body,
content_type, accept)``. Any stage left out falls back to the default handler's stage. Each
function may take one extra trailing ``context`` argument (a RequestContext; ``model_fn`` gets
none) to read headers or set the custom-attributes response header.

Azure style (Azure ML ``score.py``): ``init()`` once at start (``AZUREML_MODEL_DIR`` is set for it),
then ``run(raw_data)`` per request with the body as ``str`` (``bytes`` for image/*, audio/*, video/*,
application/octet-stream); the result is sent as JSON (``bytes`` as application/octet-stream).
``run(raw_data, request_headers)`` gets the headers (names lowercased) as on Azure, and
``run(raw_data, context)`` gets the RequestContext.

Where the module comes from (first match): ``TWINSERVE_HANDLER``, ``AZUREML_ENTRY_SCRIPT``,
``SAGEMAKER_PROGRAM`` (resolved in config.py), then ``<model_dir>/code/inference.py`` (the
SageMaker framework containers' convention); otherwise the default handler serves the model (formats/).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from .content import JSON, OCTET_STREAM, MediaType, decode_text, encode_json
from .errors import BadRequest, ServingError

CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
MAX_CUSTOM_ATTRIBUTES_LENGTH = 1024  # SageMaker's limit, visible ASCII only
AWS_STAGES = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")


class HandlerLoadError(Exception):
    """The user's handler could not be found, imported or initialised."""


@dataclass
class RequestContext:
    """What a handler may know about the request beyond its body, and may add to the response."""

    request_id: str
    headers: Mapping[str, str]  # names lowercased
    response_headers: dict[str, str] = field(default_factory=dict)

    @property
    def custom_attributes(self) -> str | None:
        """``X-Amzn-SageMaker-Custom-Attributes`` as sent by the caller, if any."""
        return self.headers.get("x-amzn-sagemaker-custom-attributes")

    def set_custom_attributes(self, value: str) -> None:
        """Return ``X-Amzn-SageMaker-Custom-Attributes`` to the caller (SageMaker drops it otherwise)."""
        if len(value) > MAX_CUSTOM_ATTRIBUTES_LENGTH or not all(0x20 <= ord(c) < 0x7F for c in value):
            raise ValueError(f"custom attributes must be <= {MAX_CUSTOM_ATTRIBUTES_LENGTH} visible ASCII characters")
        self.response_headers[CUSTOM_ATTRIBUTES_HEADER] = value


@dataclass(frozen=True)
class Prediction:
    body: bytes
    content_type: str


class Handler(ABC):
    style: str
    # Response media types the handler can produce, for Accept negotiation before any work is
    # done (406 early); None when a user's output stage decides, so every Accept is passed on.
    response_types: tuple[str, ...] | None = (JSON,)
    default_response_type: str = JSON

    @abstractmethod
    def load(self) -> None: ...

    @abstractmethod
    def handle(self, body: bytes, media: MediaType, accept: str, context: RequestContext) -> Prediction: ...

    def batching_model(self) -> Any | None:
        """The loaded model if concurrent requests may be merged into one of its calls (batching.py),
        else None: user code runs one request per call."""
        return None


def _with_context(fn: Callable[..., Any], n_args: int) -> Callable[..., Any]:
    """Call ``fn(*args, context)`` if it declares a parameter for it, else ``fn(*args)``.

    Decided once at load time, not per request."""
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        takes_context = len(params) > n_args or any(
            p.kind is p.VAR_POSITIONAL for p in inspect.signature(fn).parameters.values()
        )
    except (TypeError, ValueError):
        takes_context = False
    if takes_context:
        return fn
    return lambda *args: fn(*args[:n_args])


def _as_prediction(result: Any, content_type: str) -> Prediction:
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
        result, content_type = result
    if isinstance(result, (bytes, bytearray, memoryview)):
        return Prediction(bytes(result), content_type)
    if isinstance(result, str):
        return Prediction(result.encode(), content_type)
    return Prediction(encode_json(result), JSON)


class StagedHandler(Handler):
    """AWS style: model_fn / input_fn / predict_fn / output_fn (or transform_fn)."""

    style = "aws"

    def __init__(self, module: Any, model_dir: Path) -> None:
        from . import default_handler

        def stage(name: str, n_args: int) -> Callable[..., Any]:
            return _with_context(getattr(module, name, None) or getattr(default_handler, name), n_args)

        self.model_dir = model_dir
        self.source = getattr(module, "__file__", None) or getattr(module, "__name__", "?")
        self._default = module is default_handler
        self._model_fn = getattr(module, "model_fn", None) or default_handler.model_fn
        self._transform_fn = _with_context(module.transform_fn, 4) if hasattr(module, "transform_fn") else None
        self._decode: Callable[[bytes, MediaType, RequestContext], Any]
        if module is default_handler or getattr(module, "input_fn", None) is None:
            # the default decoder takes the parsed media type, to honour its charset parameter
            self._decode = lambda body, media, context: default_handler.decode_request(body, media)
        else:
            user_input_fn = stage("input_fn", 2)
            self._decode = lambda body, media, context: user_input_fn(body, media.essence, context)
        self._predict_fn = stage("predict_fn", 2)
        self._output_fn = stage("output_fn", 2)
        if module is not default_handler and (self._transform_fn or hasattr(module, "output_fn")):
            self.response_types = None
        else:
            self.response_types = default_handler.RESPONSE_TYPES
        self.model: Any = None

    def load(self) -> None:
        self.model = self._model_fn(str(self.model_dir))

    def handle(self, body: bytes, media: MediaType, accept: str, context: RequestContext) -> Prediction:
        content_type = media.essence
        if self._transform_fn is not None:
            return _as_prediction(self._transform_fn(self.model, body, content_type, accept, context), accept)
        try:
            data = self._decode(body, media, context)
        except ServingError:
            raise
        except (ValueError, UnicodeDecodeError) as exc:
            # the decode stage rejecting the body is the caller's error, not the server's
            raise BadRequest(f"input_fn could not decode the {content_type} body: {exc}") from exc
        prediction = self._predict_fn(data, self.model, context)
        return _as_prediction(self._output_fn(prediction, accept, context), accept)

    # -- adaptive batching: the default handler's stages, split around one merged model call -----
    def batching_model(self) -> Any | None:
        # Only the default handler's own stages, and a format whose model takes rows positionally
        # (formats' ``merges_rows``): there merging rows and splitting outputs is well defined.
        return self.model if self._default and getattr(self.model, "merges_rows", False) else None

    def model_input(self, body: bytes, media: MediaType) -> Any:
        """Decode one request and check it against the model: its 2-D input array (400s here)."""
        from .payload import to_array

        return to_array(self._decode(body, media, None), self.model.signature)

    def encode(self, outputs: Any, accept: str, context: RequestContext) -> Prediction:
        return _as_prediction(self._output_fn(outputs, accept, context), accept)


class ScoreScriptHandler(Handler):
    """Azure style: init() once, run(raw_data) per request."""

    style = "azure"
    response_types = (JSON,)

    def __init__(self, module: Any, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.source = getattr(module, "__file__", None) or getattr(module, "__name__", "?")
        self._init = getattr(module, "init", None)
        run = module.run
        if "request_headers" in inspect.signature(run).parameters:
            # Azure's server passes the headers as `request_headers=` when run() declares it
            self._run = lambda data, context: run(data, request_headers=dict(context.headers))
        else:
            self._run = _with_context(run, 1)

    def load(self) -> None:
        # score.py files read their model location from AZUREML_MODEL_DIR; make that true
        # on SageMaker and locally too, so they run unchanged.
        os.environ.setdefault("AZUREML_MODEL_DIR", str(self.model_dir))
        if self._init is not None:
            self._init()

    def handle(self, body: bytes, media: MediaType, accept: str, context: RequestContext) -> Prediction:
        data: bytes | str = body if media.is_bytes else decode_text(body, media)
        result = self._run(data, context)
        if isinstance(result, (bytes, bytearray)):
            return Prediction(bytes(result), OCTET_STREAM)
        # Like Azure's own server, every other result is JSON-encoded (a str becomes a JSON string).
        return Prediction(encode_json(result), JSON)


def handler_for_module(module: Any, model_dir: Path) -> Handler:
    aws = [name for name in AWS_STAGES if callable(getattr(module, name, None))]
    azure = callable(getattr(module, "run", None))
    where = getattr(module, "__file__", None) or getattr(module, "__name__", repr(module))
    if azure and aws:
        raise HandlerLoadError(
            f"{where} defines both run() (Azure style) and {', '.join(aws)} (AWS style); keep one style"
        )
    if azure:
        return ScoreScriptHandler(module, model_dir)
    if aws:
        return StagedHandler(module, model_dir)
    raise HandlerLoadError(
        f"{where} defines neither init()/run() (Azure style) nor any of {', '.join(AWS_STAGES)} (AWS style)"
    )


def import_user_module(source: str) -> ModuleType:
    """Import a handler from a ``.py`` path or a dotted module name."""
    if source.endswith(".py") or os.sep in source:
        path = Path(source).resolve()
        if not path.is_file():
            raise HandlerLoadError(f"handler file {path} does not exist")
        # Its folder goes on sys.path so the handler can import its helper modules, as on both clouds.
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        name = path.stem if path.stem not in sys.modules else f"twinserve_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(source)


def load_handler(source: str | None, model_dir: Path) -> Handler:
    """Build (not yet load) the handler for ``source`` (see module docstring for the search order)."""
    if source is None:
        convention = model_dir / "code" / "inference.py"
        if convention.is_file():
            source = str(convention)
    if source is None:
        from . import default_handler

        return StagedHandler(default_handler, model_dir)
    try:
        module = import_user_module(source)
    except HandlerLoadError:
        raise
    except Exception as exc:
        raise HandlerLoadError(f"importing handler {source} failed: {type(exc).__name__}: {exc}") from exc
    return handler_for_module(module, model_dir)
