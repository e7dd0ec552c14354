"""GraphQL output types of short-term memory."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON

from resolvers import sessions as resolve
from schema.completion_plans import answered_by
from schema.enums import ContextStrategy, MessageRole, SessionEventType
from services import session_events, stm_model
from services.stm import encode_message_cursor


@strawberry.type(description="One message of a session.")
class Message:
    """Answered by the service's own messages (stm_model.Message), as they are: each field is
    one of their attributes, so a context of fifty messages copies none of them into an
    object of this class first (the completion plans know: answered_by below). A test checks
    the attributes are there."""

    id: str
    seq: int = strawberry.field(description="Position in the session: strictly increasing.")
    role: MessageRole
    content: str
    name: str | None
    metadata: JSON
    tokens: int = strawberry.field(
        name="tokenCount", description="Counted once, when it was written."
    )
    created_at: datetime
    is_summary: bool = strawberry.field(
        description="True for the message that stands for summarized older messages."
    )


answered_by(Message, stm_model.Message)


def messages_of(messages: list[stm_model.Message]) -> list[Message]:
    """The service's messages, answered as Messages (see Message)."""
    return cast("list[Message]", messages)


def message_of(message: stm_model.Message | None) -> Message | None:
    return cast("Message | None", message)


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, cursors: list[str], *, has_next: bool, has_previous: bool) -> PageInfo:
        """The page info of a page whose edges have these cursors, in order."""
        return cls(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        )


@strawberry.type
class MessageEdge:
    cursor: str
    node: Message


@strawberry.type(
    description="Messages oldest first; pages forward with first/after, back with last/before."
)
class MessageConnection:
    edges: list[MessageEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Message]:
        return [edge.node for edge in self.edges]

    @classmethod
    def of(cls, page: stm_model.MessagePage) -> MessageConnection:
        edges = [
            MessageEdge(cursor=encode_message_cursor(m), node=cast("Message", m))
            for m in page.messages
        ]
        return cls(
            edges=edges,
            page_info=PageInfo.of(
                [e.cursor for e in edges], has_next=page.has_newer, has_previous=page.has_older
            ),
        )


@strawberry.type(description="A session's context-window settings (its own or the defaults).")
class SessionConfig:
    strategy: ContextStrategy
    max_messages: int
    max_tokens: int
    ttl_seconds: int = strawberry.field(
        description="Idle time before the session expires; 0 = never."
    )
    user_id: str | None = strawberry.field(
        description="Whose conversation it is: the long-term-memory userId its messages teach."
    )
    agent_id: str | None = strawberry.field(
        description="The long-term-memory agentId its messages teach."
    )
    long_term_extraction: bool = strawberry.field(
        description="True when the session's messages reach long-term memory by themselves "
        "(extracted in the background into the userId/agentId scope, or the session's own "
        "scope when neither is set); see the session's extraction progress."
    )

    @classmethod
    def of(cls, c: stm_model.SessionConfig) -> SessionConfig:
        return cls(
            strategy=c.strategy,
            max_messages=c.max_messages,
            max_tokens=c.max_tokens,
            ttl_seconds=c.ttl_seconds,
            user_id=c.user_id,
            agent_id=c.agent_id,
            long_term_extraction=c.long_term_extraction,
        )


@strawberry.type(
    description="What a model should see now, oldest first. The newest message is always "
    "there, whole; then (TOKEN_THRESHOLD) the summary, if it fits beside it within the budget; "
    "then older messages while they fit. The messages are always the newest ones, without a "
    "gap."
)
class ContextWindow:
    messages: list[Message]
    token_count: int
    strategy: ContextStrategy
    truncated: bool = strawberry.field(
        description="True when older messages (or the summary) were left out to respect the budget."
    )
    over_budget: bool = strawberry.field(
        description="True when the newest message alone exceeds the token budget "
        "(TOKEN_THRESHOLD's maxTokens): it is still in the context, whole and never cut, so "
        "tokenCount is over the budget. Always false for SLIDING_WINDOW."
    )
    summary: Message | None

    @classmethod
    def of(cls, w: stm_model.ContextWindow) -> ContextWindow:
        return cls(
            messages=messages_of(w.messages),
            token_count=w.token_count,
            strategy=w.strategy,
            truncated=w.truncated,
            over_budget=w.over_budget,
            summary=message_of(w.summary),
        )


