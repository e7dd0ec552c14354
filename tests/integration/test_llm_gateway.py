"""The LLM gateway against the local OpenAI-compatible test server."""

from __future__ import annotations

import pytest

from services.errors import Unavailable
from services.llm import PROVIDER_BASE_URLS, LLMConfig, LLMGateway
from tests.support.fake_llm import FakeLLM


def config(**overrides) -> LLMConfig:
    values = dict(
        provider="openai",
        base_url=None,
        api_key=None,
        model="gpt-4.1-mini",
        temperature=0.1,
        max_tokens=64,
        timeout_seconds=5,
        max_retries=0,
    )
    values.update(overrides)
    return LLMConfig(**values)


async def test_a_reply_comes_back_through_the_chat_completions_protocol(fake_llm: FakeLLM):
    fake_llm.script("pong")
    gateway = LLMGateway(config(base_url=fake_llm.base_url, api_key="k"))
    try:
        assert await gateway.complete([{"role": "user", "content": "ping"}]) == "pong"
    finally:
        await gateway.close()
    [request] = fake_llm.requests
    assert request["model"] == "gpt-4.1-mini"
    assert request["max_tokens"] == 64
    assert request["temperature"] == 0.1


async def test_a_failing_llm_is_unavailable_after_bounded_retries(fake_llm: FakeLLM):
    fake_llm.fail_next(2, status=503)
    gateway = LLMGateway(config(base_url=fake_llm.base_url, max_retries=1))
    try:
        with pytest.raises(Unavailable):
            await gateway.complete([{"role": "user", "content": "ping"}])
    finally:
        await gateway.close()
    assert len(fake_llm.requests) == 2


async def test_a_slow_llm_times_out_as_unavailable(fake_llm: FakeLLM):
    fake_llm.set_delay(1.0)
    gateway = LLMGateway(config(base_url=fake_llm.base_url, timeout_seconds=0.2))
    try:
        with pytest.raises(Unavailable):
            await gateway.complete([{"role": "user", "content": "ping"}])
    finally:
        await gateway.close()


async def test_without_key_or_base_url_no_llm_is_configured():
    gateway = LLMGateway(config())
    assert not gateway.configured
    with pytest.raises(Unavailable):
        await gateway.complete([{"role": "user", "content": "ping"}])


def test_every_named_provider_has_a_base_url():
    providers = {
        "openai",
        "grok",
        "anthropic",
        "openrouter",
        "kimi",
        "glm",
        "minimax",
        "together",
        "deepseek",
    }
    assert set(PROVIDER_BASE_URLS) == providers
    assert all(url.startswith("https://") for url in PROVIDER_BASE_URLS.values())
