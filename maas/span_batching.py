"""A span processor that costs an ended span one append: spans wait in a deque and one thread
exports them, a batch as soon as MAX_BATCH are waiting, and whatever waits every DELAY_SECONDS.

The SDK's BatchSpanProcessor does the same in more steps per span (a shutdown flag, a fork
check, a queue-full check, the wake-up event's state) and exports in batches of 512, each a
POST; under load, fewer and larger batches cost the exporting thread (and the GIL it takes from
the requests) less. At shutdown every span that ended before it is exported, as far as the
exporter's own deadline allows (maas.telemetry.Tracing.shutdown bounds it).
"""

from __future__ import annotations

import collections
import logging
import threading

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)

MAX_BATCH = 1024
DELAY_SECONDS = 2.0
# Spans waiting, at most (~2 KB each): beyond it, new ones are dropped until an export drains.
MAX_WAITING = 16_384


class SpanBatcher(SpanProcessor):
    """Exports ended, sampled spans in batches from a thread of its own."""

    def __init__(
        self,
        exporter: SpanExporter,
        max_batch: int = MAX_BATCH,
        delay_seconds: float = DELAY_SECONDS,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        self._exporter = exporter
        self._max_batch = max_batch
        self._delay_seconds = delay_seconds
        self._max_waiting = max_waiting
        self._waiting: collections.deque[ReadableSpan] = collections.deque()
        self._dropped = 0
        self._woken = False  # read without a lock: at worst one needless wake-up
        self._wake = threading.Event()
        self._stopping = False
        self._exporting = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="span-batcher", daemon=True)
        self._thread.start()

    def on_end(self, span: ReadableSpan) -> None:
        if not span.context.trace_flags.sampled:
            return
        waiting = self._waiting
        if len(waiting) >= self._max_waiting:
            self._dropped += 1
            return
        waiting.append(span)
        if len(waiting) >= self._max_batch and not self._woken:
            self._woken = True
            self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._delay_seconds)
            self._wake.clear()
            self._woken = False
            self._export_waiting()
        self._export_waiting()

    def _export_waiting(self) -> None:
        """Exports the spans waiting now, in batches of at most max_batch."""
        with self._exporting:
            waiting, pop = self._waiting, self._waiting.popleft
            count = len(waiting)
            while count > 0:
                batch = [pop() for _ in range(min(count, self._max_batch))]
                count -= len(batch)
                # The export's own HTTP calls are not traced.
                token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
                try:
                    self._exporter.export(batch)
                except Exception:
                    log.exception("exporting %d spans failed", len(batch))
                finally:
                    detach(token)
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                log.warning("dropped %d spans: more ended than could be exported", dropped)

    def shutdown(self) -> None:
        """Exports what is waiting and stops the thread; the exporter keeps to its deadline."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        if self._stopping:
            return False
        self._export_waiting()
        return True
