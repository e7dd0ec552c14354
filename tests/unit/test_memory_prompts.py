"""MemoryPrompts' composition (services/memory_prompt.py): the session and the memories read at
the same time, and which error a client sees when both reads fail. The STM and LTM services are
stand-ins here; end to end, over the real ones, is tests/e2e/test_memory_prompt.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from services.errors import InvalidInput, MaasError, NotFound, Unavailable
from services.ltm_model import Category, MemoryHit, MemoryRecord, MemorySearch, Scope
from services.memory_prompt import MemoryPrompts, PromptRequest
from services.stm_limits import StmLimits
from services.stm_model import (
    ContextWindow,
    Message,
    Role,
    SessionConfig,
    SessionInfo,
    Strategy,
)
from services.tokens import token_counter_for
from tests.support.patience import patience

AT = datetime(2026, 1, 1, tzinfo=UTC)
TOKENS = token_counter_for("gpt-4.1-mini")
CONFIG = SessionConfig(Strategy.TOKEN_THRESHOLD, 50, 4000, 0)
SESSION = SessionInfo("s1", 1, 12, 0, AT, AT, CONFIG)
NEWEST = Message("m1", 1, Role.USER, "What should I cook?", 12, AT)
HIT = MemoryHit(
    MemoryRecord(
        "mem-1", "Is allergic to peanuts.", Category.FACT, Scope("alice"), {}, AT, AT, None
    ),
    0.8,
)


class Reads:
    """Both stand-ins: each read waits until the other has started (a rendezvous), so reads done
    one after the other never finish; an error given makes that read raise it instead."""

    limits = StmLimits()

    def __init__(
        self, session_error: MaasError | None = None, search_error: MaasError | None = None
    ):
        self.session_started = asyncio.Event()
        self.search_started = asyncio.Event()
        self.session_error = session_error
        self.search_error = search_error
        self.tenants: list[str] = []
        self.searches: list[MemorySearch] = []

    async def get_session(self, tenant: str, session_id: str) -> SessionInfo | None:
        self.tenants.append(tenant)
        self.session_started.set()
        await self.search_started.wait()
        if self.session_error is not None:
            raise self.session_error
        return SESSION if session_id == "s1" else None

    async def get_context(self, tenant: str, session: SessionInfo) -> ContextWindow:
        self.tenants.append(tenant)
        return ContextWindow([NEWEST], NEWEST.tokens, CONFIG.strategy, False, None, False)

    async def search(self, tenant: str, search: MemorySearch) -> list[MemoryHit]:
        self.tenants.append(tenant)
        self.searches.append(search)
        self.search_started.set()
        await self.session_started.wait()
        if self.search_error is not None:
            raise self.search_error
        return [HIT]


def prompts(reads: Reads) -> MemoryPrompts:
    stand_in: Any = reads
    return MemoryPrompts(stand_in, stand_in, TOKENS)


def request(**fields: Any) -> PromptRequest:
    values: dict[str, Any] = {"session_id": "s1", "scope": Scope("alice"), "query": "cooking"}
    return PromptRequest(**{**values, **fields})


async def test_with_a_query_the_session_and_the_memories_are_read_at_the_same_time() -> None:
    reads = Reads()
    built = await asyncio.wait_for(prompts(reads).build("acme", request()), patience())

    assert [m.content for m in built.messages[1:]] == [NEWEST.content]
    assert built.memories == [HIT]
    assert built.token_budget == CONFIG.max_tokens
    assert set(reads.tenants) == {"acme"}
    (search,) = reads.searches
    assert (search.query, search.scope, search.limit) == ("cooking", Scope("alice"), 5)


@pytest.mark.parametrize(
    ("session_error", "search_error", "seen"),
    [
        (None, InvalidInput("query is empty."), InvalidInput),  # no session, and a bad query
        (Unavailable("redis"), InvalidInput("query is empty."), InvalidInput),
        (None, Unavailable("vector store"), NotFound),  # no session, and the store is down
        (Unavailable("redis"), Unavailable("vector store"), Unavailable),
    ],
)
async def test_a_wrong_request_is_said_first_then_the_session_then_the_search(
    session_error: MaasError | None, search_error: MaasError, seen: type[MaasError]
) -> None:
    reads = Reads(session_error, search_error)
    with pytest.raises(seen) as raised:
        await asyncio.wait_for(
            prompts(reads).build("acme", request(session_id="no-such")), patience()
        )
    if session_error is not None and seen is Unavailable:
        assert raised.value is session_error


@pytest.mark.parametrize("query", ["cooking", None])
async def test_without_the_vector_store_the_prompt_is_the_context_and_says_so(
    query: str | None,
) -> None:
    reads = Reads(search_error=Unavailable("vector store"))
    if query is None:
        reads.session_started.set()  # no rendezvous: the session is read first
        reads.search_started.set()
    built = await asyncio.wait_for(prompts(reads).build("acme", request(query=query)), patience())

    assert built.memories_unavailable
    assert built.memories == []
    assert [m.content for m in built.messages] == [NEWEST.content]
    assert not built.truncated


async def test_a_prompt_with_memories_says_they_were_available() -> None:
    built = await asyncio.wait_for(prompts(Reads()).build("acme", request()), patience())
    assert not built.memories_unavailable
