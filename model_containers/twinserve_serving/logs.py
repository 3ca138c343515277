"""Structured logs: one JSON object per line on stdout, which both platforms collect.

Written with one ``os.write`` per line, so lines from concurrent threads and worker processes never
interleave and nothing waits in a buffer when the container is killed.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any


def _timestamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def log(level: str, event: str, **fields: Any) -> None:
    now = time.time()
    record = {"ts": _timestamp(now), "level": level, "event": event, "pid": os.getpid(), **fields}
    line = json.dumps(record, default=str, separators=(",", ":")) + "\n"
    try:
        os.write(sys.stdout.fileno(), line.encode())
    except (OSError, ValueError):
        pass  # a closed stdout must not fail a request


def info(event: str, **fields: Any) -> None:
    log("info", event, **fields)


def warning(event: str, **fields: Any) -> None:
    log("warning", event, **fields)


def error(event: str, exc: BaseException | None = None, **fields: Any) -> None:
    if exc is not None:
        fields["exception"] = f"{type(exc).__name__}: {exc}"
        fields["traceback"] = "".join(traceback.format_exception(exc))
    log("error", event, **fields)
