"""Request metrics in the Prometheus text exposition format (version 0.0.4).

Per worker process: with several workers, each answers for itself (scrape all, or run one worker
per container, the default).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# seconds; the sample model answers in well under a millisecond, big models in seconds
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# requests or rows in one model call under adaptive batching (batching.py); up to its 4096-row limit
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
_BATCH_HISTOGRAMS = {
    "twinserve_batch_requests": "Requests merged into one model call (adaptive batching).",
    "twinserve_batch_rows": "Rows in one model call (adaptive batching).",
}


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[str, list[float]] = {}  # route -> bucket counts + [sum, count]
        self.in_flight = 0
        self.started = time.time()
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self._batches: dict[str, list[float]] | None = None  # histogram -> bucket counts + [sum, count]
        self._batch_fallbacks = 0

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self._gauges[name] = (help_text, read)

    def request_started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def request_ended(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        bucket = bisect_left(LATENCY_BUCKETS, seconds)
        with self._lock:
            key = (route, method, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            counts = self._latency.get(route)
            if counts is None:
                counts = self._latency[route] = [0.0] * (len(LATENCY_BUCKETS) + 3)
            counts[bucket] += 1  # index len(LATENCY_BUCKETS) is the +Inf-only bucket
            counts[-2] += seconds
            counts[-1] += 1

    def enable_batching(self) -> None:
        """Expose the batch histograms (from zero) once adaptive batching is on."""
        with self._lock:
            self._batches = {name: [0.0] * (len(BATCH_BUCKETS) + 3) for name in _BATCH_HISTOGRAMS}

    def observe_batch(self, requests: int, rows: int) -> None:
        with self._lock:
            assert self._batches is not None, "enable_batching() first"
            for name, value in (("twinserve_batch_requests", requests), ("twinserve_batch_rows", rows)):
                counts = self._batches[name]
                counts[bisect_left(BATCH_BUCKETS, value)] += 1
                counts[-2] += value
                counts[-1] += 1

    def batch_fallback(self) -> None:
        with self._lock:
            self._batch_fallbacks += 1

    def render(self) -> bytes:
        with self._lock:
            requests = dict(self._requests)
            latency = {route: list(counts) for route, counts in self._latency.items()}
            in_flight = self.in_flight
            batches = {name: list(counts) for name, counts in self._batches.items()} if self._batches else None
            batch_fallbacks = self._batch_fallbacks
        lines = [
            "# HELP twinserve_requests_total HTTP requests answered, by route, method and status.",
            "# TYPE twinserve_requests_total counter",
        ]
        for (route, method, status), n in sorted(requests.items()):
            lines.append(f'twinserve_requests_total{{route="{route}",method="{method}",status="{status}"}} {n}')
        lines += [
            "# HELP twinserve_request_duration_seconds Time from request line to response sent.",
            "# TYPE twinserve_request_duration_seconds histogram",
        ]
        for route, counts in sorted(latency.items()):
            cumulative = 0.0
            for bound, n in zip(LATENCY_BUCKETS, counts[: len(LATENCY_BUCKETS)], strict=True):  # then sum, count
                cumulative += n
                lines.append(
                    f'twinserve_request_duration_seconds_bucket{{route="{route}",le="{bound}"}} {int(cumulative)}'
                )
            lines.append(f'twinserve_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} {int(counts[-1])}')
            lines.append(f'twinserve_request_duration_seconds_sum{{route="{route}"}} {counts[-2]:.6f}')
            lines.append(f'twinserve_request_duration_seconds_count{{route="{route}"}} {int(counts[-1])}')
        lines += [
            "# HELP twinserve_requests_in_flight Requests being processed now.",
            "# TYPE twinserve_requests_in_flight gauge",
            f"twinserve_requests_in_flight {in_flight}",
        ]
        for name, counts in (batches or {}).items():
            lines += [f"# HELP {name} {_BATCH_HISTOGRAMS[name]}", f"# TYPE {name} histogram"]
            cumulative = 0.0
            for bound, n in zip(BATCH_BUCKETS, counts[: len(BATCH_BUCKETS)], strict=True):
                cumulative += n
                lines.append(f'{name}_bucket{{le="{bound}"}} {int(cumulative)}')
            lines.append(f'{name}_bucket{{le="+Inf"}} {int(counts[-1])}')
            lines.append(f"{name}_sum {int(counts[-2])}")
            lines.append(f"{name}_count {int(counts[-1])}")
        if batches is not None:
            lines += [
                "# HELP twinserve_batch_fallbacks_total Merged model calls that failed and were retried per request.",
                "# TYPE twinserve_batch_fallbacks_total counter",
                f"twinserve_batch_fallbacks_total {batch_fallbacks}",
            ]
        for name, (help_text, read) in sorted(self._gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {read():g}"]
        return ("\n".join(lines) + "\n").encode()
