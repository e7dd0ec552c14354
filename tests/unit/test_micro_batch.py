"""The micro-batcher: embed calls made while another is under way are merged into one batched
call of the provider, each caller gets its own vectors in order, a failure reaches exactly the
callers it belongs to, and no caller is left waiting — whatever happens to the others."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from services.embeddings.micro_batch import MicroBatcher
from services.mem0_engine import EmbeddingUnavailable, GuardedEmbedder
from tests.support.patience import patience
from tests.unit.test_primed_embeddings import REQUEST, Recording, vector_of


class Interrupted(BaseException):
    """Like KeyboardInterrupt (not an Exception), without stopping the test run."""


class Gated:
    """A provider whose calls are recorded and wait for `release` while `gate` is closed."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], Any]] = []
        self.entered = threading.Semaphore(0)  # one release per call made
        self.gate = threading.Event()
        self.fail: dict[str, BaseException] = {}  # text -> error of any call carrying it

    def one(self, text: str, action: Any) -> list[float]:
        return self.many([text], action)[0]

    def many(self, texts: list[str], action: Any) -> list[list[float]]:
        self.calls.append((list(texts), action))
        self.entered.release()
        assert self.gate.wait(patience()), "the test never opened the gate"
        for text in texts:
            if text in self.fail:
                raise self.fail[text]
        return [vector_of(t, action) for t in texts]

    def wait_for_call(self) -> None:
        assert self.entered.acquire(timeout=patience()), "no call was made"


def start(batcher: MicroBatcher, texts: list[str], action: Any = "add") -> asyncio.Task[Any]:
    return asyncio.create_task(asyncio.to_thread(batcher.embed_many, texts, action))


async def queued(batcher: MicroBatcher, count: int) -> None:
    """Until `count` callers wait in the batcher's queue (they are threads: poll its state)."""
    deadline = time.monotonic() + patience()
    while True:
        if len(batcher._queue) >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} callers ever waited in the queue")
        await asyncio.sleep(0.001)


async def test_calls_made_while_one_runs_are_merged_into_one_call_in_order() -> None:
    provider = Gated()
    batcher = MicroBatcher(provider.one, provider.many)
    first = start(batcher, ["a"])
    await asyncio.to_thread(provider.wait_for_call)
    rest = [start(batcher, ["b"]), start(batcher, ["c", "d"]), start(batcher, ["e"])]
    await queued(batcher, 3)
    provider.gate.set()
    assert await first == [vector_of("a", "add")]
    results = await asyncio.gather(*rest)
    assert results == [
        [vector_of("b", "add")],
        [vector_of("c", "add"), vector_of("d", "add")],
        [vector_of("e", "add")],
    ]
    assert sorted(provider.calls) == [(["a"], "add"), (["b", "c", "d", "e"], "add")]


async def test_a_lone_call_runs_at_once_as_the_providers_own() -> None:
    provider = Gated()
    provider.gate.set()
    batcher = MicroBatcher(provider.one, provider.many)
    assert batcher.embed_many(["a"], "search") == [vector_of("a", "search")]
    assert batcher.embed_many(["b", "c"], "add") == [vector_of("b", "add"), vector_of("c", "add")]
    assert provider.calls == [(["a"], "search"), (["b", "c"], "add")]


async def test_actions_are_never_mixed_in_one_call() -> None:
    provider = Gated()
    batcher = MicroBatcher(provider.one, provider.many)
    first = start(batcher, ["a"], "add")
    await asyncio.to_thread(provider.wait_for_call)
    rest = [start(batcher, ["q1"], "search"), start(batcher, ["b"], "add")]
    await queued(batcher, 1)
    rest.append(start(batcher, ["q2"], "search"))
    await queued(batcher, 3)
    provider.gate.set()
    await asyncio.gather(first, *rest)
    assert (["q1", "q2"], "search") in provider.calls
    assert (["b"], "add") in provider.calls
    assert len(provider.calls) == 3


