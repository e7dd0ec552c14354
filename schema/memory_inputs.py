"""GraphQL inputs of long-term memory, and their conversion to the service's requests."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from schema.enums import MemoryCategory, MessageRole, SearchMode
from services.ltm_model import Category, MemorySearch, NewMemory, Scope
from services.ltm_model import SearchMode as Mode


@strawberry.input(description="A message to remember facts from.")
class MemoryMessageInput:
    role: MessageRole
    content: str
    name: str | None = None


@strawberry.input(
    description="Text to remember verbatim (or to extract facts from), or messages to extract "
    "facts from. At least one of userId, agentId, sessionId."
)
class AddMemoryInput:
    text: str | None = None
    messages: list[MemoryMessageInput] | None = None
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    category: MemoryCategory = Category.SEMANTIC
    metadata: JSON | None = None
    ttl_seconds: int | None = strawberry.field(
        default=None,
        description="Seconds until the memory expires; 0 = never "
        "(default: LTM_DEFAULT_TTL_SECONDS).",
    )
    infer: bool | None = strawberry.field(
        default=None,
        description="Have the LLM extract facts (default: when an LLM is configured). "
        "false stores the text or each message as it is.",
    )

    def to_new_memory(self) -> NewMemory:
        return NewMemory(
            scope=Scope(self.user_id, self.agent_id, self.session_id),
            text=self.text,
            messages=[(m.role.value, m.content, m.name) for m in self.messages]
            if self.messages is not None
            else None,
            category=Category(self.category),
            metadata=self.metadata,
            ttl_seconds=self.ttl_seconds,
            infer=self.infer,
        )


@strawberry.input(description="A search within a scope (at least one id).")
class SearchMemoriesInput:
    query: str
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    categories: list[MemoryCategory] | None = None
    metadata: JSON | None = strawberry.field(
        default=None,
        description='Metadata values the memories must have, e.g. {"topic": "travel"}.',
    )
    limit: int = 10
    threshold: float | None = strawberry.field(
        default=None,
        description="Lowest relevance to return, 0 to 1, before any recency factor: the "
        "semantic score in SEMANTIC mode, the keyword score in KEYWORD; in HYBRID a hit is "
        "kept when its semantic or its keyword score reaches it (its rank-fused score says "
        "where it ranks, not how close it is).",
    )
    mode: SearchMode = strawberry.field(
        default=Mode.HYBRID,
        description="SEMANTIC: by meaning; KEYWORD: by words (BM25); HYBRID (default): both.",
    )
    recency_half_life: float | None = strawberry.field(
        default=None,
        description="Prefer recent memories: score = relevance * 0.5^(age / recencyHalfLife), "
        "age in seconds since the memory last changed. Null (default): no preference.",
    )

    def to_search(self) -> MemorySearch:
        return MemorySearch(
            query=self.query,
            scope=Scope(self.user_id, self.agent_id, self.session_id),
            categories=[Category(c) for c in self.categories] if self.categories else None,
            metadata=self.metadata,
            limit=self.limit,
            threshold=self.threshold,
            mode=Mode(self.mode),
            recency_half_life_seconds=self.recency_half_life,
        )


@strawberry.input(description="Fields left out keep their value.")
class UpdateMemoryInput:
    id: strawberry.ID
    text: str | None = None
    metadata: JSON | None = strawberry.field(default=None, description="Replaces the metadata.")
    ttl_seconds: int | None = strawberry.field(
        default=None, description="Seconds from now until it expires; 0 = never."
    )


@strawberry.input
class DeleteMemoryInput:
    id: strawberry.ID


@strawberry.input
class AddMemoriesInput:
    items: list[AddMemoryInput]


@strawberry.input
class SearchMemoriesBatchInput:
    items: list[SearchMemoriesInput]


@strawberry.input
class DeleteMemoriesInput:
    ids: list[strawberry.ID]
