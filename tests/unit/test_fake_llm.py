"""The fake LLM server behaves like the OpenAI API as seen through the real openai client."""

from __future__ import annotations

import asyncio
import base64
import math
import struct
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest

from tests.support.fake_llm import FakeLLM
from tests.support.patience import patience


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeLLM) -> Iterator[FakeLLM]:
    server.reset()
    yield server
    server.reset()


@pytest.fixture
async def client(fake: FakeLLM) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=fake.base_url, api_key="test", max_retries=0, timeout=patience()
    ) as c:
        yield c


async def _ask(client: openai.AsyncOpenAI, text: str, model: str = "gpt-4.1-mini") -> str:
    response = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}]
    )
    return response.choices[0].message.content or ""


async def test_scripted_replies_served_in_order(client: openai.AsyncOpenAI, fake: FakeLLM) -> None:
    fake.script("first", "second")
    fake.script("third")
    assert [await _ask(client, "q") for _ in range(3)] == ["first", "second", "third"]
    # Script exhausted: falls back to the default reply.
    assert (await _ask(client, "q")).startswith("SUMMARY(1): ")


async def test_default_reply_and_response_shape(client: openai.AsyncOpenAI) -> None:
    long_text = "word " * 100
    response = await client.chat.completions.create(
        model="some-model",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "user", "content": long_text},
        ],
    )
    assert response.object == "chat.completion"
    assert response.model == "some-model"
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "SUMMARY(3): " + long_text[:200]
    assert response.usage is not None
    assert response.usage.prompt_tokens == 2 + 1 + 100
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens
    )


async def test_requests_recorded(client: openai.AsyncOpenAI, fake: FakeLLM) -> None:
    await _ask(client, "one", model="m1")
    await _ask(client, "two", model="m2")
    assert [r["model"] for r in fake.requests] == ["m1", "m2"]
    assert fake.requests[1]["messages"] == [{"role": "user", "content": "two"}]
    fake.reset()
    assert fake.requests == []


async def test_failure_injection(client: openai.AsyncOpenAI, fake: FakeLLM) -> None:
    fake.script("after failures")
    fake.fail_next(2)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await _ask(client, "q")
    # Failures do not consume scripted replies.
    assert await _ask(client, "q") == "after failures"

    fake.fail_next(status=429)
    with pytest.raises(openai.RateLimitError):
        await _ask(client, "q")
    assert len(fake.requests) == 4


async def test_stream_rejected(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "q"}], stream=True
        )


async def test_delay_calls_overlap(client: openai.AsyncOpenAI, fake: FakeLLM) -> None:
    fake.set_delay(0.2)
    started = time.perf_counter()
    replies = await asyncio.gather(*(_ask(client, f"q{i}") for i in range(50)))
    elapsed = time.perf_counter() - started
    assert sorted(replies) == sorted(f"SUMMARY(1): q{i}" for i in range(50))
    assert elapsed >= 0.2  # each waited its delay...
    assert fake.max_in_flight > 1  # ...while others waited theirs: the calls overlapped


async def test_embeddings_deterministic_unit_length(client: openai.AsyncOpenAI) -> None:
    first = await client.embeddings.create(model="emb", input=["alpha", "beta"])
    second = await client.embeddings.create(model="emb", input="alpha")
    assert [d.index for d in first.data] == [0, 1]
    alpha, beta = (d.embedding for d in first.data)
    assert len(alpha) == 384
    assert second.data[0].embedding == alpha
    assert alpha != beta
    for vector in (alpha, beta):
        # The client asks for base64 float32 by default, hence the loose tolerance.
        assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-6)


async def test_embeddings_dimensions_and_formats(client: openai.AsyncOpenAI) -> None:
    floats = await client.embeddings.create(
        model="emb", input="gamma", dimensions=16, encoding_format="float"
    )
    packed = await client.embeddings.create(
        model="emb", input="gamma", dimensions=16, encoding_format="base64"
    )
    vector = floats.data[0].embedding
    assert len(vector) == 16
    assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-12)
    raw = base64.b64decode(str(packed.data[0].embedding))
    assert list(struct.unpack("<16f", raw)) == pytest.approx(vector, rel=1e-6)


async def test_models(fake: FakeLLM) -> None:
    async with httpx.AsyncClient(timeout=patience()) as http:
        response = await http.get(f"{fake.base_url}/models")
    assert response.status_code == 200
    assert len(response.json()["data"]) == 1


def test_start_stop_restartable() -> None:
    fake = FakeLLM().start()
    try:
        assert fake.base_url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{fake.base_url}/models", timeout=patience()).status_code == 200
    finally:
        fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fake.base_url}/models")
