"""Concurrent embed calls merged into one batched call of the provider.

mem0 embeds each text alone, each from its own worker thread: ten extractions in flight make
ten one-text encodes for their searches and ten more for their facts, where one encode of ten
texts costs about half the CPU (MiniLM) or one request instead of ten (an API). Here callers
queue their texts. A caller that finds fewer than `max_running` calls under way makes one
itself at once; callers that come while calls run wait in a queue, and when a call ends its
maker hands the next call to the caller waiting longest, which takes everything queued for its
memory action (up to `max_texts`) into it. No timer: a lone call starts at once, exactly as it
would without this (one text: the provider's own `embed`).

Failures stay with the callers they belong to. When a merged call fails because of the
provider (services/embeddings/failures.py: down, throttled, our key refused), every caller in it
gets that failure, as each would have alone; any other failure (a text no model takes) makes
each caller's texts be embedded again on their own, so only the caller whose texts fail sees it.
Callers are threads: one whose asyncio task was cancelled meanwhile still finishes its part, so
the others are never left waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from services.embeddings.failures import is_provider_failure

EmbedOne = Callable[[str, Any], list[float]]
EmbedMany = Callable[[list[str], Any], list[list[float]]]

# Most texts one merged call carries: a search queued behind a merged call waits for at most
# this many texts' encode (~4 ms each for MiniLM on one core).
MAX_TEXTS = 32


class _Request:
    """One caller's texts, and what became of them."""

    __slots__ = ("action", "error", "lead", "texts", "vectors", "woken")

    def __init__(self, texts: list[str], action: Any) -> None:
        self.texts = texts
        self.action = action
        self.vectors: list[list[float]] | None = None
        self.error: BaseException | None = None
        self.lead = False  # makes a call: found room, or was handed the next call
        self.woken = threading.Event()


class MicroBatcher:
    """Merges concurrent `embed_many` calls (from any threads) into batched provider calls."""

    def __init__(
        self,
        embed_one: EmbedOne,
        embed_many: EmbedMany,
        *,
        max_running: int = 1,
        max_texts: int = MAX_TEXTS,
        shared_failure: Callable[[BaseException], bool] = is_provider_failure,
        any_action: bool = False,
    ) -> None:
        """`any_action`: the provider embeds a text the same for every memory action, so texts
        of different actions may share a call (otherwise never: Cohere embeds queries and
        documents apart)."""
        if max_running < 1 or max_texts < 1:
            raise ValueError("max_running and max_texts must be at least 1")
        self._embed_one = embed_one
        self._embed_many = embed_many
        self._max_running = max_running
        self._max_texts = max_texts
        self._shared_failure = shared_failure
        self._any_action = any_action
        self._lock = threading.Lock()
        self._queue: list[_Request] = []
        self._running = 0  # callers making calls, at most max_running

    def embed_many(self, texts: Sequence[str], action: Any = None) -> list[list[float]]:
        """The vectors of `texts`, in order; blocking. Raises what embedding them raised."""
        if not texts:
            return []
        request = _Request(list(texts), action)
        with self._lock:
            request.lead = self._running < self._max_running
            if request.lead:
                self._running += 1
            else:
                self._queue.append(request)
        if not request.lead:
            request.woken.wait()  # served by someone else's call, or handed the next one
        if request.lead:
            self._lead(request)
        if request.error is not None:
            raise request.error
        assert request.vectors is not None
        return request.vectors

    def _lead(self, request: _Request) -> None:
        """Make one call, of this request and what queued for its action meanwhile; then hand
        the next call to the caller waiting longest, if any."""
        try:
            self._call(self._take(request))
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue.pop(0)  # out of the queue: no one else takes it
                    successor.lead = True
                    successor.woken.set()
                else:
                    self._running -= 1

    def _take(self, first: _Request) -> list[_Request]:
        """The requests of one call: `first`, and the queued ones for the same action, oldest
        first, while they fit in max_texts (a request is never split)."""
        batch, size, rest = [first], len(first.texts), []
        with self._lock:
            for queued in self._queue:
                fits = size + len(queued.texts) <= self._max_texts
                if (self._any_action or queued.action == first.action) and fits:
                    batch.append(queued)
                    size += len(queued.texts)
                else:
                    rest.append(queued)
            self._queue = rest
        return batch

    def _call(self, batch: list[_Request]) -> None:
        """One provider call for the batch; every request in it ends served or failed."""
        try:
            try:
                vectors = self._embed([text for r in batch for text in r.texts], batch[0].action)
            except Exception as exc:
                if len(batch) == 1 or self._shared_failure(exc):
                    for r in batch:
                        r.error = exc
                else:
                    for r in batch:  # each on its own, so a failure is only its own
                        self._call_alone(r)
            else:
                start = 0
                for r in batch:
                    r.vectors = vectors[start : start + len(r.texts)]
                    start += len(r.texts)
        except BaseException as exc:  # e.g. KeyboardInterrupt: nobody may be left waiting
            for r in batch:
                if r.vectors is None and r.error is None:
                    r.error = exc
            raise
        finally:
            for r in batch[1:]:  # the first is the caller making the call
                r.woken.set()

    def _call_alone(self, request: _Request) -> None:
        try:
            request.vectors = self._embed(request.texts, request.action)
        except Exception as exc:
            request.error = exc

    def _embed(self, texts: list[str], action: Any) -> list[list[float]]:
        if len(texts) == 1:
            return [self._embed_one(texts[0], action)]
        vectors = list(self._embed_many(texts, action))
        if len(vectors) != len(texts):
            raise ValueError(f"the embedder returned {len(vectors)} vectors for {len(texts)} texts")
        return vectors
