"""The MCP tools: each one turns typed arguments into one call of the same service the GraphQL
resolver of that operation calls, and returns the GraphQL result's shape (maas/mcp_results.py).

Parameters are named as the GraphQL schema names them (camelCase; the SDK passes arguments by
their schema name). A tool raises the service's MaasError as it comes; maas/mcp_server.py turns
it into a coded error result. A new tool is a function here and one line in TOOLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from maas import rate_limit
from maas.authenticate import principal_of
from maas.mcp_results import (
    AddMemoryPayload,
    AddMessagesPayload,
    Category,
    ContextWindow,
    DeleteMemoryPayload,
    Memory,
    MemoryHit,
    MemoryPrompt,
    Role,
    SearchMemoriesPayload,
    SearchMode,
    UpdateMemoryPayload,
)
from services import ltm_model, stm_model
from services.errors import NotFound, Unauthenticated
from services.memory_prompt import PromptRequest

if TYPE_CHECKING:
    from collections.abc import Callable

    from services.ltm import LongTermMemory
    from services.memory_prompt import MemoryPrompts
    from services.rate_limit import RequestRateLimiter
    from services.stm import ShortTermMemory


@dataclass(frozen=True)
class Caller:
    """Who calls a tool, and the services the app built for them."""

    tenant: str
    stm: ShortTermMemory
    ltm: LongTermMemory
    prompts: MemoryPrompts


async def caller_of(ctx: Context) -> Caller:
    """The caller maas.authenticate let through, counted against its tenant's request rate
    (one tool call is one request, as one GraphQL operation is)."""
    request = ctx.request_context.request
    principal = principal_of(request.scope) if request is not None else None
    if principal is None:
        raise Unauthenticated("Missing or unknown credentials: send 'Authorization: Bearer <...>'.")
    state = request.app.state
    limiter: RequestRateLimiter | None = getattr(state, rate_limit.STATE_ATTRIBUTE, None)
    if limiter is not None and limiter.enabled:
        await limiter.admit(principal.tenant)
    return Caller(principal.tenant, state.stm, state.ltm, state.prompts)


# ---- arguments --------------------------------------------------------------------------------

SessionId = Annotated[str, Field(description="The session's id (yours to choose).")]
UserId = Annotated[str | None, Field(description="Whose memory: a user id.")]
AgentId = Annotated[str | None, Field(description="Whose memory: an agent id.")]
ScopeSessionId = Annotated[str | None, Field(description="Whose memory: a session id.")]
MemoryId = Annotated[str, Field(description="The memory's id.")]
Metadata = Annotated[
    dict[str, Any] | None, Field(description="Your own JSON object, kept with the memory.")
]
TtlSeconds = Annotated[
    int | None,
    Field(description="Seconds until the memory expires; 0 = never (default: the server's)."),
]


class MessageInput(BaseModel):
    """A message to store."""

    role: Role
    content: str
    name: str | None = None
    metadata: dict[str, Any] | None = None
    id: str | None = Field(
        None,
        description="Your id for the message: a retried write with the same id is stored once.",
    )


class MemoryMessageInput(BaseModel):
    """A message to remember facts from."""

    role: Role
    content: str
    name: str | None = None


# ---- tools ------------------------------------------------------------------------------------


async def add_messages(
    sessionId: SessionId,
    messages: Annotated[list[MessageInput], Field(description="The messages, oldest first.")],
    ctx: Context,
) -> AddMessagesPayload:
    """Append messages to a session's short-term memory (the session is created on first
    write). Returns the stored version of each message, and the ids already stored before."""
    caller = await caller_of(ctx)
    new = [stm_model.NewMessage.of(m) for m in messages]
    result = await caller.stm.add_messages(caller.tenant, sessionId, new)
    return AddMessagesPayload.of(sessionId, result)


async def get_context(sessionId: SessionId, ctx: Context) -> ContextWindow:
    """The context window of a session: what the model should see now, oldest first (the
    newest message always; a summary of older ones when there is one). NOT_FOUND when you
    have no session with that id."""
    caller = await caller_of(ctx)
    session = await caller.stm.get_session(caller.tenant, sessionId)
    if session is None:
        raise NotFound(f"No session '{sessionId}'.", field="sessionId")
    return ContextWindow.of(await caller.stm.get_context(caller.tenant, session))


async def memory_prompt(
    sessionId: SessionId,
    ctx: Context,
    query: Annotated[
        str | None,
        Field(
            description="What to search the memories for; default: the newest user message "
            "of the session's context window."
        ),
    ] = None,
    userId: UserId = None,
    agentId: AgentId = None,
    tokenBudget: Annotated[
        int | None,
        Field(
            description="Most tokens the messages may take (counted as the context window "
            "counts them); default: the session's maxTokens."
        ),
    ] = None,
    memoryLimit: Annotated[int, Field(description="Most memories to include (1 to 50).")] = 5,
    categories: Annotated[
        list[Category] | None, Field(description="Only memories of these categories.")
    ] = None,
    threshold: Annotated[
        float | None, Field(description="Lowest relevance of a memory, 0 to 1.")
    ] = None,
) -> MemoryPrompt:
    """In one call, the messages to put in front of the model: a system message carrying the
    long-term memories relevant to the query (searched for userId and/or agentId; default: the
    session's own, set in its config), then the
    session's context window, all within tokenBudget. The newest message is always kept;
    lower-scored memories, then older messages, are what gives way, and what was left out is
    said (omittedMemoryIds, omittedMessageCount). NOT_FOUND when you have no such session."""
    caller = await caller_of(ctx)
    request = PromptRequest(
        session_id=sessionId,
        scope=ltm_model.Scope(userId, agentId, None),
        query=query,
        token_budget=tokenBudget,
        memory_limit=memoryLimit,
        categories=list(categories) if categories else None,
        threshold=threshold,
    )
    return MemoryPrompt.of(await caller.prompts.build(caller.tenant, request))


async def search_memories(
    query: Annotated[str, Field(description="What to look for, in your words.")],
    ctx: Context,
    userId: UserId = None,
    agentId: AgentId = None,
    sessionId: ScopeSessionId = None,
    categories: Annotated[
        list[Category] | None, Field(description="Only memories of these categories.")
    ] = None,
    metadata: Annotated[
        dict[str, Any] | None,
        Field(description='Metadata values the memories must have, e.g. {"topic": "travel"}.'),
    ] = None,
    limit: Annotated[int, Field(description="Most hits to return.")] = 10,
    threshold: Annotated[
        float | None, Field(description="Lowest relevance to return, 0 to 1.")
    ] = None,
    mode: Annotated[
        SearchMode,
        Field(
            description="SEMANTIC: by meaning; KEYWORD: by words (BM25); HYBRID: both.",
            validate_default=True,
        ),
    ] = "HYBRID",
    recencyHalfLife: Annotated[
        float | None,
        Field(description="Prefer recent memories: relevance * 0.5^(age seconds / this)."),
    ] = None,
) -> SearchMemoriesPayload:
    """Search long-term memory within a scope (at least one of userId, agentId, sessionId):
    the memories closest to the query, best first, each with its id, score and category."""
    caller = await caller_of(ctx)
    search = ltm_model.MemorySearch(
        query=query,
        scope=ltm_model.Scope(userId, agentId, sessionId),
        categories=list(categories) if categories else None,
        metadata=metadata,
        limit=limit,
        threshold=threshold,
        mode=mode,
        recency_half_life_seconds=recencyHalfLife,
    )
    hits = await caller.ltm.search(caller.tenant, search)
    return SearchMemoriesPayload(hits=[MemoryHit.of(h) for h in hits])


async def add_memory(
    ctx: Context,
    text: Annotated[
        str | None, Field(description="Text to remember (or to extract facts from).")
    ] = None,
    messages: Annotated[
        list[MemoryMessageInput] | None,
        Field(description="Or: messages to extract facts from."),
    ] = None,
    userId: UserId = None,
    agentId: AgentId = None,
    sessionId: ScopeSessionId = None,
    category: Annotated[Category, Field(validate_default=True)] = "SEMANTIC",
    metadata: Metadata = None,
    ttlSeconds: TtlSeconds = None,
    infer: Annotated[
        bool | None,
        Field(
            description="Have the LLM extract facts (default: when an LLM is configured); "
            "false stores the text or each message as it is."
        ),
    ] = None,
) -> AddMemoryPayload:
    """Remember a text, or what messages say, in long-term memory under a scope (at least one
    of userId, agentId, sessionId). Returns the memories added (with their ids)."""
    caller = await caller_of(ctx)
    new = ltm_model.NewMemory(
        scope=ltm_model.Scope(userId, agentId, sessionId),
        text=text,
        messages=[(m.role.value, m.content, m.name) for m in messages]
        if messages is not None
        else None,
        category=category,
        metadata=metadata,
        ttl_seconds=ttlSeconds,
        infer=infer,
    )
    return AddMemoryPayload.of(await caller.ltm.add(caller.tenant, new))


async def update_memory(
    id: MemoryId,
    ctx: Context,
    text: Annotated[str | None, Field(description="The new text.")] = None,
    metadata: Annotated[dict[str, Any] | None, Field(description="Replaces the metadata.")] = None,
    ttlSeconds: Annotated[
        int | None, Field(description="Seconds from now until it expires; 0 = never.")
    ] = None,
) -> UpdateMemoryPayload:
    """Change a memory's text, metadata or expiry (fields left out keep their value).
    NOT_FOUND when you have no memory with that id."""
    caller = await caller_of(ctx)
    memory = await caller.ltm.update(
        caller.tenant, id, text=text, metadata=metadata, ttl_seconds=ttlSeconds
    )
    return UpdateMemoryPayload(memory=Memory.of(memory))


async def delete_memory(id: MemoryId, ctx: Context) -> DeleteMemoryPayload:
    """Forget a memory (its history keeps the deletion). NOT_FOUND when you have no memory
    with that id."""
    caller = await caller_of(ctx)
    await caller.ltm.delete(caller.tenant, id)
    return DeleteMemoryPayload(id=id)


_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
_CHANGE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

# Every tool the endpoint serves, with what it tells a client about its effects.
TOOLS: list[tuple[Callable[..., Any], ToolAnnotations]] = [
    (add_messages, _WRITE),
    (get_context, _READ),
    (memory_prompt, _READ),
    (search_memories, _READ),
    (add_memory, _WRITE),
    (update_memory, _CHANGE),
    (delete_memory, _CHANGE),
]
