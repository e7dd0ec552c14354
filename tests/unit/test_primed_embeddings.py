"""Priming: a batch's texts are embedded in one embed_batch call, the guarded embedder answers
mem0's embed() for them from those vectors while the batch runs, and nothing is left behind
after it — however it ends. Priming only ever saves work: when it cannot be done, each text is
embedded alone, with the guard's failure classification as before."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from mem0.configs.embeddings.base import BaseEmbedderConfig
from mem0.embeddings.base import EmbeddingBase

from services.embeddings.primed import PrimedVectors
from services.mem0_engine import EmbeddingUnavailable, GuardedEmbedder

REQUEST = httpx.Request("POST", "https://embeddings.example/v1/embeddings")


def vector_of(text: str, action: Any = None) -> list[float]:
    return [float(len(text)), float(sum(map(ord, text)) % 97), float(len(str(action)))]


class Recording(EmbeddingBase):
    """An embedder that batches natively and records every call it gets."""

    def __init__(self, fail_batch: BaseException | None = None) -> None:
        super().__init__(BaseEmbedderConfig())
        self.singles: list[tuple[str, Any]] = []
        self.batches: list[tuple[list[str], str]] = []
        self.fail_batch = fail_batch

    def embed(self, text: Any, memory_action: Any = None) -> list[float]:
        self.singles.append((text, memory_action))
        return vector_of(text, memory_action)

    def embed_batch(self, texts: Any, memory_action: str = "add") -> list[list[float]]:
        self.batches.append((list(texts), memory_action))
        if self.fail_batch is not None:
            raise self.fail_batch
        return [vector_of(t, memory_action) for t in texts]


class OneAtATime(EmbeddingBase):
    """An embedder with mem0's default embed_batch (one embed per text)."""

    def __init__(self) -> None:
        super().__init__(BaseEmbedderConfig())
        self.singles = 0

    def embed(self, text: Any, memory_action: Any = None) -> list[float]:
        self.singles += 1
        return vector_of(text, memory_action)


def test_an_entry_stays_until_its_last_holder_lets_go() -> None:
    primed = PrimedVectors()
    primed.hold([("add", "a"), ("add", "b")], [[1.0], [2.0]])
    primed.hold([("add", "a")], [[1.0]])
    primed.release([("add", "a"), ("add", "b")])
    assert primed.get("add", "a") == [1.0]
    assert primed.get("add", "b") is None
    primed.release([("add", "a")])
    assert len(primed) == 0


def test_a_count_mismatch_keeps_nothing() -> None:
    primed = PrimedVectors()
    with pytest.raises(ValueError, match="1 vectors for 2 texts"):
        primed.hold([("add", "a"), ("add", "b")], [[1.0]])
    assert len(primed) == 0


def test_a_primed_vector_is_a_copy() -> None:
    primed = PrimedVectors()
    primed.hold([("add", "a")], [[1.0, 2.0]])
    primed.get("add", "a").append(3.0)  # type: ignore[union-attr]
    assert primed.get("add", "a") == [1.0, 2.0]


async def test_primed_texts_are_embedded_once_in_one_batch_call() -> None:
    inner = Recording()
    embedder = GuardedEmbedder(inner, "openai")
    texts = ["one", "two", "three", "two"]
    async with embedder.priming([("add", t) for t in texts]) as primed:
        assert primed == 3
        vectors = [embedder.embed(t, "add") for t in texts]
    assert inner.batches == [(["one", "two", "three"], "add")]  # once each, in order
    assert inner.singles == []
    assert vectors == [vector_of(t, "add") for t in texts]
    assert len(embedder.primed) == 0


async def test_a_vector_is_primed_for_its_action_only() -> None:
    inner = Recording()
    embedder = GuardedEmbedder(inner, "cohere")  # cohere embeds queries and documents apart
    async with embedder.priming([("add", "a"), ("add", "b"), ("search", "c"), ("search", "d")]):
        embedder.embed("a", "search")
        embedder.embed("c", "search")
    assert inner.batches == [(["a", "b"], "add"), (["c", "d"], "search")]
    assert inner.singles == [("a", "search")]


