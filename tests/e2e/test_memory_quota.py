"""The quota of long-term memories per tenant: extraction that would pass it keeps nothing,
deletes give room back, expired memories are swept when a tenant is over its quota."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from gql.client import AsyncClientSession

from stores.redis_limits import RedisLimitStore
from tests.e2e.conftest import Connect
from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import execute, execute_error
from tests.support.memory_queries import ADD_MEMORY, DELETE, extraction, list_all, remember

TENANT = "local"  # no API keys: local-development mode


@pytest.fixture
async def api(live_server: Callable[..., str], connect: Connect) -> AsyncClientSession:
    return await connect(live_server(quota_max_memories=2))


async def extract(api: AsyncClientSession, user: str = "alice") -> dict:
    return await execute(
        api,
        ADD_MEMORY,
        input={"userId": user, "messages": [{"role": "USER", "content": "Some facts."}]},
    )


async def test_an_extraction_past_the_quota_keeps_none_of_what_it_found(
    api: AsyncClientSession, fake_llm: FakeLLM, redis
):
    fake_llm.script(extraction("Likes tea", "Lives in Oslo", "Has a cat"))
    errors = await execute_error(
        api,
        ADD_MEMORY,
        input={"userId": "alice", "messages": [{"role": "USER", "content": "Some facts."}]},
    )
    assert errors[0]["extensions"] == {
        "code": "LIMIT_EXCEEDED",
        "quota": "memories",
        "limit": 2,
        "used": 0,
        "requested": 3,
    }
    assert await list_all(api, userId="alice") == []
    assert await RedisLimitStore(redis).memory_count(TENANT) == 0

    fake_llm.script(extraction("Likes tea", "Lives in Oslo"))
    added = (await extract(api))["addMemory"]["added"]
    assert len(added) == 2
    assert await RedisLimitStore(redis).memory_count(TENANT) == 2
    errors = await execute_error(
        api, ADD_MEMORY, input={"text": "one more", "userId": "bob", "infer": False}
    )
    assert errors[0]["extensions"]["code"] == "LIMIT_EXCEEDED"

    await execute(api, DELETE, id=added[0]["id"])
    await remember(api, "one more", user_id="bob")
    assert await RedisLimitStore(redis).memory_count(TENANT) == 2


async def test_expired_memories_make_room_when_the_tenant_is_over_its_quota(
    api: AsyncClientSession, redis
):
    await remember(api, "short-lived", ttlSeconds=1)
    await remember(api, "kept")
    await asyncio.sleep(1.2)  # past the first memory's expiry (wall clock, not machine speed)
    await remember(api, "newest")
    assert sorted(m["text"] for m in await list_all(api, userId="alice")) == ["kept", "newest"]
    assert await RedisLimitStore(redis).memory_count(TENANT) == 2
