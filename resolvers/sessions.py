"""Resolvers of short-term memory: authenticate, turn arguments into service calls.

Each returns the service call's awaitable, which the schema awaits: a coroutine of its own
around it would only be one more frame to resume every time the call waits on Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any

from resolvers.context import RequestContext, stm_of, tenant_of
from resolvers.credential_expiry import until_credential_expires
from services.stm_model import (
    AddResult,
    ConfigChange,
    ConfigField,
    ContextWindow,
    MessagePage,
    NewMessage,
    SessionInfo,
    SessionPage,
    Strategy,
)

if TYPE_CHECKING:
    from strawberry import Info

    from services.session_events import SessionEvent
    from stores.extraction_jobs import ExtractionProgress


def session(info: Info[RequestContext, Any], session_id: str) -> Awaitable[SessionInfo | None]:
    return stm_of(info).get_session(tenant_of(info), session_id)


def sessions(
    info: Info[RequestContext, Any], first: int, after: str | None
) -> Awaitable[SessionPage]:
    return stm_of(info).list_sessions(tenant_of(info), first=first, after=after)


def session_messages(
    info: Info[RequestContext, Any],
    session_id: str,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Awaitable[MessagePage]:
    return stm_of(info).get_messages(
        tenant_of(info), session_id, first=first, after=after, last=last, before=before
    )


def session_context(
    info: Info[RequestContext, Any], session: SessionInfo
) -> Awaitable[ContextWindow]:
    return stm_of(info).get_context(tenant_of(info), session)


def session_extraction(
    info: Info[RequestContext, Any], session_id: str
) -> Awaitable[ExtractionProgress]:
    return stm_of(info).extraction_progress(tenant_of(info), session_id)


def add_messages(
    info: Info[RequestContext, Any], session_id: str, messages: list[Any]
) -> Awaitable[AddResult]:
    new = [NewMessage.of(m) for m in messages]
    return stm_of(info).add_messages(tenant_of(info), session_id, new)


def set_session_config(
    info: Info[RequestContext, Any],
    session_id: str,
    *,
    strategy: Strategy | None,
    max_messages: int | None,
    max_tokens: int | None,
    ttl_seconds: int | None,
    user_id: str | None = None,
    agent_id: str | None = None,
    long_term_extraction: bool | None = None,
    reset: list[ConfigField],
) -> Awaitable[SessionInfo]:
    change = ConfigChange(
        strategy=strategy,
        max_messages=max_messages,
        max_tokens=max_tokens,
        ttl_seconds=ttl_seconds,
        user_id=user_id,
        agent_id=agent_id,
        long_term_extraction=long_term_extraction,
        reset=frozenset(reset),
    )
    return stm_of(info).set_config(tenant_of(info), session_id, change)


def delete_session(info: Info[RequestContext, Any], session_id: str) -> Awaitable[None]:
    return stm_of(info).delete_session(tenant_of(info), session_id)


def session_events(
    info: Info[RequestContext, Any], session_id: str | None, after: str | None
) -> AsyncIterator[SessionEvent]:
    events = stm_of(info).session_events(tenant_of(info), session_id, after)
    return until_credential_expires(info, events)
