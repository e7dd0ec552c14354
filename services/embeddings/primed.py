"""Vectors embedded ahead of time, for the texts a batch of adds is about to store.

mem0 embeds each text of a verbatim add alone, in its own worker thread; one batched encode of
all of a batch's texts costs a fraction of that CPU (MiniLM: ~3x less for 50 short texts). A
batch primes its texts here, in one `embed_batch` call; the embedder answers mem0's `embed()`
for a primed (text, action) from here instead of embedding it again. A text that is not primed,
or a text whose priming failed, is embedded as before: priming only ever saves work.

Entries are counted per holder, so two batches priming the same text share one entry, and a
batch's entries go when its `hold` ends, however it ends. Thread-safe: mem0 reads from worker
threads while batches prime and release on the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

Key = tuple[str, str]  # (memory_action, text)


class PrimedVectors:
    """A bounded-by-its-holders map from (memory action, text) to the text's vector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vectors: dict[Key, list[float]] = {}
        self._holders: dict[Key, int] = {}

    def hold(self, keys: Sequence[Key], vectors: Sequence[list[float]]) -> None:
        """Keep these vectors until `release(keys)`; keys may repeat (each is held once)."""
        if len(keys) != len(vectors):
            raise ValueError(f"{len(vectors)} vectors for {len(keys)} texts")
        with self._lock:
            for key, vector in zip(keys, vectors, strict=True):
                self._vectors.setdefault(key, vector)
                self._holders[key] = self._holders.get(key, 0) + 1

    def release(self, keys: Sequence[Key]) -> None:
        """Let go of what `hold(keys)` kept; an entry goes when its last holder lets go."""
        with self._lock:
            for key in keys:
                left = self._holders.get(key, 0) - 1
                if left > 0:
                    self._holders[key] = left
                else:
                    self._holders.pop(key, None)
                    self._vectors.pop(key, None)

    def get(self, action: str, text: str) -> list[float] | None:
        """A copy of the primed vector of this text for this action, or None."""
        with self._lock:
            vector = self._vectors.get((action, text))
        return None if vector is None else list(vector)

    def __len__(self) -> int:
        with self._lock:
            return len(self._vectors)
