"""GraphQL output types of long-term memory."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from resolvers import memories as resolve
from schema.enums import MemoryCategory, MemoryChangeKind, MemoryEventType
from schema.types import PageInfo
from services import ltm_model


@strawberry.type(description="One change to a memory.")
class MemoryHistory:
    event: MemoryChangeKind
    previous_text: str | None = strawberry.field(description="Null for ADD.")
    new_text: str | None = strawberry.field(description="Null for DELETE.")
    at: datetime

    @classmethod
    def of(cls, entry: ltm_model.HistoryEntry) -> MemoryHistory:
        return cls(
            event=entry.event,
            previous_text=entry.previous_text,
            new_text=entry.new_text,
            at=entry.at,
        )


@strawberry.type(description="Something an agent remembers across sessions.")
class Memory:
    id: strawberry.ID
    text: str
    category: MemoryCategory
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    metadata: JSON
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = strawberry.field(description="Null: never expires.")

    @strawberry.field(description="Every change, oldest first (ADD, UPDATE, DELETE).")
    async def history(self, info: strawberry.Info) -> list[MemoryHistory]:
        entries = await resolve.history(info, str(self.id))
        return [MemoryHistory.of(e) for e in entries]

    @classmethod
    def of(cls, m: ltm_model.MemoryRecord) -> Memory:
        return cls(
            id=strawberry.ID(m.id),
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


@strawberry.type(
    description="What went into a hit's score, each 0 to 1; null: not part of this search."
)
class HitScores:
    semantic: float | None = strawberry.field(description="Cosine similarity to the query.")
    keyword: float | None = strawberry.field(description="BM25 of the query's words, squashed.")
    recency: float | None = strawberry.field(description="0.5^(age / recencyHalfLife).")


@strawberry.type(description="A search result: the memory and how well it matches (higher: better)")
class MemoryHit:
    score: float = strawberry.field(description="The ranking score (see HitScores).")
    memory: Memory
    scores: HitScores | None = None

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


@strawberry.type
class MemoryEdge:
    cursor: str
    node: Memory


@strawberry.type(description="Memories newest first; pages forward with first/after.")
class MemoryConnection:
    edges: list[MemoryEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Memory]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="What remembering did: mem0 2.x extraction only adds.")
class AddMemoryPayload:
    added: list[Memory]
    updated: list[Memory]
    deleted: list[strawberry.ID]

    @classmethod
    def of(cls, result: ltm_model.AddResult) -> AddMemoryPayload:
        return cls(
            added=[Memory.of(m) for m in result.added],
            updated=[Memory.of(m) for m in result.updated],
            deleted=[strawberry.ID(i) for i in result.deleted],
        )


@strawberry.type(description="Why one item of a batch failed; the other items are unaffected.")
class ItemError:
    code: str
    message: str


@strawberry.type(description="One item of addMemories, in input order.")
class AddMemoryResult:
    index: int
    ok: bool
    result: AddMemoryPayload | None
    error: ItemError | None


@strawberry.type(description="One query of searchMemoriesBatch, in input order.")
class SearchMemoriesResult:
    index: int
    ok: bool
    hits: list[MemoryHit] | None
    error: ItemError | None


@strawberry.type(description="One id of deleteMemories, in input order.")
class DeleteMemoryResult:
    index: int
    id: strawberry.ID
    ok: bool
    error: ItemError | None


@strawberry.type
class AddMemoriesPayload:
    results: list[AddMemoryResult]


@strawberry.type
class SearchMemoriesBatchPayload:
    results: list[SearchMemoriesResult]


@strawberry.type
class DeleteMemoriesPayload:
    results: list[DeleteMemoryResult]


@strawberry.type
class UpdateMemoryPayload:
    memory: Memory


@strawberry.type
class DeleteMemoryPayload:
    id: strawberry.ID


@strawberry.type
class DeleteExpiredMemoriesPayload:
    deleted_count: int


@strawberry.type(description="A change to one of your memories.")
class MemoryEvent:
    event_id: str = strawberry.field(
        description="Orders your memory events; pass the last one you got as `after` to "
        "resume without gaps or repeats."
    )
    type: MemoryEventType
    memory_id: strawberry.ID
    at: datetime
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    memory: Memory | None = strawberry.field(description="Null for DELETED and EXPIRED.")

    @classmethod
    def of(cls, event: ltm_model.MemoryEvent) -> MemoryEvent:
        return cls(
            event_id=event.event_id,
            type=event.type,
            memory_id=strawberry.ID(event.memory_id),
            at=event.at,
            user_id=event.scope.user_id,
            agent_id=event.scope.agent_id,
            session_id=event.scope.session_id,
            memory=Memory.of(event.memory) if event.memory else None,
        )
