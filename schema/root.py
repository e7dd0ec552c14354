"""The root types: Query, Mutation, Subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from resolvers import sessions as resolve
from schema.inputs import (
    AddMessagesInput,
    AddMessagesPayload,
    DeleteSessionInput,
    DeleteSessionPayload,
    SetSessionConfigInput,
    SetSessionConfigPayload,
)
from schema.memory_prompt import PromptQuery
from schema.memory_root import MemoryMutation, MemoryQuery, MemorySubscription
from schema.shared_execution import shared_conversion
from schema.types import (
    PageInfo,
    Session,
    SessionConnection,
    SessionEdge,
    SessionEvent,
    messages_of,
)


@strawberry.type
class Query(MemoryQuery, PromptQuery):
    @strawberry.field(description="A session of yours, or null when there is none with that id.")
    async def session(self, info: strawberry.Info, id: strawberry.ID) -> Session | None:
        found = await resolve.session(info, str(id))
        return Session.of(found) if found else None

    @strawberry.field(description="Your sessions by last activity, newest first.")
    async def sessions(
        self, info: strawberry.Info, first: int = 20, after: str | None = None
    ) -> SessionConnection:
        page = await resolve.sessions(info, first, after)
        edges = [SessionEdge(cursor=cursor, node=Session.of(s)) for s, cursor in page.sessions]
        return SessionConnection(
            edges=edges,
            page_info=PageInfo.of(
                [e.cursor for e in edges], has_next=page.has_more, has_previous=after is not None
            ),
            last_event_id=page.last_event_id,
        )


@strawberry.type
class Mutation(MemoryMutation):
    @strawberry.mutation(description="Append messages to a session (created on first write).")
    async def add_messages(
        self, info: strawberry.Info, input: AddMessagesInput
    ) -> AddMessagesPayload:
        result = await resolve.add_messages(info, input.session_id, input.messages)
        return AddMessagesPayload(
            session_id=input.session_id,
            messages=messages_of(result.messages),
            duplicate_ids=result.duplicate_ids,
        )

    @strawberry.mutation(description="Set a session's context-window config.")
    async def set_session_config(
        self, info: strawberry.Info, input: SetSessionConfigInput
    ) -> SetSessionConfigPayload:
        session = await resolve.set_session_config(
            info,
            input.session_id,
            strategy=input.strategy,
            max_messages=input.max_messages,
            max_tokens=input.max_tokens,
            ttl_seconds=input.ttl_seconds,
            user_id=input.user_id,
            agent_id=input.agent_id,
            long_term_extraction=input.long_term_extraction,
            reset=input.reset,
        )
        return SetSessionConfigPayload(session=Session.of(session))

    @strawberry.mutation(description="Delete a session and all its messages.")
    async def delete_session(
        self, info: strawberry.Info, input: DeleteSessionInput
    ) -> DeleteSessionPayload:
        await resolve.delete_session(info, input.session_id)
        return DeleteSessionPayload(session_id=input.session_id)


@strawberry.type
class Subscription(MemorySubscription):
    @strawberry.subscription(
        description="Live events of one session, or of all your sessions without sessionId. "
        "With after (an eventId), first every event after it, then live ones."
    )
    async def session_events(
        self, info: strawberry.Info, session_id: str | None = None, after: str | None = None
    ) -> AsyncGenerator[SessionEvent, None]:
        async for event in resolve.session_events(info, session_id, after):
            yield _session_event(event)


# Every subscriber of a stream gets the same service event: converted once, it stays one
# object, whose execution subscribers can share.
_session_event = shared_conversion(SessionEvent.of)
