"""The per-request GraphQL context: who is calling and the services they may use."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiodataloader import DataLoader

from services.errors import Unauthenticated

if TYPE_CHECKING:
    from strawberry import Info

    from services.ltm import LongTermMemory
    from services.ltm_model import HistoryEntry
    from services.memory_prompt import MemoryPrompts
    from services.stm import ShortTermMemory


@dataclass
class RequestContext:
    """Built once per HTTP request or WebSocket connection by the app."""

    stm: ShortTermMemory
    tenant: str | None
    ltm: LongTermMemory | None = None
    history_loader: DataLoader[str, list[HistoryEntry]] | None = None
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    # When the caller's credential (a JWT) stops being accepted, in epoch seconds; None: never.
    # A WebSocket's context lives as long as its connection, which may outlive its token.
    expires_at: float | None = None
    prompts: MemoryPrompts | None = None

    def histories(self) -> DataLoader[str, list[HistoryEntry]]:
        """Batches the history reads of one operation into one. Made on first use (most
        operations read no history), in a resolver, where the event loop it captures runs; no
        cache, because a WebSocket context lives as long as its connection and history changes."""
        if self.history_loader is None:
            self.history_loader = DataLoader(ltm_of_context(self).histories, cache=False)
        return self.history_loader


EXPIRED = "The bearer token has expired: connect again with a new one."


def tenant_of(info: Info[RequestContext, Any]) -> str:
    """The caller's tenant; UNAUTHENTICATED without a credential, or once it has expired."""
    context = info.context
    tenant = context.tenant
    if tenant is None:
        raise Unauthenticated(
            "Missing or unknown credentials: send 'Authorization: Bearer <API key or token>' "
            '(over WebSocket: connection_init payload {"Authorization": "Bearer <...>"}).'
        )
    if context.expires_at is not None and time.time() >= context.expires_at:
        raise Unauthenticated(EXPIRED)
    return tenant


def stm_of(info: Info[RequestContext, Any]) -> ShortTermMemory:
    return info.context.stm


def ltm_of(info: Info[RequestContext, Any]) -> LongTermMemory:
    return ltm_of_context(info.context)


def ltm_of_context(context: RequestContext) -> LongTermMemory:
    ltm = context.ltm
    if ltm is None:
        raise RuntimeError("long-term memory is not part of this app")
    return ltm


def prompts_of(info: Info[RequestContext, Any]) -> MemoryPrompts:
    prompts = info.context.prompts
    if prompts is None:
        raise RuntimeError("memory prompts are not part of this app")
    return prompts