async def test_a_provider_blind_to_actions_shares_calls_across_them() -> None:
    provider = Gated()
    batcher = MicroBatcher(provider.one, provider.many, any_action=True)
    first = start(batcher, ["a"], "add")
    await asyncio.to_thread(provider.wait_for_call)
    rest = [start(batcher, ["q"], "search"), start(batcher, ["b"], "add")]
    await queued(batcher, 2)
    provider.gate.set()
    await asyncio.gather(first, *rest)
    assert sorted(texts for texts, _ in provider.calls) == [["a"], ["q", "b"]]


async def test_a_call_carries_at_most_max_texts() -> None:
    provider = Gated()
    batcher = MicroBatcher(provider.one, provider.many, max_texts=3)
    first = start(batcher, ["a"])
    await asyncio.to_thread(provider.wait_for_call)
    rest = [start(batcher, [t]) for t in "bcdef"]
    await queued(batcher, 5)
    provider.gate.set()
    await asyncio.gather(first, *rest)
    assert sorted(len(texts) for texts, _ in provider.calls) == [1, 2, 3]


async def test_up_to_max_running_calls_run_side_by_side() -> None:
    provider = Gated()
    batcher = MicroBatcher(provider.one, provider.many, max_running=2)
    tasks = [start(batcher, ["a"]), start(batcher, ["b"])]
    await asyncio.to_thread(provider.wait_for_call)
    await asyncio.to_thread(provider.wait_for_call)  # both under way, neither has returned
    tasks.append(start(batcher, ["c"]))
    await queued(batcher, 1)  # the third waits
    provider.gate.set()
    assert await asyncio.gather(*tasks) == [[vector_of(t, "add")] for t in "abc"]
    assert batcher._running == 0


async def test_a_provider_failure_fails_every_caller_of_the_call() -> None:
    provider = Gated()
    batcher = MicroBatcher(provider.one, provider.many)
    first = start(batcher, ["a"])
    await asyncio.to_thread(provider.wait_for_call)
    down = httpx.ConnectError("refused", request=REQUEST)
    provider.fail["b"] = down
    rest = [start(batcher, ["b"]), start(batcher, ["c"])]
    await queued(batcher, 2)
    provider.gate.set()
    assert await first == [vector_of("a", "add")]
    for task in rest:
        with pytest.raises(httpx.ConnectError) as raised:
            await task
        assert raised.value is down
    assert len(provider.calls) == 2  # no retry: the provider is down for every text


async def test_any_other_failure_stays_with_the_caller_whose_text_caused_it() -> None:
    provider = Gated()
    batcher = MicroBatcher(provider.one, provider.many)
    first = start(batcher, ["a"])
    await asyncio.to_thread(provider.wait_for_call)
    provider.fail["bad"] = ValueError("a text no model takes")
    rest = [start(batcher, ["b"]), start(batcher, ["bad"]), start(batcher, ["c", "d"])]
    await queued(batcher, 3)
    provider.gate.set()
    await first
    good_b, bad, good_cd = await asyncio.gather(*rest, return_exceptions=True)
    assert good_b == [vector_of("b", "add")]
    assert isinstance(bad, ValueError)
    assert good_cd == [vector_of("c", "add"), vector_of("d", "add")]
    # The merged call failed; then each caller's texts alone.
    assert provider.calls[1:] == [
        (["b", "bad", "c", "d"], "add"),
        (["b"], "add"),
        (["bad"], "add"),
        (["c", "d"], "add"),
    ]


async def test_a_wrong_count_of_vectors_fails_the_callers_instead_of_misassigning() -> None:
    def short_by_one(texts: list[str], action: Any) -> list[list[float]]:
        return [vector_of(t, action) for t in texts[1:]]

    batcher = MicroBatcher(lambda text, action: vector_of(text, action), short_by_one)
    with pytest.raises(ValueError, match="1 vectors for 2 texts"):
        batcher.embed_many(["a", "b"], "add")


