"""Adaptive batching: concurrent requests for the model merged into one predict call.

Off by default (``TWINSERVE_BATCH_MAX_SIZE=1``): a tiny model answers one row faster than a batch
can be gathered, so only models whose one call on many rows costs far less than many calls on one
row gain (benchmarks/bench_serving.py measures both). On when ``TWINSERVE_BATCH_MAX_SIZE`` >= 2,
and only for the default handler serving a format whose model takes rows positionally (ONNX,
scikit-learn, XGBoost, LightGBM, TorchScript); user handlers, MLflow pyfunc and torch.export
programs always run one request per call (``Handler.batching_model``).

What happens to one request, step by step:

1. Its own thread decodes the body and checks it against the model's signature (names, width,
   dtype) -> one 2-D array. A bad request gets its 400 here and never joins a batch.
2. The array is queued with a Future. One collector thread takes the oldest queued request and
   adds the ones behind it while the rows fit ``max_rows``, the arrays have the same width and
   dtype, and ``max_delay_s`` has not passed since the first one was queued. It waits for more only
   while other scoring requests are still being decoded (``_arriving``): a lone request never waits.
3. The merged array runs on the predict pool (at most ``slots`` model calls at once; while every
   slot is busy, requests queue up and the next call takes them together). The outputs are split
   back by row offsets, so each caller gets its own rows' answers, in its own order.
4. If the merged call raises, or its outputs are not one entry per row, each request of the batch
   is predicted alone, so only a request that fails alone fails.
5. A request whose deadline passes while queued is cancelled by its caller (who answers 504, as
   without batching) and skipped by the collector.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import logs
from .formats import Outputs
from .metrics import Metrics
from .payload import Batch


@dataclass(slots=True)
class _Pending:
    rows: np.ndarray  # the request's model input, 2-D, already checked
    queued_at: float
    future: Future = field(default_factory=Future)


class Batcher:
    def __init__(
        self,
        predict: Callable[[Batch], Outputs],
        pool: Executor,
        slots: int,
        max_rows: int,
        max_delay_s: float,
        metrics: Metrics,
    ) -> None:
        self._predict = predict
        self._pool = pool
        self._slots = threading.Semaphore(slots)
        self.max_rows = max_rows
        self.max_delay_s = max_delay_s
        self._metrics = metrics
        self._queue: deque[_Pending] = deque()
        self._arriving = 0  # scoring requests being decoded: they may join the next batch
        self._changed = threading.Condition()
        self._closed = False
        metrics.enable_batching()
        self._collector = threading.Thread(target=self._collect_forever, name="batcher", daemon=True)
        self._collector.start()

    # -- the callers' side ----------------------------------------------------------------------
    def submit(self, make_input: Callable[[], np.ndarray]) -> Future:
        """Run ``make_input`` (decode + check, in the caller's thread; its errors are the
        caller's), queue the rows, return the Future of this request's own Outputs."""
        with self._changed:
            self._arriving += 1
        try:
            rows = make_input()
        except BaseException:
            with self._changed:
                self._arriving -= 1
                self._changed.notify()
            raise
        pending = _Pending(rows, time.perf_counter())
        with self._changed:
            self._arriving -= 1
            self._queue.append(pending)
            self._changed.notify()
        return pending.future

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()

    # -- the collector thread ---------------------------------------------------------------------
    def _collect_forever(self) -> None:
        while True:
            self._slots.acquire()  # a free model call first: while none is, requests pile up
            batch = self._collect()
            if batch is None:
                return
            self._pool.submit(self._predict_batch, batch)

    def _collect(self) -> list[_Pending] | None:
        with self._changed:
            first = None
            while first is None:
                while not self._queue:
                    if self._closed:
                        return None
                    self._changed.wait()
                first = self._queue.popleft()
                if not first.future.set_running_or_notify_cancel():
                    first = None  # its caller timed out while it was queued
            batch, rows = [first], len(first.rows)
            until = first.queued_at + self.max_delay_s
            while rows < self.max_rows:
                if self._queue:
                    following = self._queue[0]
                    if not self._fits(first, following, rows):
                        break  # it starts the next batch
                    self._queue.popleft()
                    if following.future.set_running_or_notify_cancel():
                        batch.append(following)
                        rows += len(following.rows)
                    continue
                remaining = until - time.perf_counter()
                if self._arriving == 0 or remaining <= 0:
                    break  # nobody else is on the way, or waiting longer costs more than it gains
                self._changed.wait(remaining)
            return batch

    def _fits(self, first: _Pending, following: _Pending, rows: int) -> bool:
        return (
            rows + len(following.rows) <= self.max_rows
            and following.rows.shape[1:] == first.rows.shape[1:]
            and following.rows.dtype == first.rows.dtype
        )

    # -- the predict pool ---------------------------------------------------------------------------
    def _predict_batch(self, batch: list[_Pending]) -> None:
        try:
            if len(batch) == 1:
                self._predict_alone(batch[0])
                return
            sizes = [len(pending.rows) for pending in batch]
            try:
                parts = split(self._predict(Batch(np.concatenate([p.rows for p in batch]))), sizes)
            except Exception as exc:  # noqa: BLE001 - one bad request must not fail the others
                logs.warning(
                    "batch_fallback", requests=len(batch), rows=sum(sizes), error=f"{type(exc).__name__}: {exc}"
                )
                self._metrics.batch_fallback()
                for pending in batch:
                    self._predict_alone(pending)
                return
            self._metrics.observe_batch(len(batch), sum(sizes))  # counted before anyone is answered
            for pending, part in zip(batch, parts, strict=True):
                pending.future.set_result(part)
        finally:
            self._slots.release()

    def _predict_alone(self, pending: _Pending) -> None:
        self._metrics.observe_batch(1, len(pending.rows))
        try:
            pending.future.set_result(self._predict(Batch(pending.rows)))
        except BaseException as exc:  # noqa: BLE001 - the caller raises it (500, or its ServingError)
            pending.future.set_exception(exc)


def split(outputs: Outputs, sizes: list[int]) -> list[Outputs]:
    """One Outputs per request, by row offsets; ValueError unless every output has one entry per row."""
    total = sum(sizes)
    for name, values in outputs.columns.items():
        if getattr(values, "ndim", 1) == 0 or len(values) != total:  # a 0-d array or a scalar has no rows
            raise ValueError(f"output {name!r} has no entry per row ({total} rows merged)")
    parts, start = [], 0
    for size in sizes:
        columns: dict[str, Any] = {name: values[start : start + size] for name, values in outputs.columns.items()}
        parts.append(Outputs(columns, named=outputs.named, class_labels=outputs.class_labels))
        start += size
    return parts
