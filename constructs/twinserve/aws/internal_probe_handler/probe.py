"""One POST to a service inside the VPC, for a caller outside it (the pipeline's smoke test, `twinserve
invoke`): the function runs in the service's subnets, so it reaches an internal load balancer that
nothing outside the VPC can.

Event: ``{"path": "/invocations", "body_base64": "...", "content_type": "...", "accept": "..."}``
(every key optional; the path must be one of ``ALLOWED_PATHS``). Result: ``{"status": <HTTP status,
0 when the service was unreachable>, "body_base64": "..."}``. The target is fixed by the function's
configuration (``TARGET_URL``), never by the event: the probe cannot be pointed elsewhere.
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request

TARGET_URL = os.environ.get("TARGET_URL", "")
ALLOWED_PATHS = tuple(p for p in os.environ.get("ALLOWED_PATHS", "/invocations").split(",") if p)
MAX_WAIT_SECONDS = 60.0
"""Longest wait for the service's answer, within the function's remaining time."""


def handler(event, context) -> dict:
    path = event.get("path", ALLOWED_PATHS[0])
    if path not in ALLOWED_PATHS:
        return _answer(400, f"path {path!r}: one of {', '.join(ALLOWED_PATHS)} is allowed".encode())
    try:
        body = base64.b64decode(event.get("body_base64", ""), validate=True)
    except ValueError:
        return _answer(400, b"body_base64: not base64")
    headers = {
        "Content-Type": event.get("content_type", "application/json"),
        "Accept": event.get("accept", "application/json"),
    }
    remaining = context.get_remaining_time_in_millis() / 1000 - 1 if context is not None else MAX_WAIT_SECONDS
    request = urllib.request.Request(TARGET_URL.rstrip("/") + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=max(1.0, min(MAX_WAIT_SECONDS, remaining))) as response:  # noqa: S310 - fixed internal URL
            return _answer(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return _answer(exc.code, exc.read())
    except OSError as exc:  # refused, reset, timed out, no such host (yet)
        return _answer(0, f"unreachable: {exc}".encode())


def _answer(status: int, body: bytes) -> dict:
    return {"status": status, "body_base64": base64.b64encode(body).decode("ascii")}
