"""What MCP tools return: the GraphQL schema's result types as pydantic models, with the same
camelCase fields and enum names (USER, TOKEN_THRESHOLD, SEMANTIC), so a tool's structured
content reads like the GraphQL result of the same operation, and its output schema says so."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel

from services import ltm_model, memory_prompt, stm_model


def graphql_enum(kind: type[enum.Enum]) -> Any:
    """The enum as GraphQL names it (by member name, e.g. USER); its values ("user") are
    accepted too, in any case."""
    names = [member.name for member in kind]

    def by_name(value: object) -> object:
        if isinstance(value, kind) or not isinstance(value, str):
            return value
        member = kind.__members__.get(value.upper())
        if member is None:
            member = next((m for m in kind if str(m.value).lower() == value.lower()), None)
        if member is None:
            raise ValueError(f"must be one of {', '.join(names)}")
        return member

    return Annotated[
        kind,
        BeforeValidator(by_name),
        PlainSerializer(lambda member: member.name, return_type=str),
        WithJsonSchema({"type": "string", "enum": names}),
    ]


Role = graphql_enum(stm_model.Role)
Strategy = graphql_enum(stm_model.Strategy)
Category = graphql_enum(ltm_model.Category)
SearchMode = graphql_enum(ltm_model.SearchMode)
# ISO 8601 as GraphQL's DateTime writes it (datetime.isoformat).
Timestamp = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Result(BaseModel):
    """camelCase on the wire, as in the GraphQL schema."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, frozen=True)


class Message(Result):
    """One message of a session."""

    id: str
    seq: int
    role: Role
    content: str
    name: str | None
    metadata: dict[str, Any]
    token_count: int
    created_at: Timestamp
    is_summary: bool

    @classmethod
    def of(cls, m: stm_model.Message) -> Message:
        return cls(
            id=m.id,
            seq=m.seq,
            role=m.role,
            content=m.content,
            name=m.name,
            metadata=m.metadata,
            token_count=m.tokens,
            created_at=m.created_at,
            is_summary=m.is_summary,
        )


class AddMessagesPayload(Result):
    session_id: str
    messages: list[Message]
    duplicate_ids: list[str]

    @classmethod
    def of(cls, session_id: str, result: stm_model.AddResult) -> AddMessagesPayload:
        return cls(
            session_id=session_id,
            messages=[Message.of(m) for m in result.messages],
            duplicate_ids=result.duplicate_ids,
        )


class ContextWindow(Result):
    """What a model should see now, oldest first (the GraphQL ContextWindow)."""

    messages: list[Message]
    token_count: int
    strategy: Strategy
    truncated: bool
    over_budget: bool
    summary: Message | None

    @classmethod
    def of(cls, w: stm_model.ContextWindow) -> ContextWindow:
        return cls(
            messages=[Message.of(m) for m in w.messages],
            token_count=w.token_count,
            strategy=w.strategy,
            truncated=w.truncated,
            over_budget=w.over_budget,
            summary=Message.of(w.summary) if w.summary else None,
        )


class Memory(Result):
    """Something an agent remembers across sessions."""

    id: str
    text: str
    category: Category
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    metadata: dict[str, Any]
    created_at: Timestamp
    updated_at: Timestamp
    expires_at: Timestamp | None

    @classmethod
    def of(cls, m: ltm_model.MemoryRecord) -> Memory:
        return cls(
            id=m.id,
            text=m.text,
            category=m.category,
            user_id=m.user_id,
            agent_id=m.agent_id,
            session_id=m.session_id,
            metadata=m.metadata,
            created_at=m.created_at,
            updated_at=m.updated_at,
            expires_at=m.expires_at,
        )


class HitScores(Result):
    semantic: float | None
    keyword: float | None
    recency: float | None


class MemoryHit(Result):
    score: float
    memory: Memory
    scores: HitScores | None

    @classmethod
    def of(cls, hit: ltm_model.MemoryHit) -> MemoryHit:
        parts = hit.scores
        return cls(
            score=hit.score,
            memory=Memory.of(hit.memory),
            scores=HitScores(semantic=parts.semantic, keyword=parts.keyword, recency=parts.recency)
            if parts is not None
            else None,
        )


class SearchMemoriesPayload(Result):
    """The hits, best first (GraphQL's searchMemories list, in an object: structured content
    is always one)."""

    hits: list[MemoryHit]


class AddMemoryPayload(Result):
    added: list[Memory]
    updated: list[Memory]
    deleted: list[str]

    @classmethod
    def of(cls, result: ltm_model.AddResult) -> AddMemoryPayload:
        return cls(
            added=[Memory.of(m) for m in result.added],
            updated=[Memory.of(m) for m in result.updated],
            deleted=list(result.deleted),
        )


class UpdateMemoryPayload(Result):
    memory: Memory


class DeleteMemoryPayload(Result):
    id: str


class PromptMessage(Result):
    """One message ready for a chat model; messageId: the session message it comes from (null
    for the system message carrying the memories)."""

    role: Role
    content: str
    name: str | None
    token_count: int
    message_id: str | None


class MemoryPrompt(Result):
    """GraphQL's MemoryPrompt less its session and full context window (the messages carry
    what the model needs; get_context returns the window)."""

    messages: list[PromptMessage]
    token_count: int
    token_budget: int
    over_budget: bool
    truncated: bool
    query: str | None
    memories: list[MemoryHit]
    omitted_memory_ids: list[str]
    omitted_message_count: int
    memories_unavailable: bool

    @classmethod
    def of(cls, prompt: memory_prompt.MemoryPrompt) -> MemoryPrompt:
        return cls(
            messages=[
                PromptMessage(
                    role=m.role,
                    content=m.content,
                    name=m.name,
                    token_count=m.tokens,
                    message_id=m.message.id if m.message is not None else None,
                )
                for m in prompt.messages
            ],
            token_count=prompt.token_count,
            token_budget=prompt.token_budget,
            over_budget=prompt.over_budget,
            truncated=prompt.truncated,
            query=prompt.query,
            memories=[MemoryHit.of(h) for h in prompt.memories],
            omitted_memory_ids=[h.memory.id for h in prompt.omitted_memories],
            omitted_message_count=prompt.omitted_message_count,
            memories_unavailable=prompt.memories_unavailable,
        )