@strawberry.type(
    description="How far long-term extraction of a session's messages got (see "
    "SessionConfig.longTermExtraction)."
)
class SessionExtraction:
    last_extracted_seq: int | None = strawberry.field(
        description="seq of the newest message extracted; null before the first."
    )
    pending_count: int = strawberry.field(
        description="Messages waiting for extraction (they outlive a summary, a delete or an "
        "expiry of the session until extracted)."
    )
    failed_attempts: int = strawberry.field(
        description="Extraction attempts failed in a row (retried with a growing backoff)."
    )


@strawberry.type(description="A conversation's short-term memory.")
class Session:
    id: str
    message_count: int
    token_count: int
    summary_count: int
    created_at: datetime
    last_activity_at: datetime
    config: SessionConfig
    last_event_id: str | None = strawberry.field(
        description="Id of the session's newest event: subscribe to sessionEvents with "
        "after: it to follow on from what this read shows, missing nothing."
    )
    info: strawberry.Private[stm_model.SessionInfo]

    @strawberry.field(description="Messages, oldest first: the newest 50 unless paged.")
    async def messages(
        self,
        info: strawberry.Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> MessageConnection:
        page = await resolve.session_messages(
            info, self.id, first=first, after=after, last=last, before=before
        )
        return MessageConnection.of(page)

    @strawberry.field(description="The context window the session's strategy allows now.")
    async def context(self, info: strawberry.Info) -> ContextWindow:
        return ContextWindow.of(await resolve.session_context(info, self.info))

    @strawberry.field(description="Progress of long-term extraction of its messages.")
    async def extraction(self, info: strawberry.Info) -> SessionExtraction:
        progress = await resolve.session_extraction(info, self.id)
        return SessionExtraction(
            last_extracted_seq=progress.last_seq,
            pending_count=progress.pending,
            failed_attempts=progress.failures,
        )

    @classmethod
    def of(cls, s: stm_model.SessionInfo) -> Session:
        return cls(
            id=s.id,
            message_count=s.message_count,
            token_count=s.token_count,
            summary_count=s.summary_count,
            created_at=s.created_at,
            last_activity_at=s.last_activity_at,
            config=SessionConfig.of(s.config),
            last_event_id=s.last_event_id,
            info=s,
        )


@strawberry.type
class SessionEdge:
    cursor: str
    node: Session


@strawberry.type(description="Sessions by last activity, newest first.")
class SessionConnection:
    edges: list[SessionEdge]
    page_info: PageInfo
    last_event_id: str | None = strawberry.field(
        description="Id of your newest session event when this page was read: subscribe to "
        "sessionEvents (without sessionId) with after: it to miss no later change."
    )

    @strawberry.field
    def nodes(self) -> list[Session]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="A change to a session, live.")
class SessionEvent:
    event_id: str = strawberry.field(
        description="Orders the events of the subscription's stream (one session's, or all "
        "yours); pass the last one you got as `after` to resume without gaps or repeats."
    )
    type: SessionEventType
    session_id: str
    at: datetime
    messages: list[Message] = strawberry.field(description="The messages added (MESSAGES_ADDED).")
    summary: Message | None = strawberry.field(description="The new summary (SESSION_SUMMARIZED).")
    config: SessionConfig | None = strawberry.field(description="The new config (CONFIG_CHANGED).")

    @classmethod
    def of(cls, e: session_events.SessionEvent) -> SessionEvent:
        return cls(
            event_id=e.event_id,
            type=e.type,
            session_id=e.session_id,
            at=e.at,
            messages=messages_of(e.messages),
            summary=message_of(e.summary),
            config=SessionConfig.of(e.config) if e.config else None,
        )