async def test_texts_outside_the_block_are_embedded_alone() -> None:
    inner = Recording()
    embedder = GuardedEmbedder(inner, "openai")
    async with embedder.priming([("add", "a"), ("add", "b")]):
        embedder.embed("z", "add")
    embedder.embed("a", "add")
    assert inner.singles == [("z", "add"), ("a", "add")]


async def test_one_text_is_not_worth_a_batch_call() -> None:
    inner = Recording()
    embedder = GuardedEmbedder(inner, "openai")
    async with embedder.priming([("add", "a"), ("add", "a")]) as primed:
        embedder.embed("a", "add")
    assert primed == 0
    assert inner.batches == []
    assert inner.singles == [("a", "add")]


async def test_a_provider_without_a_batch_call_is_not_primed() -> None:
    inner = OneAtATime()
    embedder = GuardedEmbedder(inner, "aws_bedrock")
    assert not embedder.batches_natively
    async with embedder.priming([("add", "a"), ("add", "b")]) as primed:
        embedder.embed("a", "add")
    assert (primed, inner.singles) == (0, 1)


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused", request=REQUEST), ValueError("a text no model takes")],
    ids=["provider-down", "other-error"],
)
async def test_a_failed_priming_leaves_each_text_to_be_embedded_alone(
    failure: BaseException,
) -> None:
    inner = Recording(fail_batch=failure)
    embedder = GuardedEmbedder(inner, "openai")
    async with embedder.priming([("add", "a"), ("add", "b")]) as primed:
        assert primed == 0
        assert embedder.embed("a", "add") == vector_of("a", "add")
    assert inner.singles == [("a", "add")]
    assert len(embedder.primed) == 0


async def test_a_provider_failure_still_reaches_each_text_as_unavailable() -> None:
    class Down(Recording):
        def embed(self, text: Any, memory_action: Any = None) -> list[float]:
            raise httpx.ConnectError("refused", request=REQUEST)

    embedder = GuardedEmbedder(Down(fail_batch=httpx.ConnectError("x", request=REQUEST)), "openai")
    async with embedder.priming([("add", "a"), ("add", "b")]):
        with pytest.raises(EmbeddingUnavailable):
            embedder.embed("a", "add")


async def test_nothing_is_left_behind_when_the_batch_fails() -> None:
    embedder = GuardedEmbedder(Recording(), "openai")
    held = []

    async def failing_batch() -> None:
        async with embedder.priming([("add", "a"), ("add", "b")]):
            held.append(len(embedder.primed))
            raise RuntimeError("an item failed")

    with pytest.raises(RuntimeError, match="an item failed"):
        await failing_batch()
    assert held == [2]
    assert len(embedder.primed) == 0


async def test_nothing_is_left_behind_when_the_batch_is_cancelled() -> None:
    embedder = GuardedEmbedder(Recording(), "openai")
    inside = asyncio.Event()

    async def batch() -> None:
        async with embedder.priming([("add", "a"), ("add", "b")]):
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(batch())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(embedder.primed) == 0


async def test_concurrent_batches_share_a_text_until_both_end() -> None:
    inner = Recording()
    embedder = GuardedEmbedder(inner, "openai")
    first_done, second_primed = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with embedder.priming([("add", "shared"), ("add", "a")]):
            await second_primed.wait()
        first_done.set()

    async def second() -> list[float]:
        async with embedder.priming([("add", "shared"), ("add", "b")]):
            second_primed.set()
            await first_done.wait()
            return embedder.embed("shared", "add")  # the first batch has let go meanwhile

    _, vector = await asyncio.gather(first(), second())
    assert vector == vector_of("shared", "add")
    assert inner.singles == []
    assert len(embedder.primed) == 0
