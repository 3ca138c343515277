"""Errors a request can end in, each with its HTTP status and a stable machine-readable code.

Handlers may raise these too (``from twinserve_serving import BadRequest``) to choose the status
the caller sees; any other exception from a handler becomes a 500.
"""

from __future__ import annotations

import json
from collections.abc import Sequence


class ServingError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, allowed: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.allowed = list(allowed) if allowed is not None else None

    def to_json(self, request_id: str | None = None) -> bytes:
        doc: dict[str, object] = {"error": self.message, "code": self.code}
        if self.allowed is not None:
            doc["allowed"] = self.allowed
        if request_id:
            doc["request_id"] = request_id
        return json.dumps(doc).encode()


class BadRequest(ServingError):
    status, code = 400, "bad_request"


class NotFound(ServingError):
    status, code = 404, "not_found"


class MethodNotAllowed(ServingError):
    status, code = 405, "method_not_allowed"


class NotAcceptable(ServingError):
    status, code = 406, "not_acceptable"


class PayloadTooLarge(ServingError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ServingError):
    status, code = 415, "unsupported_media_type"


class HeadersTooLarge(ServingError):
    status, code = 431, "headers_too_large"


class HandlerError(ServingError):
    status, code = 500, "handler_error"


class NotImplementedByServer(ServingError):
    status, code = 501, "not_implemented"


class ModelNotReady(ServingError):
    status, code = 503, "model_not_ready"


class PredictionTimeout(ServingError):
    status, code = 504, "timeout"
