"""Long-term memory's fields of the root types (merged into Query, Mutation, Subscription)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.scalars import JSON

from resolvers import memories as resolve
from schema.enums import MemoryCategory
from schema.memory_inputs import (
    AddMemoriesInput,
    AddMemoryInput,
    DeleteMemoriesInput,
    DeleteMemoryInput,
    SearchMemoriesBatchInput,
    SearchMemoriesInput,
    UpdateMemoryInput,
)
from schema.memory_types import (
    AddMemoriesPayload,
    AddMemoryPayload,
    AddMemoryResult,
    DeleteExpiredMemoriesPayload,
    DeleteMemoriesPayload,
    DeleteMemoryPayload,
    DeleteMemoryResult,
    ItemError,
    Memory,
    MemoryConnection,
    MemoryEdge,
    MemoryEvent,
    MemoryHit,
    SearchMemoriesBatchPayload,
    SearchMemoriesResult,
    UpdateMemoryPayload,
)
from schema.shared_execution import shared_conversion
from schema.types import PageInfo
from services.errors import MaasError
from services.ltm_model import Category, Scope


def _error(error: MaasError | None) -> ItemError | None:
    return ItemError(code=error.code, message=error.message) if error else None


@strawberry.type
class MemoryQuery:
    @strawberry.field(description="One of your memories; null when missing or expired.")
    async def memory(self, info: strawberry.Info, id: strawberry.ID) -> Memory | None:
        found = await resolve.memory(info, str(id))
        return Memory.of(found) if found else None

    @strawberry.field(
        description="Your memories newest first, optionally within a scope and filters."
    )
    async def memories(
        self,
        info: strawberry.Info,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        categories: list[MemoryCategory] | None = None,
        metadata: JSON | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> MemoryConnection:
        page, has_more = await resolve.memories(
            info,
            Scope(user_id, agent_id, session_id),
            [Category(c) for c in categories] if categories else None,
            metadata,
            first,
            after,
        )
        edges = [MemoryEdge(cursor=cursor, node=Memory.of(m)) for m, cursor in page]
        return MemoryConnection(
            edges=edges,
            page_info=PageInfo.of(
                [e.cursor for e in edges], has_next=has_more, has_previous=after is not None
            ),
        )

    @strawberry.field(description="Memories closest in meaning to the query, best first.")
    async def search_memories(
        self, info: strawberry.Info, input: SearchMemoriesInput
    ) -> list[MemoryHit]:
        hits = await resolve.search(info, input.to_search())
        return [MemoryHit.of(h) for h in hits]

    @strawberry.field(description="Several searches at once; one result per query, in order.")
    async def search_memories_batch(
        self, info: strawberry.Info, input: SearchMemoriesBatchInput
    ) -> SearchMemoriesBatchPayload:
        results = await resolve.search_many(info, [item.to_search() for item in input.items])
        return SearchMemoriesBatchPayload(
            results=[
                SearchMemoriesResult(
                    index=index,
                    ok=r.error is None,
                    hits=[MemoryHit.of(h) for h in r.value] if r.value is not None else None,
                    error=_error(r.error),
                )
                for index, r in enumerate(results)
            ]
        )


@strawberry.type
class MemoryMutation:
    @strawberry.mutation(description="Remember a text or what messages say.")
    async def add_memory(self, info: strawberry.Info, input: AddMemoryInput) -> AddMemoryPayload:
        return AddMemoryPayload.of(await resolve.add(info, input.to_new_memory()))

    @strawberry.mutation(description="Several adds at once; one result per item, in order.")
    async def add_memories(
        self, info: strawberry.Info, input: AddMemoriesInput
    ) -> AddMemoriesPayload:
        results = await resolve.add_many(info, [item.to_new_memory() for item in input.items])
        return AddMemoriesPayload(
            results=[
                AddMemoryResult(
                    index=index,
                    ok=r.error is None,
                    result=AddMemoryPayload.of(r.value) if r.value is not None else None,
                    error=_error(r.error),
                )
                for index, r in enumerate(results)
            ]
        )

    @strawberry.mutation(description="Change a memory's text, metadata or expiry.")
    async def update_memory(
        self, info: strawberry.Info, input: UpdateMemoryInput
    ) -> UpdateMemoryPayload:
        memory = await resolve.update(
            info,
            str(input.id),
            text=input.text,
            metadata=input.metadata,
            ttl_seconds=input.ttl_seconds,
        )
        return UpdateMemoryPayload(memory=Memory.of(memory))

    @strawberry.mutation(description="Forget a memory (its history keeps the DELETE).")
    async def delete_memory(
        self, info: strawberry.Info, input: DeleteMemoryInput
    ) -> DeleteMemoryPayload:
        await resolve.delete(info, str(input.id))
        return DeleteMemoryPayload(id=input.id)

    @strawberry.mutation(description="Forget several memories; one result per id, in order.")
    async def delete_memories(
        self, info: strawberry.Info, input: DeleteMemoriesInput
    ) -> DeleteMemoriesPayload:
        ids = [str(i) for i in input.ids]
        results = await resolve.delete_many(info, ids)
        return DeleteMemoriesPayload(
            results=[
                DeleteMemoryResult(
                    index=index,
                    id=strawberry.ID(memory_id),
                    ok=r.error is None,
                    error=_error(r.error),
                )
                for index, (memory_id, r) in enumerate(zip(ids, results, strict=True))
            ]
        )

    @strawberry.mutation(description="Delete your expired memories now; how many there were.")
    async def delete_expired_memories(self, info: strawberry.Info) -> DeleteExpiredMemoriesPayload:
        return DeleteExpiredMemoriesPayload(deleted_count=await resolve.delete_expired(info))


@strawberry.type
class MemorySubscription:
    @strawberry.subscription(
        description="Live changes to your memories, optionally within a scope. With after (an "
        "eventId), first every change after it, then live ones."
    )
    async def memory_events(
        self,
        info: strawberry.Info,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        after: str | None = None,
    ) -> AsyncGenerator[MemoryEvent, None]:
        async for event in resolve.events(info, Scope(user_id, agent_id, session_id), after):
            yield _memory_event(event)


# As schema.root's session events: one conversion per service event object.
_memory_event = shared_conversion(MemoryEvent.of)
