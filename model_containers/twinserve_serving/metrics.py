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


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[str, list[float]] = {}  # route -> bucket counts + [sum, count]
        self.in_flight = 0
        self.started = time.time()
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}

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

    def render(self) -> bytes:
        with self._lock:
            requests = dict(self._requests)
            latency = {route: list(counts) for route, counts in self._latency.items()}
            in_flight = self.in_flight
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
        for name, (help_text, read) in sorted(self._gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {read():g}"]
        return ("\n".join(lines) + "\n").encode()