async def test_a_cancelled_caller_leaves_the_others_served() -> None:
    provider = Gated()
    batcher = MicroBatcher(provider.one, provider.many)
    leader = start(batcher, ["a"])
    await asyncio.to_thread(provider.wait_for_call)
    waiting = [start(batcher, ["b"]), start(batcher, ["c"])]
    await queued(batcher, 2)
    leader.cancel()  # the caller of the running call goes away ...
    waiting[0].cancel()  # ... and so does one caller waiting for the next
    provider.gate.set()
    assert await waiting[1] == [vector_of("c", "add")]
    for task in (leader, waiting[0]):
        with pytest.raises(asyncio.CancelledError):
            await task
    # Nothing is left running or queued: the next caller is served at once.
    assert await asyncio.to_thread(batcher.embed_many, ["d"], "add") == [vector_of("d", "add")]
    assert batcher._running == 0
    assert batcher._queue == []


async def test_a_caller_interrupted_inside_the_call_does_not_strand_the_others() -> None:
    provider = Gated()
    interrupted = Interrupted()

    def many(texts: list[str], action: Any) -> list[list[float]]:
        result = provider.many(texts, action)
        if "boom" in texts:
            raise interrupted
        return result

    batcher = MicroBatcher(provider.one, many)
    first = start(batcher, ["a"])
    await asyncio.to_thread(provider.wait_for_call)
    rest = [start(batcher, ["boom"]), start(batcher, ["b"])]
    await queued(batcher, 2)
    provider.gate.set()
    await first
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert all(r is interrupted for r in results)
    assert batcher.embed_many(["c"], "add") == [vector_of("c", "add")]


async def test_the_guarded_embedder_merges_mem0s_concurrent_embeds() -> None:
    inner = Recording()
    gate = threading.Event()
    entered = threading.Semaphore(0)
    real_embed = inner.embed

    def slow_embed(text: Any, memory_action: Any = None) -> list[float]:
        entered.release()
        assert gate.wait(patience())
        return real_embed(text, memory_action)

    inner.embed = slow_embed  # type: ignore[method-assign]
    embedder = GuardedEmbedder(inner, "openai")
    assert embedder.batcher is not None

    waiting = embedder.cores + 2
    pool = ThreadPoolExecutor(embedder.cores + waiting)  # a thread for every caller

    def embed(text: str) -> asyncio.Future[list[float]]:
        return asyncio.get_running_loop().run_in_executor(pool, embedder.embed, text, "search")

    # As many lone calls as cores run at once (one text each: the provider's embed) ...
    running = [embed(f"first {n}") for n in range(embedder.cores)]
    for _ in running:
        assert await asyncio.to_thread(entered.acquire, timeout=patience())
    # ... and the calls made meanwhile are merged: when the running calls end together, each
    # hands the next call to a waiting caller, so they go out in at most one call per core.
    texts = [f"then {n}" for n in range(waiting)]
    merged = [embed(t) for t in texts]
    await queued(embedder.batcher, waiting)
    gate.set()
    assert await asyncio.gather(*merged) == [vector_of(t, "search") for t in texts]
    await asyncio.gather(*running)
    pool.shutdown()
    lone = [text for text, _ in inner.singles if text.startswith("then")]
    calls = [texts for texts, _ in inner.batches] + [[text] for text in lone]
    assert sorted(t for call in calls for t in call) == sorted(texts)
    assert len(calls) <= embedder.cores


async def test_a_merged_provider_failure_reaches_each_caller_as_unavailable() -> None:
    inner = Recording(fail_batch=httpx.ConnectError("refused", request=REQUEST))
    embedder = GuardedEmbedder(inner, "openai")
    with pytest.raises(EmbeddingUnavailable):
        embedder.embed_batch(["a", "b"], "add")
