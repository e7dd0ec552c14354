"""GraphQL inputs and payloads of short-term memory."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from schema.enums import ContextStrategy, MessageRole, SessionConfigField
from schema.types import Message, Session


@strawberry.input(description="A message to store.")
class MessageInput:
    role: MessageRole
    content: str
    name: str | None = None
    metadata: JSON | None = None
    id: str | None = strawberry.field(
        default=None,
        description="Your id for the message: a retried write with the same id is stored once.",
    )


@strawberry.input
class AddMessagesInput:
    session_id: str
    messages: list[MessageInput]


@strawberry.type
class AddMessagesPayload:
    session_id: str
    messages: list[Message] = strawberry.field(
        description="The stored version of each input message still in the buffer, in input order."
    )
    duplicate_ids: list[str] = strawberry.field(
        description="Ids that were already stored before this call (not stored again)."
    )


@strawberry.input(
    description="Fields left out keep their value; `reset` returns fields to defaults."
)
class SetSessionConfigInput:
    session_id: str
    strategy: ContextStrategy | None = None
    max_messages: int | None = None
    max_tokens: int | None = None
    ttl_seconds: int | None = None
    user_id: str | None = strawberry.field(
        default=None, description="The long-term-memory userId the session's messages teach."
    )
    agent_id: str | None = strawberry.field(
        default=None, description="The long-term-memory agentId the session's messages teach."
    )
    long_term_extraction: bool | None = strawberry.field(
        default=None,
        description="true: the session's messages reach long-term memory without addMemory.",
    )
    reset: list[SessionConfigField] = strawberry.field(default_factory=list)


@strawberry.type
class SetSessionConfigPayload:
    session: Session


@strawberry.input
class DeleteSessionInput:
    session_id: str


@strawberry.type
class DeleteSessionPayload:
    session_id: str
